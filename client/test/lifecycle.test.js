// The client's life: keep-alive pings and the timeouts that catch a silent connection,
// close() leaving nothing behind, and listeners.
import { test } from "node:test";
import assert from "node:assert/strict";
import { connected, harness, message, settle } from "./fake.js";

test("a quiet socket is pinged with the exact ping text; any frame answers it", async () => {
  const h = await connected();
  await h.timers.advance(29999);
  assert.deepEqual(h.socket.sent, []);
  await h.timers.advance(1);
  assert.deepEqual(h.socket.sent, ['{"type":"ping"}'], "byte for byte, so the runtime answers it");
  h.socket.pushRaw('{"type":"pong"}');
  await h.timers.advance(30000);
  assert.equal(h.socket.sent.length, 2);
  h.socket.push(message(1));
  await h.timers.advance(20000);
  assert.equal(h.client.state, "open");
  assert.equal(h.sockets.length, 1);
});

test("a ping left unanswered gives the socket up and reconnects", async () => {
  const h = await connected();
  const first = h.socket;
  await h.timers.advance(30000 + 15000);
  assert.equal(first.closedByClient.code, 4000);
  const [close] = h.of("close");
  assert.equal(close.code, 1006);
  assert.equal(close.error.code, "connection_lost");
  assert.equal(close.willRetry, true);
  first.drop(1006); // the late close of the abandoned socket changes nothing
  assert.equal(h.of("close").length, 1);
  await h.timers.advance(close.delayMs);
  assert.equal(h.sockets.length, 2);
});

test("a socket that brings no welcome in time is given up", async () => {
  const h = harness({ timeoutMs: 5000 });
  await settle();
  await h.timers.advance(5000);
  assert.equal(h.of("close")[0].reason, "no welcome in time");
  assert.equal(h.client.state, "reconnecting");
});

test("pingIntervalMs: 0 sends no pings", async () => {
  const h = await connected({ pingIntervalMs: 0 });
  await h.timers.advance(600000);
  assert.deepEqual(h.socket.sent, []);
  assert.deepEqual(h.timers.pending(), []);
});

test("close() stops everything and leaves no timer, in every state", async () => {
  const cases = {
    open: async (h) => { await settle(); h.socket.accept(); return true; },
    "waiting to retry": async (h) => { await settle(); h.socket.drop(1006); return false; },
    "fetching a ticket": async () => false,
    "waiting for the welcome": async () => { await settle(); return true; },
  };
  for (const [name, reach] of Object.entries(cases)) {
    const h = harness({ transport: "ticket" });
    const live = await reach(h);
    const socketsBefore = h.sockets.length;
    h.client.close();
    assert.equal(h.client.state, "closed", name);
    assert.equal(h.of("state").at(-1), "closed", name);
    await settle();
    assert.deepEqual(h.timers.pending(), [], name);
    for (const s of h.sockets) if (s.readyState < 2) assert.fail(`${name}: a socket was left open`);
    if (live) assert.deepEqual(h.socket.closedByClient, { code: 1000, reason: "client closed" }, name);
    await h.timers.advance(600000);
    assert.equal(h.sockets.length, socketsBefore, `${name}: no socket after close()`);
    h.socket?.push(message(1));
    h.socket?.drop(1006);
    assert.deepEqual(h.of("message"), [], name);
    assert.equal(h.of("close").filter((c) => c.willRetry).length, name === "waiting to retry" ? 1 : 0, name);
    h.client.close(); // a second call changes nothing
    assert.equal(h.of("state").filter((s) => s === "closed").length, 1, name);
  }
});

test("close() rejects what is in flight with connection_lost", async () => {
  const h = await connected();
  const p = h.client.publish("x");
  await settle();
  h.client.close();
  await assert.rejects(p, (e) => e.code === "connection_lost");
});

test("on() returns a function that removes the listener; off() does the same", async () => {
  const h = harness();
  const got = [];
  const off = h.client.on("message", (m) => got.push(["a", m.seq]));
  const b = (m) => got.push(["b", m.seq]);
  h.client.on("message", b);
  await settle();
  h.socket.accept();
  h.socket.push(message(1));
  off();
  h.socket.push(message(2));
  h.client.off("message", b);
  h.socket.push(message(3));
  assert.deepEqual(got, [["a", 1], ["b", 1], ["b", 2]]);
  assert.throws(() => h.client.on("mesage", () => {}), TypeError);
});

test("a throwing listener does not stop the other listeners or the client", async () => {
  // The test runner fails a test on any unhandled rejection; here one is expected.
  const runners = process.listeners("unhandledRejection");
  process.removeAllListeners("unhandledRejection");
  const reported = [];
  const onUnhandled = (e) => reported.push(e.message);
  process.on("unhandledRejection", onUnhandled);
  try {
    const h = harness();
    h.client.on("message", () => { throw new Error("listener bug"); });
    await settle();
    h.socket.accept();
    h.socket.push(message(1), message(2));
    await settle();
    assert.deepEqual(h.of("message").map((m) => m.seq), [1, 2]);
    assert.deepEqual(reported, ["listener bug", "listener bug"], "reported like an uncaught error");
  } finally {
    process.off("unhandledRejection", onUnhandled);
    for (const listener of runners) process.on("unhandledRejection", listener);
  }
});

test("a listener that closes the client mid-array stops the rest of that array", async () => {
  const h = await connected();
  h.client.on("message", (m) => { if (m.seq === 1) h.client.close(); });
  h.socket.push(message(1), message(2));
  assert.deepEqual(h.of("message").map((m) => m.seq), [1]);
});
