-- The LLM gateway. A project's OpenCode holds a gateway token instead of the provider key; only
-- a SHA-256 of it is kept (32 random bytes, so a fast hash is enough). One per project: each
-- hand-over replaces it. It is bound to the connection it was issued for, so a connection
-- removed and made again does not honour it.
CREATE TABLE gateway_tokens (
  project_id    TEXT PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
  token_hash    TEXT NOT NULL UNIQUE,
  connection_id TEXT NOT NULL REFERENCES provider_connections (id) ON DELETE CASCADE,
  created_at    TIMESTAMP NOT NULL
);
--bun:split
-- One row per request the gateway forwarded. Tokens as the provider counted them; input
-- excludes cached input, which is cache_tokens. Cost in billionths of a dollar, from the model
-- catalog's prices at the time (0 when the model has none). day is the UTC date, YYYY-MM-DD,
-- so both engines group by it alike.
CREATE TABLE usage_records (
  id            TEXT PRIMARY KEY,
  user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  project_id    TEXT NOT NULL,
  provider_id   TEXT NOT NULL,
  model_id      TEXT NOT NULL,
  day           TEXT NOT NULL,
  created_at    TIMESTAMP NOT NULL,
  input_tokens  BIGINT NOT NULL,
  output_tokens BIGINT NOT NULL,
  cache_tokens  BIGINT NOT NULL,
  cost_nanos    BIGINT NOT NULL,
  latency_ms    BIGINT NOT NULL,
  status        INTEGER NOT NULL
);
--bun:split
CREATE INDEX usage_records_user_day ON usage_records (user_id, day);
--bun:split
CREATE INDEX usage_records_project_day ON usage_records (project_id, day);
--bun:split
-- Monthly budgets in billionths of a dollar: the admin's default (scope 'default', subject ''),
-- a user's set by an admin ('user', user id), and a lower one a user sets on a project
-- ('project', project id).
CREATE TABLE budgets (
  scope         TEXT NOT NULL CHECK (scope IN ('default', 'user', 'project')),
  subject_id    TEXT NOT NULL,
  monthly_nanos BIGINT NOT NULL CHECK (monthly_nanos >= 0),
  updated_at    TIMESTAMP NOT NULL,
  PRIMARY KEY (scope, subject_id)
);
