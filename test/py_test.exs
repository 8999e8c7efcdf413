defmodule PyTest do
  use ExUnit.Case, async: true

  doctest Py.Error
  doctest Py

  test "call a module function" do
    assert Py.call(:math, :sqrt, [2.0]) == {:ok, :math.sqrt(2.0)}
    assert Py.call("os.path", :join, ["a", "b"]) == {:ok, "a/b"}
  end

  test "call with keyword arguments (keyword list or map)" do
    assert Py.call(:json, :dumps, [%{"b" => 1, "a" => 2}], kwargs: [sort_keys: true]) ==
             {:ok, ~s({"a": 2, "b": 1})}

    assert Py.call(:json, :dumps, [[1, 2]], kwargs: %{"separators" => {",", ":"}}) ==
             {:ok, "[1,2]"}
  end

  test "eval with and without bindings" do
    assert Py.eval("1 + 2") == {:ok, 3}
    assert Py.eval("x * y", %{x: 6, y: 7}) == {:ok, 42}
    assert Py.eval("[v * k for v in vals]", %{"vals" => [1, 2], "k" => 10}) == {:ok, [10, 20]}
    # bindings do not persist
    assert {:error, %Py.Error{type: "NameError"}} = Py.eval("k")
  end

  test "exec defines names that later evals in the same process see" do
    assert Py.exec("def double(v):\n    return 2 * v") == :ok
    assert Py.eval("double(21)") == {:ok, 42}
  end

  test "getattr and call_method on objects and modules" do
    assert Py.getattr(:math, :pi) == {:ok, :math.pi()}
    {:ok, counter} = Py.call(:collections, :Counter, [["a", "b", "a"]], return: :object)
    assert %Py.Object{type: "collections.Counter"} = counter
    assert Py.call_method(counter, :most_common, [1]) == {:ok, [{"a", 2}]}
    assert {:ok, %Py.Object{}} = Py.getattr(counter, :most_common)
  end

  test "calling an object itself with a nil function name" do
    {:ok, fun} = Py.eval("lambda a, b=1: a + b", %{}, return: :object)
    assert Py.call(fun, nil, [1], kwargs: [b: 5]) == {:ok, 6}
  end

  test "Python exceptions come back as Py.Error with type, message and traceback" do
    code = "def boom():\n    raise ValueError('bad value')\n"
    :ok = Py.exec(code)
    assert {:error, %Py.Error{} = error} = Py.eval("boom()")
    assert error.kind == :python
    assert error.type == "ValueError"
    assert error.message == "bad value"
    assert error.traceback =~ "in boom"
    assert error.traceback =~ "ValueError: bad value"
    assert Exception.message(error) == "ValueError: bad value"
  end

  test "non-builtin exception types are module-qualified" do
    assert {:error, %Py.Error{type: "json.decoder.JSONDecodeError"}} =
             Py.call(:json, :loads, ["{"])
  end

  test "bang variants return the value or raise Py.Error" do
    assert Py.call!(:math, :floor, [2.5]) == 2
    assert Py.eval!("'ok'") == "ok"
    assert Py.exec!("y = 1") == :ok
    assert Py.getattr!(:math, :e) == :math.exp(1)

    assert_raise Py.Error, "ZeroDivisionError: division by zero", fn -> Py.eval!("1/0") end
    assert_raise Py.Error, ~r/ModuleNotFoundError/, fn -> Py.call!(:no_such_module_xyz, :f) end
    assert_raise Py.Error, ~r/SyntaxError/, fn -> Py.exec!("def (") end
  end

  test "malformed requests give clear errors, not crashes" do
    assert {:error, %Py.Error{kind: :invalid, message: msg}} = Py.call(:math, 12, [])
    assert msg =~ "function name"
    assert {:error, %Py.Error{kind: :invalid}} = Py.call(:math, :sqrt, :not_a_list)
    assert {:error, %Py.Error{kind: :invalid, message: nul}} = Py.eval("1\0")
    assert nul =~ "NUL"
    assert {:error, %Py.Error{kind: :invalid}} = Py.call(:math, :sqrt, [1], kwargs: [{1, 2}])
    assert_raise ArgumentError, ~r/:return/, fn -> Py.eval("1", %{}, return: :bogus) end
    assert_raise ArgumentError, ~r/:timeout/, fn -> Py.eval("1", %{}, timeout: -1) end
  end

  test "info describes the running Python" do
    info = Py.info()
    assert info.python_version =~ ~r/^3\.\d+\.\d+/
    assert info.mode == if(System.get_env("PY_PARALLEL") == "1", do: :parallel, else: :worker)
    assert info.pool_size == Py.Pool.size()
    assert File.exists?(info.executable)
    assert info.libpython =~ "libpython3"
    {:ok, version} = Py.eval("'%d.%d.%d' % __import__('sys').version_info[:3]")
    assert info.python_version == version
  end

  test "the interpreter runs without Python's signal handlers" do
    # With Python's handlers SIGINT maps to default_int_handler; without
    # them Python installed no handler and getsignal returns None.
    assert Py.eval("__import__('signal').getsignal(__import__('signal').SIGINT) is None") ==
             {:ok, true}
  end

  test "sys.executable is the configured interpreter" do
    {:ok, exe} = Py.eval("__import__('sys').executable")
    assert exe == Py.info().executable
  end
end
