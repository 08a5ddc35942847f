-- Keys for the server API (/api/v1), managed through /admin/api-keys.
-- key_hash: lowercase hex SHA-256 of the whole key (src/auth/api_keys.rs); the key itself
-- is shown once, when it is made, and never stored.
-- scopes, rooms: JSON arrays of strings.
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  key_hash TEXT NOT NULL,
  scopes TEXT NOT NULL,
  rooms TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
