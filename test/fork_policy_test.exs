defmodule Py.ForkPolicyTest do
  use ExUnit.Case, async: true

  @blocked [
    {"os.fork", "import os; os.fork()"},
    {"os.forkpty", "import os; os.forkpty()"},
    {"os.system", "import os; os.system('true')"},
    {"os.popen", "import os; os.popen('true')"},
    {"os.execv", "import os; os.execv('/bin/true', ['true'])"},
    {"os.execlp", "import os; os.execlp('true', 'true')"},
    {"os.spawnv", "import os; os.spawnv(os.P_WAIT, '/bin/true', ['true'])"},
    {"os.posix_spawn", "import os; os.posix_spawn('/bin/true', ['true'], {})"},
    {"posix.fork", "import posix; posix.fork()"},
    {"subprocess.run", "import subprocess; subprocess.run(['true'])"},
    {"subprocess.check_output", "import subprocess; subprocess.check_output('true', shell=True)"},
    {"_posixsubprocess.fork_exec", "import _posixsubprocess; _posixsubprocess.fork_exec()"},
    {"multiprocessing (fork)",
     "import multiprocessing as m; m.get_context('fork').Process(target=print).start()"},
    {"multiprocessing (spawn)",
     "import multiprocessing as m; m.get_context('spawn').Process(target=print).start()"}
  ]

  for {what, code} <- @blocked do
    test "#{what} raises erlang.ForkNotAllowedError" do
      assert {:error, %Py.Error{type: "erlang.ForkNotAllowedError", message: message}} =
               Py.exec(unquote(code))

      assert message =~ "corrupts it"
      assert message =~ "config :py, allow_fork: true"
    end
  end

  test "the exception is an OSError, so code that probes for a program falls back" do
    :ok =
      Py.exec("""
      import subprocess
      try:
          subprocess.run(['ldconfig', '-p'])
          outcome = 'ran'
      except OSError as e:
          outcome = type(e).__name__
      """)

    assert Py.eval("outcome") == {:ok, "ForkNotAllowedError"}
    # ctypes.util.find_library runs ldconfig/gcc and falls back on OSError.
    assert {:ok, _} = Py.eval("__import__('ctypes.util').util.find_library('c')")
  end

  test "every interpreter is guarded (each parallel pool slot, or the main one)" do
    contexts = Py.Test.Contexts.one_per_interpreter()

    for ctx <- contexts do
      assert {:error, %Py.Error{type: "erlang.ForkNotAllowedError"}} =
               Py.Context.exec(ctx, "import subprocess; subprocess.run(['true'])")
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
  test "config :py, allow_fork: true lets Python run programs (in a VM of its own)" do
    script = """
    Application.put_env(:py, :allow_fork, true)
    {:ok, _} = Application.ensure_all_started(:py)
    {:ok, out} = Py.eval("__import__('subprocess').run(['echo', 'forked'], capture_output=True).stdout")
    IO.puts("result:" <> out)
    """

    {output, status} = Py.Test.OwnVM.run(script)

    assert status == 0, output
    assert output =~ "result:forked"
  end
end
