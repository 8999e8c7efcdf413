# The standard workloads (../shared/bench-workloads.md): W1-W9.
# Everything runs in the mode the NIF was built with: `make bench` runs
# worker mode, then the parallel pool (PY_PARALLEL=1) when a Python 3.13
# venv is there.
#
#     make bench                  # or: mix run bench/run.exs
#     BENCH_QUICK=1 make bench    # a tenth of the counts, for a smoke run
#
# Prints one JSON object per figure, then a Markdown table. Each workload
# runs once to warm up, then 3 times; the median is reported.

defmodule Bench do
  @quick System.get_env("BENCH_QUICK") in ["1", "true"]

  def n(count), do: if(@quick, do: max(div(count, 10), 1), else: count)

  def median(fun) do
    fun.()
    [_, m, _] = Enum.sort(for _ <- 1..3, do: fun.())
    m
  end

  def seconds(fun) do
    {us, _} = :timer.tc(fun)
    us / 1_000_000
  end

  def sequential(count, call) do
    seconds(fn -> Enum.each(1..count, fn _ -> {:ok, _} = call.() end) end)
  end

  def rss_mb do
    "/proc/self/status"
    |> File.read!()
    |> String.split("\n")
    |> Enum.find_value(fn
      "VmRSS:" <> rest -> rest |> String.trim() |> String.split() |> hd() |> String.to_integer()
      _ -> nil
    end)
    |> Kernel./(1024)
  end

  def emit(figure) do
    info = Py.info()
    figure = Map.merge(%{mode: info.mode, python: info.python_version}, figure)

    keys =
      [:id, :callers, :value, :unit, :mode, :python] |> Enum.filter(&Map.has_key?(figure, &1))

    IO.puts("{" <> Enum.map_join(keys, ",", &(json(&1) <> ":" <> json(figure[&1]))) <> "}")
    figure
  end

  # Runs `fun` while two OS processes outside the VM spin (one per core of
  # this 2-core machine, or one per scheduler), then stops them.
  def loaded(fun) do
    loops =
      for _ <- 1..max(System.schedulers_online(), 2) do
        # Spins until stopped, or until its parent (the VM's port helper)
        # is gone: a bench that crashes leaves no busy loop behind.
        port =
          Port.open({:spawn_executable, "/bin/sh"}, [
            :binary,
            args: ["-c", "while kill -0 $PPID 2>/dev/null; do :; done"]
          ])

        {port, elem(Port.info(port, :os_pid), 1)}
      end

    IO.puts("# #{length(loops)} busy loops started; load average: #{load_average()}")

    try do
      fun.()
    after
      System.cmd("kill", Enum.map(loops, fn {_port, os_pid} -> Integer.to_string(os_pid) end))

      # A port whose program was killed may be closed already.
      for {port, _os_pid} <- loops, Port.info(port) != nil do
        try do
          Port.close(port)
        rescue
          ArgumentError -> :ok
        end
      end

      IO.puts("# busy loops stopped; load average: #{load_average()}")
    end
  end

  # The load average, printed at the start and the end of a run: the
  # figures are only as good as the machine was quiet.
  def load_average do
    case File.read("/proc/loadavg") do
      {:ok, text} -> text |> String.split() |> Enum.take(3) |> Enum.join(" ")
      {:error, _} -> "unknown"
    end
  end

  defp json(v) when is_atom(v), do: json(Atom.to_string(v))
  defp json(v) when is_binary(v), do: ~s(") <> String.replace(v, ~s("), ~s(\\")) <> ~s(")
  defp json(v) when is_integer(v), do: Integer.to_string(v)
  defp json(v) when is_float(v), do: :erlang.float_to_binary(v, decimals: 3)
end

defmodule Bench.Echo do
  use GenServer
  def init(state), do: {:ok, state}
  def handle_call(msg, _from, state), do: {:reply, msg, state}
end

:ok = Py.exec("def ident(x):\n    return x")
info = Py.info()

IO.puts(
  "# py bench: Python #{info.python_version}, #{info.mode}, Elixir #{System.version()}, " <>
    "OTP #{System.otp_release()}; load average at the start: #{Bench.load_average()}"
)

{:ok, ident} = Py.eval("ident", %{}, return: :object)
figures = []

