defmodule Py.EventSink do
  @moduledoc false
  # Receives log records and spans from Python threads that run outside any
  # call (the native side knows this process's pid), and dispatches every
  # Python event, wherever it arrives. It also serves erlang.state_* for
  # those threads. Events raised during a call go to the
  # calling process instead (see Py.Context.Call's await loop).
  use GenServer

  def start_link(_opts), do: GenServer.start_link(__MODULE__, [], name: __MODULE__)

  @doc false
  def dispatch(:log, payload), do: Py.Logger.handle_record(payload)
  def dispatch(:span, payload), do: Py.Trace.handle_span(payload)
  def dispatch(_kind, _payload), do: :ok

  @impl true
  def init([]) do
    Py.Native.sink_set(self())
    {:ok, nil}
  end

  @impl true
  def handle_info({:py_event, kind, payload}, state) do
    dispatch(kind, payload)
    {:noreply, state}
  end

  # erlang.state_* from a Python thread outside any call; the thread waits.
  def handle_info({:py_state, handle, name, args}, state) do
    Py.Native.Large.thread_reply(handle, Py.Internal.serve(name, args))
    {:noreply, state}
  end

  # A registered function called from a Python thread outside any call:
  # run in a process of its own, which then serves the thread's later calls
  # (calls from several threads run at once; see Py.Callbacks.serve_thread/4);
  # the thread waits for the answer.
  def handle_info({:py_thread_call, handle, name, args, group_leader}, state) do
    spawn(fn -> Py.Callbacks.serve_thread(handle, name, args, group_leader) end)
    {:noreply, state}
  end

  # Output of a Python thread whose call has ended: to the group leader of
  # the process it speaks for then (the context's owner, a service's
  # watcher), or this process's when that one has gone.
  def handle_info({:py_output, process, text}, state) do
    group_leader =
      case Process.info(process, :group_leader) do
        {:group_leader, group_leader} -> group_leader
        nil -> Process.group_leader()
      end

    # The reply comes back here, and is dropped: nobody waits for it.
    send(group_leader, {:io_request, self(), make_ref(), {:put_chars, :unicode, text}})
    {:noreply, state}
  end

  # erlang.send to a pid of another node (the NIF sends only to local
  # ones): sent from here.
  def handle_info({:py_send, to, message}, state) when is_pid(to) do
    send(to, message)
    {:noreply, state}
  end

  def handle_info(_msg, state), do: {:noreply, state}
end
