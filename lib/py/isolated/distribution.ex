defmodule Py.Isolated.Distribution do
  @moduledoc false
  # An isolated context's OS process is a second BEAM node that this one
  # reaches through Erlang distribution. A node that is not distributed yet
  # (a plain `mix phx.server`, `mix test`, a Livebook runtime) becomes one,
  # with a name of its own on loopback: epmd is started if none runs, and
  # both epmd and the distribution port listen on 127.0.0.1 only. A node
  # that is already distributed is used as it is.

  @doc "Makes this node distributed if it is not; `:ok` or `{:error, message}`."
  @spec ensure() :: :ok | {:error, String.t()}
  def ensure do
    if Node.alive?(), do: :ok, else: Py.Context.Registry.serialized(&start/0)
  end

  defp start do
    if Node.alive?() do
      :ok
    else
      :ok = :application.set_env(:kernel, :inet_dist_use_interface, {127, 0, 0, 1})
      name = :"py_#{System.pid()}@127.0.0.1"

      with :ok <- ensure_epmd(),
           {:ok, _} <- start_distribution(name, 50) do
        # A random cookie unless one was set: the children get it on their
        # command line, never from ~/.erlang.cookie.
        if Node.get_cookie() == :nocookie, do: Node.set_cookie(random_cookie())
        :ok
      else
        {:error, reason} ->
          {:error,
           "py could not make this node distributed for an isolated context " <>
             "(#{inspect(reason)}); start it with --name or --sname"}
      end
    end
  end

  # epmd comes up a moment after `epmd -daemon` returns: try again briefly.
  defp start_distribution(name, 0), do: Node.start(name, :longnames)

  defp start_distribution(name, tries) do
    case Node.start(name, :longnames) do
      {:ok, _} = ok ->
        ok

      {:error, _} ->
        Process.sleep(20)
        start_distribution(name, tries - 1)
    end
  end

  defp ensure_epmd do
    case :erl_epmd.names() do
      {:ok, _} ->
        :ok

      {:error, _} ->
        case epmd() do
          nil ->
            {:error, :no_epmd_executable}

          epmd ->
            {_, _} =
              System.cmd(epmd, ["-daemon"],
                env: [{"ERL_EPMD_ADDRESS", "127.0.0.1"}],
                stderr_to_stdout: true
              )

            :ok
        end
    end
  end

  defp epmd do
    erts = Path.join(:code.root_dir(), "erts-#{:erlang.system_info(:version)}/bin/epmd")
    if File.exists?(erts), do: erts, else: System.find_executable("epmd")
  end

  defp random_cookie do
    :crypto.strong_rand_bytes(24) |> Base.url_encode64(padding: false) |> String.to_atom()
  end
end
