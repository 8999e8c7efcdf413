defmodule Py.Test.Contexts do
  @moduledoc false
  # Contexts for tests that must reach every interpreter.

  @doc """
  Started (and linked) contexts, one per parallel-pool slot (they go to the
  slots round robin), at least two: in a worker build they are separate
  threads of the main interpreter.
  """
  def one_per_interpreter do
    for _ <- 1..max(Py.Native.slot_count(), 2) do
      {:ok, ctx} = Py.Context.start_link()
      ctx
    end
  end
end
