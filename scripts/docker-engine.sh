#!/usr/bin/env bash
# Makes sure a Docker engine answers: the one at DOCKER_HOST or the default socket; otherwise,
# as root, installs Debian's docker.io when missing and starts dockerd with its own data root.
source "$(dirname "$0")/lib.sh"

if docker info >/dev/null 2>&1; then exit 0; fi
if [ -n "${DOCKER_HOST:-}" ]; then
  die "no Docker engine answers at DOCKER_HOST=$DOCKER_HOST"
fi
if [ "$(id -u)" != 0 ]; then
  die "no Docker engine answers and you are not root: install Docker (Debian: apt-get install docker.io) and start it, or set DOCKER_HOST"
fi
if ! command -v dockerd >/dev/null 2>&1; then
  log "installing Debian's docker.io"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >"$DOCE_CACHE/logs/apt-docker.log" 2>&1 \
    || die "apt-get install docker.io failed; see $DOCE_CACHE/logs/apt-docker.log"
fi
log "starting dockerd (data root $DOCE_CACHE/docker)"
mkdir -p "$DOCE_CACHE/docker" "$DOCE_CACHE/docker-exec"
# Every project has a network of its own; Docker's default pools hold only 31 of them, so
# networks here are /24s carved from one /16: 256 projects' workspaces at once.
nohup dockerd --host unix:///var/run/docker.sock --data-root "$DOCE_CACHE/docker" \
  --exec-root "$DOCE_CACHE/docker-exec" --pidfile "$DOCE_CACHE/dockerd.pid" \
  --default-address-pool base=10.213.0.0/16,size=24 \
  >"$DOCE_CACHE/logs/dockerd.log" 2>&1 &
wait_for dockerd 60 docker info
