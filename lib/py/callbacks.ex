defmodule Py.Callbacks do
  @moduledoc false
  # Registered Elixir functions that Python calls through the `erlang`
  # module, and how a callback request is served. See `Py.register_function/2`.

  @table __MODULE__

  def create_table do
    :ets.new(@table, [:named_table, :public, :set, read_concurrency: true])
  end

  def register(name, fun) do
    name = to_string(name)
    :ets.insert(@table, {name, fun})
    Py.Native.callback_register(name)
    Py.Isolated.Context.callbacks_changed()
    :ok
  end

  def unregister(name) do
    name = to_string(name)
    :ets.delete(@table, name)
    Py.Native.callback_unregister(name)
    Py.Isolated.Context.callbacks_changed()
    :ok
  end

  @doc false
  # The names of the registered functions (isolated contexts learn them).
  def names, do: :ets.select(@table, [{{:"$1", :_}, [], [:"$1"]}])

  @doc false
  # Runs a callback in a process of its own, monitored (not linked) by the
  # caller, which keeps waiting for its Python call; with the caller's
  # bindings and group leader, so Python called from the callback runs on
  # the same context. Returns `{pid, monitor}`. The process ends with
  # `answered_reason/0` once it has answered; one that ends otherwise
  # (killed, a linked process crashed, `Process.exit(self(), :normal)` in
  # the function) is answered for by the caller (`exited/3`), so its exit
  # never reaches the caller.
  def spawn_callback(handle, name, args) do
    inherited = inheritance()

    spawn_monitor(fn ->
      inherit(inherited)
      reply(handle, run(name, args))
      exit(answered_reason())
    end)
  end

  @doc false
  # The exit reason of a spawn_callback/3 process that answered.
  def answered_reason, do: {:shutdown, :py_answered}

  @doc false
  # Like spawn_callback/3 for a call on a local context, but the process
  # then serves the call's later callbacks too (`run_next/4`), once its
  # last one is answered: one process for a call's sequential callbacks
  # instead of one each. It ends when the caller kills it (at the call's
  # end) or dies.
  def start_worker(handle, name, args) do
    inherited = inheritance()
    caller = self()

    spawn_monitor(fn ->
      inherit(inherited)
      serve(caller, Process.monitor(caller), handle, name, args)
    end)
  end

  @doc false
  def run_next(worker, handle, name, args), do: send(worker, {:py_callback, handle, name, args})

  defp serve(caller, caller_ref, handle, name, args) do
    reply(handle, run(name, args))
    # The callback's own code may have taken the caller's DOWN (a receive
    # that matches anything), so the caller is checked after each one. A
    # caller that dies later sends a DOWN that only the wait below can
    # take, so the wait needs no timer (a timer set and cancelled per
    # callback cost several percent of a callback's time).
    if Process.alive?(caller), do: wait_next(caller, caller_ref)
  end

  defp wait_next(caller, caller_ref) do
    receive do
      {:py_callback, handle, name, args} -> serve(caller, caller_ref, handle, name, args)
      {:DOWN, ^caller_ref, _, _, _} -> :ok
    end
  end

  # A callback from an isolated or remote context (`Py.Isolated.Call`) is
  # answered with a message to the process there that waits for it.
  defp reply({:forward, to, token}, result), do: send(to, {:py_callback_result, token, result})
  defp reply(handle, result), do: Py.Native.Large.callback_reply(handle, result)

  @doc false
  # The answer for a callback whose process exited (any reason but
  # :normal) before answering; Python raises it as erlang.Error. An answer
  # that was already sent wins (the native side keeps the first).
  def exited(handle, name, reason) do
    message =
      "the process running the Elixir function #{inspect(name)} exited: " <>
        Exception.format_exit(reason)

    reply(handle, {:error, message})
  end

  @doc false
  # What a helper process takes over from the process that starts it: its
  # py bindings (so its calls run on the same contexts, in the same
  # namespaces) and its group leader (so Python output goes to the same
  # place).
  def inheritance do
    bindings =
      for {key, value} <- Process.get(),
          match?(:"$py_binding", key) or match?({:"$py_binding", _}, key) or
            match?({Py.Isolated.Call, _}, key),
          do: {key, value}

    {bindings, Process.group_leader()}
  end

  @doc false
  def inherit({bindings, group_leader}) do
    Process.group_leader(self(), group_leader)
    Enum.each(bindings, fn {key, value} -> Process.put(key, value) end)
  end

  # How long a process serving a Python thread's calls waits for the next
  # one before it ends (the thread sends to it only within half of this;
  # see native/py_nif/src/erlang/thread_route.rs).
  @thread_idle 60_000

  @doc false
  # Serves the calls of one Python thread that runs outside any call: its
  # first comes from the event sink, which spawned this process; the
  # thread's later ones come straight from the thread, which learns this
  # process from the answer. Each runs with the group leader of the call
  # that started the thread while that call runs, else the sink's. Ends
  # when the thread ends, or after @thread_idle ms without a call.
  def serve_thread(handle, name, args, group_leader) do
    serve_thread(handle, name, args, group_leader, Process.group_leader())
  end

  defp serve_thread(handle, name, args, group_leader, default) do
    Process.group_leader(self(), if(is_pid(group_leader), do: group_leader, else: default))
    Py.Native.Large.thread_reply(handle, run_for_thread(name, args))

    receive do
      {:py_thread_call, handle, name, args, group_leader} ->
        serve_thread(handle, name, args, group_leader, default)

      :py_thread_ended ->
        :ok
    after
      @thread_idle -> :ok
    end
  end

  @doc false
  # A call from a Python thread outside any call (see serve_thread/4). In
  # an isolated context's process the functions are on the origin node: it
  # runs there.
  def run_for_thread(name, args) do
    case Application.get_env(:py, :isolated_origin) do
      nil -> run(name, args)
      origin -> :erpc.call(origin, __MODULE__, :run_for_thread, [name, args])
    end
  catch
    kind, reason -> {:error, Exception.format(kind, reason) |> String.trim()}
  end

  defp run(name, args) do
    case :ets.lookup(@table, name) do
      [{_, fun}] -> apply_callback(fun, args)
      [] -> {:error, "no Elixir function is registered as #{inspect(name)}"}
    end
  rescue
    e -> {:error, Exception.format(:error, e, __STACKTRACE__) |> String.trim()}
  catch
    kind, reason -> {:error, Exception.format(kind, reason, __STACKTRACE__) |> String.trim()}
  end

  defp apply_callback({module, function}, args), do: {:ok, apply(module, function, args)}

  defp apply_callback(fun, args) when is_function(fun) do
    count = length(args)

    cond do
      is_function(fun, count) ->
        {:ok, apply(fun, args)}

      is_function(fun, 1) ->
        {:ok, fun.(args)}

      true ->
        {:arity, arity} = Function.info(fun, :arity)
        {:error, "the Elixir function takes #{arity} arguments, Python passed #{count}"}
    end
  end
end
