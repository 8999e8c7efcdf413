defmodule Py do
  @moduledoc """
  Run Python inside the BEAM.

      iex> Py.call(:math, :sqrt, [2.0])
      {:ok, 1.4142135623730951}
      iex> Py.eval("1 + 2")
      {:ok, 3}
      iex> Py.exec("def double(x):\\n    return 2 * x")
      :ok
      iex> Py.eval("double(21)")
      {:ok, 42}

  Every function returns `{:ok, value}` or `{:error, %Py.Error{}}`, and has
  a `!` variant that returns the value or raises `Py.Error`.

  ## Where calls run

  Calls without a `:context` option go to the default pool, started with the
  `:py` application (`config :py, pool_size: n`, default: one context per
  scheduler). A process is bound to one pool context on its first call and
  gets its own Python namespace there, so

      iex> Py.exec("x = 1")
      :ok
      iex> Py.eval("x")
      {:ok, 1}

  works within one process, while another process never sees its `x`. The
  namespace is dropped when the process exits. `bind/1` binds a process to a
  chosen context instead, and `unbind/0` drops the bindings.

  A request on a `%Py.Object{}` (a method call, an attribute, a stream's
  next items) runs, in the parallel pool, on the interpreter the object
  lives in, whatever the process is bound to.

  With `context: ctx` a call runs on that `Py.Context`, in its own globals.

  ## Options

  Every call accepts:

    * `:timeout` - milliseconds (any non-negative integer, also past
      `receive`'s 2^32 - 1 limit) or `:infinity` to wait for the result.
      Default: `config :py, timeout:`, else 30 000. On expiry the running
      Python code is interrupted (an `erlang.Interrupted` exception is raised
      in it), the caller gets a `:timeout` error and the context goes on
      serving calls. Code blocked in C (for example `time.sleep`) is
      interrupted when it returns to Python.
    * `:context` - a `Py.Context` (pid or name) to run on
    * `:pool` - a named `Py.Pool` to run on (default `:default`, or the pool
      a `Py.Router` route names for the called module)
    * `:return` - `:auto` (default) converts the result to Elixir terms;
      `:object` returns a `%Py.Object{}` handle instead

  `call/4` and `call_method/4` also take `:kwargs`, a keyword list or map of
  keyword arguments.

  See `docs/type-conversion.md` for how values cross.
  """

  alias Py.{Context, Error, Pool}
  require Logger

  @type result(t) :: {:ok, t} | {:error, Error.t()}
  @type name :: atom | String.t()

  @doc """
  Calls `module.function(*args, **kwargs)`.

  `module` is a module name (`:math`, `"os.path"`) or a `%Py.Object{}`
  whose attribute `function` is called. With `function` `nil` the object
  itself is called.

      iex> Py.call(:math, :sqrt, [4])
      {:ok, 2.0}
      iex> Py.call("os.path", :join, ["a", "b"])
      {:ok, "a/b"}
      iex> Py.call(:json, :dumps, [%{"a" => 1}], kwargs: [sort_keys: true])
      {:ok, ~s({"a": 1})}
  """
  @spec call(name | Py.Object.t(), name | nil, list, keyword) :: result(term)
  def call(module, function, args \\ [], opts \\ [])

  # No options (most calls): the request needs no option looked up.
  def call(module, function, args, []),
    do: Py.Dispatch.run({:call, module, function, args, [], :auto}, [])

  def call(module, function, args, opts) do
    opts = Py.Options.keyword!(opts)
    run({:call, module, function, args, Keyword.get(opts, :kwargs, []), ret(opts)}, opts)
  end

  @doc "Like `call/4` but returns the value or raises `Py.Error`."
  def call!(module, function, args \\ [], opts \\ []),
    do: bang(call(module, function, args, opts))

  @doc """
  Evaluates Python code in the caller's namespace and returns its value:
  an expression, or a code cell (statements ending in an expression, as in
  a notebook; the cell's value is the last expression's, `nil` when the last
  statement is not one).

  `bindings` (a map or keyword list with string or atom keys) are visible to
  the code as global names and do not persist. Names a cell assigns (`x =
  ...`, `def`, `import`) stay in the namespace, for later calls.

      iex> Py.eval("1 + 2")
      {:ok, 3}

      iex> Py.eval("x * y", %{x: 2, y: 5})
      {:ok, 10}

      iex> Py.eval(\"""
      ...> import math
      ...> r = math.sqrt(n)
      ...> r * 2
      ...> \""", %{n: 16})
      {:ok, 8.0}

  With `assigned: true` the result also carries the names the code
  assigned, converted (a value with no Elixir counterpart, such as a module,
  comes back as a `%Py.Object{}`):

      iex> {:ok, 3, assigned} = Py.eval("a = 1\\nb = a + 1\\na + b", %{}, assigned: true)
      iex> Map.take(assigned, ["a", "b"])
      %{"a" => 1, "b" => 2}

  Top-level `await` works in a cell. A Python error gives `{:error,
  %Py.Error{}}`; a `SyntaxError`'s carries `:line`, `:offset` and `:text`,
  and `exception: true` keeps the exception itself in `:exception` (a
  `%Py.Object{}`, for notebooks and code that inspects it).
  """
  @spec eval(String.t(), map | keyword, keyword) :: result(term) | {:ok, term, map}
  def eval(code, bindings \\ %{}, opts \\ []) do
    code = Py.Options.code!(code, "Py.eval/3")

    if Keyword.get(Py.Options.keyword!(opts), :assigned, false) == true do
      case run({:cell, code, bindings, ret(opts), true}, opts) do
        {:ok, {value, assigned}} -> {:ok, value, assigned}
        {:error, _} = error -> error
      end
    else
      run({:eval, code, bindings, ret(opts)}, opts)
    end
  end

  @doc "Like `eval/3` but returns the value (`{value, assigned}` with `assigned: true`) or raises `Py.Error`."
  def eval!(code, bindings \\ %{}, opts \\ []) do
    case eval(code, bindings, opts) do
      {:ok, value, assigned} -> {value, assigned}
      other -> bang(other)
    end
  end

  @doc """
  Executes Python statements in the caller's namespace. Returns `:ok`.

      iex> Py.exec("import math\\nr = math.pi")
      :ok
      iex> Py.eval("round(r, 2)")
      {:ok, 3.14}
  """
  @spec exec(String.t(), keyword) :: :ok | {:error, Error.t()}
  def exec(code, opts \\ []) do
    case run({:exec, Py.Options.code!(code, "Py.exec/2")}, opts) do
      {:ok, nil} -> :ok
      {:error, _} = error -> error
    end
  end

  @doc "Like `exec/2` but returns `:ok` or raises `Py.Error`."
  def exec!(code, opts \\ []) do
    case exec(code, opts) do
      :ok -> :ok
      {:error, error} -> raise error
    end
  end

  @doc """
  Reads an attribute of a `%Py.Object{}` (or of a module, given by name).

      iex> Py.getattr(:math, :pi)
      {:ok, 3.141592653589793}
  """
  @spec getattr(Py.Object.t() | name, name, keyword) :: result(term)
  def getattr(object, name, opts \\ []), do: run({:getattr, object, name, ret(opts)}, opts)

  @doc "Like `getattr/3` but returns the value or raises `Py.Error`."
  def getattr!(object, name, opts \\ []), do: bang(getattr(object, name, opts))

  @doc """
  Calls a method of a `%Py.Object{}`.

      iex> {:ok, counter} = Py.call(:collections, :Counter, [["a", "b", "a"]], return: :object)
      iex> Py.call_method(counter, :most_common, [1])
      {:ok, [{"a", 2}]}
  """
  @spec call_method(Py.Object.t(), name, list, keyword) :: result(term)
  def call_method(object, name, args \\ [], opts \\ []), do: call(object, name, args, opts)

  @doc "Like `call_method/4` but returns the value or raises `Py.Error`."
  def call_method!(object, name, args \\ [], opts \\ []),
    do: bang(call_method(object, name, args, opts))

  @doc """
  The Python `repr()` of a `%Py.Object{}` or of any value, converted first
  (so an atom or a string is a `str`, not a module name).

      iex> Py.repr(42)
      {:ok, "42"}
      iex> Py.repr(%{"a" => [1, nil]})
      {:ok, "{'a': [1, None]}"}
  """
  @spec repr(term, keyword) :: result(String.t())
  def repr(object, opts \\ []), do: run({:repr, object}, opts)

  @doc """
  What is running: Python version, executable, libpython, mode (`:worker`,
  `:parallel` or `:free_threaded`), sub-interpreter slots, pool size, the
  number of contexts retired because a call stuck in C (`:retired`, see
  `Py.Context.start_link/1`), and the active virtual environment (`:venv`,
  a path or `nil`; see `activate_venv/1`), where the NIF came from (`nif:`
  `:source` or `{:precompiled, tarball}`, see docs/packaging.md).

      Py.info()
      #=> %{python_version: "3.11.7", executable: "/usr/bin/python3",
      #     libpython: "/usr/lib/.../libpython3.11.so.1.0", mode: :worker,
      #     slots: 0, pool_size: 2, live_objects: 0, retired: 0, venv: nil,
      #     nif: :source}
  """
  @spec info() :: map
  def info do
    (Py.Runtime.info() || %{})
    |> Map.merge(%{
      mode: Py.Native.mode(),
      slots: Py.Native.slot_count(),
      pool_size: Pool.size(),
      live_objects: Py.Object.live_count(),
      retired: Py.Context.retired_count(),
      venv: Py.Venv.active()
    })
  end

  @doc """
  Calls `module.function(*args)` and streams the items of the iterator or
  generator it returns, lazily, fetching them `:chunk_size` at a time
  (default 100).

      iex> Py.stream(:builtins, :range, [5]) |> Enum.to_list()
      [0, 1, 2, 3, 4]
      iex> Py.exec("def count(n):\\n    yield from range(n)")
      :ok
      iex> Py.stream_eval("count(3)") |> Enum.to_list()
      [0, 1, 2]

  Stopping early (`Enum.take/2`) closes a generator (its `finally` runs).
  The stream runs on the context the enumerating process is bound to in
  the pool a `Py.Router` route names for `module.function` (or on
  `:context` / `:pool`): the call and the iteration over its result run on
  one context. Takes the options of `call/4`, `:kwargs` included; a failure
  raises `Py.Error` while enumerating. See `docs/streaming-and-async.md`.
  """
  @spec stream(name | Py.Object.t(), name | nil, list, keyword) :: Enumerable.t()
  def stream(module, function, args \\ [], opts \\ []) do
    opts = Py.Options.keyword!(opts)
    kwargs = Keyword.get(opts, :kwargs, [])

    # The call and the iterator over its result run on one context: resolve
    # a route once, here, rather than per request. (A stream of an object's
    # method runs on the object's owner, as every request on it.)
    opts =
      if Keyword.has_key?(opts, :context) or is_struct(module, Py.Object) do
        opts
      else
        Keyword.put_new_lazy(opts, :pool, fn ->
          Py.Router.pool_for({:call, module, function, args, kwargs, :object})
        end)
      end

    Py.Stream.new({:call, module, function, args, kwargs, :object}, opts)
  end

  @doc """
  Pushes the items of the iterable `module.function(*args)` returns (a
  generator, sync or async) to `pid` as messages, with a credit scheme so a
  slow receiver bounds memory; see `Py.PushStream`.

      iex> {:ok, stream} = Py.stream_to(self(), :builtins, :range, [3])
      iex> ref = stream.ref
      iex> for _ <- 1..4, do: receive(do: ({^ref, _, _} = m -> Tuple.delete_at(m, 0); {^ref, :done} -> :done))
      [{:item, 0}, {:item, 1}, {:item, 2}, :done]

  Options: `:credit` (default 100), and those of `stream/4`.
  """
  @spec stream_to(pid, name | Py.Object.t(), name | nil, list, keyword) ::
          {:ok, Py.PushStream.t()}
  def stream_to(pid, module, function, args \\ [], opts \\ []) do
    Py.PushStream.start(pid, &stream(module, function, args, &1), opts)
  end

  @doc """
  Evaluates `code` and streams the items of the iterable it returns, like
  `stream/4`:

      iex> Py.stream_eval("(n * n for n in range(4))") |> Enum.to_list()
      [0, 1, 4, 9]
  """
  @spec stream_eval(String.t(), map | keyword, keyword) :: Enumerable.t()
  def stream_eval(code, bindings \\ %{}, opts \\ []) do
    code = Py.Options.code!(code, "Py.stream_eval/3")
    Py.Stream.new({:eval, code, bindings, :object}, opts)
  end

  @doc """
  Starts `call/4` in the background and returns a `Task` at once; get the
  result (`{:ok, value}` or `{:error, %Py.Error{}}`) with `await/2`.

  The call runs in a process that takes over the caller's bindings, so it
  runs on the same context and namespace. A coroutine result is awaited on
  the context's event loop, as in every call.

      iex> task = Py.async_call(:math, :factorial, [20])
      iex> Py.await(task)
      {:ok, 2432902008176640000}
  """
  @spec async_call(name | Py.Object.t(), name | nil, list, keyword) :: Task.t()
  def async_call(module, function, args \\ [], opts \\ []) do
    check_call_options!(opts)
    inherited = Py.Callbacks.inheritance()

    Task.async(fn ->
      Py.Callbacks.inherit(inherited)
      call(module, function, args, opts)
    end)
  end

  @doc """
  Waits for a `async_call/4` task: `{:ok, value}` or `{:error, %Py.Error{}}`.

  After `timeout` ms (default 30 000 or `config :py, timeout:`) it returns a
  `:timeout` error and gives the task up: the call goes on in the
  background, under its own `:timeout` option, and its result is dropped.
  Nothing of it is left in the caller's mailbox and the task is no longer
  linked to the caller. A task can be awaited once.
  """
  @spec await(Task.t(), timeout) :: result(term)
  def await(task, timeout \\ nil)

  def await(%Task{} = task, timeout) do
    timeout =
      case timeout do
        nil ->
          Py.Config.default_timeout()

        ms when (is_integer(ms) and ms >= 0) or ms == :infinity ->
          ms

        other ->
          raise ArgumentError,
                "Py.await/2 takes a timeout in milliseconds (a non-negative integer) or " <>
                  ":infinity, got: #{inspect(other)}"
      end

    case yield(task, timeout) do
      {:ok, result} ->
        result

      {:exit, reason} ->
        {:error, %Error{kind: :internal, message: "the call exited: #{inspect(reason)}"}}

      nil ->
        # Let the task go on alone: its late reply and exit are dropped (the
        # monitor is an alias, deactivated here), and its exit no longer
        # takes the caller down.
        Process.demonitor(task.ref, [:flush])
        Process.unlink(task.pid)

        {:error,
         %Error{
           kind: :timeout,
           message:
             "the async call did not finish within #{timeout} ms; it goes on in the " <>
               "background, under its own :timeout, and its result is dropped " <>
               "(pass a larger timeout to Py.await/2 to wait for it)"
         }}
    end
  end

  def await(other, _timeout) do
    raise ArgumentError,
          "Py.await/2 takes the Task that Py.async_call/4 returned, got: #{inspect(other)}"
  end

  # Task.yield/2 (a `receive ... after`) takes at most 2^32 - 1 ms: a longer
  # wait is made of several.
  @max_after 4_294_967_295
  defp yield(task, ms) when is_integer(ms) and ms > @max_after do
    deadline = System.monotonic_time(:millisecond) + ms

    case Task.yield(task, @max_after) do
      nil -> yield(task, max(deadline - System.monotonic_time(:millisecond), 0))
      result -> result
    end
  end

  defp yield(task, timeout), do: Task.yield(task, timeout)

  @doc """
  Fire and forget: runs `call/4` in the background and returns `:ok` at
  once. A failure is logged as a warning (nobody awaits it).
  """
  @spec cast(name | Py.Object.t(), name | nil, list, keyword) :: :ok
  def cast(module, function, args \\ [], opts \\ []) do
    check_call_options!(opts)
    inherited = Py.Callbacks.inheritance()

    spawn(fn ->
      Py.Callbacks.inherit(inherited)

      case call(module, function, args, opts) do
        {:ok, _} ->
          :ok

        {:error, error} ->
          Logger.warning(
            "Py.cast #{inspect(module)}.#{function} failed: " <> Exception.message(error)
          )
      end
    end)

    :ok
  end

  @doc """
  Makes an Elixir function callable from Python.

  In Python, `from erlang import name`, `erlang.name(...)` and
  `erlang.call("name", ...)` all call it, with arguments and result
  converted as everywhere else. The function runs in a process of its own
  (with the caller's group leader and bindings; the callbacks one call makes
  one after another share that process, and it ends with the call), so it
  may call Python again,
  even on the same context, nested about 1,600 levels deep (490 on Python 3.12;
  see `docs/callbacks.md`):

      Py.register_function(:double, fn x -> 2 * x end)
      {:ok, 42} = Py.eval("__import__('erlang').double(21)")

  A function of arity 1 called with several arguments receives them as a
  list. An exception, throw or exit in it becomes `erlang.Error` in Python.
  See `docs/callbacks.md`.
  """
  @spec register_function(name, function) :: :ok
  def register_function(name, fun) do
    callback_name!(name, "register_function/2")

    unless is_function(fun) do
      raise ArgumentError,
            "Py.register_function/2 takes a function (fn ... end or &Mod.fun/arity) as " <>
              "its second argument, got: #{inspect(fun)}; for a module and function name " <>
              "use Py.register_function/3"
    end

    Py.Callbacks.register(name, fun)
  end

  @doc "Like `register_function/2`, calling `module.function(args...)`."
  @spec register_function(name, module, atom) :: :ok
  def register_function(name, module, function) do
    callback_name!(name, "register_function/3")

    unless is_atom(module) and module not in [nil, true, false] and is_atom(function) and
             function not in [nil, true, false] do
      raise ArgumentError,
            "Py.register_function/3 takes a module and a function name, both atoms " <>
              "(Py.register_function(:upcase, String, :upcase)), got: " <>
              "#{inspect(module)}, #{inspect(function)}"
    end

    Py.Callbacks.register(name, {module, function})
  end

  # The name Python calls a function by: an atom (not nil, true or false,
  # which read as None/True/False) or a string.
  defp callback_name!(name, _function) when is_binary(name), do: name

  defp callback_name!(name, _function) when is_atom(name) and name not in [nil, true, false],
    do: name

  defp callback_name!(name, function) do
    raise ArgumentError,
          "Py.#{function} takes the name Python calls the function by, an atom or a " <>
            "string (not nil, true or false), got: #{inspect(name)}"
  end

  @doc "Removes a function registered with `register_function/2`."
  @spec unregister_function(name) :: :ok
  def unregister_function(name) when is_atom(name) or is_binary(name),
    do: Py.Callbacks.unregister(name)

  def unregister_function(name) do
    raise ArgumentError,
          "Py.unregister_function/1 takes the name (an atom or string) a function was " <>
            "registered under, got: #{inspect(name)}"
  end

  @doc """
  Binds the calling process to a context.

  With no argument (or `nil`), binds to a pool context with a fresh,
  private namespace (what the first call does implicitly). With a
  `Py.Context` (pid or name), later calls from this process without a
  `:context` option run on that context, in its globals.

  A binding by name follows the context across restarts: when the named
  context has stopped and its supervisor has started it again under the
  same name, the next call runs on the new one (with fresh globals). A
  binding by pid ends with that process (calls return `:closed` errors).

  The binding replaces the default pool only: a `:pool` option or a
  `Py.Router` route still sends a call to that pool, and in the parallel
  pool a request on a `%Py.Object{}` runs on the object's own interpreter
  (see `Py.Object`).

      {:ok, _} = Py.Context.start_link(name: MyApp.Python)
      :ok = Py.bind(MyApp.Python)
      :ok = Py.exec("shared = 1")   # in MyApp.Python's globals
  """
  @spec bind(Context.t() | nil) :: :ok | {:error, Error.t()}
  def bind(context \\ nil)

  def bind(nil) do
    Py.Dispatch.drop_binding(:default)

    with {:ok, _} <- Py.Dispatch.current_binding(:default), do: :ok
  end

  def bind(context) do
    with {:ok, handle} <- Context.handle(Py.Options.context!(context)) do
      # A name is kept, so that the binding follows a restart of the context.
      kind = if is_pid(context), do: :explicit, else: {:explicit, context}
      Py.Dispatch.put_binding(:default, {handle, nil, kind})
      :ok
    end
  end

  @doc """
  Drops the calling process's bindings: the one of `bind/1` or of the
  default pool, and those of named pools (with their namespaces). The next
  call binds again, with a fresh namespace.
  """
  @spec unbind() :: :ok
  def unbind, do: Py.Dispatch.drop_bindings()

  @doc """
  Adds import paths, code and imports that every interpreter gets: the main
  one now, each parallel-pool slot (those made later too) before its next
  call, and the processes of isolated contexts. Preloads add up, in order.

    * `:paths` - directories put first on `sys.path`
    * `:code` - Python source run in `__main__`'s namespace (its functions
      are then callable as `Py.call(:__main__, name, args)`)
    * `:imports` - modules to import

  Returns `:ok`, or the error the main interpreter raised (the preload is
  then not kept). The same at start-up: `config :py, preload: [imports:
  ["numpy"]]`.

      :ok = Py.preload(code: "def shout(s):\n    return s.upper()", imports: ["json"])
      {:ok, "HI"} = Py.call(:__main__, :shout, ["hi"])
  """
  @spec preload(keyword) :: :ok | {:error, Error.t()}
  def preload(opts), do: Py.Preload.add(opts)

  @doc """
  Interrupts what `context` runs now; see `Py.Context.interrupt/1`. The
  interrupted call gets `{:error, %Py.Error{kind: :interrupted}}` and the
  context goes on.
  """
  @spec interrupt(Context.t()) :: :ok | :idle | {:error, Error.t()}
  def interrupt(context), do: Context.interrupt(context)

  # ------------------------------------------------------------ environments

  @doc """
  Activates the virtual environment at `path`: its packages import, in every
  interpreter (the main one and each parallel-pool slot, including slots
  made later). `Py.info/0` shows it under `:venv`.

      :ok = Py.activate_venv("/srv/app/.venv")
      {:ok, _} = Py.call(:requests, :get, ["https://example.com"])

  The interpreter stays the one py was built for, so the venv must be for
  the same Python major.minor. Its site-packages (and what their `.pth`
  files add) go on `sys.path` ahead of the site-packages already there, and
  `sys.prefix` and `VIRTUAL_ENV` point at it. Activating another venv
  replaces the active one. A directory that is not a venv, or a venv of
  another Python, gives an `:environment` error saying what to do.

  To activate one at start-up: `config :py, venv: "/srv/app/.venv"`.
  See `docs/environments.md`.
  """
  @spec activate_venv(Path.t()) :: :ok | {:error, Error.t()}
  def activate_venv(path), do: Py.Venv.activate(path)

  @doc """
  Deactivates the active virtual environment: its entries leave `sys.path`
  and `sys.prefix` and `VIRTUAL_ENV` are restored, in every interpreter.
  Modules already imported from it stay loaded (Python cannot unload them);
  new imports no longer find it.
  """
  @spec deactivate_venv() :: :ok | {:error, Error.t()}
  def deactivate_venv, do: Py.Venv.deactivate()

  @doc """
  Installs Python packages from PyPI into a cached virtual environment and
  activates it, like `Mix.install/2` for Elixir (for notebooks, scripts and
  apps alike):

      {:ok, _venv} = Py.install(["six==1.*", "python-dateutil>=2.8"])
      Py.eval("__import__('dateutil').__version__")

  `requirements` is a list of pip requirement strings, or the text of a
  `pyproject.toml` with a `[project]` table (its `dependencies` are
  installed; a `requires-python` the running Python does not satisfy is an
  `:environment` error naming both, before anything is installed):

      Py.install(\"\"\"
      [project]
      name = "notebook"
      version = "0.1.0"
      dependencies = ["six==1.*"]
      \"\"\")

  The venv lives in `<cache>/venvs/<hash>`, the hash taken over the
  requirements and the running Python, so a second call with the same
  requirements reuses it at once, without running an installer (offline
  too). It is made from the base interpreter of the Python py runs, with
  [uv](https://docs.astral.sh/uv/) when `uv` is on PATH (fast) and with
  `python -m venv` and pip otherwise. The installer's output is streamed to
  the caller's group leader (the IEx shell, the Livebook cell). Returns
  `{:ok, venv_path}`; if the installer fails, an `:environment` error
  carries its own message, and nothing is left in the cache.

  Options:

    * `:cache_dir` - where venvs go. Default: the `PY_CACHE_DIR`
      environment variable, else `config :py, cache_dir:`, else
      `:filename.basedir(:user_cache, "py")`
    * `:installer` - `:auto` (default; `config :py, installer:`), `:uv` or
      `:pip`
    * `:force` - `true` to make the venv again even if it is cached
    * `:progress` - `false` to print nothing
    * `:activate` - `false` to only make the venv (activate it later with
      `activate_venv/1`)
  """
  @spec install([String.t()] | String.t(), keyword) :: result(Path.t())
  def install(requirements, opts \\ []), do: Py.Install.install(requirements, opts)

  @doc "Like `install/2` but returns the venv path or raises `Py.Error`."
  def install!(requirements, opts \\ []), do: bang(install(requirements, opts))

  # ------------------------------------------------------------ internals

  defp ret(opts) do
    case Keyword.get(Py.Options.keyword!(opts), :return, :auto) do
      :auto ->
        :auto

      :object ->
        :object

      :array ->
        :array

      other ->
        raise ArgumentError,
              "the :return option must be :auto, :object or :array, got: #{inspect(other)}"
    end
  end

  # The options of a call run in another process (async_call/4, cast/4):
  # checked here, in the caller, so that a bad one raises here rather than
  # crashing that process (and, linked, the caller).
  defp check_call_options!(opts) do
    opts = Py.Options.keyword!(opts)
    _ = Py.Options.timeout!(opts)
    _ = ret(opts)

    case Keyword.fetch(opts, :context) do
      {:ok, context} -> Py.Options.context!(context)
      :error -> :ok
    end

    case Keyword.get(opts, :kwargs, []) do
      kwargs when is_list(kwargs) or is_map(kwargs) ->
        :ok

      other ->
        raise ArgumentError,
              "the :kwargs option must be a keyword list or a map, got: #{inspect(other)}"
    end

    :ok
  end

  defp bang({:ok, value}), do: value
  defp bang({:error, error}), do: raise(error)

  # `exception: true`: a Python error keeps the exception object.
  defp run(request, opts) do
    case Keyword.get(Py.Options.keyword!(opts), :exception, false) do
      true ->
        Py.Dispatch.run({:keep_exception, request}, opts)

      false ->
        Py.Dispatch.run(request, opts)

      other ->
        raise ArgumentError, "the :exception option must be a boolean, got: #{inspect(other)}"
    end
  end
end
