defmodule Py.Isolated.Names do
  @moduledoc false
  # Node names for isolated contexts' OS processes. Node names are atoms,
  # so they are reused: a name goes back when its process has ended, and a
  # new process takes the lowest free number. A VM that runs n isolated
  # contexts at once makes at most n such atoms, however often they restart.

  @table __MODULE__

  def create_table, do: :ets.new(@table, [:named_table, :public, :set])

  @doc "A free node name (taken until `give_back/1`)."
  def take, do: take(0)

  defp take(n) do
    if :ets.insert_new(@table, {n, true}), do: name(n), else: take(n + 1)
  end

  @doc "Returns a name to the free ones."
  def give_back(name) do
    case Regex.run(~r/^py_isolated_(\d+)_/, Atom.to_string(name)) do
      [_, n] -> :ets.delete(@table, String.to_integer(n))
      _ -> :ok
    end

    :ok
  end

  defp name(n) do
    [_, host] = node() |> Atom.to_string() |> String.split("@", parts: 2)
    :"py_isolated_#{n}_#{System.pid()}@#{host}"
  end
end
