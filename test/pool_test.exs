defmodule Py.PoolTest do
  use ExUnit.Case, async: true

  test "a process sees its own namespace; another process never does" do
    :ok = Py.exec("mine = 'first process'")
    assert Py.eval("mine") == {:ok, "first process"}

    other =
      Task.async(fn ->
        {Py.eval("mine"), Py.exec("mine = 'second'"), Py.eval("mine")}
      end)

    assert {{:error, %Py.Error{type: "NameError"}}, :ok, {:ok, "second"}} = Task.await(other)
    assert Py.eval("mine") == {:ok, "first process"}
  end

  test "1,000 processes x 100 calls: every answer correct, none missing" do
    results =
      1..1000
      |> Enum.map(fn p ->
        Task.async(fn ->
          for i <- 1..100 do
            {:ok, sum} = Py.call(:operator, :add, [p, i])
            sum == p + i
          end
        end)
      end)
      |> Enum.flat_map(&Task.await(&1, 60_000))

    assert length(results) == 100_000
    assert Enum.all?(results)
  end

  test "bind/1 routes a process's calls to a chosen context; unbind/0 drops it" do
    {:ok, ctx} = Py.Context.start_link()
    :ok = Py.Context.exec(ctx, "where = 'explicit'")

    task =
      Task.async(fn ->
        :ok = Py.bind(ctx)
        bound = Py.eval("where")
        :ok = Py.unbind()
        {bound, Py.eval("where")}
      end)

    assert {{:ok, "explicit"}, {:error, %Py.Error{type: "NameError"}}} = Task.await(task)
  end

  test "binding to something that is not a context is an error" do
    assert {:error, %Py.Error{kind: :closed}} = Py.bind(:no_such_context)
  end

  test "a process namespace is released when the process drops its binding" do
    {:ok, ctx} = Py.Context.start_link()

    :ok =
      Py.Context.exec(ctx, """
      import sys, types
      tracked_mod = types.ModuleType("tracked_mod")
      exec(
          "class Tracked:\\n"
          "    alive = 0\\n"
          "    def __init__(self):\\n"
          "        Tracked.alive += 1\\n"
          "    def __del__(self):\\n"
          "        Tracked.alive -= 1\\n",
          tracked_mod.__dict__,
      )
      sys.modules["tracked_mod"] = tracked_mod
      """)

    task =
      Task.async(fn ->
        # A private namespace on our context, as a pool binding would make.
        {:ok, {_pid, native} = handle} = Py.Context.handle(ctx)
        Process.put(:"$py_binding", {handle, Py.Native.namespace_new(native), :pool})
        :ok = Py.exec("from tracked_mod import Tracked\nkeep = Tracked()")
        alive = Py.eval("Tracked.alive")
        :ok = Py.unbind()
        :erlang.garbage_collect()
        alive
      end)

    assert Task.await(task) == {:ok, 1}
    # The BEAM frees the namespace's handle as the task's process ends, which
    # may be a moment after its reply; then the release is queued to the
    # context. (Since 3.13 the namespace can sit in a reference cycle, so
    # let the cycle collector run.)
    assert released?(ctx, 200)
  end

  defp released?(_ctx, 0), do: false

  defp released?(ctx, tries) do
    :ok = Py.Context.exec(ctx, "import gc\ngc.collect()")

    case Py.Context.eval(ctx, "tracked_mod.Tracked.alive") do
      {:ok, 0} -> true
      {:ok, 1} -> receive(after: (25 -> released?(ctx, tries - 1)))
    end
  end
end
