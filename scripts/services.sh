# Starts Temporal and Vault servers for doce. Sourced by run.sh and test.sh after tools.sh.
#   start_temporal PORT UI_PORT [DB_FILE]  -- UI_PORT 0: headless; no DB_FILE: in memory
#   start_vault_dev PORT TOKEN             -- dev mode: in memory, for tests
#   start_vault_file PORT DIR              -- file storage, initialised and unsealed here
#   start_postgres PORT                    -- a private cluster in a temporary folder, for tests
# Each records its pid in SERVICE_PIDS; stop_services stops them.
SERVICE_PIDS=()
# Background jobs of a script ignore the terminal's Ctrl-C, so turn INT and TERM into an exit
# and let the caller's EXIT trap stop them.
trap 'exit 130' INT TERM

start_temporal() {
  local port=$1 ui=$2 db=${3:-} args=()
  args=(server start-dev --ip 127.0.0.1 --port "$port" --log-level warn
    # Eager activity execution saves a task round trip per activity: the activity starts in
    # the worker's reply to the workflow task instead of after a poll.
    --dynamic-config-value system.enableActivityEagerExecution=true)
  # The UI decodes doce's encrypted payloads through doce's codec endpoint (admins only).
  if [ "$ui" = 0 ]; then args+=(--headless); else args+=(--ui-port "$ui" --ui-codec-endpoint "http://${DOCE_HTTP_ADDR:-127.0.0.1:8080}/codec"); fi
  [ -n "$db" ] && args+=(--db-filename "$db")
  for sa in "${SEARCH_ATTRIBUTES[@]}"; do args+=(--search-attribute "$sa"); done
  "$TEMPORAL_BIN" "${args[@]}" >"$LOGS/temporal.log" 2>&1 &
  SERVICE_PIDS+=($!)
  wait_for "temporal (log: $LOGS/temporal.log)" 60 "$TEMPORAL_BIN" operator cluster health --address "127.0.0.1:$port"
}

start_vault_dev() {
  local port=$1 token=$2
  "$VAULT_BIN" server -dev -dev-no-store-token -dev-root-token-id="$token" \
    -dev-listen-address="127.0.0.1:$port" >"$LOGS/vault.log" 2>&1 &
  SERVICE_PIDS+=($!)
  wait_for "vault (log: $LOGS/vault.log)" 30 curl -sf "http://127.0.0.1:$port/v1/sys/health"
}

# start_vault_file keeps Vault's data in DIR across restarts. The first start initialises it
# with one unseal key; key and root token are kept in DIR/init.json, mode 0600. Every start
# unseals. Sets VAULT_TOKEN.
start_vault_file() {
  local port=$1 dir=$2 addr="http://127.0.0.1:$1"
  mkdir -p "$dir/storage"
  chmod 700 "$dir"
  cat >"$dir/vault.hcl" <<HCL
storage "file" { path = "$dir/storage" }
listener "tcp" {
  address     = "127.0.0.1:$port"
  tls_disable = true
}
disable_mlock = true
api_addr      = "$addr"
ui            = false
HCL
  "$VAULT_BIN" server -config="$dir/vault.hcl" >"$LOGS/vault.log" 2>&1 &
  SERVICE_PIDS+=($!)
  "$ROOT/scripts/vault-init.sh" "$addr" "$dir/init.json"
  VAULT_TOKEN=$(sed -n 's/.*"root_token": *"\([^"]*\)".*/\1/p' <(tr -d '\n' <"$dir/init.json"))
  export VAULT_TOKEN
}

# start_postgres makes a new cluster with initdb in a temporary folder (removed by
# stop_services) and serves it on 127.0.0.1:PORT with a random password for the role doce.
# PostgreSQL refuses to run as root, so root runs it as the postgres user Debian's package
# creates. Durability is off (fsync, full-page writes): the cluster lives for one test run.
# Sets POSTGRES_URL to the cluster's administrative database.
start_postgres() {
  local port=$1 dir pw as=()
  PG_BIN=$(postgres_bin) || die "PostgreSQL is not installed (Debian: apt-get install postgresql; scripts/tools.sh does it as root)"
  # /tmp, not TMPDIR: the postgres user must reach it.
  dir=$(mktemp -d /tmp/doce-postgres.XXXXXX)
  SERVICE_DIRS+=("$dir")
  pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  printf '%s' "$pw" >"$dir/pw"
  if [ "$(id -u)" = 0 ]; then
    chown -R postgres: "$dir"
    as=(runuser -u postgres --)
  fi
  "${as[@]}" "$PG_BIN/initdb" -D "$dir/data" -U doce --pwfile="$dir/pw" --auth=scram-sha-256 \
    -E UTF8 --locale=C.UTF-8 >"$LOGS/postgres-initdb.log" 2>&1 \
    || die "initdb failed; see $LOGS/postgres-initdb.log"
  rm -f "$dir/pw"
  # runuser passes the TERM of stop_services on to the server (a smart shutdown).
  "${as[@]}" "$PG_BIN/postgres" -D "$dir/data" -p "$port" -k "$dir" -c listen_addresses=127.0.0.1 \
    -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c max_connections=300 \
    >"$LOGS/postgres.log" 2>&1 &
  SERVICE_PIDS+=($!)
  wait_for "postgres (log: $LOGS/postgres.log)" 30 "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port"
  POSTGRES_URL="postgres://doce:$pw@127.0.0.1:$port/postgres?sslmode=disable"
}

# postgres_bin prints the bin folder of the newest PostgreSQL Debian's packages installed.
postgres_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$d" ] && [ -x "$d/initdb" ] && echo "$d"
}

SERVICE_DIRS=()

stop_services() {
  local pid
  for pid in "${SERVICE_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${SERVICE_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  SERVICE_PIDS=()
  for dir in "${SERVICE_DIRS[@]}"; do rm -rf "$dir"; done
  SERVICE_DIRS=()
}

# free_port prints a TCP port nothing on loopback listens on.
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 20000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}
