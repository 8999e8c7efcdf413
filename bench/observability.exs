# Costs of the observability features, measured inside Python with timeit
# (ns per operation, best of 5), plus the shared-state round trips.
#   mix run bench/observability.exs     (PY_PYTHON picks the Python)
# Quote ratios against "plain call": the machines are shared and noisy.

timing = """
import timeit, logging, erlang
def plain(x): return x
traced = erlang.trace("t")(plain)
def with_span():
    with erlang.Span("s"):
        pass
log = logging.getLogger("bench")
def per_op(stmt, n):
    return round(min(timeit.repeat(stmt, number=n, repeat=5, globals=globals())) / n * 1e9)
"""

:ok = Py.exec(timing)
measure = fn stmt, n -> Py.eval!("per_op(#{inspect(stmt)}, #{n})") end

Py.Trace.disable()

off = %{
  plain: measure.("plain(1)", 200_000),
  decorated: measure.("traced(1)", 200_000),
  span: measure.("with_span()", 200_000)
}

Py.Trace.enable()
on = %{decorated: measure.("traced(1)", 20_000), span: measure.("with_span()", 20_000)}
Py.Trace.disable()

Py.Logger.set_level(:warning)
:ok = Py.exec("pass")
filtered = measure.("log.debug('x')", 200_000)
# The Python side of a forwarded record; Elixir's Logger drops it (level
# :error), so the console stays quiet.
previous = Logger.level()
Logger.configure(level: :error)
forwarded = measure.("log.warning('x')", 20_000)
Logger.configure(level: previous)

incr_py = measure.("erlang.state_incr('bench')", 20_000)
{us, _} = :timer.tc(fn -> for _ <- 1..100_000, do: Py.State.incr("bench_ex") end)

rows = [
  {"plain Python call", off.plain},
  {"@erlang.trace call, tracing off", off.decorated},
  {"with erlang.Span, tracing off", off.span},
  {"@erlang.trace call, tracing on", on.decorated},
  {"with erlang.Span, tracing on", on.span},
  {"logger.debug below the level", filtered},
  {"logger.warning forwarded to Logger", forwarded},
  {"erlang.state_incr from Python", incr_py},
  {"Py.State.incr from Elixir", round(us * 1000 / 100_000)}
]

IO.puts("| operation | ns |\n|---|---|")
for {what, ns} <- rows, do: IO.puts("| #{what} | #{ns} |")
