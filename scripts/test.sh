#!/usr/bin/env bash
# The test suite, once per Python lane, each lane with its own build path:
#   py311: the project venv (.venv, from python3)
#   py313: the pyenv 3.13 venv (.venv-py313); skipped loudly when absent
# Extra arguments go to `mix test`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export MIX_ENV=test

failed=()

lane() {
  local name=$1 python=$2
  shift 2
  echo
  echo "==> lane $name: $("$python" --version 2>&1) ($python)"
  if ! PY_PYTHON="$python" MIX_BUILD_PATH="$PWD/_build/test-$name" mix test "$@"; then
    failed+=("$name")
  fi
}

lane py311 "$PWD/.venv/bin/python" "$@"

if [ -x .venv-py313/bin/python ]; then
  lane py313 "$PWD/.venv-py313/bin/python" "$@"
else
  echo
  echo "*** SKIPPED LANE py313: no Python 3.13 with a shared libpython under ~/.pyenv/versions ***"
fi

if [ ${#failed[@]} -gt 0 ]; then
  echo "*** FAILED LANES: ${failed[*]} ***"
  exit 1
fi
echo "==> all lanes passed"
