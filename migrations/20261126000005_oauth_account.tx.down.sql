ALTER TABLE provider_connections DROP COLUMN oauth_account_id;
