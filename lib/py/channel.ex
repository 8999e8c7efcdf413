defmodule Py.Channel do
  @moduledoc """
  A channel: Elixir sends terms, Python receives them, in order.

  Pass the channel to Python as an argument; it arrives as an
  `erlang.Channel`. Python receives with `ch.receive()` (blocks with the
  GIL released), iterates with `for msg in ch`, or awaits
  `await ch.async_receive()` under asyncio. Replies go back with
  `erlang.send(pid, term)`.

      {:ok, ctx} = Py.Context.start_link()

      Py.Context.exec!(ctx, \"\"\"
      import erlang

      def total(ch, reply_to):
          s = 0
          for n in ch:            # ends when the channel is closed
              s += n
              erlang.send(reply_to, ("running", s))
          return s
      \"\"\")

      ch = Py.Channel.new()
      me = self()
      task = Task.async(fn -> Py.Context.eval(ctx, "total(ch, me)", %{"ch" => ch, "me" => me}) end)
      :ok = Py.Channel.send(ch, 1)
      :ok = Py.Channel.send(ch, 2)
      :ok = Py.Channel.close(ch)
      {:ok, 3} = Task.await(task)
      # the mailbox now holds {"running", 1} and {"running", 3}

  Messages are copied when sent and converted to Python by the thread that
  receives them, with the usual rules (see `docs/type-conversion.md`). A
  term that cannot cross (a function, say) fails in Python's `receive()`
  with a `TypeError`, not in `send/2`.

  ## Backpressure

  `new(max_size: n)` bounds the queue: `send/2` returns `{:error, :full}`
  while `n` messages wait, and never blocks the caller. Retry later (for
  example after Python tells you it made progress), or drop the message.

  ## Closing

  `close/1`, the death of the process that created the channel, or the
  garbage collection of the last Elixir reference to it closes the
  channel: Python receives what is queued, then its `for` loop ends (and
  `receive()` raises `erlang.ChannelClosed`). Python can close it too
  (`ch.close()`); then `send/2` returns `{:error, :closed}`.

  A call that times out while Python waits in `receive()` interrupts the
  wait (`erlang.Interrupted`), like any other running Python code.

  See `docs/channels-and-buffers.md`.
  """

  @enforce_keys [:ref]
  defstruct [:ref]

  @typedoc "A channel. Its `:ref` is a native handle."
  @type t :: %__MODULE__{ref: reference}

  @doc """
  Makes a channel owned by the calling process: it closes when this process
  exits.

  Options:
    * `:max_size` - the most messages that may wait in the channel (a
      positive integer), or `:infinity` (the default)

  ## Examples

      iex> ch = Py.Channel.new(max_size: 1)
      iex> Py.Channel.send(ch, :a)
      :ok
      iex> Py.Channel.send(ch, :b)
      {:error, :full}
  """
  @spec new(keyword) :: t
  def new(opts \\ []) do
    capacity = Py.Options.max_size!(opts, "Py.Channel.new/1", "")

    case Py.Native.channel_new(capacity) do
      {:ok, ref} -> %__MODULE__{ref: ref}
      {:error, message} -> raise Py.Error, kind: :runtime, message: message
    end
  end

  @doc """
  Queues `term` for Python. Never blocks.

  Returns `:ok`, `{:error, :full}` when a bounded channel is full, or
  `{:error, :closed}` when the channel was closed.

  ## Examples

      iex> ch = Py.Channel.new()
      iex> Py.Channel.send(ch, %{"id" => 1})
      :ok
      iex> Py.Channel.close(ch)
      :ok
      iex> Py.Channel.send(ch, %{"id" => 2})
      {:error, :closed}
  """
  @spec send(t, term) :: :ok | {:error, :full | :closed}
  def send(%__MODULE__{ref: ref}, term), do: Py.Native.Large.channel_send(ref, term)

  def send(other, _term), do: raise(ArgumentError, not_a_channel(other))

  @doc """
  Closes the channel. Python still receives what is queued, then its
  iteration ends. Idempotent.
  """
  @spec close(t) :: :ok
  def close(%__MODULE__{ref: ref}), do: Py.Native.channel_close(ref)

  def close(other), do: raise(ArgumentError, not_a_channel(other))

  defp not_a_channel(other),
    do: "expected a %Py.Channel{} (made with Py.Channel.new/1), got: #{inspect(other)}"
end
