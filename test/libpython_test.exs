defmodule Py.LibpythonTest do
  use ExUnit.Case, async: true

  test "C extension modules import (libpython is globally visible)" do
    assert Py.eval("str(__import__('decimal').Decimal('1.1') + 1)") == {:ok, "2.1"}
    assert Py.eval("__import__('ctypes').sizeof(__import__('ctypes').c_int32)") == {:ok, 4}
    assert Py.eval("__import__('json').dumps([1, {'a': None}])") == {:ok, ~s([1, {"a": null}])}

    :ok =
      Py.exec("""
      import sqlite3
      db = sqlite3.connect(":memory:")
      db.execute("create table t (x integer)")
      db.executemany("insert into t values (?)", [(1,), (2,), (3,)])
      total = db.execute("select sum(x) from t").fetchone()[0]
      """)

    assert Py.eval("total") == {:ok, 6}
  end

  @tag :numpy
  test "numpy imports from the venv and arrays come back as handles" do
    # A main-interpreter context: numpy refuses sub-interpreters (parallel builds).
    {:ok, ctx} = Py.Context.start_link(interpreter: :main)
    assert Py.Context.eval(ctx, "int(__import__('numpy').arange(10).sum())") == {:ok, 45}
    {:ok, array} = Py.Context.eval(ctx, "__import__('numpy').linspace(0, 1, 3)")
    assert %Py.Object{type: "numpy.ndarray"} = array
    assert Py.call_method(array, :tolist, [], context: ctx) == {:ok, [0.0, 0.5, 1.0]}
  end

  test "a venv interpreter sees its own site-packages" do
    {:ok, [prefix, base]} = Py.eval("[__import__('sys').prefix, __import__('sys').base_prefix]")

    if Path.basename(Path.dirname(Path.dirname(Py.info().executable))) =~ "venv" do
      assert prefix != base
      assert String.starts_with?(Py.info().executable, prefix)
    else
      assert is_binary(prefix)
    end
  end
end
