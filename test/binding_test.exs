defmodule Py.BindingTest do
  use ExUnit.Case, async: true

  test "a binding by name follows a restart of the named context" do
    name = :"bind_restart_test_#{System.unique_integer([:positive])}"

    sup =
      start_supervised!(%{
        id: :contexts,
        start: {Supervisor, :start_link, [[], [strategy: :one_for_one]]},
        type: :supervisor
      })

    {:ok, first} = Supervisor.start_child(sup, {Py.Context, name: name})

    :ok = Py.bind(name)
    :ok = Py.exec("generation = 1")
    assert Py.eval("generation") == {:ok, 1}

    :ok = Supervisor.terminate_child(sup, name)
    {:ok, second} = Supervisor.restart_child(sup, name)
    assert first != second

    # The new context has fresh globals, and the binding found it.
    assert {:error, %Py.Error{type: "NameError"}} = Py.eval("generation")
    assert Py.eval("1 + 1") == {:ok, 2}
  end

  test "a binding by pid to a stopped context stays closed" do
    {:ok, ctx} = Py.Context.start()
    :ok = Py.bind(ctx)
    :ok = Py.Context.stop(ctx)
    assert {:error, %Py.Error{kind: :closed}} = Py.eval("1")
    Py.unbind()
  end

  test "unbind drops the bindings of named pools too" do
    pool = :"binding_test_pool_#{System.unique_integer([:positive])}"
    start_supervised!({Py.Pool, name: pool, size: 1})

    :ok = Py.exec("mine = 1", pool: pool)
    assert Py.eval("'mine' in globals()", %{}, pool: pool) == {:ok, true}

    :ok = Py.unbind()
    assert Py.eval("'mine' in globals()", %{}, pool: pool) == {:ok, false}
  end
end
