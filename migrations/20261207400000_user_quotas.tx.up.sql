-- An administrator's quotas for one user, over the defaults (DOCE_QUOTA_*): NULL keeps the
-- default, 0 means no limit.
CREATE TABLE user_quotas (
  user_id         TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  projects        INTEGER,
  running         INTEGER,
  create_per_hour INTEGER,
  updated_at      TIMESTAMP NOT NULL
);
