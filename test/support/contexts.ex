defmodule Py.Test.Contexts do
  @moduledoc false
  # Contexts for tests that must reach every interpreter.

  @doc """
  Started (and linked) contexts, one per parallel-pool slot, at least two:
  in a worker build they are separate threads of the main interpreter.

  Contexts go to the slots round robin, but async tests start contexts at
  the same time, so `slots` starts in a row can land twice on one slot:
  this keeps starting until every slot has one (the extra contexts end
  with the test process).
  """
  def one_per_interpreter do
    case Py.Native.slot_count() do
      slots when slots < 2 -> [start!(), start!()]
      slots -> slots |> by_interpreter() |> Map.values()
    end
  end

  @doc "The map of interpreter id => a started context on it, one per slot."
  def by_interpreter(slots \\ Py.Native.slot_count()) do
    Enum.reduce_while(1..(16 * slots), %{}, fn _, seen ->
      ctx = start!()
      seen = Map.put_new(seen, interpreter_id(ctx), ctx)
      if map_size(seen) == slots, do: {:halt, seen}, else: {:cont, seen}
    end)
    |> case do
      seen when map_size(seen) == slots ->
        seen

      seen ->
        raise "started #{16 * slots} contexts and reached only #{map_size(seen)} of #{slots} slots"
    end
  end

  defp start! do
    {:ok, ctx} = Py.Context.start_link()
    ctx
  end

  defp interpreter_id(ctx) do
    Py.Context.eval!(ctx, "__import__('_interpreters').get_current()[0]")
  end
end
