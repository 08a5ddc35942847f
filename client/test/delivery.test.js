// Delivery: every message once, in seq order, across drops and resumes; a gap says what
// the room no longer keeps.
import { test } from "node:test";
import assert from "node:assert/strict";
import { connected, harness, message, settle } from "./fake.js";

const seqs = (h) => h.of("message").map((m) => m.seq);

test("a message at or below the last seq delivered is not delivered again", async () => {
  const h = await connected();
  h.socket.push(message(1), message(2), message(3));
  h.socket.push(message(2), message(3), message(4));
  h.socket.pushRaw(JSON.stringify(message(1)));
  assert.deepEqual(seqs(h), [1, 2, 3, 4]);
  assert.equal(h.client.lastSeq, 4);
});

test("a resume asks for since=<last seq>, and its overlap with what was seen is skipped", async () => {
  const h = await connected();
  h.socket.push(message(1), message(2));
  h.socket.drop(1006);
  await h.timers.advance(1000);
  assert.match(h.socket.url, /\?since=2$/);
  // A replay overlapping what was seen, then live messages.
  h.socket.accept({ last_seq: 4 });
  h.socket.push(message(2), message(3), message(4));
  h.socket.push(message(5));
  assert.deepEqual(seqs(h), [1, 2, 3, 4, 5]);
  const all = seqs(h);
  assert.ok(all.every((s, i) => i === 0 || s > all[i - 1]), "strictly ascending");
});

test("a first connection without since starts at the room's position and resumes from it", async () => {
  const h = harness();
  await settle();
  assert.doesNotMatch(h.socket.url, /since/, "a new client asks for no replay");
  h.socket.accept({ last_seq: 41 });
  h.socket.drop(1006);
  await h.timers.advance(1000);
  assert.match(h.socket.url, /\?since=41$/, "what came while away is replayed");
});

test("since is asked for on the first connection when given", async () => {
  const h = harness({ since: 0 });
  await settle();
  assert.match(h.socket.url, /\?since=0$/);
  h.socket.accept({ last_seq: 2 });
  h.socket.push(message(1), message(2));
  assert.deepEqual(seqs(h), [1, 2]);
});

test("a resume point ahead of the room gives way to the room's position", async () => {
  const h = harness({ since: 500 });
  await settle();
  h.socket.accept({ last_seq: 10 });
  assert.equal(h.client.lastSeq, 10);
  h.socket.push(message(11));
  assert.deepEqual(seqs(h), [11]);
});

test("a gap is reported, and the messages after it are delivered", async () => {
  const h = await connected();
  h.socket.push(message(42));
  h.socket.drop(1006);
  await h.timers.advance(1000);
  h.socket.accept({ last_seq: 60 });
  h.socket.push({ type: "gap", from: 43, to: 57 }, message(58), message(59), message(60));
  assert.deepEqual(h.of("gap"), [{ from: 43, to: 57 }]);
  assert.deepEqual(seqs(h), [42, 58, 59, 60]);
  const order = h.events.filter(([k]) => k === "gap" || k === "message").map(([k, v]) => (k === "gap" ? "gap" : v.seq));
  assert.deepEqual(order, [42, "gap", 58, 59, 60]);
});

test("a gap moves the resume point past what is lost", async () => {
  const h = await connected();
  h.socket.push({ type: "gap", from: 1, to: 57 });
  h.socket.drop(1006);
  await h.timers.advance(1000);
  assert.match(h.socket.url, /\?since=57$/);
});
