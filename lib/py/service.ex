defmodule Py.Service do
  @moduledoc """
  A Python function that keeps running, on a thread of its own, in a
  context's interpreter: an asyncio server, a consumer looping over a
  `Py.Channel`, a background worker. Calls to the same context go on
  meanwhile.

  `start_link/4` starts `module.function(*args, **kwargs)` on a new Python
  thread. When the function is a coroutine function (or returns an
  awaitable), the thread runs an event loop of its own until it finishes:
  tasks the service starts with `asyncio.create_task` and servers it opens
  with `asyncio.start_server` keep running between calls.

      Py.exec!(\"""
      import asyncio

      async def echo(port):
          async def client(reader, writer):
              while data := await reader.read(1024):
                  writer.write(data)
                  await writer.drain()
              writer.close()

          server = await asyncio.start_server(client, "127.0.0.1", port)
          async with server:
              await server.serve_forever()
      \""")

      {:ok, service} = Py.Service.start_link(:__main__, :echo, [4040])
      # ... :gen_tcp.connect(~c"127.0.0.1", 4040, ...) ...
      :ok = Py.Service.stop(service)

  The process that started the service (or `:notify`) gets one message when
  it ends:

    * `{:py_service, service, {:ok, value}}` - the function returned
    * `{:py_service, service, {:error, %Py.Error{}}}` - it raised, or the
      context closed under it (`:closed`)
    * `{:py_service, service, :stopped}` - `stop/2` (or the watcher's
      exit) stopped it

  `service` is the pid of the watcher process, which `start_link/4` links
  to the caller: when the caller exits, the service stops. The watcher ends
  (normally) after the message.

  ## Options

    * `:context`, `:pool` - where to run, as for `Py.call/4` (by default
      where the caller's calls go; `:__main__` functions resolve in the
      caller's namespace there)
    * `:kwargs` - keyword arguments for the function
    * `:notify` - the pid told when the service ends (default: the caller)
    * `:name` - registers the watcher, as `GenServer.start_link/3` does
    * `:timeout` - how long starting may take (default 5_000 ms)

  ## What a service sees

  Its `print` goes to the group leader of the process that started it (so
  `ExUnit.CaptureIO` and Livebook see it), `erlang.self()` is that process,
  and registered functions, `erlang.send` and logging work as in any
  Python thread (see docs/streaming-and-async.md). `stop/2` cancels the event loop's
  main task (coroutines see `asyncio.CancelledError` and may clean up), or
  raises `erlang.Interrupted` in a plain function, also when it waits on a
  `Py.Channel` or `Py.Buffer`. A stop does not wait for the calls
  running on the context: it runs on a thread of its own, beside them. A
  context that closes stops its services first (waiting up to 2 s for
  them).

  In an isolated context a service runs in the context's OS process; if
  that process crashes, the service ends with it, and the end message is
  `{:py_service, pid, {:error, %Py.Error{kind: :crashed}}}` (the context
  restarts without the service).
  """
  use GenServer

  alias Py.Error

  @type t :: GenServer.server()
  @type outcome :: {:ok, term} | {:error, Error.t()} | :stopped

  @exit_wait 5_000

  @start_code "__import__('erlang')._service_start(_py_token, _py_watcher, _py_module, _py_name, _py_args, _py_kwargs)"

  @doc """
  Starts `module.function(*args)` as a service; see the module doc.

  Returns `{:ok, pid}`, or `{:error, %Py.Error{}}` when the function cannot
  be found or started (nothing keeps running then).
  """
  @spec start_link(Py.name(), Py.name(), list, keyword) :: {:ok, pid} | {:error, Error.t()}
  def start_link(module, function, args \\ [], opts \\ []) do
    opts = Py.Options.keyword!(opts)
    {notify, opts} = Keyword.pop(opts, :notify, self())
    {name, opts} = Keyword.pop(opts, :name)
    {kwargs, opts} = Keyword.pop(opts, :kwargs, [])
    check_start!(module, function, args, notify)

    with {:ok, context, opts} <- context_of(module, function, opts) do
      token = Integer.to_string(System.unique_integer([:positive]))
      gen_opts = if name, do: [name: name], else: []
      init = %{context: context, token: token, notify: notify}
      {:ok, watcher} = GenServer.start_link(__MODULE__, init, gen_opts)

      bindings = %{
        "_py_token" => token,
        "_py_watcher" => watcher,
        "_py_module" => to_string(module),
        "_py_name" => to_string(function),
        "_py_args" => args,
        "_py_kwargs" => Map.new(kwargs, fn {k, v} -> {to_string(k), v} end)
      }

      case Py.eval(@start_code, bindings, opts) do
        {:ok, _} ->
          {:ok, watcher}

        {:error, error} ->
          unlink_and_stop(watcher)
          {:error, error}
      end
    end
  end

  @doc """
  Stops the service and waits until it has ended (at most `timeout` ms).
  Returns `:ok`, also when it had ended already.
  """
  @spec stop(t, timeout) :: :ok
  def stop(service, timeout \\ 5_000) do
    GenServer.call(service, :stop, timeout)
  catch
    :exit, {:noproc, _} -> :ok
    :exit, {:normal, _} -> :ok
  end

  # The context a call of `module.function` from this process goes to with
  # `opts`, and the options that send the start there (in a pool: through
  # the caller's binding, so `__main__` is the caller's namespace).
  defp context_of(module, function, opts) do
    case Keyword.fetch(opts, :context) do
      {:ok, context} ->
        {:ok, Py.Options.context!(context), opts}

      :error ->
        pool =
          Keyword.get_lazy(opts, :pool, fn ->
            Py.Router.pool_for({:call, module, function, [], [], :value})
          end)

        with {:ok, {{pid, _ref}, _namespace, _}} <- Py.Dispatch.current_binding(pool) do
          {:ok, pid, Keyword.put(opts, :pool, pool)}
        end
    end
  end

  defp check_start!(module, function, args, notify) do
    unless (is_atom(module) or is_binary(module)) and (is_atom(function) or is_binary(function)) do
      raise ArgumentError,
            "Py.Service.start_link/4 takes a module and a function name (atoms or strings), " <>
              "got: #{inspect(module)}, #{inspect(function)}"
    end

    unless is_list(args) do
      raise ArgumentError,
            "Py.Service.start_link/4 takes its args as a list, got: #{inspect(args)}"
    end

    unless is_pid(notify) do
      raise ArgumentError, "the :notify option of Py.Service is a pid, got: #{inspect(notify)}"
    end
  end

  defp unlink_and_stop(watcher) do
    Process.unlink(watcher)
    GenServer.stop(watcher, :normal)
  end

  # ------------------------------------------------------------ watcher

  @impl true
  def init(%{context: context} = state) do
    Process.flag(:trap_exit, true)

    monitor =
      case GenServer.whereis(context) do
        pid when is_pid(pid) -> Process.monitor(pid)
        _ -> nil
      end

    # In an isolated (or remote) context the service runs on another node,
    # whose end the context outlives (it restarts under the same pid).
    node = context_node(context)
    if node, do: Node.monitor(node, true)

    {:ok, Map.merge(state, %{monitor: monitor, node: node, stopping: [], ended: false})}
  end

  defp context_node(context) do
    case Py.Context.handle(context) do
      {:ok, {_pid, {:isolated, %{node: node}}}} when is_atom(node) -> node
      _ -> nil
    end
  end

  @impl true
  def handle_call(:stop, from, %{stopping: []} = state) do
    # Asked, not awaited: the end message that follows answers the caller.
    _tag = beside(state, :_service_stop)
    {:noreply, %{state | stopping: [from]}}
  end

  def handle_call(:stop, from, state),
    do: {:noreply, %{state | stopping: [from | state.stopping]}}

  @impl true
  def handle_info({"py_service_end", token, "ok", value}, %{token: token} = state),
    do: finish(state, {:ok, value})

  def handle_info({"py_service_end", token, "stopped"}, %{token: token} = state),
    do: finish(state, :stopped)

  def handle_info(
        {"py_service_end", token, "error", type, message, traceback},
        %{token: token} = state
      ),
      do:
        finish(
          state,
          {:error, %Error{kind: :python, type: type, message: message, traceback: traceback}}
        )

  def handle_info({:DOWN, ref, _, _, _}, %{monitor: ref} = state),
    do: finish(%{state | monitor: nil}, {:error, Error.closed()})

  # The context's OS process (or node) ended, and the service with it; the
  # context restarts without it (nothing to forget there).
  def handle_info({:nodedown, node}, %{node: node} = state) do
    error = %Error{
      kind: :crashed,
      message:
        "the service's context lost its Python process (node #{node} went down); " <>
          "it restarts without the service"
    }

    finish(%{state | monitor: nil, node: nil}, {:error, error})
  end

  def handle_info(_message, state), do: {:noreply, state}

  # The caller (the parent, linked) exited, or a supervisor stops the
  # watcher: stop the service and wait for its end (at most @exit_wait ms).
  @impl true
  def terminate(_reason, %{ended: false} = state) do
    # Not running (never started, or ended already): nothing to wait for.
    if run_beside(state, :_service_stop, 5_000) == {:ok, true} do
      wait_end(state, state.token)
    end
  end

  def terminate(_reason, _state), do: :ok

  defp wait_end(state, token) do
    receive do
      {"py_service_end", ^token, _} -> forget(state)
      {"py_service_end", ^token, _, _} -> forget(state)
      {"py_service_end", ^token, _, _, _, _} -> forget(state)
    after
      @exit_wait -> :ok
    end
  end

  # `erlang._service_stop` (flags the service, which ends at its next
  # step; the end message follows) and `_service_forget` (waits for the
  # thread's last step) run beside the context's runner, on a thread of
  # their own: a context busy with a long call does not hold up a stop.
  # Returns a tag: the outcome comes as `{tag, outcome}` (one that comes
  # after its wait gave up falls to the catch-all `handle_info/2`).
  defp beside(%{context: context, token: token}, function) do
    tag = make_ref()

    case Py.Context.handle(context) do
      {:ok, {_pid, ref}} when is_reference(ref) ->
        case Py.Native.context_beside(ref, Atom.to_string(function), token, tag) do
          :ok -> tag
          {:error, _} -> call_on_context(context, function, token, tag)
        end

      # An isolated context: the call goes to its process, queued there.
      _ ->
        call_on_context(context, function, token, tag)
    end
  end

  defp call_on_context(context, function, token, tag) do
    me = self()
    opts = [context: context, timeout: 10_000]
    spawn(fn -> send(me, {tag, Py.call(:erlang, function, [token], opts)}) end)
    tag
  end

  # Waits at most `wait` ms for the outcome.
  defp run_beside(state, function, wait) do
    tag = beside(state, function)

    receive do
      {^tag, outcome} -> outcome
    after
      wait -> {:error, :timeout}
    end
  end

  defp finish(state, outcome) do
    # The thread's last step is near: wait for it, so that when the owner
    # hears of the end no thread of the service is left.
    forget(state)

    outcome =
      if state.stopping != [] and match?({:error, _}, outcome), do: :stopped, else: outcome

    send(state.notify, {:py_service, self(), outcome})
    Enum.each(state.stopping, &GenServer.reply(&1, :ok))
    {:stop, :normal, %{state | ended: true}}
  end

  defp forget(%{monitor: nil}), do: :ok

  defp forget(state), do: run_beside(state, :_service_forget, 10_000)
end
