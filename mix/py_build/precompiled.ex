defmodule PyBuild.Precompiled do
  @moduledoc false
  # Decides between a precompiled NIF and a source build, and installs a
  # precompiled one: cache or download, sha256 check, unpack, and into
  # priv/native with a link to the user's libpython (docs/packaging.md).

  alias PyBuild.{Artifact, Checksums, Download}

  @default_base_url "https://github.com/py-elixir/py/releases/download/v"

  @doc """
  `{:precompiled, artifact}` when the checksum file lists an artifact for
  this Python, variant, NIF version and target; `{:build, reason}` when a
  source build is asked for (PY_BUILD=1, `config :py, force_build: true`)
  or there is no such artifact. `artifact` is a map with `:name`,
  `:checksum`, `:url` and `:checksum_file`.

  Options: `:version` and `:root` (the py package) are required;
  `:nif_version` and `:triple` default to this VM's.
  """
  def plan(info, features, opts) do
    version = Keyword.fetch!(opts, :version)
    checksum_file = Checksums.path(Keyword.fetch!(opts, :root))

    with :ok <- check_force_build(),
         {:ok, name} <- Artifact.for_build(info, features, opts),
         {:ok, sums} <- read_checksums(checksum_file),
         {:ok, sum} <- lookup(sums, name, checksum_file) do
      {:precompiled,
       %{
         name: name,
         checksum: sum,
         url: base_url(version) <> "/" <> name,
         checksum_file: checksum_file
       }}
    else
      {:error, reason} -> {:build, reason}
    end
  end

  defp check_force_build do
    if System.get_env("PY_BUILD") in ["1", "true"] or
         Application.get_env(:py, :force_build, false) == true,
       do:
         {:error, "a source build was asked for (PY_BUILD=1 or `config :py, force_build: true`)"},
       else: :ok
  end

  defp read_checksums(path) do
    case Checksums.read(path) do
      {:ok, sums} ->
        {:ok, sums}

      :missing ->
        {:error, "there is no checksum file (#{path}), so no precompiled NIF is known"}

      {:error, reason} ->
        Mix.raise("""
        py's checksum file #{path} cannot be read: #{reason}. Restore it from the py \
        package, point PY_CHECKSUM_FILE (or `config :py, precompiled_checksum_file:`) at a \
        good one, or build from source with PY_BUILD=1.
        """)
    end
  end

  defp lookup(sums, name, path) do
    case Map.fetch(sums, name) do
      {:ok, sum} -> {:ok, sum}
      :error -> {:error, "#{path} lists no precompiled NIF named #{name}"}
    end
  end

  @doc "The base URL: `config :py, precompiled_base_url:` or the release's download URL."
  def base_url(version) do
    case Application.get_env(:py, :precompiled_base_url) do
      nil -> @default_base_url <> version
      url -> String.trim_trailing(to_string(url), "/")
    end
  end

  @doc """
  The download cache: `precompiled/` in py's cache directory
  (`PY_CACHE_DIR`, else `config :py, cache_dir:`, else
  `:filename.basedir(:user_cache, "py")`; `Py.install/2` keeps its venvs in
  the same directory).
  """
  def cache_dir do
    root =
      case System.get_env("PY_CACHE_DIR") do
        dir when dir in [nil, ""] ->
          Application.get_env(:py, :cache_dir) || :filename.basedir(:user_cache, "py")

        dir ->
          dir
      end

    Path.join(root, "precompiled")
  end

  @doc """
  The verified tarball of `artifact`, from the cache when a good copy is
  there (no network), else downloaded, verified and then cached. Raises
  when the download fails or its checksum is wrong; nothing is cached then.
  """
  def fetch!(artifact) do
    cached = Path.join(cache_dir(), artifact.name)

    case File.read(cached) do
      {:ok, data} ->
        if Checksums.sha256(data) == artifact.checksum,
          do: data,
          else: download!(artifact, cached)

      {:error, _} ->
        download!(artifact, cached)
    end
  end

  defp download!(artifact, cached) do
    Mix.shell().info("==> py: downloading #{artifact.url}")

    data =
      case Download.get(artifact.url) do
        {:ok, data} ->
          data

        {:error, reason} ->
          Mix.raise("""
          py could not download its precompiled NIF from #{artifact.url}: #{reason}. Check \
          the network, or the URL (`config :py, precompiled_base_url:`); for an offline \
          install put #{artifact.name} into #{cache_dir()} (under PY_CACHE_DIR); or build \
          from source with PY_BUILD=1 (needs cargo).
          """)
      end

    verify!(artifact, data)
    cache!(cached, data)
    data
  end

  # Written whole or not at all; a cache that cannot be written only costs
  # a download next time.
  defp cache!(cached, data) do
    partial = cached <> ".part-#{System.unique_integer([:positive])}"

    with :ok <- File.mkdir_p(Path.dirname(cached)),
         :ok <- File.write(partial, data),
         :ok <- File.rename(partial, cached) do
      :ok
    else
      {:error, reason} ->
        File.rm(partial)

        Mix.shell().error(
          "py: could not cache #{Path.basename(cached)} in #{Path.dirname(cached)} " <>
            "(#{:file.format_error(reason)}); set PY_CACHE_DIR to a writable directory"
        )
    end
  end

  defp verify!(artifact, data) do
    actual = Checksums.sha256(data)

    if actual != artifact.checksum do
      Mix.raise("""
      py refused the precompiled NIF from #{artifact.url}: its checksum is #{actual}, but \
      #{artifact.checksum_file} says #{artifact.checksum}. The file was changed or damaged \
      on the way; nothing was installed. Fix the download URL \
      (`config :py, precompiled_base_url:`) or build from source with PY_BUILD=1.
      """)
    end
  end

  @doc """
  The library inside a tarball: it must hold exactly one file, the
  artifact's `.so`. Raises for anything else.
  """
  def unpack!(artifact, data) do
    expected = Artifact.so_name(artifact.name)

    case :erl_tar.extract({:binary, data}, [:memory, :compressed]) do
      {:ok, [{name, so}]} when is_binary(so) ->
        if to_string(name) == expected, do: so, else: corrupt!(artifact, "it holds #{name}")

      {:ok, files} ->
        corrupt!(artifact, "it holds #{length(files)} files, not one #{expected}")

      {:error, reason} ->
        corrupt!(artifact, "it is not a gzipped tar (#{inspect(reason)})")
    end
  end

  defp corrupt!(artifact, why) do
    Mix.raise("""
    py's precompiled NIF #{artifact.name} is corrupt: #{why}. Nothing was installed. \
    Delete it from #{cache_dir()}, fix the release it came from, or build from source \
    with PY_BUILD=1.
    """)
  end

  @doc """
  Fetches, verifies and unpacks `artifact`, then installs the library as
  `dest`/libpy_nif.so with a link to `info`'s libpython beside it (the
  artifact's rpath is $ORIGIN). Nothing in `dest` changes before the
  artifact is verified.
  """
  def install!(artifact, info, dest) do
    so = unpack!(artifact, fetch!(artifact))
    File.mkdir_p!(dest)
    target = Path.join(dest, "libpy_nif.so")
    # A running VM may have the old library mapped: replace, never overwrite.
    File.rm(target)
    File.write!(target, so)
    link_libpython!(info, dest)
  end

  defp link_libpython!(info, dest) do
    # One link, for this Python (an earlier install may have been for another).
    for old <- Path.wildcard(Path.join(dest, "libpython*.so*")), do: File.rm(old)
    candidate = Path.join(Path.dirname(info.libpython), info.soname)
    target = if File.exists?(candidate), do: candidate, else: info.libpython
    File.ln_s!(target, Path.join(dest, info.soname))
  end
end
