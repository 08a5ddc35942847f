-- Revoked tokens (kind 'jti') and users (kind 'sub'), refused until `until` (unix
-- seconds, exclusive). Rows past `until` no longer matter: queries ignore them and every
-- revoke prunes them (src/store/revocations.rs).
CREATE TABLE revocations (
  kind TEXT NOT NULL CHECK (kind IN ('jti', 'sub')),
  value TEXT NOT NULL,
  until INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (kind, value)
);
CREATE INDEX revocations_until ON revocations (until);

-- Rooms that may have live sockets, so a revocation can be pushed to each of them. A
-- room adds itself when its first socket arrives and removes itself when its last one
-- leaves; `mark` orders those writes (src/store/rooms.rs).
CREATE TABLE active_rooms (
  room TEXT PRIMARY KEY,
  mark INTEGER NOT NULL,
  since INTEGER NOT NULL
);
