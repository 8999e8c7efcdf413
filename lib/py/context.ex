defmodule Py.Context do
  @moduledoc """
  A Python execution context: one dedicated OS thread running Python, with
  its own globals, owned by this GenServer.

  State persists across calls to the same context. Contexts run in parallel
  with one another as far as the interpreter allows (in worker mode they
  share the GIL; see `docs/contexts-and-parallelism.md`).

      {:ok, ctx} = Py.Context.start_link()
      :ok = Py.Context.exec(ctx, "counter = 41")
      {:ok, 42} = Py.Context.eval(ctx, "counter + 1")
      Py.Context.stop(ctx)

  Contexts are ordinary children for a supervisor:

      children = [{Py.Context, name: MyApp.Python}]
      Py.call(:math, :sqrt, [2.0], context: MyApp.Python)

  The GenServer is not on the call path: a call goes straight from the
  calling process to the context's thread and the reply comes straight back.
  When the context stops or dies, its thread ends and every caller still
  waiting gets `{:error, %Py.Error{kind: :closed}}`.

  The functions here are the `Py` functions with the context given first;
  they use the context's own globals (not a per-process namespace).
  """

  use GenServer

  require Logger

  @typedoc "A context: its pid or registered name."
  @type t :: GenServer.server()

  @typedoc false
  @type handle :: {pid, reference}

  @doc """
  Starts a context linked to the caller.

  Options:
    * `:name` - register the context under this name
    * `:interpreter` - `:auto` (default) or `:main`. In parallel builds a
      context goes to the next sub-interpreter slot; `:main` gives it a
      thread of its own in the main interpreter instead, for modules that
      refuse sub-interpreters (numpy). Worker builds always use the main
      interpreter.
    * `:isolation` - `:none` (default) or `:os_process`: run Python in an
      OS process of its own, so that a crash in native code (a segfault,
      `abort()`, the OOM killer, `os._exit`) ends only that process. The
      callers waiting on it get a `:crashed` error that says how it ended,
      and the context starts again with a fresh interpreter. Calls cost
      more (see `docs/isolation.md`). With it:
      * `:max_memory` - bytes the process may allocate past what it uses
        when it starts; past that Python raises `MemoryError`, or the
        process ends and is reported as `:crashed`
      * `:max_calls` - replace the process after this many calls (for
        libraries that leak), without losing a call
    * `:node` - run the context on another node of the cluster, where py
      is installed: it is started there and tied to this process; if that
      node goes, callers get `:crashed` and the context starts again when
      the node is back. `{:pg, group}` picks a node that has processes in
      that `:pg` group (default scope), and moves to another when it goes.
      See `docs/isolation.md`.
    * `:retire_after` - milliseconds (default `config :py, retire_after:`,
      else 5 000). A call that timed out, or whose caller died, is
      interrupted; if it is still running this long after, it is stuck
      where interrupts do not reach (in C: `time.sleep`, a blocking read, a
      C extension) and the context is *retired*: it gets a fresh thread
      (in the parallel pool, its sub-interpreter slot is replaced), calls
      queued behind the stuck one go to healthy contexts, and the stuck
      thread is left to end by itself if it ever returns to Python. Its
      globals are lost. A Logger warning and the
      `[:py, :context, :retired]` event (`Py.Telemetry`) report it.
  """
  @spec start_link(keyword) :: GenServer.on_start()
  def start_link(opts \\ []) do
    case split_options(opts) do
      {gen_opts, {:isolated, args}} -> Py.Isolated.Context.start_link(args, gen_opts)
      {gen_opts, opts} -> GenServer.start_link(__MODULE__, opts, gen_opts)
    end
  end

  @doc """
  Starts a context without a link to the caller (same options as
  `start_link/1`).
  """
  @spec start(keyword) :: GenServer.on_start()
  def start(opts \\ []) do
    case split_options(opts) do
      {gen_opts, {:isolated, args}} -> Py.Isolated.Context.start(args, gen_opts)
      {gen_opts, opts} -> GenServer.start(__MODULE__, opts, gen_opts)
    end
  end

  # Bad options raise here, in the caller, not in `init/1` (which would
  # exit a linked caller with a less clear reason).
  defp split_options(opts) do
    {gen_opts, opts} = Keyword.split(keyword!(opts), [:name])
    _ = interpreter(opts)
    _ = retire_after!(opts)

    case Py.Isolated.Context.options!(opts) do
      {nil, _} -> {gen_opts, opts}
      {placement, context_opts} -> {gen_opts, {:isolated, {placement, context_opts, opts[:pool]}}}
    end
  end

  defp keyword!(opts),
    do: Py.Options.keyword!(opts, "Py.Context.start_link/1", "[name: MyApp.Python]")

  @doc false
  def child_spec(opts) do
    %{
      id: Keyword.get(keyword!(opts), :name, __MODULE__),
      start: {__MODULE__, :start_link, [opts]},
      shutdown: 10_000
    }
  end

  @doc """
  Stops the context: callers still waiting get a `:closed` error, the
  running Python code is interrupted, and `stop` waits up to 5 s for the
  context's thread to end (code blocked in C, for example a long
  `time.sleep`, may outlive that wait; the thread then ends when it
  returns to Python).

  Stopping a context that is not running (it has stopped or died, or no
  process has that name) returns `:ok`: the context is stopped either way.
  """
  @spec stop(t, term, timeout) :: :ok
  def stop(context, reason \\ :normal, timeout \\ :infinity) do
    GenServer.stop(Py.Options.context!(context), reason, timeout)
  catch
    :exit, :noproc -> :ok
    :exit, {:noproc, _} -> :ok
  end

  @doc """
  Interrupts what the context runs now: Python raises `erlang.Interrupted`
  in the running code (a wait on a channel or buffer included) and its
  caller gets `{:error, %Py.Error{kind: :interrupted}}`, unless the code
  catches it. The context goes on with its next call. Returns `:ok`, or
  `:idle` when it ran nothing. Code blocked inside C (a long `time.sleep`,
  a blocking read) is interrupted when it returns to Python.

      {:ok, ctx} = Py.Context.start_link()
      task = Task.async(fn -> Py.Context.eval(ctx, "sum(1 for _ in iter(int, 1))") end)
      # ... later
      :ok = Py.Context.interrupt(ctx)
      {:error, %Py.Error{kind: :interrupted}} = Task.await(task)
  """
  @spec interrupt(t) :: :ok | :idle | {:error, Py.Error.t()}
  def interrupt(context) do
    case handle(Py.Options.context!(context)) do
      {:ok, {_pid, {:isolated, %{node: node, context: remote}}}} ->
        :erpc.call(node, __MODULE__, :interrupt, [remote], 10_000)

      {:ok, {_pid, {:isolated, :restarting}}} ->
        :idle

      {:ok, {_pid, ref}} ->
        Py.Native.context_interrupt(ref)

      {:error, _} = error ->
        error
    end
  catch
    :error, {:erpc, _} -> {:error, Py.Error.closed()}
  end

  @doc """
  Makes this node distributed if it is not, as isolated contexts
  (`isolation: :os_process`) need: it gets a name of its own on loopback
  (`py_<OS pid>@127.0.0.1`), epmd is started if none runs, and a random
  cookie is set unless one was. A node that is already distributed is left
  as it is. Returns `:ok`, or `{:error, message}` saying what failed.

  Starting an isolated context does this by itself. Call it first where
  the node must not turn distributed midway: in `test/test_helper.exs` of a
  suite on Elixir 1.14, whose compiler, still compiling test files when an
  isolated context starts, can fail with `no connection to nonode@nohost`.

      # test/test_helper.exs
      :ok = Py.Context.ensure_distributed()
      ExUnit.start()
  """
  @spec ensure_distributed() :: :ok | {:error, String.t()}
  defdelegate ensure_distributed(), to: Py.Isolated.Distribution, as: :ensure

  @doc "`Py.call/4` on this context."
  def call(context, module, function, args \\ [], opts \\ []),
    do: Py.call(module, function, args, [context: context] ++ opts)

  @doc "`Py.call!/4` on this context."
  def call!(context, module, function, args \\ [], opts \\ []),
    do: Py.call!(module, function, args, [context: context] ++ opts)

  @doc "`Py.eval/3` on this context."
  def eval(context, code, bindings \\ %{}, opts \\ []),
    do: Py.eval(code, bindings, [context: context] ++ opts)

  @doc "`Py.eval!/3` on this context."
  def eval!(context, code, bindings \\ %{}, opts \\ []),
    do: Py.eval!(code, bindings, [context: context] ++ opts)

  @doc "`Py.exec/2` on this context."
  def exec(context, code, opts \\ []), do: Py.exec(code, [context: context] ++ opts)

  @doc "`Py.exec!/2` on this context."
  def exec!(context, code, opts \\ []), do: Py.exec!(code, [context: context] ++ opts)

  # ------------------------------------------------------------ handle

  @doc false
  # The native handle of a context, without a message round trip. A call
  # with it runs through `Py.Context.Call.run/5`.
  @spec handle(t) :: {:ok, handle} | {:error, Py.Error.t()}
  def handle(context) do
    case GenServer.whereis(context) do
      pid when is_pid(pid) ->
        case Py.Context.Registry.lookup(pid) do
          {:ok, ref} -> {:ok, {pid, ref}}
          :error -> {:error, not_a_context(context)}
        end

      _ ->
        {:error, not_a_context(context)}
    end
  end

  defp not_a_context(context) do
    %Py.Error{
      kind: :closed,
      message:
        "#{inspect(context)} is not a running Py.Context; start one with Py.Context.start_link/1"
    }
  end

  # ------------------------------------------------------------ GenServer

  @impl true
  def init(opts) do
    Process.flag(:trap_exit, true)

    state = %{
      ref: nil,
      interpreter: interpreter(opts),
      pool: Keyword.get(opts, :pool),
      retire_after: retire_after!(opts)
    }

    case open_native(state) do
      {:ok, state} -> {:ok, state}
      {:error, error} -> {:stop, error}
    end
  end

  defp open_native(state) do
    case Py.Native.context_new(state.interpreter) do
      {:ok, ref} ->
        Py.Context.Registry.register(self(), ref)

        case state.pool do
          {pool, index} -> Py.Pool.register(pool, index, {self(), ref})
          nil -> :ok
        end

        {:ok, %{state | ref: ref}}

      {:error, message} ->
        {:error, %Py.Error{kind: :runtime, message: message}}
    end
  end

  @doc false
  # The context's handle, with a fresh native context if its old one was
  # closed under it (its sub-interpreter slot was re-made).
  def renew(pid), do: GenServer.call(pid, :renew)

  @impl true
  def handle_call(:renew, _from, %{ref: ref} = state) do
    if Py.Native.context_open(ref) do
      {:reply, {:ok, {self(), ref}}, state}
    else
      Logger.warning(
        "py: Python context #{inspect(self())} lost its thread (its sub-interpreter slot " <>
          "was replaced or re-made) and goes on with a fresh one: its Python globals are lost"
      )

      case open_native(state) do
        {:ok, state} -> {:reply, {:ok, {self(), state.ref}}, state}
        {:error, error} -> {:stop, error, {:error, error}, state}
      end
    end
  end

  defp interpreter(opts) do
    case Keyword.get(opts, :interpreter, :auto) do
      kind when kind in [:auto, :main] ->
        kind

      other ->
        raise ArgumentError,
              "the :interpreter option must be :auto or :main, got: #{inspect(other)}"
    end
  end

  @doc false
  # The :retire_after option (Py.Pool checks it with this too).
  def retire_after!(opts) do
    case Keyword.fetch(opts, :retire_after) do
      {:ok, ms} when is_integer(ms) and ms > 0 ->
        ms

      {:ok, other} ->
        raise ArgumentError,
              "the :retire_after option must be a positive integer (milliseconds), got: " <>
                inspect(other)

      :error ->
        Py.Config.retire_after()
    end
  end

  @impl true
  def handle_info({:EXIT, _pid, reason}, state), do: {:stop, reason, state}

  # Sent by the native side when a job of this context was interrupted (its
  # caller timed out or died): check on it after the grace period.
  def handle_info({:py_interrupted, job}, %{ref: ref} = state) do
    Process.send_after(self(), {:py_check_stuck, job, ref}, state.retire_after)
    {:noreply, state}
  end

  def handle_info({:py_check_stuck, job, ref}, %{ref: ref} = state) do
    if Py.Native.context_stuck(ref, job) do
      {:noreply, retire(state)}
    else
      {:noreply, state}
    end
  end

  # A check for a native context this process has since replaced.
  def handle_info({:py_check_stuck, _job, _old_ref}, state), do: {:noreply, state}

  def handle_info(_msg, state), do: {:noreply, state}

  # The thread is stuck in an interrupted call: give the context a fresh
  # one (a fresh slot in the parallel pool). The native side answers the
  # calls queued behind the stuck one `:not_queued`, so they run elsewhere.
  defp retire(%{ref: ref} = state) do
    {pool, index} = state.pool || {nil, nil}

    Logger.warning(
      "py: a call on Python context #{inspect(self())}" <>
        if(pool, do: " (pool #{inspect(pool)}, context #{index})", else: "") <>
        " did not return #{state.retire_after} ms after it was interrupted: it is stuck " <>
        "where interrupts do not reach (in C code). The context gets a fresh thread and " <>
        "its Python globals are lost; the stuck thread ends if it ever returns to Python."
    )

    Py.Native.context_retire(ref)
    :counters.add(retired_counter(), 1, 1)

    Py.Telemetry.execute(
      [:py, :context, :retired],
      %{count: 1, stuck_ms: state.retire_after},
      %{context: self(), pool: pool, index: index}
    )

    case open_native(state) do
      {:ok, state} -> state
      {:error, error} -> exit({:shutdown, error})
    end
  end

  @retired_key {__MODULE__, :retired}

  @doc false
  # How many contexts were retired since the application started.
  def retired_count, do: :counters.get(retired_counter(), 1)

  @doc false
  # Made once, when the application starts.
  def create_counters do
    unless :persistent_term.get(@retired_key, nil) do
      :persistent_term.put(@retired_key, :counters.new(1, [:atomics]))
    end

    :ok
  end

  defp retired_counter, do: :persistent_term.get(@retired_key)

  @impl true
  def terminate(_reason, %{ref: ref}) do
    Py.Native.context_close(ref)
    # The thread ends once the running job (if any) is interrupted.
    Py.Native.context_wait(ref, 5_000)
    :ok
  end
end
