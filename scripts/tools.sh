#!/usr/bin/env bash
# Installs what doce's stack needs and is missing: the Temporal CLI, Vault and (for the tests) Gitea
# and golangci-lint and a Kubernetes cluster's parts (built from the Go module proxy at pinned
# versions, in parallel, cached by version), a Docker engine, the OpenCode workspace image, and
# Debian's chromium, postgresql, docker-compose, containerd, CNI plugins and ipset for the tests.
# Idempotent: a second run only checks.
source "$(dirname "$0")/lib.sh"

command -v go >/dev/null || die "Go is required (https://go.dev/dl); this machine has none on PATH"

build_temporal() {
  local gobin
  gobin=$(mktemp -d)
  (cd "$gobin" && CGO_ENABLED=0 GOBIN="$gobin" go install -trimpath -ldflags='-s -w' \
    "github.com/temporalio/cli/cmd/temporal@$TEMPORAL_CLI_VERSION") &&
    mv "$gobin/temporal" "$TEMPORAL_BIN" && rm -rf "$gobin"
}

build_vault() {
  # Vault's go.mod has replace directives, so it is built as a tool of a nested module pinned in
  # tools/vaultserver, whose go.mod pins the version and carries those replaces.
  (cd "$ROOT/tools/vaultserver" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' \
    -o "$VAULT_BIN.tmp" github.com/hashicorp/vault) && mv "$VAULT_BIN.tmp" "$VAULT_BIN"
}

build_gitea() {
  # Gitea is built like Vault, as a tool of the nested module tools/giteaserver. Without the
  # version stamp it calls itself "development" and API clients refuse it. It reads options/
  # (translations, templates) from disk at run time, so a copy goes beside the binary.
  rm -rf "$GITEA_DIR.tmp" && mkdir -p "$GITEA_DIR.tmp"
  (cd "$ROOT/tools/giteaserver" &&
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.Version=$GITEA_VERSION" \
      -o "$GITEA_DIR.tmp/gitea" gitea.dev &&
    dir=$(go list -m -f '{{.Dir}}' gitea.dev) &&
    cp -r "$dir/options" "$GITEA_DIR.tmp/options") &&
    chmod -R u+w "$GITEA_DIR.tmp" && rm -rf "$GITEA_DIR" && mv "$GITEA_DIR.tmp" "$GITEA_DIR"
}

build_golangci_lint() {
  local gobin
  gobin=$(mktemp -d)
  (cd "$gobin" && CGO_ENABLED=0 GOBIN="$gobin" go install -trimpath -ldflags='-s -w' \
    "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$GOLANGCI_LINT_VERSION") &&
    mv "$gobin/golangci-lint" "$GOLANGCI_LINT_BIN" && rm -rf "$gobin"
}

# The test cluster (scripts/kube-cluster.sh): the control plane, kubelet and kubectl as one
# multi-call binary of the nested module tools/kubeserver (k8s.io/kubernetes cannot be installed
# directly: its go.mod replaces its staging modules with folders), stamped with the version they
# report; and the pause image every pod's sandbox runs, compiled from Kubernetes' pause.c.
build_kubernetes() {
  local v=k8s.io/component-base/version minor=${KUBERNETES_VERSION#v*.}
  minor=${minor%%.*}
  mkdir -p "$KUBE_DIR"
  (cd "$ROOT/tools/kubeserver" && CGO_ENABLED=0 go build -trimpath \
    -ldflags="-s -w -X $v.gitVersion=$KUBERNETES_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean" \
    -o "$KUBESERVER_BIN.tmp" . &&
    build_pause "$(go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c") &&
    mv "$KUBESERVER_BIN.tmp" "$KUBESERVER_BIN"
}

# build_pause SOURCE: a one-layer OCI image archive holding /pause, named $KUBE_PAUSE_IMAGE.
build_pause() {
  local d layer config manifest
  d=$(mktemp -d)
  mkdir -p "$d/rootfs" "$d/oci/blobs/sha256"
  gcc -Os -static -DVERSION="$KUBERNETES_VERSION" -o "$d/rootfs/pause" "$1" && strip "$d/rootfs/pause" &&
    tar -C "$d/rootfs" --owner=0 --group=0 --mtime=@0 -cf "$d/layer.tar" pause || return
  layer=$(sha256sum <"$d/layer.tar" | cut -d' ' -f1)
  mv "$d/layer.tar" "$d/oci/blobs/sha256/$layer"
  printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/pause"],"User":"65535:65535"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$layer" >"$d/config.json"
  config=$(sha256sum <"$d/config.json" | cut -d' ' -f1)
  mv "$d/config.json" "$d/oci/blobs/sha256/$config"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%d}]}' \
    "$config" "$(stat -c %s "$d/oci/blobs/sha256/$config")" "$layer" "$(stat -c %s "$d/oci/blobs/sha256/$layer")" >"$d/manifest.json"
  manifest=$(sha256sum <"$d/manifest.json" | cut -d' ' -f1)
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "$manifest" "$(stat -c %s "$d/manifest.json")" "$KUBE_PAUSE_IMAGE" "${KUBE_PAUSE_IMAGE##*:}" >"$d/oci/index.json"
  mv "$d/manifest.json" "$d/oci/blobs/sha256/$manifest"
  echo '{"imageLayoutVersion":"1.0.0"}' >"$d/oci/oci-layout"
  tar -C "$d/oci" -cf "$KUBE_PAUSE_TAR" oci-layout index.json blobs && rm -rf "$d"
}

