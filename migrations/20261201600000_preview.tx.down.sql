DROP TABLE preview_token_uses;
--bun:split
DROP TABLE signing_keys;
--bun:split
ALTER TABLE projects DROP COLUMN preview_host_port;
