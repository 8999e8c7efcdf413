defmodule Py.ThreadOutputTest do
  # Threads that Python code starts during a call speak for that call:
  # print goes to its group leader while it runs (then to the context
  # owner's), erlang.self() is its process, and callbacks' output follows.
  use ExUnit.Case, async: false

  import ExUnit.CaptureIO

  @code """
  import erlang, threading, asyncio
  from concurrent.futures import ThreadPoolExecutor

  def print_in_thread(text):
      t = threading.Thread(target=lambda: print(text))
      t.start()
      t.join()

  def self_in_thread():
      out = []
      t = threading.Thread(target=lambda: out.append(erlang.self()))
      t.start()
      t.join()
      return out[0]

  executor = ThreadPoolExecutor(max_workers=1)

  def print_in_executor(text):
      return executor.submit(lambda: (print(text), erlang.self())[1]).result()

  async def print_to_thread(text):
      await asyncio.to_thread(print, text)
  """

  setup do
    ctx = start_supervised!(Py.Context)
    :ok = Py.Context.exec(ctx, @code)
    %{ctx: ctx}
  end

  test "print from a threading.Thread reaches capture_io", %{ctx: ctx} do
    output =
      capture_io(fn ->
        assert Py.Context.call(ctx, :__main__, :print_in_thread, ["hello from a thread"]) ==
                 {:ok, nil}
      end)

    assert output == "hello from a thread\n"
  end

  test "erlang.self() in a thread is the process of the call that started it", %{ctx: ctx} do
    assert Py.Context.call(ctx, :__main__, :self_in_thread, []) == {:ok, self()}
  end

  test "executor items speak for the call that submitted them, not the one that started the worker",
       %{ctx: ctx} do
    # The first call, from another process with a group leader of its own,
    # starts the executor's worker thread.
    gl = Py.Test.ForwardingGL.start_link(self())

    task =
      Task.async(fn ->
        Process.group_leader(self(), gl)
        {Py.Context.call(ctx, :__main__, :print_in_executor, ["first"]), self()}
      end)

    {{:ok, pid}, task_pid} = Task.await(task)
    assert pid == task_pid
    # Counted with the call's output: there before the call returned.
    assert_received {:gl_output, "first\n"}

    me = self()

    second =
      capture_io(fn ->
        assert Py.Context.call(ctx, :__main__, :print_in_executor, ["second"]) == {:ok, me}
      end)

    assert second == "second\n"
    refute_received {:gl_output, _}
  end

  test "asyncio.to_thread output reaches the caller", %{ctx: ctx} do
    output =
      capture_io(fn ->
        assert Py.Context.call(ctx, :__main__, :print_to_thread, ["via to_thread"]) == {:ok, nil}
      end)

    assert output == "via to_thread\n"
  end

  test "a callback from a thread writes to the call's group leader", %{ctx: ctx} do
    Py.register_function(:thread_output_puts, fn text -> IO.puts(text) end)
    on_exit(fn -> Py.unregister_function(:thread_output_puts) end)

    :ok =
      Py.Context.exec(ctx, """
      def callback_in_thread(text):
          t = threading.Thread(target=lambda: erlang.call('thread_output_puts', text))
          t.start()
          t.join()
      """)

    output =
      capture_io(fn ->
        assert Py.Context.call(ctx, :__main__, :callback_in_thread, ["from Elixir"]) ==
                 {:ok, nil}
      end)

    assert output == "from Elixir\n"
  end

  test "output after the call has returned goes to the context owner's group leader", %{ctx: ctx} do
    gl = Py.Test.ForwardingGL.start_link(self())
    Process.group_leader(ctx, gl)

    :ok =
      Py.Context.exec(ctx, """
      go = threading.Event()
      def later():
          go.wait()
          print("after the call")
      late = threading.Thread(target=later)
      late.start()
      """)

    # The call that started the thread has returned; this one lets it print.
    assert Py.Context.eval(ctx, "go.set()") == {:ok, nil}
    assert_receive {:gl_output, "after the call\n"}, 5_000
    assert Py.Context.eval(ctx, "late.join()") == {:ok, nil}
  end
end