build_etcd() {
  # etcd's server module replaces its sibling modules with folders: built like Vault.
  (cd "$ROOT/tools/etcdserver" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' \
    -o "$ETCD_BIN.tmp" go.etcd.io/etcd/server/v3) && mv "$ETCD_BIN.tmp" "$ETCD_BIN"
}

build_kube_router() {
  local gobin
  gobin=$(mktemp -d)
  (cd "$gobin" && CGO_ENABLED=0 GOBIN="$gobin" go install -trimpath -ldflags='-s -w' \
    "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@$KUBE_ROUTER_VERSION") &&
    mv "$gobin/kube-router" "$KUBE_ROUTER_BIN" && rm -rf "$gobin"
}

pids=() names=()
if [ ! -x "$TEMPORAL_BIN" ]; then
  log "building temporal CLI $TEMPORAL_CLI_VERSION (about 6 min on a fresh machine) -> $TEMPORAL_BIN"
  build_temporal >"$DOCE_CACHE/logs/build-temporal.log" 2>&1 & pids+=($!) names+=(temporal)
fi
if [ ! -x "$VAULT_BIN" ]; then
  log "building vault $VAULT_VERSION (about 20 min on a fresh machine, 4 min warm) -> $VAULT_BIN"
  build_vault >"$DOCE_CACHE/logs/build-vault.log" 2>&1 & pids+=($!) names+=(vault)
fi

if [ ! -x "$GITEA_BIN" ]; then
  log "building gitea $GITEA_VERSION for the forge tests (about 5 min of CPU on a fresh machine) -> $GITEA_BIN"
  build_gitea >"$DOCE_CACHE/logs/build-gitea.log" 2>&1 & pids+=($!) names+=(gitea)
fi

if [ ! -x "$GOLANGCI_LINT_BIN" ]; then
  log "building golangci-lint $GOLANGCI_LINT_VERSION (about 5 min on a fresh machine) -> $GOLANGCI_LINT_BIN"
  build_golangci_lint >"$DOCE_CACHE/logs/build-golangci-lint.log" 2>&1 & pids+=($!) names+=(golangci-lint)
fi

# The test cluster's parts; the cluster is for root only (containerd, kubelet, iptables).
if [ "$(id -u)" = 0 ]; then
  if [ ! -x "$KUBESERVER_BIN" ] || [ ! -f "$KUBE_PAUSE_TAR" ]; then
    log "building kubernetes $KUBERNETES_VERSION for the test cluster (about 25 min on a fresh machine) -> $KUBESERVER_BIN"
    build_kubernetes >"$DOCE_CACHE/logs/build-kubernetes.log" 2>&1 & pids+=($!) names+=(kubernetes)
  fi
  if [ ! -x "$ETCD_BIN" ]; then
    log "building etcd $ETCD_VERSION for the test cluster (about 3 min on a fresh machine) -> $ETCD_BIN"
    build_etcd >"$DOCE_CACHE/logs/build-etcd.log" 2>&1 & pids+=($!) names+=(etcd)
  fi
  if [ ! -x "$KUBE_ROUTER_BIN" ]; then
    log "building kube-router $KUBE_ROUTER_VERSION for the test cluster (about 4 min on a fresh machine) -> $KUBE_ROUTER_BIN"
    build_kube_router >"$DOCE_CACHE/logs/build-kube-router.log" 2>&1 & pids+=($!) names+=(kube-router)
  fi
  missing=()
  command -v containerd >/dev/null 2>&1 || missing+=(containerd)
  [ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
  command -v ipset >/dev/null 2>&1 || missing+=(ipset)
  if ((${#missing[@]})); then
    log "installing Debian's ${missing[*]} (Kubernetes test cluster)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >"$DOCE_CACHE/logs/apt-kube.log" 2>&1 \
      || die "apt-get install ${missing[*]} failed; see $DOCE_CACHE/logs/apt-kube.log"
  fi
fi

# Browser tests drive Debian's Chromium.
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    log "installing Debian's chromium (browser tests)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >"$DOCE_CACHE/logs/apt-chromium.log" 2>&1 \
      || die "apt-get install chromium failed; see $DOCE_CACHE/logs/apt-chromium.log"
  else
    log "chromium is missing and you are not root: the browser tests will fail (Debian: apt-get install chromium)"
  fi
fi

# The store and end-to-end tests run on a private PostgreSQL cluster too (scripts/services.sh).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    log "installing Debian's postgresql (tests on PostgreSQL)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >"$DOCE_CACHE/logs/apt-postgresql.log" 2>&1 \
      || die "apt-get install postgresql failed; see $DOCE_CACHE/logs/apt-postgresql.log"
  else
    log "postgresql is missing and you are not root: make test cannot start its PostgreSQL (Debian: apt-get install postgresql)"
  fi
fi

# make test validates docker-compose.yml with Debian's docker-compose.
if ! command -v docker-compose >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  log "installing Debian's docker-compose (compose file checks)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >"$DOCE_CACHE/logs/apt-compose.log" 2>&1 \
    || die "apt-get install docker-compose failed; see $DOCE_CACHE/logs/apt-compose.log"
fi

# Docker and the workspace image (minutes cold, seconds warm): done while the tools compile.
"$ROOT/scripts/docker-engine.sh"
"$ROOT/scripts/workspace-image.sh"

start=$SECONDS
for i in "${!pids[@]}"; do
  while kill -0 "${pids[$i]}" 2>/dev/null; do
    sleep 30
    kill -0 "${pids[$i]}" 2>/dev/null && log "still building ${names[$i]} ($(( (SECONDS - start) / 60 )) min so far)"
  done
  wait "${pids[$i]}" || die "building ${names[$i]} failed; see $DOCE_CACHE/logs/build-${names[$i]}.log"
  log "built ${names[$i]}"
done
