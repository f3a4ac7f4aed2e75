ALTER TABLE pool_workspaces DROP COLUMN host;
--bun:split
DROP INDEX projects_host;
--bun:split
ALTER TABLE projects DROP COLUMN host;
--bun:split
DROP TABLE hosts;
