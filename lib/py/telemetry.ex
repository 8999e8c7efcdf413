defmodule Py.Telemetry do
  @moduledoc """
  Events py emits about its own health, in the shape of `:telemetry`
  events: a name (a list of atoms), a map of measurements and a map of
  metadata.

  When the `:telemetry` library is loaded (a Phoenix app has it), every
  event also goes to `:telemetry.execute/3`, so the handlers you attach
  there see it. Without it, attach handlers here:

      Py.Telemetry.attach(:my_handler, [:py, :context, :retired], fn name, measurements, meta, _config ->
        IO.inspect({name, measurements, meta})
      end)

  Events:

    * `[:py, :context, :retired]` - a context's thread stayed stuck after its
      running call was interrupted (code blocked in C, where interrupts do
      not reach), so the context was given a fresh thread (in the parallel
      pool: its sub-interpreter slot was replaced). Measurements:
      `%{count: 1, stuck_ms: grace}`; metadata: `%{context: pid, pool:
      name | nil, index: i | nil}`. The stuck thread ends by itself if it
      ever returns to Python. `Py.info().retired` counts them.
    * `[:py, :context, :crashed]` - the OS process of an isolated context
      ended (a signal, `os._exit`, the OOM killer, a kill from outside), or
      the node of a remote context went down; the context restarts.
      Measurements: `%{count: 1}`; metadata: `%{context: pid, pool: {name,
      index} | nil, reason: message}` and, for an isolated context,
      `:os_pid` and `:exit_status` (128 + N for signal N), or `:node` for a
      remote one. See `docs/isolation.md`.

  Handlers run in the process that emits the event (for both, the
  context's owner). A handler that raises
  is detached and the failure logged, as `:telemetry` does.
  """

  require Logger

  @handlers {__MODULE__, :handlers}

  @typedoc "An event name."
  @type event :: [atom, ...]

  @doc """
  Attaches `fun` (arity 4: event, measurements, metadata, `config`) to
  `event` (one name or a list of names) under `id`. Returns
  `{:error, :already_exists}` when `id` is taken.
  """
  @spec attach(term, event | [event], (event, map, map, term -> any), term) ::
          :ok | {:error, :already_exists}
  def attach(id, event, fun, config \\ nil)

  def attach(id, [name | _] = event, fun, config) when is_atom(name),
    do: attach(id, [event], fun, config)

  def attach(id, events, fun, config) when is_list(events) and is_function(fun, 4) do
    unless Enum.all?(events, &event?/1) do
      raise ArgumentError,
            "Py.Telemetry.attach/4 takes an event name (a list of atoms) or a list of them, " <>
              "got: #{inspect(events)}"
    end

    handlers = handlers()

    if Map.has_key?(handlers, id) do
      {:error, :already_exists}
    else
      :persistent_term.put(@handlers, Map.put(handlers, id, {events, fun, config}))
      :ok
    end
  end

  def attach(_id, events, fun, _config) do
    raise ArgumentError,
          "Py.Telemetry.attach/4 takes event names and a function of arity 4, got: " <>
            "#{inspect(events)} and #{inspect(fun)}"
  end

  @doc "Detaches the handler `id`; `{:error, :not_found}` when there is none."
  @spec detach(term) :: :ok | {:error, :not_found}
  def detach(id) do
    handlers = handlers()

    if Map.has_key?(handlers, id) do
      :persistent_term.put(@handlers, Map.delete(handlers, id))
      :ok
    else
      {:error, :not_found}
    end
  end

  @doc false
  # Emits an event to the handlers attached here and to :telemetry.
  def execute(event, measurements, metadata) do
    for {id, {events, fun, config}} <- handlers(), event in events do
      try do
        fun.(event, measurements, metadata, config)
      rescue
        error ->
          detach(id)

          Logger.error(
            "Py.Telemetry handler #{inspect(id)} raised and was detached: " <>
              Exception.format(:error, error, __STACKTRACE__)
          )
      end
    end

    if Code.ensure_loaded?(:telemetry) do
      apply(:telemetry, :execute, [event, measurements, metadata])
    end

    :ok
  end

  defp handlers, do: :persistent_term.get(@handlers, %{})
  defp event?(event), do: is_list(event) and event != [] and Enum.all?(event, &is_atom/1)
end
