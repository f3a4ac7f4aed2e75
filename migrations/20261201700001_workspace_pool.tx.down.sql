DROP TABLE pool_workspaces;
