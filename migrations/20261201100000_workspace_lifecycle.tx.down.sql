-- Back to the statuses before stop and start: a stopped workspace counts as ready again, which
-- the old code starts when its owner opens it (ProjectEnsureRunning).
{{if .Postgres}}
UPDATE projects SET status = 'ready' WHERE status IN ('stopping', 'stopped', 'starting');
--bun:split
ALTER TABLE projects DROP CONSTRAINT projects_status_check;
--bun:split
ALTER TABLE projects ADD CONSTRAINT projects_status_check
  CHECK (status IN ('pending', 'setting-up', 'ready', 'failed', 'cancelled', 'deleting', 'deleted'));
{{else}}
CREATE TABLE projects_new (
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
  server_password_ciphertext TEXT NOT NULL DEFAULT '',
  created_at           TIMESTAMP NOT NULL,
  updated_at           TIMESTAMP NOT NULL,
  deleted_at           TIMESTAMP,
  request_id           TEXT,
  session_requested_at TIMESTAMP,
  prompt_requested_at  TIMESTAMP,
  UNIQUE (owner_user_id, slug),
  UNIQUE (owner_user_id, request_id)
);
--bun:split
INSERT INTO projects_new (id, owner_user_id, name, slug, prompt, provider_id, model_id, status, setup_step,
  setup_attempt, setup_error, workflow_id, container_id, container_name, host_port, opencode_session_id,
  prompt_sent_at, server_password_ciphertext, created_at, updated_at, deleted_at, request_id,
  session_requested_at, prompt_requested_at)
SELECT id, owner_user_id, name, slug, prompt, provider_id, model_id, CASE WHEN status IN ('stopping', 'stopped', 'starting') THEN 'ready' ELSE status END, setup_step,
  setup_attempt, setup_error, workflow_id, container_id, container_name, host_port, opencode_session_id,
  prompt_sent_at, server_password_ciphertext, created_at, updated_at, deleted_at, request_id,
  session_requested_at, prompt_requested_at
FROM projects;
--bun:split
DROP TABLE projects;
--bun:split
ALTER TABLE projects_new RENAME TO projects;
--bun:split
CREATE INDEX projects_owner ON projects (owner_user_id, created_at);
{{end}}
