defmodule Py.CallbackTest do
  # Not async: registered functions are VM-wide.
  use ExUnit.Case, async: false

  setup do
    Py.register_function(:double, fn x -> 2 * x end)
    Py.register_function("add", fn a, b -> a + b end)
    Py.register_function(:upcase, String, :upcase)
    Py.register_function(:boom, fn -> raise ArgumentError, "bad things" end)
    Py.register_function(:thrower, fn -> throw(:ball) end)
    :ok
  end

  test "the three calling styles" do
    :ok = Py.exec("import erlang\nfrom erlang import double")
    assert Py.eval("double(21)") == {:ok, 42}
    assert Py.eval("erlang.double(4)") == {:ok, 8}
    assert Py.eval("erlang.call('add', 2, 3)") == {:ok, 5}
    assert Py.eval("erlang.upcase('abc')") == {:ok, "ABC"}
  end

  test "a call's sequential callbacks share one process, which ends with the call" do
    Py.register_function(:whoami, fn -> self() end)
    me = self()

    assert {:ok, [pid, pid, pid]} = Py.eval("[__import__('erlang').whoami() for _ in range(3)]")

    assert is_pid(pid) and pid != me
    ref = Process.monitor(pid)
    assert_receive {:DOWN, ^ref, :process, ^pid, _}, 5_000
  end

  test "a callback process ends with its dead caller even if its code took the caller's DOWN" do
    test_pid = self()

    Py.register_function(:swallow, fn ->
      send(test_pid, {:serving, self()})
      # Takes whatever comes first: the DOWN of the caller, killed meanwhile.
      receive do
        _ -> :ok
      end
    end)

    caller = spawn(fn -> Py.eval("__import__('erlang').swallow()") end)
    assert_receive {:serving, worker}, 5_000
    ref = Process.monitor(worker)
    Process.exit(caller, :kill)
    assert_receive {:DOWN, ^ref, :process, ^worker, _}, 5_000
  end

  test "arguments and results convert as everywhere else" do
    Py.register_function(:echo, fn x -> x end)
    value = %{"list" => [1, 2.5, nil], "tuple" => {1, "two"}, "set" => MapSet.new([1])}
    assert Py.eval("__import__('erlang').echo(v)", %{v: value}) == {:ok, value}
    Py.register_function(:all_args, fn args -> args end)
    assert Py.eval("__import__('erlang').all_args(1, 2, 3)") == {:ok, [1, 2, 3]}
  end

  test "an Elixir exception becomes erlang.Error, which Python can catch" do
    code = """
    import erlang
    try:
        erlang.boom()
        caught = None
    except erlang.Error as e:
        caught = str(e)
    """

    :ok = Py.exec(code)
    {:ok, caught} = Py.eval("caught")
    assert caught =~ "ArgumentError"
    assert caught =~ "bad things"
  end

  test "uncaught, it reaches the Elixir caller with the Python traceback" do
    :ok = Py.exec("import erlang\ndef risky():\n    return erlang.thrower()")

    assert {:error, %Py.Error{type: "erlang.Error", message: msg, traceback: tb}} =
             Py.eval("risky()")

    assert msg =~ ":ball"
    assert tb =~ "in risky"
  end

  test "unknown names raise a Python exception naming them" do
    assert {:error, %Py.Error{type: "erlang.UnknownFunctionError", message: msg}} =
             Py.eval("__import__('erlang').call('no_such_fun', 1)")

    assert msg =~ "no_such_fun"

    assert {:error, %Py.Error{type: "ImportError", message: import_msg}} =
             Py.exec("from erlang import not_registered_either")

    assert import_msg =~ "not_registered_either"

    assert {:error, %Py.Error{type: "AttributeError", message: attr_msg}} =
             Py.eval("__import__('erlang').missing_too()")

    assert attr_msg =~ "missing_too"
  end

  test "a Python -> Elixir -> Python chain 20 deep returns the right value" do
    :ok =
      Py.exec("import erlang\ndef level(n):\n    return 0 if n == 0 else erlang.down(n - 1) + 1")

    Py.register_function(:down, fn n -> Py.eval!("level(n)", %{n: n}) end)
    assert Py.eval("level(20)") == {:ok, 20}
  end

  test "reentrancy on an explicit context, 20 deep" do
    {:ok, ctx} = Py.Context.start_link()

    :ok =
      Py.Context.exec(
        ctx,
        "import erlang\ndef level(n):\n    return 0 if n == 0 else erlang.ctx_down(n - 1) + 1"
      )

    Py.register_function(:ctx_down, fn n -> Py.Context.eval!(ctx, "level(n)", %{n: n}) end)
    assert Py.Context.eval(ctx, "level(20)") == {:ok, 20}
  end

  test "callbacks nest 1,000 deep (400 on 3.12); past the limit it is a RecursionError" do
    {:ok, ctx} = Py.Context.start_link()

    :ok =
      Py.Context.exec(
        ctx,
        "import erlang, sys\ndef level(n):\n    return 0 if n == 0 else erlang.deep_down(n - 1) + 1"
      )

    Py.register_function(:deep_down, fn n -> Py.Context.eval!(ctx, "level(n)", %{n: n}) end)
    # Three Python frames a level: the default limit (1,000) ended this
    # near 330 levels. CPython 3.12 also has a fixed C recursion limit
    # (1,500, three a level), which ends it near 490 (docs/callbacks.md).
    assert Py.Context.eval(ctx, "sys.getrecursionlimit()") == {:ok, 5000}
    deep = if String.starts_with?(Py.info().python_version, "3.12."), do: 400, else: 1000
    assert Py.Context.eval(ctx, "level(#{deep})", %{}, timeout: 120_000) == {:ok, deep}

    # Past the limit (lowered here, so the failure is cheap to build): an
    # error that names RecursionError, and the context goes on.
    :ok = Py.Context.exec(ctx, "sys.setrecursionlimit(200)")

    try do
      assert {:error, %Py.Error{type: "erlang.Error", message: message}} =
               Py.Context.eval(ctx, "level(100)", %{}, timeout: 120_000)

      assert message =~ "RecursionError"
    after
      :ok = Py.Context.exec(ctx, "sys.setrecursionlimit(5000)")
    end

    assert Py.Context.eval(ctx, "level(20)") == {:ok, 20}
  end

  test "erlang.send sends messages; erlang.self is the caller; pids are dict keys" do
    me = self()
    :ok = Py.exec("import erlang")
    assert Py.eval("erlang.send(p, ('hello', [1, 2]))", %{p: me}) == {:ok, nil}
    assert_receive {"hello", [1, 2]}
    assert Py.eval("erlang.self()") == {:ok, me}
    assert Py.eval("{erlang.self(): 'me'}[p]", %{p: me}) == {:ok, "me"}
    dead = spawn(fn -> :ok end)
    ref = Process.monitor(dead)
    assert_receive {:DOWN, ^ref, _, _, _}
    assert Py.eval("erlang.send(p, 'anyone?')", %{p: dead}) == {:ok, nil}
  end

  test "a callback that never answers: the call times out and the context recovers" do
    Py.register_function(:hang, fn -> Process.sleep(:infinity) end)
    {:ok, ctx} = Py.Context.start_link()

    assert {:error, %Py.Error{kind: :timeout}} =
             Py.Context.eval(ctx, "__import__('erlang').hang()", %{}, timeout: 300)

    # Nothing of the call is left in the mailbox (its deadline timer either).
    assert Process.info(self(), :messages) == {:messages, []}

    assert Py.Context.eval(ctx, "1 + 1") == {:ok, 2}
    assert Py.Context.eval(ctx, "__import__('erlang').double(5)") == {:ok, 10}
  end

  test "a caller that traps exits gets no exit messages from its callbacks" do
    Process.flag(:trap_exit, true)
    Py.register_function(:ident, fn x -> x end)
    assert Py.eval("[__import__('erlang').ident(i) for i in range(3)]") == {:ok, [0, 1, 2]}
    assert Process.info(self(), :messages) == {:messages, []}
  end

  describe "a callback process that exits by a signal" do
    # Each returns the erlang.Error text Python caught, in a caller that
    # must survive (it used to be linked to the callback process).
    defp caught(code) do
      Py.exec("""
      import erlang
      def catch_exit(f):
          try:
              f()
              return None
          except erlang.Error as e:
              return str(e)
      """)

      Py.eval(code)
    end

    test "Process.exit(self(), :kill) inside the function" do
      Py.register_function(:suicide, fn -> Process.exit(self(), :kill) end)
      assert {:ok, message} = caught("catch_exit(erlang.suicide)")
      assert message =~ "suicide"
      assert message =~ "killed"
      assert Py.eval("erlang.double(4)") == {:ok, 8}
      assert Process.info(self(), :messages) == {:messages, []}
    end

    test "killed from outside, uncaught in Python" do
      test = self()

      Py.register_function(:wait_for_kill, fn ->
        send(test, {:callback_pid, self()})
        Process.sleep(:infinity)
      end)

      task = Task.async(fn -> Py.eval("__import__('erlang').wait_for_kill()") end)
      assert_receive {:callback_pid, pid}, 5_000
      Process.exit(pid, :kill)

      assert {:error, %Py.Error{type: "erlang.Error", message: message}} = Task.await(task)
      assert message =~ "killed"
    end

    test "killed from outside while serving a later callback of the call" do
      test = self()
      Py.register_function(:first_of_two, fn -> self() end)

      Py.register_function(:wait_for_kill, fn ->
        send(test, {:callback_pid, self()})
        Process.sleep(:infinity)
      end)

      code = "[__import__('erlang').first_of_two(), __import__('erlang').wait_for_kill()]"
      task = Task.async(fn -> Py.eval(code) end)
      # The call's second callback runs in the process that ran its first.
      assert_receive {:callback_pid, pid}, 5_000
      Process.exit(pid, :kill)

      assert {:error, %Py.Error{type: "erlang.Error", message: message}} = Task.await(task)
      assert message =~ "wait_for_kill"
      assert message =~ "killed"
      assert Py.eval("__import__('erlang').double(4)") == {:ok, 8}
    end

    test "Process.exit(self(), :normal) inside the function, first or later in a call" do
      Py.register_function(:quit, fn -> Process.exit(self(), :normal) end)
      assert {:ok, message} = caught("catch_exit(erlang.quit)")
      assert message =~ "quit"
      assert message =~ "normal"

      # The later one was sent straight to the process that ran the first.
      assert {:ok, [8, message]} = caught("[erlang.double(4), catch_exit(erlang.quit)]")
      assert message =~ "quit"
      assert Py.eval("erlang.double(4)") == {:ok, 8}
    end

    test "a linked process crashing, with a caller that traps exits" do
      Process.flag(:trap_exit, true)

      Py.register_function(:linked_crash, fn ->
        spawn_link(fn -> exit(:linked_failure) end)
        Process.sleep(:infinity)
      end)

      assert {:ok, message} = caught("catch_exit(erlang.linked_crash)")
      assert message =~ "linked_failure"
      assert Process.info(self(), :messages) == {:messages, []}
    end

    test "on an explicit context, nested in another callback" do
      {:ok, ctx} = Py.Context.start_link()
      Py.register_function(:suicide2, fn -> Process.exit(self(), :kill) end)

      Py.register_function(:outer, fn ->
        Py.Context.eval!(ctx, "catch_exit(__import__('erlang').suicide2)")
      end)

      :ok =
        Py.Context.exec(ctx, """
        import erlang
        def catch_exit(f):
            try:
                f()
            except erlang.Error as e:
                return str(e)
        """)

      assert {:ok, message} = Py.Context.eval(ctx, "erlang.outer()")
      assert message =~ "killed"
    end
  end

  test "a call's later callbacks go straight to the process that ran its first" do
    test = self()
    Py.register_function(:report, fn -> :ok end)

    caller =
      spawn(fn ->
        receive do
          :go ->
            erlang = "__import__('erlang')"
            send(test, {:result, Py.eval("[#{erlang}.report() for _ in range(3)]")})
        end

        receive do
          :done -> :ok
        end
      end)

    # Every message the calling process takes is traced to this one.
    1 = :erlang.trace(caller, true, [:receive])
    send(caller, :go)
    assert_receive {:result, {:ok, ["ok", "ok", "ok"]}}, 5_000
    ref = :erlang.trace_delivered(caller)
    assert_receive {:trace_delivered, ^caller, ^ref}, 5_000
    send(caller, :done)

    # Only the first of the three came through the caller.
    assert [_first] = callback_requests_taken(caller)
  end

  defp callback_requests_taken(caller) do
    receive do
      {:trace, ^caller, :receive, {_tag, :callback, _handle, _name, _args}} = request ->
        [request | callback_requests_taken(caller)]
    after
      0 -> []
    end
  end

  test "unregister_function removes a name" do
    Py.register_function(:temporary, fn -> :ok end)
    assert Py.eval("__import__('erlang').temporary()") == {:ok, "ok"}
    # Kept in the module after its first use: one function object.
    assert Py.eval("__import__('erlang').temporary is __import__('erlang').temporary") ==
             {:ok, true}

    :ok = Py.unregister_function(:temporary)

    assert {:error, %Py.Error{type: "AttributeError"}} =
             Py.eval("__import__('erlang').temporary()")

    assert Py.eval("hasattr(__import__('erlang'), 'temporary')") == {:ok, false}
    # Registered again, it works again.
    Py.register_function(:temporary, fn -> :again end)
    assert Py.eval("__import__('erlang').temporary()") == {:ok, "again"}
    # A function Python kept says the name went when it is called.
    :ok = Py.exec("from erlang import temporary as kept_temporary")
    :ok = Py.unregister_function(:temporary)

    assert {:error, %Py.Error{type: "erlang.UnknownFunctionError"}} = Py.eval("kept_temporary()")
  end

  test "arguments that fail to convert while a repr prints are a TypeError, not a crash" do
    Py.register_function(:take, fn x -> x end)

    output =
      ExUnit.CaptureIO.capture_io(fn ->
        send(
          self(),
          Py.exec("""
          import erlang
          class Loud:
              def __repr__(self):
                  print("repr runs")
                  return "Loud()"
          erlang.take({Loud(): '\\ud800'})
          """)
        )
      end)

    assert_received {:error, %Py.Error{type: "TypeError", message: message}}
    assert message =~ "cannot pass the arguments of erlang.take"
    assert message =~ "Loud()"
    assert output =~ "repr runs"
  after
    Py.unregister_function(:take)
  end
end
