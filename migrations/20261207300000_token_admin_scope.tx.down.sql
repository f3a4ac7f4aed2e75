-- Back to read and write: admin tokens become read-write, which cannot manage accounts
-- before this migration either.
UPDATE api_tokens SET scope = 'write' WHERE scope = 'admin';
--bun:split
{{if .Postgres}}
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_scope_check;
--bun:split
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_scope_check CHECK (scope IN ('read', 'write'));
{{else}}
CREATE TABLE api_tokens_new (
  id              TEXT PRIMARY KEY,
  user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name            TEXT NOT NULL,
  token_hash      TEXT NOT NULL UNIQUE,
  display_prefix  TEXT NOT NULL,
  scope           TEXT NOT NULL CHECK (scope IN ('read', 'write')),
  created_at      TIMESTAMP NOT NULL,
  expires_at      TIMESTAMP NOT NULL,
  last_used_at    TIMESTAMP,
  last_audited_at TIMESTAMP,
  revoked_at      TIMESTAMP
);
--bun:split
INSERT INTO api_tokens_new (id, user_id, name, token_hash, display_prefix, scope, created_at, expires_at, last_used_at, last_audited_at, revoked_at)
SELECT id, user_id, name, token_hash, display_prefix, scope, created_at, expires_at, last_used_at, last_audited_at, revoked_at FROM api_tokens;
--bun:split
DROP TABLE api_tokens;
--bun:split
ALTER TABLE api_tokens_new RENAME TO api_tokens;
--bun:split
CREATE INDEX api_tokens_user_id ON api_tokens (user_id);
{{end}}
