ALTER TABLE forge_connections DROP COLUMN token_refused_at;
