defmodule Py.RegisteredNamesTest do
  # erlang.whereis and erlang.send to a registered name, in-process and in
  # an isolated context (where the names are this VM's). Not async: it
  # registers names.
  use ExUnit.Case, async: false

  setup do
    name = :"py_registered_#{System.unique_integer([:positive])}"
    Process.register(self(), name)
    on_exit(fn -> :ok end)
    %{name: Atom.to_string(name)}
  end

  for where <- [:in_process, :isolated] do
    @tag where: where
    test "erlang.whereis finds a registered process, erlang.send reaches it (#{where})",
         %{name: name} = tags do
      opts = context_opts(tags.where)
      me = self()

      assert Py.eval("__import__('erlang').whereis(n)", %{"n" => name}, opts) == {:ok, me}

      assert Py.eval("__import__('erlang').whereis('py_no_such_name_registered')", %{}, opts) ==
               {:ok, nil}

      assert Py.eval("__import__('erlang').send(n, ('by name', 1))", %{"n" => name}, opts) ==
               {:ok, nil}

      assert_receive {"by name", 1}

      assert {:error, %Py.Error{kind: :python, message: message}} =
               Py.eval("__import__('erlang').send('py_no_such_name_registered', 1)", %{}, opts)

      assert message =~ "no process is registered"
    end
  end

  defp context_opts(:in_process), do: []

  defp context_opts(:isolated) do
    ctx = start_supervised!({Py.Context, isolation: :os_process}, id: :isolated)
    [context: ctx]
  end
end
