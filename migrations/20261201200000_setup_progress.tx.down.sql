ALTER TABLE projects DROP COLUMN setup_progress;
