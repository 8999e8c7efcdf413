defmodule Py.MemoryTest do
  # Not async: switches the collector and tracemalloc of a whole interpreter.
  use ExUnit.Case, async: false

  test "stats describe the interpreter's collector and memory" do
    assert {:ok, stats} = Py.Memory.stats()
    assert stats.gc_enabled == true
    assert [_, _, _] = stats.gc_counts
    assert [t0, _, _] = stats.gc_thresholds
    assert t0 > 0
    assert [%{collections: _, collected: _, uncollectable: _} | _] = stats.gc_generations
    assert stats.allocated_blocks > 1000
    assert stats.rss_bytes > 0 and stats.peak_rss_bytes > 0

    if Py.info().mode == :parallel do
      # CPython has no tracemalloc in sub-interpreters.
      assert stats.tracemalloc == nil
    else
      assert %{tracing: false} = stats.tracemalloc
    end
  end

  test "gc_collect collects reference cycles and says how many" do
    :ok = Py.exec("import gc; gc.disable()")

    try do
      {:ok, _} = Py.Memory.gc_collect()

      :ok =
        Py.exec("""
        class Node:
            pass
        for _ in range(200):
            n = Node()
            n.me = n
        del n
        """)

      {:ok, before} = Py.Memory.stats()
      assert {:ok, collected} = Py.Memory.gc_collect()
      assert collected >= 200
      {:ok, after_} = Py.Memory.stats()
      assert after_.allocated_blocks < before.allocated_blocks
      assert {:ok, _} = Py.Memory.gc_collect(0)
    after
      Py.exec("import gc; gc.enable()")
    end

    assert_raise ArgumentError, ~r/generation must be 0, 1 or 2/, fn ->
      Py.Memory.gc_collect(3)
    end
  end

  test "tracemalloc: start, the top allocation sites, stop" do
    # tracemalloc lives in the main interpreter only.
    {:ok, ctx} = Py.Context.start_link(interpreter: :main)
    on = [context: ctx]
    assert {:error, %Py.Error{message: message}} = Py.Memory.tracemalloc_snapshot(on)
    assert message =~ "tracemalloc_start"

    :ok = Py.Memory.tracemalloc_start(1, on)

    try do
      :ok =
        Py.Context.exec(ctx, """
        exec(compile("kept = [bytearray(1000) for _ in range(2000)]", "big_alloc.py", "exec"))
        """)

      assert {:ok, %{tracemalloc: %{tracing: true, current_bytes: current}}} = Py.Memory.stats(on)

      assert current >= 2_000_000

      assert {:ok, %{total_bytes: total, top: top}} =
               Py.Memory.tracemalloc_snapshot([top: 3] ++ on)

      assert total >= 2_000_000
      assert length(top) <= 3
      assert [%{file: "big_alloc.py", line: 1, size: size, count: count} | _] = top
      assert size >= 2_000_000 and count >= 2000

      assert {:ok, %{top: [%{file: "big_alloc.py", line: 0}]}} =
               Py.Memory.tracemalloc_snapshot([top: 1, group_by: :file] ++ on)
    after
      assert Py.Memory.tracemalloc_stop(on) == :ok
    end

    assert {:ok, %{tracemalloc: %{tracing: false}}} = Py.Memory.stats(on)
    Py.Context.stop(ctx)

    assert_raise ArgumentError, ~r/:group_by/, fn ->
      Py.Memory.tracemalloc_snapshot(group_by: :module)
    end
  end

  @tag :parallel
  test "in a parallel pool slot, tracemalloc says to use the main interpreter" do
    assert {:error, %Py.Error{message: message}} = Py.Memory.tracemalloc_start()
    assert message =~ "interpreter: :main"
  end

  test "each function runs in the interpreter of the given context" do
    {:ok, ctx} = Py.Context.start_link()
    :ok = Py.Context.exec(ctx, "import gc; gc.set_threshold(1234)")

    try do
      assert {:ok, %{gc_thresholds: [1234 | _]}} = Py.Memory.stats(context: ctx)
      assert {:ok, n} = Py.Memory.gc_collect(2, context: ctx)
      assert is_integer(n)
    after
      Py.Context.exec(ctx, "import gc; gc.set_threshold(700)")
      Py.Context.stop(ctx)
    end
  end
end
