defmodule Py.Isolated.OsProcess do
  @moduledoc false
  # The OS process of an isolated context: a BEAM started from this one's
  # installation with this one's code paths, which connects back as a
  # hidden node and runs py itself (`Py.Isolated.Child`). It ends when this
  # node goes away. Its output (what Python or C code writes to fd 1 and 2,
  # crash reports) is copied to this node's standard error.

  @doc """
  Starts the OS process for node `name`; `{:ok, port, os_pid}` once the
  node is connected, or `{:error, message}`.
  """
  def start(name, timeout) do
    erl = Path.join([:code.root_dir(), "bin", "erl"])

    paths =
      :code.get_path()
      |> Enum.filter(&File.dir?/1)
      |> Enum.flat_map(&["-pa", to_string(&1)])

    args =
      [
        "-noshell",
        "-noinput",
        "-hidden",
        if(:net_kernel.longnames(), do: "-name", else: "-sname"),
        Atom.to_string(name),
        "-setcookie",
        Atom.to_string(Node.get_cookie()),
        # Ctrl-C (SIGINT) ends the node instead of opening the break menu.
        "+Bd",
        "-kernel",
        "inet_dist_use_interface",
        "{127,0,0,1}"
      ] ++ paths ++ ["-eval", "'Elixir.Py.Isolated.Child':boot()"]

    :ok = :net_kernel.monitor_nodes(true, node_type: :hidden)

    port =
      Port.open({:spawn_executable, erl}, [
        :binary,
        :exit_status,
        :stderr_to_stdout,
        args: args,
        env: [{~c"PY_ISOLATED_ORIGIN", Atom.to_charlist(node())}]
      ])

    {:os_pid, os_pid} = Port.info(port, :os_pid)
    result = await_node(name, port, timeout, [])
    :net_kernel.monitor_nodes(false, node_type: :hidden)

    case result do
      :ok ->
        {:ok, port, os_pid}

      {:error, message} ->
        kill(os_pid)
        {:error, message}
    end
  end

  defp await_node(name, port, timeout, output) do
    receive do
      {:nodeup, ^name, _} ->
        :ok

      {^port, {:data, data}} ->
        forward(data)
        await_node(name, port, timeout, [output, data])

      {^port, {:exit_status, status}} ->
        {:error,
         "the isolated Python process #{describe_exit(status)} before it started: " <>
           IO.iodata_to_binary(output)}
    after
      timeout ->
        {:error, "the isolated Python process did not start within #{timeout} ms"}
    end
  end

  @doc "Copies the child's output to this node's standard error."
  def forward(data), do: IO.binwrite(:standard_error, data)

  @doc "Ends the OS process at once."
  def kill(os_pid),
    do: System.cmd("kill", ["-KILL", Integer.to_string(os_pid)], stderr_to_stdout: true)

  @doc """
  Says how a process with port exit status `status` ended: the port
  reports a death by signal N as 128 + N.
  """
  def describe_exit(status) when status > 128 and status < 128 + 65 do
    signal = status - 128
    "was killed by signal #{signal}#{signal_name(signal)}"
  end

  def describe_exit(status), do: "exited with status #{status}"

  @names %{
    1 => "SIGHUP",
    2 => "SIGINT",
    3 => "SIGQUIT",
    4 => "SIGILL",
    5 => "SIGTRAP",
    6 => "SIGABRT",
    7 => "SIGBUS",
    8 => "SIGFPE",
    9 => "SIGKILL",
    11 => "SIGSEGV",
    13 => "SIGPIPE",
    14 => "SIGALRM",
    15 => "SIGTERM"
  }

  defp signal_name(signal) do
    case Map.fetch(@names, signal) do
      {:ok, name} -> " (#{name})"
      :error -> ""
    end
  end
end
