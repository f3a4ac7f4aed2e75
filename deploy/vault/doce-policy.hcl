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
