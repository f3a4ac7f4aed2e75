#!/usr/bin/env bash
# Builds doce's image without an image registry: a static binary from the host's Go, packed
# FROM scratch with CA certificates, a non-root user and a /data volume. deploy/Dockerfile
# builds the same image where a registry is reachable.
source "$(dirname "$0")/lib.sh"

IMAGE=${DOCE_IMAGE:-doce/doce:dev}
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/etc/ssl/certs" "$ctx/rootfs/data" "$ctx/rootfs/tmp"
chmod 1777 "$ctx/rootfs/tmp" # the worker's health file
log "building doce (static)"
(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$ctx/rootfs/usr/local/bin/doce" ./cmd/doce)
cp -L /etc/ssl/certs/ca-certificates.crt "$ctx/rootfs/etc/ssl/certs/"
# /data belongs to the image's user; ADD of a tar keeps the owners COPY would reset.
chown 65532:65532 "$ctx/rootfs/data"
tar -C "$ctx/rootfs" --numeric-owner -cf "$ctx/rootfs.tar" .
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
ADD rootfs.tar /
USER 65532:65532
ENV DOCE_DATA_DIR=/data DOCE_HTTP_ADDR=0.0.0.0:8080 DOCE_LOG_FORMAT=json
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/doce"]
CMD ["serve"]
DOCKERFILE
docker build -q -t "$IMAGE" "$ctx" >/dev/null
log "built $IMAGE"
