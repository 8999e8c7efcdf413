defmodule Mix.Tasks.Compile.PyNative do
  @moduledoc """
  Builds py's NIF (`native/py_nif`, Rust) with cargo for the configured
  Python and installs it in the application's `priv/native`.

  Which Python, in order:

    1. the `PY_PYTHON` environment variable
    2. `config :py, python: "/path/to/python3"`
    3. `python3` on `PATH`

  A virtual environment's interpreter works (its site-packages are then
  importable); its path is kept as given, not resolved through symlinks.
  The Python must be 3.10 or newer and built with a shared libpython.

  The parallel pool (OWN_GIL sub-interpreters, Python 3.13+) is built in
  with `PY_PARALLEL=1` or `config :py, parallel: true`.

  The build is skipped when nothing it depends on changed: the crate's
  sources, `Cargo.toml`, `Cargo.lock`, `build.rs`, the Python (path,
  version, libpython) and the cargo features (`PY_NATIVE_FEATURES`, comma
  separated, or `config :py, native_features: [...]`).

  Add it in front of the default compilers:

      compilers: [:py_native | Mix.compilers()]
  """

  use Mix.Task.Compiler

  @recursive true
  # Bump when the build steps change, to force a rebuild.
  @build_version 1
  @crate Path.expand("../../native/py_nif", __DIR__)
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

  @impl true
  def run(_args) do
    python = find_python!()
    info = query_python!(python)
    features = features(info)
    dest = Path.join(Mix.Project.app_path(), "priv/native")
    so = Path.join(dest, "libpy_nif.so")
    stamp = Path.join(dest, "py_nif.stamp")
    fingerprint = fingerprint(python, info, features)

    if File.exists?(so) and File.read(stamp) == {:ok, fingerprint} do
      {:noop, []}
    else
      build!(python, info, features, dest, so)
      File.write!(stamp, fingerprint)
      {:ok, []}
    end
  end

  @impl true
  def manifests, do: [Path.join(Mix.Project.app_path(), "priv/native/py_nif.stamp")]

  @impl true
  def clean do
    dest = Path.join(Mix.Project.app_path(), "priv/native")

    for file <- ~w(libpy_nif.so py_nif.stamp py_build_info.etf),
        do: File.rm(Path.join(dest, file))

    :ok
  end

  # ---------------------------------------------------------------- Python

  defp find_python! do
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

  defp query_python!(python) do
    case System.cmd(python, ["-c", @query], stderr_to_stdout: true) do
      {out, 0} ->
        info =
          for line <- String.split(out, "\n", trim: true),
              [key, value] <- [String.split(line, "=", parts: 2)],
              into: %{},
              do: {key, value}

        check_python!(python, info)

      {out, status} ->
        Mix.raise("py could not run #{python} (exit status #{status}): #{String.trim(out)}")
    end
  end

  defp check_python!(python, info) do
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
      abiflags: info["abiflags"] || "",
      gil_disabled: info["Py_GIL_DISABLED"] == "1",
      prefix: info["prefix"],
      base_prefix: info["base_prefix"]
    }
  end

  defp features(info) do
    requested =
      case System.get_env("PY_NATIVE_FEATURES") do
        nil -> Application.get_env(:py, :native_features, [])
        text -> String.split(text, ",", trim: true)
      end
      |> Enum.map(&to_string/1)

    parallel? =
      System.get_env("PY_PARALLEL") in ["1", "true"] or
        Application.get_env(:py, :parallel, false) == true or "parallel" in requested

    if parallel? and info.version_tuple < {3, 13, 0} do
      Mix.raise("""
      py's parallel pool (PY_PARALLEL=1 or `config :py, parallel: true`) needs Python 3.13 \
      or newer, and #{info.python} is Python #{info.version}. On 3.12, importing \
      single-phase extension modules such as _decimal or _datetime in two OWN_GIL \
      sub-interpreters aborts the whole process (CPython issue 117953, fixed in 3.13). \
      Select a Python 3.13+ with `config :py, python:` or PY_PYTHON, or build without \
      the parallel pool.
      """)
    end

    Enum.sort(Enum.uniq(requested ++ if(parallel?, do: ["parallel"], else: [])))
  end

  # ---------------------------------------------------------------- build

  defp fingerprint(python, info, features) do
    sources =
      Path.wildcard(Path.join(@crate, "src/**/*"))
      |> Enum.concat(Enum.map(~w(Cargo.toml Cargo.lock build.rs), &Path.join(@crate, &1)))
      |> Enum.filter(&File.regular?/1)
      |> Enum.sort()

    hash =
      Enum.reduce(sources, :crypto.hash_init(:sha256), fn file, acc ->
        acc
        |> :crypto.hash_update(Path.relative_to(file, @crate))
        |> :crypto.hash_update(File.read!(file))
      end)
      |> :crypto.hash_update(
        :erlang.term_to_binary(
          {@build_version, python, info.version, info.libpython, info.abiflags, features}
        )
      )
      |> :crypto.hash_final()

    Base.encode16(hash, case: :lower)
  end

  defp build!(python, info, features, dest, so) do
    cargo =
      System.find_executable("cargo") ||
        Mix.raise("""
        py builds its native code with Rust, and `cargo` is not on PATH. Install Rust \
        (https://rustup.rs, or `apt-get install cargo`), make sure `cargo` is on PATH, \
        and compile again.
        """)

    Mix.shell().info("==> py: building the NIF for Python #{info.version} (#{python})")
    target_dir = Path.join(Mix.Project.build_path(), "py_native/target")

    args =
      [
        "rustc",
        "--release",
        "--message-format=json-render-diagnostics",
        "--manifest-path",
        Path.join(@crate, "Cargo.toml"),
        "--target-dir",
        target_dir
      ] ++ if(features == [], do: [], else: ["--features", Enum.join(features, ",")])

    {out, status} =
      System.cmd(cargo, args,
        env: [{"PYO3_PYTHON", python}],
        into: "",
        stderr_to_stdout: false
      )

    if status != 0 do
      Mix.raise("py: cargo failed (exit status #{status}); see the messages above")
    end

    artifact =
      out
      |> String.split("\n")
      |> Enum.filter(&(&1 =~ ~s("reason":"compiler-artifact") and &1 =~ ~s("name":"py_nif")))
      |> Enum.flat_map(&Regex.scan(~r/"([^"]+\.so)"/, &1, capture: :all_but_first))
      |> List.flatten()
      |> List.last() ||
        Mix.raise("py: cargo finished but reported no libpy_nif.so artifact")

    File.mkdir_p!(dest)
    # A running VM may have the old library mapped: replace, never overwrite.
    File.rm(so)
    File.cp!(artifact, so)

    build_info = Map.put(info, :features, features)
    File.write!(Path.join(dest, "py_build_info.etf"), :erlang.term_to_binary(build_info))
  end
end
