defmodule Py.SigilTest do
  # ~PY exists from Elixir 1.15 (multi-letter sigils). The code below is in
  # strings, evaluated, so this file also parses on 1.14.
  use ExUnit.Case, async: true

  if Version.match?(System.version(), ">= 1.15.0") do
    # Evaluated only here: on Elixir 1.14 there is no Py.Sigil to read.
    Module.eval_quoted(__ENV__, quote(do: doctest(Py.Sigil)))

    defp run(code, binding \\ []) do
      Code.eval_string("import Py.Sigil\n" <> code, binding)
    end

    test "Elixir variables the code reads go in; its value comes out" do
      assert {[3, 4], _} = run(~s(~PY"[n + 1 for n in items]"), items: [2, 3])
    end

    test "names the cell assigns become Elixir variables" do
      {value, binding} =
        run(~S'''
        base = 10
        ~PY"""
        import math
        total = base * 2
        def twice(v):
            return v * 2
        label = "t" + str(total)
        """
        {total, label, twice}
        ''')

      assert {20, "t20", %Py.Object{}} = value
      assert binding[:base] == 10
    end

    test "a function the cell defines reads Elixir variables as globals" do
      assert {12, _} =
               run(~S'''
               factor = 3
               ~PY"""
               def scale(v):
                   return v * factor
               scale(4)
               """
               ''')
    end

    test "a Python error raises Py.Error" do
      assert_raise Py.Error, ~r/ZeroDivisionError/, fn -> run(~s(~PY"1 / 0")) end
    end

    test "interpolation is refused at compile time" do
      assert_raise ArgumentError, ~r/does not interpolate/, fn ->
        run(~S[x = 1
        ~PY"#{x} + 1"])
      end
    end
  else
    test "Py.Sigil is not defined before Elixir 1.15" do
      refute Code.ensure_loaded?(Py.Sigil)
    end
  end
end
