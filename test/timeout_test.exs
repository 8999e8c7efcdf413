defmodule Py.TimeoutTest do
  use ExUnit.Case, async: true

  test "a timed-out call is interrupted and the context answers the next call" do
    assert {:error, %Py.Error{kind: :timeout, message: msg}} =
             Py.exec("while True: pass", timeout: 500)

    assert msg =~ "500 ms"
    assert Py.eval("1 + 1") == {:ok, 2}
  end

  test "the same on an explicit context, and its state survives" do
    {:ok, ctx} = Py.Context.start_link()
    :ok = Py.Context.exec(ctx, "kept = 'yes'")

    assert {:error, %Py.Error{kind: :timeout}} =
             Py.Context.exec(ctx, "while True: pass", timeout: 200)

    assert Py.Context.eval(ctx, "kept") == {:ok, "yes"}
  end

  test "except Exception does not swallow the interruption" do
    {:ok, ctx} = Py.Context.start_link()
    code = "while True:\n    try:\n        while True: pass\n    except Exception:\n        pass"
    assert {:error, %Py.Error{kind: :timeout}} = Py.Context.exec(ctx, code, timeout: 200)
    assert Py.Context.eval(ctx, "2 + 2") == {:ok, 4}
  end

  test "a call that timed out while queued never runs" do
    {:ok, ctx} = Py.Context.start_link()
    me = self()

    busy =
      Task.async(fn ->
        Process.group_leader(self(), me)
        Py.Context.exec(ctx, "print('busy')\nwhile True: pass", timeout: 1_000)
      end)

    assert_receive {:io_request, from, reply_as, {:put_chars, :unicode, "busy\n"}}, 10_000
    send(from, {:io_reply, reply_as, :ok})

    assert {:error, %Py.Error{kind: :timeout}} =
             Py.Context.exec(ctx, "ran_anyway = True", timeout: 50)

    assert {:error, %Py.Error{kind: :timeout}} = Task.await(busy)
    assert Py.Context.eval(ctx, "'ran_anyway' in globals()") == {:ok, false}
  end

  test "no stray messages are left in the caller's mailbox" do
    {:error, _} = Py.exec("while True: pass", timeout: 100)
    {:ok, 3} = Py.eval("1 + 2")
    assert Process.info(self(), :message_queue_len) == {:message_queue_len, 0}
  end

  test "a call that timed out while printing leaves no io replies behind" do
    ExUnit.CaptureIO.capture_io(fn ->
      assert {:error, %Py.Error{kind: :timeout}} =
               Py.exec("while True:\n    print('x' * 100)", timeout: 300)

      assert Process.info(self(), :messages) == {:messages, []}
    end)
  end

  test "a group leader that never answers does not hold the call past its timeout" do
    silent = spawn(fn -> Process.sleep(:infinity) end)
    own = Process.group_leader()
    Process.group_leader(self(), silent)

    try do
      assert Py.exec("print('nobody reads this')", timeout: 200) == :ok
    after
      Process.group_leader(self(), own)
      Process.exit(silent, :kill)
    end
  end

  # Returns once `pid` waits in a `receive` (or has exited); no timer.
  defp await_waiting(pid) do
    case Process.info(pid, :status) do
      {:status, :waiting} ->
        :ok

      nil ->
        :ok

      _ ->
        :erlang.yield()
        await_waiting(pid)
    end
  end

  # A timeout of 2^32 ms or more is a valid (long) wait. A `receive ...
  # after` takes at most 2^32 - 1 ms: these raised ErlangError
  # :timeout_value as soon as the caller waited with nothing in its mailbox.
  # The Python code here waits for the channel, which is fed only once the
  # caller waits.
  test "timeouts of 2^32 ms and more wait, in a call and in Py.await/2" do
    ch = Py.Channel.new()
    test = self()

    feeder =
      spawn_link(fn ->
        for n <- 1..3 do
          receive do
            :next -> await_waiting(test)
          end

          :ok = Py.Channel.send(ch, n)
        end
      end)

    send(feeder, :next)
    assert Py.eval("ch.receive()", %{ch: ch}, timeout: 2 ** 32) == {:ok, 1}

    send(feeder, :next)
    assert Py.eval("ch.receive()", %{ch: ch}, timeout: 2 ** 40) == {:ok, 2}

    task = Py.async_call(:builtins, :eval, ["ch.receive()", %{"ch" => ch}])
    send(feeder, :next)
    assert Py.await(task, 2 ** 40) == {:ok, 3}
  end
end
