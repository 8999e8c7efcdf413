#!/usr/bin/env bash
# find_python.sh X.Y: prints a pyenv-managed python X.Y with a shared
# libpython, or fails.
set -euo pipefail
want=$1
for dir in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$want".*; do
  [ -x "$dir/bin/python3" ] || continue
  ls "$dir"/lib/libpython"$want"*.so* >/dev/null 2>&1 || continue
  echo "$dir/bin/python3"
  exit 0
done
exit 1
