#!/usr/bin/env bash
# A single-node Kubernetes cluster on this machine, for the tests of doce's Kubernetes backend.
#   kube-cluster.sh up    -- starts it and prints the path of an admin kubeconfig
#   kube-cluster.sh down  -- stops it by PID and undoes every change it made to the host
# Parts (scripts/tools.sh builds and caches them): a private containerd (Debian's, own root,
# state and socket) with Debian's CNI bridge plugin, etcd, kube-apiserver, controller-manager,
# scheduler and kubelet (one multi-call binary, tools/kubeserver), and kube-router as the
# NetworkPolicy controller. The workspace image is imported into the cluster's containerd.
# Certificates are made per run. State lives in $KUBE_RUN except the few paths the kubelet, the
# CNI plugins and the hostpath provisioner hard-code; `down` removes those it created.
# One cluster per machine: kube-router's iptables chains and the kubelet's paths are global, so
# `up` refuses (exit status 3) while another cluster runs. DOCE_KUBE_OWNER names the process the
# cluster is for (make test's shell): a cluster whose owner died is torn down by the next `up`,
# and `down` leaves a cluster whose owner lives to that owner.
source "$(dirname "$0")/lib.sh"
source "$ROOT/scripts/services.sh" # free_port

KUBE_RUN=${DOCE_KUBE_RUN:-/tmp/doce-kube}
NODE=doce-node
POD_CIDR=10.244.0.0/24
# The bridge's address, the pods' gateway: where they reach this machine (test.sh names it to
# the tests as DOCE_TEST_KUBE_HOST_IP).
POD_GATEWAY=10.244.0.1
CLUSTER_CIDR=10.244.0.0/16
SERVICE_CIDR=10.96.0.0/24
# Not doce*: doce's own firewall claims the interfaces of its Docker networks by that prefix.
BRIDGE=k8s-doce0
NAMESPACE=doce-test
# Created by the kubelet, containerd's CNI calls and the hostpath provisioner wherever the
# cluster's own state is: removed at `down` when `up` found them absent.
HOST_PATHS=(/var/lib/kubelet /var/log/containers /tmp/hostpath_pv)
CGROUP_ROOT=doce-kube

# iptables tables whose KUBE-* chains the kubelet (its canary chains) and kube-router add.
IPT_TABLES=(filter nat mangle)

kubectl() { "$KUBESERVER_BIN" kubectl --kubeconfig "$KUBE_RUN/admin.kubeconfig" "$@"; }

# start NAME CMD...: runs CMD in the background, logging to $KUBE_RUN/logs/NAME.log, and
# records its pid for `down`.
start() {
  local name=$1; shift
  nohup "$@" >"$KUBE_RUN/logs/$name.log" 2>&1 &
  echo "$! $name" >>"$KUBE_RUN/pids"
}

# owner_alive: the cluster was started for a process (DOCE_KUBE_OWNER) that still runs, or for
# no process in particular.
owner_alive() {
  local owner
  owner=$(cat "$KUBE_RUN/owner" 2>/dev/null) || return 0
  [ -z "$owner" ] || kill -0 "$owner" 2>/dev/null
}

# alive: any process of the cluster still running? (Its processes outlive the `up` that started
# them; a zombie not reaped yet counts as stopped.)
alive() {
  local pid name state
  [ -f "$KUBE_RUN/pids" ] || return 1
  while read -r pid name; do
    state=$(sed 's/.*) \(.\).*/\1/' "/proc/$pid/stat" 2>/dev/null) || continue
    [ "$state" != Z ] && return 0
  done <"$KUBE_RUN/pids"
  return 1
}

# cert NAME CN [O] [SAN]: a key and a certificate signed by the run's CA.
cert() {
  local name=$1 cn=$2 o=${3:-} san=${4:-} subj ext
  subj="/CN=$cn"; [ -n "$o" ] && subj="/O=$o$subj"
  ext="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth,serverAuth"
  [ -n "$san" ] && ext+=$'\n'"subjectAltName=$san"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "$subj" \
    -keyout "$KUBE_RUN/pki/$name.key" 2>/dev/null |
    openssl x509 -req -CA "$KUBE_RUN/pki/ca.crt" -CAkey "$KUBE_RUN/pki/ca.key" -CAcreateserial \
      -days 2 -extfile <(echo "$ext") -out "$KUBE_RUN/pki/$name.crt" 2>/dev/null
}

