defmodule Py.Buffer do
  @moduledoc """
  A buffer: Elixir writes binaries, Python reads them like a binary file.

  Pass the buffer to Python as an argument; it arrives as an
  `erlang.Buffer` with `read(n)`, `read()`, `read1(n)`, `readline()`,
  iteration by line, `readinto(b)`, and `read_view(n)` / `views()` that give
  read-only `memoryview`s over the written binaries without copying them.
  Reads block, with the GIL released, until enough bytes arrived or the
  buffer was closed.

      buf = Py.Buffer.new()
      task = Task.async(fn ->
        Py.eval("__import__('hashlib').sha256(buf.read()).hexdigest()", %{"buf" => buf})
      end)
      :ok = Py.Buffer.write(buf, "hello ")
      :ok = Py.Buffer.write(buf, "world")
      :ok = Py.Buffer.close(buf)
      {:ok, hex} = Task.await(task)

  A written binary is kept, not copied (binaries over 64 bytes are
  reference counted by the VM), until Python has read it and dropped every
  view of it. `read`, `readline` and `readinto` copy once, into the
  Python object they return or fill; `read_view` and `views` copy nothing.

  ## Backpressure

  `new(max_size: bytes)` makes `write/2` return `{:error, :full}` while at
  least that many bytes wait unread (one write may pass the limit). It
  never blocks the caller. It bounds what waits in the buffer, not the size
  of one read: a Python read larger than `max_size` (`read()`,
  `hashlib.file_digest`) takes what is there, so writes go on, and returns
  when it has all its bytes.

  ## Closing

  `close/1`, the death of the process that created the buffer, or the
  garbage collection of the last Elixir reference to it ends the data:
  Python reads what is left, then `b""`. Python's `buf.close()` stops
  reading; then `write/2` returns `{:error, :closed}`.

  See `docs/channels-and-buffers.md`.
  """

  @enforce_keys [:ref]
  defstruct [:ref]

  @typedoc "A buffer. Its `:ref` is a native handle."
  @type t :: %__MODULE__{ref: reference}

  @doc """
  Makes a buffer owned by the calling process: it is closed (end of data)
  when this process exits.

  Options:
    * `:max_size` - refuse writes while this many bytes wait unread (a
      positive integer), or `:infinity` (the default)

  ## Examples

      iex> buf = Py.Buffer.new()
      iex> Py.Buffer.write(buf, "line one\\nline two\\n")
      :ok
      iex> Py.Buffer.close(buf)
      :ok
      iex> Py.eval("list(buf)", %{"buf" => buf})
      {:ok, ["line one\\n", "line two\\n"]}
  """
  @spec new(keyword) :: t
  def new(opts \\ []) do
    max_size = Py.Options.max_size!(opts, "Py.Buffer.new/1", " (bytes)")

    case Py.Native.buffer_new(max_size) do
      {:ok, ref} -> %__MODULE__{ref: ref}
      {:error, message} -> raise Py.Error, kind: :runtime, message: message
    end
  end

  @doc """
  Appends `data` (a binary, or iodata, which is flattened into one binary
  first). Never blocks.

  Returns `:ok`, `{:error, :full}` when a bounded buffer is full, or
  `{:error, :closed}` after `close/1` or Python's `buf.close()`.
  """
  @spec write(t, iodata) :: :ok | {:error, :full | :closed}
  def write(%__MODULE__{ref: ref}, data) when is_binary(data) do
    case Py.Native.buffer_write(ref, data) do
      {:error, :not_binary} -> raise ArgumentError, not_bytes(data)
      result -> result
    end
  end

  def write(%__MODULE__{} = buffer, data) when is_list(data) do
    write(buffer, IO.iodata_to_binary(data))
  rescue
    ArgumentError -> raise ArgumentError, not_bytes(data)
  end

  def write(%__MODULE__{}, data), do: raise(ArgumentError, not_bytes(data))
  def write(other, _data), do: raise(ArgumentError, not_a_buffer(other))

  @doc """
  Ends the data: Python reads what is left, then `b""`. Idempotent.
  """
  @spec close(t) :: :ok
  def close(%__MODULE__{ref: ref}), do: Py.Native.buffer_close(ref)
  def close(other), do: raise(ArgumentError, not_a_buffer(other))

  defp not_bytes(data),
    do:
      "Py.Buffer.write/2 takes a binary or iodata (whole bytes), got: " <>
        inspect(data, limit: 5, printable_limit: 40)

  defp not_a_buffer(other),
    do: "expected a %Py.Buffer{} (made with Py.Buffer.new/1), got: #{inspect(other)}"
end
