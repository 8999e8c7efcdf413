# Multi-letter sigils exist from Elixir 1.15: compiled only there.
if Version.match?(System.version(), ">= 1.15.0") do
  defmodule Py.Sigil do
    @moduledoc """
    The `~PY` sigil (Elixir 1.15 and later): a Python code cell inline in
    Elixir, as in a notebook.

        import Py.Sigil

    Elixir variables the Python code reads are passed in by name, the value
    of the cell's last expression is the sigil's value, and the names the
    cell assigns become Elixir variables after it (when they are valid
    Elixir variable names; a value with no Elixir counterpart, such as a
    module or a function, is a `%Py.Object{}`):

        iex> import Py.Sigil
        iex> x = 20
        iex> ~PY\"""
        ...> y = x + 1
        ...> y * 2
        ...> \"""
        42
        iex> y
        21

    The cell runs like `Py.eval/3` (in the caller's namespace, so its names
    are there for later cells and calls); a Python error raises `Py.Error`.
    Which names the cell reads and assigns is read from the code when the
    sigil compiles, with Python's own `symtable` (py starts if it is not
    running). The code is literal (an uppercase sigil does not
    interpolate): pass values as variables.
    """

    @doc "See the module doc."
    defmacro sigil_PY({:<<>>, _meta, [code]}, modifiers) when is_binary(code) do
      if modifiers != [] do
        raise ArgumentError, "~PY takes no modifiers, got: #{inspect(List.to_string(modifiers))}"
      end

      {read, assigned} = names!(code)

      bindings =
        for name <- read, var = elixir_var(name), Macro.Env.has_var?(__CALLER__, {var, nil}) do
          {name, Macro.var(var, nil)}
        end

      assigned_vars = for name <- assigned, var = elixir_var(name), do: {name, var}
      result = Macro.unique_var(:result, __MODULE__)
      values = Macro.unique_var(:assigned, __MODULE__)

      binds =
        for {name, var} <- assigned_vars do
          quote do
            unquote({var, [generated: true], nil}) = Map.get(unquote(values), unquote(name))
          end
        end

      quote do
        {unquote(result), unquote(values)} =
          Py.Sigil.__run__(unquote(code), %{unquote_splicing(bindings)})

        unquote_splicing(binds)
        unquote(result)
      end
    end

    @doc false
    def __run__(code, bindings) do
      case Py.eval(code, bindings, assigned: true) do
        {:ok, value, assigned} -> {value, assigned}
        {:error, error} -> raise error
      end
    end

    # At compile time: the names the code reads and assigns.
    defp names!(code) do
      {:ok, _} = Application.ensure_all_started(:py)

      case Py.call(:erlang, :_cell_names, [code]) do
        {:ok, {read, assigned}} -> {read, assigned}
        {:error, error} -> raise error
      end
    end

    # An Elixir variable name for a Python name, or nil: lowercase first,
    # no leading underscore (those do not bind), nothing Elixir reserves.
    @reserved ~w(true false nil when and or not in fn do end catch rescue after else)
    defp elixir_var(name) do
      if name =~ ~r/^[a-z][A-Za-z0-9_]*$/ and name not in @reserved,
        do: String.to_atom(name)
    end
  end
end
