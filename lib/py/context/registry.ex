defmodule Py.Context.Registry do
  @moduledoc false
  # pid -> native context, in a public ETS table so a call finds the native
  # handle of a context without messaging it. Entries go when the context
  # process exits.
  use GenServer

  @table __MODULE__

  def start_link(_opts), do: GenServer.start_link(__MODULE__, [], name: __MODULE__)

  def register(pid, ref) do
    :ets.insert(@table, {pid, ref})
    GenServer.cast(__MODULE__, {:watch, pid})
  end

  @doc "Runs `fun` in the registry process, one at a time."
  def serialized(fun), do: GenServer.call(__MODULE__, {:run, fun})

  @doc "Every registered context: `{pid, native ref or {:isolated, info}}`."
  def all, do: :ets.tab2list(@table)

  def lookup(pid) do
    case :ets.lookup(@table, pid) do
      [{_, ref}] -> {:ok, ref}
      [] -> :error
    end
  end

  @impl true
  def init([]) do
    :ets.new(@table, [:named_table, :public, :set, read_concurrency: true])
    Py.Callbacks.create_table()
    Py.Isolated.Names.create_table()
    {:ok, nil}
  end

  @impl true
  def handle_call({:run, fun}, _from, state), do: {:reply, fun.(), state}

  @impl true
  def handle_cast({:watch, pid}, state) do
    Process.monitor(pid)
    {:noreply, state}
  end

  @impl true
  def handle_info({:DOWN, _, :process, pid, _}, state) do
    :ets.delete(@table, pid)
    {:noreply, state}
  end
end