# Reference: a bare GenServer.call round trip on this machine, this run.
{:ok, echo} = GenServer.start_link(Bench.Echo, nil)
calls = Bench.n(20_000)

ref_us =
  Bench.median(fn ->
    Bench.seconds(fn -> Enum.each(1..calls, fn _ -> GenServer.call(echo, :ping) end) end)
  end) /
    calls * 1.0e6

figures = [Bench.emit(%{id: "ref_genserver_call", value: ref_us, unit: "us/call"}) | figures]

# W1: latency of math.sqrt(2.0), sequential, one process.
w1 =
  Bench.median(fn -> Bench.sequential(calls, fn -> Py.call(:math, :sqrt, [2.0]) end) end) / calls *
    1.0e6

figures = [Bench.emit(%{id: "W1", value: w1, unit: "us/call"}) | figures]

figures = [
  Bench.emit(%{id: "W1_vs_genserver_call", value: w1 / ref_us, unit: "ratio"}) | figures
]

# W2: throughput from 1, 2, 8, 64 processes, 200,000 calls in all.
total = Bench.n(200_000)

figures =
  Enum.reduce([1, 2, 8, 64], figures, fn callers, acc ->
    per = div(total, callers)

    secs =
      Bench.median(fn ->
        Bench.seconds(fn ->
          1..callers
          |> Enum.map(fn _ ->
            Task.async(fn -> Bench.sequential(per, fn -> Py.call(:math, :sqrt, [2.0]) end) end)
          end)
          |> Enum.each(&Task.await(&1, :infinity))
        end)
      end)

    [
      Bench.emit(%{id: "W2", callers: callers, value: per * callers / secs, unit: "calls/s"})
      | acc
    ]
  end)

# W3: eval "1 + 2".
w3 = Bench.median(fn -> Bench.sequential(calls, fn -> Py.eval("1 + 2") end) end) / calls * 1.0e6
figures = [Bench.emit(%{id: "W3", value: w3, unit: "us/call"}) | figures]

# W4: 1 MiB bytes through a Python identity function, 1,000 round trips.
# MB/s counts the payload once per round trip.
payload = :crypto.strong_rand_bytes(1024 * 1024)
trips = Bench.n(1_000)
w4 = Bench.median(fn -> Bench.sequential(trips, fn -> Py.call(ident, nil, [payload]) end) end)
figures = [Bench.emit(%{id: "W4", value: trips * 1.0 / w4, unit: "MB/s"}) | figures]

# W5: a list of 100,000 integers through the identity, 100 round trips.
list = Enum.to_list(1..100_000)
list_trips = Bench.n(100)
w5 = Bench.median(fn -> Bench.sequential(list_trips, fn -> Py.call(ident, nil, [list]) end) end)

figures = [
  Bench.emit(%{id: "W5", value: w5 / list_trips * 1000, unit: "ms/round trip"}) | figures
]

# W6: CPU-bound pure Python, one run alone, then 4 runs from 4 processes at
# once; speedup = 4 x single / concurrent wall time. Reference: the same 4
# runs on one context.
cpu = "sum(i * i % 7 for i in range(#{Bench.n(2_000_000)}))"
single = Bench.median(fn -> Bench.seconds(fn -> {:ok, _} = Py.eval(cpu) end) end)

concurrent = fn context_opts ->
  Bench.median(fn ->
    Bench.seconds(fn ->
      1..4
      |> Enum.map(fn _ -> Task.async(fn -> {:ok, _} = Py.eval(cpu, %{}, context_opts) end) end)
      |> Enum.each(&Task.await(&1, :infinity))
    end)
  end)
end

figures = [
  Bench.emit(%{id: "W6", callers: 4, value: 4 * single / concurrent.([]), unit: "speedup"})
  | figures
]

{:ok, one} = Py.Context.start_link()

figures = [
  Bench.emit(%{
    id: "W6_one_context",
    callers: 4,
    value: 4 * single / concurrent.(context: one),
    unit: "speedup"
  })
  | figures
]

# W7: Python calls a registered Elixir identity 10,000 times in one call.
Py.register_function(:bench_echo, fn x -> x end)

:ok =
  Py.exec(
    "import erlang\ndef callbacks(n):\n    for i in range(n):\n        erlang.bench_echo(i)"
  )

callbacks = Bench.n(10_000)

