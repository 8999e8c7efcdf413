defmodule Py.Isolated.Call do
  @moduledoc false
  # A call on an isolated or remote context, from the calling process on
  # the origin: the request goes to the caller's stand-in on the context's
  # node (`Py.Isolated.Standin`, made on first use and kept in the process
  # dictionary), the reply comes straight back. While it waits, the caller
  # serves the callbacks Python makes (in processes of its own, with its
  # bindings, as for a local context) and dispatches Python's log records
  # and spans here. If the context's node goes (its OS process crashed or
  # was killed, a remote node went down) the caller gets a `:crashed` error
  # that says how it ended, from the context's owner.

  import Py.Deadline
  alias Py.Isolated.Objects

  # How long past its own timeout a call waits for the node to answer (the
  # node interrupts the call at the timeout and replies; this covers a node
  # that cannot).
  @grace 5_000

  @doc false
  def run(owner, {:isolated, iso}, namespace, request, timeout) do
    with {:ok, iso} <- current(owner, iso),
         {:ok, outbound} <- outbound(request, iso) do
      :atomics.add(iso.load, 1, 1)

      call = %{
        tag: nil,
        iso: iso,
        owner: owner,
        timeout: timeout,
        standin: standin(iso),
        own_namespace?: namespace != nil,
        request: outbound,
        job: nil
      }

      # A request with no object of the context's in it can take the link.
      result =
        case outbound == request and send_link(call) do
          {:answered, answer, call} -> fast_result(answer, call)
          {:pending, call} -> await(call, deadline(timeout, 0), %{})
          {:down, call} -> {:error, Py.Isolated.Context.crash_error(owner, call.iso)}
          _no_link -> dist(call)
        end

      :atomics.sub(iso.load, 1, 1)
      Py.Isolated.Context.count_call(owner, iso)
      result
    end
  end

  # The distribution path: the request goes to the stand-in, monitored.
  defp dist(call) do
    call = %{call | tag: Process.monitor(call.standin), job: nil}

    send(
      call.standin,
      {:py_run, self(), call.tag, call.own_namespace?, Process.group_leader(), call.request,
       call.timeout}
    )

    await(call, deadline(call.timeout, @grace), %{})
  end

  # The link path (`crate::link`): the request goes from this VM's NIF to
  # the context's thread in the isolated process, and the NIF polls for
  # the reply a moment before the caller waits for it as a message. No
  # monitor: if the process ends, the link says so. A full or closed link,
  # or a request too large for one frame, takes the distribution path.
  defp send_link(%{iso: %{link: nil}}), do: :no_link

  defp send_link(call) do
    case link_setup(call) do
      {:ok, namespace_id, group_leader} ->
        job = :erlang.unique_integer([:positive])
        call = %{call | tag: make_ref(), job: job}
        frame = {{call.tag, self()}, call.standin, group_leader, namespace_id, job, call.request}

        case Py.Native.link_call(call.iso.link, frame) do
          {:py_fast, result} -> {:answered, result, call}
          :pending -> {:pending, call}
          :down -> {:down, call}
          _busy_too_large_or_closed -> :no_link
        end

      :no_link ->
        :no_link
    end
  end

  # What the stand-in says the link path needs (its namespace's id there,
  # a stand-in there for this process's group leader): asked once, and
  # again when the group leader changes (`capture_io`).
  defp link_setup(call) do
    group_leader = Process.group_leader()
    key = {__MODULE__, :link, call.standin, call.own_namespace?}

    case Process.get(key) do
      {^group_leader, setup} ->
        setup

      _ ->
        ref = make_ref()
        send(call.standin, {:py_link_setup, self(), ref, call.own_namespace?, group_leader})

        mref = Process.monitor(call.standin)

        setup =
          receive do
            {^ref, setup} -> setup
            {:DOWN, ^mref, _, _, _} -> :no_link
          end

        Process.demonitor(mref, [:flush])

        Process.put(key, {group_leader, setup})
        setup
    end
  end

  # The live generation, which a binding or a handle taken earlier may not
  # be (the context restarted, or was replaced after :max_calls): the
  # registry has the live one; while the owner starts it, wait for it.
  defp current(owner, iso) do
    case Py.Context.Registry.lookup(owner) do
      {:ok, {:isolated, %{generation: generation} = live}} when is_map(live) ->
        if generation == iso_generation(iso), do: {:ok, iso}, else: {:ok, live}

      _restarting ->
        case Py.Isolated.Context.current(owner) do
          {:ok, {:isolated, live}} -> {:ok, live}
          {:error, _} = error -> error
        end
    end
  end

  defp iso_generation(%{generation: generation}), do: generation
  defp iso_generation(_restarting), do: nil

  defp outbound(request, iso) do
    {:ok, Objects.outbound(request, iso.owner, iso.generation)}
  catch
    :throw, {:py_isolated_object, why} ->
      {:error,
       %Py.Error{
         kind: :conversion,
         message:
           case why do
             :restarted ->
               "a %Py.Object{} from an earlier run of this isolated context, which has " <>
                 "since restarted: the object is gone"

             :elsewhere ->
               "a %Py.Object{} of another isolated or remote context: an object can " <>
                 "only be used in the context that made it"

             :local_only ->
               "a Py.Channel or Py.Buffer cannot reach an isolated or remote context " <>
                 "(they live in this VM's memory); send the data in calls, or use " <>
                 "erlang.send and callbacks"
           end
       }}
  end

  # One stand-in per calling process and context (its generation); a
  # callback process inherits its caller's (Py.Callbacks.inheritance/0), so
  # a callback that calls the context again uses the caller's namespace.
  defp standin(iso) do
    key = {__MODULE__, iso.context}

    case Process.get(key) do
      pid when is_pid(pid) ->
        pid

      nil ->
        pid = Node.spawn(iso.node, Py.Isolated.Standin, :start, [self(), iso.context, iso.table])
        Process.put(key, pid)
        pid
    end
  end

  defp deadline(:infinity, _grace), do: :infinity
  defp deadline(timeout, grace), do: now() + timeout + grace

  defp await(%{tag: tag} = call, deadline, callbacks) do
    receive do
      {^tag, :reply, result} ->
        Process.demonitor(tag, [:flush])
        stop_callbacks(callbacks)
        forget_link(call)
        Objects.import(result, call.owner, call.iso.generation)

      # A reply over the link: as the context's thread made it.
      {^tag, :py_fast, result} ->
        Process.demonitor(tag, [:flush])
        stop_callbacks(callbacks)
        fast_result(result, call)

      # The line went down with the call on it: the process ended.
      {^tag, :py_link_down} ->
        stop_callbacks(callbacks)
        {:error, Py.Isolated.Context.crash_error(call.owner, call.iso)}

      # The stand-in could not cancel a timed-out call over the link: its
      # reply is on its way.
      {^tag, :py_cancel_answer, :sent} ->
        await(call, deadline, callbacks)

      # py's own functions (erlang.state_*, whereis, ...): served here, so
      # they see this node's state and processes.
      {^tag, :callback, {runner, token}, {:internal, name}, args} ->
        send(runner, {:py_callback_result, token, Py.Internal.serve(name, args)})
        await(call, deadline, callbacks)

      # `runner` (on the context's node) waits for the result under `token`.
      {^tag, :callback, {runner, token}, name, args} ->
        reply = {:forward, runner, token}
        {pid, cb_ref} = Py.Callbacks.spawn_callback(reply, name, args)
        await(call, deadline, Map.put(callbacks, cb_ref, {pid, reply, name}))

      {:DOWN, cb_ref, :process, _, reason} when is_map_key(callbacks, cb_ref) ->
        {{_pid, reply, name}, callbacks} = Map.pop(callbacks, cb_ref)

        if reason != Py.Callbacks.answered_reason(),
          do: Py.Callbacks.exited(reply, name, reason)

        await(call, deadline, callbacks)

      {^tag, :event, kind, payload} ->
        Py.EventSink.dispatch(kind, payload)
        await(call, deadline, callbacks)

      {:DOWN, ^tag, :process, standin, reason} ->
        stop_callbacks(callbacks)
        Process.delete({__MODULE__, call.iso.context})
        down(call, standin, reason)
    after
      remaining(deadline) ->
        cond do
          not expired?(deadline) ->
            await(call, deadline, callbacks)

          # A call over the link has no runner to interrupt it here: the
          # stand-in cancels it, and answers.
          call.job != nil and not Map.get(call, :cancelling, false) ->
            send(call.standin, {:py_cancel, {tag, self()}, call.job, call.timeout})
            await(Map.put(call, :cancelling, true), now() + @grace, callbacks)

          true ->
            Process.demonitor(tag, [:flush])
            stop_callbacks(callbacks)
            forget_link(call)
            {:error, Py.Error.timeout(call.timeout)}
        end
    end
  end

  # A call over the link that the stand-in answered: the link stops
  # waiting for its reply.
  defp forget_link(%{job: job, iso: %{link: link}}) when job != nil and link != nil,
    do: Py.Native.link_forget(link)

  defp forget_link(_call), do: :ok

  defp fast_result({:ok, value}, _call), do: {:ok, value}
  defp fast_result({:error, reason}, _call), do: {:error, Py.Error.from_native(reason)}

  # Its context's thread was replaced: it never ran; take the distribution
  # path, which renews it.
  defp fast_result(:not_queued, call), do: dist(call)

  defp down(call, _standin, :noconnection),
    do: {:error, Py.Isolated.Context.crash_error(call.owner, call.iso)}

  defp down(_call, _standin, reason) do
    {:error,
     %Py.Error{
       kind: :internal,
       message: "the isolated context's stand-in for this process exited: #{inspect(reason)}"
     }}
  end

  defp stop_callbacks(callbacks) do
    Enum.each(callbacks, fn {cb_ref, {pid, _reply, _name}} ->
      Process.demonitor(cb_ref, [:flush])
      Process.exit(pid, :kill)
    end)
  end
end
