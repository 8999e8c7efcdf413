defmodule PyBuild.Download do
  @moduledoc false
  # Fetches one URL into memory with OTP's :httpc (http and https, verified
  # against the OS's CA certificates; HTTP(S)_PROXY honoured), or reads a
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

    case Enum.find(apps, &(not match?({:ok, _}, Application.ensure_all_started(&1)))) do
      nil ->
        request(url, https?)

      app ->
        {:error,
         "OTP's #{app} application cannot be started (on Debian: apt-get install erlang-#{app})"}
    end
  end

  defp request(url, https?) do
    set_proxy(https?)
    http_options = [timeout: 120_000, connect_timeout: 15_000, autoredirect: true]
    http_options = if https?, do: [ssl: ssl_options()] ++ http_options, else: http_options

    case :httpc.request(:get, {String.to_charlist(url), []}, http_options, body_format: :binary) do
      {:ok, {{_, 200, _}, _headers, body}} -> {:ok, body}
      {:ok, {{_, status, reason}, _headers, _body}} -> {:error, "HTTP #{status} #{reason}"}
      {:error, reason} -> {:error, describe(reason)}
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

  defp set_proxy(https?) do
    names = if https?, do: ~w(HTTPS_PROXY https_proxy), else: ~w(HTTP_PROXY http_proxy)

    with proxy when is_binary(proxy) <- Enum.find_value(names, &System.get_env/1),
         %URI{host: host, port: port} when is_binary(host) <- URI.parse(proxy) do
      key = if https?, do: :https_proxy, else: :proxy
      :httpc.set_options([{key, {{String.to_charlist(host), port}, []}}])
    end

    :ok
  end
end
