defmodule Py.State do
  @moduledoc """
  Shared state for Elixir and Python, in ETS: one table for the whole VM,
  seen by every context and every interpreter (parallel pool slots too).

  From Elixir:

      Py.State.put("config", %{"retries" => 3})
      Py.State.get("config")            #=> %{"retries" => 3}
      Py.State.incr("hits")             #=> 1   (atomic)

  From Python (the same names as erlang_python, so its code runs
  unchanged), in any thread:

      from erlang import state_get, state_set, state_incr
      state_set("model", "v2")
      state_incr("hits", 5)             # atomic; returns the new value
      state_get("missing", "default")

  Python's `state_delete`, `state_keys`, `state_decr` and `state_clear`
  exist too. Keys are any term from Elixir; atom keys are stored as
  strings (`:hits` and `"hits"` are the same key), which is what Python's
  `str` keys become. Values cross with the usual conversion; keep them plain
  data (a `%Py.Object{}` stored here works only in the interpreter that made
  it). Counters are integers changed with `:ets.update_counter/4`, so
  concurrent increments from any number of processes and contexts never
  lose an update.

  In code running in a call, the calling process serves the Python
  functions (no extra process); in a Python thread outside any call, py's
  event sink process does, while the thread waits without the GIL. See
  `docs/observability.md`.
  """

  @table __MODULE__

  @doc "The value stored under `key`, or `default`."
  @spec get(term, term) :: term
  def get(key, default \\ nil) do
    case :ets.lookup(@table, key(key)) do
      [{_, value}] -> value
      [] -> default
    end
  end

  @doc "Stores `value` under `key`."
  @spec put(term, term) :: :ok
  def put(key, value) do
    :ets.insert(@table, {key(key), value})
    :ok
  end

  @doc "Removes `key` (no error when it is absent)."
  @spec delete(term) :: :ok
  def delete(key) do
    :ets.delete(@table, key(key))
    :ok
  end

  @doc "All keys."
  @spec keys() :: [term]
  def keys, do: :ets.select(@table, [{{:"$1", :_}, [], [:"$1"]}])

  @doc """
  Adds `amount` to the integer under `key` (starting from 0 when absent)
  and returns the new value, atomically. Raises `ArgumentError` if the
  value there is not an integer.
  """
  @spec incr(term, integer) :: integer
  def incr(key, amount \\ 1)

  def incr(key, amount) when is_integer(amount) do
    key = key(key)
    :ets.update_counter(@table, key, {2, amount}, {key, 0})
  rescue
    ArgumentError ->
      raise ArgumentError,
            "Py.State: the value under #{inspect(key)} is not an integer, so it cannot be counted"
  end

  def incr(_key, amount), do: raise(ArgumentError, not_an_amount("incr", amount))

  @doc "Subtracts `amount` from the integer under `key`; like `incr/2`."
  @spec decr(term, integer) :: integer
  def decr(key, amount \\ 1)
  def decr(key, amount) when is_integer(amount), do: incr(key, -amount)
  def decr(_key, amount), do: raise(ArgumentError, not_an_amount("decr", amount))

  defp not_an_amount(function, amount) do
    "Py.State.#{function}/2 counts by an integer amount, got: #{inspect(amount)} " <>
      "(store other numbers with Py.State.put/2)"
  end

  @doc "Removes every key."
  @spec clear() :: :ok
  def clear do
    :ets.delete_all_objects(@table)
    :ok
  end

  @doc false
  def create_table do
    :ets.new(@table, [
      :named_table,
      :public,
      :set,
      read_concurrency: true,
      write_concurrency: true
    ])
  end

  @doc false
  # Serves Python's erlang.state_* functions: `{:ok, value}` or
  # `{:error, message}` (raised in Python as erlang.Error).
  def serve("state_get", [key, default]), do: {:ok, get(key, default)}
  def serve("state_keys", []), do: {:ok, keys()}

  def serve("state_set", [key, value]) do
    put(key, value)
    {:ok, nil}
  end

  def serve("state_delete", [key]) do
    delete(key)
    {:ok, nil}
  end

  def serve("state_clear", []) do
    clear()
    {:ok, nil}
  end

  def serve("state_incr", [key, amount]) when is_integer(amount) do
    {:ok, incr(key, amount)}
  rescue
    e in ArgumentError -> {:error, Exception.message(e)}
  end

  def serve("state_incr", [_key, amount]),
    do: {:error, "state_incr/state_decr: the amount must be an int, got: #{inspect(amount)}"}

  def serve(name, args),
    do: {:error, "py has no internal function #{inspect(name)} taking #{length(args)} arguments"}

  defp key(key) when is_atom(key) and key not in [nil, true, false], do: Atom.to_string(key)
  defp key(key), do: key
end