w7 =
  Bench.median(fn ->
    Bench.seconds(fn ->
      {:ok, nil} = Py.eval("callbacks(n)", %{n: callbacks}, timeout: :infinity)
    end)
  end)

figures = [Bench.emit(%{id: "W7", value: w7 / callbacks * 1.0e6, unit: "us/callback"}) | figures]

# W10: the W7 callback made from a thread Python started (the first through
# py's event sink, the rest straight to the process serving the thread),
# 2,000 in a row.
:ok =
  Py.exec("""
  import erlang, threading
  def thread_callbacks(n):
      def run():
          for i in range(n):
              erlang.bench_echo(i)
      t = threading.Thread(target=run)
      t.start()
      t.join()
  """)

thread_callbacks = Bench.n(2_000)

w10 =
  Bench.median(fn ->
    Bench.seconds(fn ->
      {:ok, nil} = Py.eval("thread_callbacks(n)", %{n: thread_callbacks}, timeout: :infinity)
    end)
  end)

figures = [
  Bench.emit(%{id: "W10", value: w10 / thread_callbacks * 1.0e6, unit: "us/callback"})
  | figures
]

# W8: start 200 contexts, then stop them.
contexts = Bench.n(200)

w8 =
  Bench.median(fn ->
    Bench.seconds(fn ->
      pids = for _ <- 1..contexts, do: elem(Py.Context.start_link(), 1)
      Enum.each(pids, &Py.Context.stop/1)
    end)
  end)

figures = [Bench.emit(%{id: "W8", value: w8 / contexts * 1000, unit: "ms/context"}) | figures]

# W9: RSS growth over 1,000,000 sequential calls.
:erlang.garbage_collect()
before = Bench.rss_mb()
Bench.sequential(Bench.n(1_000_000), fn -> Py.call(:math, :sqrt, [2.0]) end)
:erlang.garbage_collect()
figures = [Bench.emit(%{id: "W9", value: Bench.rss_mb() - before, unit: "MB growth"}) | figures]

# W11: items/s of Py.stream_to/5: 100,000 ints from range() pushed to this
# process, credit 1,000, acknowledged 100 at a time.
w11_items = Bench.n(100_000)

w11 =
  Bench.median(fn ->
    Bench.seconds(fn ->
      {:ok, stream} = Py.stream_to(self(), :builtins, :range, [w11_items], credit: 1_000)
      ref = stream.ref

      Enum.each(1..w11_items, fn i ->
        receive do
          {^ref, :item, _} -> if rem(i, 100) == 0, do: Py.PushStream.ack(stream, 100)
        end
      end)

      receive do
        {^ref, :done} -> :ok
      end
    end)
  end)

figures = [Bench.emit(%{id: "W11", value: w11_items / w11, unit: "items/s"}) | figures]

# S1: a 100-item generator streamed to a list, 10,000 times (one round trip
# each: the first chunk comes back with the call).
s1_streams = Bench.n(10_000)

s1 =
  Bench.median(fn ->
    Bench.seconds(fn ->
      Enum.each(1..s1_streams, fn _ ->
        [0 | _] = Py.stream_eval("(x * x for x in range(100))") |> Enum.to_list()
      end)
    end)
  end)

figures = [Bench.emit(%{id: "S1", value: s1_streams / s1, unit: "streams/s"}) | figures]

# W12: a 64 MiB float32 numpy array to %Py.Array{} (return: :array) and
# back (a numpy array over one copy), MB/s each way. numpy loads only in the
# main interpreter, so on a context there (in every mode).
{:ok, array_ctx} = Py.Context.start_link(interpreter: :main)
numpy = "import numpy\nbig = numpy.ones(16 * 1024 * 1024, dtype='float32')"

figures =
  case Py.Context.exec(array_ctx, numpy) do
    :ok ->
      mib = 64

      to_elixir = fn ->
        {:ok, %Py.Array{}} = Py.Context.eval(array_ctx, "big", %{}, return: :array)
      end

      w12_out = Bench.median(fn -> Bench.seconds(to_elixir) end)
      {:ok, array} = Py.Context.eval(array_ctx, "big", %{}, return: :array)
      to_python = fn -> {:ok, _} = Py.Context.eval(array_ctx, "a.shape", %{a: array}) end
      w12_in = Bench.median(fn -> Bench.seconds(to_python) end)

      [
        Bench.emit(%{id: "W12", callers: "to Python", value: mib / w12_in, unit: "MB/s"}),
        Bench.emit(%{id: "W12", callers: "to Elixir", value: mib / w12_out, unit: "MB/s"})
        | figures
      ]

    {:error, error} ->
      IO.puts(:stderr, "*** W12 SKIPPED: numpy does not import (#{Exception.message(error)}) ***")
      figures
  end

