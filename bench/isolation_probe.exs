# A first measurement for issue 13 (Python in another OS process): what each
# way of reaching another OS process costs on this machine, before either
# is built. Not part of `make bench`.
#
#     MIX_ENV=prod PY_PYTHON=.venv/bin/python mix run bench/isolation_probe.exs
#
# - in-process: W1 (math.sqrt(2.0), 20,000 sequential) and W4 (a 1 MiB
#   binary through a Python identity, 1,000 round trips), the baseline.
# - peer node: the same calls made with :erpc on a `:peer` node (a second
#   BEAM on loopback distribution) that runs py itself: the whole cost of
#   the "peer BEAM node" design.
# - port transport: the bare round trip of a {:packet, 4} port whose OS
#   process echoes its input (`cat`), with the request as the external term
#   format: the transport cost of the "child executable over a port" design,
#   to which that design adds decoding and encoding in the child and the
#   call itself (the in-process W1 less its own transport).
#
# Prints one JSON object per figure, with the load average at the start and
# the end.

defmodule Probe do
  def load, do: File.read!("/proc/loadavg") |> String.split() |> Enum.take(3) |> Enum.join(" ")

  def median(fun) do
    fun.()
    runs = for _ <- 1..5, do: fun.()
    Enum.at(Enum.sort(runs), 2)
  end

  def us_per(count, fun) do
    median(fn ->
      {us, _} = :timer.tc(fn -> Enum.each(1..count, fn _ -> fun.() end) end)
      us / count
    end)
  end

  def emit(id, value, unit) do
    IO.puts(~s({"id":"#{id}","value":#{Float.round(value * 1.0, 3)},"unit":"#{unit}"}))
  end
end

IO.puts("# isolation probe; load average at the start: #{Probe.load()}")
payload = :crypto.strong_rand_bytes(1_048_576)
{:ok, ident} = Py.eval("lambda x: x", %{}, return: :object)

Probe.emit(
  "W1_in_process",
  Probe.us_per(20_000, fn -> {:ok, _} = Py.call(:math, :sqrt, [2.0]) end),
  "us/call"
)

w4 = Probe.us_per(1_000, fn -> {:ok, _} = Py.call(ident, nil, [payload]) end)
Probe.emit("W4_in_process", 1.048576e6 / w4, "MB/s")

# Peer node running py.
{:ok, _} = Node.start(:"probe_#{System.unique_integer([:positive])}@127.0.0.1", :longnames)
paths = Enum.flat_map(:code.get_path(), &[~c"-pa", &1])

env =
  for key <- ~w(PY_PYTHON),
      value = System.get_env(key),
      do: {String.to_charlist(key), String.to_charlist(value)}

{started_us, {:ok, peer, node}} =
  :timer.tc(fn ->
    :peer.start_link(%{
      name: :"py_peer_#{System.unique_integer([:positive])}",
      host: ~c"127.0.0.1",
      longnames: true,
      args: paths,
      env: env
    })
  end)

{:ok, _} = :erpc.call(node, Application, :ensure_all_started, [:py])
Probe.emit("I8_peer_start", started_us / 1000, "ms (VM start, without py's start)")
# A long-lived process on the peer serves the requests (as an isolated
# context's proxy would): one binding, one namespace, no process per call.
[{server_module, server_beam}] =
  Code.compile_string("""
  defmodule ProbeServer do
    def start do
      {:ok, ident} = Py.eval("lambda x: x", %{}, return: :object)
      loop(ident)
    end

    defp loop(ident) do
      receive do
        {from, ref, :sqrt} -> send(from, {ref, Py.call(:math, :sqrt, [2.0])})
        {from, ref, {:ident, value}} -> send(from, {ref, Py.call(ident, nil, [value])})
      end

      loop(ident)
    end
  end
  """)

{:module, _} =
  :erpc.call(node, :code, :load_binary, [server_module, ~c"probe_server", server_beam])

server = Node.spawn(node, server_module, :start, [])

remote = fn request ->
  ref = make_ref()
  send(server, {self(), ref, request})

  receive do
    {^ref, reply} -> reply
  end
end

Probe.emit("I1_peer", Probe.us_per(20_000, fn -> {:ok, _} = remote.(:sqrt) end), "us/call")

Probe.emit(
  "I1_peer_erpc",
  Probe.us_per(2_000, fn -> {:ok, _} = :erpc.call(node, Py, :call, [:math, :sqrt, [2.0]]) end),
  "us/call (a process and a binding per call)"
)

i4 = Probe.us_per(200, fn -> {:ok, _} = remote.({:ident, payload}) end)
Probe.emit("I4_peer", 1.048576e6 / i4, "MB/s")
:peer.stop(peer)

# Port transport only: `cat` echoes each {:packet, 4} frame.
port = Port.open({:spawn_executable, System.find_executable("cat")}, [:binary, {:packet, 4}])
request = :erlang.term_to_binary({:call, :math, :sqrt, [2.0]})

roundtrip = fn data ->
  send(port, {self(), {:command, data}})

  receive do
    {^port, {:data, reply}} -> reply
  end
end

Probe.emit(
  "port_rtt_small",
  Probe.us_per(20_000, fn -> :erlang.binary_to_term(roundtrip.(request)) end),
  "us/round trip"
)

big = :erlang.term_to_binary(payload)
rtt_big = Probe.us_per(200, fn -> :erlang.binary_to_term(roundtrip.(big)) end)
Probe.emit("port_1MiB", 1.048576e6 / rtt_big, "MB/s")
Port.close(port)

IO.puts("# load average at the end: #{Probe.load()}")
