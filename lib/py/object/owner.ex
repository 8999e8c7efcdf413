defmodule Py.Object.Owner do
  @moduledoc false
  # Runs a request on the thread that owns a `%Py.Object{}` (its
  # interpreter), outside any context's namespace, and waits for the reply
  # the way a call on a context does: callbacks from Python are served
  # (py's own erlang.state_* ones at once, registered functions in processes
  # of their own), log records and spans are dispatched, and Python's output
  # is complete on return. Used for requests whose receiver is an object
  # (in the parallel pool an object is usable only in its own interpreter)
  # and by `inspect/2` of an object.
  #
  # There is no process to monitor for the owner: if its interpreter ends
  # with the request queued, the wait ends at the timeout.

  @doc false
  @spec run(Py.Object.t(), tuple, timeout) :: {:ok, term} | {:error, Py.Error.t()}
  def run(%Py.Object{ref: ref}, request, timeout) do
    tag = make_ref()

    case Py.Native.submit_to_owner(ref, tag, Process.group_leader(), request) do
      {:ok, job} ->
        deadline = if timeout == :infinity, do: :infinity, else: now() + timeout
        await(tag, job, timeout, deadline, [])

      {:error, :closed} ->
        {:error, Py.Error.closed()}
    end
  end

  defp await(tag, job, timeout, deadline, callbacks) do
    receive do
      {^tag, :py_event, kind, payload} ->
        Py.EventSink.dispatch(kind, payload)
        await(tag, job, timeout, deadline, callbacks)

      {^tag, :callback, handle, {:internal, name}, args} ->
        Py.Native.callback_reply(handle, Py.State.serve(name, args))
        await(tag, job, timeout, deadline, callbacks)

      {^tag, :callback, handle, name, args} ->
        pid = Py.Callbacks.spawn_callback(handle, name, args)
        await(tag, job, timeout, deadline, [pid | callbacks])

      {^tag, result, io} ->
        stop_callbacks(callbacks)
        reply(tag, result, io)
    after
      remaining(deadline) ->
        stop_callbacks(callbacks)

        case Py.Native.cancel(job) do
          :sent ->
            receive_sent(tag)

          _dequeued_or_cancelled ->
            flush(tag)
            {:error, Py.Error.timeout(timeout)}
        end
    end
  end

  defp now, do: System.monotonic_time(:millisecond)
  defp remaining(:infinity), do: :infinity
  defp remaining(deadline), do: max(deadline - now(), 0)

  # Callback processes are linked to us; unlink before killing them.
  defp stop_callbacks(pids) do
    Enum.each(pids, fn pid ->
      Process.unlink(pid)
      Process.exit(pid, :kill)
    end)
  end

  # The reply was sent before the cancel took effect: it is in the mailbox.
  defp receive_sent(tag) do
    receive do
      {^tag, :py_event, kind, payload} ->
        Py.EventSink.dispatch(kind, payload)
        receive_sent(tag)

      {^tag, :callback, _handle, _name, _args} ->
        receive_sent(tag)

      {^tag, result, io} ->
        reply(tag, result, io)
    end
  end

  defp reply(tag, result, io) do
    await_io(tag, io)

    case result do
      {:ok, value} -> {:ok, value}
      {:error, reason} -> {:error, Py.Error.from_native(reason)}
    end
  end

  # Python's output went to our group leader as io requests tagged with
  # `tag`; wait for their replies so the output is complete on return (and
  # none is left in the mailbox).
  defp await_io(_tag, 0), do: :ok

  defp await_io(tag, count) do
    gl_ref = Process.monitor(Process.group_leader())
    wait_io(tag, gl_ref, count)
    Process.demonitor(gl_ref, [:flush])
    :ok
  end

  defp wait_io(_tag, _gl_ref, 0), do: :ok

  defp wait_io(tag, gl_ref, count) do
    receive do
      {:io_reply, ^tag, _} -> wait_io(tag, gl_ref, count - 1)
      {:DOWN, ^gl_ref, _, _, _} -> :ok
    end
  end

  # After a timeout: drop io replies, callback requests and events already
  # on their way for this request.
  defp flush(tag) do
    receive do
      {:io_reply, ^tag, _} ->
        flush(tag)

      {^tag, :callback, _handle, _name, _args} ->
        flush(tag)

      {^tag, :py_event, kind, payload} ->
        Py.EventSink.dispatch(kind, payload)
        flush(tag)
    after
      0 -> :ok
    end
  end
end
