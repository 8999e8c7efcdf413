defmodule Py.Install do
  @moduledoc false
  # Py.install/2: Python dependencies from Elixir, Livebook style.
  #
  # A venv per (requirements, Python) in a cache directory, made from the
  # BASE interpreter of the running Python (not from the venv py may have
  # been built against), filled from PyPI with uv when it is on PATH and
  # with `python -m venv` + pip otherwise, then activated (Py.Venv). A
  # finished venv has a marker file; a later call with the same
  # requirements finds it and runs no installer (so it also works offline).
  # The installer is an external process (System.cmd): nothing blocks a
  # scheduler, and its output is streamed to the caller's group leader.

  alias Py.Error
  alias Py.Install.Output

  @marker "py-install.done"
  @key_version "py-install-v1"

  @deps_from_pyproject """
  import sys
  try:
      import tomllib
  except ImportError:
      from pip._vendor import tomli as tomllib
  with open(sys.argv[1], "rb") as f:
      project = tomllib.load(f).get("project", {})
  for dep in project.get("dependencies", []):
      print(dep)
  """

  @doc "See `Py.install/2`."
  def install(requirements, opts) do
    spec = spec!(requirements)
    opts = options!(opts)

    with :ok <- check_requires_python(spec),
         {:ok, python} <- base_python() do
      dir = Path.join([opts.cache_dir, "venvs", key(spec, python)])
      output = Output.new(if opts.progress, do: :stdio)
      lock = {{__MODULE__, dir}, self()}

      with {:ok, _how} <-
             :global.trans(lock, fn -> ensure(dir, spec, python, opts, output) end, [node()]),
           :ok <- if(opts.activate, do: Py.Venv.activate(dir), else: :ok) do
        {:ok, dir}
      end
    end
  end

  @doc "The cache directory: option, PY_CACHE_DIR, config, then the user cache."
  def cache_dir(opts \\ []) do
    Keyword.get(opts, :cache_dir) || non_empty(System.get_env("PY_CACHE_DIR")) ||
      Application.get_env(:py, :cache_dir) || :filename.basedir(:user_cache, "py")
  end

  # ------------------------------------------------------------ arguments

  defp spec!(requirements) when is_list(requirements) do
    requirements =
      Enum.map(requirements, fn
        req when is_binary(req) ->
          String.trim(req)

        other ->
          raise ArgumentError,
                "Py.install/2 takes a list of requirement strings (\"numpy==2.*\") or a " <>
                  "pyproject.toml text; got #{inspect(other)} in the list"
      end)

    {:requirements, requirements |> Enum.reject(&(&1 == "")) |> Enum.sort() |> Enum.uniq()}
  end

  defp spec!(text) when is_binary(text) do
    unless text =~ ~r/^\s*\[project\]/m do
      raise ArgumentError,
            "Py.install/2 reads a string as pyproject.toml text, and this one has no " <>
              "[project] table (with `dependencies = [...]`); pass a list of requirement " <>
              "strings instead"
    end

    {:pyproject, text}
  end

  defp spec!(other) do
    raise ArgumentError,
          "Py.install/2 takes a list of requirement strings or a pyproject.toml text, " <>
            "got: #{inspect(other)}"
  end

  defp options!(opts) do
    opts = Py.Options.keyword!(opts)
    known = [:cache_dir, :installer, :force, :progress, :activate]

    case Keyword.keys(opts) -- known do
      [] -> :ok
      unknown -> raise ArgumentError, "unknown Py.install/2 options: #{inspect(unknown)}"
    end

    installer = Keyword.get(opts, :installer, Application.get_env(:py, :installer, :auto))

    unless installer in [:auto, :uv, :pip] do
      raise ArgumentError,
            "the :installer option must be :auto, :uv or :pip, got: #{inspect(installer)}"
    end

    cache_dir = cache_dir(opts)

    unless is_binary(cache_dir) and cache_dir != "" do
      raise ArgumentError,
            "the :cache_dir option of Py.install/2 (or config :py, cache_dir:) must be a " <>
              "directory path as a non-empty string, got: #{inspect(cache_dir)}"
    end

    %{
      cache_dir: Path.expand(cache_dir),
      installer: installer,
      force: Keyword.get(opts, :force, false) == true,
      progress: Keyword.get(opts, :progress, true) != false,
      activate: Keyword.get(opts, :activate, true) != false
    }
  end

  defp non_empty(value) when value in [nil, ""], do: nil
  defp non_empty(value), do: value

  # The venv's directory name: a hash of what it holds and which Python.
  defp key(spec, python) do
    content =
      case spec do
        {:requirements, reqs} -> ["requirements" | reqs]
        {:pyproject, text} -> ["pyproject", text]
      end

    [@key_version, python_version(), python | content]
    |> Enum.join(<<0>>)
    |> then(&:crypto.hash(:sha256, &1))
    |> Base.encode16(case: :lower)
    |> binary_part(0, 32)
  end

  # A pyproject's requires-python, against the running Python: before
  # anything is made or installed.
  defp check_requires_python({:pyproject, text}) do
    case Py.Install.RequiresPython.check(text, python_version()) do
      :ok -> :ok
      {:error, message} -> {:error, error(message)}
    end
  end

  defp check_requires_python(_spec), do: :ok

  # ------------------------------------------------------------ installing

  defp ensure(dir, spec, python, opts, output) do
    if not opts.force and File.regular?(Path.join(dir, @marker)) and
         File.regular?(Path.join(dir, "pyvenv.cfg")) do
      say(output, "==> py: using the cached Python environment #{dir}")
      {:ok, :cached}
    else
      File.rm_rf!(dir)
      File.mkdir_p!(Path.dirname(dir))

      with {:ok, installer} <- installer(opts.installer),
           :ok <- say(output, "==> py: making #{dir} with #{installer_name(installer)}"),
           :ok <- make_venv(installer, python, dir, output),
           {:ok, deps} <- dependencies(spec, dir),
           :ok <- install_deps(installer, dir, deps, output) do
        File.write!(Path.join(dir, @marker), marker(spec))
        {:ok, :installed}
      else
        {:error, _} = error ->
          File.rm_rf(dir)
          error
      end
    end
  end

  defp installer(:pip), do: {:ok, :pip}

  defp installer(:auto) do
    case System.find_executable("uv") do
      nil -> {:ok, :pip}
      uv -> {:ok, {:uv, uv}}
    end
  end

  defp installer(:uv) do
    case System.find_executable("uv") do
      nil ->
        {:error,
         error(
           "installer: :uv was asked for, but `uv` is not on PATH; install it " <>
             "(https://docs.astral.sh/uv/) or use installer: :pip"
         )}

      uv ->
        {:ok, {:uv, uv}}
    end
  end

  defp installer_name(:pip), do: "python -m venv and pip"
  defp installer_name({:uv, _}), do: "uv"

  defp make_venv({:uv, uv}, python, dir, output),
    do: run(uv, ["venv", "--python", python, dir], output, "uv venv")

  defp make_venv(:pip, python, dir, output),
    do: run(python, ["-m", "venv", dir], output, "python -m venv")

  defp install_deps(_installer, _dir, [], _output), do: :ok

  defp install_deps(installer, dir, deps, output) do
    file = Path.join(dir, "py-requirements.txt")
    File.write!(file, Enum.join(deps, "\n") <> "\n")
    say(output, "==> py: installing #{Enum.join(deps, ", ")}")

    case installer do
      {:uv, uv} ->
        run(
          uv,
          ["pip", "install", "--python", venv_python(dir), "-r", file],
          output,
          "uv pip install"
        )

      :pip ->
        args = ["-m", "pip", "install", "--no-input", "--progress-bar", "off", "-r", file]
        run(venv_python(dir), args, output, "pip install")
    end
  end

  defp dependencies({:requirements, reqs}, _dir), do: {:ok, reqs}

  defp dependencies({:pyproject, text}, dir) do
    file = Path.join(dir, "pyproject.toml")
    File.write!(file, text)

    case System.cmd(venv_python(dir), ["-c", @deps_from_pyproject, file],
           stderr_to_stdout: true,
           env: env()
         ) do
      {out, 0} ->
        {:ok, out |> String.split("\n") |> Enum.map(&String.trim/1) |> Enum.reject(&(&1 == ""))}

      {out, _} ->
        last = out |> String.trim() |> String.split("\n") |> List.last()
        {:error, error("cannot read the dependencies of the pyproject text: #{last}")}
    end
  end

  defp venv_python(dir), do: Path.join([dir, "bin", "python"])

  defp run(command, args, output, what) do
    case System.cmd(command, args, into: output, stderr_to_stdout: true, env: env()) do
      {_, 0} ->
        :ok

      {output, status} ->
        {:error, error("#{what} failed (exit status #{status}):\n" <> Output.tail(output))}
    end
  rescue
    e in ErlangError ->
      {:error, error("cannot run #{command}: #{Exception.message(e)}")}
  end

  # The installer works on the venv it is given, whatever venv py has
  # activated (which set VIRTUAL_ENV in this OS process).
  defp env do
    [
      {"VIRTUAL_ENV", nil},
      {"PIP_DISABLE_PIP_VERSION_CHECK", "1"},
      {"PIP_REQUIRE_VIRTUALENV", nil}
    ]
  end

  defp marker(spec) do
    unique = :erlang.unique_integer([:positive])
    "installed #{DateTime.utc_now() |> DateTime.to_iso8601()} (#{unique})\n#{inspect(spec)}\n"
  end

  defp say(%Output{device: nil}, _line), do: :ok
  defp say(%Output{device: device}, line), do: IO.puts(device, line)

  # ------------------------------------------------------------ the Python

  defp python_version, do: (Py.Runtime.info() || %{})[:python_version] || "?"

  # The base interpreter of the running Python: a venv must be made from
  # it, even when py was built against a venv's python.
  @base_key {__MODULE__, :base_python}
  @doc false
  def base_python do
    case :persistent_term.get(@base_key, nil) do
      nil ->
        with {:ok, python} <- query_base_python() do
          :persistent_term.put(@base_key, python)
          {:ok, python}
        end

      python ->
        {:ok, python}
    end
  end

  defp query_base_python do
    executable = (Py.Runtime.info() || %{})[:executable]
    # In a venv, sys._base_executable is the base interpreter from 3.11 on;
    # 3.10 reports the venv's own there, so look in sys.base_prefix first.
    code = """
    import os, sys
    base = os.path.join(sys.base_prefix, "bin", "python%d.%d" % sys.version_info[:2])
    if sys.prefix == sys.base_prefix or not os.path.isfile(base):
        base = getattr(sys, "_base_executable", None) or sys.executable
    print(base)
    """

    with true <- is_binary(executable) || {:error, error("the Python runtime is not started")},
         {out, 0} <- System.cmd(executable, ["-c", code], stderr_to_stdout: true, env: env()),
         python = String.trim(out),
         true <- File.regular?(python) || {:error, error("no base Python at #{python}")} do
      {:ok, python}
    else
      {:error, _} = error ->
        error

      {out, status} ->
        {:error, error("cannot ask #{executable} for its base Python (exit #{status}): #{out}")}
    end
  end

  defp error(message), do: %Error{kind: :environment, message: message}
end
