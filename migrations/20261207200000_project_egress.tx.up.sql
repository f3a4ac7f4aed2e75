-- What a project's workspace reaches on the internet (package egress): open, allow-list or off;
-- empty: the operator's default (DOCE_WORKSPACE_EGRESS). egress_allow is the project's own
-- allow list, host names comma-separated.
ALTER TABLE projects ADD COLUMN egress_mode TEXT NOT NULL DEFAULT '';
--bun:split
ALTER TABLE projects ADD COLUMN egress_allow TEXT NOT NULL DEFAULT '';
