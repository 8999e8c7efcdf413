defmodule PyBuild.Artifact do
  @moduledoc false
  # The naming contract of a precompiled NIF (docs/packaging.md):
  #
  #   libpy_nif-v<version>-nif-<nif version>-<target triple>--<variant>.so.tar.gz
  #
  # where the variant is "py" <> Python X.Y <> ABI flags, plus "-parallel"
  # for the parallel-pool build. The tarball holds one file, the name
  # without ".tar.gz".

  @doc """
  The variant for a Python and feature set, or `{:error, reason}` when the
  features have no precompiled variant.

      iex> PyBuild.Artifact.variant("3.13.1", "t", ["parallel"])
      {:ok, "py3.13t-parallel"}
  """
  def variant(python_version, abiflags, features) do
    [major, minor | _] = String.split(python_version, ".")
    base = "py#{major}.#{minor}#{abiflags}"

    case features -- ["parallel"] do
      [] -> {:ok, if("parallel" in features, do: base <> "-parallel", else: base)}
      other -> {:error, "the cargo features #{Enum.join(other, ", ")} have no precompiled NIF"}
    end
  end

  @doc "The tarball's name."
  def name(version, nif_version, triple, variant) do
    "libpy_nif-v#{version}-nif-#{nif_version}-#{triple}--#{variant}.so.tar.gz"
  end

  @doc "The name of the one file inside the tarball."
  def so_name(tarball_name), do: String.replace_suffix(tarball_name, ".tar.gz", "")

  @doc """
  The tarball name for `info`'s Python and `features` on this VM, or
  `{:error, reason}`. Options: `:version` (required), `:nif_version` and
  `:triple` (default: this VM's).
  """
  def for_build(info, features, opts) do
    nif = Keyword.get_lazy(opts, :nif_version, &PyBuild.Target.select_nif_version/0)
    triple = Keyword.get_lazy(opts, :triple, &PyBuild.Target.triple/0)

    with {:ok, variant} <- variant(info.version, info.abiflags, features) do
      if nif do
        {:ok, name(Keyword.fetch!(opts, :version), nif, triple, variant)}
      else
        {:error,
         "this VM's NIF version #{:erlang.system_info(:nif_version)} has no precompiled NIF " <>
           "(they are built for #{Enum.join(PyBuild.Target.nif_versions(), ", ")})"}
      end
    end
  end
end
