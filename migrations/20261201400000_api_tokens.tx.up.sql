-- Personal access tokens for the JSON API. Only a SHA-256 of the token is kept (tokens are 32
-- random bytes, so a fast hash is enough); the prefix shown in lists is not enough to use one.
CREATE TABLE api_tokens (
  id              TEXT PRIMARY KEY,
  user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name            TEXT NOT NULL,
  token_hash      TEXT NOT NULL UNIQUE,
  display_prefix  TEXT NOT NULL,
  scope           TEXT NOT NULL CHECK (scope IN ('read', 'write')),
  created_at      TIMESTAMP NOT NULL,
  expires_at      TIMESTAMP NOT NULL,
  last_used_at    TIMESTAMP,
  -- When a use was last written to the audit log: at most one event per token per hour.
  last_audited_at TIMESTAMP,
  revoked_at      TIMESTAMP
);
--bun:split
CREATE INDEX api_tokens_user_id ON api_tokens (user_id);
