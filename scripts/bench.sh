#!/usr/bin/env bash
# The benchmark: worker mode on the project venv's Python (3.11), the
# parallel pool on the 3.13 venv (when there is one), then Python 3.14 in
# worker and parallel mode inside the Debian sid root (Elixir 1.20, OTP 29;
# made here when `make test` has not made it yet). Each run prints its JSON
# lines and table. BENCH_ONLY="worker parallel current-worker
# current-parallel" picks runs.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export MIX_ENV=prod
source scripts/roots.sh

only=${BENCH_ONLY:-worker parallel current-worker current-parallel}
want() { [[ " $only " == *" $1 "* ]]; }

if want worker; then
  echo "==> worker mode"
  PY_PYTHON="$PWD/.venv/bin/python" MIX_BUILD_PATH="$PWD/_build/bench-worker" mix run bench/run.exs
fi

if want parallel; then
  if [ -x .venv-py313/bin/python ]; then
    echo
    echo "==> parallel pool"
    PY_PARALLEL=1 PY_PYTHON="$PWD/.venv-py313/bin/python" \
      MIX_BUILD_PATH="$PWD/_build/bench-parallel" mix run bench/run.exs
  else
    echo "*** SKIPPED parallel-pool bench: no Python 3.13 venv (.venv-py313) ***"
  fi
fi

if want current-worker || want current-parallel; then
  why=$(root_why_not)
  if [ -z "$why" ] && ! setup_root current; then
    why="the Debian sid root could not be set up (see .roots/current.log)"
  fi
  if [ -n "$why" ]; then
    echo "*** SKIPPED Python 3.14 bench: $why ***"
    exit 0
  fi
  for mode in worker parallel; do
    want "current-$mode" || continue
    echo
    echo "==> Python 3.14, $mode (Debian sid root: Elixir 1.20, OTP 29)"
    parallel=""
    [ "$mode" = parallel ] && parallel=1
    root_exec current env MIX_ENV=prod PY_PARALLEL="$parallel" \
      PY_PYTHON=/opt/venvs/py314/bin/python MIX_BUILD_PATH="$PWD/_build/bench-current-$mode" \
      mix run bench/run.exs
  done
fi
