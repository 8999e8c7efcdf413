defmodule Py.LeftoversTest do
  # A job's arguments and result are freed after its reply is sent (see
  # interp/leftovers.rs). Not async: one test registers a VM-wide function.
  use ExUnit.Case, async: false

  setup do
    {:ok, ctx} = Py.Context.start_link()

    :ok =
      Py.Context.exec(ctx, """
      import erlang, weakref

      class Told(list):
          # Converts as a list. Freeing it waits for a go-ahead that the
          # test sends only once it has the reply, then says so.
          def __del__(self):
              try:
                  self.go.receive(timeout=10)
                  erlang.send(self.to, "freed after the reply")
              except TimeoutError:
                  erlang.send(self.to, "freed before the reply")

      def told(go, to, n):
          out = Told(range(n))
          out.go, out.to = go, to
          return out

      class Plain(list):
          pass

      refs = []

      def plain(n):
          out = Plain(range(n))
          refs.append(weakref.ref(out))
          return out
      """)

    %{ctx: ctx}
  end

  test "a call's result is freed after its reply", %{ctx: ctx} do
    go = Py.Channel.new()
    assert Py.Context.call(ctx, :__main__, :told, [go, self(), 3]) == {:ok, [0, 1, 2]}
    refute_received "freed before the reply"
    :ok = Py.Channel.send(go, :go)
    assert_receive "freed after the reply", 10_000
  end

  test "an eval's result is freed after its reply", %{ctx: ctx} do
    go = Py.Channel.new()
    bindings = %{"go" => go, "to" => self()}
    assert Py.Context.eval(ctx, "told(go, to, 2)", bindings) == {:ok, [0, 1]}
    refute_received "freed before the reply"
    :ok = Py.Channel.send(go, :go)
    assert_receive "freed after the reply", 10_000
  end

  test "what a call kept is freed before the next call on its context runs", %{ctx: ctx} do
    assert Py.Context.call(ctx, :__main__, :plain, [100_000]) == {:ok, Enum.to_list(0..99_999)}
    assert Py.Context.eval(ctx, "refs[-1]() is None") == {:ok, true}
  end

  test "a nested call frees its own result, not its outer call's", %{ctx: ctx} do
    Py.register_function(:leftovers_nested, fn n ->
      Py.Context.call(ctx, :__main__, :plain, [n])
    end)

    :ok =
      Py.Context.exec(ctx, """
      def outer():
          kept = plain(3)
          status, inner = erlang.call("leftovers_nested", 2)
          return [list(inner), refs[-1]() is None, refs[-2]() is kept]
      """)

    assert Py.Context.call(ctx, :__main__, :outer, []) == {:ok, [[0, 1], true, true]}
  end
end
