defmodule Mix.Tasks.Compile.PyNative do
  @moduledoc """
  Installs py's NIF for the configured Python in the application's
  `priv/native`: a precompiled one when py's checksum file lists one for
  this Python, variant and target, else a cargo build of `native/py_nif`.

  Which Python, in order:

    1. the `PY_PYTHON` environment variable
    2. `config :py, python: "/path/to/python3"`
    3. `python3` on `PATH`

  A virtual environment's interpreter works (its site-packages are then
  importable); its path is kept as given, not resolved through symlinks.
  The Python must be 3.10 or newer and built with a shared libpython.

  The parallel pool (OWN_GIL sub-interpreters, Python 3.13+) is built in
  with `PY_PARALLEL=1` or `config :py, parallel: true`.

  Precompiled NIFs (see docs/packaging.md): downloaded from
  `config :py, precompiled_base_url:` into a user cache dir (`PY_CACHE_DIR`),
  checked against `checksum-py.exs`. `PY_BUILD=1` or
  `config :py, force_build: true` builds from source instead. A source
  build uses `CARGO_TARGET_DIR` when set.

  Nothing is done when nothing it depends on changed: the crate's sources,
  `Cargo.toml`, `Cargo.lock`, `build.rs`, the Python (path, version,
  libpython), the cargo features (`PY_NATIVE_FEATURES`, comma separated, or
  `config :py, native_features: [...]`) and the chosen artifact.

  Add it in front of the default compilers:

      compilers: [:py_native | Mix.compilers()]
  """

  use Mix.Task.Compiler

  @recursive true
  # Bump when the build steps change, to force a rebuild.
  @build_version 2
  @root Path.expand("../..", __DIR__)
  @installed ~w(libpy_nif.so py_nif.stamp py_build_info.etf)

  @impl true
  def run(_args) do
    info = PyBuild.Python.query!(PyBuild.Python.find!())
    features = PyBuild.Python.features!(info)
    dest = Path.join(Mix.Project.app_path(), "priv/native")
    so = Path.join(dest, "libpy_nif.so")
    stamp = Path.join(dest, "py_nif.stamp")

    plan =
      PyBuild.Precompiled.plan(info, features,
        version: Mix.Project.config()[:version],
        root: @root
      )

    fingerprint = fingerprint(info, features, plan)

    if File.exists?(so) and File.read(stamp) == {:ok, fingerprint} do
      {:noop, []}
    else
      # A failed install leaves no stamp, so the next compile tries again.
      File.rm(stamp)
      nif = install!(plan, info, features, dest, so)
      build_info = Map.merge(info, %{features: features, nif: nif})
      File.write!(Path.join(dest, "py_build_info.etf"), :erlang.term_to_binary(build_info))
      File.write!(stamp, fingerprint)
      {:ok, []}
    end
  end

  @impl true
  def manifests, do: [Path.join(Mix.Project.app_path(), "priv/native/py_nif.stamp")]

  @impl true
  def clean do
    dest = Path.join(Mix.Project.app_path(), "priv/native")
    Enum.each(@installed, &File.rm(Path.join(dest, &1)))
    remove_libpython_links(dest)
    :ok
  end

  defp install!({:precompiled, artifact}, info, _features, dest, _so) do
    Mix.shell().info("==> py: installing the precompiled NIF #{artifact.name}")
    PyBuild.Precompiled.install!(artifact, info, dest)
    {:precompiled, artifact.name}
  end

  defp install!({:build, reason}, info, features, dest, so) do
    Mix.shell().info(
      "==> py: building the NIF from source for Python #{info.version} (#{info.python}): " <>
        reason
    )

    target_dir =
      System.get_env("CARGO_TARGET_DIR") ||
        Path.join(Mix.Project.build_path(), "py_native/target")

    artifact = PyBuild.Cargo.build!(info, features, target_dir: target_dir)
    File.mkdir_p!(dest)
    # A running VM may have the old library mapped: replace, never overwrite.
    File.rm(so)
    File.cp!(artifact, so)
    # Links a precompiled install made; this build has an rpath instead.
    remove_libpython_links(dest)
    :source
  end

  defp remove_libpython_links(dest) do
    for link <- Path.wildcard(Path.join(dest, "libpython*.so*")), do: File.rm(link)
  end

  defp fingerprint(info, features, plan) do
    crate = PyBuild.Cargo.crate()

    sources =
      Path.wildcard(Path.join(crate, "src/**/*"))
      |> Enum.concat(Enum.map(~w(Cargo.toml Cargo.lock build.rs), &Path.join(crate, &1)))
      |> Enum.filter(&File.regular?/1)
      |> Enum.sort()

    choice =
      case plan do
        {:precompiled, artifact} -> {:precompiled, artifact.name, artifact.checksum}
        {:build, _reason} -> :source
      end

    hash =
      Enum.reduce(sources, :crypto.hash_init(:sha256), fn file, acc ->
        acc
        |> :crypto.hash_update(Path.relative_to(file, crate))
        |> :crypto.hash_update(File.read!(file))
      end)
      |> :crypto.hash_update(
        :erlang.term_to_binary(
          {@build_version, info.python, info.version, info.libpython, info.abiflags, features,
           choice}
        )
      )
      |> :crypto.hash_final()

    Base.encode16(hash, case: :lower)
  end
end
