#!/usr/bin/env bash
# Sets up a fresh Debian machine for labctl, idempotently: Docker engine, Compose v2,
# a running daemon, the Python environment in .venv, and the local image profile.
# Usage: scripts/setup-host.sh [--no-images]
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
log() { printf '\n== %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

install_packages() {
  local missing=()
  for cmd_pkg in dockerd:docker.io debootstrap:debootstrap iptables:iptables ip:iproute2 \
                 tc:iproute2 wrk:wrk hyperfine:hyperfine chromium:chromium chromedriver:chromium-driver; do
    command -v "${cmd_pkg%%:*}" >/dev/null 2>&1 || missing+=("${cmd_pkg##*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

start_docker() {
  if docker info >/dev/null 2>&1; then return 0; fi
  log "starting the Docker daemon (log: /var/log/labctl-dockerd.log)"
  as_root sh -c 'nohup dockerd >/var/log/labctl-dockerd.log 2>&1 &'
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  echo "dockerd did not start; last lines of /var/log/labctl-dockerd.log:" >&2
  tail -n 20 /var/log/labctl-dockerd.log >&2
  exit 1
}

python_env() {
  local python=${PYTHON:-python3}
  if [ ! -x .venv/bin/labctl ]; then
    log "creating the Python environment in .venv"
    "$python" -m venv .venv
  fi
  .venv/bin/pip install -q --disable-pip-version-check -e '.[dev]'
}

install_packages
log "Compose v2"
as_root bash scripts/install-compose-v2.sh
start_docker
python_env
if [ "${1:-}" != "--no-images" ]; then
  log "images (local profile; skipped when already built from the same inputs)"
  as_root .venv/bin/labctl images build --profile local  # debootstrap needs root
fi
log "ready: .venv/bin/labctl doctor"
