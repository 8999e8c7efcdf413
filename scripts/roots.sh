# Debian roots for the test lanes of newer stacks than the host's (sourced by
# scripts/test.sh, scripts/bench.sh and scripts/precompile.sh). The roots
# themselves (suite, Pythons, packages) are defined at the end; setup_root
# NAME makes one ready.
#
# A root is a minbase `debootstrap` of one Debian suite under .roots/NAME
# (ignored by git), with the packages a lane needs installed by apt inside
# it. It is made once and reused: .roots/NAME/.py-root holds what it was made
# with, and a root whose suite or package list changed is updated (new
# packages) or made again (new suite).
#
# Commands run in a root through root_exec, in a mount and PID namespace of
# their own (unshare): the bind mounts (/dev, the project, the Rust
# toolchain) and every process started inside end with the command, whatever
# way it ends, so no mount outlives a lane and no `rm -rf` of a root can
# reach the host's files through one.

ROOTS_DIR=${PY_ROOTS_DIR:-$PWD/.roots}
DEBIAN_MIRROR=${PY_DEBIAN_MIRROR:-http://deb.debian.org/debian}
ROOTS_SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# sid's Release file can be past its Valid-Until date.
ROOT_APT=(apt-get -o Acquire::Check-Valid-Until=false -o Acquire::Retries=3 -o Dpkg::Use-Pty=0)

root_say() { printf '==> %s\n' "$*"; }

# root_why_not: why roots cannot be made on this machine (empty when they can).
root_why_not() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "making a Debian root needs root (debootstrap, chroot, mount)"
  elif ! command -v unshare >/dev/null 2>&1 || ! command -v chroot >/dev/null 2>&1; then
    echo "unshare and chroot (util-linux, coreutils) are missing"
  elif ! unshare --mount --pid --fork true 2>/dev/null; then
    echo "this machine does not allow mount and PID namespaces (unshare failed)"
  fi
}

# root_mounts_under DIR: the mount points under DIR in this namespace.
root_mounts_under() {
  awk -v d="$1" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts
}

# root_remove NAME: deletes a root, after making sure nothing is mounted in it.
root_remove() {
  local dir="$ROOTS_DIR/$1" mounted
  [ -e "$dir" ] || return 0
  mounted=$(root_mounts_under "$dir")
  if [ -n "$mounted" ]; then
    echo "error: refusing to delete $dir: mounted inside it: $mounted" >&2
    return 1
  fi
  rm -rf --one-file-system "$dir"
}