# kubeconfig NAME SERVER: a kubeconfig for the client certificate NAME.
kubeconfig() {
  cat >"$KUBE_RUN/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: doce
  cluster:
    server: $2
    certificate-authority: $KUBE_RUN/pki/ca.crt
users:
- name: $1
  user:
    client-certificate: $KUBE_RUN/pki/$1.crt
    client-key: $KUBE_RUN/pki/$1.key
contexts:
- name: doce
  context: {cluster: doce, user: $1, namespace: $NAMESPACE}
current-context: doce
EOF
}

# kube_chains FAMILY: "table chain" for each KUBE-* chain of iptables (FAMILY ip) or ip6tables.
kube_chains() {
  local t
  for t in "${IPT_TABLES[@]}"; do
    "${1}tables-save" -t "$t" 2>/dev/null | sed -n "s/^:\(KUBE-[^ ]*\) .*/$t \1/p" || true
  done
}

up() {
  [ "$(id -u)" = 0 ] || die "the test cluster needs root (containerd, kubelet, iptables)"
  [ -x "$KUBESERVER_BIN" ] && [ -x "$ETCD_BIN" ] && [ -x "$KUBE_ROUTER_BIN" ] && [ -f "$KUBE_PAUSE_TAR" ] ||
    die "the Kubernetes binaries are not built; run scripts/tools.sh"
  if alive && owner_alive; then
    printf 'error: a test cluster already runs (state in %s); stop it with: %s down\n' "$KUBE_RUN" "$0" >&2
    exit 3
  fi
  [ -d "$KUBE_RUN" ] && DOCE_KUBE_OWNER= down # what a killed run left behind
  mkdir -p "$KUBE_RUN"/{pki,logs,etcd,cni,kubelet,cni-ipam}
  chmod 700 "$KUBE_RUN"
  echo "${DOCE_KUBE_OWNER:-}" >"$KUBE_RUN/owner"
  local t0=$SECONDS p pid name
  # What exists before the cluster touches the host, so that `down` removes only what it added.
  for p in "${HOST_PATHS[@]}"; do [ -e "$p" ] || echo "$p" >>"$KUBE_RUN/host-paths"; done
  { kube_chains ip; kube_chains ip6; } >"$KUBE_RUN/chains-before"
  ipset list -n 2>/dev/null | sort >"$KUBE_RUN/ipsets-before"

  local node_ip etcd_port peer_port api_port kubelet_port healthz_port kcm_port sched_port router_port
  node_ip=$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')
  [ -n "$node_ip" ] || node_ip=$(hostname -I | awk '{print $1}')
  [ -n "$node_ip" ] || die "this machine has no IPv4 address for the node"
  etcd_port=$(free_port) peer_port=$(free_port) api_port=$(free_port) kubelet_port=$(free_port)
  healthz_port=$(free_port) kcm_port=$(free_port) sched_port=$(free_port) router_port=$(free_port)
  local api="https://127.0.0.1:$api_port"

  # PKI: one CA; the API server's serving certificate; a client certificate per component.
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=doce-test-ca -keyout "$KUBE_RUN/pki/ca.key" -out "$KUBE_RUN/pki/ca.crt" 2>/dev/null
  cert apiserver kube-apiserver "" \
    "IP:127.0.0.1,IP:$node_ip,IP:${SERVICE_CIDR%.0/*}.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert admin doce-test-admin system:masters
  cert apiserver-kubelet kube-apiserver-kubelet-client system:masters
  cert kubelet "system:node:$NODE" system:nodes
  cert controller-manager system:kube-controller-manager
  cert scheduler system:kube-scheduler
  # kube-router watches pods, namespaces and policies cluster-wide and updates its node.
  cert kube-router kube-router system:masters
  openssl ecparam -name prime256v1 -genkey -noout -out "$KUBE_RUN/pki/sa.key" 2>/dev/null
  openssl ec -in "$KUBE_RUN/pki/sa.key" -pubout -out "$KUBE_RUN/pki/sa.pub" 2>/dev/null
  for p in admin kubelet controller-manager scheduler kube-router; do kubeconfig "$p" "$api"; done

  # containerd, private: CRI on, OOM score adjustments limited to what this root may do (it
  # lacks CAP_SYS_RESOURCE here), the pause image built from Kubernetes' own pause.c.
  cat >"$KUBE_RUN/containerd.toml" <<EOF
version = 2
root = "$KUBE_RUN/containerd/root"
state = "$KUBE_RUN/containerd/state"
[grpc]
  address = "$KUBE_RUN/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$KUBE_PAUSE_IMAGE"
  restrict_oom_score_adj = true
  # Pods' network namespaces under the state folder, not in the host's /run/netns.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$KUBE_RUN/cni"
EOF
  # isDefaultGateway gives pods a default route; no ipMasq: tests stay on this machine.
  cat >"$KUBE_RUN/cni/10-doce.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "doce-kube", "plugins": [
  {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "isDefaultGateway": true,
   "ipam": {"type": "host-local", "dataDir": "$KUBE_RUN/cni-ipam", "ranges": [[{"subnet": "$POD_CIDR"}]]}},
  {"type": "loopback"}]}
