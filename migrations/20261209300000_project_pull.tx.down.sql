ALTER TABLE projects DROP COLUMN pull_behind;
--bun:split
ALTER TABLE projects DROP COLUMN pull_ahead;
--bun:split
ALTER TABLE projects DROP COLUMN pull_commit;
--bun:split
ALTER TABLE projects DROP COLUMN pull_at;
--bun:split
ALTER TABLE projects DROP COLUMN pull_error;
--bun:split
ALTER TABLE projects DROP COLUMN pull_status;
--bun:split
ALTER TABLE projects DROP COLUMN pull_base;
