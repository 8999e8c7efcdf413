#!/usr/bin/env bash
# The test suite, once per lane; each lane has its own build path and ends
# with a line in the summary naming its Elixir, OTP and Python.
#
# On the host (Debian 12: Elixir 1.14, OTP 25), with pyenv's Pythons:
#   py311           the project venv (.venv), plus the tests tagged :network
#                   (PyPI), :notebook (Mix.install) and :packaging
#   py310, py312    worker mode (skipped loudly when the Python is absent)
#   py313, py313-parallel, and the VM exit check on py313-parallel
# In Debian roots (scripts/roots.sh; made once under .roots/, reused after):
#   stable-*        Debian trixie: Elixir 1.18, OTP 27, Python 3.13,
#                   worker and parallel
#   current-*       Debian sid: Elixir 1.20, OTP 29, Python 3.14 and 3.15,
#                   worker and parallel; :packaging and :notebook in
#                   current-py314, with a prod build (warnings as errors)
#                   first; the VM exit check on current-py314-parallel
# Then the free-threaded compile check.
#
# Extra arguments go to every `mix test` (the exit checks are then left
# out). PY_LANES="current-* py311" runs only the lanes matching those
# patterns. A lane that cannot be set up is SKIPPED with a banner and named
# in the summary; the run fails when any lane fails.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
source scripts/roots.sh

# uv for the Py.install uv test (setup.sh installs it into .venv).
[ -x .venv/bin/uv ] && export PY_TEST_UV="$PWD/.venv/bin/uv"
export PY_LANE_RESULTS="$PWD/_build/lane-results.txt"
export PY_LANE_FAILURES="$PWD/_build/lane-failures.txt"
mkdir -p _build
: >"$PY_LANE_RESULTS"
: >"$PY_LANE_FAILURES"
started=$(date +%s)

wanted() {
  local name=$1 pattern
  [ -z "${PY_LANES:-}" ] && return 0
  for pattern in $PY_LANES; do
    # shellcheck disable=SC2053
    [[ $name == $pattern ]] && return 0
  done
  return 1
}

skip() {
  echo
  echo "*** SKIPPED LANE $1: $2 ***"
  echo "$1|-|-|-|-|SKIPPED: $2" >>"$PY_LANE_RESULTS"
}

host_lane() {
  local kind=$1 name=$2
  wanted "$name" || return 0
  bash scripts/lane.sh "$@" || true
}

root_lane() {
  local root=$1 kind=$2 name=$3
  shift
  wanted "$name" || return 0
  if [ -n "${ROOT_BROKEN[$root]:-}" ]; then
    skip "$name" "${ROOT_BROKEN[$root]}"
    return 0
  fi
  root_exec "$root" env PY_PARALLEL="${PY_PARALLEL:-}" PY_LANE_RESULTS="$PY_LANE_RESULTS" \
    PY_LANE_FAILURES="$PY_LANE_FAILURES" PY_PROD_CHECK="${PY_PROD_CHECK:-}" LANE_BUILD="${LANE_BUILD:-}" \
    PY_LANE_CARGO_TARGET="$PWD/_build/cargo-$root" bash scripts/lane.sh "$@" || true
}

# Roots are set up in the background while the host lanes run.
declare -A ROOT_BROKEN=()
root_names=()
declare -A ROOT_LANES=(
  [stable]="stable-py313 stable-py313-parallel"
  [current]="current-py314 current-py314-parallel current-py314-exit-check current-py315 current-py315-parallel"
)
for name in stable current; do
  for lane_name in ${ROOT_LANES[$name]}; do
    if wanted "$lane_name"; then
      root_names+=("$name")
      break
    fi
  done
done
why_not=$(root_why_not)
declare -A ROOT_JOB=()
for name in "${root_names[@]}"; do
  if [ -n "$why_not" ]; then
    ROOT_BROKEN[$name]=$why_not
  else
    mkdir -p "$ROOTS_DIR"
    setup_root "$name" >"$ROOTS_DIR/$name.setup.out" 2>&1 &
    ROOT_JOB[$name]=$!
  fi
done

# Host lanes. The :network, :notebook and :packaging tests do not depend
# on the Python lane: they run once here (and once on the newest stack).
host_lane test py311 "$PWD/.venv/bin/python" --include network --include notebook \
  --include packaging "$@"

