defmodule Py.StreamTest do
  # Not async: one test waits for the VM-wide handle count to fall back.
  use ExUnit.Case, async: false

  test "a generator comes back as a lazy stream, fetched in chunks" do
    :ok = Py.exec("def squares(n):\n    for i in range(n):\n        yield i * i")
    stream = Py.stream_eval("squares(250)", %{}, chunk_size: 7)
    assert Enum.to_list(stream) == for(i <- 0..249, do: i * i)
  end

  test "any iterable streams: range, lists, dict keys" do
    assert Py.stream(:builtins, :range, [5]) |> Enum.to_list() == [0, 1, 2, 3, 4]
    assert Py.stream_eval("['a', 'b']") |> Enum.to_list() == ["a", "b"]
    assert Py.stream_eval("(n * n for n in range(4))") |> Enum.map(&(&1 + 1)) == [1, 2, 5, 10]
  end

  test "taking from an infinite generator returns and closes it (finally runs)" do
    code = """
    import itertools
    closed = False
    def forever():
        global closed
        try:
            for i in itertools.count():
                yield i
        finally:
            closed = True
    """

    :ok = Py.exec(code)
    assert Py.stream_eval("forever()", %{}, chunk_size: 3) |> Enum.take(10) == Enum.to_list(0..9)
    assert Py.eval("closed") == {:ok, true}
  end

  test "a stream abandoned by a killed process does not leak its generator" do
    {:ok, ctx} = Py.Context.start_link()

    :ok =
      Py.Context.exec(ctx, """
      import itertools
      finished = 0
      def watched():
          global finished
          try:
              yield from itertools.count()
          finally:
              finished += 1
      """)

    me = self()
    live_before = Py.Object.live_count()

    pid =
      spawn(fn ->
        Py.stream_eval("watched()", %{}, context: ctx, chunk_size: 1)
        |> Stream.each(fn i -> if i == 5, do: send(me, :midway) end)
        |> Stream.run()
      end)

    assert_receive :midway, 5_000
    Process.exit(pid, :kill)
    # Its iterator handle is released (on the context's thread), and with
    # it the generator, whose finally runs.
    assert Py.Object.await_live_count(live_before)
    assert Py.Context.eval(ctx, "finished") == {:ok, 1}
  end

  test "an error inside the generator raises Py.Error while enumerating" do
    :ok = Py.exec("def failing():\n    yield 1\n    raise ValueError('bad item')")

    assert_raise Py.Error, ~r/ValueError: bad item/, fn ->
      Py.stream_eval("failing()") |> Enum.to_list()
    end
  end

  test "streaming what is not iterable is a Python TypeError" do
    assert_raise Py.Error, ~r/TypeError: 'int' object is not iterable/, fn ->
      Py.stream_eval("42") |> Enum.to_list()
    end

    # A class with only __iter__ is iterable as in Python.
    :ok = Py.exec("class Three:\n    def __iter__(self):\n        return iter([1, 2, 3])")
    assert Py.stream_eval("Three()") |> Enum.to_list() == [1, 2, 3]
  end

  test "a bad chunk size is refused" do
    assert_raise ArgumentError, ~r/chunk_size/, fn -> Py.stream_eval("[]", %{}, chunk_size: 0) end
  end

  test "streaming 1,000,000 integers through Stream.run completes" do
    assert Py.stream(:builtins, :range, [1_000_000], chunk_size: 1000) |> Stream.run() == :ok
  end

  test ":kwargs reach the call that makes the iterable" do
    assert Py.stream(:builtins, :sorted, [[3, 1, 2]], kwargs: [reverse: true])
           |> Enum.to_list() == [3, 2, 1]
  end

  # The requests this process sends while `fun` runs (a tracer process
  # collects them).
  defp requests(fun) do
    me = self()
    tracer = spawn_link(fn -> collect(me, []) end)
    :erlang.trace_pattern({Py.Dispatch, :run, 2}, true, [:local])
    :erlang.trace(me, true, [:call, {:tracer, tracer}])

    try do
      fun.()
    after
      :erlang.trace(me, false, [:call])
      :erlang.trace_pattern({Py.Dispatch, :run, 2}, false, [:local])
    end

    ref = :erlang.trace_delivered(me)

    receive do
      {:trace_delivered, _, ^ref} -> :ok
    end

    send(tracer, {:report, me})

    receive do
      {:requests, kinds} -> kinds
    end
  end

  defp collect(me, acc) do
    receive do
      {:trace, _, :call, {Py.Dispatch, :run, [request, _]}} ->
        collect(me, [elem(request, 0) | acc])

      {:report, ^me} ->
        send(me, {:requests, Enum.reverse(acc)})
    end
  end

  test "a generator that ends within the first chunk costs one round trip" do
    assert requests(fn ->
             assert Py.stream_eval("(x * x for x in range(100))") |> Enum.to_list() ==
                      Enum.map(0..99, &(&1 * &1))
           end) == [:stream_start]

    # Exactly the chunk's size: its end is seen in the same round trip.
    assert requests(fn ->
             assert Py.stream(:builtins, :range, [10], chunk_size: 10) |> Enum.count() == 10
           end) == [:stream_start]
  end

  test "later chunks grow while the consumer takes" do
    kinds =
      requests(fn ->
        assert Py.stream(:builtins, :range, [1_000], chunk_size: 10) |> Enum.count() == 1_000
      end)

    # 11 + 21 + 41 + 81 + 161 + 161... items: far fewer than 100 chunks of 10.
    assert hd(kinds) == :stream_start
    assert length(kinds) < 12
  end
end
