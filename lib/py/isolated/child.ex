defmodule Py.Isolated.Child do
  @moduledoc false
  # What runs on the node that hosts an isolated or remote context: the
  # boot of an isolated context's own OS process, and the start of the
  # context there (`start_context/2`, also used on remote nodes where py
  # already runs). A holder process (`Py.Isolated.Objects`) keeps the
  # context, the handles its callers hold, and ends them all when the owner
  # on the origin node goes.

  @doc "The `-eval` of an isolated context's OS process: connect to the origin."
  def boot do
    origin = System.fetch_env!("PY_ISOLATED_ORIGIN") |> String.to_atom()

    spawn(fn ->
      # The process ends with the node it serves.
      if Node.connect(origin) != true, do: System.halt(3)
      Node.monitor(origin, true)

      receive do
        {:nodedown, ^origin} -> System.halt(0)
      end
    end)

    :ok
  end

  @doc """
  Configures and starts py in an isolated context's OS process: the
  origin's `:py` settings, one small pool, the guards off (exits and
  crashes are what the process is there to contain).
  """
  def configure(env, callback_names) do
    env =
      Keyword.merge(env,
        pool_size: 1,
        parallel_slots: 1,
        allow_process_exit: true,
        # Calls from Python threads here go to the origin's functions.
        isolated_origin: System.fetch_env!("PY_ISOLATED_ORIGIN") |> String.to_atom()
      )

    Enum.each(env, fn {key, value} -> Application.put_env(:py, key, value) end)

    case Application.ensure_all_started(:py) do
      {:ok, _} ->
        Enum.each(callback_names, &Py.Native.callback_register/1)
        :ok

      {:error, reason} ->
        {:error, "py did not start in the isolated process: #{inspect(reason)}"}
    end
  end

  @doc """
  Connects the origin's link (`name`) to `context`, for the plain calls of
  the stand-ins (`Py.Isolated.Standin`); the link is kept in the holder's
  table.
  """
  def link(name, context, table) do
    with {:ok, {_pid, ref}} <- Py.Context.handle(context),
         {:ok, link} <- Py.Native.link_connect(name, ref) do
      :ets.insert(table, {:link, link})
      :ok
    end
  end

  @doc "The origin's registered functions changed: these are the names now."
  def callbacks(names) do
    Enum.each(names, &Py.Native.callback_register/1)
    :ok
  end

  @doc """
  Starts a context on this node for `owner` (a process on the origin);
  `{:ok, context_pid, holder_pid}`.
  """
  def start_context(owner, opts) do
    case Application.ensure_all_started(:py) do
      {:ok, _} ->
        with {:ok, context} <- Py.Context.start(interpreter: :main),
             :ok <- own_process(context, Keyword.get(opts, :own_process, false)),
             :ok <- limit_memory(context, Keyword.get(opts, :max_memory)) do
          holder = Py.Isolated.Objects.start_holder(owner, context)
          {:ok, context, holder}
        end

      {:error, reason} ->
        {:error, "py is not running on #{node()}: #{inspect(reason)}"}
    end
  end

  # In a process of its own, SIGINT (`signal.raise_signal`, a Ctrl-C sent
  # to it) ends the process as it would a plain Python program that does
  # not catch KeyboardInterrupt, instead of being taken by the VM.
  defp own_process(_context, false), do: :ok

  defp own_process(context, true) do
    code = "import ctypes, signal\nctypes.CDLL(None).signal(int(signal.SIGINT), 0)\n"

    case Py.exec(code, context: context) do
      :ok ->
        :ok

      {:error, error} ->
        {:error, "cannot set up the isolated process: " <> Exception.message(error)}
    end
  end

  # The address space may grow by `max_memory` bytes past what the
  # process uses now (the VM and the interpreter): past that, allocations
  # fail and Python raises MemoryError where it can.
  defp limit_memory(_context, nil), do: :ok

  defp limit_memory(context, bytes) do
    code = """
    import resource
    with open("/proc/self/statm") as f:
        _size = int(f.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (_size + #{bytes}, resource.RLIM_INFINITY))
    del _size
    """

    case Py.exec(code, context: context) do
      :ok -> :ok
      {:error, error} -> {:error, "cannot apply max_memory: " <> Exception.message(error)}
    end
  end
end
