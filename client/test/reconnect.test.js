// Reconnecting: jittered exponential backoff, reset by a welcome, and what each close code
// asks of the client (retry or stop).
import { test } from "node:test";
import assert from "node:assert/strict";
import { RoomError } from "../src/index.js";
import { connected, harness, settle } from "./fake.js";

test("failed attempts back off exponentially with equal jitter, up to maxMs", async () => {
  for (const [random, expected] of [
    [0, [250, 500, 1000, 2000, 4000, 7500, 7500]],
    [1, [500, 1000, 2000, 4000, 8000, 15000, 15000]],
    [0.5, [375, 750, 1500, 3000, 6000, 11250, 11250]],
  ]) {
    const h = harness();
    h.random = random;
    await settle();
    const delays = [];
    for (let i = 0; i < expected.length; i++) {
      h.socket.drop(1006);
      const close = h.of("close").at(-1);
      delays.push(close.delayMs);
      assert.deepEqual(h.timers.pending(), [close.delayMs], "one timer: the next attempt");
      await h.timers.advance(close.delayMs);
    }
    assert.deepEqual(delays, expected, `random() = ${random}`);
    h.client.close();
  }
});

test("the backoff options are honoured", async () => {
  const h = harness({ backoff: { initialMs: 100, maxMs: 300 } });
  h.random = 1;
  await settle();
  const delays = [];
  for (let i = 0; i < 4; i++) {
    h.socket.drop(1006);
    delays.push(h.of("close").at(-1).delayMs);
    await h.timers.advance(1000);
  }
  assert.deepEqual(delays, [100, 200, 300, 300]);
});

test("a welcome resets the backoff", async () => {
  const h = harness();
  h.random = 1;
  await settle();
  h.socket.drop(1006);
  await h.timers.advance(500);
  h.socket.drop(1006);
  await h.timers.advance(1000);
  h.socket.accept();
  h.socket.drop(1006);
  assert.deepEqual(h.of("close").map((c) => c.delayMs), [500, 1000, 500]);
});

test("the states go connecting, open, reconnecting, connecting, open", async () => {
  const h = await connected();
  h.socket.drop(1011, "internal error");
  assert.equal(h.client.state, "reconnecting");
  await h.timers.advance(1000);
  h.socket.accept();
  assert.deepEqual(h.of("state"), ["open", "reconnecting", "connecting", "open"]);
  assert.equal(h.sockets.length, 2);
});

test("a drop clears the members until the next welcome", async () => {
  const h = await connected();
  h.socket.drop(1006);
  assert.equal(h.client.members.size, 0);
  assert.equal(h.of("members").at(-1).size, 0);
  assert.deepEqual(h.client.me, { id: "u1", name: "Alice" }, "who this is stays known");
});

// Each close code, and what the client does about it (protocol §3).
const CLOSES = [
  // code, reason, retries, error code
  [1006, "", true, "connection_lost"],
  [1001, "going away", true, "connection_lost"],
  [1000, "", true, "connection_lost"],
  [3000, "test: connection dropped", true, "connection_lost"],
  [1008, "rate limit exceeded", true, "rate_limited"],
  [1009, "frame too large", true, "frame_too_large"],
  [1011, "internal error", true, "internal"],
  [4001, "token_expired", true, "token_expired"],
  [1003, "binary frames are not supported", false, "unsupported_data"],
  [4003, "kicked", false, "kicked"],
  [4003, "revoked", false, "revoked"],
  [4003, "forbidden", false, "forbidden"],
  [4003, "something else", false, "forbidden"],
  [4009, "", false, "closed_4009"],
];

for (const [code, reason, retries, errorCode] of CLOSES) {
  test(`close ${code} ${reason || "(no reason)"}: ${retries ? "reconnect with backoff" : "stop"}`, async () => {
    const h = await connected({ token: (() => { let n = 0; return () => `tok${++n}`; })() });
    const pending = h.client.publish("in flight");
    await settle();
    h.socket.drop(code, reason);
    const [close] = h.of("close");
    assert.equal(close.code, code);
    assert.equal(close.reason, reason);
    assert.equal(close.willRetry, retries);
    assert.ok(close.error instanceof RoomError);
    assert.equal(close.error.code, errorCode);
    assert.equal(close.error.closeCode, code);
    await assert.rejects(pending, (e) => e.code === "connection_lost");
    if (retries) {
      assert.equal(h.client.state, "reconnecting");
      assert.ok(close.delayMs >= 250 && close.delayMs <= 500, String(close.delayMs));
      await h.timers.advance(close.delayMs);
      assert.equal(h.sockets.length, 2, "a new socket");
      assert.deepEqual(h.sockets[1].protocols, ["roomgate.v2", "bearer.tok2"], "with a token fetched again");
    } else {
      assert.equal(h.client.state, "closed");
      assert.equal(close.delayMs, null);
      assert.deepEqual(h.timers.pending(), [], "nothing left to run");
      await h.timers.advance(60000);
      assert.equal(h.sockets.length, 1, "no new socket");
      assert.deepEqual(h.of("state").at(-1), "closed");
    }
  });
}

test("4001 reconnects with a freshly provided token", async () => {
  const tokens = ["old", "new"];
  const calls = [];
  const h = await connected({ token: (ctx) => { calls.push(ctx); return tokens.shift(); } });
  h.socket.drop(4001, "token_expired");
  await h.timers.advance(1000);
  assert.deepEqual(calls, [{ reason: "connect", room: "lobby" }, { reason: "connect", room: "lobby" }]);
  assert.deepEqual(h.socket.protocols, ["roomgate.v2", "bearer.new"]);
});

test("4001 stops when the provider has only the expired token", async () => {
  const h = await connected({ token: "same" });
  h.socket.drop(4001, "token_expired");
  await h.timers.advance(1000);
  assert.equal(h.sockets.length, 1, "the expired token is not tried again");
  assert.equal(h.client.state, "closed");
  const last = h.of("close").at(-1);
  assert.equal(last.willRetry, false);
  assert.equal(last.error.code, "token_expired");
});

test("a listener that calls close() on a close event stops the retry", async () => {
  const h = await connected();
  h.client.on("close", () => h.client.close());
  h.socket.drop(1006);
  assert.equal(h.client.state, "closed");
  assert.deepEqual(h.timers.pending(), []);
  assert.deepEqual(h.of("state"), ["open", "closed"]);
});
