-- The account an OAuth login signed in to (ChatGPT's account id, which OpenCode sends with
-- every request). An identifier, not a secret.
ALTER TABLE provider_connections ADD COLUMN oauth_account_id TEXT;
