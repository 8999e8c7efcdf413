defmodule Py.PythonThreadsTest do
  # Threads that Python code starts (threading, concurrent.futures) call
  # registered functions and send messages. Not async: it registers
  # functions.
  use ExUnit.Case, async: false

  setup do
    Py.register_function(:thread_square, fn x -> x * x end)
    on_exit(fn -> Py.unregister_function(:thread_square) end)
    :ok
  end

  @pool_code """
  import erlang
  from concurrent.futures import ThreadPoolExecutor

  def work(t):
      return [erlang.call('thread_square', t * 1000 + i) for i in range(100)]

  with ThreadPoolExecutor(max_workers=8) as pool:
      results = list(pool.map(work, range(8)))
  """

  for isolation <- [:none, :os_process] do
    @tag isolation: isolation
    test "8 threads of a ThreadPoolExecutor each call a registered function 100 times (#{isolation})",
         %{isolation: isolation} do
      ctx = start_supervised!({Py.Context, isolation: isolation})
      assert Py.Context.exec(ctx, @pool_code) == :ok

      expected = for t <- 0..7, do: for(i <- 0..99, do: (t * 1000 + i) * (t * 1000 + i))
      assert Py.Context.eval(ctx, "results") == {:ok, expected}
    end
  end

  test "erlang.send from a thread reaches the process" do
    ctx = start_supervised!(Py.Context)

    :ok =
      Py.Context.exec(ctx, """
      import erlang, threading
      def send_from_thread(me):
          t = threading.Thread(target=lambda: erlang.send(me, ('from a thread', 1)))
          t.start()
          t.join()
      """)

    assert Py.Context.eval(ctx, "send_from_thread(p)", %{"p" => self()}) == {:ok, nil}
    assert_receive {"from a thread", 1}
  end

  test "an unknown name from a thread raises there, and the call goes on" do
    code = """
    import erlang, threading
    errors = []
    def run():
        try:
            erlang.call('no_such_function_for_threads')
        except Exception as e:
            errors.append(type(e).__name__)
    t = threading.Thread(target=run)
    t.start()
    t.join()
    """

    ctx = start_supervised!(Py.Context)
    assert Py.Context.exec(ctx, code) == :ok
    assert Py.Context.eval(ctx, "errors") == {:ok, ["UnknownFunctionError"]}
  end

  describe "the process serving a thread's calls" do
    setup do
      Py.register_function(:thread_whoami, fn -> self() end)
      Py.register_function(:thread_suicide, fn -> Process.exit(self(), :kill) end)

      on_exit(fn ->
        Py.unregister_function(:thread_whoami)
        Py.unregister_function(:thread_suicide)
      end)
    end

    test "serves all of the thread's calls, and ends with the thread" do
      ctx = start_supervised!(Py.Context)

      :ok =
        Py.Context.exec(ctx, """
        import erlang, threading
        servers = []
        t = threading.Thread(target=lambda: servers.extend(erlang.thread_whoami() for _ in range(3)))
        t.start()
        t.join()
        """)

      assert {:ok, [server, server, server]} = Py.Context.eval(ctx, "servers")
      assert is_pid(server)
      ref = Process.monitor(server)
      assert_receive {:DOWN, ^ref, :process, ^server, _}, 5_000
    end

    test "one that died is replaced for the thread's next call" do
      ctx = start_supervised!(Py.Context)

      :ok =
        Py.Context.exec(ctx, """
        import erlang, threading
        out = []
        def run():
            out.append(erlang.thread_whoami())
            try:
                erlang.thread_suicide()
            except erlang.Error as e:
                out.append(str(e))
            out.append(erlang.thread_whoami())
        t = threading.Thread(target=run)
        t.start()
        t.join()
        """)

      assert {:ok, [first, message, second]} = Py.Context.eval(ctx, "out")
      assert message =~ "thread_suicide"
      assert message =~ "ended before it answered"
      assert is_pid(first) and is_pid(second) and first != second
      refute Process.alive?(first)
    end
  end
end
