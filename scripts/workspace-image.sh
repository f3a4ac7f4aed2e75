#!/usr/bin/env bash
# Builds the workspace image every project's agent works in, from Debian's packages and without
# an image registry:
#   1. mmdebstrap writes a Debian root filesystem with the packages below, from this machine's
#      apt mirror (cached by a hash of suite and packages under $DOCE_CACHE/workspace-rootfs);
#   2. docker import turns it into the base image doce/workspace-base:<that hash>;
#   3. a small layer on top adds the pinned OpenCode binary, the agent's user and the entrypoint.
# The result is tagged $OPENCODE_IMAGE (doce/workspace:<hash of this script and the OpenCode
# version>, see lib.sh), so it is rebuilt only when one of those changes, and the stable alias
# $WORKSPACE_IMAGE_ALIAS is moved to it. Comment lines are not part of the hash: edit them freely.
source "$(dirname "$0")/lib.sh"

if docker image inspect "$OPENCODE_IMAGE" >/dev/null 2>&1; then
  docker tag "$OPENCODE_IMAGE" "$WORKSPACE_IMAGE_ALIAS"
  exit 0
fi

SUITE=bookworm
# What a coding agent needs, and no more (Recommends are not installed):
PACKAGES=(
  bash coreutils procps                  # OpenCode's bash tool and the agent's everyday commands; ps/kill for servers it starts
  git                                    # OpenCode's snapshots and revert work on the project's git repository
  ripgrep                                # OpenCode's grep and glob tools run rg
  ca-certificates curl                   # HTTPS to the registries a site allows; quick checks of a served app
  nodejs npm                             # the JavaScript toolchain most generated apps use
  python3 python3-venv python3-pip       # Python, with venvs: Debian's pip refuses to install into the system (PEP 668)
  make gcc g++ libc6-dev                 # native npm modules (node-gyp) and Python sdists compile; build-essential's
                                         # dpkg-dev (building .debs) is left out
  xz-utils unzip                         # release tarballs and zips
  tini                                   # PID 1: reaps servers the agent leaves behind, passes docker stop's SIGTERM on
)
# Manuals, docs and translations are of no use to an agent: leaving them out saves ~60 MB.
MMDEBSTRAP_OPTS=(--variant=apt
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-exclude=/usr/share/info/*')
UID_AGENT=1000

base_key=$(printf '%s\n' "$SUITE" "${PACKAGES[*]}" "${MMDEBSTRAP_OPTS[*]}" | sha256sum | cut -c1-12)
BASE_IMAGE=doce/workspace-base:$base_key
rootfs=$DOCE_CACHE/workspace-rootfs/$SUITE-$base_key.tar

if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  if [ ! -s "$rootfs" ]; then
    if ! command -v mmdebstrap >/dev/null 2>&1; then
      [ "$(id -u)" = 0 ] || die "mmdebstrap is missing and you are not root: install it (Debian: apt-get install mmdebstrap)"
      log "installing Debian's mmdebstrap (workspace image)"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >"$DOCE_CACHE/logs/apt-mmdebstrap.log" 2>&1 \
        || die "apt-get install mmdebstrap failed; see $DOCE_CACHE/logs/apt-mmdebstrap.log"
    fi
    # This machine's Debian sources (deb822), so a local mirror or snapshot is used as apt uses
    # it; DOCE_WORKSPACE_APT_SOURCES names another file, else Debian's own mirror.
    sources=${DOCE_WORKSPACE_APT_SOURCES:-/etc/apt/sources.list.d/debian.sources}
    [ -s "$sources" ] && grep -qE "^Suites:.*\b$SUITE\b" "$sources" || sources=http://deb.debian.org/debian
    log "writing a Debian $SUITE root filesystem with mmdebstrap from $sources (about a minute; log: $DOCE_CACHE/logs/mmdebstrap.log)"
    mkdir -p "$(dirname "$rootfs")"
    mmdebstrap "${MMDEBSTRAP_OPTS[@]}" --format=tar --include="$(IFS=,; echo "${PACKAGES[*]}")" \
      "$SUITE" "$rootfs.tmp" "$sources" >"$DOCE_CACHE/logs/mmdebstrap.log" 2>&1 \
      || die "mmdebstrap failed; see $DOCE_CACHE/logs/mmdebstrap.log"
    mv "$rootfs.tmp" "$rootfs"
  fi
  log "importing $rootfs as $BASE_IMAGE"
  docker import --message "Debian $SUITE for doce workspaces: ${PACKAGES[*]}" "$rootfs" "$BASE_IMAGE" >/dev/null
fi

pkg="$DOCE_CACHE/opencode-$OPENCODE_VERSION"
bin="$pkg/node_modules/opencode-linux-x64/bin/opencode"
if [ ! -x "$bin" ]; then
  log "installing opencode-ai@$OPENCODE_VERSION from npm"
  mkdir -p "$pkg"
  (cd "$pkg" && npm install --no-audit --no-fund --silent "opencode-ai@$OPENCODE_VERSION")
  [ -x "$bin" ] || die "opencode-ai@$OPENCODE_VERSION did not install a Linux x64 binary at $bin"
fi

log "building $OPENCODE_IMAGE (OpenCode $OPENCODE_VERSION on $BASE_IMAGE)"
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "$bin" "$ctx/opencode"
# The entrypoint makes the project a git repository on first start (OpenCode's snapshots and
# session revert need one, and its project id is the root commit), then hands over to OpenCode.
# main stays at the starting commit and the work goes on branch "work": the review of the
# project's changes (OpenCode's /vcs/diff?mode=branch) is then everything since the start,
# the agent's own commits included. A project made from a repository (DOCE_IMPORT=1) waits
# first, up to an hour, for the setup to place it (cloned on doce's side; .git/doce-imported is
# written last).
cat >"$ctx/entrypoint" <<'ENTRYPOINT'
#!/bin/sh
set -e
if [ "${DOCE_IMPORT:-}" = 1 ]; then
  i=0
  while [ ! -e /workspace/.git/doce-imported ] && [ $i -lt 18000 ]; do sleep 0.2; i=$((i + 1)); done
fi
if [ ! -e /workspace/.git ]; then
  git -C /workspace init -q
  git -C /workspace add -A
  git -C /workspace commit -q --allow-empty -m "New doce project"
  git -C /workspace checkout -q -b work
fi
exec /usr/local/bin/opencode serve --pure --hostname 0.0.0.0 --port 4096
ENTRYPOINT
chmod 755 "$ctx/entrypoint"
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $BASE_IMAGE
COPY opencode entrypoint /usr/local/bin/
# The agent's user owns the project and its home; a default git identity lets it commit.
RUN echo 'agent:x:$UID_AGENT:$UID_AGENT:doce agent:/home/agent:/bin/bash' >>/etc/passwd \\
 && echo 'agent:x:$UID_AGENT:' >>/etc/group \\
 && mkdir -p /workspace /home/agent/.local/share/opencode \\
 && chown -R $UID_AGENT:$UID_AGENT /workspace /home/agent \\
 && git config --system user.name 'doce agent' \\
 && git config --system user.email 'agent@doce.invalid' \\
 && git config --system init.defaultBranch main
# The root filesystem is read-only in a workspace: npm's global installs go to the home.
ENV HOME=/home/agent USER=agent LANG=C.UTF-8 NPM_CONFIG_PREFIX=/home/agent/.local \\
    PATH=/home/agent/.local/bin:/usr/local/bin:/usr/bin:/bin
USER $UID_AGENT:$UID_AGENT
WORKDIR /workspace
EXPOSE 4096
LABEL org.opencontainers.image.title="doce workspace: OpenCode $OPENCODE_VERSION on Debian $SUITE"
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/entrypoint"]
DOCKERFILE
docker build -q -t "$OPENCODE_IMAGE" "$ctx" >/dev/null
docker tag "$OPENCODE_IMAGE" "$WORKSPACE_IMAGE_ALIAS"
log "built $OPENCODE_IMAGE ($(docker image inspect -f '{{.Size}}' "$OPENCODE_IMAGE" | awk '{printf "%d MB", $1/1e6}')), alias $WORKSPACE_IMAGE_ALIAS"
