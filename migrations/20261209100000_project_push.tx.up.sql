-- The project's work pushed to its forge: the branch, the last push's status (running, done or
-- failed, empty before any), why it failed, when it started, the commit it pushed, and the
-- pull request open for the branch.
ALTER TABLE projects ADD COLUMN push_branch TEXT NOT NULL DEFAULT '';
--bun:split
ALTER TABLE projects ADD COLUMN push_status TEXT NOT NULL DEFAULT '';
--bun:split
ALTER TABLE projects ADD COLUMN push_error TEXT NOT NULL DEFAULT '';
--bun:split
ALTER TABLE projects ADD COLUMN push_at TIMESTAMP;
--bun:split
ALTER TABLE projects ADD COLUMN push_commit TEXT NOT NULL DEFAULT '';
--bun:split
ALTER TABLE projects ADD COLUMN pull_request_url TEXT NOT NULL DEFAULT '';
--bun:split
ALTER TABLE projects ADD COLUMN pull_request_number BIGINT NOT NULL DEFAULT 0;
