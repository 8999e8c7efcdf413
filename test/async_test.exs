defmodule Py.AsyncTest do
  use ExUnit.Case, async: true

  setup do
    :ok =
      Py.exec("""
      import asyncio
      events = []
      async def probe(i):
          events.append(("start", i))
          await asyncio.sleep(0.2)
          events.append(("end", i))
          return i * 10
      async def fail():
          await asyncio.sleep(0)
          raise ValueError("async failure")
      async def ticks(n):
          for i in range(n):
              await asyncio.sleep(0)
              yield i
      """)

    :ok
  end

  test "calling an async def function awaits it on the context's event loop" do
    assert Py.eval("probe(4)") == {:ok, 40}
    assert Py.call(:asyncio, :sleep, [0, "done"]) == {:ok, "done"}
  end

  test "a context's event loop is closed when the context stops" do
    # Main-interpreter contexts, so the probe sees the same sys module.
    {:ok, ctx} = Py.Context.start(interpreter: :main)
    {:ok, probe} = Py.Context.start_link(interpreter: :main)
    name = "_py_loop_probe_#{System.unique_integer([:positive])}"

    :ok =
      Py.Context.exec(ctx, """
      import asyncio, erlang, sys
      async def loop_of_this_thread():
          return asyncio.get_running_loop()
      # Awaited on the context's own loop, which it hands back.
      setattr(sys, #{inspect(name)}, erlang._await(loop_of_this_thread()))
      """)

    assert Py.Context.eval(probe, "getattr(__import__('sys'), #{inspect(name)}).is_closed()") ==
             {:ok, false}

    :ok = Py.Context.stop(ctx)

    assert Py.Context.eval(probe, "getattr(__import__('sys'), #{inspect(name)}).is_closed()") ==
             {:ok, true}

    Py.Context.exec(probe, "delattr(__import__('sys'), #{inspect(name)})")
  end

  test "the event loop a Python thread got from asyncio is closed when the thread ends" do
    {:ok, ctx} = Py.Context.start_link()

    :ok =
      Py.Context.exec(ctx, """
      import asyncio, threading
      loops = []
      worker = threading.Thread(target=lambda: loops.append(asyncio.get_event_loop()))
      worker.start()
      worker.join()
      """)

    assert Py.Context.eval(ctx, "loops[0].is_closed()") == {:ok, true}
  end

  test "gathered coroutines run concurrently on one loop" do
    assert Py.eval("asyncio.gather(*(probe(i) for i in range(10)))") ==
             {:ok, Enum.map(0..9, &(&1 * 10))}

    {:ok, events} = Py.eval("events")
    {starts, ends} = Enum.split_while(events, fn {kind, _} -> kind == "start" end)
    # All ten started before the first one finished.
    assert length(starts) == 10
    assert length(ends) == 10 and Enum.all?(ends, &match?({"end", _}, &1))
  end

  test "async_call returns at once; await gets the result, errors included" do
    task = Py.async_call(:builtins, :pow, [2, 10])
    assert %Task{} = task
    assert Py.await(task) == {:ok, 1024}

    failing = Py.async_call(:operator, :truediv, [1, 0])
    assert {:error, %Py.Error{type: "ZeroDivisionError"}} = Py.await(failing)
  end

  test "async_call runs on the caller's context and awaits coroutines" do
    {:ok, probe} = Py.eval("probe", %{}, return: :object)
    assert Py.await(Py.async_call(probe, nil, [7])) == {:ok, 70}
  end

  test "an async failure reaches whoever awaits" do
    assert {:error, %Py.Error{type: "ValueError", message: "async failure"}} = Py.eval("fail()")
  end

  # The failing cast logs a warning; keep it out of the test output.
  @tag :capture_log
  test "cast is fire and forget" do
    me = self()
    Py.register_function(:cast_probe, fn x -> send(me, {:cast_ran, x}) end)
    assert Py.cast(:erlang, :call, ["cast_probe", 5]) == :ok
    assert_receive {:cast_ran, 5}, 5_000
    # A failing cast returns :ok too (its error is logged, not raised).
    assert Py.cast(:operator, :truediv, [1, 0]) == :ok
  end

  test "async generators stream like generators" do
    assert Py.stream_eval("ticks(5)", %{}, chunk_size: 2) |> Enum.to_list() == [0, 1, 2, 3, 4]
    assert Py.stream_eval("ticks(1000)") |> Enum.take(3) == [0, 1, 2]
  end

  test "an object that is only async-iterable (__aiter__) streams too" do
    :ok =
      Py.exec("""
      class Ticker:
          def __init__(self, n):
              self.n = n
          def __aiter__(self):
              return ticks(self.n)
      """)

    assert Py.stream_eval("Ticker(4)", %{}, chunk_size: 3) |> Enum.to_list() == [0, 1, 2, 3]
    assert Py.stream_eval("Ticker(2)") |> Enum.to_list() == [0, 1]
  end

  test "an await that times out lets the call go on and leaves nothing behind" do
    test = self()
    name = "async_test_gate_#{System.unique_integer([:positive])}"

    Py.register_function(name, fn ->
      send(test, {:gate, self()})

      receive do
        :open -> "done"
      end
    end)

    on_exit(fn -> Py.unregister_function(name) end)

    task = Py.async_call(:erlang, :call, [name])
    assert_receive {:gate, gate}, 5_000

    assert {:error, %Py.Error{kind: :timeout, message: message}} = Py.await(task, 0)
    assert message =~ "goes on in the background"
    {:links, links} = Process.info(self(), :links)
    refute task.pid in links

    # The call finishes after the await gave up: its reply and exit are
    # dropped (a task's reply is sent before it exits).
    watch = Process.monitor(task.pid)
    send(gate, :open)
    assert_receive {:DOWN, ^watch, :process, _, :normal}, 5_000
    refute_received {_, {:ok, "done"}}
    refute_received {:DOWN, _, :process, _, _}
  end
end
