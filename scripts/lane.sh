#!/usr/bin/env bash
# lane.sh KIND NAME PYTHON [ARGS...]: one lane of `make test`, run where it is
# called (on the host, or inside a Debian root through scripts/roots.sh).
#   KIND test:       `mix test ARGS` with PY_PYTHON=PYTHON in _build/test-NAME
#   KIND exit-check: test/exit_check.sh ARGS (the VM stops with calls in flight)
# PY_PARALLEL=1 builds the parallel pool in; LANE_BUILD names another lane
# whose build path to use (the exit check reuses its test lane's). Appends one line
# "NAME|Elixir X|OTP Y|Python Z|mode|result" to $PY_LANE_RESULTS.
set -uo pipefail
cd "$(dirname "$0")/.."
kind=$1 name=$2 python=$3
shift 3
export MIX_ENV=test PY_PYTHON="$python" MIX_BUILD_PATH="$PWD/_build/test-${LANE_BUILD:-$name}"

mode=worker
[ "${PY_PARALLEL:-}" = 1 ] && mode=parallel
versions=$(elixir -e 'IO.write("Elixir #{System.version()}|OTP #{System.otp_release()}")' 2>/dev/null) ||
  versions="Elixir ?|OTP ?"
python_version=$("$python" -c 'import platform; print(platform.python_version())' 2>/dev/null) ||
  python_version="?"

echo
echo "==> lane $name ($kind): ${versions//|/, }, Python $python_version ($python), $mode"
case $kind in
  # Warnings are errors, in the library and in the tests, on every stack.
  test) mix compile --warnings-as-errors && mix test --warnings-as-errors "$@" ;;
  exit-check) bash test/exit_check.sh "$@" ;;
  *) echo "lane.sh: unknown kind $kind" >&2; false ;;
esac
status=$?

result=passed
[ "$status" -eq 0 ] || result="FAILED (exit status $status)"
echo "$name|$versions|Python $python_version|$mode|$result" >>"${PY_LANE_RESULTS:-/dev/null}"
exit "$status"
