defmodule Py.Application do
  @moduledoc false
  use Application

  @impl true
  def start(_type, _args) do
    case Py.Runtime.start() do
      {:ok, _info} ->
        Py.Config.load()
        Py.Router.load()
        # Shared state and trace handlers outlive any child process.
        Py.State.create_table()
        Py.Trace.create_table()
        Py.Context.create_counters()

        children = [
          Py.Context.Registry,
          Py.Venv,
          Py.Preload,
          {Py.Pool, name: :default, size: Py.Config.pool_size()},
          Py.EventSink
        ]

        Supervisor.start_link(children, strategy: :rest_for_one, name: Py.Supervisor)

      {:error, error} ->
        {:error, Exception.message(error)}
    end
  end
end
