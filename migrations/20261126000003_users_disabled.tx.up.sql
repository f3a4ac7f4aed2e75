-- A disabled user cannot sign in; their sessions end when they are disabled.
ALTER TABLE users ADD COLUMN disabled_at TIMESTAMP;
