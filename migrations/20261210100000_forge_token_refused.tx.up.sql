-- When a forge last refused a connection's token (revoked, expired, or without the access a
-- push, pull or import needed); NULL while it works. Replacing the token clears it.
ALTER TABLE forge_connections ADD COLUMN token_refused_at TIMESTAMP;
