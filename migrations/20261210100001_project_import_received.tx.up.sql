-- What the clone of a project's repository received, as git reported it: objects of the total
-- it announced, and bytes (0 until reported; the setup page shows them beside the import step).
ALTER TABLE projects ADD COLUMN import_objects BIGINT NOT NULL DEFAULT 0;
--bun:split
ALTER TABLE projects ADD COLUMN import_total_objects BIGINT NOT NULL DEFAULT 0;
--bun:split
ALTER TABLE projects ADD COLUMN import_bytes BIGINT NOT NULL DEFAULT 0;
