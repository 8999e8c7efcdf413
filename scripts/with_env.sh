#!/usr/bin/env bash
# Runs a command with the tools setup.sh may have installed on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
exec "$@"
