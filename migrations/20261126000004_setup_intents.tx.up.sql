-- When a setup asked OpenCode for the session and the first prompt. A step that finds its
-- request made but no answer recorded (a worker died in between) looks in OpenCode before
-- asking again; a step that finds none asks at once.
ALTER TABLE projects ADD COLUMN session_requested_at TIMESTAMP;
--bun:split
ALTER TABLE projects ADD COLUMN prompt_requested_at TIMESTAMP;
