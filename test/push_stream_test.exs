defmodule Py.PushStreamTest do
  # Py.stream_to/5: a generator's items pushed as messages, with credit.
  use ExUnit.Case, async: true

  setup do
    :ok =
      Py.exec("""
      import erlang
      def numbers(n, me=None):
          try:
              for i in range(n):
                  yield i
          finally:
              if me is not None:
                  erlang.send(me, 'closed')

      async def anumbers(n):
          for i in range(n):
              yield i * 10

      def failing():
          yield 1
          raise ValueError('bad item')
      """)

    :ok
  end

  # Acknowledges each item as it takes it, as a receiver that keeps up.
  defp collect(stream, acc) do
    ref = stream.ref

    receive do
      {^ref, :item, item} ->
        Py.PushStream.ack(stream)
        collect(stream, [item | acc])

      {^ref, :done} ->
        {:done, Enum.reverse(acc)}

      {^ref, :error, error} ->
        {:error, Enum.reverse(acc), error}
    after
      10_000 -> flunk("the stream stalled after #{inspect(Enum.reverse(acc))}")
    end
  end

  test "a generator's items arrive in order, then :done; async generators too" do
    {:ok, stream} = Py.stream_to(self(), :__main__, :numbers, [250])
    assert collect(stream, []) == {:done, Enum.to_list(0..249)}
    {:ok, stream} = Py.stream_to(self(), :__main__, :anumbers, [3])
    assert collect(stream, []) == {:done, [0, 10, 20]}
  end

  test "no more than the credit is sent before the receiver acknowledges" do
    {:ok, stream} = Py.stream_to(self(), :__main__, :numbers, [10], credit: 3)
    ref = stream.ref

    for i <- 0..2, do: assert_receive({^ref, :item, ^i}, 5_000)
    # The pump waits: three sent, no credit left.
    assert Py.PushStream.info(stream) == %{sent: 3, credit: 0}
    :ok = Py.PushStream.ack(stream, 3)
    for i <- 3..5, do: assert_receive({^ref, :item, ^i}, 5_000)
    assert Py.PushStream.info(stream) == %{sent: 6, credit: 0}
    :ok = Py.PushStream.ack(stream, 10)
    assert collect(stream, []) == {:done, [6, 7, 8, 9]}
  end

  test "an exception ends the stream with an error message" do
    {:ok, stream} = Py.stream_to(self(), :__main__, :failing, [])

    # (Items fetched in the same chunk as the exception are not sent.)
    assert {:error, _items, %Py.Error{type: "ValueError", message: "bad item"}} =
             collect(stream, [])
  end

  test "cancel and the receiver's exit close the generator" do
    me = self()
    {:ok, stream} = Py.stream_to(self(), :__main__, :numbers, [1_000, me], credit: 1)
    ref = stream.ref
    assert_receive {^ref, :item, 0}, 5_000
    :ok = Py.PushStream.cancel(stream)
    assert_receive "closed", 5_000
    refute_received {^ref, _, _}

    receiver = spawn(fn -> receive do: (:never -> :ok) end)
    {:ok, stream} = Py.stream_to(receiver, :__main__, :numbers, [1_000, me], credit: 1)
    monitor = Process.monitor(stream.pid)
    Process.exit(receiver, :kill)
    assert_receive "closed", 5_000
    assert_receive {:DOWN, ^monitor, _, _, _}, 5_000
  end

  test "bad options raise ArgumentError" do
    assert_raise ArgumentError, ~r/credit/, fn ->
      Py.stream_to(self(), :builtins, :range, [1], credit: Process.get(:none, 0))
    end
  end
end
