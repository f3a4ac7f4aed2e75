#!/usr/bin/env bash
# vault-approle.sh ADDR DIR [OWNER]: sets Vault at ADDR up for doce in production, with an admin token in
# VAULT_TOKEN (the root token from vault-init.sh, or one under deploy/vault/doce-admin-policy.hcl
# plus rights on sys/auth and sys/policy): the transit engine and doce's derived key, the
# policies in deploy/vault, and an AppRole "doce" under the least-privilege service policy. The
# role id and a fresh secret id go to DIR/role-id and DIR/secret-id (mode 0600), for
# VAULT_ROLE_ID_FILE and VAULT_SECRET_ID_FILE; with OWNER (65532 for doce's image) they are
# given to that user. Running it again keeps what exists and issues a new secret id.
source "$(dirname "$0")/lib.sh"
[ $# -eq 2 ] || [ $# -eq 3 ] || die "usage: VAULT_TOKEN=<admin token> vault-approle.sh ADDR DIR [OWNER]"
[ -n "${VAULT_TOKEN:-}" ] || die "set VAULT_TOKEN to an admin token (the root token from vault-init.sh)"
addr=$1 dir=$2 owner=${3:-}
[ -x "$VAULT_BIN" ] || "$ROOT/scripts/tools.sh"
export VAULT_ADDR=$addr
mount=${DOCE_VAULT_TRANSIT_MOUNT:-transit} key=${DOCE_VAULT_TRANSIT_KEY:-doce-credentials}
payload_key=${DOCE_VAULT_PAYLOAD_KEY:-doce-payloads}
approle=${DOCE_VAULT_APPROLE_MOUNT:-approle}
v() { "$VAULT_BIN" "$@" >/dev/null; }

# Lists are read whole before grep looks: grep -q stops reading at the first match, and under
# pipefail the writer's broken pipe would fail the test and enable what exists.
mounts=$("$VAULT_BIN" secrets list -format=json)
grep -q "\"$mount/\"" <<<"$mounts" || v secrets enable -path="$mount" transit
# A derived key: each ciphertext is bound to the row and field it was made for.
"$VAULT_BIN" read "$mount/keys/$key" >/dev/null 2>&1 || v write -f "$mount/keys/$key" derived=true
# The key whose data keys encrypt Temporal payloads.
"$VAULT_BIN" read "$mount/keys/$payload_key" >/dev/null 2>&1 || v write -f "$mount/keys/$payload_key" derived=true
auths=$("$VAULT_BIN" auth list -format=json)
grep -q "\"$approle/\"" <<<"$auths" || v auth enable -path="$approle" approle
v policy write doce "$ROOT/deploy/vault/doce-policy.hcl"
v policy write doce-admin "$ROOT/deploy/vault/doce-admin-policy.hcl"
# Tokens live an hour and are renewed by doce up to a day; then doce signs in again.
v write "auth/$approle/role/doce" token_policies=doce token_ttl=1h token_max_ttl=24h secret_id_ttl=0
mkdir -p "$dir"
(umask 077
  "$VAULT_BIN" read -field=role_id "auth/$approle/role/doce/role-id" >"$dir/role-id"
  "$VAULT_BIN" write -f -field=secret_id "auth/$approle/role/doce/secret-id" >"$dir/secret-id")
if [ -n "$owner" ]; then
  chown "$owner" "$dir/role-id" "$dir/secret-id"
  chmod 755 "$dir" # the files stay 0600: only OWNER reads them
fi
log "AppRole doce ready: VAULT_ROLE_ID_FILE=$dir/role-id VAULT_SECRET_ID_FILE=$dir/secret-id"
