#!/usr/bin/env bash
# Installs what `make demo` / `make test` need and is quick when it is all
# there: Elixir + Erlang (apt, when `mix` is missing), and project-local
# Python venvs with numpy (.venv from python3; .venv-py313 from pyenv 3.13).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*"; }

if ! command -v mix >/dev/null 2>&1; then
  say "installing Elixir and Erlang from Debian (mix is missing)"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq elixir erlang-dev >/dev/null
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

if py313=$(bash scripts/find_python.sh 3.13 2>/dev/null); then
  make_venv .venv-py313 "$py313"
fi
