-- The setup's step table as its workflow last recorded it (at a failure, a retry, the end), so
-- the pages of finished setups are served from the database instead of querying Temporal.
ALTER TABLE projects ADD COLUMN setup_progress TEXT NOT NULL DEFAULT '';
