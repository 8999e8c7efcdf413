defmodule Py.OTP do
  @moduledoc false
  # The running OTP release with its patch level, for settings that depend
  # on fixes in the VM.

  @doc """
  The running release as a list of integers, `[27, 3, 4, 1]` for OTP
  27.3.4.1, read from its `OTP_VERSION` file; `[major]` when that file
  cannot be read (an embedded release may not ship it).
  """
  def version do
    major = List.to_string(:erlang.system_info(:otp_release))
    path = Path.join([:code.root_dir(), "releases", major, "OTP_VERSION"])

    case File.read(path) do
      {:ok, text} -> parse(text, major)
      {:error, _} -> [String.to_integer(major)]
    end
  end

  @doc "Whether the running release is `wanted` (a list such as `[27, 3]`) or newer."
  def at_least?(wanted), do: version() >= wanted

  @doc false
  # "27.3.4.1\n" -> [27, 3, 4, 1]; parts after the first that is not a
  # number are dropped ("26.2.5-rc1" -> [26, 2]).
  def parse(text, major) do
    parts =
      text
      |> String.trim()
      |> String.split(".")
      |> Enum.reduce_while([], fn part, acc ->
        case Integer.parse(part) do
          {n, ""} -> {:cont, [n | acc]}
          _ -> {:halt, acc}
        end
      end)
      |> Enum.reverse()

    if parts == [], do: [String.to_integer(major)], else: parts
  end
end
