#!/usr/bin/env bash
# Installs what `make demo` / `make test` need and is quick when it is all
# there: Elixir + Erlang (apt, when `mix` is missing), and project-local
# Python venvs with numpy (.venv from python3, with uv; .venv-py310,
# .venv-py312 and .venv-py313 from pyenv's 3.10, 3.12 and 3.13).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*"; }

if ! command -v mix >/dev/null 2>&1; then
  say "installing Elixir and Erlang from Debian (mix is missing)"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq elixir erlang-dev >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo is not on PATH. py builds its NIF with Rust: install it (https://rustup.rs or apt-get install cargo) and retry." >&2
  exit 1
fi

# make_venv DIR PYTHON: a venv with numpy, made once.
make_venv() {
  local dir=$1 python=$2
  if [ -x "$dir/bin/python" ] && "$dir/bin/python" -c "import numpy" >/dev/null 2>&1; then
    return 0
  fi
  say "creating $dir from $python (with numpy)"
  rm -rf "$dir"
  "$python" -m venv "$dir"
  "$dir/bin/python" -m pip install --disable-pip-version-check -q numpy
}

make_venv .venv "$(command -v python3)"

# uv, for the test of Py.install's uv installer (pip is tested too). It is
# not put on PATH: scripts/test.sh passes its path as PY_TEST_UV.
if [ ! -x .venv/bin/uv ]; then
  say "installing uv into .venv (for the Py.install tests)"
  .venv/bin/python -m pip install --disable-pip-version-check -q uv ||
    say "WARNING: uv could not be installed; the uv installer test will be SKIPPED"
fi

# The other lanes of `make test`, from pyenv's shared builds when present
# (scripts/test.sh skips a missing one loudly).
for version in 3.10 3.12 3.13; do
  if python=$(bash scripts/find_python.sh "$version" 2>/dev/null); then
    make_venv ".venv-py${version/./}" "$python"
  fi
done
