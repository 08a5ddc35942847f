// Staying connected past the token's expiry: `expiring` asks the token provider for a new
// token and sends it in a `refresh`; the answer is matched by ref.
import { test } from "node:test";
import assert from "node:assert/strict";
import { connected, settle } from "./fake.js";

function rotating() {
  const calls = [];
  let n = 0;
  const token = (ctx) => { calls.push(ctx); n += 1; return `tok${n}`; };
  return { calls, token };
}

test("expiring: the provider is asked, a refresh with a ref goes out, refreshed moves the expiry", async () => {
  const p = rotating();
  const h = await connected({ token: p.token });
  h.socket.push({ type: "expiring", expires_at: 1795710003 });
  assert.deepEqual(h.of("expiring"), [{ expiresAt: 1795710003 }]);
  await settle();
  assert.deepEqual(p.calls.at(-1), { reason: "refresh", room: "lobby" });
  const [refresh] = h.socket.frames();
  assert.equal(refresh.type, "refresh");
  assert.equal(refresh.token, "tok2");
  assert.equal(typeof refresh.ref, "string");
  h.socket.push({ type: "refreshed", expires_at: 1795713603, ref: refresh.ref });
  assert.deepEqual(h.of("refreshed"), [{ expiresAt: 1795713603 }]);
  assert.equal(h.client.expiresAt, 1795713603);
  assert.deepEqual(h.of("error"), []);
});

test("a refused refresh is an error event, and the old expiry stands", async () => {
  const p = rotating();
  const h = await connected({ token: p.token });
  h.socket.push({ type: "expiring", expires_at: 1795710003 });
  await settle();
  const [refresh] = h.socket.frames();
  h.socket.push({ type: "error", code: "refresh_mismatch", message: "token is for another user", ref: refresh.ref });
  const [error] = h.of("error");
  assert.equal(error.code, "refresh_mismatch");
  assert.equal(error.message, "token is for another user");
  assert.equal(h.client.expiresAt, 1795710003);
  assert.equal(h.client.state, "open");
  const socket = h.socket;
  await h.timers.advance(60000);
  assert.equal(socket.frames().filter((f) => f.type === "refresh").length, 1, "a hard refusal is not retried");
});

test("a refresh refused for now (rate_limited, issuer_unavailable) is tried again", async () => {
  const p = rotating();
  const h = await connected({ token: p.token, pingIntervalMs: 0 });
  h.socket.push({ type: "expiring", expires_at: 1795710003 });
  await settle();
  const first = h.socket.frames()[0];
  h.socket.push({ type: "error", code: "rate_limited", message: "too soon", ref: first.ref });
  assert.equal(h.of("error")[0].code, "rate_limited");
  await h.timers.advance(10000);
  const refreshes = h.socket.frames().filter((f) => f.type === "refresh");
  assert.equal(refreshes.length, 2);
  assert.notEqual(refreshes[1].ref, first.ref);
  h.socket.push({ type: "refreshed", expires_at: 1795713603, ref: refreshes[1].ref });
  assert.equal(h.client.expiresAt, 1795713603);
});

test("a provider with nothing newer sends no refresh", async () => {
  const h = await connected({ token: "static" });
  h.socket.push({ type: "expiring", expires_at: 1795710003 });
  await settle();
  assert.deepEqual(h.socket.frames(), []);
  assert.deepEqual(h.of("expiring"), [{ expiresAt: 1795710003 }], "the app is told, to act itself");
});

test("a failing provider on refresh is an error event; the socket stays", async () => {
  let n = 0;
  const h = await connected({ token: () => { n += 1; if (n > 1) throw new Error("login server down"); return "tok"; } });
  h.socket.push({ type: "expiring", expires_at: 1795710003 });
  await settle();
  assert.equal(h.of("error")[0].code, "token_unavailable");
  assert.equal(h.client.state, "open");
});

test("after a refresh, a reconnect is not refused for the refreshed-away token", async () => {
  const p = rotating();
  const h = await connected({ token: p.token });
  h.socket.push({ type: "expiring", expires_at: 1795710003 });
  await settle();
  const [refresh] = h.socket.frames();
  h.socket.push({ type: "refreshed", expires_at: 1795713603, ref: refresh.ref });
  h.socket.drop(1006);
  await h.timers.advance(1000);
  assert.deepEqual(h.socket.protocols, ["roomgate.v2", "bearer.tok3"]);
});
