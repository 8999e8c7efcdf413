defmodule PyBuild.Download do
  @moduledoc false
  # Fetches one URL into memory with OTP's :httpc (http and https, verified
  # against the OS's CA certificates; HTTP(S)_PROXY and NO_PROXY honoured), or reads a
  # file:// URL from disk.

  @doc "`{:ok, body}` or `{:error, reason}`."
  def get("file://" <> path) do
    case File.read(path) do
      {:ok, body} -> {:ok, body}
      {:error, reason} -> {:error, "cannot read #{path}: #{:file.format_error(reason)}"}
    end
  end

  def get(url) do
    https? = String.starts_with?(url, "https://")
    apps = if https?, do: [:inets, :ssl], else: [:inets]
    on_code_path([:inets, :ssl])

    case Enum.find(apps, &(not match?({:ok, _}, Application.ensure_all_started(&1)))) do
      nil ->
        request(url, https?)

      app ->
        {:error,
         "OTP's #{app} application cannot be started (on Debian: apt-get install erlang-#{app})"}
    end
  end

  # Since Elixir 1.15, Mix prunes the code path of a Mix task to the
  # applications the project declares, so OTP's :inets and :ssl (with
  # :public_key, which :httpc calls even for plain http on OTP 27+) are put
  # back on it first. Elixir 1.14 has no such pruning and no such function.
  # A missing application is reported when it fails to start.
  defp on_code_path(apps) do
    if function_exported?(Mix, :ensure_application!, 1) do
      for app <- apps do
        try do
          apply(Mix, :ensure_application!, [app])
        rescue
          _ -> :missing
        end
      end
    end
  end

  # A stand-alone :httpc profile per download: its proxy settings do not
  # outlive it, and no other :httpc user sees them.
  defp request(url, https?) do
    {:ok, httpc} = :inets.start(:httpc, [profile: :py_build], :stand_alone)
    # Stopping it must not take the caller down with it.
    Process.unlink(httpc)

    try do
      :ok = :httpc.set_options(proxy_options(), httpc)
      http_options = [timeout: 120_000, connect_timeout: 15_000, autoredirect: true]
      http_options = if https?, do: [ssl: ssl_options()] ++ http_options, else: http_options
      request = {String.to_charlist(url), []}

      case :httpc.request(:get, request, http_options, [body_format: :binary], httpc) do
        {:ok, {{_, 200, _}, _headers, body}} -> {:ok, body}
        {:ok, {{_, status, reason}, _headers, _body}} -> {:error, "HTTP #{status} #{reason}"}
        {:error, reason} -> {:error, describe(reason)}
      end
    after
      :inets.stop(:stand_alone, httpc)
    end
  end

  defp describe({:failed_connect, [{:to_address, {host, port}} | rest]}) do
    why = Enum.find_value(rest, "failed", fn {_, _, reason} -> inspect(reason) end)
    "cannot connect to #{host}:#{port} (#{why})"
  end

  defp describe(reason), do: inspect(reason)

  defp ssl_options do
    cacerts =
      try do
        :public_key.cacerts_get()
      rescue
        _ -> []
      end

    [
      verify: :verify_peer,
      cacerts: cacerts,
      depth: 4,
      customize_hostname_check: [
        match_fun: :public_key.pkix_verify_hostname_match_fun(:https)
      ]
    ]
  end

  defp proxy_options do
    for {key, names} <- [
          proxy: ~w(HTTP_PROXY http_proxy),
          https_proxy: ~w(HTTPS_PROXY https_proxy)
        ],
        url = Enum.find_value(names, &System.get_env/1),
        %URI{host: host, port: port} when is_binary(host) <- [URI.parse(url)],
        do: {key, {{String.to_charlist(host), port}, no_proxy()}}
  end

  # NO_PROXY's hosts, and always the loopback interface.
  defp no_proxy do
    listed = System.get_env("NO_PROXY") || System.get_env("no_proxy") || ""

    (["localhost", "127.0.0.1", "::1"] ++ String.split(listed, ",", trim: true))
    |> Enum.map(&(&1 |> String.trim() |> String.replace_prefix(".", "*.")))
    |> Enum.reject(&(&1 == ""))
    |> Enum.map(&String.to_charlist/1)
  end
end
