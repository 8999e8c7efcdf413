defmodule PyBuild.Target do
  @moduledoc false
  # The target triple and NIF version a precompiled artifact is named by,
  # as rustler_precompiled names them.

  # The NIF versions our artifacts are built for. The crate uses rustler's
  # default feature, nif_version_2_15, which every OTP >= 24 loads.
  @nif_versions ["2.15"]

  def nif_versions, do: @nif_versions

  @doc """
  This VM's target triple, normalised to Rust's spelling:

      iex> PyBuild.Target.normalize("x86_64-pc-linux-gnu")
      "x86_64-unknown-linux-gnu"
  """
  def triple, do: normalize(to_string(:erlang.system_info(:system_architecture)))

  @doc "Normalises an `:system_architecture` string to a Rust target triple."
  def normalize(arch_string) do
    case String.split(arch_string, "-") do
      [arch, _vendor, os | abi] -> join(arch, os, abi)
      [arch, os] -> join(arch, os, [])
      _ -> arch_string
    end
  end

  defp join(arch, os, abi) do
    {vendor, os} =
      cond do
        String.starts_with?(os, "darwin") -> {"apple", "darwin"}
        String.starts_with?(os, "freebsd") -> {"unknown", "freebsd"}
        true -> {"unknown", os}
      end

    Enum.join([arch(arch, os), vendor, os | abi], "-")
  end

  defp arch("amd64", _os), do: "x86_64"
  defp arch("arm64", _os), do: "aarch64"
  defp arch(arch, _os), do: arch

  @doc """
  The NIF version to use: the highest of `available` with the VM's major
  version and a minor version not above the VM's; nil when there is none.

      iex> PyBuild.Target.select_nif_version("2.16", ["2.15", "2.16", "2.17"])
      "2.16"
  """
  def select_nif_version(
        vm \\ to_string(:erlang.system_info(:nif_version)),
        available \\ @nif_versions
      ) do
    case parse_version(vm) do
      {major, minor} ->
        available
        |> Enum.map(&{parse_version(&1), &1})
        |> Enum.filter(fn
          {{^major, m}, _} -> m <= minor
          _ -> false
        end)
        |> Enum.max_by(fn {{_, m}, _} -> m end, fn -> {nil, nil} end)
        |> elem(1)

      nil ->
        nil
    end
  end

  defp parse_version(text) do
    with [major, minor] <- String.split(text, "."),
         {major, ""} <- Integer.parse(major),
         {minor, ""} <- Integer.parse(minor) do
      {major, minor}
    else
      _ -> nil
    end
  end
end
