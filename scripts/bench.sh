#!/usr/bin/env bash
# The benchmark: worker mode on the project venv's Python, then the
# parallel pool on the 3.13 venv (when there is one). Each run prints its
# JSON lines and table.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export MIX_ENV=prod

echo "==> worker mode"
PY_PYTHON="$PWD/.venv/bin/python" MIX_BUILD_PATH="$PWD/_build/bench-worker" mix run bench/run.exs

if [ -x .venv-py313/bin/python ]; then
  echo
  echo "==> parallel pool"
  PY_PARALLEL=1 PY_PYTHON="$PWD/.venv-py313/bin/python" \
    MIX_BUILD_PATH="$PWD/_build/bench-parallel" mix run bench/run.exs
else
  echo "*** SKIPPED parallel-pool bench: no Python 3.13 venv (.venv-py313) ***"
fi
