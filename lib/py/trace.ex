defmodule Py.Trace do
  @moduledoc """
  Trace spans from Python code, delivered to Elixir handlers.

  In Python, a span wraps an operation:

      import erlang

      with erlang.Span("load", path=path) as span:
          data = read(path)
          span.set_attribute("bytes", len(data))
          span.event("parsed")

      @erlang.trace("predict")          # or @erlang.trace for the function's name
      def predict(x): ...

  When tracing is on (`enable/0`, or `config :py, tracing: true`), each
  span that ends calls every attached handler with an event map:

    * `:name` - the span's name (a string)
    * `:id`, `:parent_id`, `:trace_id` - integers; `:parent_id` is the
      enclosing span's id or `nil` (nesting follows Python's
      `contextvars`: each thread and asyncio task has its own current
      span, and a task starts inside its creator's); `:trace_id` is
      the id of the outermost span
    * `:start_time_us` - when it began, microseconds since the Unix epoch
    * `:duration_us` - how long it took, in microseconds
    * `:status` - `:ok`, or `:error` when an exception left the span
    * `:error` - `nil` or `%{type: "ValueError", message: "..."}`
    * `:attributes` - a map with string keys (values that are not plain
      data arrive as their `repr`)
    * `:events` - `[%{name: ..., time_us: ..., attributes: %{}}]`, in order

  Handlers run in the process that made the call, before the call returns
  (spans from Python threads outside any call: in py's event sink
  process). A handler that raises is detached and the failure logged.

      Py.Trace.attach(:printer, fn span -> IO.inspect({span.name, span.duration_us}) end)
      Py.Trace.enable()

  When tracing is off a span costs one native call, and nothing is sent.
  See `docs/observability.md`.
  """

  require Logger

  @table __MODULE__
  @enabled_key {__MODULE__, :enabled}

  @typedoc "A finished span, as handlers receive it."
  @type span :: %{
          name: String.t(),
          id: pos_integer,
          parent_id: pos_integer | nil,
          trace_id: pos_integer,
          start_time_us: integer,
          duration_us: non_neg_integer,
          status: :ok | :error,
          error: %{type: String.t(), message: String.t()} | nil,
          attributes: map,
          events: [%{name: String.t(), time_us: integer, attributes: map}]
        }

  @doc "Turns span collection on in every interpreter."
  @spec enable() :: :ok
  def enable, do: put_enabled(true)

  @doc "Turns span collection off: spans then cost one native call."
  @spec disable() :: :ok
  def disable, do: put_enabled(false)

  @doc "Whether span collection is on."
  @spec enabled?() :: boolean
  def enabled?, do: :persistent_term.get(@enabled_key, false)

  @doc false
  def put_enabled(on) when is_boolean(on) do
    :persistent_term.put(@enabled_key, on)
    Py.Native.tracing_set(on)
  end

  @doc """
  Attaches `handler` (a function of one argument, the span map) under `id`.
  Returns `{:error, :already_exists}` if `id` is taken.
  """
  @spec attach(term, (span -> any)) :: :ok | {:error, :already_exists}
  def attach(id, handler) when is_function(handler, 1) do
    if :ets.insert_new(@table, {id, handler}), do: :ok, else: {:error, :already_exists}
  end

  def attach(_id, handler) do
    raise ArgumentError,
          "Py.Trace.attach/2 needs a function of one argument, got: #{inspect(handler)}"
  end

  @doc "Detaches the handler attached under `id`."
  @spec detach(term) :: :ok | {:error, :not_found}
  def detach(id) do
    case :ets.take(@table, id) do
      [_] -> :ok
      [] -> {:error, :not_found}
    end
  end

  @doc "The ids of the attached handlers."
  @spec handlers() :: [term]
  def handlers, do: :ets.select(@table, [{{:"$1", :_}, [], [:"$1"]}])

  @doc false
  def create_table do
    :ets.new(@table, [:named_table, :public, :set, read_concurrency: true])
  end

  @doc false
  # A finished span from Python (see observe.py's Span._close).
  def handle_span(
        {name, id, parent_id, trace_id, start_us, duration_us, status, error, attributes, events}
      ) do
    span = %{
      name: name,
      id: id,
      parent_id: parent_id,
      trace_id: trace_id,
      start_time_us: start_us,
      duration_us: duration_us,
      status: if(status == "ok", do: :ok, else: :error),
      error: error(error),
      attributes: attributes,
      events: Enum.map(events, fn {n, t, a} -> %{name: n, time_us: t, attributes: a} end)
    }

    for {hid, handler} <- :ets.tab2list(@table), do: run(hid, handler, span)
    :ok
  end

  def handle_span(_other), do: :ok

  defp error(nil), do: nil
  defp error({type, message}), do: %{type: type, message: message}

  defp run(id, handler, span) do
    handler.(span)
  rescue
    e -> failed(id, Exception.format(:error, e, __STACKTRACE__))
  catch
    kind, reason -> failed(id, Exception.format(kind, reason, __STACKTRACE__))
  end

  defp failed(id, text) do
    :ets.delete(@table, id)
    Logger.error("Py.Trace handler #{inspect(id)} failed and was detached: " <> text)
  end
end
