ALTER TABLE projects DROP COLUMN import_bytes;
--bun:split
ALTER TABLE projects DROP COLUMN import_total_objects;
--bun:split
ALTER TABLE projects DROP COLUMN import_objects;
