defmodule PyBuild.Python do
  @moduledoc false
  # Which Python the NIF is for, what it is (version, ABI flags, libpython)
  # and which cargo features were asked for. Used by the NIF compiler and by
  # `mix py.precompile`; loaded from mix.exs like them.

  @query """
  import sys, sysconfig
  v = sys.version_info
  print("version=%d.%d.%d" % (v[0], v[1], v[2]))
  print("executable=" + sys.executable)
  print("prefix=" + sys.prefix)
  print("base_prefix=" + sys.base_prefix)
  for key in ("LIBDIR", "LDLIBRARY", "INSTSONAME", "Py_ENABLE_SHARED", "Py_GIL_DISABLED"):
      print(key + "=" + str(sysconfig.get_config_var(key)))
  print("abiflags=" + getattr(sys, "abiflags", ""))
  """

  @doc """
  The configured interpreter: `PY_PYTHON`, else `config :py, python:`, else
  `python3` on PATH.
  """
  def find! do
    configured = System.get_env("PY_PYTHON") || Application.get_env(:py, :python)

    cond do
      configured in [nil, ""] ->
        System.find_executable("python3") ||
          Mix.raise("""
          py needs Python 3.10 or newer, and no `python3` is on PATH. Install one \
          (for example `apt-get install python3 python3-dev`), or point py at an \
          interpreter with `config :py, python: "/path/to/python3"` or the PY_PYTHON \
          environment variable, then compile again.
          """)

      File.regular?(configured) ->
        Path.absname(configured)

      found = System.find_executable(configured) ->
        found

      true ->
        Mix.raise("""
        py is configured to use the Python at #{inspect(configured)} (from PY_PYTHON or \
        `config :py, python:`), but there is no such executable. Fix the path or unset it \
        to use `python3` from PATH.
        """)
    end
  end

  @doc "Asks `python` what it is; raises unless it is 3.10+ with a shared libpython."
  def query!(python) do
    case System.cmd(python, ["-c", @query], stderr_to_stdout: true) do
      {out, 0} ->
        info =
          for line <- String.split(out, "\n", trim: true),
              [key, value] <- [String.split(line, "=", parts: 2)],
              into: %{},
              do: {key, value}

        check!(python, info)

      {out, status} ->
        Mix.raise("py could not run #{python} (exit status #{status}): #{String.trim(out)}")
    end
  end

  defp check!(python, info) do
    version = Map.fetch!(info, "version")
    [major, minor, patch] = version |> String.split(".") |> Enum.map(&String.to_integer/1)

    if {major, minor} < {3, 10} do
      Mix.raise("""
      py needs Python 3.10 or newer, but #{python} is Python #{version}. Install a newer \
      Python and select it with `config :py, python:` or PY_PYTHON.
      """)
    end

    libpython = Path.join(info["LIBDIR"], info["LDLIBRARY"])

    if info["Py_ENABLE_SHARED"] != "1" or not String.ends_with?(libpython, ".so") or
         not File.exists?(libpython) do
      Mix.raise("""
      py embeds Python through its shared library, but #{python} (Python #{version}) was \
      built without one (no libpython#{major}.#{minor}.so; Py_ENABLE_SHARED is \
      #{info["Py_ENABLE_SHARED"]}). Use a Python built with --enable-shared: a distro \
      Python with `apt-get install libpython#{major}.#{minor}-dev`, or pyenv with \
      `PYTHON_CONFIGURE_OPTS=--enable-shared pyenv install #{version}`; then select it with \
      `config :py, python:` or PY_PYTHON.
      """)
    end

    %{
      python: python,
      version: version,
      version_tuple: {major, minor, patch},
      libpython: libpython,
      soname: soname(info, libpython),
      abiflags: info["abiflags"] || "",
      gil_disabled: info["Py_GIL_DISABLED"] == "1",
      prefix: info["prefix"],
      base_prefix: info["base_prefix"]
    }
  end

  # The name the NIF's DT_NEEDED entry uses (libpython3.X.so.1.0).
  defp soname(info, libpython) do
    case info["INSTSONAME"] do
      name when name in [nil, "", "None"] -> Path.basename(libpython)
      name -> name
    end
  end

  @doc """
  The cargo features: `PY_NATIVE_FEATURES` (comma separated) or
  `config :py, native_features:`, plus "parallel" for `PY_PARALLEL=1` or
  `config :py, parallel: true`. Sorted; raises for the parallel pool
  below Python 3.13.
  """
  def features!(info) do
    requested =
      case System.get_env("PY_NATIVE_FEATURES") do
        nil -> Application.get_env(:py, :native_features, [])
        text -> String.split(text, ",", trim: true)
      end
      |> Enum.map(&to_string/1)

    parallel? =
      System.get_env("PY_PARALLEL") in ["1", "true"] or
        Application.get_env(:py, :parallel, false) == true or "parallel" in requested

    if parallel? do
      check_parallel!(info)
    end

    Enum.sort(Enum.uniq(requested ++ if(parallel?, do: ["parallel"], else: [])))
  end

  @doc "Raises unless `info`'s Python can host the parallel pool (3.13+)."
  def check_parallel!(info) do
    if info.version_tuple < {3, 13, 0} do
      Mix.raise("""
      py's parallel pool (PY_PARALLEL=1 or `config :py, parallel: true`) needs Python 3.13 \
      or newer, and #{info.python} is Python #{info.version}. On 3.12, importing \
      single-phase extension modules such as _decimal or _datetime in two OWN_GIL \
      sub-interpreters aborts the whole process (CPython issue 117953, fixed in 3.13). \
      Select a Python 3.13+ with `config :py, python:` or PY_PYTHON, or build without \
      the parallel pool.
      """)
    end

    :ok
  end
end
