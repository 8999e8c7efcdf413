#!/usr/bin/env bash
# lane.sh KIND NAME PYTHON [ARGS...]: one lane of `make test`, run where it is
# called (on the host, or inside a Debian root through scripts/roots.sh).
#   KIND test:       `mix test ARGS` with PY_PYTHON=PYTHON in _build/test-NAME
#   KIND exit-check: test/exit_check.sh ARGS (the VM stops with calls in flight)
# PY_PARALLEL=1 builds the parallel pool in; PY_PROD_CHECK=1 compiles for
# prod first (see prod_check); LANE_BUILD names another lane
# whose build path to use (the exit check reuses its test lane's);
# PY_LANE_CARGO_TARGET, the cargo target dir. Appends one line
# "NAME|Elixir X|OTP Y|Python Z|mode|result" to $PY_LANE_RESULTS.
set -uo pipefail
cd "$(dirname "$0")/.."
kind=$1 name=$2 python=$3
shift 3
export MIX_ENV=test PY_PYTHON="$python" MIX_BUILD_PATH="$PWD/_build/test-${LANE_BUILD:-$name}"
# One cargo target dir for the lanes of one machine or root (test.sh passes
# the root's): a lane then rebuilds only pyo3 and the crate for its Python,
# not every dependency, and a prod check after its test build none of it.
export CARGO_TARGET_DIR="${PY_LANE_CARGO_TARGET:-$PWD/_build/cargo-host}"

mode=worker
[ "${PY_PARALLEL:-}" = 1 ] && mode=parallel
versions=$(elixir -e 'IO.write("Elixir #{System.version()}|OTP #{System.otp_release()}")' 2>/dev/null) ||
  versions="Elixir ?|OTP ?"
python_version=$("$python" -c 'import platform; print(platform.python_version())' 2>/dev/null) ||
  python_version="?"

echo
echo "==> lane $name ($kind): ${versions//|/, }, Python $python_version ($python), $mode"
# PY_PROD_CHECK=1: first a prod build, warnings as errors, as an app that
# depends on py compiles it (protocols consolidated without the test
# suite's implementations, which Elixir 1.20's type checker sees).
prod_check() {
  [ "${PY_PROD_CHECK:-}" = 1 ] || return 0
  echo "==> $name: MIX_ENV=prod mix compile --warnings-as-errors"
  MIX_ENV=prod MIX_BUILD_PATH="$PWD/_build/prod-check-$name" mix compile --warnings-as-errors
}

log="$PWD/_build/lane-$name.log"
mkdir -p _build
case $kind in
  # Warnings are errors, in the library and in the tests, on every stack.
  test) { prod_check && mix compile --warnings-as-errors && mix test --warnings-as-errors "$@"; } 2>&1 | tee "$log" ;;
  exit-check) bash test/exit_check.sh "$@" 2>&1 | tee "$log" ;;
  *) echo "lane.sh: unknown kind $kind" >&2; false ;;
esac
status=${PIPESTATUS[0]}

# What failed, kept short for the summary (scripts/test.sh prints it last,
# where a truncated CI log still shows it): each failing test's header and
# the first lines of its report, and any warning or crash line.
if [ "$status" -ne 0 ] && [ -n "${PY_LANE_FAILURES:-}" ]; then
  {
    echo "--- $name (exit status $status)"
    awk '
      /^  [0-9]+\) / { show = 12 }
      /warning:|\*\* \(|Segmentation|core dumped|Killed|timed out/ && !show { print; next }
      show > 0 { print; show-- }
    ' "$log" | head -n 60
  } >>"$PY_LANE_FAILURES"
fi

result=passed
[ "$status" -eq 0 ] || result="FAILED (exit status $status)"
echo "$name|$versions|Python $python_version|$mode|$result" >>"${PY_LANE_RESULTS:-/dev/null}"
exit "$status"
