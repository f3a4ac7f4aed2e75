ALTER TABLE provider_connections DROP COLUMN wellknown_env;
