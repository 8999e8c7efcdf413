defmodule Py.CodeCellTest do
  # Py.eval of code cells (statements ending in an expression), assigned
  # names, SyntaxError details and kept exception objects.
  use ExUnit.Case, async: true

  setup do
    ctx = start_supervised!(Py.Context)
    %{ctx: ctx}
  end

  test "a cell's value is its last expression; its names stay", %{ctx: ctx} do
    assert Py.Context.eval(ctx, "x = 20\ny = x + 1\nx + y") == {:ok, 41}
    assert Py.Context.eval(ctx, "x * 2") == {:ok, 40}
    assert Py.Context.eval(ctx, "import math\nr = math.floor(2.5)") == {:ok, nil}
    assert Py.Context.eval(ctx, "r") == {:ok, 2}
  end

  test "a cell ending in a statement has the value nil", %{ctx: ctx} do
    assert Py.Context.eval(ctx, "def f(a):\n    return a * 3\n") == {:ok, nil}
    assert Py.Context.call(ctx, :__main__, :f, [5]) == {:ok, 15}
  end

  test "bindings are seen by the cell and do not persist unless assigned", %{ctx: ctx} do
    assert Py.Context.eval(ctx, "z = n * 2\nz + n", %{n: 5}) == {:ok, 15}
    assert {:error, %Py.Error{type: "NameError"}} = Py.Context.eval(ctx, "n")
    assert Py.Context.eval(ctx, "z") == {:ok, 10}
    # A binding the cell assigns stays, with the cell's value.
    assert Py.Context.eval(ctx, "m = m + 1\nm", %{m: 1}) == {:ok, 2}
    assert Py.Context.eval(ctx, "m") == {:ok, 2}
    # A name the binding hid comes back.
    :ok = Py.Context.exec(ctx, "k = 'kept'")
    assert Py.Context.eval(ctx, "k2 = k\nk2", %{k: "bound"}) == {:ok, "bound"}
    assert Py.Context.eval(ctx, "k") == {:ok, "kept"}
  end

  test "assigned: true returns the names the cell assigned", %{ctx: ctx} do
    assert {:ok, 3, assigned} =
             Py.Context.eval(
               ctx,
               "import os\na = 1\nb, c = 2, 3\nfor i in range(2): pass\nc",
               %{},
               assigned: true
             )

    assert Map.take(assigned, ["a", "b", "c", "i"]) == %{"a" => 1, "b" => 2, "c" => 3, "i" => 1}
    # A module has no Elixir counterpart: it comes back as an object.
    assert %Py.Object{} = assigned["os"]
    assert Py.Context.eval(ctx, "x = 1", %{}, assigned: true) == {:ok, nil, %{"x" => 1}}
  end

  test "top-level await works in a cell", %{ctx: ctx} do
    assert Py.Context.eval(ctx, "import asyncio\nv = await asyncio.sleep(0, 7)\nv + 1") ==
             {:ok, 8}
  end

  test "expressions behave as before", %{ctx: ctx} do
    assert Py.Context.eval(ctx, "[i * i for i in range(4)]") == {:ok, [0, 1, 4, 9]}
    assert Py.Context.eval(ctx, "(y := 3) + 1") == {:ok, 4}
  end

  test "a SyntaxError gives its line, offset and text", %{ctx: ctx} do
    assert {:error, %Py.Error{kind: :python, type: "SyntaxError"} = error} =
             Py.Context.eval(ctx, "a = 1\nb = (2 +\nc = 3")

    assert is_integer(error.line) and error.line >= 2
    assert is_integer(error.offset)
    assert is_binary(error.text)

    assert {:error, %Py.Error{type: "SyntaxError", line: 1, text: text}} =
             Py.Context.exec(ctx, "def broken(:\n    pass")

    assert text =~ "def broken"
  end

  test "an error from an expression carries no SyntaxError fields", %{ctx: ctx} do
    assert {:error, %Py.Error{type: "ZeroDivisionError", line: nil, exception: nil}} =
             Py.Context.eval(ctx, "1 / 0")
  end

  test "exception: true keeps the exception object", %{ctx: ctx} do
    :ok =
      Py.Context.exec(
        ctx,
        "class Oops(Exception):\n    def __init__(self, code):\n        super().__init__('oops')\n        self.code = code"
      )

    assert {:error, %Py.Error{type: "__main__.Oops", exception: %Py.Object{} = exc}} =
             Py.Context.eval(ctx, "(_ for _ in ()).throw(Oops(42))", %{}, exception: true)

    assert Py.getattr(exc, :code) == {:ok, 42}

    assert {:error, %Py.Error{exception: %Py.Object{}}} =
             Py.Context.call(ctx, :math, :sqrt, [-1], exception: true)

    assert_raise ArgumentError, ~r/:exception option/, fn ->
      Py.Context.eval(ctx, "1", %{}, exception: :yes)
    end
  end
end
