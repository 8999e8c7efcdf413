defmodule Py.InterruptTest do
  # Py.interrupt/1: what a context runs now gets :interrupted, the context
  # goes on.
  use ExUnit.Case, async: true

  # Tells the test it runs, then loops (or waits on a channel) for ever.
  @busy "__import__('erlang').send(me, 'running') or sum(1 for _ in iter(int, 1))"
  @waiting "__import__('erlang').send(me, 'running') or ch.receive()"

  for isolation <- [:none, :os_process] do
    @tag isolation: isolation
    test "a running call gets :interrupted and the context goes on (isolation #{isolation})",
         %{isolation: isolation} do
      ctx = start_supervised!({Py.Context, isolation: isolation})
      assert Py.interrupt(ctx) == :idle
      :ok = Py.Context.exec(ctx, "kept = 'yes'")

      # Channels stay in this VM: the wait on one is tried in-process only.
      codes = if isolation == :none, do: [@busy, @waiting], else: [@busy]

      for code <- codes do
        bindings = %{"me" => self()}

        bindings =
          if code == @waiting, do: Map.put(bindings, "ch", Py.Channel.new()), else: bindings

        task = Task.async(fn -> Py.Context.eval(ctx, code, bindings) end)
        assert_receive "running", 10_000
        assert Py.interrupt(ctx) == :ok

        assert {:error, %Py.Error{kind: :interrupted, type: "erlang.Interrupted"}} =
                 Task.await(task, 10_000)
      end

      assert Py.Context.eval(ctx, "kept") == {:ok, "yes"}
    end
  end

  test "Python code may catch the interrupt" do
    ctx = start_supervised!(Py.Context)

    :ok =
      Py.Context.exec(ctx, """
      import erlang
      def spin(me):
          try:
              erlang.send(me, 'running')
              while True:
                  pass
          except erlang.Interrupted:
              return 'caught'
      """)

    bindings = %{"me" => self()}
    task = Task.async(fn -> Py.Context.eval(ctx, "spin(me)", bindings) end)
    assert_receive "running", 10_000
    assert Py.interrupt(ctx) == :ok
    assert Task.await(task, 10_000) == {:ok, "caught"}
  end
end
