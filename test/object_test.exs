defmodule Py.ObjectTest do
  # Not async: counts live handles VM-wide.
  use ExUnit.Case, async: false

  test "handles are usable as arguments and receivers, and inspect shows the repr" do
    {:ok, counter} = Py.call(:collections, :Counter, [["x", "y", "x"]], return: :object)
    assert Py.eval("c['x']", %{c: counter}) == {:ok, 2}
    assert Py.call(:builtins, :len, [counter]) == {:ok, 2}
    assert Py.call_method(counter, :get, ["y"]) == {:ok, 1}
    assert inspect(counter) == "#Py.Object<Counter({'x': 2, 'y': 1})>"
    assert Py.repr(counter) == {:ok, "Counter({'x': 2, 'y': 1})"}
  end

  test "inspect does not bind the inspecting process" do
    {:ok, ctx} = Py.Context.start_link()
    {:ok, obj} = Py.Context.eval(ctx, "object()", %{}, return: :object)

    {text, binding} =
      Task.async(fn -> {inspect(obj), Process.get(:"$py_binding")} end) |> Task.await()

    assert text =~ ~r/^#Py.Object<<object object at 0x[0-9a-f]+>>$/
    assert binding == nil
  end

  test "return: :object returns a handle even for convertible values" do
    assert {:ok, %Py.Object{type: "list"} = list} = Py.eval("[1, 2]", %{}, return: :object)
    assert Py.call_method(list, :__len__, []) == {:ok, 2}
  end

  test "a handle made on one context works on another of the same interpreter" do
    {:ok, a} = Py.Context.start_link(interpreter: :main)
    {:ok, b} = Py.Context.start_link(interpreter: :main)
    {:ok, obj} = Py.Context.eval(a, "{'from': 'a'}", %{}, return: :object)
    assert Py.Context.eval(b, "o['from']", %{o: obj}) == {:ok, "a"}
  end

  test "a handle outlives the context that made it" do
    {:ok, ctx} = Py.Context.start(interpreter: :main)
    {:ok, other} = Py.Context.start_link(interpreter: :main)
    {:ok, obj} = Py.Context.eval(ctx, "[1, 2, 3]", %{}, return: :object)
    :ok = Py.Context.stop(ctx)
    assert Py.call(:builtins, :sum, [obj], context: other) == {:ok, 6}
    # Its own thread is gone, so inspect falls back to the type name.
    assert inspect(obj) == "#Py.Object<list>"
  end

  test "100,000 dropped handles are released and the object count falls back" do
    {:ok, ctx} = Py.Context.start_link()

    :ok =
      Py.Context.exec(ctx, """
      class Tracked:
          alive = 0
          def __init__(self):
              Tracked.alive += 1
          def __del__(self):
              Tracked.alive -= 1
      """)

    live_before = Py.Object.live_count()
    assert make_handles(ctx, 100_000) == 100_000
    :erlang.garbage_collect()
    assert Py.Object.await_live_count(live_before)
    # At most as many as before: a handle of an earlier test whose process
    # ended may be released meanwhile.
    assert Py.Object.live_count() <= live_before
    # The decrefs were queued to ctx before this call, so they have run.
    assert Py.Context.eval(ctx, "Tracked.alive") == {:ok, 0}
  end

  defp make_handles(ctx, n) do
    {:ok, handles} = Py.Context.eval(ctx, "[Tracked() for _ in range(#{n})]")
    true = Enum.all?(handles, &match?(%Py.Object{type: "__main__.Tracked"}, &1))
    {:ok, alive} = Py.Context.eval(ctx, "Tracked.alive")
    true = alive == n
    length(handles)
  end
end
