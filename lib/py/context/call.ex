defmodule Py.Context.Call do
  @moduledoc false
  # The caller's side of a call on a context: submit the request to the
  # context's thread, then wait in the calling process for its reply while
  # serving what the running Python code asks of Elixir (callbacks, events,
  # output) and keeping the call's deadline. The context's GenServer
  # (`Py.Context`) is not on this path.

  import Py.Deadline

  @doc false
  # Runs one request on a context and waits for its reply. Returns
  # `{:error, :not_queued}` when the context was closed before the request
  # started (it never ran, so it is safe to retry elsewhere).
  def run(handle, namespace, request, timeout, forward \\ nil)

  def run({pid, {:isolated, _} = isolated}, namespace, request, timeout, _forward),
    do: Py.Isolated.Call.run(pid, isolated, namespace, request, timeout)

  def run({pid, ref}, namespace, request, timeout, forward) do
    mref = Process.monitor(pid)
    group_leader = Py.GroupLeader.local()

    # For a stand-in of an isolated context, erlang.self() is the origin's
    # caller it forwards to.
    identity = if forward, do: elem(forward, 0)

    case Py.Native.Large.submit(ref, namespace, mref, group_leader, request, identity) do
      {:ok, job} ->
        await_reply(mref, job, timeout, group_leader, forward)

      {:error, :closed} ->
        Process.demonitor(mref, [:flush])
        {:error, :not_queued}
    end
  end

  @doc false
  # Waits for the reply to a submitted job tagged `tag` (a monitor of the
  # context, or a plain reference when there is nothing to monitor): serves
  # the callbacks Python makes, dispatches its events, waits for its output,
  # and cancels the job at the deadline.
  #
  # `forward` is `{pid, tag}` when the call runs for a process on another
  # node (an isolated context's stand-in, `Py.Isolated.Standin`): callbacks
  # and events then go to that process, which serves them where the
  # registered functions and the Logger are, and the callback results come
  # back as `{:py_callback_result, token, result}`.
  def await_reply(tag, job, timeout, group_leader, forward \\ nil) do
    deadline = if timeout == :infinity, do: :infinity, else: now() + timeout

    call = %{
      mref: tag,
      job: job,
      timeout: timeout,
      deadline: deadline,
      gl: group_leader,
      forward: forward,
      timer: nil,
      # The monitor of the callback process the job sends its callbacks to
      # directly (see run_callback/5).
      routed: nil
    }

    await(call, %{}, first_wait(timeout))
  end

  # `callbacks` are the processes running Elixir functions that the Python
  # code called (see Py.Callbacks), by monitor; they end with the call.
  #
  # The first wait is a `receive ... after` (a call with no callbacks or
  # events waits once). After a call's first callback or event, the rest of
  # its wait is timed by one timer for the whole call (`timer`, stopped on
  # every way out): a receive's own timer, set and cancelled for each of
  # thousands of callbacks, cost several percent of a callback's time.
  defp await(%{timer: nil, deadline: deadline} = call, callbacks) when deadline != :infinity,
    do: await(%{call | timer: Py.Deadline.start_timer(deadline)}, callbacks, :infinity)

  defp await(call, callbacks), do: await(call, callbacks, :infinity)

  defp await(%{mref: mref, timer: timer} = call, callbacks, wait) do
    receive do
      # The job never ran: its context was retired (stuck) with it queued.
      {^mref, :not_queued, 0} ->
        Process.demonitor(mref, [:flush])
        Py.Deadline.stop_timer(timer)
        stop_callbacks(callbacks)
        {:error, :not_queued}

      {^mref, result, io} ->
        Process.demonitor(mref, [:flush])
        Py.Deadline.stop_timer(timer)
        stop_callbacks(callbacks)
        reply(call, result, io)

      {^mref, :py_event, kind, payload} ->
        dispatch_event(call, kind, payload)
        await(call, callbacks)

      # py's own functions for Python (erlang.state_*, whereis, ...):
      # served here, at once (or forwarded to the caller on the origin).
      {^mref, :callback, handle, {:internal, name}, args} when call.forward == nil ->
        Py.Native.Large.callback_reply(handle, Py.Internal.serve(name, args))
        await(call, callbacks)

      {^mref, :callback, handle, name, args} when call.forward != nil ->
        {to, tag} = call.forward
        token = make_ref()
        send(to, {tag, :callback, {self(), token}, name, args})
        await(call, Map.put(callbacks, token, {:forwarded, handle, name}))

      {:py_callback_result, token, result} when is_map_key(callbacks, token) ->
        {{:forwarded, handle, _name}, callbacks} = Map.pop(callbacks, token)
        Py.Native.Large.callback_reply(handle, result)
        await(call, callbacks)

      {^mref, :callback, handle, name, args} ->
        {call, callbacks} = run_callback(call, callbacks, handle, name, args)
        await(call, callbacks)

      {:DOWN, cb_ref, :process, _, reason} when is_map_key(callbacks, cb_ref) ->
        {{_pid, handle, name}, callbacks} = Map.pop(callbacks, cb_ref)

        # (A process that served callbacks before may die between them.)
        if not Py.Native.callback_answered(handle),
          do: Py.Callbacks.exited(handle, name, reason)

        await(unroute(call, cb_ref, reason), callbacks)

      {:DOWN, ^mref, _, _, _} ->
        Py.Deadline.stop_timer(timer)
        stop_callbacks(callbacks)

        case Py.Native.cancel(call.job) do
          :dequeued -> {:error, :not_queued}
          {:cancelled, io} -> drop_late(call, io, Py.Error.closed())
          :sent -> receive_sent(call)
        end

      {:timeout, ^timer, :py_deadline} ->
        call = %{call | timer: nil}
        if expired?(call.deadline), do: give_up(call, callbacks), else: await(call, callbacks)
    after
      wait ->
        if expired?(call.deadline), do: give_up(call, callbacks), else: await(call, callbacks)
    end
  end

  # A callback process whose last callback was answered serves this one;
  # else a new one starts (callbacks that Python makes at once, from
  # threads or gathered coroutines, run at once). The first one started
  # gets the call's later callbacks straight from the runner
  # (`callback_route`): this process then only watches it.
  defp run_callback(call, callbacks, handle, name, args) do
    case free_worker(:maps.next(:maps.iterator(callbacks))) do
      {cb_ref, pid} ->
        Py.Callbacks.run_next(pid, handle, name, args)
        {call, Map.put(callbacks, cb_ref, {pid, handle, name})}

      nil ->
        {pid, cb_ref} = Py.Callbacks.start_worker(handle, name, args)
        callbacks = Map.put(callbacks, cb_ref, {pid, handle, name})

        if call.routed == nil do
          Py.Native.callback_route(call.job, pid)
          {%{call | routed: cb_ref}, callbacks}
        else
          {call, callbacks}
        end
    end
  end

  # The process callbacks were routed to has died: later ones come here
  # again, and the one it had been sent and not answered is answered for.
  defp unroute(%{routed: cb_ref} = call, cb_ref, reason) do
    case Py.Native.callback_unroute(call.job) do
      {handle, name} -> Py.Callbacks.exited(handle, name, reason)
      nil -> :ok
    end

    %{call | routed: nil}
  end

  defp unroute(call, _cb_ref, _reason), do: call

  # The first callback process whose last callback was answered (walked
  # by hand: this runs for every callback).
  defp free_worker(:none), do: nil

  defp free_worker({cb_ref, {pid, handle, _name}, next}) when is_pid(pid) do
    if Py.Native.callback_answered(handle),
      do: {cb_ref, pid},
      else: free_worker(:maps.next(next))
  end

  defp free_worker({_key, _forwarded, next}), do: free_worker(:maps.next(next))

  defp give_up(%{mref: mref} = call, callbacks) do
    Process.demonitor(mref, [:flush])
    Py.Deadline.stop_timer(call.timer)
    stop_callbacks(callbacks)

    case Py.Native.cancel(call.job) do
      :dequeued -> {:error, Py.Error.timeout(call.timeout)}
      {:cancelled, io} -> drop_late(call, io, Py.Error.timeout(call.timeout))
      :sent -> receive_sent(call)
    end
  end

  # Callback processes are monitored: drop the monitors (and a `DOWN`
  # already in the mailbox), then kill them.
  defp stop_callbacks(callbacks) when map_size(callbacks) == 0, do: :ok

  defp stop_callbacks(callbacks) do
    Enum.each(callbacks, fn
      {_token, {:forwarded, _handle, _name}} ->
        :ok

      {cb_ref, {pid, _handle, _name}} ->
        Process.demonitor(cb_ref, [:flush])
        Process.exit(pid, :kill)
    end)
  end

  defp dispatch_event(%{forward: {to, tag}}, kind, payload),
    do: send(to, {tag, :event, kind, payload})

  defp dispatch_event(_call, kind, payload), do: Py.EventSink.dispatch(kind, payload)

  # The reply was sent before the cancel took effect: it is in the mailbox.
  defp receive_sent(%{mref: mref} = call) do
    receive do
      {^mref, :py_event, kind, payload} ->
        dispatch_event(call, kind, payload)
        receive_sent(call)

      {^mref, result, io} ->
        reply(call, result, io)
    end
  end

  defp reply(_call, {:ok, value}, 0), do: {:ok, value}

  defp reply(call, result, io) do
    await_io(call, io)

    case result do
      {:ok, value} -> {:ok, value}
      {:error, reason} -> {:error, Py.Error.from_native(reason)}
    end
  end

  # After a timeout or the context's death the job sends nothing more: wait
  # for the replies to the `io` requests it had sent, and drop the callback
  # requests and events already in the mailbox, so that no stray message is
  # left behind.
  defp drop_late(call, io, error) do
    await_io(call, io)
    flush_late(call.mref)
    {:error, error}
  end

  defp flush_late(mref) do
    receive do
      {^mref, :callback, _handle, _name, _args} ->
        flush_late(mref)

      {^mref, :py_event, kind, payload} ->
        Py.EventSink.dispatch(kind, payload)
        flush_late(mref)
    after
      0 -> :ok
    end
  end

  # Python's output went to the group leader as io requests tagged with
  # mref; wait for their replies so the output is complete on return. A
  # group leader that does not answer holds the caller until the call's
  # deadline, or @io_grace ms, whichever is later.
  @io_grace 1_000
  defp await_io(_call, 0), do: :ok

  defp await_io(%{gl: gl, deadline: deadline} = call, count) do
    grace = now() + @io_grace
    deadline = if deadline == :infinity, do: :infinity, else: max(deadline, grace)
    gl_ref = Process.monitor(gl)
    wait_io(call.mref, gl_ref, count, deadline)
    Process.demonitor(gl_ref, [:flush])
    :ok
  end

  defp wait_io(_mref, _gl_ref, 0, _deadline), do: :ok

  defp wait_io(mref, gl_ref, count, deadline) do
    receive do
      {:io_reply, ^mref, _} -> wait_io(mref, gl_ref, count - 1, deadline)
      {:DOWN, ^gl_ref, _, _, _} -> :ok
    after
      remaining(deadline) ->
        if expired?(deadline), do: :ok, else: wait_io(mref, gl_ref, count, deadline)
    end
  end
end
