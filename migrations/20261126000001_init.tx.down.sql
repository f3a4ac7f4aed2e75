DROP TABLE audit_events;
--bun:split
DROP TABLE projects;
--bun:split
DROP TABLE provider_connections;
--bun:split
DROP TABLE user_settings;
--bun:split
DROP TABLE sessions;
--bun:split
DROP TABLE users;
