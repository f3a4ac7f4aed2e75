-- Git forges a user connected (GitHub, GitLab, Gitea) by personal access token. The token is
-- Vault Transit ciphertext bound to the user, this row and the field; base_url is the forge's
-- web address as normalized (https://github.com for github.com), one connection per forge.
CREATE TABLE forge_connections (
  id               TEXT PRIMARY KEY,
  user_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  kind             TEXT NOT NULL CHECK (kind IN ('github', 'gitlab', 'gitea')),
  base_url         TEXT NOT NULL,
  -- The account the token signs in as, as the forge said when it was checked.
  account_login    TEXT NOT NULL,
  account_name     TEXT NOT NULL DEFAULT '',
  token_ciphertext TEXT NOT NULL,
  key_version      INTEGER NOT NULL DEFAULT 0,
  display_hint     TEXT NOT NULL DEFAULT '',
  created_at       TIMESTAMP NOT NULL,
  updated_at       TIMESTAMP NOT NULL,
  UNIQUE (user_id, base_url)
);
