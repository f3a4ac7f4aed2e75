#!/usr/bin/env bash
# Builds the OpenCode workspace image FROM scratch: the pinned npm release's Linux binary, the
# shared libraries it links, CA certificates and nothing else. No image registry is needed.
source "$(dirname "$0")/lib.sh"

if docker image inspect "$OPENCODE_IMAGE" >/dev/null 2>&1; then exit 0; fi

pkg="$DOCE_CACHE/opencode-$OPENCODE_VERSION"
bin="$pkg/node_modules/opencode-linux-x64/bin/opencode"
if [ ! -x "$bin" ]; then
  log "installing opencode-ai@$OPENCODE_VERSION from npm"
  mkdir -p "$pkg"
  (cd "$pkg" && npm install --no-audit --no-fund --silent "opencode-ai@$OPENCODE_VERSION")
  [ -x "$bin" ] || die "opencode-ai@$OPENCODE_VERSION did not install a Linux x64 binary at $bin"
fi

log "building image $OPENCODE_IMAGE"
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/etc" "$ctx/rootfs/tmp" \
  "$ctx/rootfs/root/.local/share/opencode" "$ctx/rootfs/workspace"
chmod 1777 "$ctx/rootfs/tmp"
cp "$bin" "$ctx/rootfs/usr/local/bin/opencode"
# Copy every library ldd lists, at the path the loader looks for it.
ldd "$bin" | grep -oE '/[^ ]+' | while read -r lib; do
  mkdir -p "$ctx/rootfs$(dirname "$lib")"
  cp -L "$lib" "$ctx/rootfs$lib"
done
cp -rL /etc/ssl "$ctx/rootfs/etc/ssl"
echo 'root:x:0:0:root:/root:/bin/false' >"$ctx/rootfs/etc/passwd"
echo 'root:x:0:' >"$ctx/rootfs/etc/group"
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM scratch
COPY rootfs/ /
ENV HOME=/root PATH=/usr/local/bin
WORKDIR /workspace
EXPOSE 4096
LABEL org.opencontainers.image.title="OpenCode $OPENCODE_VERSION for doce"
ENTRYPOINT ["/usr/local/bin/opencode", "serve", "--pure", "--hostname", "0.0.0.0", "--port", "4096"]
DOCKERFILE
docker build -q -t "$OPENCODE_IMAGE" "$ctx" >/dev/null
log "built $OPENCODE_IMAGE"
