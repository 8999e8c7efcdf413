defmodule Py.Install.Output do
  @moduledoc false
  # Where an installer's output goes: to the user as it arrives (the
  # caller's group leader, so IEx, Livebook and Mix.install show it), and
  # the last part kept for the error message if the installer fails.

  @keep 16_384

  defstruct device: nil, tail: ""

  @doc "An output that writes to `device` (nil: write nothing) and keeps a tail."
  def new(device), do: %__MODULE__{device: device}

  @doc "The kept text: the last lines written, trimmed."
  def tail(%__MODULE__{tail: tail}), do: String.trim(tail)

  @doc false
  def add(%__MODULE__{device: device, tail: tail} = output, chunk) do
    if device, do: IO.write(device, chunk)
    tail = tail <> chunk
    size = byte_size(tail)
    %{output | tail: if(size > @keep, do: cut(tail, size), else: tail)}
  end

  # Keeps the last @keep bytes, from a line start (never mid-character).
  defp cut(tail, size) do
    kept = binary_part(tail, size - @keep, @keep)

    case :binary.split(kept, "\n") do
      [_partial, rest] -> rest
      [_] -> ""
    end
  end

  defimpl Collectable do
    def into(output) do
      collector = fn
        acc, {:cont, chunk} -> Py.Install.Output.add(acc, IO.iodata_to_binary(chunk))
        acc, :done -> acc
        _acc, :halt -> :ok
      end

      {output, collector}
    end
  end
end
