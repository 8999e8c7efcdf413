defmodule Py.LargeTermsTest do
  # A request, a callback's answer or a channel message too large to copy
  # within a scheduler's time slice is copied on a dirty scheduler instead
  # (native/py_nif/src/copy_cost.rs, Py.Native.Large). Not async: it
  # registers VM-wide functions.
  use ExUnit.Case, async: false

  @large Enum.to_list(1..100_000)

  setup do
    {:ok, ctx} = Py.Context.start_link()
    %{ctx: ctx}
  end

  describe "the scheduler-thread NIFs refuse what is large to copy" do
    setup do
      %{channel: Py.Channel.new()}
    end

    test "small terms of every kind are copied there", %{channel: ch} do
      small = [
        Enum.to_list(1..1_000),
        {:call, "builtins", "len", [[1, 2, 3]], [], :auto},
        Map.new(1..100, &{"key #{&1}", &1}),
        :binary.copy("x", 10_000_000),
        [1 | 2],
        List.to_tuple(Enum.to_list(1..1_000)),
        Enum.reduce(1..40, :leaf, &[&2, &1]),
        {self(), make_ref(), 1.5, -(2 ** 63), 2 ** 63 - 1}
      ]

      for term <- small do
        assert Py.Native.channel_send(ch.ref, term) == :ok, inspect(term, limit: 5)
      end
    end

    test "large terms of every kind are not", %{channel: ch} do
      large = [
        @large,
        {:call, "builtins", "len", [@large], [], :auto},
        Map.new(1..10_000, &{&1, &1}),
        List.to_tuple(@large),
        Enum.map(1..10_000, &"item #{&1}"),
        Enum.reduce(1..1_000, :leaf, &[&2, &1]),
        # Sizes the walk cannot see.
        [1, 2 ** 64],
        {:ok, fn -> :ok end}
      ]

      for term <- large do
        assert Py.Native.channel_send(ch.ref, term) == :large, inspect(term, limit: 5)
      end
    end

    test "a large request is not queued there, and its dirty twin queues it", %{ctx: ctx} do
      {:ok, {_pid, native}} = Py.Context.handle(ctx)
      request = {:call, "builtins", "len", [@large], [], :auto}
      tag = make_ref()
      gl = Process.group_leader()
      assert Py.Native.submit(native, nil, tag, gl, request, nil) == :large
      # Requests on a context run in order: had it been queued, its reply
      # would be in before this call's.
      assert Py.Context.eval(ctx, "1") == {:ok, 1}
      refute_received {^tag, _, _}
      assert {:ok, _job} = Py.Native.Large.submit(native, nil, tag, gl, request, nil)
      assert_receive {^tag, {:ok, 100_000}, 0}, 10_000
    end
  end

  describe "large terms cross" do
    test "as a call's argument", %{ctx: ctx} do
      assert Py.Context.call(ctx, :builtins, :sum, [@large]) == {:ok, 5_000_050_000}
    end

    test "as an eval's binding", %{ctx: ctx} do
      assert Py.Context.eval(ctx, "len(xs)", %{"xs" => @large}) == {:ok, 100_000}
    end

    test "as a method call's argument on a handle", %{ctx: ctx} do
      {:ok, seen} = Py.Context.eval(ctx, "set()", %{}, return: :object)
      assert Py.call(seen, :update, [@large]) == {:ok, nil}
      assert Py.Context.call(ctx, :builtins, :len, [seen]) == {:ok, 100_000}
    end

    test "as a callback's answer", %{ctx: ctx} do
      Py.register_function(:large_terms_answer, fn -> Enum.to_list(1..100_000) end)
      code = "import erlang\nlen(erlang.call('large_terms_answer'))"
      assert Py.Context.eval(ctx, code) == {:ok, 100_000}
    end

    test "as a callback's answer to a thread outside any call", %{ctx: ctx} do
      Py.register_function(:large_terms_thread_answer, fn -> Enum.to_list(1..100_000) end)
      go = Py.Channel.new()

      :ok =
        Py.Context.exec(ctx, """
        import erlang, threading

        def later(go, to):
            go.receive(timeout=30)
            erlang.send(to, ("answer", len(erlang.call("large_terms_thread_answer"))))

        def start(go, to):
            threading.Thread(target=later, args=(go, to)).start()
        """)

      assert Py.Context.call(ctx, :__main__, :start, [go, self()]) == {:ok, nil}
      :ok = Py.Channel.send(go, :go)
      assert_receive {"answer", 100_000}, 30_000
    end

    test "as a channel message", %{ctx: ctx} do
      ch = Py.Channel.new()
      :ok = Py.Channel.send(ch, @large)
      assert Py.Context.eval(ctx, "len(ch.receive())", %{"ch" => ch}) == {:ok, 100_000}
    end
  end
end
