defmodule Py.Pool do
  @moduledoc """
  A named pool of contexts.

  The `:py` application starts the `:default` pool. Start more under your
  own supervisor, for example an I/O pool for slow network calls, and send
  work there with the `pool:` option or a route (`Py.Router`):

      children = [{Py.Pool, name: :io, size: 8}]
      Supervisor.start_link(children, strategy: :one_for_one)

      Py.call("urllib.request", :urlopen, [url], pool: :io)
      Py.Router.route("requests", :io)   # every requests.* call goes to :io

  A process gets its own namespace in each pool it uses. In parallel builds
  the contexts of every pool are spread over the same sub-interpreter slots.
  """
  # A supervisor of N contexts whose native handles sit in a tuple in
  # :persistent_term, so picking one costs no message.
  #
  # A process is bound to one context on its first call (see `Py`): the
  # least loaded one (jobs queued or running on its thread, as the NIF
  # counts them; a thread stuck in an interrupted call counts as full), the
  # scan starting at a rotating index (an :atomics counter) so that ties
  # spread. (Scheduler affinity was the first design, but processes spawned
  # by one parent start on the parent's scheduler, so it piled them onto
  # one context and serialised them; plain round robin bound new processes
  # to a context stuck in C.)
  use Supervisor

  @doc """
  Starts a pool. Options: `:name` (an atom, required), `:size` (default
  `System.schedulers_online()`) and `:retire_after` (ms; see
  `Py.Context.start_link/1`). `isolation: :os_process` (with `:max_memory`
  and `:max_calls`) runs each context in an OS process of its own,
  `nodes: [node, ...]` places the contexts on those nodes in turn, and
  `nodes: {:pg, group}` on the other nodes that have processes in that
  `:pg` group (a context moves when its node goes); see
  `Py.Context.start_link/1` and `docs/isolation.md`.

  `max_queue: n` (default `config :py, max_queue:`, else `:infinity`)
  bounds how many calls may wait on a context's thread behind the one it
  runs (in the parallel pool, contexts on one sub-interpreter slot share its
  thread and count together): past that, a call returns
  `{:error, %Py.Error{kind: :overloaded}}` at once instead of queueing.
  Shed load or retry later.

  A process is bound to the least loaded context of the pool on its first
  call. A context whose thread is stuck in an interrupted call (in C, out
  of reach of interrupts) is avoided at once and retired after
  `:retire_after`: the processes bound to it move to another context, with
  a fresh namespace, and a Logger warning says so.
  """
  def start_link(opts) do
    Supervisor.start_link(__MODULE__, options!(opts))
  end

  defp options!(opts) do
    opts = Py.Options.keyword!(opts, "Py.Pool.start_link/1", "[name: :io, size: 4]")
    name = Keyword.get(opts, :name)
    size = Keyword.get(opts, :size, System.schedulers_online())

    unless is_atom(name) and name not in [nil, true, false] and is_integer(size) and size > 0 do
      raise ArgumentError,
            "a pool needs an atom :name and a positive :size, for example " <>
              "[name: :io, size: 4], got: name #{inspect(name)}, size #{inspect(size)}"
    end

    _ = Py.Context.retire_after!(opts)
    _ = max_queue!(opts)
    nodes = nodes!(opts)
    context_opts = Keyword.take(opts, [:retire_after, :isolation, :max_memory, :max_calls])
    _ = Py.Isolated.Context.options!(context_opts ++ node_option(nodes, 0))

    {name, size, {context_opts, nodes, max_queue!(opts)}}
  end

  defp max_queue!(opts) do
    case Keyword.fetch(opts, :max_queue) do
      :error ->
        Py.Config.max_queue()

      {:ok, n} when (is_integer(n) and n >= 0) or n == :infinity ->
        n

      {:ok, other} ->
        raise ArgumentError,
              "the :max_queue option must be a non-negative integer or :infinity, got: " <>
                inspect(other)
    end
  end

  @doc false
  # How many calls may wait on a context of the pool (:infinity: no bound).
  def max_queue(name), do: :persistent_term.get({__MODULE__, name, :max_queue}, :infinity)

  defp nodes!(opts) do
    case Keyword.get(opts, :nodes) do
      nil ->
        nil

      {:pg, _group} = pg ->
        pg

      [_ | _] = nodes ->
        if Enum.all?(nodes, &(is_atom(&1) and &1 not in [nil, true, false])) do
          nodes
        else
          raise ArgumentError,
                "the :nodes option must be a list of node names, got: #{inspect(nodes)}"
        end

      other ->
        raise ArgumentError,
              "the :nodes option must be a non-empty list of node names or {:pg, group}, " <>
                "got: #{inspect(other)}"
    end
  end

  # Context `index` of a pool over `nodes` runs on one of them, in turn.
  defp node_option(nil, _index), do: []
  defp node_option({:pg, group}, index), do: [node: {:pg, group, index}]
  defp node_option(nodes, index), do: [node: Enum.at(nodes, rem(index, length(nodes)))]

  @doc false
  def child_spec(opts) do
    {name, _size, _pool_opts} = options!(opts)

    %{
      id: {__MODULE__, name},
      start: {__MODULE__, :start_link, [opts]},
      type: :supervisor
    }
  end

  @impl true
  def init({name, size, {context_opts, nodes, max_queue}}) do
    :persistent_term.put(key(name), :erlang.make_tuple(size, nil))
    :persistent_term.put({__MODULE__, name, :max_queue}, max_queue)
    :persistent_term.put(counter_key(name), :atomics.new(1, []))

    children =
      for index <- 0..(size - 1) do
        opts = [pool: {name, index}] ++ context_opts ++ node_option(nodes, index)

        Supervisor.child_spec({Py.Context, opts},
          id: {Py.Context, index}
        )
      end

    Supervisor.init(children, strategy: :one_for_one, max_restarts: 100, max_seconds: 5)
  end

  @doc false
  # Called by a pool context when it (re)opens its native context. The
  # read-modify-write of the tuple is serialised through the registry
  # process, since contexts may renew concurrently.
  def register(name, index, handle) do
    Py.Context.Registry.serialized(fn ->
      :persistent_term.put(key(name), put_elem(:persistent_term.get(key(name)), index, handle))
    end)
  end

  @doc false
  def size(name \\ :default), do: tuple_size(:persistent_term.get(key(name)))

  @doc false
  def handles(name \\ :default), do: Tuple.to_list(:persistent_term.get(key(name)))

  @doc false
  @spec pick(atom) :: {:ok, Py.Context.handle()} | {:error, Py.Error.t()}
  def pick(name \\ :default) do
    case :persistent_term.get(key(name), nil) do
      nil ->
        {:error,
         %Py.Error{
           kind: :runtime,
           message: "the py pool #{inspect(name)} is not running; is the :py application started?"
         }}

      contexts ->
        size = tuple_size(contexts)
        turn = :atomics.add_get(:persistent_term.get(counter_key(name)), 1, 1)
        least_loaded(contexts, rem(turn, size), size, nil)
    end
  end

  # The least loaded usable context, scanning `left` entries from `index`
  # (the first of equals wins). A context that died stays in the tuple until
  # its supervisor has restarted it.
  defp least_loaded(_contexts, _index, 0, nil), do: {:error, Py.Error.closed()}
  defp least_loaded(_contexts, _index, 0, {_load, handle}), do: {:ok, handle}

  defp least_loaded(contexts, index, left, best) do
    best =
      with {pid, ref} when is_pid(pid) <- elem(contexts, index),
           {:ok, load, handle} <- load(pid, ref),
           true <- best == nil or load < elem(best, 0) do
        {load, handle}
      else
        _ -> best
      end

    case best do
      # Idle: none can be less loaded.
      {0, handle} -> {:ok, handle}
      _ -> least_loaded(contexts, rem(index + 1, tuple_size(contexts)), left - 1, best)
    end
  end

  # An isolated or remote context counts the calls in flight on it.
  # One that is restarting after a crash counts as busy (calls to it wait).
  defp load(pid, {:isolated, :restarting} = handle) do
    if Process.alive?(pid), do: {:ok, 1_000_000, {pid, handle}}, else: :error
  end

  defp load(pid, {:isolated, iso} = handle) do
    if Process.alive?(pid), do: {:ok, :atomics.get(iso.load, 1), {pid, handle}}, else: :error
  end

  defp load(pid, ref) do
    cond do
      not Process.alive?(pid) ->
        :error

      (load = Py.Native.context_load(ref)) >= 0 ->
        {:ok, load, {pid, ref}}

      # Its native context was closed under it (a re-made slot): renew it.
      true ->
        with {:ok, {_pid, fresh} = handle} <- renew(pid),
             load when load >= 0 <- Py.Native.context_load(fresh) do
          {:ok, load, handle}
        else
          _ -> :error
        end
    end
  end

  defp renew(pid) do
    case Py.Context.renew(pid) do
      {:ok, handle} -> {:ok, handle}
      {:error, _} -> :error
    end
  catch
    :exit, _ -> :error
  end

  defp key(name), do: {__MODULE__, name}
  defp counter_key(name), do: {__MODULE__, name, :counter}
end
