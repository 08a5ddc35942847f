// Getting a socket: the token in the subprotocol list, or a single-use ticket from
// POST /ws-ticket for each connection, and what each refusal means.
import { test } from "node:test";
import assert from "node:assert/strict";
import { RoomClient } from "../src/index.js";
import { harness, settle } from "./fake.js";

test("the subprotocol transport offers roomgate.v2 and bearer.<token>", async () => {
  const h = harness({ token: "eyJ.tok" });
  await settle();
  assert.equal(h.socket.url, "wss://chat.example/ws/lobby");
  assert.deepEqual(h.socket.protocols, ["roomgate.v2", "bearer.eyJ.tok"]);
  assert.equal(h.fetchCalls.length, 0);
});

test("a ws:// or http:// base maps to ws:// for the socket, keeping a path prefix", async () => {
  for (const [url, socket, ticket] of [
    ["http://127.0.0.1:8787", "ws://127.0.0.1:8787/ws/lobby", "http://127.0.0.1:8787/ws-ticket"],
    ["wss://chat.example/", "wss://chat.example/ws/lobby", "https://chat.example/ws-ticket"],
    ["https://chat.example/rg", "wss://chat.example/rg/ws/lobby", "https://chat.example/rg/ws-ticket"],
  ]) {
    const h = harness({ url, transport: "ticket" });
    await settle();
    assert.equal(h.fetchCalls[0].url, ticket);
    assert.equal(h.socket.url.split("?")[0], socket);
    h.client.close();
  }
});

test("the ticket transport trades the token for a ticket on every connection", async () => {
  const h = harness({ transport: "ticket", token: "eyJ.tok" });
  await settle();
  const [call] = h.fetchCalls;
  assert.equal(call.url, "https://chat.example/ws-ticket");
  assert.equal(call.init.method, "POST");
  assert.equal(call.init.headers.authorization, "Bearer eyJ.tok");
  assert.equal(call.init.headers["content-type"], "application/json");
  assert.deepEqual(JSON.parse(call.init.body), { room: "lobby" });
  assert.equal(h.socket.url, "wss://chat.example/ws/lobby?ticket=ticket-1");
  assert.deepEqual(h.socket.protocols, ["roomgate.v2"], "no token on the socket");
  h.socket.accept({ last_seq: 3 });
  h.socket.drop(1006);
  await h.timers.advance(1000);
  assert.equal(h.fetchCalls.length, 2);
  assert.equal(h.socket.url, "wss://chat.example/ws/lobby?ticket=ticket-2&since=3");
});

test("ticketUrl given as a path is taken on the server's origin", async () => {
  const h = harness({ transport: "ticket", url: "https://chat.example/app", ticketUrl: "/ws-ticket" });
  await settle();
  assert.equal(h.fetchCalls[0].url, "https://chat.example/ws-ticket");
});

test("a ticket with URL-special characters is escaped", async () => {
  const h = harness({ transport: "ticket" });
  h.fetchReplies.push({ body: { ticket: "a+b/c=", expires_in: 30 } });
  await settle();
  assert.equal(h.socket.url, "wss://chat.example/ws/lobby?ticket=a%2Bb%2Fc%3D");
});

for (const [status, body, code] of [
  [401, { error: "invalid_token", message: "token has expired" }, "invalid_token"],
  [401, "not json", "invalid_token"],
  [403, { error: "room_forbidden", message: "no access to this room" }, "room_forbidden"],
  [403, "", "forbidden"],
  [400, { error: "invalid_room", message: "bad room" }, "invalid_room"],
]) {
  test(`a ticket refused with ${status} ${typeof body === "object" ? body.error : "(no JSON)"} stops the client`, async () => {
    const h = harness({ transport: "ticket" });
    h.fetchReplies.push({ status, body });
    await settle();
    assert.equal(h.sockets.length, 0, "no socket is opened");
    assert.equal(h.client.state, "closed");
    const [close] = h.of("close");
    assert.equal(close.code, null, "no socket, so no close code");
    assert.equal(close.willRetry, false);
    assert.equal(close.error.code, code);
    assert.equal(close.error.status, status);
    if (typeof body === "object") assert.equal(close.error.message, body.message);
    assert.deepEqual(h.timers.pending(), []);
  });
}

test("a ticket refused with 429 or 503, or a network failure, is retried", async () => {
  const h = harness({ transport: "ticket" });
  h.fetchReplies.push(
    { status: 429, body: { error: "rate_limited", message: "slow down" }, headers: { "Retry-After": "30" } },
    { status: 503, body: { error: "issuer_unavailable", message: "keys unreachable" } },
    new TypeError("Failed to fetch"),
    { status: 200, body: { nope: 1 } },
  );
  await settle();
  const closes = () => h.of("close").map((c) => [c.error.code, c.willRetry, c.delayMs]);
  assert.deepEqual(closes(), [["rate_limited", true, 30000]], "Retry-After is a floor under the backoff");
  await h.timers.advance(30000);
  await h.timers.advance(750);
  await h.timers.advance(1500);
  assert.deepEqual(closes(), [
    ["rate_limited", true, 30000],
    ["issuer_unavailable", true, 750],
    ["network_error", true, 1500],
    ["bad_response", true, 3000],
  ]);
  await h.timers.advance(3000);
  assert.equal(h.sockets.length, 1, "the fifth attempt got a ticket");
  assert.equal(h.client.state, "connecting");
});

test("an upgrade refusal the WebSocket reports (as ws does) is judged by its status", async () => {
  for (const [status, retries, code] of [[401, false, "invalid_token"], [403, false, "forbidden"], [503, true, "http_503"]]) {
    const h = harness();
    await settle();
    h.socket.onerror({ type: "error", message: `Unexpected server response: ${status}` });
    h.socket.drop(1006);
    const [close] = h.of("close");
    assert.equal(close.willRetry, retries, String(status));
    assert.equal(close.error.code, code);
    assert.equal(close.error.status, status);
    h.client.close();
  }
});

test("the token provider is asked on every connection; no token stops, a failure retries", async () => {
  const answers = [new Error("offline"), null];
  const h = harness({ token: async () => { const a = answers.shift(); if (a instanceof Error) throw a; return a; } });
  await settle();
  const [first] = h.of("close");
  assert.equal(first.error.code, "token_unavailable");
  assert.equal(first.error.cause.message, "offline");
  assert.equal(first.willRetry, true);
  await h.timers.advance(first.delayMs);
  const second = h.of("close")[1];
  assert.equal(second.error.code, "no_token");
  assert.equal(second.willRetry, false);
  assert.equal(h.client.state, "closed");
  assert.equal(h.sockets.length, 0);
});

test("bad options are refused at construction", () => {
  const ok = { url: "https://x", room: "lobby", token: "t", WebSocket: class {} };
  for (const bad of [
    { url: "chat.example" },
    { url: "https://x/?a=1" },
    { room: "a/b" },
    { room: "x".repeat(65) },
    { token: 5 },
    { transport: "query" },
    { since: -1 },
    { since: 1.5 },
    { backoff: { initialMs: 0 } },
  ]) {
    assert.throws(() => new RoomClient({ ...ok, ...bad }), TypeError, JSON.stringify(bad));
  }
  if (typeof globalThis.WebSocket !== "function") {
    assert.throws(() => new RoomClient({ ...ok, WebSocket: undefined }), TypeError, "no WebSocket to use");
  }
});