Py.Context.stop(array_ctx)

# I1, I4, I8: an isolated context (`isolation: :os_process`, its own OS
# process reached through loopback distribution): W1 and W4 on it, and
# the time to start one (ms).
isolated = fn -> elem(Py.Context.start_link(isolation: :os_process), 1) end
iso_ctx = isolated.()
iso_calls = Bench.n(5_000)

i1 =
  Bench.median(fn ->
    Bench.sequential(iso_calls, fn -> Py.Context.call(iso_ctx, :math, :sqrt, [2.0]) end)
  end) / iso_calls * 1.0e6

figures = [Bench.emit(%{id: "I1", value: i1, unit: "us/call"}) | figures]
iso_trips = Bench.n(300)

i4 =
  Bench.median(fn ->
    Bench.sequential(iso_trips, fn -> Py.Context.call(iso_ctx, :builtins, :bytes, [payload]) end)
  end)

figures = [Bench.emit(%{id: "I4", value: iso_trips * 1.0 / i4, unit: "MB/s"}) | figures]
Py.Context.stop(iso_ctx)

i8 =
  Bench.median(fn ->
    Bench.seconds(fn -> isolated.() |> Py.Context.stop() end)
  end)

figures = [Bench.emit(%{id: "I8", value: i8 * 1000, unit: "ms/context"}) | figures]

# W1L, W2L (1 and 64 callers), W7L: W1, W2 and W7 while two OS processes
# outside the VM run plain busy loops (one per core, nice 0), started and
# stopped here. Five runs each; the median, and the worst run (the highest
# latency, the lowest throughput) as `<id>_worst`.
figures =
  Bench.loaded(fn ->
    runs = fn fun -> Enum.sort(for _ <- 1..5, do: fun.()) end

    w1l =
      runs.(fn ->
        Bench.sequential(calls, fn -> Py.call(:math, :sqrt, [2.0]) end) / calls * 1.0e6
      end)

    w2l =
      for callers <- [1, 64] do
        per = div(total, callers)

        {callers,
         runs.(fn ->
           secs =
             Bench.seconds(fn ->
               1..callers
               |> Enum.map(fn _ ->
                 Task.async(fn ->
                   Bench.sequential(per, fn -> Py.call(:math, :sqrt, [2.0]) end)
                 end)
               end)
               |> Enum.each(&Task.await(&1, :infinity))
             end)

           per * callers / secs
         end)}
      end

    w7l =
      runs.(fn ->
        Bench.seconds(fn ->
          {:ok, nil} = Py.eval("callbacks(n)", %{n: callbacks}, timeout: :infinity)
        end) / callbacks * 1.0e6
      end)

    latency = fn id, sorted, unit ->
      [
        Bench.emit(%{id: id, value: Enum.at(sorted, 2), unit: unit}),
        Bench.emit(%{id: "#{id}_worst", value: List.last(sorted), unit: unit})
      ]
    end

    w1l_figures = latency.("W1L", w1l, "us/call")

    w2l_figures =
      Enum.flat_map(w2l, fn {callers, sorted} ->
        [
          Bench.emit(%{id: "W2L", callers: callers, value: Enum.at(sorted, 2), unit: "calls/s"}),
          Bench.emit(%{id: "W2L_worst", callers: callers, value: hd(sorted), unit: "calls/s"})
        ]
      end)

    # (figures are kept newest first)
    Enum.reverse(w1l_figures ++ w2l_figures ++ latency.("W7L", w7l, "us/callback"))
  end) ++ figures

# Extra workloads (not in shared/bench-workloads.md): channels and buffers.
# Python runs on a context of its own; Elixir feeds it from this process.
{:ok, streamer} = Py.Context.start_link()

