defmodule Py.SigilTest do
  # ~PY exists from Elixir 1.15 (multi-letter sigils). The code below is in
  # strings, evaluated, so this file also parses on 1.14.
  use ExUnit.Case, async: true

  if Version.match?(System.version(), ">= 1.15.0") do
    # Evaluated only here: on Elixir 1.14 there is no Py.Sigil to read.
    Code.eval_quoted(quote(do: doctest(Py.Sigil)), [], __ENV__)

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

    test "the code is literal: no interpolation" do
      assert {"\#{x}", _} = run(~S[~PY"'#{x}'"])
    end

    test "an assigned name that is no Elixir variable name does not bind" do
      {value, binding} =
        run(~S'''
        ~PY"""
        _hidden = 1
        Upper = 2
        lower = 3
        """
        ''')

      assert value == nil
      assert Keyword.keys(binding) == [:lower]
    end

    test "assigned names the code does not use bring no unused-variable warning" do
      module = "Elixir.Py.SigilTest.Unused#{System.unique_integer([:positive])}"

      warnings =
        ExUnit.CaptureIO.capture_io(:stderr, fn ->
          Code.compile_string("""
          defmodule #{module} do
            import Py.Sigil
            def run do
              ~PY"never_used = 1"
              :ok
            end
          end
          """)
        end)

      refute warnings =~ "unused"
      assert String.to_existing_atom(module).run() == :ok
    end
  else
    test "Py.Sigil is not defined before Elixir 1.15" do
      refute Code.ensure_loaded?(Py.Sigil)
    end
  end
end
