defmodule Py.IOTest do
  use ExUnit.Case, async: true
  import ExUnit.CaptureIO

  test "print goes to the caller's group leader" do
    assert capture_io(fn -> :ok = Py.exec("print('hello from Python')") end) ==
             "hello from Python\n"
  end

  test "stdout and stderr both reach the group leader, in order" do
    code = "import sys\nprint('one')\nsys.stderr.write('two\\n')\nsys.stdout.write('three')"
    assert capture_io(fn -> :ok = Py.exec(code) end) == "one\ntwo\nthree"
  end

  test "large output arrives complete before the call returns" do
    output = capture_io(fn -> :ok = Py.exec("for i in range(10000):\n    print(i)") end)
    assert output == Enum.map_join(0..9999, fn i -> "#{i}\n" end)
  end

  test "output of a call that raises is still delivered" do
    assert capture_io(fn ->
             assert {:error, %Py.Error{type: "RuntimeError"}} =
                      Py.exec("print('before')\nraise RuntimeError('x')")
           end) == "before\n"
  end

  test "non-ASCII output" do
    assert capture_io(fn -> Py.exec("print('héllo ✓')") end) == "héllo ✓\n"
  end

  test "each process's output goes to its own group leader" do
    a = Task.async(fn -> capture_io(fn -> Py.exec("print('a')") end) end)
    b = Task.async(fn -> capture_io(fn -> Py.exec("print('b')") end) end)
    assert Task.await(a) == "a\n"
    assert Task.await(b) == "b\n"
  end
end
