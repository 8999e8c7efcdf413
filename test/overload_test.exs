defmodule Py.OverloadTest do
  # `max_queue:` on a pool: past it, a call is answered :overloaded at once.
  # Not async: a context's load is its thread's, which in the parallel pool
  # other tests' contexts on the same slot share.
  use ExUnit.Case, async: false
  import Py.Test.Wait

  # A call that holds its context (its thread blocked in a channel's
  # receive) until the test sends on the channel.
  @hold "__import__('erlang').send(me, 'holding') or ch.receive()"

  defp load(pool) do
    [{_pid, ref}] = Py.Pool.handles(pool)
    Py.Native.context_load(ref)
  end

  test "past max_queue calls waiting, a call returns :overloaded at once; the others run" do
    name = :"overload_#{System.unique_integer([:positive])}"
    start_supervised!({Py.Pool, name: name, size: 1, max_queue: 2})
    channel = Py.Channel.new()
    bindings = %{"me" => self(), "ch" => channel}
    holder = Task.async(fn -> Py.eval(@hold, bindings, pool: name) end)
    assert_receive "holding", 5_000

    waiting =
      for i <- 1..2 do
        Task.async(fn -> Py.eval("#{i} * 10", %{}, pool: name) end)
      end

    wait_until(fn -> load(name) >= 3 end)

    assert {:error, %Py.Error{kind: :overloaded, message: message}} =
             Py.eval("1 + 1", %{}, pool: name)

    assert message =~ "max_queue"
    :ok = Py.Channel.send(channel, :released)
    assert Task.await(holder) == {:ok, "released"}
    assert Enum.map(waiting, &Task.await/1) == [{:ok, 10}, {:ok, 20}]
    assert Py.eval("1 + 1", %{}, pool: name) == {:ok, 2}
  end

  test "bad values raise ArgumentError" do
    assert_raise ArgumentError, ~r/max_queue/, fn ->
      Py.Pool.start_link(name: :bad_queue, size: 1, max_queue: Process.get(:none, -1))
    end
  end
end
