#!/usr/bin/env bash
# The VM exits cleanly while pool calls are in flight: N consecutive
# `mix run` processes each start 4 CPU-bound calls on the default pool and
# then stop the VM. Every one must exit with status 0 and no signal.
# Usage: exit_check.sh [N]   (environment as for `mix test`: PY_PYTHON, ...)
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-50}
export MIX_ENV=${MIX_ENV:-test}

script='
me = self()

for _ <- 1..4 do
  spawn(fn ->
    Process.group_leader(self(), me)
    Py.exec("print(\"started\")\nsum(i * i % 7 for i in range(50_000_000))", timeout: :infinity)
  end)
end

# Stop once Python is running calls on every pool context (each prints
# "started" to us, its group leader, before it loops).
for _ <- 1..min(4, Py.info().pool_size) do
  receive do
    {:io_request, from, reply_as, {:put_chars, :unicode, "started\n"}} ->
      send(from, {:io_reply, reply_as, :ok})
  end
end

System.stop(0)
Process.sleep(:infinity)
'

# Compile once, so that each run only starts the VM.
mix compile >/dev/null || exit 1

clean=0
for i in $(seq 1 "$runs"); do
  mix run --no-compile -e "$script" >/tmp/py_exit_check.log 2>&1
  status=$?
  if [ "$status" -eq 0 ]; then
    clean=$((clean + 1))
  else
    echo "run $i: exit status $status"
    tail -5 /tmp/py_exit_check.log
  fi
done
echo "exit check: $clean of $runs runs exited cleanly"
[ "$clean" -eq "$runs" ]
