-- Users who can log in with POST /login. Managed through the admin API.
-- password_hash: "pbkdf2-sha256$<iterations>$<salt>$<hash>" (see src/auth/password.rs).
CREATE TABLE users (
  id TEXT PRIMARY KEY,
  username TEXT NOT NULL UNIQUE,
  display_name TEXT NOT NULL,
  password_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
