defmodule Py.RemoteGroupLeaderTest do
  # Calls from a process whose group leader lives on another node: an
  # `iex --remsh` session, `:rpc.call`, `Node.spawn`. Not async: it makes
  # this VM a distributed node for a while.
  use ExUnit.Case, async: false

  setup do
    {_, 0} = System.cmd("epmd", ["-daemon"])
    started? = Node.alive?()

    unless started? do
      {:ok, _} = Node.start(:"py_test_#{System.unique_integer([:positive])}@127.0.0.1")
    end

    {:ok, peer, node} =
      :peer.start(%{
        name: :"py_peer_#{System.unique_integer([:positive])}",
        host: ~c"127.0.0.1",
        longnames: true,
        connection: :standard_io
      })

    on_exit(fn ->
      :peer.stop(peer)
      unless started?, do: Node.stop()
    end)

    %{node: node}
  end

  test "a call whose group leader is on another node works, and its output goes there",
       %{node: node} do
    remote = :erpc.call(node, :erlang, :whereis, [:standard_error])
    assert node(remote) == node
    own = Process.group_leader()
    Process.group_leader(self(), remote)

    try do
      assert Py.exec("print('from Python, to the other node')") == :ok
      assert Py.eval("1 + 1") == {:ok, 2}
    after
      Process.group_leader(self(), own)
    end
  end
end