EOF
  start containerd containerd --config "$KUBE_RUN/containerd.toml"
  local ctr=(ctr -a "$KUBE_RUN/containerd.sock" -n k8s.io)
  wait_for "containerd (log: $KUBE_RUN/logs/containerd.log)" 30 "${ctr[@]}" version
  # The bridge plugin would make the bridge at the first pod; made now, this machine has the
  # pods' gateway address before any pod runs, for the tests to listen on.
  ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
  ip addr replace "$POD_GATEWAY/${POD_CIDR#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # Docker's FORWARD policy is DROP: let pod traffic through the bridge.
  iptables -I FORWARD -i "$BRIDGE" -j ACCEPT -m comment --comment doce-kube
  iptables -I FORWARD -o "$BRIDGE" -j ACCEPT -m comment --comment doce-kube
  echo forward >>"$KUBE_RUN/host-changes"
  "${ctr[@]}" images import "$KUBE_PAUSE_TAR" >/dev/null
  # The workspace image goes in while the control plane starts.
  (docker save "$OPENCODE_IMAGE" | "${ctr[@]}" images import - >/dev/null) >"$KUBE_RUN/logs/image-import.log" 2>&1 &
  local import_pid=$!

  start etcd "$ETCD_BIN" --data-dir "$KUBE_RUN/etcd" --unsafe-no-fsync --log-level warn \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "default=http://127.0.0.1:$peer_port"
  start apiserver "$KUBESERVER_BIN" apiserver --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --advertise-address "$node_ip" --secure-port "$api_port" \
    --tls-cert-file "$KUBE_RUN/pki/apiserver.crt" --tls-private-key-file "$KUBE_RUN/pki/apiserver.key" \
    --client-ca-file "$KUBE_RUN/pki/ca.crt" --authorization-mode Node,RBAC \
    --enable-admission-plugins NodeRestriction \
    --kubelet-client-certificate "$KUBE_RUN/pki/apiserver-kubelet.crt" \
    --kubelet-client-key "$KUBE_RUN/pki/apiserver-kubelet.key" --kubelet-preferred-address-types InternalIP \
    --service-account-issuer https://kubernetes.default.svc --service-account-key-file "$KUBE_RUN/pki/sa.pub" \
    --service-account-signing-key-file "$KUBE_RUN/pki/sa.key" --service-cluster-ip-range "$SERVICE_CIDR" \
    --v 1
  wait_for "kube-apiserver (log: $KUBE_RUN/logs/apiserver.log)" 90 kubectl get --raw /readyz
  start controller-manager "$KUBESERVER_BIN" controller-manager \
    --kubeconfig "$KUBE_RUN/controller-manager.kubeconfig" --bind-address 127.0.0.1 --secure-port "$kcm_port" \
    --use-service-account-credentials --service-account-private-key-file "$KUBE_RUN/pki/sa.key" \
    --root-ca-file "$KUBE_RUN/pki/ca.crt" --cluster-signing-cert-file "$KUBE_RUN/pki/ca.crt" \
    --cluster-signing-key-file "$KUBE_RUN/pki/ca.key" --allocate-node-cidrs --cluster-cidr "$CLUSTER_CIDR" \
    --node-cidr-mask-size 24 --service-cluster-ip-range "$SERVICE_CIDR" --enable-hostpath-provisioner \
    --leader-elect=false
  start scheduler "$KUBESERVER_BIN" scheduler --kubeconfig "$KUBE_RUN/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$sched_port" --leader-elect=false

  cat >"$KUBE_RUN/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $node_ip
