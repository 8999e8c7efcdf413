defmodule Py.StateTest do
  # Not async: one test clears the whole table.
  use ExUnit.Case, async: false

  setup do
    Py.State.clear()
    :ok
  end

  test "put, get, delete, keys, incr and decr from Elixir" do
    assert Py.State.get("a") == nil
    assert Py.State.get("a", :default) == :default
    :ok = Py.State.put("a", %{"x" => [1, 2]})
    assert Py.State.get("a") == %{"x" => [1, 2]}
    assert Py.State.incr("n") == 1
    assert Py.State.incr("n", 10) == 11
    assert Py.State.decr("n", 2) == 9
    assert Py.State.decr("n") == 8
    assert Enum.sort(Py.State.keys()) == ["a", "n"]
    :ok = Py.State.delete("a")
    assert Py.State.get("a") == nil
    assert Py.State.keys() == ["n"]
  end

  test "atom keys are the same keys as Python's strings" do
    Py.State.put(:model, "v2")
    assert Py.State.get("model") == "v2"
    assert Py.eval("__import__('erlang').state_get('model')") == {:ok, "v2"}
  end

  test "Python reads and writes the same table, with erlang_python's names" do
    Py.State.put("config", %{"retries" => 3})

    :ok =
      Py.exec("""
      from erlang import state_get, state_set, state_delete, state_keys, state_incr, state_decr
      cfg = state_get('config')
      state_set('seen', cfg['retries'] * 2)
      state_set('gone', 1)
      state_delete('gone')
      state_incr('hits')
      state_incr('hits', 10)
      state_decr('hits', 3)
      keys = sorted(state_keys())
      missing = state_get('nope', 'fallback')
      """)

    assert Py.State.get("seen") == 6
    assert Py.State.get("hits") == 8
    assert Py.State.get("gone") == nil
    assert Py.eval("keys") == {:ok, ["config", "hits", "seen"]}
    assert Py.eval("missing") == {:ok, "fallback"}
    assert Py.eval("__import__('erlang').state_clear()") == {:ok, nil}
    assert Py.State.keys() == []
  end

  test "state is shared by contexts (and by every interpreter of the parallel pool)" do
    contexts = Py.Test.Contexts.one_per_interpreter()

    for {ctx, i} <- Enum.with_index(contexts) do
      {:ok, _} = Py.Context.eval(ctx, "__import__('erlang').state_set('from_#{i}', #{i})")
    end

    expected = Enum.sum(0..(length(contexts) - 1))

    for ctx <- contexts do
      assert Py.Context.eval(
               ctx,
               "sum(__import__('erlang').state_get('from_%d' % i) for i in range(#{length(contexts)}))"
             ) == {:ok, expected}
    end

    for ctx <- contexts, do: Py.Context.stop(ctx)
  end

  test "100 Elixir processes incrementing at once lose no update" do
    1..100
    |> Enum.map(fn _ -> Task.async(fn -> for _ <- 1..100, do: Py.State.incr("c") end) end)
    |> Enum.each(&Task.await/1)

    assert Py.State.get("c") == 10_000
  end

  test "100 processes incrementing from Python at once lose no update" do
    1..100
    |> Enum.map(fn _ ->
      Task.async(fn ->
        Py.exec!("""
        from erlang import state_incr, state_decr
        for _ in range(20):
            state_incr('py_counter', 2)
            state_decr('py_counter')
        """)
      end)
    end)
    |> Enum.each(&Task.await(&1, 60_000))

    assert Py.State.get("py_counter") == 2000
  end

  test "counting a value that is not an integer is a clear error on both sides" do
    Py.State.put("text", "abc")

    assert_raise ArgumentError, ~r/not an integer/, fn -> Py.State.incr("text") end

    assert {:error, %Py.Error{type: "erlang.Error", message: message}} =
             Py.eval("__import__('erlang').state_incr('text')")

    assert message =~ "not an integer"

    assert {:error, %Py.Error{message: message}} =
             Py.eval("__import__('erlang').state_incr('n', 1.5)")

    assert message =~ "must be an int"
  end

  test "a registered function named like a state function does not clash" do
    Py.register_function("state_get", fn _key -> "user's function" end)

    assert Py.eval("__import__('erlang').call('state_get', 'k')") == {:ok, "user's function"}
    Py.State.put("k", "state")
    assert Py.eval("__import__('erlang').state_get('k')") == {:ok, "state"}
  after
    Py.unregister_function("state_get")
  end

  test "Python threads outside any call use the state too (served by the event sink)" do
    Py.State.put("shared", "hello")

    :ok =
      Py.exec("""
      import threading
      from erlang import state_get, state_incr, state_set
      seen = []
      def work(i):
          seen.append(state_get('shared'))
          for _ in range(50):
              state_incr('threads')
          state_set('thread_%d' % i, i)
      threads = [threading.Thread(target=work, args=(i,)) for i in range(20)]
      for t in threads:
          t.start()
      for t in threads:
          t.join()
      """)

    assert Py.eval("seen") == {:ok, List.duplicate("hello", 20)}
    assert Py.State.get("threads") == 1000
    assert Py.State.get("thread_19") == 19
  end
end
