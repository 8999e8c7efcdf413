defmodule Py.Install.RequiresPython do
  @moduledoc false
  # The `requires-python` of a pyproject text, checked against the running
  # Python before Py.install/2 installs anything. PEP 440 specifiers as
  # pyproject files use them: `>=`, `<=`, `>`, `<`, `==` and `!=` (with
  # `.*`), `~=`, `===`, joined by commas.

  @doc """
  `:ok` when `version` (e.g. "3.11.7") satisfies the text's
  `requires-python`, or the text has none; else `{:error, message}`.

      iex> Py.Install.RequiresPython.check("[project]\\nrequires-python = \\">=3.10,<3.13\\"", "3.11.7")
      :ok
      iex> Py.Install.RequiresPython.check("[project]\\nrequires-python = \\">=3.12\\"", "3.11.7")
      {:error, "the pyproject requires Python >=3.12 (requires-python), and py runs Python 3.11.7"}
  """
  def check(text, version) do
    case requires_python(text) do
      nil ->
        :ok

      spec ->
        case satisfied?(spec, version) do
          true ->
            :ok

          false ->
            {:error,
             "the pyproject requires Python #{spec} (requires-python), and py runs Python #{version}"}

          {:invalid, clause} ->
            {:error,
             "the pyproject's requires-python #{inspect(spec)} has a clause py cannot read: #{inspect(clause)}"}
        end
    end
  end

  # The value of `requires-python` in the [project] table.
  defp requires_python(text) do
    text
    |> String.split(~r/\r?\n/)
    |> Enum.reduce_while(nil, fn line, table ->
      line = String.trim(line)

      cond do
        String.starts_with?(line, "[") ->
          {:cont, line}

        table == "[project]" ->
          case Regex.run(~r/^requires-python\s*=\s*["']([^"']*)["']/, line) do
            [_, spec] -> {:halt, {:found, String.trim(spec)}}
            nil -> {:cont, table}
          end

        true ->
          {:cont, table}
      end
    end)
    |> case do
      {:found, spec} -> spec
      _ -> nil
    end
  end

  @doc false
  def satisfied?(spec, version) do
    spec
    |> String.split(",", trim: true)
    |> Enum.map(&String.replace(&1, " ", ""))
    |> Enum.reduce_while(true, fn clause, true ->
      case clause(clause) do
        {op, wanted} -> if(holds?(op, version, wanted), do: {:cont, true}, else: {:halt, false})
        :invalid -> {:halt, {:invalid, clause}}
      end
    end)
  end

  defp clause(text) do
    case Regex.run(~r/^(===|~=|==|!=|>=|<=|>|<)([0-9][0-9A-Za-z.*+!-]*)$/, text) do
      [_, op, wanted] -> {op, wanted}
      nil -> :invalid
    end
  end

  defp holds?("===", version, wanted), do: version == wanted
  defp holds?("==", version, wanted), do: equal?(version, wanted)
  defp holds?("!=", version, wanted), do: not equal?(version, wanted)
  defp holds?(">=", version, wanted), do: compare(version, wanted) != :lt
  defp holds?("<=", version, wanted), do: compare(version, wanted) != :gt
  defp holds?(">", version, wanted), do: compare(version, wanted) == :gt
  defp holds?("<", version, wanted), do: compare(version, wanted) == :lt

  # ~=X.Y means >=X.Y,==X.*; ~=X.Y.Z means >=X.Y.Z,==X.Y.*
  defp holds?("~=", version, wanted) do
    parts = numbers(wanted)
    prefix = parts |> Enum.drop(-1) |> Enum.join(".")
    compare(version, wanted) != :lt and equal?(version, prefix <> ".*")
  end

  defp equal?(version, wanted) do
    if String.ends_with?(wanted, ".*") do
      prefix = wanted |> String.trim_trailing(".*") |> numbers()
      Enum.take(numbers(version), length(prefix)) == prefix
    else
      compare(version, wanted) == :eq
    end
  end

  # Release numbers compared with zero padding (3.11 == 3.11.0).
  defp compare(a, b) do
    {a, b} = {numbers(a), numbers(b)}
    size = max(length(a), length(b))
    pad = fn list -> list ++ List.duplicate(0, size - length(list)) end

    case {pad.(a), pad.(b)} do
      {x, x} -> :eq
      {x, y} when x < y -> :lt
      _ -> :gt
    end
  end

  defp numbers(version) do
    version
    |> String.split(".")
    |> Enum.map(fn part -> part |> Integer.parse() |> elem_or_zero() end)
  end

  defp elem_or_zero({n, _}), do: n
  defp elem_or_zero(:error), do: 0
end
