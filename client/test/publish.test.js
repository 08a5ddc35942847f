// Publishing: each publish settles with its own seq or its own refusal, matched by ref;
// publishes of one tick share a frame; nothing is sent before the welcome; what a drop
// leaves unanswered is rejected, what was never sent waits for the next socket.
import { test } from "node:test";
import assert from "node:assert/strict";
import { RoomError } from "../src/index.js";
import { connected, harness, message, settle } from "./fake.js";

const mine = { from: { id: "u1", name: "Alice" } };

test("publish resolves with the seq of the echo that carries its ref", async () => {
  const h = await connected();
  const a = h.client.publish({ text: "one" });
  const b = h.client.publish({ text: "two" });
  await settle();
  const [fa, fb] = h.socket.frames();
  assert.deepEqual(fa, { type: "publish", data: { text: "one" }, ref: fa.ref });
  assert.notEqual(fa.ref, fb.ref);
  // Answers may come in any order relative to each other's publishes: refs decide.
  h.socket.push(message(7, { ...mine, data: { text: "two" }, ref: fb.ref }), message(8, { ...mine, data: { text: "one" }, ref: fa.ref }));
  assert.equal(await a, 8);
  assert.equal(await b, 7);
  assert.deepEqual(h.of("message").map((m) => m.seq), [7, 8], "the echo is a message like any other");
  assert.equal("ref" in h.of("message")[0], false);
});

test("an error frame with the ref rejects that publish with a RoomError of its code", async () => {
  const h = await connected();
  const a = h.client.publish("ok");
  const b = h.client.publish("too fast");
  await settle();
  const [fa, fb] = h.socket.frames();
  h.socket.push({ type: "error", code: "rate_limited", message: "too many frames; slow down", ref: fb.ref }, message(1, { ...mine, ref: fa.ref }));
  await assert.rejects(b, (e) => e instanceof RoomError && e.code === "rate_limited" && e.message === "too many frames; slow down");
  assert.equal(await a, 1);
  assert.deepEqual(h.of("error"), [], "an answered refusal is not also an error event");
});

test("an error frame without a ref is an error event", async () => {
  const h = await connected();
  h.socket.push({ type: "error", code: "bad_frame", message: "what" });
  assert.equal(h.of("error")[0].code, "bad_frame");
  assert.equal(h.client.state, "open");
});

test("publishes made in one tick go out as one array frame", async () => {
  const h = await connected();
  for (const t of ["a", "b", "c"]) h.client.publish(t);
  await settle();
  h.client.publish("d");
  await settle();
  assert.equal(h.socket.sent.length, 2);
  assert.deepEqual(JSON.parse(h.socket.sent[0]).map((f) => f.data), ["a", "b", "c"]);
  assert.deepEqual(JSON.parse(h.socket.sent[1]).map((f) => f.data), ["d"]);
});

test("publishes made before the welcome are sent after it, in order, in one frame", async () => {
  const h = harness();
  const p = h.client.publish("early 1");
  h.client.publish("early 2");
  await settle();
  assert.equal(h.socket.sent.length, 0, "nothing goes out before the welcome");
  h.socket.accept();
  assert.equal(h.socket.sent.length, 1);
  const frames = h.socket.frames();
  assert.deepEqual(frames.map((f) => f.data), ["early 1", "early 2"]);
  h.socket.push(message(1, { ...mine, ref: frames[0].ref }));
  assert.equal(await p, 1);
});

test("on a drop, publishes in flight reject with connection_lost; unsent ones go on the next socket", async () => {
  const h = await connected();
  const inFlight = h.client.publish("sent");
  await settle();
  h.socket.drop(1006);
  const queued = h.client.publish("while away");
  await assert.rejects(inFlight, (e) => e instanceof RoomError && e.code === "connection_lost");
  await h.timers.advance(1000);
  h.socket.accept();
  const [f] = h.socket.frames();
  assert.equal(f.data, "while away");
  h.socket.push(message(1, { ...mine, ref: f.ref }));
  assert.equal(await queued, 1);
});

test("an echo replayed on resume has no ref and settles nothing", async () => {
  const h = await connected();
  const p = h.client.publish("x");
  let settled = false;
  p.catch(() => { settled = true; });
  await settle();
  h.socket.drop(1006);
  await settle();
  assert.equal(settled, true);
  await h.timers.advance(1000);
  h.socket.accept({ last_seq: 1 });
  h.socket.push(message(1, mine));
  assert.deepEqual(h.of("message").map((m) => m.seq), [1], "it was published: the resume shows it");
});

test("batches are split to stay within the frame-size bound", async () => {
  // Each publish frame is 118 bytes (the text is 80 bytes of UTF-8 in 40 characters): two
  // fit in 250 bytes as an array, three do not.
  const h = await connected({ maxFrameBytes: 250 });
  const text = "é".repeat(40);
  for (let i = 0; i < 3; i++) h.client.publish(text);
  await settle();
  assert.deepEqual(h.socket.sent.map((s) => JSON.parse(s).length), [2, 1]);
  for (const s of h.socket.sent) assert.ok(new TextEncoder().encode(s).length <= 250, s);
});

test("a publish too large for any frame is rejected and never sent", async () => {
  const h = await connected({ maxFrameBytes: 100 });
  await assert.rejects(h.client.publish("x".repeat(100)), (e) => e.code === "frame_too_large");
  await settle();
  assert.equal(h.socket.sent.length, 0);
  assert.equal(h.client.state, "open");
});

test("data that is not JSON is refused at once", async () => {
  const h = await connected();
  await assert.rejects(h.client.publish(undefined), TypeError);
  await assert.rejects(h.client.publish(() => 1), TypeError);
  const cyclic = {};
  cyclic.self = cyclic;
  await assert.rejects(h.client.publish(cyclic), TypeError);
  await assert.rejects(h.client.publish(10n), TypeError);
  assert.equal(await Promise.race([h.client.publish(null).then(() => "settled"), settle().then(() => "pending")]), "pending", "null is a JSON value");
});

test("close() rejects what was never sent with closed, and later publishes too", async () => {
  const h = harness();
  const queued = h.client.publish("never sent");
  await settle();
  h.client.close();
  await assert.rejects(queued, (e) => e.code === "closed");
  await assert.rejects(h.client.publish("late"), (e) => e instanceof RoomError && e.code === "closed");
});
