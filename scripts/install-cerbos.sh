#!/usr/bin/env bash
# Installs the Cerbos policy decision point binary into tools/cerbos/ (git-ignored).
#
# The binary comes from Cerbos' own npm package (@cerbos/cerbos-linux-<arch>) at a pinned
# version, so the embedded stack and the test suite need nothing but the npm registry.
# Idempotent: does nothing when the pinned version is already installed.
# Prints the binary path on stdout; progress goes to stderr.
set -euo pipefail

CERBOS_VERSION="0.55.0"
# sha512 of the x64 tarball as published; the registry could be trusted less than this file.
CERBOS_X64_INTEGRITY="sha512-eLZUycJfaQWK0XTRgH/Oz2E3XiNCUavDd1LhzFxhUpZ3s5CuQqmqG327ta0On8YOTxuZO/19cG4kvfC22r03/Q=="

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
install_dir="$repo_root/tools/cerbos"
binary="$install_dir/cerbos"

log() { echo "install-cerbos: $*" >&2; }
fail() { log "error: $*"; exit 1; }

installed_version() {
    [[ -x "$binary" ]] || return 0
    "$binary" --version 2>/dev/null | head -n 1
}

case "$(uname -s)-$(uname -m)" in
    Linux-x86_64 | Linux-amd64) platform="linux-x64"; expected_integrity="$CERBOS_X64_INTEGRITY" ;;
    Linux-aarch64 | Linux-arm64) platform="linux-arm64"; expected_integrity="" ;;
    *) fail "no Cerbos npm package for $(uname -s) $(uname -m); install cerbos $CERBOS_VERSION by hand into $binary" ;;
esac
package="@cerbos/cerbos-$platform@$CERBOS_VERSION"

if [[ "$(installed_version)" == "$CERBOS_VERSION" ]]; then
    log "cerbos $CERBOS_VERSION already installed"
    echo "$binary"
    exit 0
fi

command -v npm >/dev/null || fail "npm is required (it downloads $package from the npm registry)"
npm view "$package" version >/dev/null 2>&1 || fail "$package is not published on the npm registry"

work_dir="$(mktemp -d)"
trap 'rm -rf "$work_dir"' EXIT

log "downloading $package"
(cd "$work_dir" && npm pack --silent "$package" >/dev/null)
tarball="$(find "$work_dir" -maxdepth 1 -name '*.tgz' -print -quit)"
[[ -n "$tarball" ]] || fail "npm pack produced no tarball"

if [[ -n "$expected_integrity" ]]; then
    actual_integrity="sha512-$(python3 -c 'import base64, hashlib, sys; print(base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' "$tarball")"
    [[ "$actual_integrity" == "$expected_integrity" ]] || fail "integrity mismatch for $package: $actual_integrity"
fi

tar -xzf "$tarball" -C "$work_dir"
mkdir -p "$install_dir"
# Install under a temporary name first so an interrupted run never leaves a half-written binary.
install -m 0755 "$work_dir/package/cerbos-$platform" "$binary.partial"
mv -f "$binary.partial" "$binary"

[[ "$(installed_version)" == "$CERBOS_VERSION" ]] || fail "installed binary does not report version $CERBOS_VERSION"
log "installed cerbos $CERBOS_VERSION"
echo "$binary"
