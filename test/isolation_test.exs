defmodule Py.IsolationTest do
  # Contexts in an OS process of their own (`isolation: :os_process`):
  # the same calls as in-process, and crashes that end only that process.
  # Not async: the VM becomes a distributed node, and the crash tests
  # start and kill OS processes.
  use ExUnit.Case, async: false
  import Py.Test.Wait

  import ExUnit.CaptureIO
  import ExUnit.CaptureLog

  defp start_isolated!(opts \\ []) do
    start_supervised!({Py.Context, [isolation: :os_process] ++ opts},
      id: make_ref(),
      shutdown: 10_000
    )
  end

  defp os_pid(ctx), do: Py.Context.eval!(ctx, "__import__('os').getpid()")

  @tag timeout: 120_000
  test "Py.Context.ensure_distributed/0 makes a plain node distributed, once (in a VM of its own)" do
    script = """
    {:ok, _} = Application.ensure_all_started(:py)
    before = Node.alive?()
    first = Py.Context.ensure_distributed()
    name = node()
    second = Py.Context.ensure_distributed()
    IO.puts("result:" <> inspect({before, first, Node.alive?(), second, node() == name}))
    IO.puts("name:" <> Atom.to_string(name))
    IO.puts("cookie set:" <> inspect(Node.get_cookie() != :nocookie))
    """

    {output, status} = Py.Test.OwnVM.run(script)
    assert status == 0, output
    assert output =~ "result:{false, :ok, true, :ok, true}"
    assert output =~ ~r/name:py_\d+@127\.0\.0\.1/
    assert output =~ "cookie set:true"
  end

  describe "an isolated context" do
    test "runs Python in another OS process, with the usual calls" do
      ctx = start_isolated!()
      assert os_pid(ctx) != String.to_integer(System.pid())
      assert Py.Context.exec(ctx, "counter = 41") == :ok
      assert Py.Context.eval(ctx, "counter + 1") == {:ok, 42}
      assert Py.Context.call(ctx, :math, :sqrt, [16.0]) == {:ok, 4.0}
      assert Py.Context.eval(ctx, "x * 2", %{"x" => 21}) == {:ok, 42}
      payload = :crypto.strong_rand_bytes(100_000)
      assert Py.Context.call(ctx, :builtins, :bytes, [payload]) == {:ok, payload}

      assert {:error, %Py.Error{kind: :python, type: "ZeroDivisionError"}} =
               Py.Context.eval(ctx, "1 / 0")
    end

    test "print goes to the caller's group leader" do
      ctx = start_isolated!()

      assert capture_io(fn ->
               assert Py.Context.exec(ctx, "print('from the isolated process')") == :ok
             end) == "from the isolated process\n"
    end

    test "callbacks reach Elixir, and a callback can call the context again" do
      ctx = start_isolated!()
      Py.register_function(:iso_double, fn x -> x * 2 end)

      Py.register_function(:iso_reenter, fn x ->
        Py.Context.eval!(ctx, "base + #{x}")
      end)

      assert Py.Context.exec(ctx, "base = 100") == :ok

      assert Py.Context.eval(ctx, "__import__('erlang').call('iso_double', 21)") == {:ok, 42}
      assert Py.Context.eval(ctx, "__import__('erlang').call('iso_reenter', 5)") == {:ok, 105}

      assert {:error, %Py.Error{kind: :python, message: message}} =
               Py.Context.eval(ctx, "__import__('erlang').call('iso_double', 'a', 'b')")

      assert message =~ "ArithmeticError"

      # A function that ends its own process normally, without an answer.
      Py.register_function(:iso_quit, fn -> Process.exit(self(), :normal) end)

      assert {:error, %Py.Error{type: "erlang.Error", message: message}} =
               Py.Context.eval(ctx, "__import__('erlang').call('iso_quit')", %{}, timeout: 30_000)

      assert message =~ "iso_quit"
      assert message =~ "normal"
    after
      Py.unregister_function(:iso_double)
      Py.unregister_function(:iso_reenter)
      Py.unregister_function(:iso_quit)
    end

    test "Python's logging reaches this VM's Logger" do
      ctx = start_isolated!()

      log =
        capture_log(fn ->
          :ok =
            Py.Context.exec(
              ctx,
              "import logging; logging.getLogger('iso').warning('disk %s', 'full')"
            )
        end)

      assert log =~ "disk full"
    end

    test "erlang.self() is the calling process, and erlang.send reaches processes here" do
      ctx = start_isolated!()
      me = self()
      # Over the link, and through the stand-in (a call that prints).
      assert Py.Context.eval(ctx, "__import__('erlang').self()") == {:ok, me}

      capture_io(fn ->
        assert Py.Context.eval(ctx, "print('x') or __import__('erlang').self()") == {:ok, me}
      end)

      assert Py.Context.exec(ctx, "import erlang\nerlang.send(erlang.self(), ('hello', 1))") ==
               :ok

      assert_receive {"hello", 1}
      other = spawn_link(fn -> receive do: ({"py", m} -> send(me, {:got, m})) end)

      assert Py.Context.eval(ctx, "__import__('erlang').send(p, ('py', 2))", %{"p" => other}) ==
               {:ok, nil}

      assert_receive {:got, 2}
    end

    test "erlang.state_* is this VM's shared state" do
      ctx = start_isolated!()
      key = "iso_state_#{System.unique_integer([:positive])}"

      assert Py.Context.eval(ctx, "__import__('erlang').state_set(k, 41)", %{"k" => key}) ==
               {:ok, nil}

      assert Py.State.get(key) == 41

      assert Py.Context.eval(ctx, "__import__('erlang').state_incr(k, 1)", %{"k" => key}) ==
               {:ok, 42}

      Py.State.delete(key)
    end

    test "a timeout interrupts the call and the context goes on" do
      ctx = start_isolated!()

      assert {:error, %Py.Error{kind: :timeout}} =
               Py.Context.eval(ctx, "sum(1 for _ in iter(int, 1))", %{}, timeout: 200)

      assert Py.Context.eval(ctx, "1 + 1") == {:ok, 2}
    end

    test "objects stay in the isolated process, used through their handles" do
      ctx = start_isolated!()
      {:ok, obj} = Py.Context.eval(ctx, "{'a': [1, 2]}", %{}, return: :object)
      assert %Py.Object{type: "dict"} = obj
      assert Py.call_method(obj, :get, ["a"]) == {:ok, [1, 2]}
      assert inspect(obj) == "#Py.Object<{'a': [1, 2]}>"
      # As an argument to a call on its context.
      assert Py.Context.eval(ctx, "len(d)", %{"d" => obj}) == {:ok, 1}
      # Not usable anywhere else.
      other = start_isolated!()

      assert {:error, %Py.Error{kind: :conversion}} =
               Py.Context.eval(other, "len(d)", %{"d" => obj})

      # Nor channels and buffers, which live in this VM.
      assert {:error, %Py.Error{kind: :conversion, message: message}} =
               Py.Context.eval(ctx, "ch", %{"ch" => Py.Channel.new()})

      assert message =~ "Py.Channel or Py.Buffer"
    end

    test "a handle released on this node releases the object in the isolated process" do
      ctx = start_isolated!()
      {:ok, {_pid, {:isolated, iso}}} = Py.Context.handle(ctx)
      # Objects are kept under integer ids (the table also holds the link).
      kept = fn ->
        :erpc.call(iso.node, :ets, :select_count, [
          iso.table,
          [{{:"$1", :_}, [{:is_integer, :"$1"}], [true]}]
        ])
      end

      assert kept.() == 0

      holder =
        spawn(fn ->
          {:ok, _obj} = Py.Context.eval(ctx, "object()", %{}, return: :object)
          receive do: (:stop -> :ok)
        end)

      wait_until(fn -> kept.() == 1 end)
      ref = Process.monitor(holder)
      send(holder, :stop)
      assert_receive {:DOWN, ^ref, _, _, _}
      wait_until(fn -> kept.() == 0 end)
    end

    test "streams: a generator's items arrive in chunks from the isolated process" do
      ctx = start_isolated!()

      assert Py.stream_eval("(n * n for n in range(250))", %{}, context: ctx) |> Enum.to_list() ==
               Enum.map(0..249, &(&1 * &1))

      # Stopped early: the generator is closed there.
      assert Py.stream_eval("iter(range(10**9))", %{}, context: ctx) |> Enum.take(3) == [0, 1, 2]
    end

    test "plain calls go over the direct link; calls that print or return objects do not" do
      ctx = start_isolated!()
      test = self()

      caller =
        spawn(fn ->
          receive do: (:go -> :ok)

          send(
            test,
            {:results, Py.Context.call(ctx, :math, :sqrt, [4.0]),
             Py.Context.eval(ctx, "object()", %{}, return: :object)}
          )

          receive do: (:exit -> :ok)
        end)

      :erlang.trace(caller, true, [:receive])
      send(caller, :go)
      assert_receive {:results, {:ok, 2.0}, {:ok, %Py.Object{}}}, 10_000
      :erlang.trace(caller, false, [:receive])
      send(caller, :exit)
      received = collect_trace(caller, [])
      # The plain call's reply came over the link (picked up by the native
      # call itself, or as a :py_fast message), not from the stand-in.
      refute Enum.any?(received, &match?({_tag, :reply, {:ok, 2.0}}, &1))
      # The object came from the stand-in, which keeps it.
      assert Enum.any?(received, &match?({_tag, :reply, {:ok, {_marker, _id, "object"}}}, &1))
    end

    test "the active venv reaches isolated contexts, started before or after" do
      import Py.Test.VenvHelpers
      {venv, site} = make_venv!(Path.join(tmp_dir!("venv-isolated"), "venv"))
      probe = "py_iso_venv_probe_#{System.unique_integer([:positive])}"
      File.write!(Path.join(site, probe <> ".py"), "VALUE = 42\n")
      before = start_isolated!()

      try do
        assert :ok = Py.activate_venv(venv)
        after_ = start_isolated!()

        for ctx <- [before, after_] do
          assert Py.Context.eval(ctx, "__import__(m).VALUE", %{"m" => probe}) == {:ok, 42}
        end

        assert :ok = Py.deactivate_venv()

        assert {:error, %Py.Error{type: "ModuleNotFoundError"}} =
                 Py.Context.eval(before, "__import__(m + '_x').VALUE", %{"m" => probe})

        assert Py.Context.eval(before, "__import__('sys').prefix") ==
                 Py.eval("__import__('sys').prefix")
      after
        Py.deactivate_venv()
      end
    end

    test "node names are given back when a context stops: no new atom per start" do
      taken? = fn node ->
        [_, n] = Regex.run(~r/^py_isolated_(\d+)_/, Atom.to_string(node))
        :ets.member(Py.Isolated.Names, String.to_integer(n))
      end

      for _ <- 1..3 do
        {:ok, ctx} = Py.Context.start(isolation: :os_process)
        {:ok, {_, {:isolated, iso}}} = Py.Context.handle(ctx)
        assert taken?.(iso.node)
        :ok = Py.Context.stop(ctx)
        refute taken?.(iso.node)
      end
    end

    test "bad options raise ArgumentError" do
      for opts <- [
            [isolation: :threads],
            [isolation: :os_process, max_memory: -1],
            [isolation: :os_process, max_calls: :many],
            [max_memory: 1_000_000]
          ] do
        assert_raise ArgumentError, fn -> Py.Context.start_link(opts) end
      end
    end
  end

  defp collect_trace(pid, acc) do
    receive do
      {:trace, ^pid, :receive, message} -> collect_trace(pid, [message | acc])
    after
      0 -> acc
    end
  end

  describe "crashes" do
    @crashes [
      {"os._exit(0)", "__import__('os')._exit(0)", ~r/exited with status 0/},
      {"os._exit(1)", "__import__('os')._exit(1)", ~r/exited with status 1/},
      {"ctypes.string_at(0)", "__import__('ctypes').string_at(0)", ~r/signal 11 \(SIGSEGV\)/},
      {"os.abort()", "__import__('os').abort()", ~r/signal 6 \(SIGABRT\)/},
      {"kill -9 of itself", "__import__('os').kill(__import__('os').getpid(), 9)",
       ~r/signal 9 \(SIGKILL\)/},
      {"SIGINT", "__import__('signal').raise_signal(__import__('signal').SIGINT)",
       ~r/signal 2 \(SIGINT\)/}
    ]

    setup do
      # A neighbour: another isolated context with state of its own, which
      # must not notice.
      neighbour = start_isolated!()
      :ok = Py.Context.exec(neighbour, "kept = 'still here'")
      %{neighbour: neighbour}
    end

    for {name, code, reason} <- @crashes do
      test "#{name}: the caller gets :crashed, the context restarts, nothing else notices",
           %{neighbour: neighbour} do
        ctx = start_isolated!()
        :ok = Py.Context.exec(ctx, "state = 1")
        {:ok, object} = Py.Context.eval(ctx, "[1, 2]", %{}, return: :object)
        before = os_pid(ctx)

        log =
          capture_log(fn ->
            assert {:error, %Py.Error{kind: :crashed, message: message}} =
                     Py.Context.eval(ctx, unquote(code))

            assert message =~ unquote(Macro.escape(reason))
            assert message =~ "OS pid #{before}"
          end)

        assert log =~ "crashed"
        # This VM answers, in-process Python too.
        assert Py.eval("1 + 1") == {:ok, 2}
        # The context answers again, with a fresh interpreter.
        assert Py.Context.eval(ctx, "2 + 2") == {:ok, 4}
        assert os_pid(ctx) != before
        assert {:error, %Py.Error{type: "NameError"}} = Py.Context.eval(ctx, "state")
        # Objects from before are dead handles, with an error that says so.
        assert {:error, %Py.Error{kind: :conversion, message: dead}} =
                 Py.call_method(object, :count, [1])

        assert dead =~ "restarted"
        assert Py.Context.eval(neighbour, "kept") == {:ok, "still here"}
      end
    end

    test "b'x' * 10**10 under max_memory: 512 MB raises MemoryError", %{neighbour: neighbour} do
      ctx = start_isolated!(max_memory: 512_000_000)

      assert {:error, %Py.Error{kind: :python, type: "MemoryError"}} =
               Py.Context.eval(ctx, "len(b'x' * 10**10)")

      assert Py.Context.eval(ctx, "len(b'x' * 10**6)") == {:ok, 1_000_000}
      assert Py.Context.eval(neighbour, "kept") == {:ok, "still here"}
    end

    test "unbounded recursion with the limit at 10**9 ends in an error, not in the VM",
         %{neighbour: neighbour} do
      ctx = start_isolated!(max_memory: 200_000_000)

      code = """
      import sys
      sys.setrecursionlimit(10**9)
      def f(n):
          return f(n + 1)
      f(0)
      """

      capture_log(fn ->
        # Python 3.12+ overflow the C stack (a crash); 3.10 and 3.11 keep
        # their frames on the heap until memory runs out.
        assert {:error, %Py.Error{kind: kind} = error} = Py.Context.exec(ctx, code)

        assert kind == :crashed or
                 error.type in ["MemoryError", "RecursionError", "SystemError"],
               inspect(error)
      end)

      assert Py.eval("1 + 1") == {:ok, 2}
      assert Py.Context.eval(ctx, "2 + 2") == {:ok, 4}
      assert Py.Context.eval(neighbour, "kept") == {:ok, "still here"}
    end

    test "a crash emits [:py, :context, :crashed]" do
      ctx = start_isolated!()
      test = self()
      id = {__MODULE__, :crash}

      Py.Telemetry.attach(id, [:py, :context, :crashed], fn event, measurements, meta, _ ->
        send(test, {:event, event, measurements, meta})
      end)

      capture_log(fn -> Py.Context.eval(ctx, "__import__('os')._exit(3)") end)
      assert_receive {:event, [:py, :context, :crashed], %{count: 1}, meta}
      assert meta.context == ctx
      assert meta.reason =~ "exited with status 3"
    after
      Py.Telemetry.detach({__MODULE__, :crash})
    end

    test "max_calls replaces the process after n calls, without losing a call" do
      ctx = start_isolated!(max_calls: 3)
      pids = for _ <- 1..9, do: os_pid(ctx)
      assert length(pids) == 9
      assert pids |> Enum.uniq() |> length() >= 3
      assert pids |> Enum.chunk_every(3) |> Enum.all?(&(length(Enum.uniq(&1)) == 1))
    end
  end

  describe "an isolated pool" do
    test "1,000 calls from 100 processes, one member killed from outside: one answer each" do
      name = :"iso_pool_#{System.unique_integer([:positive])}"
      start_supervised!({Py.Pool, name: name, size: 4, isolation: :os_process})
      test = self()

      # Each process defines a name in its own namespace, then makes 10 calls.
      callers =
        for i <- 1..100 do
          spawn_link(fn ->
            for j <- 1..10 do
              result =
                Py.eval("__import__('time').sleep(0.002) or #{i * 100 + j}", %{}, pool: name)

              send(test, {:answer, i, j, result})
            end
          end)
        end

      assert length(callers) == 100
      # Kill one member's OS process when a third of the answers are in.
      answers = collect(300, [])

      [{_pid, {:isolated, iso}} | _] = for handle <- Py.Pool.handles(name), do: handle

      {_, 0} = System.cmd("kill", ["-9", Integer.to_string(iso.os_pid)])
      answers = collect(700, answers)

      assert length(answers) == 1_000
      assert answers |> Enum.map(fn {i, j, _} -> {i, j} end) |> Enum.uniq() |> length() == 1_000

      for {i, j, result} <- answers do
        case result do
          {:ok, value} -> assert value == i * 100 + j
          {:error, %Py.Error{kind: :crashed}} -> :ok
          other -> flunk("unexpected answer: #{inspect(other)}")
        end
      end

      refute_received {:answer, _, _, _}
    end
  end

  describe "routes" do
    test "a module routed to an isolated pool runs there" do
      name = :"iso_routed_#{System.unique_integer([:positive])}"
      start_supervised!({Py.Pool, name: name, size: 1, isolation: :os_process})
      Py.Router.route("getpass", name)

      try do
        {:ok, user} = Py.call(:getpass, :getuser, [])
        assert is_binary(user)
        # getpass ran in the isolated process: only it imported the module.
        [{pid, _}] = Py.Pool.handles(name)
        assert Py.Context.eval(pid, "'getpass' in __import__('sys').modules") == {:ok, true}
        assert Py.call(:os, :getpid, [], pool: name) != {:ok, String.to_integer(System.pid())}
      after
        Py.Router.unroute("getpass")
      end
    end
  end

  defp collect(0, acc), do: acc

  defp collect(n, acc) do
    receive do
      {:answer, i, j, result} -> collect(n - 1, [{i, j, result} | acc])
    after
      60_000 -> flunk("a caller did not answer (#{length(acc)} answers in)")
    end
  end
end
