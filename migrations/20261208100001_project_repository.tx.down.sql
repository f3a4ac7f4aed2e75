ALTER TABLE projects DROP COLUMN repository_ref;
--bun:split
ALTER TABLE projects DROP COLUMN repository_url;
