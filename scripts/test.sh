#!/usr/bin/env bash
# The test suite, once per Python lane, each lane with its own build path:
#   py311: the project venv (.venv, from python3), plus the tests tagged
#     :network (PyPI), :notebook (Mix.install) and :packaging (precompiled NIFs)
#   py310, py312, py313: the pyenv venvs (.venv-py310, ...); each skipped
#     loudly when absent
#   py313-parallel: the same Python with the parallel pool built in
#     (PY_PARALLEL=1), plus the VM exit check (test/exit_check.sh)
# Extra arguments go to `mix test`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export MIX_ENV=test
# uv for the Py.install uv test (setup.sh installs it into .venv).
[ -x .venv/bin/uv ] && export PY_TEST_UV="$PWD/.venv/bin/uv"

failed=()

lane() {
  local name=$1 python=$2
  shift 2
  echo
  echo "==> lane $name: $("$python" --version 2>&1) ($python)${PY_PARALLEL:+, parallel pool}"
  if ! PY_PYTHON="$python" MIX_BUILD_PATH="$PWD/_build/test-$name" mix test "$@"; then
    failed+=("$name")
  fi
}

# The tests that need PyPI (:network), build py with Mix.install
# (:notebook) or start many VMs for the precompiled NIFs (:packaging) run
# once, in this lane: they do not depend on the Python lane.
lane py311 "$PWD/.venv/bin/python" --include network --include notebook --include packaging "$@"

# The oldest supported Python and the one between (worker mode).
for version in 310 312; do
  if [ -x ".venv-py$version/bin/python" ]; then
    lane "py$version" "$PWD/.venv-py$version/bin/python" "$@"
  else
    echo
    echo "*** SKIPPED LANE py$version: no Python ${version:0:1}.${version:1} with a shared libpython under ~/.pyenv/versions ***"
  fi
done

if [ -x .venv-py313/bin/python ]; then
  lane py313 "$PWD/.venv-py313/bin/python" "$@"
  PY_PARALLEL=1 lane py313-parallel "$PWD/.venv-py313/bin/python" "$@"
  if [ $# -eq 0 ]; then
    echo
    echo "==> VM exit check: 50 runs that stop the VM with CPU-bound pool calls in flight"
    if ! PY_PARALLEL=1 PY_PYTHON="$PWD/.venv-py313/bin/python" \
      MIX_BUILD_PATH="$PWD/_build/test-py313-parallel" bash test/exit_check.sh 50; then
      failed+=("exit-check")
    fi
  fi
else
  echo
  echo "*** SKIPPED LANES py313, py313-parallel and the VM exit check: no Python 3.13 with a shared libpython under ~/.pyenv/versions ***"
fi

if [ $# -eq 0 ]; then
  echo
  if ! bash scripts/check_free_threaded.sh; then
    failed+=("free-threaded-check")
  fi
fi

if [ ${#failed[@]} -gt 0 ]; then
  echo "*** FAILED LANES: ${failed[*]} ***"
  exit 1
fi
echo "==> all lanes passed"
