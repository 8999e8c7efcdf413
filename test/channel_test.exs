defmodule Py.ChannelTest do
  # Py.Channel: Elixir sends, Python receives. In the py313-parallel lane
  # the pool's contexts are OWN_GIL sub-interpreters, so every test here
  # also runs there; the :parallel tests add cross-interpreter cases.
  use ExUnit.Case, async: true
  doctest Py.Channel

  @defs """
  import erlang, asyncio, gc, os, select

  def collect(ch):
      return [m for m in ch]

  def echo(ch, pid):
      n = 0
      for m in ch:
          erlang.send(pid, ("echo", m))
          n += 1
      return n

  def announce_then(pid, f):
      erlang.send(pid, "waiting")
      return f()

  async def pair(a, b, pid):
      async def second():
          erlang.send(pid, "waiting")
          return await b.async_receive()
      return await asyncio.gather(a.async_receive(), second())

  async def two_on_one(ch, pid):
      async def announce():
          erlang.send(pid, "waiting")
      return await asyncio.gather(ch.async_receive(), ch.async_receive(), announce())

  def interrupted_in_loop(ch):
      # A BaseException raised by the loop's own code (as an interrupt can
      # be) while a coroutine awaits the channel.
      # Here: the channel's waiters were just woken (the coroutine's step is
      # scheduled) when the exception comes.
      def boom():
          raise KeyboardInterrupt
      loop = erlang._loop()
      def wake_then_boom():
          loop.call_soon(boom)
          erlang._wake_channel_waiters((loop, erlang._chan_fd(ch._c)))
      loop.call_soon(loop.call_soon, wake_then_boom)
      try:
          erlang._await(ch.async_receive())
      except KeyboardInterrupt:
          return "interrupted"

  async def async_collect(ch):
      return [m async for m in ch]

  async def receive_while_blocked(ch, r, pid):
      # The loop's thread is held in a wait for the OS pipe `r` (which no
      # cancel ends) while a coroutine awaits the channel; the cancel's
      # Interrupted is swallowed here.
      async def blocker():
          erlang.send(pid, "blocked")
          while True:
              try:
                  select.select([r], [], [])
                  for _ in range(1000):  # lets a pending interrupt land
                      pass
                  return
              except erlang.Interrupted:
                  pass
      return await asyncio.gather(ch.async_receive(), blocker())

  async def start_receive(ch):
      global pending
      pending = asyncio.get_running_loop().create_task(ch.async_receive())
      await asyncio.sleep(0)  # the task starts waiting

  async def finish_receive():
      global pending
      message = await pending
      del pending
      return message

  def open_fds():
      gc.collect()
      return len(os.listdir("/proc/self/fd"))
  """

  # Runs `expr` in a new process (its own pool binding) after the helper
  # definitions; returns the Task.
  defp py_task(expr, bindings, opts \\ []) do
    Task.async(fn ->
      Py.exec!(@defs, opts)
      Py.eval(expr, bindings, opts)
    end)
  end

  test "messages arrive in order and convert like call arguments" do
    ch = Py.Channel.new()
    me = self()
    messages = [1, "two", 3.5, [4], {5, "six"}, %{"seven" => 7}, nil, true, me, 2 ** 70]
    for m <- messages, do: assert(Py.Channel.send(ch, m) == :ok)
    :ok = Py.Channel.close(ch)
    assert Py.eval("[ch.receive() for _ in range(10)]", %{"ch" => ch}) == {:ok, messages}
  end

  test "iteration ends cleanly when the channel is closed, after the queued messages" do
    ch = Py.Channel.new()
    task = py_task("announce_then(pid, lambda: collect(ch))", %{"ch" => ch, "pid" => self()})
    assert_receive "waiting", 5_000
    for i <- 1..100, do: :ok = Py.Channel.send(ch, i)
    :ok = Py.Channel.close(ch)
    assert Task.await(task) == {:ok, Enum.to_list(1..100)}
  end

  test "Python sends back to an Elixir pid" do
    ch = Py.Channel.new()
    task = py_task("echo(ch, pid)", %{"ch" => ch, "pid" => self()})

    for i <- 1..50 do
      :ok = Py.Channel.send(ch, %{"i" => i})

      receive do
        {"echo", %{"i" => ^i}} -> :ok
      after
        5_000 ->
          flunk(
            "echo #{i} did not come within 5 s; the Python call: #{inspect(Task.yield(task, 0))}"
          )
      end
    end

    :ok = Py.Channel.close(ch)
    assert Task.await(task) == {:ok, 50}
  end

  test "receive on a closed, drained channel raises erlang.ChannelClosed; with a timeout, TimeoutError" do
    ch = Py.Channel.new()

    assert {:error, %Py.Error{type: "TimeoutError"}} =
             Py.eval("ch.receive(timeout=0.01)", %{"ch" => ch})

    assert Py.eval("ch.try_receive('none')", %{"ch" => ch}) == {:ok, "none"}
    :ok = Py.Channel.send(ch, :last)
    :ok = Py.Channel.close(ch)
    assert Py.eval("ch.receive()", %{"ch" => ch}) == {:ok, "last"}

    assert {:error, %Py.Error{type: "erlang.ChannelClosed"}} =
             Py.eval("ch.receive()", %{"ch" => ch})

    assert Py.eval("(list(ch), ch.closed, len(ch))", %{"ch" => ch}) == {:ok, {[], true, 0}}
  end

  test "a timeout too long to represent waits like no timeout (no crash)" do
    ch = Py.Channel.new()

    for seconds <- ["1e300", "1e19"] do
      assert {:error, %Py.Error{kind: :timeout}} =
               Py.eval("ch.receive(timeout=#{seconds})", %{"ch" => ch}, timeout: 200)
    end

    :ok = Py.Channel.send(ch, 1)
    assert Py.eval("ch.receive(timeout=1e300)", %{"ch" => ch}) == {:ok, 1}

    assert {:error, %Py.Error{type: "ValueError"}} =
             Py.eval("ch.receive(timeout=float('inf'))", %{"ch" => ch})
  end

  test "a bounded channel refuses sends while full" do
    ch = Py.Channel.new(max_size: 2)
    assert Py.Channel.send(ch, 1) == :ok
    assert Py.Channel.send(ch, 2) == :ok
    assert Py.Channel.send(ch, 3) == {:error, :full}
    assert Py.eval("ch.receive()", %{"ch" => ch}) == {:ok, 1}
    assert Py.Channel.send(ch, 3) == :ok
    assert Py.Channel.send(ch, 4) == {:error, :full}
    :ok = Py.Channel.close(ch)
    assert Py.eval("list(ch)", %{"ch" => ch}) == {:ok, [2, 3]}
  end

  test "sends after close fail, whether Elixir or Python closed it" do
    ch = Py.Channel.new()
    :ok = Py.Channel.close(ch)
    assert Py.Channel.send(ch, 1) == {:error, :closed}
    assert Py.Channel.close(ch) == :ok

    ch = Py.Channel.new()
    assert Py.eval("ch.close()", %{"ch" => ch}) == {:ok, nil}
    assert Py.Channel.send(ch, 1) == {:error, :closed}
  end

  test "receive blocks with the GIL released: other Python code runs meanwhile" do
    {:ok, blocked} = Py.Context.start_link(interpreter: :main)
    {:ok, other} = Py.Context.start_link(interpreter: :main)
    ch = Py.Channel.new()
    me = self()

    :ok = Py.Context.exec(blocked, "import erlang")

    task =
      Task.async(fn ->
        Py.Context.eval(blocked, "(erlang.send(pid, 'waiting'), ch.receive())[1]", %{
          "ch" => ch,
          "pid" => me
        })
      end)

    assert_receive "waiting", 5_000
    # Same interpreter, so the same GIL: this would hang if receive held it.
    assert Py.Context.eval(other, "sum(range(1000))", %{}, timeout: 5_000) == {:ok, 499_500}
    :ok = Py.Channel.send(ch, "done")
    assert Task.await(task) == {:ok, "done"}
  end

  test "async_receive awaits on the event loop, concurrently with other coroutines" do
    a = Py.Channel.new()
    b = Py.Channel.new()
    task = py_task("pair(a, b, pid)", %{"a" => a, "b" => b, "pid" => self()})
    assert_receive "waiting", 5_000
    # Both coroutines are waiting now; b's message arrives first.
    :ok = Py.Channel.send(b, "to b")
    :ok = Py.Channel.send(a, "to a")
    assert Task.await(task) == {:ok, ["to a", "to b"]}
  end

  test "two coroutines awaiting one channel each get one message" do
    ch = Py.Channel.new()
    task = py_task("two_on_one(ch, pid)", %{"ch" => ch, "pid" => self()})
    assert_receive "waiting", 5_000
    :ok = Py.Channel.send(ch, 1)
    :ok = Py.Channel.send(ch, 2)
    assert {:ok, [a, b, nil]} = Task.await(task)
    assert Enum.sort([a, b]) == [1, 2]
  end

  test "a coroutine abandoned by an interrupted loop does not take a later call's messages" do
    ch = Py.Channel.new()

    task =
      Task.async(fn ->
        Py.exec!(@defs)
        {:ok, "interrupted"} = Py.eval("interrupted_in_loop(ch)", %{"ch" => ch})
        :ok = Py.Channel.send(ch, "for the next call")
        :ok = Py.Channel.close(ch)
        Py.eval("async_collect(ch)", %{"ch" => ch})
      end)

    assert Task.await(task) == {:ok, ["for the next call"]}
  end

  test "async for over a channel ends when it is closed" do
    ch = Py.Channel.new()
    task = py_task("async_collect(ch)", %{"ch" => ch})
    for i <- 1..20, do: :ok = Py.Channel.send(ch, i)
    :ok = Py.Channel.close(ch)
    assert Task.await(task) == {:ok, Enum.to_list(1..20)}
  end

  test "a timeout interrupts Python blocked in receive, and the context stays usable" do
    {:ok, ctx} = Py.Context.start_link()
    ch = Py.Channel.new()
    :ok = Py.Context.exec(ctx, "kept = 'yes'")

    assert {:error, %Py.Error{kind: :timeout}} =
             Py.Context.eval(ctx, "[m for m in ch]", %{"ch" => ch}, timeout: 200)

    assert Py.Context.eval(ctx, "kept") == {:ok, "yes"}
    # The channel is still usable after the interrupted wait.
    :ok = Py.Channel.send(ch, 1)
    assert Py.Context.eval(ctx, "ch.receive()", %{"ch" => ch}) == {:ok, 1}
  end

  test "a timeout interrupts an asyncio loop awaiting a channel, and the context stays usable" do
    {:ok, ctx} = Py.Context.start_link()
    :ok = Py.Context.exec(ctx, @defs)
    ch = Py.Channel.new()

    assert {:error, %Py.Error{kind: :timeout}} =
             Py.Context.eval(ctx, "async_collect(ch)", %{"ch" => ch}, timeout: 200)

    # The wait ended at once: the context answers before anything is sent.
    assert Py.Context.eval(ctx, "1 + 1", %{}, timeout: 5_000) == {:ok, 2}
    # The loop and the channel still work afterwards.
    :ok = Py.Channel.send(ch, "after")
    :ok = Py.Channel.close(ch)
    assert Py.Context.eval(ctx, "async_collect(ch)", %{"ch" => ch}) == {:ok, ["after"]}
  end

  test "a cancelled asyncio wait ends even when another reader empties the channel's pipe" do
    # The cancel wakes the loop by setting the channel's pipe; here another
    # reader's empty poll clears it before the loop (held up meanwhile)
    # looks at it.
    {:ok, ctx} = Py.Context.start_link(interpreter: :main)
    :ok = Py.Context.exec(ctx, @defs)
    ch = Py.Channel.new()
    {:ok, [r, w]} = Py.Context.eval(ctx, "list(os.pipe())")
    me = self()
    bindings = %{"ch" => ch, "r" => r, "w" => w, "pid" => me}

    task =
      Task.async(fn ->
        Py.Context.eval(ctx, "receive_while_blocked(ch, r, pid)", bindings, timeout: 1_000)
      end)

    assert_receive "blocked", 5_000
    assert {:error, %Py.Error{kind: :timeout}} = Task.await(task)
    # Another reader finds the channel empty, then the loop goes on.
    assert {:ok, 1} = Py.eval("(ch.try_receive(), __import__('os').write(w, b'x'))[1]", bindings)
    # The cancelled wait ended: the context answers.
    assert Py.Context.eval(ctx, "1 + 1", %{}, timeout: 5_000) == {:ok, 2}
    :ok = Py.Channel.send(ch, "next")
    assert Py.Context.eval(ctx, "ch.receive(5)", bindings) == {:ok, "next"}
    {:ok, _} = Py.Context.eval(ctx, "(os.close(r), os.close(w))", bindings)
  end

  test "an asyncio wait that spans two calls releases the channel when it ends" do
    {:ok, ctx} = Py.Context.start_link()
    :ok = Py.Context.exec(ctx, @defs)
    {:ok, before} = Py.Context.eval(ctx, "open_fds()")
    for i <- 1..50, do: receive_across_two_calls(ctx, i)
    :erlang.garbage_collect()
    {:ok, after_rounds} = Py.Context.eval(ctx, "open_fds()")
    # Each channel's pipe is two descriptors: kept watches would hold 100.
    assert after_rounds - before < 50
  end

  defp receive_across_two_calls(ctx, i) do
    ch = Py.Channel.new()
    {:ok, nil} = Py.Context.eval(ctx, "start_receive(ch)", %{"ch" => ch})
    :ok = Py.Channel.send(ch, i)
    {:ok, ^i} = Py.Context.eval(ctx, "finish_receive()")
  end

  test "the owner's exit closes the channel: Python's loop ends with what was sent" do
    test = self()

    owner =
      spawn(fn ->
        ch = Py.Channel.new()
        send(test, {:channel, ch})

        receive do
          :go -> :ok = Py.Channel.send(ch, "last words")
        end
      end)

    assert_receive {:channel, ch}
    ref = Process.monitor(owner)
    task = py_task("announce_then(pid, lambda: collect(ch))", %{"ch" => ch, "pid" => self()})
    assert_receive "waiting", 5_000
    send(owner, :go)
    assert_receive {:DOWN, ^ref, :process, ^owner, :normal}
    assert Task.await(task) == {:ok, ["last words"]}
    assert Py.Channel.send(ch, "too late") == {:error, :closed}
  end

  test "stopping a context whose Python waits on a channel ends the wait" do
    {:ok, ctx} = Py.Context.start()
    ch = Py.Channel.new()
    me = self()

    task =
      Task.async(fn ->
        Py.Context.eval(ctx, "__import__('erlang').send(pid, 'waiting') or ch.receive()", %{
          "ch" => ch,
          "pid" => me
        })
      end)

    assert_receive "waiting", 5_000
    :ok = Py.Context.stop(ctx)
    assert {:error, %Py.Error{kind: :closed}} = Task.await(task)
  end

  test "a message that cannot cross fails in Python's receive, not in send" do
    ch = Py.Channel.new()
    assert Py.Channel.send(ch, fn -> :no end) == :ok
    :ok = Py.Channel.send(ch, "next")

    assert {:error, %Py.Error{type: "TypeError", message: msg}} =
             Py.eval("ch.receive()", %{"ch" => ch})

    assert msg =~ "cannot cross into Python: cannot convert"
    # Plain text, not an Erlang term.
    refute msg =~ "{error,"
    assert Py.eval("ch.receive()", %{"ch" => ch}) == {:ok, "next"}
  end

  test "bad arguments raise ArgumentError" do
    assert_raise ArgumentError, ~r/max_size/, fn -> Py.Channel.new(max_size: 0) end
    assert_raise ArgumentError, ~r/max_size/, fn -> Py.Channel.new(max_size: :lots) end
    assert_raise ArgumentError, ~r/Py.Channel/, fn -> Py.Channel.send(:nope, 1) end
    assert_raise ArgumentError, ~r/Py.Channel/, fn -> Py.Channel.close("nope") end
  end

  test "Python's repr and length of a channel" do
    ch = Py.Channel.new()
    :ok = Py.Channel.send(ch, 1)

    assert Py.eval("(repr(ch), len(ch))", %{"ch" => ch}) ==
             {:ok, {"<erlang.Channel queued=1>", 1}}
  end

  @tag :parallel
  test "one channel feeds contexts in different sub-interpreters" do
    # Two contexts on two different slots (the helper checks the ids).
    [a, b | _] = Py.Test.Contexts.one_per_interpreter()
    ch = Py.Channel.new()
    :ok = Py.Channel.send(ch, %{"to" => "first"})
    :ok = Py.Channel.send(ch, %{"to" => "second"})
    assert Py.Context.eval(a, "ch.receive()", %{"ch" => ch}) == {:ok, %{"to" => "first"}}
    assert Py.Context.eval(b, "ch.receive()", %{"ch" => ch}) == {:ok, %{"to" => "second"}}
  end

  @tag :parallel
  test "a channel works on a main-interpreter context in a parallel build" do
    {:ok, ctx} = Py.Context.start_link(interpreter: :main)
    ch = Py.Channel.new()
    for i <- 1..3, do: :ok = Py.Channel.send(ch, i)
    :ok = Py.Channel.close(ch)
    assert Py.Context.eval(ctx, "list(ch)", %{"ch" => ch}) == {:ok, [1, 2, 3]}
  end
end
