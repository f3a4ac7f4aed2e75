#!/usr/bin/env bash
# make run: installs what is missing, starts Temporal (SQLite file under data/), Vault (file
# storage under data/vault, initialised and unsealed here) and doce (web + worker in one
# process), and prints where to find them. Ctrl-C stops everything.
source "$(dirname "$0")/lib.sh"
source "$ROOT/scripts/services.sh"

"$ROOT/scripts/tools.sh"

DATA=${DOCE_DATA_DIR:-$ROOT/data}
LOGS=$DATA/logs
mkdir -p "$DATA" "$LOGS"
TEMPORAL_PORT=${TEMPORAL_PORT:-7233}
TEMPORAL_UI_PORT=${TEMPORAL_UI_PORT:-8233}
VAULT_PORT=${VAULT_PORT:-8200}
export DOCE_HTTP_ADDR=${DOCE_HTTP_ADDR:-127.0.0.1:8080}

trap stop_services EXIT
log "starting temporal on 127.0.0.1:$TEMPORAL_PORT (UI :$TEMPORAL_UI_PORT, data $DATA/temporal.db)"
start_temporal "$TEMPORAL_PORT" "$TEMPORAL_UI_PORT" "$DATA/temporal.db"
log "starting vault on 127.0.0.1:$VAULT_PORT (data $DATA/vault)"
start_vault_file "$VAULT_PORT" "$DATA/vault"

log "building doce"
(cd "$ROOT" && go build -o "$DATA/doce" ./cmd/doce)

export DOCE_DATA_DIR=$DATA
export TEMPORAL_ADDRESS=127.0.0.1:$TEMPORAL_PORT
export DOCE_TEMPORAL_UI_URL=http://127.0.0.1:$TEMPORAL_UI_PORT
export VAULT_ADDR=http://127.0.0.1:$VAULT_PORT
export DOCE_OPENCODE_IMAGE=$OPENCODE_IMAGE

cat <<MSG

  doce         http://$DOCE_HTTP_ADDR
  Temporal UI  http://127.0.0.1:$TEMPORAL_UI_PORT
  logs         $LOGS (Temporal, Vault); doce logs below
  stop         Ctrl-C

MSG
"$DATA/doce" dev &
doce_pid=$!
trap 'kill $doce_pid 2>/dev/null; wait $doce_pid 2>/dev/null; stop_services' EXIT
wait $doce_pid
