defmodule Py.AsyncCallbackTest do
  # `await erlang.async_call(...)`: gathered callbacks run at once. Not
  # async: it registers a function.
  use ExUnit.Case, async: false

  setup do
    test = self()

    # Each call waits for the test's go, which comes only when all five
    # have arrived: they can only finish if they run at once.
    Py.register_function(:async_rendezvous, fn i ->
      send(test, {:arrived, self()})

      receive do
        :go -> i * 10
      end
    end)

    on_exit(fn -> Py.unregister_function(:async_rendezvous) end)
    :ok
  end

  for isolation <- [:none, :os_process] do
    @tag isolation: isolation
    test "five gathered async_call run at once (#{isolation})", %{isolation: isolation} do
      ctx = start_supervised!({Py.Context, isolation: isolation})

      :ok =
        Py.Context.exec(ctx, """
        import asyncio, erlang
        async def gathered():
            return await asyncio.gather(*(erlang.async_call('async_rendezvous', i) for i in range(5)))
        """)

      task = Task.async(fn -> Py.Context.eval(ctx, "gathered()") end)

      callers =
        for _ <- 1..5 do
          assert_receive {:arrived, pid}, 10_000
          pid
        end

      Enum.each(callers, &send(&1, :go))
      assert Task.await(task, 10_000) == {:ok, [0, 10, 20, 30, 40]}
    end
  end

  test "acall is the same, and errors raise in Python" do
    assert Py.eval("__import__('erlang').acall is __import__('erlang').async_call") == {:ok, true}

    assert {:error, %Py.Error{type: "erlang.UnknownFunctionError"}} =
             Py.eval(
               "__import__('asyncio').run(__import__('erlang').async_call('no_such_async_fn'))"
             )
  end
end
