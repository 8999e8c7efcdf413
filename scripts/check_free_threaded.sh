#!/usr/bin/env bash
# Free-threaded CPython (3.14t) is not installed on our machines, so this
# checks that the crate's free-threaded cfg paths compile, with a pyo3
# interpreter config that describes such a Python (nothing is linked).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
config=$(mktemp)
trap 'rm -f "$config"' EXIT
cat >"$config" <<'CFG'
implementation=CPython
version=3.14
shared=true
abi3=false
lib_name=python3.14t
lib_dir=/nonexistent
pointer_width=64
build_flags=Py_GIL_DISABLED
suppress_build_script_link_lines=false
CFG
for features in "" "parallel"; do
  echo "==> cargo check, free-threaded 3.14t config${features:+, features: $features}"
  PYO3_CONFIG_FILE="$config" cargo check --quiet --release \
    --manifest-path native/py_nif/Cargo.toml \
    --target-dir _build/free-threaded-check ${features:+--features "$features"}
done
