defmodule Py.IsolatedServiceTest do
  # Services and thread output in an isolated context. Not async: the VM
  # becomes a distributed node.
  use ExUnit.Case, async: false

  import ExUnit.CaptureIO

  @code """
  import asyncio, erlang


  async def start_ticker(me, count):
      async def ticker():
          for i in range(count):
              erlang.send(me, ("tick", i))
              await asyncio.sleep(0.001)

      global ticker_task
      ticker_task = asyncio.create_task(ticker())
  """

  setup do
    ctx = start_supervised!({Py.Context, isolation: :os_process}, id: :isolated)
    :ok = Py.Context.exec(ctx, Py.Test.ServiceCode.code())
    :ok = Py.Context.exec(ctx, @code)
    %{iso: ctx}
  end

  test "an echo server runs there, calls go on, stop ends it", %{iso: ctx} do
    {:ok, service} = Py.Service.start_link(:__main__, :echo_server, [self()], context: ctx)
    assert_receive {"listening", port}, 10_000
    {:ok, socket} = :gen_tcp.connect(~c"127.0.0.1", port, [:binary, active: false])
    :ok = :gen_tcp.send(socket, "ping")
    assert {:ok, "ping"} = :gen_tcp.recv(socket, 4, 5_000)
    assert Py.Context.eval(ctx, "1 + 1") == {:ok, 2}
    :ok = :gen_tcp.close(socket)
    assert Py.Service.stop(service) == :ok
    assert_receive {:py_service, ^service, :stopped}
    assert Py.Context.call(ctx, :__main__, :service_threads, []) == {:ok, []}
  end

  test "a crash of the context's OS process ends the service with :crashed", %{iso: ctx} do
    {:ok, service} = Py.Service.start_link(:__main__, :echo_server, [self()], context: ctx)
    assert_receive {"listening", _port}, 10_000

    ExUnit.CaptureLog.capture_log(fn ->
      assert {:error, %Py.Error{kind: :crashed}} =
               Py.Context.eval(ctx, "__import__('os')._exit(3)")
    end)

    assert_receive {:py_service, ^service, {:error, %Py.Error{kind: :crashed, message: message}}},
                   10_000

    assert message =~ "lost its Python process"
    refute Process.alive?(service)
    # The context goes on, in a fresh process.
    assert Py.Context.eval(ctx, "1 + 1") == {:ok, 2}
  end

  test "print from a thread reaches capture_io", %{iso: ctx} do
    :ok =
      Py.Context.exec(ctx, """
      def print_in_thread(text):
          t = threading.Thread(target=lambda: print(text))
          t.start()
          t.join()
      """)

    output =
      capture_io(fn ->
        assert Py.Context.call(ctx, :__main__, :print_in_thread, ["isolated thread"]) ==
                 {:ok, nil}
      end)

    assert output == "isolated thread\n"
  end

  test "a task created in a call runs on between calls, and calls over the link go on", %{
    iso: ctx
  } do
    assert Py.Context.call(ctx, :__main__, :start_ticker, [self(), 10]) == {:ok, nil}
    for i <- 0..9, do: assert_receive({"tick", ^i}, 5_000)
    for i <- 1..20, do: assert(Py.Context.eval(ctx, "#{i} * 3") == {:ok, i * 3})
  end
end
