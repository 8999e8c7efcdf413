defmodule Py.SelfHealingTest do
  # A caller that dies cancels its job; a context stuck in C is avoided by
  # new bindings at once and retired after its grace period. Not async: a
  # stuck parallel-pool slot holds up every context on it until it is
  # replaced, the default pool's too.
  use ExUnit.Case, async: false

  import ExUnit.CaptureLog

  # A module of its own in the context's interpreter, so that call, stream
  # and async_call can all name it. `slow` tells `pid` it started, then
  # loops in Python for ~3 s and only then leaves its mark in `path`.
  @module """
  import sys, time, types, erlang
  m = types.ModuleType("py_heal_test")
  def slow(pid, path):
      erlang.send(pid, "started")
      for _ in range(300):
          time.sleep(0.01)
      with open(path, "w") as f:
          f.write("done")
      return "finished"
  def slow_gen(pid, path):
      yield 1
      yield from [slow(pid, path)]
  m.slow = slow
  m.slow_gen = slow_gen
  sys.modules["py_heal_test"] = m
  """

  setup do
    {:ok, ctx} = Py.Context.start_link()
    :ok = Py.Context.exec(ctx, @module)
    path = Path.join(System.tmp_dir!(), "py-heal-#{System.unique_integer([:positive])}")
    on_exit(fn -> File.rm(path) end)
    %{ctx: ctx, path: path}
  end

  # Runs `fun` in a process, waits until Python says the slow part started,
  # kills the process, and checks that the job stopped: the next call on
  # the context runs only after it (one job at a time on the context's
  # thread), so had the job gone on, its mark would be there by then.
  defp kill_mid_call(%{ctx: ctx, path: path}, fun) do
    me = self()
    caller = spawn(fn -> fun.(me) end)
    assert_receive "started", 10_000
    Process.exit(caller, :kill)
    assert Py.Context.eval(ctx, "1 + 1") == {:ok, 2}
    refute File.exists?(path), "the job went on after its caller died"
  end

  describe "a caller that dies mid-call stops its job" do
    test "a call", ctx do
      kill_mid_call(ctx, fn me ->
        Py.call(:py_heal_test, :slow, [me, ctx.path], context: ctx.ctx, timeout: :infinity)
      end)
    end

    test "a stream", ctx do
      kill_mid_call(ctx, fn me ->
        Py.stream(:py_heal_test, :slow_gen, [me, ctx.path],
          context: ctx.ctx,
          chunk_size: 1,
          timeout: :infinity
        )
        |> Enum.to_list()
      end)
    end

    test "an async call, with the process that awaits it", ctx do
      kill_mid_call(ctx, fn me ->
        task =
          Py.async_call(:py_heal_test, :slow, [me, ctx.path],
            context: ctx.ctx,
            timeout: :infinity
          )

        Py.await(task, :infinity)
      end)
    end

    test "the context serves other callers meanwhile and after", ctx do
      kill_mid_call(ctx, fn me ->
        Py.call(:py_heal_test, :slow, [me, ctx.path], context: ctx.ctx, timeout: :infinity)
      end)

      assert Py.Context.call(ctx.ctx, :py_heal_test, :slow, [self(), ctx.path <> ".2"],
               timeout: 10_000
             ) ==
               {:ok, "finished"}

      assert_receive "started"
      File.rm(ctx.path <> ".2")
    end
  end

  describe "a context stuck in C" do
    setup do
      pool = :"py_heal_#{System.unique_integer([:positive])}"
      start_supervised!({Py.Pool, name: pool, size: 2, retire_after: 300})
      me = self()
      id = {__MODULE__, pool}

      :ok =
        Py.Telemetry.attach(id, [:py, :context, :retired], fn _event, measures, meta, _ ->
          send(me, {:retired, measures, meta})
        end)

      on_exit(fn -> Py.Telemetry.detach(id) end)
      %{pool: pool}
    end

    test "is avoided at once: 100 fresh callers all succeed; then it is retired and healed",
         %{pool: pool} do
      retired_before = Py.info().retired

      # time.sleep does not return to Python until it is over: interrupts
      # cannot reach it.
      stuck =
        Task.async(fn ->
          {Py.eval("__import__('time').sleep(1e9)", %{}, pool: pool, timeout: 200),
           Process.get(:"$py_binding")}
        end)

      log =
        capture_log(fn ->
          assert {{:error, %Py.Error{kind: :timeout}}, _} = Task.await(stuck)

          results =
            1..100
            |> Enum.map(fn i ->
              Task.async(fn -> Py.eval("x * 2", %{x: i}, pool: pool, timeout: 5_000) end)
            end)
            |> Enum.map(&Task.await(&1, 10_000))

          assert results == Enum.map(1..100, &{:ok, &1 * 2})

          assert_receive {:retired, %{count: 1, stuck_ms: 300}, %{pool: ^pool} = meta}, 10_000
          assert is_pid(meta.context) and meta.index in [0, 1]
        end)

      assert log =~ "did not return 300 ms after it was interrupted"
      assert Py.info().retired == retired_before + 1

      # Both contexts of the pool answer again, each on a live thread.
      for {pid, _ref} <- Py.Pool.handles(pool) do
        assert Py.Context.eval(pid, "sum(range(10))") == {:ok, 45}
      end
    end

    test "calls queued behind the stuck one run elsewhere; a bound process is moved and told",
         %{pool: pool} do
      me = self()

      # One process bound to a context that then gets stuck, with a name in
      # its namespace and a second call queued behind the stuck one.
      bound =
        spawn(fn ->
          :ok = Py.exec("mine = 1", pool: pool)
          send(me, {:bound, Process.get({:"$py_binding", pool})})

          receive do
            :go -> send(me, {:queued, Py.eval("'mine' in globals()", %{}, pool: pool)})
          end
        end)

      assert_receive {:bound, {{context, _ref}, _ns, :pool}}

      log =
        capture_log(fn ->
          # Stuck on the same context (calls by pid use its globals).
          stuck =
            Task.async(fn ->
              Py.Context.eval(context, "__import__('time').sleep(1e9)", %{}, timeout: 200)
            end)

          assert {:error, %Py.Error{kind: :timeout}} = Task.await(stuck)
          send(bound, :go)
          assert_receive {:retired, _, %{context: ^context}}, 10_000
          # The queued call never ran on the stuck thread: it ran on a
          # healthy context, in a fresh namespace.
          assert_receive {:queued, {:ok, false}}, 10_000
        end)

      assert log =~ "fresh Python namespace"
    end
  end
end