# root_host_install COMMAND: installs the host's Debian package of that name
# when the command is missing. scripts/test.sh sets its roots up at the
# same time, and on a fresh machine each would install debootstrap: one at
# a time (flock), each waiting for dpkg's lock (another apt-get may hold it)
# rather than failing at once, so no lane is skipped for that.
root_host_install() {
  local package=$1
  command -v "$package" >/dev/null 2>&1 && return 0
  mkdir -p "$ROOTS_DIR"
  (
    flock 9
    # Installed by the setup this one waited for.
    command -v "$package" >/dev/null 2>&1 && exit 0
    local apt=(apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq "$package" ||
      { "${apt[@]}" update -qq &&
        DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq "$package"; }
  ) 9>"$ROOTS_DIR/.host-apt.lock"
}

# root_ensure NAME SUITE PACKAGE...: makes or updates the root; quick when it
# is already there. Its output goes to .roots/NAME.log.
root_ensure() {
  local name=$1 suite=$2
  shift 2
  local dir="$ROOTS_DIR/$name" log="$ROOTS_DIR/$name.log" want="$suite $*"
  local stamp="$dir/.py-root"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  mkdir -p "$ROOTS_DIR"
  : >"$log"
  if [ ! -f "$stamp" ] || [ "$(cut -d' ' -f1 "$stamp")" != "$suite" ]; then
    root_say "making the Debian $suite root .roots/$name (debootstrap; log in .roots/$name.log)"
    root_host_install debootstrap >>"$log" 2>&1 ||
      { echo "cannot install debootstrap (see $log)"; return 1; }
    root_remove "$name" || return 1
    rm -rf --one-file-system "$dir.new"
    debootstrap --variant=minbase "$suite" "$dir.new" "$DEBIAN_MIRROR" >>"$log" 2>&1 ||
      { echo "debootstrap $suite failed (see $log)"; return 1; }
    mv "$dir.new" "$dir"
  fi
  root_say "installing into .roots/$name: $*"
  root_exec "$name" env DEBIAN_FRONTEND=noninteractive "${ROOT_APT[@]}" update -qq >>"$log" 2>&1 &&
    root_exec "$name" env DEBIAN_FRONTEND=noninteractive "${ROOT_APT[@]}" install -y -qq \
      --no-install-recommends "$@" >>"$log" 2>&1 &&
    root_exec "$name" "${ROOT_APT[@]}" clean >>"$log" 2>&1 ||
    { echo "apt-get install in the $suite root failed (see $log)"; return 1; }
  echo "$want" >"$stamp"
}

# root_exec NAME COMMAND...: runs COMMAND inside the root, in the project's
# directory (bind-mounted at the same path), as root, with a clean
# environment: PATH, HOME=/root, LANG, the Rust toolchain of the host
# (read-only) and a CARGO_HOME of the root's own. Extra variables go through
# `env` in COMMAND.
root_exec() {
  local dir="$ROOTS_DIR/$1"
  shift
  unshare --mount --pid --fork --propagation private \
    bash "$ROOTS_SCRIPTS/root_enter.sh" "$dir" "$PWD" "$@"
}

# The Debian roots: suite, and the Pythons whose venvs each holds.
declare -A ROOT_SUITE=([stable]=trixie [current]=sid)
declare -A ROOT_PYTHONS=([stable]="3.13" [current]="3.14 3.15")
ROOT_COMMON=(elixir erlang-dev erlang-inets erlang-ssl erlang-public-key erlang-crypto
  erlang-eunit erlang-tools erlang-runtime-tools gcc libc6-dev ca-certificates)

# setup_root NAME: the root with its packages, and a venv with numpy (a
# wheel from PyPI) for each of its Pythons under /opt/venvs/pyXY.
setup_root() {
  local name=$1 version packages=("${ROOT_COMMON[@]}")
  for version in ${ROOT_PYTHONS[$name]}; do
    packages+=("python$version-venv" "python$version-dev" "libpython$version-dev")
  done
  root_ensure "$name" "${ROOT_SUITE[$name]}" "${packages[@]}" || return 1
  for version in ${ROOT_PYTHONS[$name]}; do
    local venv="/opt/venvs/py${version/./}"
    # (bin/python links to the root's /usr/bin/python3.X: test the venv's
    # own file from the host, and the interpreter inside the root.)
    if [ -f "$ROOTS_DIR/$name$venv/pyvenv.cfg" ]; then
      [ -f "$ROOTS_DIR/$name$venv/.no-numpy-wheel" ] && continue
      root_exec "$name" "$venv/bin/python" -c "import numpy" >/dev/null 2>&1 && continue
    fi
    root_say "creating $venv in .roots/$name from python$version (with numpy)"
    root_exec "$name" sh -c "rm -rf $venv && python$version -m venv $venv" \
      >>"$ROOTS_DIR/$name.log" 2>&1 || { echo "python$version -m venv failed"; return 1; }
    root_exec "$name" "$venv/bin/python" -m pip install --disable-pip-version-check -q \
      --only-binary=:all: numpy >>"$ROOTS_DIR/$name.log" 2>&1 || {
      root_say "WARNING: no numpy wheel for Python $version; its numpy tests will be EXCLUDED"
      touch "$ROOTS_DIR/$name$venv/.no-numpy-wheel"
    }
  done
}
