defmodule Py.Isolated.Standin do
  @moduledoc false
  # On the node that runs an isolated or remote context: the stand-in of
  # one calling process of the origin. It holds that caller's namespace
  # (when the caller is bound to the context through a pool) and starts a
  # runner per request, which calls the context as a local process would
  # (`Py.Context.run/5`) with Python's output going to the caller's group
  # leader, and callbacks and events forwarded to the process that waits
  # on the origin (`Py.Isolated.Call`). A runner per request lets a
  # callback on the origin call the same context again (reentrancy) while
  # the first request waits.
  #
  # The stand-in ends with its caller; its runners are linked to it.

  @doc "Entry point, spawned on this node by the caller."
  def start(caller, context, table) do
    Process.monitor(caller)
    loop(%{context: context, table: table, namespace: nil})
  end

  defp loop(state) do
    receive do
      {:py_run, from, tag, own_namespace?, group_leader, request, timeout} ->
        {handle, namespace, state} = current(state, own_namespace?)
        %{context: context, table: table} = state

        spawn_link(fn ->
          Process.group_leader(self(), group_leader)
          call = {context, own_namespace?, request, timeout, table, {from, tag}}
          send(from, {tag, :reply, run(handle, namespace, call)})
        end)

        loop(state)

      {:DOWN, _, _, _, _} ->
        exit(:normal)
    end
  end

  # The context's native handle now, and the caller's namespace on it (a
  # fresh one if the context's thread was replaced since: its globals are
  # gone with it, as on a local context).
  defp current(state, own_namespace?) do
    case Py.Context.handle(state.context) do
      {:ok, {_pid, ref} = handle} ->
        case {own_namespace?, state.namespace} do
          {false, _} ->
            {handle, nil, state}

          {true, {^ref, ns}} ->
            {handle, ns, state}

          {true, _} ->
            ns = Py.Native.namespace_new(ref)
            {handle, ns, %{state | namespace: {ref, ns}}}
        end

      {:error, _} ->
        {nil, nil, state}
    end
  end

  defp run(nil, _namespace, _call), do: {:error, Py.Error.closed()}

  defp run(handle, namespace, {context, own_namespace?, request, timeout, table, forward}) do
    request = Py.Isolated.Objects.resolve(request, table)

    case Py.Context.run(handle, namespace, request, timeout, forward) do
      # The context's thread was replaced (retired) with this request
      # queued: it never ran; run it on the fresh one.
      {:error, :not_queued} ->
        with {:ok, {_pid, ref} = handle} <- renew(context),
             namespace = if(own_namespace?, do: Py.Native.namespace_new(ref)),
             {:error, :not_queued} <- Py.Context.run(handle, namespace, request, timeout, forward) do
          {:error, Py.Error.closed()}
        else
          {:error, %Py.Error{}} = error -> error
          {:error, _} -> {:error, Py.Error.closed()}
          result -> Py.Isolated.Objects.export(result, table)
        end

      result ->
        Py.Isolated.Objects.export(result, table)
    end
  catch
    :throw, {:py_isolated_object, :gone} ->
      {:error,
       %Py.Error{
         kind: :conversion,
         message: "a %Py.Object{} passed to the isolated context was already released there"
       }}
  end

  defp renew(context) do
    Py.Context.renew(context)
  catch
    :exit, _ -> {:error, :closed}
  end
end
