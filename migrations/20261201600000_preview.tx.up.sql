-- Where a workspace's preview port (an app the agent serves) is published; 0 for containers
-- made before previews.
ALTER TABLE projects ADD COLUMN preview_host_port INTEGER NOT NULL DEFAULT 0;
--bun:split
-- Keys doce signs with (the preview's tokens and cookies), sealed by Vault Transit: every web
-- process of one installation reads the same key, and a restart keeps it.
CREATE TABLE signing_keys (
    name TEXT PRIMARY KEY,
    ciphertext TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
--bun:split
-- Preview tokens already exchanged for a cookie: a token works once, whichever web process
-- sees it. Rows are kept until the token would have expired anyway.
CREATE TABLE preview_token_uses (
    id TEXT PRIMARY KEY,
    expires_at TIMESTAMP NOT NULL
);
--bun:split
CREATE INDEX preview_token_uses_expires_at ON preview_token_uses (expires_at);
