-- The configuration a prebuilt workspace's OpenCode loaded (agent.ConfigSum of its
-- opencode.json). A project claims one whose configuration is its own, or one on the base
-- configuration it can rewrite; rows from before have none and are replaced.
ALTER TABLE pool_workspaces ADD COLUMN config_sum TEXT NOT NULL DEFAULT '';
