// Decoding what the room sends a v2 socket: arrays of frames, the bare `pong`, the
// welcome's members and the presence changes applied to them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { connected, harness, message, settle } from "./fake.js";

test("the frames of one array are handled in array order", async () => {
  const h = await connected();
  h.socket.push(
    { type: "presence", joined: [{ id: "u3", name: "Carol" }], left: [] },
    message(1),
    message(2, { from: { id: "u3", name: "Carol" } }),
  );
  assert.deepEqual(
    h.events.filter(([k]) => k === "presence" || k === "message").map(([k, v]) => (k === "message" ? v.seq : k)),
    ["presence", 1, 2],
  );
  assert.deepEqual(h.of("message")[1], { seq: 2, from: { id: "u3", name: "Carol" }, data: { text: "m2" }, ts: 1795706400002 });
});

test("a bare object is an array of one", async () => {
  const h = await connected();
  h.socket.pushRaw('{"type":"pong"}');
  h.socket.pushRaw(JSON.stringify(message(1)));
  assert.deepEqual(h.of("message").map((m) => m.seq), [1]);
  assert.deepEqual(h.of("error"), []);
});

test("a binary frame is decoded as UTF-8 text", async () => {
  const h = await connected();
  h.socket.pushRaw(new TextEncoder().encode(JSON.stringify([message(1, { data: "grüß" })])));
  assert.equal(h.of("message")[0].data, "grüß");
});

test("a frame that is not JSON is reported and changes nothing", async () => {
  const h = await connected();
  h.socket.pushRaw("not json");
  h.socket.push(message(1));
  assert.equal(h.of("error")[0].code, "protocol_error");
  assert.deepEqual(h.of("message").map((m) => m.seq), [1]);
  assert.equal(h.client.state, "open");
});

test("the welcome gives who this is, the members by id, the expiry and the room's position", async () => {
  const h = harness();
  assert.equal(h.client.state, "connecting");
  await settle();
  h.socket.accept({ last_seq: 41 });
  assert.equal(h.client.state, "open");
  assert.deepEqual(h.client.me, { id: "u1", name: "Alice" });
  assert.deepEqual([...h.client.members], [["u1", { id: "u1", name: "Alice" }], ["u2", { id: "u2", name: "Bob" }]]);
  assert.equal(h.client.expiresAt, 1795710003);
  assert.equal(h.client.lastSeq, 41);
  const [w] = h.of("welcome");
  assert.deepEqual(w, {
    room: "lobby",
    user: { id: "u1", name: "Alice" },
    members: [{ id: "u1", name: "Alice" }, { id: "u2", name: "Bob" }],
    expiresAt: 1795710003,
    lastSeq: 41,
  });
  assert.equal(h.of("members")[0], h.client.members);
  assert.deepEqual(h.of("state"), ["open"]);
});

test("a welcome without members (no presence) gives an empty map", async () => {
  const h = await connected({}, { members: undefined });
  assert.equal(h.client.members.size, 0);
});

test("presence adds who joined and removes who left, in a new map each time", async () => {
  const h = await connected();
  const before = h.client.members;
  h.socket.push({ type: "presence", joined: [{ id: "u3", name: "Carol" }], left: [{ id: "u2", name: "Bob" }] });
  assert.deepEqual(h.of("presence"), [{ joined: [{ id: "u3", name: "Carol" }], left: [{ id: "u2", name: "Bob" }] }]);
  assert.deepEqual([...h.client.members.keys()], ["u1", "u3"]);
  assert.notEqual(h.client.members, before);
  assert.deepEqual([...before.keys()], ["u1", "u2"], "an earlier snapshot does not change");
  h.socket.push({ type: "presence", joined: [], left: [{ id: "u3", name: "Carol" }] });
  assert.deepEqual([...h.client.members.keys()], ["u1"]);
  assert.deepEqual(h.of("members").map((m) => [...m.keys()]), [["u1", "u2"], ["u1", "u3"], ["u1"]]);
});

test("frame types this client does not know are ignored", async () => {
  const h = await connected();
  h.socket.push({ type: "something_new", x: 1 }, message(1), 42, null, { no: "type" });
  assert.deepEqual(h.of("message").map((m) => m.seq), [1]);
  assert.deepEqual(h.of("error"), []);
});
