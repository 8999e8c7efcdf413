defmodule Py.MainNamespaceTest do
  # `Py.call(:__main__, f, args)` and `Py.getattr(:__main__, name)` find
  # what `Py.exec/2` defined in the caller's namespace (or the context's
  # globals), as erlang_python's `py:call('__main__', f, ...)` does.
  use ExUnit.Case, async: true

  test "a function and a value defined with exec, in the caller's namespace" do
    :ok = Py.exec("def double(x):\n    return 2 * x\nlimit = 7")
    assert Py.call(:__main__, :double, [21]) == {:ok, 42}
    assert Py.call("__main__", "double", [1]) == {:ok, 2}
    assert Py.getattr(:__main__, :limit) == {:ok, 7}

    # Another process's namespace does not have them.
    other = Task.async(fn -> Py.call(:__main__, :double, [1]) end) |> Task.await()
    assert {:error, %Py.Error{type: "AttributeError"}} = other
  end

  test "on a context, its globals" do
    ctx = start_supervised!(Py.Context)
    :ok = Py.Context.exec(ctx, "def greet(name):\n    return 'hello ' + name")
    assert Py.Context.call(ctx, :__main__, :greet, ["py"]) == {:ok, "hello py"}
  end

  test "names not defined there still come from the real __main__ module" do
    assert {:ok, name} = Py.getattr(:__main__, :__name__)
    assert name == "__main__"
  end
end