port: $kubelet_port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $healthz_port
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $KUBE_RUN/pki/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$KUBE_RUN/containerd.sock
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP_ROOT
# This host has cgroup v1 (supported through 1.34), swap may be on, and Docker owns iptables.
failCgroupV1: false
failSwapOn: false
makeIPTablesUtilChains: false
podLogsDir: $KUBE_RUN/pod-logs
# The disk is small and shared: evict only when nearly full, and never collect images (the
# workspace image is imported, not pulled).
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, nodefs.inodesFree: 1%, imagefs.available: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
resolvConf: /etc/resolv.conf
EOF
  # The kubelet wants its cgroup root to exist in every hierarchy (cgroup v1 here).
  for p in /sys/fs/cgroup/*/; do
    mountpoint -q "$p" && mkdir -p "$p$CGROUP_ROOT"
  done
  start kubelet "$KUBESERVER_BIN" kubelet --config "$KUBE_RUN/kubelet.yaml" \
    --kubeconfig "$KUBE_RUN/kubelet.kubeconfig" --root-dir "$KUBE_RUN/kubelet" \
    --hostname-override "$NODE" --node-ip "$node_ip" --v 1
  wait_for "the node (log: $KUBE_RUN/logs/kubelet.log)" 90 \
    kubectl wait --for=condition=Ready "node/$NODE" --timeout 1s
  # kube-router finds its node at start: once the kubelet has registered it.
  start kube-router "$KUBE_ROUTER_BIN" --kubeconfig "$KUBE_RUN/kube-router.kubeconfig" \
    --hostname-override "$NODE" --run-firewall=true --run-router=false --run-service-proxy=false \
    --service-cluster-ip-range "$SERVICE_CIDR" --health-port "$router_port" --metrics-port 0
  wait_for "kube-router (log: $KUBE_RUN/logs/kube-router.log)" 60 curl -sf "http://127.0.0.1:$router_port/healthz"

  # PVCs: the hostpath provisioner of the controller-manager, as the default class.
  kubectl apply -f - >/dev/null <<EOF
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: hostpath
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: kubernetes.io/host-path
reclaimPolicy: Delete
---
apiVersion: v1
kind: Namespace
metadata: {name: $NAMESPACE}
EOF
  wait "$import_pid" || die "importing $OPENCODE_IMAGE failed; see $KUBE_RUN/logs/image-import.log"
  while read -r pid name; do
    kill -0 "$pid" 2>/dev/null || die "$name stopped; see $KUBE_RUN/logs/$name.log"
  done <"$KUBE_RUN/pids"
  log "kubernetes cluster up in $((SECONDS - t0))s (node $NODE at $node_ip, API $api, namespace $NAMESPACE, image $OPENCODE_IMAGE)"
  echo "$KUBE_RUN/admin.kubeconfig"
}

down() {
  [ -d "$KUBE_RUN" ] || return 0
  local t0=$SECONDS pid name ns owner
  owner=$(cat "$KUBE_RUN/owner" 2>/dev/null || true)
  if [ -n "$owner" ] && [ "$owner" != "${DOCE_KUBE_OWNER:-}" ] && kill -0 "$owner" 2>/dev/null; then
    die "the test cluster in $KUBE_RUN belongs to process $owner, which still runs"
  fi
  # Pods first, while the kubelet runs: it stops their containers and calls CNI DEL, which
  # removes their network namespaces and veths.
  if alive && kubectl get --raw /readyz >/dev/null 2>&1; then
    kubectl delete pods --all -A --grace-period 0 --force --wait=false >/dev/null 2>&1 || true
    local deadline=$((SECONDS + 30))
    while ((SECONDS < deadline)) && running_tasks | grep -q .; do sleep 0.5; done
  fi
  # Anything still running (a kubelet that died first) is killed through containerd.
  if [ -S "$KUBE_RUN/containerd.sock" ]; then
    for name in $(running_tasks); do
      ctr -a "$KUBE_RUN/containerd.sock" -n k8s.io tasks kill -s KILL "$name" >/dev/null 2>&1 || true
    done
  fi
  if [ -f "$KUBE_RUN/pids" ]; then
    tac "$KUBE_RUN/pids" | while read -r pid name; do kill "$pid" 2>/dev/null || true; done
    local deadline=$((SECONDS + 10))
    while alive && ((SECONDS < deadline)); do sleep 0.2; done
    tac "$KUBE_RUN/pids" | while read -r pid name; do kill -KILL "$pid" 2>/dev/null || true; done
  fi
  # containerd's shims outlive it; those of this cluster run from its state folder.
  for pid in $(pgrep -f "containerd-shim-runc-v2 -namespace k8s.io -id [0-9a-f]* -address $KUBE_RUN/containerd.sock" || true); do
    kill -KILL "$pid" 2>/dev/null || true
  done

  # Host changes, each undone by name.
  if grep -qx forward "$KUBE_RUN/host-changes" 2>/dev/null; then
    iptables -D FORWARD -i "$BRIDGE" -j ACCEPT -m comment --comment doce-kube 2>/dev/null || true
    iptables -D FORWARD -o "$BRIDGE" -j ACCEPT -m comment --comment doce-kube 2>/dev/null || true
  fi
  remove_kube_chains ip
  remove_kube_chains ip6
  if [ -f "$KUBE_RUN/ipsets-before" ]; then
    for name in $(comm -13 "$KUBE_RUN/ipsets-before" <(ipset list -n 2>/dev/null | sort)); do
      ipset destroy "$name" 2>/dev/null || true
    done
  fi
  ip link del "$BRIDGE" 2>/dev/null || true
  # Mounts under the cluster's folders (volumes, rootfs, shm, the network namespaces of pods the
  # kubelet did not stop in time), deepest first.
  { awk '{print $2}' /proc/self/mounts | grep -E "^($KUBE_RUN|/var/lib/kubelet)/" || true; } | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
  find /sys/fs/cgroup/*/"$CGROUP_ROOT" -depth -type d -exec rmdir {} + 2>/dev/null || true
  [ -f "$KUBE_RUN/host-paths" ] && while read -r p; do rm -rf "$p"; done <"$KUBE_RUN/host-paths"
  rm -rf "$KUBE_RUN"
  log "kubernetes cluster down in $((SECONDS - t0))s"
}

