defmodule Py.BackgroundLoopTest do
  # A context's event loop runs between calls while it has work: tasks and
  # servers that a call started keep going after it returns.
  use ExUnit.Case, async: true

  @code """
  import asyncio, erlang

  async def ticker(me, count):
      for i in range(count):
          erlang.send(me, ("tick", i))
          await asyncio.sleep(0.001)
      erlang.send(me, "ticker done")

  async def start_ticker(me, count):
      global ticker_task
      ticker_task = asyncio.create_task(ticker(me, count))

  def ticker_state():
      # For a failure's message: what became of the task and the loop.
      task = ticker_task
      if task.cancelled():
          outcome = "cancelled"
      elif task.done():
          outcome = repr(task.exception())
      else:
          outcome = "pending"
      loop = task.get_loop()
      return (repr(task), outcome, loop.is_running(), loop.is_closed(), erlang._loop_has_work(loop))

  async def start_echo():
      global server

      async def client(reader, writer):
          while True:
              data = await reader.read(1024)
              if not data:
                  break
              writer.write(data)
              await writer.drain()
          writer.close()

      server = await asyncio.start_server(client, "127.0.0.1", 0)
      return server.sockets[0].getsockname()[1]

  async def stop_echo():
      server.close()
      await server.wait_closed()
  """

  setup do
    ctx = start_supervised!(Py.Context)
    :ok = Py.Context.exec(ctx, @code)
    %{ctx: ctx}
  end

  test "a task created in a call keeps running after the call returns", %{ctx: ctx} do
    assert Py.Context.call(ctx, :__main__, :start_ticker, [self(), 20]) == {:ok, nil}
    # No call runs on the context while the ticks arrive.
    for i <- 0..19 do
      receive do
        {"tick", ^i} -> :ok
      after
        5_000 ->
          state = Py.Context.call(ctx, :__main__, :ticker_state, [])

          flunk(
            "tick #{i} did not come within 5 s; task, outcome, loop running, closed, has work: #{inspect(state)}"
          )
      end
    end

    assert_receive "ticker done", 5_000
    assert Py.Context.eval(ctx, "ticker_task.done()") == {:ok, true}
  end

  test "a server started in a call answers between calls, and calls go on", %{ctx: ctx} do
    {:ok, port} = Py.Context.call(ctx, :__main__, :start_echo, [])
    {:ok, socket} = :gen_tcp.connect(~c"127.0.0.1", port, [:binary, active: false])

    for i <- 1..10 do
      line = "echo #{i}"
      :ok = :gen_tcp.send(socket, line)
      assert {:ok, ^line} = :gen_tcp.recv(socket, byte_size(line), 5_000)
      assert Py.Context.eval(ctx, "#{i} + 1") == {:ok, i + 1}
    end

    :ok = :gen_tcp.close(socket)
    assert Py.Context.call(ctx, :__main__, :stop_echo, []) == {:ok, nil}
  end

  test "a context whose loop has no work runs calls as before", %{ctx: ctx} do
    assert Py.Context.eval(ctx, "asyncio.sleep(0, 'slept')") == {:ok, "slept"}
    for i <- 1..50, do: assert(Py.Context.eval(ctx, "#{i}") == {:ok, i})
  end
end
