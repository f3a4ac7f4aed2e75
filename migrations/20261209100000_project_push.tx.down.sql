ALTER TABLE projects DROP COLUMN pull_request_number;
--bun:split
ALTER TABLE projects DROP COLUMN pull_request_url;
--bun:split
ALTER TABLE projects DROP COLUMN push_commit;
--bun:split
ALTER TABLE projects DROP COLUMN push_at;
--bun:split
ALTER TABLE projects DROP COLUMN push_error;
--bun:split
ALTER TABLE projects DROP COLUMN push_status;
--bun:split
ALTER TABLE projects DROP COLUMN push_branch;
