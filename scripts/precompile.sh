#!/usr/bin/env bash
# make precompile: every precompiled NIF this machine can build, into one
# folder with one checksum file over all of them (docs/packaging.md):
#   - on the host, `mix py.precompile`: python3 and pyenv's 3.10-3.13
#     (default, and parallel for 3.13);
#   - in the Debian sid root (scripts/roots.sh, made by `make test`),
#     Python 3.14 and 3.15, default and parallel.
# OUT (default _build/precompiled) receives the tarballs and checksum-py.exs.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
source scripts/roots.sh
out=$(realpath -m "${OUT:-_build/precompiled}")
mkdir -p "$out"

MIX_ENV=prod mix py.precompile --out "$out" --checksum-file "$out/checksum-py.exs"

if [ -f "$ROOTS_DIR/current/.py-root" ] && [ -z "$(root_why_not)" ]; then
  root_exec current env MIX_ENV=prod MIX_BUILD_PATH="$PWD/_build/precompile-current" \
    mix py.precompile --python /usr/bin/python3.14 --python /usr/bin/python3.15 \
    --out "$out" --checksum-file "$out/checksum-py.exs"
else
  echo "*** SKIPPED Python 3.14 and 3.15: no Debian sid root in $ROOTS_DIR (make test makes it) ***"
fi

MIX_ENV=prod mix py.precompile --checksums-only --out "$out" --checksum-file "$out/checksum-py.exs"
