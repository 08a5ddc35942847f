// Reading back: `history` answers by ref with the messages oldest first; historyPages()
// walks back until the room has nothing older.
import { test } from "node:test";
import assert from "node:assert/strict";
import { connected, harness, message, settle } from "./fake.js";

test("history({before, limit}) sends one request and resolves with its page, oldest first", async () => {
  const h = await connected({}, { last_seq: 50 });
  const page = h.client.history({ before: 41, limit: 2 });
  await settle();
  const [req] = h.socket.frames();
  assert.deepEqual(req, { type: "history", before: 41, limit: 2, ref: req.ref });
  h.socket.push({ type: "history", messages: [message(39), message(40)], ref: req.ref });
  assert.deepEqual(await page, [
    { seq: 39, from: { id: "u2", name: "Bob" }, data: { text: "m39" }, ts: 1795706400039 },
    { seq: 40, from: { id: "u2", name: "Bob" }, data: { text: "m40" }, ts: 1795706400040 },
  ]);
  assert.deepEqual(h.of("message"), [], "history is not delivered as live messages");
  assert.equal(h.client.lastSeq, 50);
});

test("history() without options asks for the newest", async () => {
  const h = await connected();
  h.client.history();
  await settle();
  const [req] = h.socket.frames();
  assert.deepEqual(Object.keys(req).sort(), ["ref", "type"]);
});

test("two history requests are told apart by ref", async () => {
  const h = await connected();
  const a = h.client.history({ before: 10 });
  const b = h.client.history({ before: 20 });
  await settle();
  const [ra, rb] = h.socket.frames();
  h.socket.push({ type: "history", messages: [message(19)], ref: rb.ref }, { type: "history", messages: [message(9)], ref: ra.ref });
  assert.deepEqual((await a).map((m) => m.seq), [9]);
  assert.deepEqual((await b).map((m) => m.seq), [19]);
});

test("a refused history request rejects with the error's code", async () => {
  const h = await connected();
  const page = h.client.history();
  await settle();
  const [req] = h.socket.frames();
  h.socket.push({ type: "error", code: "forbidden", message: "no history capability", ref: req.ref });
  await assert.rejects(page, (e) => e.code === "forbidden");
});

test("history asked before the welcome waits for it", async () => {
  const h = harness();
  const page = h.client.history({ limit: 1 });
  await settle();
  h.socket.accept();
  const [req] = h.socket.frames();
  h.socket.push({ type: "history", messages: [], ref: req.ref });
  assert.deepEqual(await page, []);
});

test("a history request in flight on a drop rejects with connection_lost", async () => {
  const h = await connected();
  const page = h.client.history();
  await settle();
  h.socket.drop(1006);
  await assert.rejects(page, (e) => e.code === "connection_lost");
});

test("bad arguments are refused without a request", async () => {
  const h = await connected();
  for (const bad of [{ before: 0 }, { before: -1 }, { before: 1.5 }, { limit: 0 }, { limit: 101 }, { limit: "5" }]) {
    await assert.rejects(h.client.history(bad), TypeError, JSON.stringify(bad));
  }
  await settle();
  assert.deepEqual(h.socket.frames(), []);
});

test("historyPages() pages back with before = the first seq of each page, until an empty page", async () => {
  const h = await connected({}, { last_seq: 7 });
  const kept = [3, 4, 5, 6, 7]; // what the room still keeps
  const requests = [];
  const pages = [];
  const reading = (async () => {
    for await (const page of h.client.historyPages({ limit: 2 })) pages.push(page.map((m) => m.seq));
  })();
  for (let i = 0; i < 4; i++) {
    await settle();
    const req = h.socket.frames().at(-1);
    requests.push(req.before ?? null);
    const below = kept.filter((s) => req.before === undefined || s < req.before);
    h.socket.push({ type: "history", messages: below.slice(-req.limit).map((s) => message(s)), ref: req.ref });
  }
  await reading;
  assert.deepEqual(requests, [null, 6, 4, 3]);
  assert.deepEqual(pages, [[6, 7], [4, 5], [3]]);
});

test("historyPages() stops after the page holding seq 1", async () => {
  const h = await connected({}, { last_seq: 2 });
  const pages = [];
  const reading = (async () => {
    for await (const page of h.client.historyPages({ before: 3 })) pages.push(page.map((m) => m.seq));
  })();
  await settle();
  const [req] = h.socket.frames();
  h.socket.push({ type: "history", messages: [message(1), message(2)], ref: req.ref });
  await reading;
  assert.deepEqual(pages, [[1, 2]]);
  assert.equal(h.socket.frames().length, 1, "nothing is older than seq 1");
});
