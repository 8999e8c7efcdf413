defmodule Py.VMWideTest do
  # Not async: these tests observe or disturb state shared by the whole VM
  # (the atom table, the default pool).
  use ExUnit.Case, async: false

  test "Python data never creates atoms" do
    {:ok, _} = Py.eval("{'warm': 'up'}")
    before = :erlang.system_info(:atom_count)

    {:ok, map} =
      Py.eval("{('never_an_atom_%d' % i): {'nested_key_%d' % i: i} for i in range(2000)}")

    assert map_size(map) == 2000
    assert :erlang.system_info(:atom_count) == before
  end

  test "a process bound to a pool context that died is rebound on its next call" do
    :ok = Py.exec("before = 1")
    {{pid, _native}, _namespace, :pool} = Process.get(:"$py_binding")
    ref = Process.monitor(pid)
    Process.exit(pid, :kill)
    assert_receive {:DOWN, ^ref, _, _, _}
    # The request never started on the dead context, so it is retried on a
    # live one (with a fresh namespace).
    assert Py.eval("1 + 1") == {:ok, 2}
    assert {:error, %Py.Error{type: "NameError"}} = Py.eval("before")
  end
end