# running_tasks: the ids of the containers that run in the cluster's containerd.
running_tasks() {
  ctr -a "$KUBE_RUN/containerd.sock" -n k8s.io tasks ls 2>/dev/null | awk '$3 == "RUNNING" { print $1 }' || true
}

# remove_kube_chains FAMILY: removes the KUBE-* chains the cluster added (the kubelet's canary
# chains, kube-router's policy chains) and the rules that jump to them.
remove_kube_chains() {
  local ipt=${1}tables t c before=$KUBE_RUN/chains-before
  [ -f "$before" ] || return 0
  { kube_chains "$1" | grep -vxF -f "$before" || true; } | while read -r t c; do
    # Rules in any chain that jump to it, then the chain.
    { "${ipt}-save" -t "$t" | grep -E -- "-j $c( |\$)" || true; } | sed 's/^-A /-D /' | while read -r rule; do
      eval "$ipt -t $t $rule" 2>/dev/null || true
    done
    "$ipt" -t "$t" -F "$c" 2>/dev/null || true
  done
  { kube_chains "$1" | grep -vxF -f "$before" || true; } | while read -r t c; do
    "$ipt" -t "$t" -X "$c" 2>/dev/null || true
  done
}

case "${1:-}" in
up) up ;;
down) down ;;
*) die "usage: kube-cluster.sh up|down" ;;
esac
