defmodule Py.TraceTest do
  # Not async: tracing on/off and the handlers are VM-wide.
  use ExUnit.Case, async: false

  setup do
    test = self()
    :ok = Py.Trace.attach(:py_trace_test, fn span -> send(test, {:span, self(), span}) end)
    Py.Trace.enable()

    on_exit(fn ->
      Py.Trace.detach(:py_trace_test)
      Py.Trace.disable()
    end)

    :ok
  end

  test "nested spans reach the handler with name, duration, status, attributes and parent" do
    :ok =
      Py.exec("""
      import erlang
      with erlang.Span("outer", user=7, tags=["a"], obj=object()) as outer:
          with erlang.Span("inner") as inner:
              inner.set_attribute("rows", 3)
              inner.event("halfway", pct=50)
      """)

    me = self()
    # The handler runs in the calling process, before the call returns.
    assert_received {:span, ^me, inner}
    assert_received {:span, ^me, outer}
    assert inner.name == "inner"
    assert outer.name == "outer"
    assert inner.parent_id == outer.id
    assert outer.parent_id == nil
    assert inner.trace_id == outer.id and outer.trace_id == outer.id
    assert inner.status == :ok and inner.error == nil
    assert inner.attributes == %{"rows" => 3}
    assert %{"user" => 7, "tags" => ["a"], "obj" => "<object object at " <> _} = outer.attributes
    assert [%{name: "halfway", attributes: %{"pct" => 50}, time_us: t}] = inner.events
    assert t >= inner.start_time_us
    assert is_integer(outer.duration_us) and outer.duration_us >= inner.duration_us
    assert outer.start_time_us <= inner.start_time_us
  end

  test "an exception marks the span as an error and still propagates" do
    assert {:error, %Py.Error{type: "ValueError"}} =
             Py.exec("""
             import erlang
             with erlang.Span("failing"):
                 raise ValueError("bad input")
             """)

    assert_received {:span, _, %{name: "failing", status: :error, error: error}}
    assert error == %{type: "ValueError", message: "bad input"}
  end

  test "the decorator traces plain and async functions" do
    :ok =
      Py.exec("""
      import erlang, asyncio

      @erlang.trace("double", kind="sync")
      def double(x):
          return 2 * x

      @erlang.trace
      async def fetch(x):
          await asyncio.sleep(0)
          return double(x)
      """)

    assert Py.eval("double(4)") == {:ok, 8}
    assert_received {:span, _, %{name: "double", attributes: %{"kind" => "sync"}, status: :ok}}

    assert Py.eval("fetch(5)") == {:ok, 10}
    assert_received {:span, _, %{name: "double"} = inner}
    assert_received {:span, _, %{name: "fetch"} = outer}
    assert inner.parent_id == outer.id
  end

  test "disabled tracing sends nothing and opens no span" do
    Py.Trace.disable()
    refute Py.Trace.enabled?()

    assert Py.eval("""
           (lambda erlang: [
               s.id for s in [erlang.Span('quiet').__enter__()]
           ] + [erlang.current_span()])(__import__('erlang'))
           """) == {:ok, [0, nil]}

    :ok = Py.exec("import erlang\nwith erlang.Span('quiet'):\n    pass")
    :ok = Py.exec("import erlang\nerlang.trace('f')(lambda: 1)()")
    refute_received {:span, _, _}

    Py.Trace.enable()
    :ok = Py.exec("import erlang\nwith erlang.Span('loud'):\n    pass")
    assert_received {:span, _, %{name: "loud"}}
  end

  test "a detached handler is not called; ids are unique" do
    assert Py.Trace.attach(:py_trace_test, fn _ -> :ok end) == {:error, :already_exists}
    assert :py_trace_test in Py.Trace.handlers()
    assert Py.Trace.detach(:py_trace_test) == :ok
    assert Py.Trace.detach(:py_trace_test) == {:error, :not_found}
    :ok = Py.exec("import erlang\nwith erlang.Span('nobody'):\n    pass")
    refute_received {:span, _, _}
  end

  test "a handler that raises is detached and the call is not disturbed" do
    :ok = Py.Trace.attach(:py_trace_bad, fn _ -> raise "boom" end)

    log =
      ExUnit.CaptureLog.capture_log(fn ->
        assert Py.eval("__import__('erlang').Span('x').__enter__().__exit__(None, None, None)") ==
                 {:ok, false}
      end)

    assert log =~ "py_trace_bad"
    refute :py_trace_bad in Py.Trace.handlers()
    assert_received {:span, _, %{name: "x"}}
  end

  test "spans from a Python thread outside any call reach the handlers through the sink" do
    :ok =
      Py.exec("""
      import erlang, threading
      def run():
          with erlang.Span("background", n=1):
              pass
      t = threading.Thread(target=run)
      t.start()
      t.join()
      """)

    sink = Process.whereis(Py.EventSink)
    assert_receive {:span, ^sink, %{name: "background", attributes: %{"n" => 1}}}, 5_000
  end

  test "a span whose attributes cannot cross is reported on stderr and the code goes on" do
    output =
      ExUnit.CaptureIO.capture_io(fn ->
        send(
          self(),
          Py.eval("""
          (lambda erlang: [erlang.Span('bad', text='\\ud800').__enter__().__exit__(None, None, None), 'went on'][-1]
          )(__import__('erlang'))
          """)
        )
      end)

    assert_received {:ok, "went on"}
    assert output =~ "a span could not be sent to Elixir"
    refute_received {:span, _, %{name: "bad"}}
  end
end
