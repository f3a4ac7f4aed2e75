ALTER TABLE projects DROP COLUMN egress_allow;
--bun:split
ALTER TABLE projects DROP COLUMN egress_mode;
