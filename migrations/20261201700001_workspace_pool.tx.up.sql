-- Prebuilt workspaces: started, healthy, unclaimed. A row is made before its Docker objects, so
-- nothing the reconciler starts goes unrecorded; a project that claims one takes its id and the
-- row is deleted in the same transaction, so a workspace is never given to two projects.
CREATE TABLE pool_workspaces (
  id                         TEXT PRIMARY KEY,
  image                      TEXT NOT NULL,
  status                     TEXT NOT NULL CHECK (status IN ('starting', 'free', 'failed')),
  container_id               TEXT NOT NULL DEFAULT '',
  container_name             TEXT NOT NULL DEFAULT '',
  host_port                  INTEGER NOT NULL DEFAULT 0,
  -- The workspace's OpenCode server password, Vault Transit ciphertext bound to the id the
  -- project will have.
  server_password_ciphertext TEXT NOT NULL DEFAULT '',
  error                      TEXT NOT NULL DEFAULT '',
  created_at                 TIMESTAMP NOT NULL,
  ready_at                   TIMESTAMP
);
--bun:split
CREATE INDEX pool_workspaces_free ON pool_workspaces (status, image, created_at);
