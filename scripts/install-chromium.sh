#!/usr/bin/env bash
# Installs Debian's Chromium for the console's browser tests (Playwright drives it through
# `executable_path`; Playwright's own browser downloads cannot be reached from here).
# Idempotent: does nothing when the browser is there. Needs root (or password-less sudo), as apt does.
set -euo pipefail

CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"
# Fonts for readable screenshots; the rest of Chromium's recommendations (a desktop's daemons) are not needed.
PACKAGES=(chromium fonts-liberation fonts-dejavu-core)

log() { echo "install-chromium: $*" >&2; }

[[ -x "$CHROMIUM" ]] && exit 0
if [[ "$(id -u)" -eq 0 ]]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    log "error: $CHROMIUM is missing; run as root: apt-get install -y --no-install-recommends ${PACKAGES[*]}"
    exit 1
fi
log "installing ${PACKAGES[*]} from Debian"
export DEBIAN_FRONTEND=noninteractive
if ! apt-cache show chromium >/dev/null 2>&1; then
    "${as_root[@]}" apt-get update -qq
fi
if ! "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null; then
    "${as_root[@]}" apt-get update -qq  # a stale package list names versions the mirror no longer has
    "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
fi
log "installed $("$CHROMIUM" --version 2>/dev/null | head -n 1)"
