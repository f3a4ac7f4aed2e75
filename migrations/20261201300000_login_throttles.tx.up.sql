-- Failed sign-ins counted per account (lower-cased username, whether or not it exists) and per
-- client address, so every doce serve process sharing the database throttles alike.
CREATE TABLE login_throttles (
  kind            TEXT NOT NULL CHECK (kind IN ('account', 'address')),
  subject         TEXT NOT NULL,
  failures        INTEGER NOT NULL,
  locked_until    TIMESTAMP,
  last_failure_at TIMESTAMP NOT NULL,
  PRIMARY KEY (kind, subject)
);