:ok =
  Py.Context.exec(streamer, """
  import erlang

  def echo(ch, pid):
      erlang.send(pid, "ready")
      n = 0
      for m in ch:
          erlang.send(pid, m)
          n += 1
      return n

  def count(ch, pid):
      erlang.send(pid, "ready")
      n = 0
      for m in ch:
          n += 1
      return n

  def read_chunks(buf, pid, size):
      erlang.send(pid, "ready")
      n = 0
      while True:
          data = buf.read(size)
          if not data:
              return n
          n += len(data)

  def read_views(buf, pid):
      erlang.send(pid, "ready")
      n = 0
      for view in buf.views():
          n += len(view)
      return n
  """)

# Starts `expr` on the streamer, waits until it runs, times `feed`, then
# waits for the Python result; returns seconds.
stream_run = fn expr, bindings, feed ->
  me = self()
  bindings = Map.put(bindings, "pid", me)

  task = Task.async(fn -> Py.Context.eval(streamer, expr, bindings, timeout: :infinity) end)

  receive do
    "ready" -> :ok
  end

  Bench.seconds(fn ->
    feed.()
    {:ok, _} = Task.await(task, :infinity)
  end)
end

messages = Bench.n(20_000)

figures =
  Enum.reduce([{64, "64B"}, {1024, "1KiB"}, {16_384, "16KiB"}], figures, fn {size, label}, acc ->
    # Not UTF-8, so they stay bytes in Python and come back as binaries.
    payload = <<255>> <> :crypto.strong_rand_bytes(size - 1)

    # C1: Elixir -> Python -> Elixir (erlang.send back), pipelined.
    c1 =
      Bench.median(fn ->
        ch = Py.Channel.new()

        stream_run.("echo(ch, pid)", %{"ch" => ch}, fn ->
          for _ <- 1..messages, do: :ok = Py.Channel.send(ch, payload)
          for _ <- 1..messages, do: receive(do: (^payload -> :ok))
          Py.Channel.close(ch)
        end)
      end)

    # C2: Elixir -> Python only; Python counts.
    c2 =
      Bench.median(fn ->
        ch = Py.Channel.new()

        stream_run.("count(ch, pid)", %{"ch" => ch}, fn ->
          for _ <- 1..messages, do: :ok = Py.Channel.send(ch, payload)
          Py.Channel.close(ch)
        end)
      end)

    [
      Bench.emit(%{id: "C2_#{label}", value: messages / c2, unit: "msgs/s"}),
      Bench.emit(%{id: "C1_#{label}", value: messages / c1, unit: "round trips/s"})
      | acc
    ]
  end)

# B1: 1 MiB chunks through a buffer; Python read(1 MiB) (one copy each).
# B1_views: the same, read as memoryviews (no copy). 256 MiB per run, from
# 64 distinct random chunks.
chunks = for _ <- 1..64, do: :crypto.strong_rand_bytes(1024 * 1024)
mib = Bench.n(256)

buffer_feed = fn buf ->
  fn ->
    chunks |> Stream.cycle() |> Enum.take(mib) |> Enum.each(&(:ok = Py.Buffer.write(buf, &1)))
    Py.Buffer.close(buf)
  end
end

b1 =
  Bench.median(fn ->
    buf = Py.Buffer.new()

    stream_run.(
      "read_chunks(buf, pid, 1024 * 1024)",
      %{"buf" => buf},
      buffer_feed.(buf)
    )
  end)

b1_views =
  Bench.median(fn ->
    buf = Py.Buffer.new()
    stream_run.("read_views(buf, pid)", %{"buf" => buf}, buffer_feed.(buf))
  end)

figures = [Bench.emit(%{id: "B1", value: mib * 1.048576 / b1, unit: "MB/s"}) | figures]

figures = [
  Bench.emit(%{id: "B1_views", value: mib * 1.048576 / b1_views, unit: "MB/s"}) | figures
]

IO.puts("# load average at the end: #{Bench.load_average()}")
IO.puts("\n| id | callers | value | unit | mode | python |\n|---|---|---|---|---|---|")

for f <- Enum.reverse(figures) do
  value = :erlang.float_to_binary(f.value * 1.0, decimals: 3)

  IO.puts(
    "| #{f.id} | #{Map.get(f, :callers, "")} | #{value} | #{f.unit} | #{f.mode} | #{f.python} |"
  )
end
