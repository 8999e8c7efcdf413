defmodule Py.Deadline do
  @moduledoc false
  # Deadlines of the waits for a call's reply (monotonic milliseconds, or
  # :infinity), for `receive ... after`, and the one timer a call with
  # callbacks waits under (`start_timer/1`, `stop_timer/1`).

  @doc "Now, in monotonic milliseconds."
  def now, do: :erlang.monotonic_time(:millisecond)

  # `receive ... after` takes at most 2^32 - 1 ms: a longer wait is made of
  # several, each ending with a look at the deadline.
  @max_after 4_294_967_295

  @doc "Milliseconds left until `deadline` (at most what `after` takes)."
  def remaining(:infinity), do: :infinity
  def remaining(deadline), do: min(max(deadline - now(), 0), @max_after)

  @doc """
  The first wait for a deadline just made from `timeout` (ms or
  `:infinity`): `timeout` itself, at most what `after` takes, without
  reading the clock again.
  """
  def first_wait(:infinity), do: :infinity
  def first_wait(timeout), do: min(timeout, @max_after)

  @doc """
  A timer that sends `{:timeout, timer, :py_deadline}` to the calling
  process at `deadline` (or when `after` could wait no longer; look at the
  deadline then). Stop it with `stop_timer/1` on every way out.
  """
  def start_timer(deadline), do: :erlang.start_timer(remaining(deadline), self(), :py_deadline)

  @doc """
  Stops a timer of `start_timer/1` (`nil`: none). One that already fired
  has its message in the mailbox or on the way: it is taken, so that no
  stray message is left behind.
  """
  def stop_timer(nil), do: :ok

  def stop_timer(timer) do
    if :erlang.cancel_timer(timer) == false do
      receive do
        {:timeout, ^timer, :py_deadline} -> :ok
      end
    end

    :ok
  end

  @doc "Whether `deadline` has passed."
  def expired?(:infinity), do: false
  def expired?(deadline), do: now() >= deadline
end
