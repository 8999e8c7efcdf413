defmodule Py.LoggerTest do
  # Not async: the forwarding level and the :logger handler are VM-wide.
  use ExUnit.Case, async: false
  import ExUnit.CaptureLog
  import ExUnit.CaptureIO

  # Keep the forwarded records out of the test output.
  @moduletag :capture_log

  defmodule Forward do
    # A :logger handler that sends Python's records to the test process.
    def log(%{meta: %{py_logger: _}} = event, %{config: %{pid: pid}}),
      do: send(pid, {:py_log, event})

    def log(_event, _config), do: :ok
  end

  setup do
    previous = Py.Logger.level()
    :ok = :logger.add_handler(:py_test_forward, Forward, %{config: %{pid: self()}})

    on_exit(fn ->
      :logger.remove_handler(:py_test_forward)
      Py.Logger.set_level(previous)
    end)

    :ok
  end

  defp message(%{msg: {:string, text}}), do: IO.chardata_to_string(text)

  test "records from a call reach Logger with the level mapped and Python's metadata" do
    Py.Logger.set_level(:debug)

    :ok =
      Py.exec("""
      import logging
      def work():
          log = logging.getLogger("app.db")
          log.debug("d %d", 1)
          log.info("i")
          log.warning("w")
          log.error("e")
          log.critical("c")
      work()
      """)

    for {level, text} <- [debug: "d 1", info: "i", warning: "w", error: "e", critical: "c"] do
      assert_received {:py_log, %{level: ^level, meta: meta} = event}
      assert message(event) == text
      assert meta.py_logger == "app.db"
      assert meta.py_function == "work"
      assert is_integer(meta.py_line) and meta.py_line > 3
      assert is_binary(meta.py_module)
      assert :py in meta.domain
    end
  end

  test "a record is logged by the caller before the call returns, with its Logger metadata" do
    Logger.metadata(request_id: "req-42")

    log =
      capture_log([metadata: [:request_id]], fn ->
        :ok = Py.exec("import logging; logging.getLogger('app').warning('disk %s', 'full')")
      end)

    assert log =~ "disk full"
    assert log =~ "request_id=req-42"
  after
    Logger.metadata(request_id: nil)
  end

  test "an exception's traceback is part of the message" do
    :ok =
      Py.exec("""
      import logging
      try:
          1 / 0
      except ZeroDivisionError:
          logging.getLogger('app').exception('failed')
      """)

    assert_received {:py_log, %{level: :error} = event}
    assert message(event) =~ "failed"
    assert message(event) =~ "ZeroDivisionError"
  end

  test "records from a Python thread outside any call reach Logger through the sink" do
    :ok =
      Py.exec("""
      import logging, threading
      def run():
          logging.getLogger('bg').error('from a thread')
      t = threading.Thread(target=run, name='worker-7')
      t.start()
      t.join()
      """)

    assert_receive {:py_log, %{level: :error, meta: %{py_logger: "bg"} = meta} = event}, 5_000
    assert message(event) == "from a thread"
    assert meta.py_thread == "worker-7"
    # Logged by the sink process, not by us.
    assert meta.pid == Process.whereis(Py.EventSink)
  end

  test "a record made after the caller timed out goes to the sink, not to the caller's mailbox" do
    assert {:error, %Py.Error{kind: :timeout}} =
             Py.exec(
               """
               import logging
               try:
                   while True:
                       pass
               finally:
                   logging.getLogger('late').error('after the timeout')
               """,
               timeout: 200
             )

    sink = Process.whereis(Py.EventSink)
    assert_receive {:py_log, %{meta: %{py_logger: "late", pid: ^sink}}}, 5_000
    refute_received {_, :py_event, _, _}
  end

  test "the level filters records, and :none turns forwarding off" do
    Py.Logger.set_level(:error)
    :ok = Py.exec("import logging; logging.warning('dropped'); logging.error('kept')")
    assert_received {:py_log, %{level: :error}}
    refute_received {:py_log, %{level: :warning}}
    assert Py.eval("__import__('logging').getLogger().level") == {:ok, 40}

    Py.Logger.set_level(:none)
    assert Py.Logger.level() == :none
    # Python's own default is back: a warning with no handler goes to
    # stderr (which py sends to the caller's group leader).
    stderr =
      capture_io(fn ->
        :ok = Py.exec("import logging; logging.getLogger('x').error('not forwarded')")
      end)

    assert stderr =~ "not forwarded"
    refute_received {:py_log, _}

    assert Py.eval(
             "any(isinstance(h, __import__('erlang').ErlangHandler) for h in __import__('logging').getLogger().handlers)"
           ) == {:ok, false}

    Py.Logger.set_level(:info)
    :ok = Py.exec("import logging; logging.info('back')")
    assert_received {:py_log, %{level: :info}}
  end

  test "every interpreter forwards (each parallel pool slot, or the main one)" do
    contexts = Py.Test.Contexts.one_per_interpreter()

    for {ctx, i} <- Enum.with_index(contexts) do
      :ok = Py.Context.exec(ctx, "import logging; logging.getLogger('ctx').warning('from #{i}')")
      assert_received {:py_log, %{meta: %{py_logger: "ctx"}} = event}
      assert message(event) == "from #{i}"
    end

    for ctx <- contexts, do: Py.Context.stop(ctx)
  end

  test "a record made by __repr__ while a handle is inspected is logged, not left behind" do
    {:ok, noisy} =
      Py.eval("""
      type('Noisy', (), {'__repr__': lambda self: (
          __import__('logging').getLogger('repr').warning('repr called'), 'Noisy()')[1]})()
      """)

    assert inspect(noisy) == "#Py.Object<Noisy()>"
    assert_received {:py_log, %{meta: %{py_logger: "repr"}}}
    refute_received {_, :py_event, _, _}
  end

  test "a bad level raises ArgumentError, at runtime and in the config" do
    assert_raise ArgumentError, ~r/must be one of/, fn ->
      Py.Logger.set_level(:erlang.binary_to_atom("loud"))
    end

    Application.put_env(:py, :log_level, :loud)

    try do
      assert_raise ArgumentError, ~r/config :py, log_level: the level must be one of/, fn ->
        Py.Config.configure_native()
      end
    after
      Application.delete_env(:py, :log_level)
    end
  end
end
