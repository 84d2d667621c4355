#!/usr/bin/env bash
# The console's vendored libraries, from npm at pinned versions (run by hand when a pin changes; `make run`
# never needs the network). `scripts/vendor-console.sh --check` compares the committed files with the pins.
set -euo pipefail
cd "$(dirname "$0")/.."
UPLOT_VERSION=1.6.32
UPLOT_TARBALL_SHA256=4b8a8191e425658e3ea8c8c1314b0fc679c861ee3a1af2b20c7b16ba50b5133d
target=app/console/static/vendor/uplot
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "uplot@${UPLOT_VERSION}" >/dev/null)
echo "${UPLOT_TARBALL_SHA256}  ${work}/uplot-${UPLOT_VERSION}.tgz" | sha256sum --check --quiet
tar -xzf "${work}/uplot-${UPLOT_VERSION}.tgz" -C "$work"
files=(dist/uPlot.esm.js dist/uPlot.min.css LICENSE)
if [[ "${1:-}" == "--check" ]]; then
    for file in "${files[@]}"; do cmp "${work}/package/${file}" "${target}/$(basename "$file")"; done
    echo "vendored uPlot ${UPLOT_VERSION} matches npm"
else
    for file in "${files[@]}"; do cp "${work}/package/${file}" "${target}/"; done
    echo "vendored uPlot ${UPLOT_VERSION} into ${target}"
fi
