ALTER TABLE pool_workspaces DROP COLUMN config_sum;
