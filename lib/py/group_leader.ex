defmodule Py.GroupLeader do
  @moduledoc false
  # Where Python's output for a call goes: the caller's group leader. The
  # NIF can only send to local pids, so a group leader on another node (a
  # call from `iex --remsh`, `:rpc.call` or `Node.spawn`) gets a local
  # stand-in that forwards to it; the io server answers the caller directly.

  @key {__MODULE__, :proxy}

  @doc "The caller's group leader, or its local stand-in."
  @spec local() :: pid
  def local do
    group_leader = Process.group_leader()
    if node(group_leader) == node(), do: group_leader, else: proxy(group_leader)
  end

  defp proxy(group_leader) do
    case Process.get(@key) do
      {^group_leader, pid} -> if Process.alive?(pid), do: pid, else: start(group_leader)
      _ -> start(group_leader)
    end
  end

  # One stand-in per calling process and group leader; it ends with either.
  defp start(group_leader) do
    owner = self()

    pid =
      spawn(fn ->
        Process.monitor(owner)
        Process.monitor(group_leader)
        forward(group_leader)
      end)

    Process.put(@key, {group_leader, pid})
    pid
  end

  defp forward(group_leader) do
    receive do
      {:DOWN, _, _, _, _} ->
        :ok

      message ->
        send(group_leader, message)
        forward(group_leader)
    end
  end
end
