-- Per-room grants issued by POST /login: a JSON array of room patterns (exact names or
-- prefixes ending in "*"), or NULL for a token without a `rooms` claim.
ALTER TABLE users ADD COLUMN rooms TEXT;
