defmodule Py.Dispatch do
  @moduledoc false
  # Where a request runs, and running it: an explicit `:context`, a
  # `:pool`, the owner of an object receiver (parallel pool), or the pool a
  # route names, through the calling process's binding there (a context of
  # the pool and a namespace of its own on it, kept in the process
  # dictionary). A bound context that has gone is replaced once per call.

  alias Py.{Context, Error, Pool}
  require Logger

  @binding :"$py_binding"

  @doc "Runs `request` where `opts` (and the caller's bindings) say."
  def run(request, opts) do
    opts = Py.Options.keyword!(opts)
    request = Py.Encoding.request(request)

    timeout = Py.Options.timeout!(opts)

    # A request whose receiver is an object of an isolated or remote
    # context runs there, whatever the options say (the object exists
    # nowhere else).
    case receiver(request) do
      nil ->
        run_where(request, nil, opts, timeout)

      object ->
        case Py.Isolated.Objects.owner(object) do
          nil -> run_where(request, object, opts, timeout)
          owner -> Py.Object.Owner.run_isolated(owner, request, timeout)
        end
    end
  end

  # The object a request acts on, if its receiver is one.
  defp receiver(request) do
    case request do
      {:keep_exception, inner} -> receiver(inner)
      {:stream_start, inner, _chunk_size} -> receiver(inner)
      {:call, %Py.Object{} = object, _function, _args, _kwargs, _ret} -> object
      {:getattr, %Py.Object{} = object, _name, _ret} -> object
      {:next_chunk, %Py.Object{} = object, _chunk_size} -> object
      {:close, %Py.Object{} = object} -> object
      {:repr, %Py.Object{} = object} -> object
      # A stream's iterator over the iterable it got from the owner.
      {:call, :erlang, :_iterator, [%Py.Object{} = object], _kwargs, _ret} -> object
      _ -> nil
    end
  end

  # `object`: the object the request acts on, if any (see receiver/1).
  defp run_where(request, object, opts, timeout) do
    case Keyword.fetch(opts, :context) do
      {:ok, context} ->
        with {:ok, handle} <- Context.handle(Py.Options.context!(context)) do
          case Context.Call.run(handle, nil, request, timeout) do
            # Its native context was closed under it (its slot was replaced
            # or re-made) and the request never ran: renew it, once.
            {:error, :not_queued} -> renew_and_run(handle, request, timeout)
            result -> result
          end
        end

      :error ->
        case Keyword.fetch(opts, :pool) do
          {:ok, pool} ->
            run_bound(request, pool, timeout, true)

          :error ->
            if owned?(object),
              do: Py.Object.Owner.run(object, request, timeout),
              else: run_bound(request, Py.Router.pool_for(request), timeout, true)
        end
    end
  end

  # In the parallel pool an object is usable only in the interpreter that
  # made it, which the caller's binding (or a route) need not be: a request
  # on an object runs on the object's owner. In the other modes every
  # context shares one interpreter and the request runs where the caller is
  # bound, as any other.
  defp owned?(nil), do: false
  defp owned?(_object), do: Py.Native.mode() == :parallel

  defp run_bound(request, pool, timeout, retry?) do
    case current_binding(pool) do
      {:ok, {handle, _namespace, _kind}} = bound ->
        if overloaded?(pool, handle),
          do: {:error, Error.overloaded(pool, Pool.max_queue(pool))},
          else: run_bound(request, pool, timeout, retry?, bound)

      {:error, _} = error ->
        error
    end
  end

  # More calls wait on the bound context than the pool's :max_queue.
  defp overloaded?(pool, {_pid, ref}) do
    case Pool.max_queue(pool) do
      :infinity -> false
      max -> load(ref) > max
    end
  end

  defp load({:isolated, %{load: load}}), do: :atomics.get(load, 1)
  defp load({:isolated, :restarting}), do: 0
  defp load(ref), do: max(Py.Native.context_load(ref), 0)

  defp run_bound(request, pool, timeout, retry?, bound) do
    case bound do
      {:ok, {handle, namespace, kind}} ->
        case {Context.Call.run(handle, namespace, request, timeout), kind} do
          {{:error, :not_queued}, :pool} when retry? ->
            # The bound pool context had stopped, was retired or its slot
            # was re-made; the request never ran: rebind (Pool.pick renews
            # it) and retry, with a fresh namespace.
            Process.delete(binding_key(pool))
            warn_namespace_lost(pool, handle)
            run_bound(request, pool, timeout, false)

          {{:error, :not_queued}, {:explicit, name}} when retry? ->
            # Bound by name (`bind/1`) to a context that has stopped; the
            # request never ran. Its supervisor may have restarted it under
            # the same name: bind to that one and retry.
            case Context.handle(name) do
              {:ok, handle} ->
                Process.put(binding_key(pool), {handle, nil, kind})
                run_bound(request, pool, timeout, false)

              {:error, _} = error ->
                error
            end

          {result, _kind} ->
            closed_if_not_queued(result)
        end

      {:error, _} = error ->
        error
    end
  end

  @doc "The caller's binding in `pool`, made (with a fresh namespace) if it has none."
  def current_binding(pool) do
    key = binding_key(pool)

    case Process.get(key) do
      nil ->
        with {:ok, handle} <- Pool.pick(pool) do
          binding = {handle, namespace_new(handle), :pool}
          Process.put(key, binding)
          {:ok, binding}
        end

      binding ->
        {:ok, binding}
    end
  end

  # An isolated context keeps the namespace with the caller's stand-in
  # there (`Py.Isolated.Standin`): the binding only says to use it.
  defp namespace_new({_pid, {:isolated, _}}), do: :own
  defp namespace_new({_pid, ref}), do: Py.Native.namespace_new(ref)

  # The default pool's binding has a plain key (the explicit `bind/1`
  # binding replaces it); other pools' bindings are kept per pool.
  defp binding_key(:default), do: @binding
  defp binding_key(pool), do: {@binding, pool}

  @doc "Binds the caller in `pool` to `binding` (`{handle, namespace, kind}`)."
  def put_binding(pool, binding), do: Process.put(binding_key(pool), binding)

  @doc "Drops the caller's binding in `pool`."
  def drop_binding(pool), do: Process.delete(binding_key(pool))

  @doc "Drops all the caller's bindings (with their namespaces)."
  def drop_bindings do
    for {key, _} <- Process.get(), key == @binding or match?({@binding, _}, key) do
      Process.delete(key)
    end

    :ok
  end

  defp warn_namespace_lost(pool, {pid, _ref}) do
    Logger.warning(
      "py: the context of pool #{inspect(pool)} that #{inspect(self())} was bound to " <>
        "(#{inspect(pid)}) was restarted or retired; this process now runs on another " <>
        "context with a fresh Python namespace: the names it had defined there are lost"
    )
  end

  defp renew_and_run({pid, _ref}, request, timeout) do
    case Context.renew(pid) do
      {:ok, handle} -> handle |> Context.Call.run(nil, request, timeout) |> closed_if_not_queued()
      {:error, _} -> {:error, Error.closed()}
    end
  catch
    :exit, _ -> {:error, Error.closed()}
  end

  defp closed_if_not_queued({:error, :not_queued}), do: {:error, Error.closed()}
  defp closed_if_not_queued(result), do: result
end
