defmodule Py.RoutingTest do
  # Not async: routes are VM-wide.
  use ExUnit.Case, async: false

  setup do
    start_supervised!({Py.Pool, name: :routing_test, size: 1})
    on_exit(fn -> Enum.each(Map.keys(Py.Router.routes()), &Py.Router.unroute/1) end)
    :ok
  end

  defp thread_id(opts), do: Py.call!(:threading, :get_native_id, [], opts)

  test "the pool: option runs a call on a named pool, with its own namespace" do
    :ok = Py.exec("where = 'named pool'", pool: :routing_test)
    assert Py.eval("where", %{}, pool: :routing_test) == {:ok, "named pool"}
    assert {:error, %Py.Error{type: "NameError"}} = Py.eval("where")
  end

  test "a module route sends calls of that module to its pool" do
    pool_thread = thread_id(pool: :routing_test)
    Py.Router.route(:threading, :routing_test)
    assert Py.Router.routes() == %{"threading" => :routing_test}
    # Every call from several processes lands on the pool's one context.
    ids = for _ <- 1..5, do: Task.async(fn -> thread_id([]) end)
    assert Enum.map(ids, &Task.await/1) |> Enum.uniq() == [pool_thread]
    :ok = Py.Router.unroute(:threading)
    assert Py.Router.routes() == %{}
  end

  test "a {module, function} route wins over a module route" do
    Py.Router.route("operator", :no_such_pool)
    Py.Router.route({"operator", "add"}, :routing_test)
    assert Py.call(:operator, :add, [1, 2]) == {:ok, 3}
    assert {:error, %Py.Error{message: msg}} = Py.call(:operator, :mul, [1, 2])
    assert msg =~ ":no_such_pool is not running"
  end

  test "a pool needs a name and a positive size" do
    assert_raise ArgumentError, fn -> Py.Pool.start_link(name: :bad, size: 0) end
  end
end