for version in 3.10 3.12 3.13; do
  venv=".venv-py${version/./}"
  if [ ! -x "$venv/bin/python" ]; then
    for name in "py${version/./}" "py${version/./}-parallel"; do
      [ "$version" = 3.13 ] || [ "$name" = "py${version/./}" ] || continue
      wanted "$name" && skip "$name" "no Python $version with a shared libpython under ~/.pyenv/versions"
    done
    continue
  fi
  host_lane test "py${version/./}" "$PWD/$venv/bin/python" "$@"
done
if [ -x .venv-py313/bin/python ]; then
  PY_PARALLEL=1 host_lane test py313-parallel "$PWD/.venv-py313/bin/python" "$@"
  if [ $# -eq 0 ]; then
    PY_PARALLEL=1 LANE_BUILD=py313-parallel host_lane exit-check py313-exit-check \
      "$PWD/.venv-py313/bin/python" 50
  fi
fi

# Root lanes.
for name in "${root_names[@]}"; do
  if [ -n "${ROOT_JOB[$name]:-}" ]; then
    if wait "${ROOT_JOB[$name]}"; then
      cat "$ROOTS_DIR/$name.setup.out"
    else
      cat "$ROOTS_DIR/$name.setup.out"
      ROOT_BROKEN[$name]="the Debian ${ROOT_SUITE[$name]} root could not be set up: $(tail -n 1 "$ROOTS_DIR/$name.setup.out")"
    fi
  fi
done

root_lane stable test stable-py313 /opt/venvs/py313/bin/python "$@"
PY_PARALLEL=1 root_lane stable test stable-py313-parallel /opt/venvs/py313/bin/python "$@"

PY_PROD_CHECK=1 root_lane current test current-py314 /opt/venvs/py314/bin/python \
  --include notebook --include packaging "$@"
PY_PARALLEL=1 root_lane current test current-py314-parallel /opt/venvs/py314/bin/python "$@"
if [ $# -eq 0 ]; then
  PY_PARALLEL=1 LANE_BUILD=current-py314-parallel root_lane current exit-check \
    current-py314-exit-check /opt/venvs/py314/bin/python 50
fi
root_lane current test current-py315 /opt/venvs/py315/bin/python "$@"
PY_PARALLEL=1 root_lane current test current-py315-parallel /opt/venvs/py315/bin/python "$@"

failed=()
skipped=()
if [ $# -eq 0 ] && wanted free-threaded-check; then
  echo
  if bash scripts/check_free_threaded.sh; then
    echo "free-threaded-check|-|-|Python 3.14t (compile only)|free_threaded|passed" >>"$PY_LANE_RESULTS"
  else
    echo "free-threaded-check|-|-|Python 3.14t (compile only)|free_threaded|FAILED" >>"$PY_LANE_RESULTS"
  fi
fi

echo
echo "==> summary ($(( ($(date +%s) - started) / 60 )) min $(( ($(date +%s) - started) % 60 )) s)"
column -t -s '|' -N LANE,ELIXIR,OTP,PYTHON,MODE,RESULT "$PY_LANE_RESULTS" 2>/dev/null ||
  cat "$PY_LANE_RESULTS"
while IFS='|' read -r name _ _ _ _ result; do
  case $result in
    passed) ;;
    SKIPPED*) skipped+=("$name") ;;
    *) failed+=("$name") ;;
  esac
done <"$PY_LANE_RESULTS"

if [ ! -s "$PY_LANE_RESULTS" ]; then
  echo "*** NO LANE RAN (PY_LANES=${PY_LANES:-}) ***"
  exit 1
fi
if [ ${#skipped[@]} -gt 0 ]; then
  echo "*** SKIPPED LANES: ${skipped[*]} ***"
fi
passed=$(grep -c '|passed$' "$PY_LANE_RESULTS" || true)
if [ -s "$PY_LANE_FAILURES" ]; then
  echo
  echo "==> what failed (full logs in _build/lane-NAME.log)"
  cat "$PY_LANE_FAILURES"
  echo
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "*** FAILED LANES: ${failed[*]} ***"
fi
echo "lanes: $passed passed, ${#failed[@]} failed, ${#skipped[@]} skipped"
[ ${#failed[@]} -eq 0 ]
