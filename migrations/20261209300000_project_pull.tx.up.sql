-- The base branch pulled into a project's workspace: the last pull's branch, status (running,
-- done or failed, empty before any), why it failed, when it started, the base commit it
-- merged, and how many commits the workspace's HEAD was ahead of and behind that base when the
-- pull ended (NULL: not counted).
ALTER TABLE projects ADD COLUMN pull_base TEXT NOT NULL DEFAULT '';
--bun:split
ALTER TABLE projects ADD COLUMN pull_status TEXT NOT NULL DEFAULT '';
--bun:split
ALTER TABLE projects ADD COLUMN pull_error TEXT NOT NULL DEFAULT '';
--bun:split
ALTER TABLE projects ADD COLUMN pull_at TIMESTAMP;
--bun:split
ALTER TABLE projects ADD COLUMN pull_commit TEXT NOT NULL DEFAULT '';
--bun:split
ALTER TABLE projects ADD COLUMN pull_ahead INTEGER;
--bun:split
ALTER TABLE projects ADD COLUMN pull_behind INTEGER;
