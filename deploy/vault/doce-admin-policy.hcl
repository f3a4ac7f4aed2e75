# For the operator who sets doce up and rotates its key (doce keys rotate): create the key,
# rotate it, and retire old versions once everything is rewrapped. Not for the running services.
path "transit/keys/doce-credentials" {
  capabilities = ["create", "read", "update"]
}
path "transit/keys/doce-credentials/rotate" {
  capabilities = ["update"]
}
path "transit/keys/doce-credentials/config" {
  capabilities = ["update"]
}
path "transit/rewrap/doce-credentials" {
  capabilities = ["update"]
}
path "sys/mounts" {
  capabilities = ["read"]
}
path "sys/mounts/transit" {
  capabilities = ["create", "read", "update"]
}
# The payload key: created once, rotated when wanted (new data keys are wrapped by the newest
# version; older versions must keep decrypting as long as Temporal retains histories).
path "transit/keys/doce-payloads" {
  capabilities = ["create", "read", "update"]
}
path "transit/keys/doce-payloads/rotate" {
  capabilities = ["update"]
}
