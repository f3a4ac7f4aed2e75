ALTER TABLE projects DROP COLUMN prompt_requested_at;
--bun:split
ALTER TABLE projects DROP COLUMN session_requested_at;
