-- A third kind of revocation: the tokens of one user issued before a time (kind
-- 'sub_before', the time in `issued_before`), which a change of the user's room grants
-- stores so that only tokens with the new grants work (src/store/revocations.rs).
-- SQLite cannot change a CHECK constraint in place, so the table is rebuilt.
CREATE TABLE revocations_next (
  kind TEXT NOT NULL CHECK (kind IN ('jti', 'sub', 'sub_before')),
  value TEXT NOT NULL,
  until INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  issued_before INTEGER,
  PRIMARY KEY (kind, value)
);
INSERT INTO revocations_next (kind, value, until, created_at)
  SELECT kind, value, until, created_at FROM revocations;
DROP TABLE revocations;
ALTER TABLE revocations_next RENAME TO revocations;
CREATE INDEX revocations_until ON revocations (until);
