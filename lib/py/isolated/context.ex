defmodule Py.Isolated.Context do
  @moduledoc false
  # The owner of an isolated context (`Py.Context.start_link(isolation:
  # :os_process)`) or a remote one (`node: node`): a process on this node
  # that starts the context where it runs, registers it (so calls find it
  # without a message), learns how it ended when it ends, and starts a
  # fresh one. Calls do not pass through it (see `Py.Isolated.Call`).
  #
  # Each start is a *generation*: handles and stand-ins belong to one. A
  # context's OS process that dies (a signal, `os._exit`, the OOM killer, a
  # kill from outside) or a remote node that goes is a crash: every caller
  # waiting on that generation gets a `:crashed` error that says how it
  # ended (`crash_error/2`), a Logger warning and the
  # `[:py, :context, :crashed]` event record it, and the next generation
  # starts. With `max_calls: n` the OS process is replaced after n calls:
  # the next generation takes new calls while the old one finishes what it
  # has, then stops.
  use GenServer
  require Logger

  alias Py.Isolated.{Child, OsProcess}

  @start_timeout 60_000

  def start_link(opts, gen_opts), do: GenServer.start_link(__MODULE__, opts, gen_opts)
  def start(opts, gen_opts), do: GenServer.start(__MODULE__, opts, gen_opts)

  @doc false
  # The checked options: `{placement, context_opts}`.
  def options!(opts) do
    placement =
      case {Keyword.get(opts, :isolation, :none), Keyword.get(opts, :node)} do
        {:os_process, nil} ->
          :os_process

        {:none, nil} ->
          nil

        # This node: an ordinary context (a pool over nodes may list it).
        {:none, node} when node == node() ->
          nil

        {:none, node} when is_atom(node) and node not in [true, false] ->
          {:node, node}

        # On a node of a :pg group (a pool's context `index` takes the
        # index-th of the group's nodes, sorted).
        {:none, {:pg, group}} ->
          {:pg, group, 0}

        {:none, {:pg, group, index}} when is_integer(index) and index >= 0 ->
          {:pg, group, index}

        {isolation, node} ->
          raise ArgumentError,
                "the :isolation option must be :none or :os_process, and :node a node name " <>
                  "or {:pg, group} (a context on another node needs no :isolation), got: " <>
                  "isolation: #{inspect(isolation)}, node: #{inspect(node)}"
      end

    max_memory = positive!(opts, :max_memory, "bytes, for example 512_000_000")
    max_calls = positive!(opts, :max_calls, "a number of calls")

    if max_memory && placement != :os_process do
      raise ArgumentError, "the :max_memory option needs isolation: :os_process"
    end

    if max_calls && placement != :os_process do
      raise ArgumentError, "the :max_calls option needs isolation: :os_process"
    end

    {placement, [max_memory: max_memory, max_calls: max_calls]}
  end

  defp positive!(opts, key, what) do
    case Keyword.get(opts, key) do
      nil ->
        nil

      n when is_integer(n) and n > 0 ->
        n

      other ->
        raise ArgumentError,
              "the #{inspect(key)} option must be a positive integer (#{what}), got: " <>
                inspect(other)
    end
  end

  # ------------------------------------------------------------ callers

  @doc false
  # The live generation's handle, waiting while the owner starts it.
  def current(owner) do
    GenServer.call(owner, :current, @start_timeout + 5_000)
  catch
    :exit, _ -> {:error, Py.Error.closed()}
  end

  @doc false
  # The `:crashed` error for a call whose generation ended.
  def crash_error(owner, iso) do
    GenServer.call(owner, {:crash_error, iso.generation}, 15_000)
  catch
    :exit, _ -> crashed("the isolated Python context #{inspect(owner)} ended")
  end

  @doc false
  # Counts a finished call toward :max_calls.
  def count_call(_owner, %{max_calls: nil}), do: :ok

  # The call that reaches the count waits for the next generation, so the
  # next call from a process goes there.
  def count_call(owner, %{max_calls: max, calls: calls, generation: generation}) do
    if :atomics.add_get(calls, 1, 1) == max do
      try do
        GenServer.call(owner, {:recycle, generation}, @start_timeout + 5_000)
      catch
        :exit, _ -> :ok
      end
    end

    :ok
  end

  @doc false
  # A function was registered or unregistered: tell every isolated context.
  # Synchronously: a call made right after `Py.register_function/2` finds
  # the name there.
  def callbacks_changed do
    tell_nodes(:all, Child, :callbacks, [Py.Callbacks.names()], 5_000)
  end

  @doc false
  # The active venv changed here (`Py.activate_venv/1`, `Py.install/2`):
  # isolated contexts' processes (same host, same Python) follow, at once.
  # Remote nodes keep their own.
  def venv_changed(spec), do: tell_nodes(:os_process, Py.Native, :venv_set, [spec], 5_000)

  @doc false
  # A preload was added here: isolated contexts' processes apply it too
  # (those started later get it with the settings).
  def preload_added(spec), do: tell_nodes(:os_process, Py.Preload, :apply, [spec], 30_000)

  # Runs `module.function(args)` on the nodes of the live isolated contexts
  # (`:os_process`: only those in OS processes py started), at once.
  defp tell_nodes(which, module, function, args, timeout) do
    nodes =
      for {_owner, {:isolated, %{node: node, os_pid: os_pid}}} <- Py.Context.Registry.all(),
          which == :all or os_pid != nil,
          uniq: true,
          do: node

    _ = :erpc.multicall(nodes, module, function, args, timeout)
    :ok
  end

  defp crashed(message), do: %Py.Error{kind: :crashed, message: message}

  # ---------------------------------------------------------- GenServer

  @impl true
  def init({placement, context_opts, pool}) do
    Process.flag(:trap_exit, true)

    state = %{
      placement: placement,
      opts: context_opts,
      pool: pool,
      generation: 0,
      iso: nil,
      port: nil,
      os_pid: nil,
      ports: %{},
      crashes: %{},
      waiting_crash: %{},
      waiting_current: [],
      retry: nil,
      down: nil
    }

    case launch(state) do
      {:ok, state} -> {:ok, state}
      {:error, message} -> {:stop, %Py.Error{kind: :runtime, message: message}}
    end
  end

  defp launch(state) do
    generation = state.generation + 1

    with {:ok, node, port, os_pid} <- place(state),
         {:ok, context, {holder, table}} <- start_context(node, state) do
      Node.monitor(node, true)
      link = if port, do: link(node, context, table)

      iso = %{
        link: link,
        owner: self(),
        node: node,
        context: context,
        holder: holder,
        table: table,
        generation: generation,
        load: :atomics.new(1, signed: true),
        calls: :atomics.new(1, signed: true),
        max_calls: state.opts[:max_calls],
        os_pid: os_pid
      }

      ports =
        if port, do: Map.put(state.ports, port, {generation, os_pid, node}), else: state.ports

      register(state, iso)

      state = %{
        state
        | generation: generation,
          iso: iso,
          port: port,
          os_pid: os_pid,
          ports: ports
      }

      Enum.each(state.waiting_current, &GenServer.reply(&1, {:ok, {:isolated, iso}}))
      {:ok, %{state | waiting_current: [], down: nil}}
    else
      {:error, message} -> {:error, message}
    end
  end

  defp place(%{placement: :os_process}) do
    with :ok <- Py.Isolated.Distribution.ensure() do
      name = Py.Isolated.Names.take()

      case OsProcess.start(name, @start_timeout) do
        {:ok, port, os_pid} ->
          # The origin's settings, and its venv as active now.
          env = Keyword.put(Application.get_all_env(:py), :venv, Py.Venv.active())

          case call(name, Child, :configure, [env, Py.Callbacks.names()]) do
            :ok ->
              {:ok, name, port, os_pid}

            {:error, message} ->
              OsProcess.kill(os_pid)
              {:error, message}
          end

        {:error, message} ->
          Py.Isolated.Names.give_back(name)
          {:error, message}
      end
    end
  end

  defp place(%{placement: {:node, node}}) do
    cond do
      node == node() ->
        {:error, "a remote context needs another node than this one (#{node})"}

      Node.connect(node) == true ->
        {:ok, node, nil, nil}

      true ->
        {:error, "cannot connect to node #{node}"}
    end
  end

  defp place(%{placement: {:pg, group, index}}) do
    case pg_nodes(group) do
      [] ->
        {:error, "no other node has a process in the :pg group #{inspect(group)}"}

      nodes ->
        place(%{placement: {:node, Enum.at(nodes, rem(index, length(nodes)))}})
    end
  end

  # The other nodes with members in `group` (of :pg's default scope).
  defp pg_nodes(group) do
    group
    |> :pg.get_members()
    |> Enum.map(&node/1)
    |> Enum.uniq()
    |> Enum.reject(&(&1 == node()))
    |> Enum.sort()
  catch
    # :pg's default scope is not running here.
    _, _ -> []
  end

  defp start_context(node, state) do
    max_memory = state.opts[:max_memory]

    own_process? = state.placement == :os_process
    opts = [max_memory: max_memory, own_process: own_process?]

    case call(node, Child, :start_context, [self(), opts]) do
      {:ok, _context, _holder} = ok -> ok
      {:error, %Py.Error{} = error} -> {:error, Exception.message(error)}
      {:error, message} -> {:error, message}
    end
  end

  # The direct line to an isolated process on this host (`crate::link`);
  # nil if it cannot be made, and calls then take the distribution path.
  defp link(node, context, table) do
    with {:ok, link, name} <- Py.Native.link_listen(),
         :ok <- call(node, Child, :link, [name, context, table]),
         # Connected there; accepted here before the first call uses it.
         true <- Py.Native.link_await(link, 5_000) do
      link
    else
      _ -> nil
    end
  end

  defp call(node, module, function, args) do
    :erpc.call(node, module, function, args, @start_timeout)
  catch
    kind, reason -> {:error, "#{inspect(node)}: #{Exception.format(kind, reason)}"}
  end

  defp register(state, :restarting) do
    Py.Context.Registry.register(self(), {:isolated, :restarting})

    case state.pool do
      {pool, index} -> Py.Pool.register(pool, index, {self(), {:isolated, :restarting}})
      nil -> :ok
    end
  end

  defp register(state, iso) do
    Py.Context.Registry.register(self(), {:isolated, iso})

    case state.pool do
      {pool, index} -> Py.Pool.register(pool, index, {self(), {:isolated, iso}})
      nil -> :ok
    end
  end

  @impl true
  def handle_call(:current, from, state) do
    case state do
      %{iso: nil, down: %Py.Error{} = error} -> {:reply, {:error, error}, state}
      %{iso: nil} -> {:noreply, %{state | waiting_current: [from | state.waiting_current]}}
      %{iso: iso} -> {:reply, {:ok, {:isolated, iso}}, state}
    end
  end

  # Py.Context.renew/1 (a pool renewing a member) gets the live handle.
  def handle_call(:renew, from, state), do: handle_call(:current, from, state)

  def handle_call({:crash_error, generation}, from, state) do
    case Map.fetch(state.crashes, generation) do
      {:ok, error} ->
        {:reply, error, state}

      :error ->
        waiting = Map.update(state.waiting_crash, generation, [from], &[from | &1])
        {:noreply, %{state | waiting_crash: waiting}}
    end
  end

  def handle_call({:recycle, generation}, _from, %{iso: %{generation: generation} = old} = state) do
    case launch(state) do
      {:ok, state} ->
        drain(old)
        {:reply, :ok, state}

      {:error, message} ->
        Logger.warning("py: could not replace an isolated context after max_calls: #{message}")
        {:reply, :ok, state}
    end
  end

  def handle_call({:recycle, _old}, _from, state), do: {:reply, :ok, state}

  @impl true
  def handle_info({port, {:data, data}}, state) when is_port(port) do
    OsProcess.forward(data)
    {:noreply, state}
  end

  def handle_info({port, {:exit_status, status}}, state) when is_port(port) do
    {{generation, os_pid, node}, ports} = Map.pop(state.ports, port, {nil, nil, nil})
    state = %{state | ports: ports}
    # The process is gone: its node name is free again.
    if node, do: Py.Isolated.Names.give_back(node)

    cond do
      generation == nil ->
        {:noreply, state}

      generation == state.generation and state.iso != nil ->
        message =
          "the isolated Python process (OS pid #{os_pid}) #{OsProcess.describe_exit(status)}"

        {:noreply, crash(state, message, %{os_pid: os_pid, exit_status: status})}

      true ->
        # An earlier generation (replaced after max_calls) that ended.
        {:noreply, state}
    end
  end

  def handle_info({:nodedown, node}, %{iso: %{node: node}, placement: placement} = state)
      when placement != :os_process do
    {:noreply, crash(state, "the node #{node} that ran the context went down", %{node: node})}
  end

  # The OS process of the live generation lost its connection: its exit
  # status follows; if it does not (the process hangs), it is killed.
  def handle_info({:nodedown, node}, %{iso: %{node: node, os_pid: os_pid}} = state) do
    Process.send_after(self(), {:kill_if_alive, state.generation, os_pid}, 2_000)
    {:noreply, state}
  end

  def handle_info({:kill_if_alive, generation, os_pid}, state) do
    if Enum.any?(state.ports, fn {_port, {gen, _, _}} -> gen == generation end),
      do: OsProcess.kill(os_pid)

    {:noreply, state}
  end

  def handle_info(:retry, state) do
    case launch(%{state | retry: nil}) do
      {:ok, state} -> {:noreply, %{state | down: nil}}
      {:error, message} -> {:noreply, down(state, message)}
    end
  end

  def handle_info(
        {:callbacks, names, generation},
        %{iso: %{generation: generation} = iso} = state
      ) do
    :erpc.cast(iso.node, Child, :callbacks, [names])
    {:noreply, state}
  end

  def handle_info(
        {:py_isolated_release, generation, id},
        %{iso: %{generation: generation}} = state
      ) do
    send(state.iso.holder, {:release, [id]})
    {:noreply, state}
  end

  def handle_info({:EXIT, _pid, reason}, state) when reason not in [:normal] do
    {:stop, reason, state}
  end

  def handle_info(_message, state), do: {:noreply, state}

  # The live generation ended: answer its callers, report, start the next.
  defp crash(state, message, metadata) do
    error = crashed(message)
    generation = state.generation

    Logger.warning(
      "py: isolated Python context #{inspect(self())} crashed: #{message}; it restarts " <>
        "with a fresh interpreter"
    )

    Py.Telemetry.execute(
      [:py, :context, :crashed],
      %{count: 1},
      Map.merge(metadata, %{context: self(), pool: state.pool, reason: message})
    )

    {waiting, waiting_crash} = Map.pop(state.waiting_crash, generation, [])
    Enum.each(waiting, &GenServer.reply(&1, error))
    # Keep the last few crashes for callers that ask late.
    crashes = state.crashes |> Map.put(generation, error) |> Map.drop([generation - 8])

    # Calls wait for the next generation instead of using this one.
    register(state, :restarting)

    state = %{
      state
      | iso: nil,
        port: nil,
        os_pid: nil,
        crashes: crashes,
        waiting_crash: waiting_crash
    }

    case launch(state) do
      {:ok, state} -> state
      {:error, message} -> down(state, message)
    end
  end

  # It could not start again (a remote node that is gone): calls fail at
  # once with :closed, and it tries again every second.
  defp down(state, message) do
    if state.down == nil,
      do: Logger.warning("py: a Python context could not restart: #{message}; retrying")

    error = %Py.Error{kind: :closed, message: "the Python context is down: " <> message}
    Enum.each(state.waiting_current, &GenServer.reply(&1, {:error, error}))

    %{
      state
      | down: error,
        waiting_current: [],
        retry: Process.send_after(self(), :retry, 1_000)
    }
  end

  # After max_calls: the old generation finishes its calls, then ends.
  defp drain(old) do
    spawn(fn ->
      wait_idle(old.load, 600)
      :erpc.cast(old.node, :erlang, :halt, [0])
    end)
  end

  defp wait_idle(_load, 0), do: :ok

  defp wait_idle(load, tries) do
    if :atomics.get(load, 1) > 0 do
      Process.sleep(100)
      wait_idle(load, tries - 1)
    end
  end

  # The port may have closed already (its process ended).
  defp close_port(port) do
    Port.close(port)
  rescue
    ArgumentError -> :ok
  end

  @impl true
  def terminate(_reason, state) do
    # A remote context ends with its holder, which watches this process.
    Enum.each(state.ports, fn {port, {_gen, os_pid, node}} ->
      Py.Isolated.Names.give_back(node)
      OsProcess.kill(os_pid)
      close_port(port)
    end)

    :ok
  catch
    _, _ -> :ok
  end
end
