-- A random bucket per registered room (0 <= bucket < 2^52, exact as a JS number), so a
-- revocation's push can be split into ranges of buckets, each handed to its own request:
-- its reach does not depend on one request's subrequest budget, nor on room names
-- (src/objects/fanout/).
ALTER TABLE active_rooms ADD COLUMN bucket INTEGER NOT NULL DEFAULT 0;
UPDATE active_rooms SET bucket = random() & 4503599627370495;
CREATE INDEX active_rooms_bucket ON active_rooms (bucket);
