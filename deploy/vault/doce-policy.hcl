# What doce's web tier and workers need on Vault, and nothing more: use the transit key
# doce-credentials (encrypt, decrypt, rewrap) and read its versions.
path "transit/encrypt/doce-credentials" {
  capabilities = ["update"]
}
path "transit/decrypt/doce-credentials" {
  capabilities = ["update"]
}
path "transit/rewrap/doce-credentials" {
  capabilities = ["update"]
}
path "transit/keys/doce-credentials" {
  capabilities = ["read"]
}
# Temporal payloads: data keys from the payload key doce-payloads (envelope encryption), and
# unwrapping them to decode. Its old versions are never retired while histories need them.
path "transit/datakey/plaintext/doce-payloads" {
  capabilities = ["update"]
}
path "transit/decrypt/doce-payloads" {
  capabilities = ["update"]
}
path "transit/keys/doce-payloads" {
  capabilities = ["read"]
}
