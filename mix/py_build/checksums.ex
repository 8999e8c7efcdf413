defmodule PyBuild.Checksums do
  @moduledoc false
  # The checksum file: an Elixir map literal from tarball name to
  # "sha256:<hex>" of the tarball, at the root of the py package
  # (checksum-py.exs). It is parsed, never evaluated.

  @file_name "checksum-py.exs"

  @doc """
  Where the checksum file is read from: `PY_CHECKSUM_FILE`, else
  `config :py, precompiled_checksum_file:`, else `root`/checksum-py.exs.
  """
  def path(root) do
    System.get_env("PY_CHECKSUM_FILE") || Application.get_env(:py, :precompiled_checksum_file) ||
      Path.join(root, @file_name)
  end

  @doc "Reads and parses a checksum file: `{:ok, map}`, `:missing`, or `{:error, reason}`."
  def read(path) do
    case File.read(path) do
      {:ok, text} -> parse(text)
      {:error, :enoent} -> :missing
      {:error, reason} -> {:error, :file.format_error(reason) |> to_string()}
    end
  end

  @doc """
  Parses the text of a checksum file.

      iex> PyBuild.Checksums.parse(~s(%{"a.so.tar.gz" => "sha256:00ff"}))
      {:ok, %{"a.so.tar.gz" => "sha256:00ff"}}
  """
  def parse(text) do
    with {:ok, {:%{}, _, pairs}} <- Code.string_to_quoted(text),
         true <- Enum.all?(pairs, &valid_pair?/1) do
      {:ok, Map.new(pairs)}
    else
      {:error, {_meta, message, token}} when is_binary(message) ->
        {:error, "not valid Elixir: #{message}#{token}"}

      _ ->
        {:error, ~s(expected a map literal of "<tarball name>" => "sha256:<64 hex digits>")}
    end
  end

  defp valid_pair?({name, "sha256:" <> hex}) when is_binary(name),
    do: byte_size(hex) == 64 and hex =~ ~r/\A[0-9a-f]+\z/

  defp valid_pair?(_), do: false

  @doc "The checksum file's text for `map`, one artifact a line, sorted."
  def format(map) do
    lines = for {name, sum} <- Enum.sort(map), do: "  #{inspect(name)} => #{inspect(sum)},\n"
    "%{\n" <> Enum.join(lines) <> "}\n"
  end

  @doc ~S'"sha256:<hex>" of `data`.'
  def sha256(data), do: "sha256:" <> Base.encode16(:crypto.hash(:sha256, data), case: :lower)
end
