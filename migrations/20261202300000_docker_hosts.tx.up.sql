-- Docker hosts: each worker that runs workspaces serves one Docker engine and registers it here
-- under a name, with what it can hold. Plain SQL for every database doce runs on.
CREATE TABLE hosts (
  name                   TEXT PRIMARY KEY,
  -- The task queue the host's worker takes its Docker and OpenCode activities from.
  task_queue             TEXT NOT NULL,
  -- The engine the worker drives (its DOCKER_HOST; empty: the default socket), for the web
  -- tier's downloads, and where the host's workspace ports are published and reached.
  docker_host            TEXT NOT NULL DEFAULT '',
  address                TEXT NOT NULL DEFAULT '',
  -- What the host can hold: workspaces, and memory at each workspace's limit (0: no limit).
  max_workspaces         INTEGER NOT NULL DEFAULT 0,
  memory_bytes           BIGINT NOT NULL DEFAULT 0,
  workspace_memory_bytes BIGINT NOT NULL DEFAULT 0,
  -- A drained host takes no new projects; the ones it has keep working. Set by an operator,
  -- kept across the worker's restarts.
  drained                BOOLEAN NOT NULL DEFAULT FALSE,
  -- The worker writes heartbeat_at every heartbeat_seconds while its engine answers; a host
  -- whose beats stopped (or whose worker said it stopped) is unreachable.
  heartbeat_seconds      INTEGER NOT NULL,
  created_at             TIMESTAMP NOT NULL,
  started_at             TIMESTAMP NOT NULL,
  heartbeat_at           TIMESTAMP NOT NULL,
  stopped_at             TIMESTAMP
);
--bun:split
-- The host a project's workspace is on; empty for projects not placed yet (and those made
-- before hosts, until their one host adopts them).
ALTER TABLE projects ADD COLUMN host TEXT NOT NULL DEFAULT '';
--bun:split
CREATE INDEX projects_host ON projects (host);
--bun:split
ALTER TABLE pool_workspaces ADD COLUMN host TEXT NOT NULL DEFAULT '';
