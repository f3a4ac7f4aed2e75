-- Browsers a user has signed in from, known by a cookie doce gave them (only its SHA-256 is
-- kept): a sign-in from one is throttled on its own, so guesses at the account from elsewhere
-- never lock its owner out.
CREATE TABLE login_devices (
  token_hash   TEXT PRIMARY KEY,
  id           TEXT NOT NULL UNIQUE,
  user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at   TIMESTAMP NOT NULL
);
--bun:split
CREATE INDEX login_devices_user ON login_devices (user_id, created_at);
--bun:split
-- Account throttles are now per account and source ("alice@203.0.113.7"): the old per-account
-- counts start again under the new keys.
DELETE FROM login_throttles WHERE kind = 'account';
