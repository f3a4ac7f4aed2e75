-- The environment variable a well-known connection's token is handed to OpenCode under, as the
-- organisation's /.well-known/opencode document names it (auth.env).
ALTER TABLE provider_connections ADD COLUMN wellknown_env TEXT;
