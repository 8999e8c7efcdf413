defmodule Py.ForkPolicyTest do
  use ExUnit.Case, async: true

  # What forks the VM to run Python in the copy, or replaces the VM's process.
  # Starting programs (subprocess, os.system, os.posix_spawn, ...) is allowed:
  # see subprocess_test.exs.
  @blocked [
    {"os.fork", "import os; os.fork()"},
    {"os.forkpty", "import os; os.forkpty()"},
    {"posix.fork", "import posix; posix.fork()"},
    {"pty.fork", "import pty; pty.fork()"},
    {"pty.spawn", "import pty; pty.spawn('true')"},
    {"subprocess's preexec_fn",
     "import subprocess; subprocess.run(['true'], preexec_fn=lambda: None)"},
    {"multiprocessing (fork)",
     "import multiprocessing as m; m.get_context('fork').Process(target=print).start()"},
    {"multiprocessing (fork as the start method)",
     "import multiprocessing as m; m.set_start_method('fork', force=True)\n" <>
       "try:\n    m.Process(target=print).start()\n" <>
       "finally:\n    m.set_start_method(None, force=True)"}
  ]

  @exec [
    {"os.execv", "import os; os.execv('/bin/true', ['true'])"},
    {"os.execlp", "import os; os.execlp('true', 'true')"}
  ]

  for {what, code} <- @blocked do
    test "#{what} raises erlang.ForkNotAllowedError" do
      assert {:error, %Py.Error{type: "erlang.ForkNotAllowedError", message: message}} =
               Py.exec(unquote(code))

      assert message =~ "corrupts it"
      assert message =~ "subprocess"
      assert message =~ "config :py, allow_fork: true"
    end
  end

  for {what, code} <- @exec do
    test "#{what} raises erlang.ForkNotAllowedError (it would replace the VM)" do
      assert {:error, %Py.Error{type: "erlang.ForkNotAllowedError", message: message}} =
               Py.exec(unquote(code))

      assert message =~ "replace the VM's process"
      assert message =~ "config :py, allow_fork: true"
    end
  end

  test "the exception is an OSError, so code that probes and falls back keeps working" do
    :ok =
      Py.exec("""
      import os
      try:
          os.fork()
          outcome = 'forked'
      except OSError as e:
          outcome = type(e).__name__
      """)

    assert Py.eval("outcome") == {:ok, "ForkNotAllowedError"}
    # ctypes.util.find_library runs ldconfig/gcc (allowed: subprocess).
    assert {:ok, _} = Py.eval("__import__('ctypes.util').util.find_library('c')")
  end

  test "every interpreter is guarded (each parallel pool slot, or the main one)" do
    contexts = Py.Test.Contexts.one_per_interpreter()

    for ctx <- contexts do
      for code <- [
            "import os; os.fork()",
            "import subprocess; subprocess.run(['true'], preexec_fn=print)",
            "import multiprocessing as m; m.get_context('fork').Process(target=print).start()"
          ] do
        assert {:error, %Py.Error{type: "erlang.ForkNotAllowedError"}} =
                 Py.Context.exec(ctx, code)
      end

      assert {:ok, 0} = Py.Context.eval(ctx, "__import__('subprocess').run(['true']).returncode")
    end

    for ctx <- contexts, do: Py.Context.stop(ctx)
  end

  test "a bad allow_fork setting is an ArgumentError naming it" do
    # Read once at start; checked before anything is applied.
    Application.put_env(:py, :allow_fork, "yes")

    try do
      assert_raise ArgumentError, ~r/config :py, allow_fork: must be true or false/, fn ->
        Py.Config.configure_native()
      end
    after
      Application.delete_env(:py, :allow_fork)
    end
  end

  @tag timeout: 120_000
  test "config :py, allow_fork: true opens os.fork and the rest (in a VM of its own)" do
    # Nothing forks here: the VM's own copy would run on.
    script = """
    Application.put_env(:py, :allow_fork, true)
    {:ok, _} = Application.ensure_all_started(:py)
    {:ok, out} = Py.eval("__import__('subprocess').run(['echo', 'ran'], capture_output=True).stdout")
    IO.puts("result:" <> out)
    {:ok, native} = Py.eval("[type(f).__name__ for f in (__import__('os').fork, __import__('os').execv)]")
    IO.puts("fork:" <> Enum.join(native, ","))
    """

    {output, status} = Py.Test.OwnVM.run(script)

    assert status == 0, output
    assert output =~ "result:ran"
    assert output =~ "fork:builtin_function_or_method,builtin_function_or_method"
  end
end
