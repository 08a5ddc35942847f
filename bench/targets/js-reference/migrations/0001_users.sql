-- Users who can log in with POST /login, managed with PUT /admin/users/{username}.
-- salt and hash are standard base64; hash = PBKDF2-SHA256(password, salt, iterations), 32 bytes.
CREATE TABLE users (
  username TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  salt TEXT NOT NULL,
  hash TEXT NOT NULL,
  iterations INTEGER NOT NULL
);
