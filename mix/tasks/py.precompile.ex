defmodule Mix.Tasks.Py.Precompile do
  @shortdoc "Builds py's precompiled NIF tarballs and the checksum file"
  @moduledoc """
  Builds a precompiled NIF for every variant of every given Python, packs
  each into a tarball named by the contract in docs/packaging.md, and
  writes the checksum file.

      mix py.precompile
      mix py.precompile --python /opt/py3.13/bin/python3 --variant parallel

  Options:

    * `--python PATH` - a Python to build for (repeatable). Default:
      `python3` and `python3.10` to `python3.15` on PATH, and every pyenv
      3.10-3.15 (under `$PYENV_ROOT` or `~/.pyenv`), each with a shared
      libpython; one build per Python X.Y + ABI flags.
    * `--variant default|parallel` - the variants to build (repeatable).
      Default: both, `parallel` only for Python 3.13+.
    * `--out DIR` - where the tarballs go (default `_build/precompiled`).
    * `--checksum-file PATH` - the checksum file to write (default
      `checksum-py.exs` in the project root). It lists every tarball of
      this version in `--out`, so tarballs built on other machines can be
      copied there first.
    * `--target-dir DIR` - cargo's target directory (default `<out>/target`).
    * `--checksums-only` - build nothing; write the checksum file for the
      tarballs already in `--out` (the last step of a release, after the
      tarballs of every target were collected there).
    * `--list` - build nothing; print the tarballs the other options would
      build, one per line, each with its Python.

  Needs cargo, and Linux: the artifacts find libpython through an `$ORIGIN`
  rpath and a link the installer makes, so they work with the same Python
  X.Y wherever it is installed.
  """

  use Mix.Task

  alias PyBuild.{Artifact, Cargo, Checksums, Python, Target}

  @switches [
    python: :keep,
    variant: :keep,
    out: :string,
    checksum_file: :string,
    target_dir: :string,
    checksums_only: :boolean,
    list: :boolean
  ]

  @impl true
  def run(args) do
    {opts, rest, invalid} = OptionParser.parse(args, strict: @switches)

    if rest != [] or invalid != [] do
      Mix.raise(
        "mix py.precompile: unexpected arguments #{inspect(rest ++ Enum.map(invalid, &elem(&1, 0)))}; " <>
          "see `mix help py.precompile`"
      )
    end

    if opts[:list] do
      list(opts)
    else
      precompile(opts)
    end
  end

  defp list(opts) do
    plan = plan!(opts)
    Enum.each(plan, fn {info, _features, name} -> Mix.shell().info("#{name} #{info.python}") end)
    Enum.map(plan, fn {_info, _features, name} -> name end)
  end

  defp precompile(opts) do
    root = Path.expand("../..", __DIR__)
    version = Mix.Project.config()[:version]
    out = Path.expand(opts[:out] || Path.join(root, "_build/precompiled"))
    target_dir = Path.expand(opts[:target_dir] || Path.join(out, "target"))
    checksum_file = Path.expand(opts[:checksum_file] || Path.join(root, "checksum-py.exs"))
    File.mkdir_p!(out)
    built = if opts[:checksums_only], do: [], else: build_all!(opts, out, target_dir)

    sums =
      for path <- Path.wildcard(Path.join(out, "libpy_nif-v#{version}-*.so.tar.gz")),
          into: %{},
          do: {Path.basename(path), Checksums.sha256(File.read!(path))}

    if sums == %{} do
      Mix.raise("mix py.precompile: there are no tarballs of version #{version} in #{out}")
    end

    File.write!(checksum_file, Checksums.format(sums))

    Mix.shell().info(
      "==> py.precompile: #{length(built)} built, #{map_size(sums)} listed in #{checksum_file}"
    )

    {built, checksum_file}
  end

  defp build_all!(opts, out, target_dir) do
    if :os.type() != {:unix, :linux} do
      Mix.raise(
        "mix py.precompile builds Linux artifacts only (they find libpython through an " <>
          "$ORIGIN rpath); on #{inspect(:os.type())} use source builds"
      )
    end

    built =
      for {info, features, name} <- plan!(opts) do
        Mix.shell().info("==> py.precompile: #{name} (#{info.python})")
        so = Cargo.build!(info, features, target_dir: target_dir, rpath: :origin)
        pack!(so, Path.join(out, name))
        name
      end

    if built == [] do
      Mix.raise("mix py.precompile: nothing to build (no Python 3.10+ with a shared libpython)")
    end

    built
  end

  # {python info, cargo features, tarball name} for each tarball to build.
  defp plan!(opts) do
    variants = variants!(Keyword.get_values(opts, :variant))
    version = Mix.Project.config()[:version]
    nif = List.last(Target.nif_versions())
    triple = Target.triple()

    for info <- pythons(Keyword.get_values(opts, :python)),
        features <- features_for(info, variants) do
      {:ok, name} =
        Artifact.for_build(info, features, version: version, nif_version: nif, triple: triple)

      {info, features, name}
    end
  end

  defp variants!([]), do: [:default, :parallel]

  defp variants!(names) do
    Enum.map(names, fn
      "default" ->
        :default

      "parallel" ->
        :parallel

      other ->
        Mix.raise("mix py.precompile: unknown --variant #{inspect(other)} (default or parallel)")
    end)
  end

  defp features_for(info, variants) do
    for variant <- Enum.uniq(variants),
        variant == :default or info.version_tuple >= {3, 13, 0},
        do: if(variant == :parallel, do: ["parallel"], else: [])
  end

  # The given Pythons, or python3, python3.X and pyenv's 3.X (X from 10 to
  # 15), one per X.Y + ABI flags.
  defp pythons([]) do
    pyenv = System.get_env("PYENV_ROOT") || Path.expand("~/.pyenv")

    candidates =
      [System.find_executable("python3")] ++
        for(
          minor <- 10..15,
          path = System.find_executable("python3.#{minor}"),
          # pyenv's shims name every version it has, runnable or not; its
          # versions are looked at below.
          not String.contains?(path, "/shims/"),
          do: path
        ) ++
        for minor <- 10..15,
            dir <- Path.wildcard(Path.join(pyenv, "versions/3.#{minor}.*")),
            Path.wildcard(Path.join(dir, "lib/libpython3.#{minor}*.so*")) != [],
            do: Path.join(dir, "bin/python3")

    candidates
    |> Enum.filter(&(&1 && File.regular?(&1)))
    |> Enum.flat_map(fn python ->
      try do
        [Python.query!(python)]
      rescue
        error in Mix.Error ->
          Mix.shell().info("==> py.precompile: skipping #{python}: #{Exception.message(error)}")
          []
      end
    end)
    |> Enum.uniq_by(&variant_key/1)
  end

  defp pythons(paths) do
    paths |> Enum.map(&Python.query!(Path.expand(&1))) |> Enum.uniq_by(&variant_key/1)
  end

  defp variant_key(info) do
    {:ok, variant} = Artifact.variant(info.version, info.abiflags, [])
    variant
  end

  defp pack!(so, tarball) do
    stem = Artifact.so_name(Path.basename(tarball))
    File.rm(tarball)

    case :erl_tar.create(
           String.to_charlist(tarball),
           [{String.to_charlist(stem), String.to_charlist(so)}],
           [:compressed]
         ) do
      :ok ->
        :ok

      {:error, reason} ->
        Mix.raise("mix py.precompile: cannot write #{tarball}: #{inspect(reason)}")
    end
  end
end
