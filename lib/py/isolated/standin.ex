defmodule Py.Isolated.Standin do
  @moduledoc false
  # On the node that runs an isolated or remote context: the stand-in of
  # one calling process of the origin. It holds that caller's namespace
  # (when the caller is bound to the context through a pool).
  #
  # Two ways in:
  #
  #   * the distribution path (`{:py_run, ...}`): a runner per request
  #     calls the context as a local process would (`Py.Context.Call.run/5`),
  #     with Python's output going to the caller's group leader and
  #     callbacks and events forwarded to the process that waits on the
  #     origin (`Py.Isolated.Call`). A runner per request lets a callback
  #     on the origin call the same context again while the first waits;
  #   * the link (`crate::link`): a plain call arrives at the context's
  #     thread from the origin's NIF directly, with this process as its
  #     caller. Its reply goes back over the link; what else the call
  #     sends comes here, tagged `{tag, origin_pid}`, and is forwarded: the
  #     callbacks (whose results come back here), events, and the reply of
  #     a call that printed or returned objects (finished here: output
  #     awaited, objects kept). A timed-out call is cancelled from here.
  #
  # The stand-in ends with its caller; its runners are linked to it.

  alias Py.Isolated.Objects

  @doc "Entry point, spawned on this node by the caller."
  def start(caller, context, table) do
    Process.monitor(caller)

    link =
      case :ets.lookup(table, :link) do
        [{:link, link}] -> link
        [] -> nil
      end

    loop(%{context: context, table: table, namespace: nil, link: link, callbacks: %{}})
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

      # The caller sets up the link path: the id of its namespace there
      # and a local stand-in for its group leader.
      {:py_link_setup, from, ref, own_namespace?, group_leader} ->
        {answer, state} = link_setup(state, own_namespace?, group_leader)
        send(from, {ref, answer})
        loop(state)

      {{tag, from}, :callback, handle, name, args} when is_pid(from) ->
        token = make_ref()
        send(from, {tag, :callback, {self(), token}, name, args})
        loop(put_in(state.callbacks[token], handle))

      {:py_callback_result, token, result} when is_map_key(state.callbacks, token) ->
        {handle, callbacks} = Map.pop(state.callbacks, token)
        Py.Native.Large.callback_reply(handle, result)
        loop(%{state | callbacks: callbacks})

      {{tag, from}, :py_event, kind, payload} when is_pid(from) ->
        send(from, {tag, :event, kind, payload})
        loop(state)

      # A link call's reply that comes here: it printed (await the
      # replies to its output) or returned objects (keep them).
      {{tag, from} = reply_ref, result, io} when is_pid(from) and is_integer(io) ->
        await_io(reply_ref, io)
        send(from, {tag, :reply, finish(result, state.table)})
        loop(state)

      # A link call that timed out: cancel it if it has not answered.
      {:py_cancel, {tag, from} = reply_ref, job_id, timeout} ->
        cancel(state.link, reply_ref, job_id)
        |> case do
          :answered -> send(from, {tag, :py_cancel_answer, :sent})
          :timeout -> send(from, {tag, :reply, {:error, Py.Error.timeout(timeout)}})
        end

        loop(state)

      {:DOWN, _, _, _, _} ->
        cleanup(state)
        exit(:normal)
    end
  end

  defp link_setup(%{link: nil} = state, _own_namespace?, _group_leader), do: {:no_link, state}

  defp link_setup(state, own_namespace?, group_leader) do
    {handle, namespace, state} = current(state, own_namespace?)

    case handle do
      nil ->
        {:no_link, state}

      _ ->
        {namespace_id, state} = link_namespace(state, namespace)
        Process.group_leader(self(), group_leader)
        {{:ok, namespace_id, Py.GroupLeader.local()}, state}
    end
  end

  # Namespace ids are registered with the link once per namespace.
  defp link_namespace(state, nil), do: {0, state}

  defp link_namespace(%{namespace: {ref, ns, nil}} = state, ns) do
    id = Py.Native.link_namespace(state.link, ns)
    {id, %{state | namespace: {ref, ns, id}}}
  end

  defp link_namespace(%{namespace: {_ref, ns, id}} = state, ns), do: {id, state}

  defp cleanup(%{link: link, namespace: {_ref, _ns, id}}) when link != nil and id != nil,
    do: Py.Native.link_namespace_drop(link, id)

  defp cleanup(_state), do: :ok

  defp cancel(link, reply_ref, job_id) do
    case link && Py.Native.link_job(link, job_id) do
      job when is_reference(job) ->
        case Py.Native.cancel(job) do
          :dequeued ->
            :timeout

          {:cancelled, io} ->
            await_io(reply_ref, io)
            :timeout

          :sent ->
            :answered
        end

      _ ->
        :answered
    end
  end

  defp finish(:not_queued, _table), do: {:error, Py.Error.closed()}
  defp finish({:ok, value}, table), do: Objects.export({:ok, value}, table)
  defp finish({:error, reason}, _table), do: {:error, Py.Error.from_native(reason)}

  # Replies to the io requests of a call, tagged with its reply ref.
  defp await_io(_reply_ref, 0), do: :ok

  defp await_io(reply_ref, count) do
    receive do
      {:io_reply, ^reply_ref, _} -> await_io(reply_ref, count - 1)
    after
      5_000 -> :ok
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

          {true, {^ref, ns, _id}} ->
            {handle, ns, state}

          {true, _} ->
            ns = Py.Native.namespace_new(ref)
            {handle, ns, %{state | namespace: {ref, ns, nil}}}
        end

      {:error, _} ->
        {nil, nil, state}
    end
  end

  defp run(nil, _namespace, _call), do: {:error, Py.Error.closed()}

  defp run(handle, namespace, {context, own_namespace?, request, timeout, table, forward}) do
    request = Objects.resolve(request, table)

    case Py.Context.Call.run(handle, namespace, request, timeout, forward) do
      # The context's thread was replaced (retired) with this request
      # queued: it never ran; run it on the fresh one.
      {:error, :not_queued} ->
        with {:ok, {_pid, ref} = handle} <- renew(context),
             namespace = if(own_namespace?, do: Py.Native.namespace_new(ref)),
             {:error, :not_queued} <-
               Py.Context.Call.run(handle, namespace, request, timeout, forward) do
          {:error, Py.Error.closed()}
        else
          {:error, %Py.Error{}} = error -> error
          {:error, _} -> {:error, Py.Error.closed()}
          result -> Objects.export(result, table)
        end

      result ->
        Objects.export(result, table)
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
