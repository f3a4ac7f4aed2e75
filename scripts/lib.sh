# Shared settings for doce's scripts. Sourced, never run.
# Pinned versions of every tool the stack needs; each is built or fetched once per version into
# $DOCE_CACHE (outside the clone, so fresh clones on the same machine reuse it).
set -euo pipefail

TEMPORAL_CLI_VERSION=v1.5.1
VAULT_VERSION=1.21.1
# Gitea is a forge for the end-to-end tests only (tools/giteaserver pins it; keep the two in step).
GITEA_VERSION=1.27.3
OPENCODE_VERSION=1.18.33
# The linter make test runs after go vet (.golangci.yml).
GOLANGCI_LINT_VERSION=v2.15.0
# The test cluster of the Kubernetes backend (scripts/kube-cluster.sh); tools/kubeserver and
# tools/etcdserver pin the first two (keep them in step).
KUBERNETES_VERSION=v1.34.4
ETCD_VERSION=v3.6.17
KUBE_ROUTER_VERSION=v2.1.0

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DOCE_CACHE=${DOCE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/doce}
BIN="$DOCE_CACHE/bin"
TEMPORAL_BIN="$BIN/temporal-$TEMPORAL_CLI_VERSION"
VAULT_BIN="$BIN/vault-$VAULT_VERSION"
# Gitea reads its translations and templates from options/ beside the binary (its STATIC_ROOT_PATH).
GITEA_DIR="$DOCE_CACHE/gitea-$GITEA_VERSION"
GITEA_BIN="$GITEA_DIR/gitea"
GOLANGCI_LINT_BIN="$BIN/golangci-lint-$GOLANGCI_LINT_VERSION"
# kube-apiserver, controller-manager, scheduler, kubelet and kubectl are one multi-call binary;
# the pause image is Kubernetes' own pause.c, compiled here and packed as an OCI archive.
KUBE_DIR="$DOCE_CACHE/kubernetes-$KUBERNETES_VERSION"
KUBESERVER_BIN="$KUBE_DIR/kubeserver"
KUBE_PAUSE_TAR="$KUBE_DIR/pause.tar"
KUBE_PAUSE_IMAGE=localhost/doce/pause:$KUBERNETES_VERSION
ETCD_BIN="$BIN/etcd-$ETCD_VERSION"
KUBE_ROUTER_BIN="$BIN/kube-router-$KUBE_ROUTER_VERSION"
# The workspace image (scripts/workspace-image.sh) is tagged by a hash of what it is made from:
# that script (package list, suite, layer recipe; its comment and blank lines left out) and the
# OpenCode version. make run and make test hand this tag to doce and the tests. Each build also
# moves the stable alias WORKSPACE_IMAGE_ALIAS to it: doce's default DOCE_OPENCODE_IMAGE
# (config/config.go), for a doce started without the scripts.
WORKSPACE_IMAGE_ALIAS=doce/workspace:current
workspace_image_hash() {
  { echo "opencode $OPENCODE_VERSION"
    grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$ROOT/scripts/workspace-image.sh"
  } | sha256sum | cut -c1-12
}
OPENCODE_IMAGE=${DOCE_OPENCODE_IMAGE:-doce/workspace:$(workspace_image_hash)}
mkdir -p "$BIN" "$DOCE_CACHE/logs"

# doce's custom search attributes, registered on every Temporal server the scripts start.
SEARCH_ATTRIBUTES=(DoceProjectID=Keyword DoceUserID=Keyword DoceSetupStep=Keyword DoceSetupState=Keyword DoceProviderID=Keyword)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# wait_for NAME SECONDS CMD...: retry CMD every 0.2 s until it succeeds or SECONDS pass.
wait_for() {
  local name=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "$name did not come up within ${secs}s"
    sleep 0.2
  done
}
