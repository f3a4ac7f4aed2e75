#!/usr/bin/env bash
# make test / make bench: installs what is missing, starts a Temporal dev server, a Vault dev
# server and a PostgreSQL cluster on free loopback ports, and runs every Go test against them,
# the Docker engine and the real OpenCode image. Everything started here is stopped on exit, and
# the time each phase took is printed last (also when a phase fails).
source "$(dirname "$0")/lib.sh"
source "$ROOT/scripts/services.sh"

PHASES=()
phase_start=$SECONDS
# phase NAME: records the time since the previous phase ended under NAME.
phase() {
  PHASES+=("$(printf '%-28s %5ds' "$1" $((SECONDS - phase_start)))")
  phase_start=$SECONDS
}
print_phases() {
  local rc=$?
  stop_services
  if [ -n "${kube_pid:-}" ] && [ "${kube_rc:-0}" != 3 ]; then
    kill "$kube_pid" 2>/dev/null && wait "$kube_pid" 2>/dev/null
    DOCE_KUBE_OWNER=$$ "$ROOT/scripts/kube-cluster.sh" down 2>&1 | tail -n 1 >&2 || true
  fi
  ((${#PHASES[@]})) || exit $rc
  printf '\n\033[1m%-28s %6s\033[0m\n' phase time >&2
  printf '%s\n' "${PHASES[@]}" >&2
  if [ -s "${GO_TEST_LOG:-}" ]; then
    printf '\n\033[1mslowest test packages\033[0m\n' >&2
    awk '$1 == "ok" || $1 == "FAIL" { if ($3 ~ /s$/) print $3, $2 }' "$GO_TEST_LOG" |
      sort -rn | head -n 6 | awk '{ printf "  %-40s %s\n", $2, $1 }' >&2
  fi
  printf '%-28s %5ds\n' total "$SECONDS" >&2
  exit $rc
}

"$ROOT/scripts/tools.sh"
phase "install (tools.sh)"

LOGS=$(mktemp -d "${TMPDIR:-/tmp}/doce-test.XXXXXX")
GO_TEST_LOG=$LOGS/go-test.log
trap print_phases EXIT
tport=$(free_port)
vport=$(free_port)
pport=$(free_port)
vtoken=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
# The Kubernetes test cluster starts beside the other services (root only: containerd, the
# kubelet and iptables need it); its tests skip without it.
kube_pid=
if [ "$(id -u)" = 0 ]; then
  log "starting the kubernetes test cluster (log: $LOGS/kube-cluster.log)"
  DOCE_KUBE_OWNER=$$ "$ROOT/scripts/kube-cluster.sh" up >"$LOGS/kubeconfig" 2>"$LOGS/kube-cluster.log" &
  kube_pid=$!
fi
log "starting temporal dev server on 127.0.0.1:$tport and vault dev server on 127.0.0.1:$vport (logs: $LOGS)"
start_temporal "$tport" 0
start_vault_dev "$vport" "$vtoken"
log "starting postgres on 127.0.0.1:$pport"
start_postgres "$pport"
phase "services (temporal, vault, pg)"
if [ -n "$kube_pid" ]; then
  kube_rc=0
  wait "$kube_pid" || kube_rc=$?
  if [ "$kube_rc" = 0 ]; then
    export DOCE_TEST_KUBECONFIG=$(cat "$LOGS/kubeconfig") DOCE_TEST_KUBE_NAMESPACE=doce-test
    # The pods' gateway (kube-cluster.sh's POD_GATEWAY); the hostpath volumes are root's.
    export DOCE_TEST_KUBE_HOST_IP=10.244.0.1 DOCE_TEST_KUBE_CHOWN_VOLUME=true
    export DOCE_TEST_KUBESERVER=$KUBESERVER_BIN
  elif [ "$kube_rc" = 3 ]; then
    # Another make test on this machine has the one cluster it can run: the tests of the
    # Kubernetes backend skip in this run.
    log "$(tail -n 1 "$LOGS/kube-cluster.log"); the kubernetes tests skip"
  else
    cat "$LOGS/kube-cluster.log" >&2
    die "the kubernetes test cluster did not start"
  fi
  phase "kubernetes cluster (rest)"
fi

export DOCE_TEST_STACK=1
export DOCE_TEST_TEMPORAL_ADDRESS=127.0.0.1:$tport
export DOCE_TEST_VAULT_ADDR=http://127.0.0.1:$vport
export DOCE_TEST_VAULT_TOKEN=$vtoken
export DOCE_TEST_OPENCODE_IMAGE=$OPENCODE_IMAGE
# Store tests make a database each on this server; e2e tests run doce on it too.
export DOCE_TEST_POSTGRES_URL=$POSTGRES_URL
# Restart tests run servers of their own from the same binaries.
export DOCE_TEST_TEMPORAL_BIN=$TEMPORAL_BIN
export DOCE_TEST_VAULT_BIN=$VAULT_BIN
# The firewall's engine-restart test restarts the Docker engine: only one these scripts started.
if [ -z "${DOCKER_HOST:-}" ] && pid=$(cat "$DOCE_CACHE/dockerd.pid" 2>/dev/null) &&
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ]; then
  export DOCE_TEST_DOCKERD_PIDFILE=$DOCE_CACHE/dockerd.pid
fi
# Forge tests start a Gitea of their own from this binary (e2e/gitea_test.go).
export DOCE_TEST_GITEA=$GITEA_BIN

cd "$ROOT"
case "${1:-test}" in
test)
  log "go vet"
  go vet ./...
  phase "go vet"
  log "golangci-lint"
  "$GOLANGCI_LINT_BIN" run ./...
  phase "golangci-lint"
  log "go test"
  # End-to-end tests that mostly wait (timers, retries, restarts) run three at a time.
  go test -count=1 -timeout 60m -parallel 3 ${GOTESTFLAGS:-} ./... 2>&1 | tee "$GO_TEST_LOG"
  phase "go test"
  ;;
bench)
  # Setup benchmarks start up to 20 workspaces at once; BENCH picks which, BENCHTIME how often.
  log "go test -bench ${BENCH:-.}"
  go test -run '^$' -bench "${BENCH:-.}" -benchtime "${BENCHTIME:-3x}" -timeout 60m ./... 2>&1 | tee "$GO_TEST_LOG"
  phase "go test -bench"
  ;;
*) die "usage: test.sh [test|bench]" ;;
esac
