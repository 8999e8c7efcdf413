defmodule Py.ServiceTest do
  # Long-lived Python services on threads of their own: started and stopped
  # from Elixir, one end message, calls to the same context go on.
  # Not async: these tests count the service threads of a context, which
  # in the parallel pool shares its slot's interpreter with other tests'
  # contexts.
  use ExUnit.Case, async: false

  import ExUnit.CaptureIO

  @code """
  import asyncio, erlang, threading

  async def ticker(me, count):
      async def tick(i):
          erlang.send(me, ("tick", i))

      # Tasks made inside the service run on its loop, between calls.
      tasks = [asyncio.create_task(tick(i)) for i in range(count)]
      await asyncio.gather(*tasks)
      return count

  def consume(ch, me):
      for message in ch:
          erlang.send(me, ("got", message))
      return "drained"

  def wait_forever(ch):
      ch.receive()

  def fails():
      raise ValueError("service failed")

  def prints(me):
      print("from a service")
      erlang.send(me, ("printed", erlang.self()))
      return None

  service_done = threading.Event()

  def waits_then_flags(ch, me):
      try:
          erlang.send(me, "waiting")
          ch.receive()
      finally:
          service_done.set()

  def spins_until_service_done(me):
      # Python bytecode on the context's runner, until the service ends.
      erlang.send(me, "spinning")
      while not service_done.is_set():
          pass
      return "service done"

  async def cleans_up(me):
      try:
          erlang.send(me, "sleeping")
          await asyncio.sleep(3600)
      except asyncio.CancelledError:
          erlang.send(me, "cancelled")
          raise

  """

  setup do
    ctx = start_supervised!(Py.Context)
    :ok = Py.Context.exec(ctx, Py.Test.ServiceCode.code())
    :ok = Py.Context.exec(ctx, @code)
    %{ctx: ctx}
  end

  test "an asyncio TCP echo server, used with :gen_tcp while calls go on", %{ctx: ctx} do
    {:ok, service} = Py.Service.start_link(:__main__, :echo_server, [self()], context: ctx)
    assert_receive {"listening", port}, 10_000

    {:ok, socket} = :gen_tcp.connect(~c"127.0.0.1", port, [:binary, active: false])

    for i <- 1..20 do
      line = "line #{i}\n"
      :ok = :gen_tcp.send(socket, line)
      assert {:ok, ^line} = :gen_tcp.recv(socket, byte_size(line), 5_000)
      # The same context answers calls meanwhile.
      assert Py.Context.eval(ctx, "#{i} * 2") == {:ok, i * 2}
    end

    :ok = :gen_tcp.close(socket)
    assert Py.Service.stop(service) == :ok
    assert_receive {:py_service, ^service, :stopped}
    refute Process.alive?(service)
    assert Py.Context.call(ctx, :__main__, :service_threads, []) == {:ok, []}
  end

  test "tasks a service creates progress between calls; its value comes back", %{ctx: ctx} do
    {:ok, service} = Py.Service.start_link(:__main__, :ticker, [self(), 5], context: ctx)
    for i <- 0..4, do: assert_receive({"tick", ^i}, 5_000)
    assert_receive {:py_service, ^service, {:ok, 5}}, 5_000
  end

  test "a loop over a Py.Channel: messages in, stopped while it waits", %{ctx: ctx} do
    ch = Py.Channel.new()
    {:ok, service} = Py.Service.start_link(:__main__, :consume, [ch, self()], context: ctx)

    for i <- 1..10 do
      :ok = Py.Channel.send(ch, i)
      assert_receive {"got", ^i}, 5_000
    end

    assert Py.Service.stop(service) == :ok
    assert_receive {:py_service, ^service, :stopped}
    # Kept alive to here (a channel nobody holds is closed).
    assert is_struct(ch, Py.Channel)
  end

  test "a channel loop ends with its value when the channel closes", %{ctx: ctx} do
    ch = Py.Channel.new()
    {:ok, service} = Py.Service.start_link(:__main__, :consume, [ch, self()], context: ctx)
    :ok = Py.Channel.send(ch, "last")
    :ok = Py.Channel.close(ch)
    assert_receive {"got", "last"}, 5_000
    assert_receive {:py_service, ^service, {:ok, "drained"}}, 5_000
  end

  test "a failing service tells its owner, with the Python error", %{ctx: ctx} do
    {:ok, service} = Py.Service.start_link(:__main__, :fails, [], context: ctx)
    assert_receive {:py_service, ^service, {:error, %Py.Error{} = error}}, 5_000
    assert error.kind == :python
    assert error.type == "ValueError"
    assert error.message == "service failed"
    assert error.traceback =~ "fails"
  end

  test "stop does not wait for a long call on the service's context", %{ctx: ctx} do
    ch = Py.Channel.new()

    {:ok, service} =
      Py.Service.start_link(:__main__, :waits_then_flags, [ch, self()], context: ctx)

    assert_receive "waiting", 5_000

    # The context's runner is busy until the service has ended: a stop
    # queued behind this call would never run.
    me = self()

    call =
      Task.async(fn ->
        Py.Context.call(ctx, :__main__, :spins_until_service_done, [me], timeout: :infinity)
      end)

    assert_receive "spinning", 5_000
    assert Py.Service.stop(service) == :ok
    assert_receive {:py_service, ^service, :stopped}
    assert Task.await(call, 10_000) == {:ok, "service done"}
    assert is_struct(ch, Py.Channel)
  end

  test "stop cancels a coroutine, which may clean up", %{ctx: ctx} do
    {:ok, service} = Py.Service.start_link(:__main__, :cleans_up, [self()], context: ctx)
    assert_receive "sleeping", 5_000
    # The service runs (a call on the same context sees its thread).
    assert {:ok, [_]} = Py.Context.call(ctx, :__main__, :service_threads, [])
    assert Py.Service.stop(service) == :ok
    assert_received "cancelled"
    assert_received {:py_service, ^service, :stopped}
  end

  test "print goes to the starter's group leader; erlang.self() is the starter", %{ctx: ctx} do
    me = self()

    output =
      capture_io(fn ->
        {:ok, service} = Py.Service.start_link(:__main__, :prints, [me], context: ctx)
        assert_receive {"printed", ^me}, 5_000
        assert_receive {:py_service, ^service, {:ok, nil}}, 5_000
        # The print was flushed before the thread ended and the end message
        # was sent; a call on the same group leader comes after it.
        Py.Service.stop(service)
      end)

    assert output =~ "from a service"
  end

  test ":notify gets the end message", %{ctx: ctx} do
    me = self()
    other = spawn_link(fn -> receive do: (msg -> send(me, {:other_got, msg})) end)

    {:ok, service} =
      Py.Service.start_link(:__main__, :ticker, [me, 1], context: ctx, notify: other)

    assert_receive {:other_got, {:py_service, ^service, {:ok, 1}}}, 5_000
    refute_received {:py_service, _, _}
  end

  test "closing the context stops its services", %{ctx: ctx} do
    ch = Py.Channel.new()
    {:ok, service} = Py.Service.start_link(:__main__, :wait_forever, [ch], context: ctx)
    ref = Process.monitor(service)
    :ok = stop_supervised(Py.Context)
    assert_receive {:py_service, ^service, outcome}, 10_000
    assert outcome in [:stopped, {:error, Py.Error.closed()}]
    assert_receive {:DOWN, ^ref, _, _, :normal}
    # Its thread is gone: no service thread is left in the interpreter.
    assert Py.eval(
             "[t.name for t in __import__('threading').enumerate() if t.name == 'py-service-__main__.wait_forever']"
           ) ==
             {:ok, []}

    # Kept alive to here: a channel nobody holds is closed, which would end
    # the service on its own.
    assert is_struct(ch, Py.Channel)
  end

  test "the service stops when the process that started it exits", %{ctx: ctx} do
    ch = Py.Channel.new()
    me = self()

    starter =
      spawn(fn ->
        {:ok, service} = Py.Service.start_link(:__main__, :consume, [ch, me], context: ctx)
        send(me, {:service, service})
        receive do: (:exit -> :ok)
      end)

    assert_receive {:service, service}
    ref = Process.monitor(service)
    send(starter, :exit)
    assert_receive {:DOWN, ^ref, _, _, _}, 10_000
    assert Py.Context.call(ctx, :__main__, :service_threads, []) == {:ok, []}
  end

  test "an unknown function is an error, and nothing keeps running", %{ctx: ctx} do
    assert {:error, %Py.Error{type: "NameError"}} =
             Py.Service.start_link(:__main__, :no_such_service, [], context: ctx)

    assert {:error, %Py.Error{type: "AttributeError"}} =
             Py.Service.start_link(:math, :no_such_function, [], context: ctx)

    assert Py.Context.call(ctx, :__main__, :service_threads, []) == {:ok, []}
  end

  test "bad arguments raise ArgumentError" do
    # Values the type checker (Elixir 1.18+) cannot see at compile time, so
    # it does not reject the calls.
    bad_module = opaque(1)
    not_a_list = opaque(:not_a_list)
    nobody = opaque(:nobody)

    assert_raise ArgumentError, ~r/module and a function name/, fn ->
      Py.Service.start_link(bad_module, :f)
    end

    assert_raise ArgumentError, ~r/args as a list/, fn ->
      Py.Service.start_link(:m, :f, not_a_list)
    end

    assert_raise ArgumentError, ~r/:notify option/, fn ->
      Py.Service.start_link(:m, :f, [], notify: nobody)
    end
  end

  test "a service on the default pool resolves __main__ in the caller's namespace" do
    :ok =
      Py.exec(
        "import erlang\ndef pool_service(me):\n    erlang.send(me, 'ran in my namespace')\n"
      )

    {:ok, service} = Py.Service.start_link(:__main__, :pool_service, [self()])
    assert_receive "ran in my namespace", 5_000
    assert_receive {:py_service, ^service, {:ok, nil}}, 5_000
  end

  defp opaque(value), do: Process.get(:py_service_test_unset, value)
end
