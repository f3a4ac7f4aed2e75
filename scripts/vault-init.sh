#!/usr/bin/env bash
# vault-init.sh ADDR KEYFILE: initialises a new Vault server at ADDR with one unseal key, keeping
# the unseal key and root token in KEYFILE (mode 0600; keep it safe, apart from Vault's storage),
# and unseals it. On an initialised Vault it only unseals: run it after every Vault restart.
source "$(dirname "$0")/lib.sh"
[ $# -eq 2 ] || die "usage: vault-init.sh ADDR KEYFILE   (e.g. http://127.0.0.1:8200 ~/doce-vault-init.json)"
addr=$1 keyfile=$2
[ -x "$VAULT_BIN" ] || "$ROOT/scripts/tools.sh"
export VAULT_ADDR=$addr
# sys/health answers 501 (not initialised) or 503 (sealed) before it is usable; any answer will do.
wait_for "vault at $addr" 30 curl -s -o /dev/null "$addr/v1/sys/health"
if [ "$("$VAULT_BIN" status -format=json 2>/dev/null | tr -d ' \n' | sed -n 's/.*"initialized":\([a-z]*\).*/\1/p')" != true ]; then
  [ ! -s "$keyfile" ] || die "$keyfile exists but Vault at $addr is not initialised: is it the right Vault?"
  log "initialising vault at $addr (unseal key and root token in $keyfile)"
  (umask 077 && "$VAULT_BIN" operator init -key-shares=1 -key-threshold=1 -format=json >"$keyfile.tmp") && mv "$keyfile.tmp" "$keyfile"
fi
[ -s "$keyfile" ] || die "no $keyfile: the unseal key of the Vault at $addr is where its init put it"
unseal=$(sed -n 's/.*"unseal_keys_b64": *\[ *"\([^"]*\)".*/\1/p' <(tr -d '\n' <"$keyfile"))
"$VAULT_BIN" operator unseal "$unseal" >/dev/null
wait_for "vault unseal" 30 curl -sf "$addr/v1/sys/health"
log "vault at $addr is unsealed; its root token is in $keyfile"
