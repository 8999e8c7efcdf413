#!/usr/bin/env bash
# root_enter.sh ROOT PROJECT COMMAND...: the inside of scripts/roots.sh's
# root_exec. Runs as the first process of a fresh mount and PID namespace
# (unshare --mount --pid --fork --propagation private): every mount made here
# is private to it and goes away with it, and every process started inside
# is ended when it ends.
set -euo pipefail
root=$1 project=$2
shift 2

[ -d "$root/usr" ] || { echo "root_enter.sh: $root is not a Debian root" >&2; exit 1; }

cleanup() {
  # The namespace going away unmounts all of this too; unmounting here keeps
  # a root whose command was interrupted free of mounts at once.
  umount -R "$root$project" 2>/dev/null || true
  umount -R "$root/opt/rust" 2>/dev/null || true
  umount -R "$root/dev" 2>/dev/null || true
  umount "$root/proc" 2>/dev/null || true
}
trap cleanup EXIT

mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mkdir -p "$root$project"
mount --bind "$project" "$root$project"

# The host's Rust toolchain, read-only; cargo keeps its registry in the
# root's own CARGO_HOME.
rust_path=""
if sysroot=$(PATH="$HOME/.cargo/bin:$PATH" rustc --print sysroot 2>/dev/null) && [ -x "$sysroot/bin/cargo" ]; then
  mkdir -p "$root/opt/rust"
  mount --bind "$sysroot" "$root/opt/rust"
  mount -o remount,bind,ro "$root/opt/rust"
  rust_path="/opt/rust/bin:"
fi

cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true

# Trust what the host trusts (a machine behind a TLS-inspecting proxy has its
# CA in the host's bundle): the bundle, and any file the usual variables name,
# are copied to the same paths in the root, and those variables passed on.
# Copied, not bind-mounted: the root's own ca-certificates may rewrite it.
passed=()
for var in SSL_CERT_FILE SSL_CERT_DIR PIP_CERT REQUESTS_CA_BUNDLE CURL_CA_BUNDLE \
  CARGO_HTTP_CAINFO HTTP_PROXY HTTPS_PROXY NO_PROXY http_proxy https_proxy no_proxy \
  PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_DEFAULT_TIMEOUT; do
  value=${!var:-}
  [ -n "$value" ] || continue
  passed+=("$var=$value")
done
# The copied bundle is the default for tools that would otherwise use a CA
# list of their own (pip's certifi).
bundle=/etc/ssl/certs/ca-certificates.crt
if [ -f "$bundle" ]; then
  [ -n "${SSL_CERT_FILE:-}" ] || passed+=("SSL_CERT_FILE=$bundle")
  [ -n "${PIP_CERT:-}" ] || passed+=("PIP_CERT=$bundle")
fi
for file in /etc/ssl/certs/ca-certificates.crt ${SSL_CERT_FILE:-} ${PIP_CERT:-} \
  ${REQUESTS_CA_BUNDLE:-} ${CURL_CA_BUNDLE:-} ${CARGO_HTTP_CAINFO:-}; do
  [ -f "$file" ] || continue
  mkdir -p "$root$(dirname "$file")"
  cp -L "$file" "$root$file.py-new" && mv "$root$file.py-new" "$root$file"
done

# No exec: this shell stays the namespace's first process, so the trap runs.
status=0
chroot "$root" /usr/bin/env -i \
  HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" CI="${CI:-}" \
  PATH="${rust_path}/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  CARGO_HOME=/root/.cargo "${passed[@]}" \
  /bin/sh -c 'cd "$0" && exec "$@"' "$project" "$@" || status=$?
exit "$status"
