defmodule Py.PushStream do
  @moduledoc """
  The items of a Python generator (or any iterable) pushed to a process as
  messages, started with `Py.stream_to/5`.

      {:ok, stream} = Py.stream_to(self(), :builtins, :range, [3], credit: 10)
      ref = stream.ref
      # the receiver gets {ref, :item, 0}, {ref, :item, 1}, {ref, :item, 2}, then {ref, :done}

  The receiver gets:

    * `{ref, :item, item}` for each item, in order
    * `{ref, :done}` after the last
    * `{ref, :error, %Py.Error{}}` if the generator raised (no more follow)

  **Credit.** At most `:credit` items (default 100) are sent that the
  receiver has not acknowledged with `ack/2`; the generator is not advanced
  past them, so a slow receiver bounds memory. A receiver that keeps up
  acknowledges as it handles items.

  The stream stops (and a generator is closed, its `finally` runs) when the
  receiver exits or `cancel/1` is called. Items are fetched from Python in
  chunks of at most the credit (`:chunk_size`, default `min(credit, 100)`).
  The generator runs where `Py.stream/4` would run it, with the caller's
  bindings: options `:context`, `:pool`, `:timeout` (per chunk), `:kwargs`.
  """

  @enforce_keys [:ref, :pid]
  defstruct [:ref, :pid]

  @type t :: %__MODULE__{ref: reference, pid: pid}

  @doc false
  def start(receiver, start_stream, opts) do
    opts = Py.Options.keyword!(opts, "Py.stream_to/5", "[credit: 100]")
    {credit, opts} = Keyword.pop(opts, :credit, 100)

    unless is_integer(credit) and credit > 0 do
      raise ArgumentError,
            "the :credit option must be a positive integer, got: #{inspect(credit)}"
    end

    unless is_pid(receiver) do
      raise ArgumentError, "Py.stream_to/5 sends to a pid, got: #{inspect(receiver)}"
    end

    opts = Keyword.put_new(opts, :chunk_size, min(credit, 100))
    ref = make_ref()
    inherited = Py.Callbacks.inheritance()

    pid =
      spawn(fn ->
        Py.Callbacks.inherit(inherited)
        pump(receiver, ref, start_stream.(opts), credit)
      end)

    {:ok, %__MODULE__{ref: ref, pid: pid}}
  end

  @doc """
  Allows `count` more items to be sent (the receiver has handled that
  many).
  """
  @spec ack(t, pos_integer) :: :ok
  def ack(%__MODULE__{ref: ref, pid: pid}, count \\ 1) when is_integer(count) and count > 0 do
    send(pid, {:py_credit, ref, count})
    :ok
  end

  @doc """
  Stops the stream: no message follows, and a generator is closed. Returns
  once it has stopped.
  """
  @spec cancel(t) :: :ok
  def cancel(%__MODULE__{ref: ref, pid: pid}) do
    monitor = Process.monitor(pid)
    send(pid, {:py_cancel, ref})

    receive do
      {:DOWN, ^monitor, _, _, _} -> :ok
    end
  end

  @doc false
  # The counts of a running stream, from the process that pushes it (for
  # tests): `%{sent: n, credit: n}`.
  def info(%__MODULE__{ref: ref, pid: pid}) do
    monitor = Process.monitor(pid)
    send(pid, {:py_stream_info, ref, self()})

    receive do
      {^ref, :info, info} ->
        Process.demonitor(monitor, [:flush])
        info

      {:DOWN, ^monitor, _, _, _} ->
        nil
    end
  end

  defp pump(receiver, ref, stream, credit) do
    monitor = Process.monitor(receiver)

    result =
      try do
        Enum.reduce_while(stream, %{credit: credit, sent: 0}, fn item, state ->
          case await_credit(state, ref, monitor) do
            :stop ->
              {:halt, :stopped}

            state ->
              send(receiver, {ref, :item, item})
              {:cont, %{state | credit: state.credit - 1, sent: state.sent + 1}}
          end
        end)
      rescue
        error in Py.Error -> {:error, error}
      end

    case result do
      :stopped -> :ok
      {:error, error} -> send(receiver, {ref, :error, error})
      _done -> send(receiver, {ref, :done})
    end
  end

  # Takes the messages that came meanwhile; waits while there is no credit.
  defp await_credit(state, ref, monitor) do
    timeout = if state.credit > 0, do: 0, else: :infinity

    receive do
      {:py_credit, ^ref, count} ->
        await_credit(%{state | credit: state.credit + count}, ref, monitor)

      {:py_stream_info, ^ref, from} ->
        send(from, {ref, :info, state})
        await_credit(state, ref, monitor)

      {:py_cancel, ^ref} ->
        :stop

      {:DOWN, ^monitor, _, _, _} ->
        :stop
    after
      timeout -> state
    end
  end
end
