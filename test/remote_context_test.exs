defmodule Py.RemoteContextTest do
  # Contexts on another node of the cluster (`node:` and pools over
  # `nodes:`), here a `:peer` node on loopback that runs py from this
  # build. Not async: the VM becomes a distributed node.
  use ExUnit.Case, async: false

  import ExUnit.CaptureIO
  import ExUnit.CaptureLog
  import Py.Test.Wait

  setup do
    :ok = Py.Context.ensure_distributed()
    %{node: start_peer()}
  end

  defp os_pid(ctx), do: Py.Context.eval!(ctx, "__import__('os').getpid()")

  test "a pool with a member here and one on another node", %{node: node} do
    name = :"remote_pool_#{System.unique_integer([:positive])}"
    start_supervised!({Py.Pool, name: name, size: 2, nodes: [node(), node]})
    [{local, _}, {remote, {:isolated, iso}}] = Py.Pool.handles(name)
    assert iso.node == node
    assert os_pid(local) == String.to_integer(System.pid())
    remote_pid = os_pid(remote)
    assert remote_pid == String.to_integer(:erpc.call(node, System, :pid, []))

    # Processes bound through the pool get namespaces of their own on
    # either member.
    results =
      1..8
      |> Enum.map(fn i ->
        Task.async(fn ->
          :ok = Py.exec("mine = #{i}", pool: name)

          {Py.eval("mine", %{}, pool: name),
           Py.eval("__import__('os').getpid()", %{}, pool: name)}
        end)
      end)
      |> Task.await_many(30_000)

    assert Enum.map(results, fn {value, _} -> value end) == Enum.map(1..8, &{:ok, &1})
    assert results |> Enum.map(fn {_, {:ok, pid}} -> pid end) |> Enum.uniq() |> length() == 2
  end

  test "print and callbacks from the remote side reach the caller", %{node: node} do
    {:ok, ctx} = Py.Context.start_link(node: node)
    Py.register_function(:remote_add, fn a, b -> a + b end)

    assert capture_io(fn ->
             assert Py.Context.exec(ctx, "print('printed on', __import__('os').getpid())") == :ok
           end) =~ "printed on"

    assert Py.Context.eval(ctx, "__import__('erlang').call('remote_add', 40, 2)") == {:ok, 42}
    {:ok, obj} = Py.Context.eval(ctx, "[1, 2, 3]", %{}, return: :object)
    assert Py.call_method(obj, :count, [2]) == {:ok, 1}
  after
    Py.unregister_function(:remote_add)
  end

  test "a pool over a :pg group places its context on a node of the group, and moves it when that node goes",
       %{node: node} do
    start_supervised!(%{id: :pg, start: {:pg, :start_link, []}})
    other = start_peer()
    group = :"py_workers_#{System.unique_integer([:positive])}"

    for peer <- [node, other] do
      {:ok, _} = :erpc.call(peer, :pg, :start, [:pg])
      :ok = :erpc.call(peer, :pg, :join, [group, :erpc.call(peer, :erlang, :whereis, [:init])])
    end

    wait_until(fn -> length(:pg.get_members(group)) == 2 end)
    name = :"pg_pool_#{System.unique_integer([:positive])}"
    start_supervised!({Py.Pool, name: name, size: 1, nodes: {:pg, group}})
    [first, second] = Enum.sort([node, other])
    pid_of = fn n -> String.to_integer(:erpc.call(n, System, :pid, [])) end
    first_pid = pid_of.(first)
    second_pid = pid_of.(second)
    assert Py.eval("__import__('os').getpid()", %{}, pool: name) == {:ok, first_pid}

    capture_log(fn ->
      {_, 0} = System.cmd("kill", ["-9", Integer.to_string(first_pid)])
      # It starts again on the node left (calls get :crashed or :closed meanwhile).
      wait_until(fn ->
        Py.eval("__import__('os').getpid()", %{}, pool: name) == {:ok, second_pid}
      end)
    end)
  end

  defp start_peer do
    paths = Enum.flat_map(:code.get_path(), &[~c"-pa", &1])

    {:ok, peer, node} =
      :peer.start(%{
        name: :"py_remote_#{System.unique_integer([:positive])}",
        host: ~c"127.0.0.1",
        longnames: true,
        args: paths
      })

    on_exit(fn ->
      try do
        :peer.stop(peer)
      catch
        _, _ -> :ok
      end
    end)

    node
  end

  test "killing the remote node gives :crashed to the waiting caller and :closed after, no hang",
       %{node: node} do
    {:ok, ctx} = Py.Context.start_link(node: node)
    assert Py.Context.eval(ctx, "1 + 1") == {:ok, 2}
    os_pid = :erpc.call(node, System, :pid, [])
    test = self()

    Py.register_function(:remote_started, fn -> send(test, :running) end)

    caller =
      Task.async(fn ->
        Py.Context.exec(
          ctx,
          "__import__('erlang').call('remote_started')\n__import__('time').sleep(60)"
        )
      end)

    # Kill the node while the call runs there.
    assert_receive :running, 10_000

    capture_log(fn ->
      {_, 0} = System.cmd("kill", ["-9", os_pid])
      assert {:error, %Py.Error{kind: :crashed, message: message}} = Task.await(caller, 30_000)
      assert message =~ "went down"
      assert {:error, %Py.Error{kind: kind}} = Py.Context.eval(ctx, "1 + 1")
      assert kind in [:closed, :crashed]
    end)

    assert Py.eval("1 + 1") == {:ok, 2}
  after
    Py.unregister_function(:remote_started)
  end
end
