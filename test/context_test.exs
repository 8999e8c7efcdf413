defmodule Py.ContextTest do
  # Not async: one test counts the VM's OS threads.
  use ExUnit.Case, async: false

  test "state persists across calls to the same context, from any process" do
    {:ok, ctx} = Py.Context.start_link()
    assert Py.Context.exec(ctx, "counter = 41") == :ok
    task = Task.async(fn -> Py.Context.eval(ctx, "counter + 1") end)
    assert Task.await(task) == {:ok, 42}
    assert Py.Context.call(ctx, :math, :sqrt, [16]) == {:ok, 4.0}
    assert Py.Context.stop(ctx) == :ok
  end

  test "contexts have separate globals" do
    {:ok, a} = Py.Context.start_link()
    {:ok, b} = Py.Context.start_link()
    :ok = Py.Context.exec(a, "only_in_a = 1")
    assert {:ok, 1} = Py.Context.eval(a, "only_in_a")
    assert {:error, %Py.Error{type: "NameError"}} = Py.Context.eval(b, "only_in_a")
  end

  test "a named context under a supervisor" do
    name = :"py_ctx_#{System.unique_integer([:positive])}"
    {:ok, sup} = Supervisor.start_link([{Py.Context, name: name}], strategy: :one_for_one)
    assert Py.call(:operator, :add, [1, 2], context: name) == {:ok, 3}
    assert Py.Context.eval!(name, "40 + 2") == 42
    Supervisor.stop(sup)
    assert {:error, %Py.Error{kind: :closed}} = Py.eval("1", %{}, context: name)
  end

  test "a stopped context answers with a clear error" do
    {:ok, ctx} = Py.Context.start()
    :ok = Py.Context.stop(ctx)
    assert {:error, %Py.Error{kind: :closed, message: msg}} = Py.Context.eval(ctx, "1")
    assert msg =~ ~r/context/i
  end

  test "stop interrupts a running call; its caller gets a :closed error" do
    {:ok, ctx} = Py.Context.start()
    caller = start_long_call(ctx)
    :ok = Py.Context.stop(ctx)
    assert {:error, %Py.Error{kind: :closed}} = Task.await(caller)
  end

  test "the interruption on stop runs Python finally blocks" do
    {:ok, ctx} = Py.Context.start()

    caller =
      start_long_call(
        ctx,
        "try:\n    print('started')\n    while True: pass\nfinally:\n    print('cleaned up')"
      )

    :ok = Py.Context.stop(ctx)
    assert_receive {:io_request, from, reply_as, {:put_chars, :unicode, "cleaned up\n"}}, 5_000
    send(from, {:io_reply, reply_as, :ok})
    assert {:error, %Py.Error{kind: :closed}} = Task.await(caller)
  end

  test "100 cycles of start, long call, kill: every caller errors and threads are reclaimed" do
    before = context_threads()

    for _ <- 1..100 do
      {:ok, ctx} = Py.Context.start()
      {:ok, {_pid, native}} = Py.Context.handle(ctx)
      caller = start_long_call(ctx)
      Process.exit(ctx, :kill)
      assert {:error, %Py.Error{kind: :closed}} = Task.await(caller)
      # The native thread ends once its running job is interrupted.
      assert Py.Native.context_wait(native, 5_000)
    end

    # No context thread started here is left.
    assert context_threads() -- before == []
  end

  test "jobs queued behind a killed call all get an error" do
    {:ok, ctx} = Py.Context.start()
    running = start_long_call(ctx)
    queued = for i <- 1..20, do: Task.async(fn -> Py.Context.eval(ctx, "#{i}") end)
    Process.exit(ctx, :kill)
    assert {:error, %Py.Error{kind: :closed}} = Task.await(running)

    for task <- queued do
      assert {:error, %Py.Error{kind: :closed}} = Task.await(task)
    end
  end

  # Starts `while True: pass` on ctx from a task and returns once Python is
  # running it: the task's group leader is this process, and the Python code
  # prints before looping.
  defp start_long_call(ctx, code \\ "print('started')\nwhile True: pass") do
    me = self()

    task =
      Task.async(fn ->
        Process.group_leader(self(), me)
        Py.Context.exec(ctx, code, timeout: 30_000)
      end)

    receive do
      {:io_request, from, reply_as, {:put_chars, :unicode, "started\n"}} ->
        send(from, {:io_reply, reply_as, :ok})
    after
      10_000 -> flunk("the long call did not start")
    end

    task
  end

  # OS thread ids of the VM's context threads.
  defp context_threads do
    for tid <- File.ls!("/proc/self/task"),
        {:ok, name} <- [File.read("/proc/self/task/#{tid}/comm")],
        String.starts_with?(name, "py-ctx-"),
        do: tid
  end
end
