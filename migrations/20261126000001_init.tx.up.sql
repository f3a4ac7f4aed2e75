CREATE TABLE users (
  id            TEXT PRIMARY KEY,
  username      TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL,
  role          TEXT NOT NULL CHECK (role IN ('admin', 'user')),
  created_at    TIMESTAMP NOT NULL
);
--bun:split
CREATE TABLE sessions (
  id          TEXT PRIMARY KEY,
  user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  token_hash  TEXT NOT NULL UNIQUE,
  created_at  TIMESTAMP NOT NULL,
  expires_at  TIMESTAMP NOT NULL
);
--bun:split
CREATE INDEX sessions_user_id ON sessions (user_id);
--bun:split
CREATE TABLE user_settings (
  user_id                   TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  preferred_provider_id     TEXT,
  default_model             TEXT,
  provider_auth_initialized BOOLEAN NOT NULL DEFAULT FALSE,
  migration_completed_at    TIMESTAMP,
  updated_at                TIMESTAMP NOT NULL
);
--bun:split
CREATE TABLE provider_connections (
  id                       TEXT PRIMARY KEY,
  user_id                  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  provider_id              TEXT NOT NULL,
  auth_type                TEXT NOT NULL CHECK (auth_type IN ('api', 'oauth', 'wellknown')),
  -- Vault Transit ciphertexts (vault:vN:...), each bound to user, provider and field.
  api_key_ciphertext       TEXT,
  oauth_refresh_ciphertext TEXT,
  oauth_access_ciphertext  TEXT,
  oauth_expires_at         TIMESTAMP,
  oauth_enterprise_url     TEXT,
  wellknown_url            TEXT,
  wellknown_ciphertext     TEXT,
  -- Custom OpenAI-compatible providers: where the API lives and which models it serves.
  base_url                 TEXT,
  model_ids                TEXT,
  key_version              INTEGER NOT NULL DEFAULT 0,
  display_hint             TEXT NOT NULL DEFAULT '',
  status                   TEXT NOT NULL DEFAULT 'connected'
                             CHECK (status IN ('connected', 'expired', 'error', 'revoked')),
  error_message            TEXT,
  last_used_at             TIMESTAMP,
  created_at               TIMESTAMP NOT NULL,
  updated_at               TIMESTAMP NOT NULL,
  UNIQUE (user_id, provider_id)
);
--bun:split
CREATE INDEX provider_connections_status ON provider_connections (status);
--bun:split
CREATE TABLE projects (
  id                   TEXT PRIMARY KEY,
  owner_user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name                 TEXT NOT NULL,
  slug                 TEXT NOT NULL,
  prompt               TEXT NOT NULL,
  provider_id          TEXT NOT NULL,
  model_id             TEXT NOT NULL,
  status               TEXT NOT NULL
                         CHECK (status IN ('pending', 'setting-up', 'ready', 'failed', 'cancelled', 'deleting', 'deleted')),
  setup_step           TEXT NOT NULL DEFAULT '',
  setup_attempt        INTEGER NOT NULL DEFAULT 0,
  setup_error          TEXT NOT NULL DEFAULT '',
  workflow_id          TEXT NOT NULL DEFAULT '',
  container_id         TEXT NOT NULL DEFAULT '',
  container_name       TEXT NOT NULL DEFAULT '',
  host_port            INTEGER NOT NULL DEFAULT 0,
  opencode_session_id  TEXT NOT NULL DEFAULT '',
  prompt_sent_at       TIMESTAMP,
  -- The project's OpenCode server password, Vault Transit ciphertext bound to the project.
  server_password_ciphertext TEXT NOT NULL DEFAULT '',
  created_at           TIMESTAMP NOT NULL,
  updated_at           TIMESTAMP NOT NULL,
  deleted_at           TIMESTAMP,
  -- The client's idempotency key: a repeated create with the same key finds this project.
  request_id           TEXT,
  UNIQUE (owner_user_id, slug),
  UNIQUE (owner_user_id, request_id)
);
--bun:split
CREATE INDEX projects_owner ON projects (owner_user_id, created_at);
--bun:split
CREATE TABLE audit_events (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  actor_id    TEXT NOT NULL,
  action      TEXT NOT NULL,
  target_type TEXT NOT NULL,
  target_id   TEXT NOT NULL,
  detail      TEXT NOT NULL DEFAULT '',
  created_at  TIMESTAMP NOT NULL
);
--bun:split
CREATE INDEX audit_events_actor ON audit_events (actor_id, created_at);
