defmodule Py.ObjectRoutingTest do
  # Not async: routes are VM-wide.
  use ExUnit.Case, async: false

  # In the parallel pool an object is usable only in its own interpreter.
  # The calling process here is bound to a :main context (the main
  # interpreter), so a request that followed the binding instead of the
  # object would fail with "lives in another Python interpreter".
  @moduletag :parallel

  setup do
    {:ok, main_ctx} = Py.Context.start_link(interpreter: :main)
    :ok = Py.bind(main_ctx)
    on_exit(fn -> Py.Router.unroute("builtins") end)
    %{main_ctx: main_ctx}
  end

  test "a request on an object runs on the object's owner, wherever the caller is bound" do
    {:ok, slot_ctx} = Py.Context.start_link()

    :ok =
      Py.Context.exec(slot_ctx, """
      class Box:
          def __init__(self):
              self.items = [3, 1, 2]
          def biggest(self):
              return max(self.items)
      box = Box()
      """)

    {:ok, box} = Py.Context.eval(slot_ctx, "box", %{}, return: :object)

    assert Py.call_method(box, :biggest) == {:ok, 3}
    assert Py.getattr(box, :items) == {:ok, [3, 1, 2]}
    assert {:ok, "<__main__.Box object at" <> _} = Py.repr(box)
    assert Py.call(box, :biggest, []) == {:ok, 3}
    assert Py.stream(box, :__getattribute__, ["items"]) |> Enum.to_list() == [3, 1, 2]
    # The binding still serves requests that are not on an object.
    assert Py.eval("1 + 1") == {:ok, 2}
  end

  test "a stream of a routed call runs on the routed pool, iterator and all" do
    start_supervised!({Py.Pool, name: :routing_test_io, size: 2})
    Py.Router.route("builtins", :routing_test_io)

    tasks =
      for _ <- 1..4 do
        inherited = Py.Callbacks.inheritance()

        Task.async(fn ->
          Py.Callbacks.inherit(inherited)
          Py.stream(:builtins, :range, [5], chunk_size: 2) |> Enum.to_list()
        end)
      end

    assert Enum.map(tasks, &Task.await/1) == List.duplicate([0, 1, 2, 3, 4], 4)
    assert Py.stream(:builtins, :range, [3]) |> Enum.take(2) == [0, 1]
  end
end
