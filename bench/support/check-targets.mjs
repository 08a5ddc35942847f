// Checks that benchmark targets speak the wire subset of bench/README.md, for real: each
// target is started on workerd with tests/support/runtime.mjs (fresh state in a temp
// directory), exercised over HTTP and WebSockets, and stopped.
//
//   node bench/support/check-targets.mjs                      # js-reference, js-bare, js-bare-batched
//   node bench/support/check-targets.mjs roomgate js-bare     # any of: roomgate, roomgate-v2 (both
//                                                             # need a built build/), js-reference,
//                                                             # js-bare, js-bare-batched
//
// roomgate-v2 is the same build checked with protocol v2 clients (docs/protocol.md §4).
//
// Prints one line per check; exits 1 if any check failed (0 otherwise).
import { spawn } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";

const root = new URL("../..", import.meta.url).pathname;
const JWT_SECRET = "check-targets-jwt-secret-0123456789abcdef";
const ADMIN_TOKEN = "check-targets-admin-token-0123456789abcdef";
const TIMEOUT_MS = 10_000;
const QUIET_MS = 400;

const TARGETS = {
  roomgate: { config: "wrangler.toml", check: checkAuthenticated },
  "roomgate-v2": { config: "wrangler.toml", check: checkV2 },
  "js-reference": { config: "bench/targets/js-reference/wrangler.toml", check: checkAuthenticated },
  "js-bare": { config: "bench/targets/js-bare/wrangler.toml", check: checkBare },
  "js-bare-batched": { config: "bench/targets/js-bare-batched/wrangler.toml", check: checkBatched },
};
// js-bare-batched's window (its wrangler.toml) and roomgate's default FLUSH_MS.
const FLUSH_MS = 16;
const MAX_ARRAY_BYTES = 64 * 1024;

let failures = 0;
function ok(name) {
  console.log(`  ok    ${name}`);
}
function fail(name, why) {
  failures++;
  console.log(`  FAIL  ${name}: ${why}`);
}
async function check(name, fn) {
  try {
    await fn();
    ok(name);
  } catch (err) {
    fail(name, err?.message ?? String(err));
  }
}
function assert(cond, why) {
  if (!cond) throw new Error(why);
}
function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

// ---------------------------------------------------------------------------------------
// The runtime

function startRuntime(config, vars) {
  const state = mkdtempSync(join(tmpdir(), "check-targets-"));
  const child = spawn(
    process.execPath,
    [join(root, "tests/support/runtime.mjs"), JSON.stringify({ config, stateDir: state, vars })],
    {
      cwd: root,
      // Own process group: runtime.mjs then takes workerd down with it however it exits.
      detached: true,
      env: { ...process.env, ROOMGATE_RUNTIME_PGID_LEADER: "1" },
      stdio: ["pipe", "pipe", "pipe"],
    },
  );
  let log = "";
  child.stderr.on("data", (d) => (log += d));
  const ready = new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`runtime not ready:\n${log}`)), 60_000);
    child.stdout.on("data", (d) => {
      out += d;
      if (out.includes("\n")) {
        clearTimeout(timer);
        resolve(JSON.parse(out));
      }
    });
    child.on("exit", (code) => reject(new Error(`runtime exited (${code}):\n${log}`)));
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      child.stdin.end();
      const timeout = sleep(15_000).then(() => "timeout");
      if ((await Promise.race([exited, timeout])) === "timeout") {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {}
      }
    }
    rmSync(state, { recursive: true, force: true });
  };
  // Last resort if this script dies with the runtime still up.
  process.on("exit", () => {
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {}
  });
  return { ready, stop, log: () => log };
}

// ---------------------------------------------------------------------------------------
// Tokens and sockets

const b64url = (v) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");

function mint(claims = {}, { header, secret = JWT_SECRET, signature } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const h = b64url(header ?? { alg: "HS256", typ: "JWT", kid: "primary" });
  const p = b64url({
    iss: "roomgate",
    aud: "roomgate",
    sub: "alice",
    name: "Alice",
    iat: now,
    exp: now + 600,
    jti: randomBytes(8).toString("hex"),
    ...claims,
  });
  const sig = signature ?? createHmac("sha256", secret).update(`${h}.${p}`).digest("base64url");
  return `${h}.${p}.${sig}`;
}

/** Opens a socket offering `protocols`; resolves with a Client once open, rejects with
 * {status, body} if refused. */
function connect(base, path, token, protocols = []) {
  return new Promise((resolve, reject) => {
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    const ws = new WebSocket(base.replace(/^http/, "ws") + path, protocols, { headers });
    const timer = setTimeout(() => reject(new Error("connect timed out")), TIMEOUT_MS);
    ws.on("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => {
        clearTimeout(timer);
        const e = new Error(`refused: ${res.statusCode} ${body}`);
        Object.assign(e, { status: res.statusCode, body, headers: res.headers });
        reject(e);
      });
    });
    ws.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    ws.on("open", () => {
      clearTimeout(timer);
      resolve(new Client(ws));
    });
  });
}

class Client {
  constructor(ws) {
    this.ws = ws;
    this.queue = [];
    this.waiters = [];
    this.closed = null;
    ws.on("message", (data, isBinary) => {
      this.queue.push(isBinary ? data : data.toString());
      this.wake();
    });
    ws.on("close", (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.wake();
    });
    ws.on("error", () => {});
  }
  wake() {
    for (const w of this.waiters.splice(0)) w();
  }
  send(text) {
    this.ws.send(text);
  }
  /** The next raw frame, or throws after `ms`. */
  async raw(ms = TIMEOUT_MS) {
    const deadline = Date.now() + ms;
    while (this.queue.length === 0) {
      if (this.closed) throw new Error(`socket closed (${this.closed.code})`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("no frame arrived");
      await new Promise((r) => {
        this.waiters.push(r);
        setTimeout(r, left);
      });
    }
    return this.queue.shift();
  }
  /** The frame objects of the next frame: an array's elements, a bare object as an array
   * of one (protocol v2, js-bare-batched). */
  async objects(ms = TIMEOUT_MS) {
    const frame = JSON.parse(await this.raw(ms));
    return Array.isArray(frame) ? frame : [frame];
  }
  /** The next frame object, from arrays, whose type is one of `types` (others skipped).
   * Every object seen is kept in `this.seen`. */
  async nextObject(...types) {
    this.pendingObjects ??= [];
    this.seen ??= [];
    for (;;) {
      while (this.pendingObjects.length > 0) {
        const o = this.pendingObjects.shift();
        if (types.includes(o.type)) return o;
      }
      const objects = await this.objects();
      this.seen.push(...objects);
      this.pendingObjects.push(...objects);
    }
  }
  /** The next JSON frame whose type is one of `types` (frames of other types are skipped:
   * join, leave, ... as the load generator does). */
  async next(...types) {
    for (;;) {
      const frame = JSON.parse(await this.raw());
      if (types.includes(frame.type)) return frame;
    }
  }
  /** Resolves if nothing (but ignorable join/leave frames) arrives for `ms`. */
  async quiet(ms = QUIET_MS) {
    await sleep(ms);
    const unexpected = this.queue.filter((f) => {
      try {
        return !["join", "leave"].includes(JSON.parse(f).type);
      } catch {
        return true;
      }
    });
    assert(unexpected.length === 0, `unexpected frame(s): ${unexpected.join(" | ")}`);
    this.queue = [];
  }
  async closeCode(ms = TIMEOUT_MS) {
    const deadline = Date.now() + ms;
    while (!this.closed && Date.now() < deadline) await sleep(20);
    assert(this.closed, "socket not closed");
    return this.closed.code;
  }
  close() {
    this.ws.close(1000);
  }
}

async function refused(base, path, token, status, error) {
  try {
    const c = await connect(base, path, token);
    c.close();
  } catch (err) {
    assert(err.status === status, `expected ${status}, got ${err.status ?? err.message}`);
    if (error) {
      const body = JSON.parse(err.body);
      assert(body.error === error, `expected error ${error}, got ${err.body}`);
    }
    if (status === 401) {
      assert(/^Bearer/.test(err.headers["www-authenticate"] ?? ""), "no WWW-Authenticate: Bearer");
    }
    return;
  }
  throw new Error(`expected ${status}, got a socket`);
}

// ---------------------------------------------------------------------------------------
// The checks

async function checkAuthenticated(base) {
  const room = `check-${randomBytes(4).toString("hex")}`;

  await check("GET /healthz is 200", async () => {
    const res = await fetch(`${base}/healthz`);
    assert(res.status === 200, `status ${res.status}`);
  });
  await check("a bad room name is 400 invalid_room", () =>
    refused(base, "/ws/bad!room", mint(), 400, "invalid_room"),
  );
  await check("a plain GET (no upgrade) is 426", async () => {
    const res = await fetch(`${base}/ws/${room}`, { headers: { Authorization: `Bearer ${mint()}` } });
    assert(res.status === 426, `status ${res.status}`);
  });
  await check("no token is 401 invalid_token", () => refused(base, `/ws/${room}`, null, 401, "invalid_token"));
  await check("a bad signature is 401", () =>
    refused(base, `/ws/${room}`, mint({}, { secret: "another-secret-0123456789abcdef0123" }), 401, "invalid_token"),
  );
  await check('alg "none" is 401', () =>
    refused(base, `/ws/${room}`, mint({}, { header: { alg: "none", typ: "JWT" }, signature: "" }), 401, "invalid_token"),
  );
  await check("an expired token is 401", () => {
    const now = Math.floor(Date.now() / 1000);
    return refused(base, `/ws/${room}`, mint({ iat: now - 7200, exp: now - 3600 }), 401, "invalid_token");
  });
  await check("a wrong issuer is 401", () => refused(base, `/ws/${room}`, mint({ iss: "someone" }), 401, "invalid_token"));
  await check("a token without sub is 401", () => refused(base, `/ws/${room}`, mint({ sub: undefined }), 401, "invalid_token"));

  let a, b;
  await check("two sockets in one room each get welcome", async () => {
    a = await connect(base, `/ws/${room}`, mint({ sub: "alice", name: "Alice" }));
    const wa = await a.next("welcome");
    b = await connect(base, `/ws/${room}`, mint({ sub: "bob", name: "Bob" }));
    const wb = await b.next("welcome");
    for (const [w, id, name] of [[wa, "alice", "Alice"], [wb, "bob", "Bob"]]) {
      assert(w.room === room, `welcome.room ${w.room}`);
      assert(w.user?.id === id && w.user?.name === name, `welcome.user ${JSON.stringify(w.user)}`);
      assert(w.last_seq === 0, `welcome.last_seq ${w.last_seq}`);
    }
  });
  if (!a || !b) return;

  await check("both get message seq 1 then 2, in order, with from and data", async () => {
    a.send(JSON.stringify({ type: "publish", data: { text: "one", n: [1, 2] } }));
    b.send(JSON.stringify({ type: "publish", data: "two" }));
    // The room orders the two publishes; either order is fine, but both sockets must see
    // the same one, numbered 1 then 2.
    const seen = [];
    for (const c of [a, b]) {
      const m1 = await c.next("message");
      const m2 = await c.next("message");
      assert(m1.seq === 1 && m2.seq === 2, `seqs ${m1.seq}, ${m2.seq}`);
      for (const m of [m1, m2]) {
        assert(typeof m.ts === "number", "ts is not a number");
        const fromAlice = m.from?.id === "alice";
        assert(m.from?.name === (fromAlice ? "Alice" : "Bob"), `from ${JSON.stringify(m.from)}`);
        const want = fromAlice ? { text: "one", n: [1, 2] } : "two";
        assert(JSON.stringify(m.data) === JSON.stringify(want), `data ${JSON.stringify(m.data)}`);
      }
      seen.push(`${m1.from.id},${m2.from.id}`);
    }
    assert(seen[0] === seen[1], `different orders: ${seen.join(" vs ")}`);
  });
  await check("bad JSON gets an error frame; the other socket is undisturbed", async () => {
    a.send("{not json");
    const e = await a.next("error", "message");
    assert(e.type === "error" && (e.error ?? e.code) === "bad_frame", `got ${JSON.stringify(e)}`);
    await b.quiet();
    b.send(JSON.stringify({ type: "publish", data: null }));
    for (const c of [a, b]) {
      const m = await c.next("message");
      assert(m.seq === 3 && m.from.id === "bob" && m.data === null, `got ${JSON.stringify(m)}`);
    }
  });
  await check("a non-object frame and an unknown type get error frames", async () => {
    a.send("[1,2]");
    const e1 = await a.next("error", "message");
    assert((e1.error ?? e1.code) === "bad_frame", `got ${JSON.stringify(e1)}`);
    a.send(JSON.stringify({ type: "shout" }));
    const e2 = await a.next("error", "message");
    assert((e2.error ?? e2.code) === "unknown_type", `got ${JSON.stringify(e2)}`);
    await b.quiet();
  });
  await check("ping gets pong (exact and spaced spelling)", async () => {
    a.send('{"type":"ping"}');
    assert((await a.next("pong", "message")).type === "pong", "no pong");
    a.send('{ "type": "ping" }');
    assert((await a.next("pong", "message")).type === "pong", "no pong");
    await b.quiet();
  });
  await check("a new socket's welcome has last_seq 3", async () => {
    const c = await connect(base, `/ws/${room}`, mint({ sub: "carol", name: undefined }));
    const w = await c.next("welcome");
    assert(w.last_seq === 3, `last_seq ${w.last_seq}`);
    assert(w.user.name === "carol", `name defaults to sub, got ${w.user.name}`);
    c.close();
  });
  await check("a frame over 16384 bytes closes with 1009", async () => {
    const c = await connect(base, `/ws/${room}`, mint({ sub: "dave" }));
    await c.next("welcome");
    c.send(JSON.stringify({ type: "publish", data: "x".repeat(17000) }));
    const code = await c.closeCode();
    assert(code === 1009, `close code ${code}`);
  });
  await check("the others saw no message from the oversized frame", async () => {
    await a.quiet();
    await b.quiet();
  });
  a.close();
  b.close();

  let token, tokenSub;
  await check("PUT /admin/users/bench with the wrong admin token is 401", async () => {
    const res = await fetch(`${base}/admin/users/bench`, {
      method: "PUT",
      headers: { Authorization: "Bearer wrong", "Content-Type": "application/json" },
      body: JSON.stringify({ password: "bench-password-123" }),
    });
    assert(res.status === 401, `status ${res.status}`);
  });
  await check("PUT /admin/users/bench creates the user", async () => {
    const res = await fetch(`${base}/admin/users/bench`, {
      method: "PUT",
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, "Content-Type": "application/json" },
      body: JSON.stringify({ password: "bench-password-123", name: "Bench" }),
    });
    const body = await res.text();
    assert(res.status === 201 || res.status === 200, `status ${res.status} ${body}`);
  });
  await check("POST /login with a wrong password is 401", async () => {
    const res = await fetch(`${base}/login`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: "bench", password: "wrong-password" }),
    });
    assert(res.status === 401, `status ${res.status}`);
  });
  await check("POST /login for an unknown user is 401", async () => {
    const res = await fetch(`${base}/login`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: "nobody", password: "whatever-password" }),
    });
    assert(res.status === 401, `status ${res.status}`);
  });
  await check("POST /login with a bad body is 400", async () => {
    const res = await fetch(`${base}/login`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: "{nope",
    });
    assert(res.status === 400, `status ${res.status}`);
  });
  await check("POST /login gives an HS256 token", async () => {
    const res = await fetch(`${base}/login`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: "bench", password: "bench-password-123" }),
    });
    const body = await res.text();
    assert(res.status === 200, `status ${res.status} ${body}`);
    token = JSON.parse(body).token;
    const [h, p] = token.split(".").slice(0, 2).map((s) => JSON.parse(Buffer.from(s, "base64url")));
    assert(h.alg === "HS256" && h.kid === "primary", `header ${JSON.stringify(h)}`);
    // sub: js-reference uses the username, roomgate a stable user id; either is fine.
    assert(typeof p.sub === "string" && p.sub !== "", `claims ${JSON.stringify(p)}`);
    assert(p.name === "Bench" && p.iss === "roomgate", `claims ${JSON.stringify(p)}`);
    tokenSub = p.sub;
    assert(p.exp > p.iat && typeof p.jti === "string", `claims ${JSON.stringify(p)}`);
  });
  if (token) {
    await check("the gate accepts the login token", async () => {
      const c = await connect(base, `/ws/${room}`, token);
      const w = await c.next("welcome");
      assert(w.user.id === tokenSub && w.user.name === "Bench", `user ${JSON.stringify(w.user)}`);
      c.send(JSON.stringify({ type: "publish", data: 4 }));
      const m = await c.next("message");
      assert(m.seq === 4 && m.from.id === tokenSub, `got ${JSON.stringify(m)}`);
      c.close();
    });
  }
}

/**
 * The bare targets' common start: no upgrade without the header, three sockets without a
 * token (two in one room, one in another), no welcome. The sockets, or nothing if one
 * did not connect.
 */
async function bareRoom(base) {
  const room = `check-${randomBytes(4).toString("hex")}`;
  await check("a plain GET (no upgrade) is 426", async () => {
    const res = await fetch(`${base}/ws/${room}`);
    assert(res.status === 426, `status ${res.status}`);
  });
  let a, b, other;
  await check("three sockets connect without a token (two in one room)", async () => {
    a = await connect(base, `/ws/${room}`);
    b = await connect(base, `/ws/${room}`);
    other = await connect(base, `/ws/${room}-other`);
  });
  if (!a || !b || !other) return null;
  await check("no welcome frame", async () => {
    await a.quiet();
    await b.quiet();
  });
  return [a, b, other];
}

async function checkBare(base) {
  const sockets = await bareRoom(base);
  if (!sockets) return;
  const [a, b, other] = sockets;
  await check("every text frame goes verbatim to every socket of the room", async () => {
    a.send('{"type":"publish","data":1}');
    b.send("not json at all");
    for (const c of [a, b]) {
      const got = [await c.raw(), await c.raw()].sort();
      const want = ['{"type":"publish","data":1}', "not json at all"].sort();
      assert(JSON.stringify(got) === JSON.stringify(want), `got ${JSON.stringify(got)}`);
    }
  });
  await check("another room hears nothing", () => other.quiet());
  for (const c of [a, b, other]) c.close();
}

/** Reads arrays from `c` until they hold `count` frame objects; the arrays, parsed. */
async function arraysHolding(c, count) {
  const arrays = [];
  let held = 0;
  while (held < count) {
    const text = await c.raw();
    const a = JSON.parse(text);
    assert(Array.isArray(a), `not an array: ${text.slice(0, 80)}`);
    assert(
      Buffer.byteLength(text) <= MAX_ARRAY_BYTES || a.length === 1,
      `an array of ${a.length} frames is ${Buffer.byteLength(text)} bytes`,
    );
    arrays.push(a);
    held += a.length;
  }
  return arrays;
}

async function checkBatched(base) {
  const sockets = await bareRoom(base);
  if (!sockets) return;
  const [a, b, other] = sockets;
  await check("in an idle room a frame goes at once to every socket, as an array of one", async () => {
    a.send('{"type":"publish","data":1}');
    for (const c of [a, b]) {
      const got = await c.raw(FLUSH_MS * 20);
      assert(got === '[{"type":"publish","data":1}]', `got ${got}`);
    }
  });
  await check("a burst is coalesced: each frame once, in order, the same arrays to every socket", async () => {
    await sleep(FLUSH_MS * 4);
    const count = 20;
    for (let i = 0; i < count; i++) a.send(JSON.stringify({ type: "publish", data: { i } }));
    const seen = [];
    for (const c of [a, b]) {
      const arrays = await arraysHolding(c, count);
      const order = arrays.flat().map((f) => f.data.i);
      assert(JSON.stringify(order) === JSON.stringify([...Array(count).keys()]), `order ${order}`);
      assert(arrays[0].length === 1, `the first of the burst waited: ${arrays[0].length} in its array`);
      assert(arrays.length < count, `${arrays.length} arrays for ${count} frames`);
      seen.push(arrays.map((x) => x.length).join(","));
    }
    assert(seen[0] === seen[1], `different arrays: ${seen.join(" vs ")}`);
  });
  await check("arrays are split above 64 KiB, never a frame", async () => {
    await sleep(FLUSH_MS * 4);
    const count = 13;
    const pad = "x".repeat(10_000);
    for (let i = 0; i < count; i++) a.send(JSON.stringify({ type: "publish", data: { i, pad } }));
    const arrays = await arraysHolding(b, count);
    const order = arrays.flat().map((f) => f.data.i);
    assert(JSON.stringify(order) === JSON.stringify([...Array(count).keys()]), `order ${order}`);
    // The first goes at once; the other 12 (about 120 KB) take at least two arrays.
    assert(arrays.length >= 3, `${arrays.length} arrays`);
    await arraysHolding(a, count);
  });
  await check("another room hears nothing", () => other.quiet());
  for (const c of [a, b, other]) c.close();
}

async function checkV2(base) {
  const room = `check-${randomBytes(4).toString("hex")}`;
  const v2 = ["roomgate.v2"];
  let a, b;
  await check("offering roomgate.v2 selects it; the welcome opens the first array", async () => {
    a = await connect(base, `/ws/${room}`, mint({ sub: "alice", name: "Alice" }), v2);
    assert(a.ws.protocol === "roomgate.v2", `selected ${JSON.stringify(a.ws.protocol)}`);
    const text = await a.raw();
    const first = JSON.parse(text);
    assert(Array.isArray(first) && first[0]?.type === "welcome", `first frame ${text.slice(0, 120)}`);
    assert(first[0].room === room && first[0].last_seq === 0, `welcome ${JSON.stringify(first[0])}`);
    a.pendingObjects = first.slice(1);
    a.seen = [...first];
  });
  if (!a) return;
  await check("a member arriving is a presence frame, not a join", async () => {
    b = await connect(base, `/ws/${room}`, mint({ sub: "bob", name: "Bob" }), v2);
    const w = await b.nextObject("welcome");
    assert(w.user?.id === "bob", `welcome.user ${JSON.stringify(w.user)}`);
    const p = await a.nextObject("presence");
    assert(
      p.joined?.some((u) => u.id === "bob") && Array.isArray(p.left),
      `presence ${JSON.stringify(p)}`,
    );
  });
  if (!b) return;
  await check("messages come in arrays, seq 1 then 2 for both", async () => {
    a.send(JSON.stringify({ type: "publish", data: "one" }));
    b.send(JSON.stringify({ type: "publish", data: "two" }));
    const seen = [];
    for (const c of [a, b]) {
      const m1 = await c.nextObject("message");
      const m2 = await c.nextObject("message");
      assert(m1.seq === 1 && m2.seq === 2, `seqs ${m1.seq}, ${m2.seq}`);
      seen.push(`${m1.data},${m2.data}`);
    }
    assert(seen[0] === seen[1], `different orders: ${seen.join(" vs ")}`);
  });
  await check("an array of publishes is handled element by element, in order", async () => {
    a.send(JSON.stringify([{ type: "publish", data: "three" }, { type: "publish", data: "four" }]));
    for (const c of [a, b]) {
      const m3 = await c.nextObject("message");
      const m4 = await c.nextObject("message");
      assert(m3.seq === 3 && m3.data === "three" && m4.seq === 4 && m4.data === "four",
        `got ${JSON.stringify([m3, m4])}`);
    }
  });
  await check("ping gets the runtime's bare pong", async () => {
    a.send('{"type":"ping"}');
    for (;;) {
      const text = await a.raw();
      const f = JSON.parse(text);
      if (!Array.isArray(f)) {
        assert(f.type === "pong", `bare ${text}`);
        break;
      }
      a.seen.push(...f);
    }
  });
  await check("a burst is coalesced into fewer arrays, every message once and in order", async () => {
    await sleep(FLUSH_MS * 4);
    const count = 20;
    for (let i = 0; i < count; i++) a.send(JSON.stringify({ type: "publish", data: i }));
    let arrays = 0;
    const seqs = [];
    while (seqs.length < count) {
      const objects = await b.objects();
      arrays++;
      for (const o of objects) if (o.type === "message") seqs.push(o.seq);
    }
    assert(JSON.stringify(seqs) === JSON.stringify([...Array(count).keys()].map((i) => i + 5)),
      `seqs ${seqs}`);
    assert(arrays < count, `${arrays} arrays for ${count} messages`);
  });
  await check("a v2 socket never gets join or leave", async () => {
    await sleep(QUIET_MS);
    for (const text of a.queue.splice(0)) {
      const f = JSON.parse(text);
      a.seen.push(...(Array.isArray(f) ? f : [f]));
    }
    assert(!a.seen.some((o) => o.type === "join" || o.type === "leave"), "join/leave seen");
  });
  a.close();
  b.close();
}

// ---------------------------------------------------------------------------------------

const names = process.argv.length > 2 ? process.argv.slice(2) : ["js-reference", "js-bare", "js-bare-batched"];
for (const name of names) {
  const target = TARGETS[name];
  if (!target) {
    fail(name, `unknown target (known: ${Object.keys(TARGETS).join(", ")})`);
    continue;
  }
  console.log(`${name} (${target.config})`);
  const runtime = startRuntime(target.config, { JWT_SECRET, ADMIN_TOKEN });
  try {
    const { url, workerd_pid } = await runtime.ready;
    console.log(`  serving on ${url}, workerd pid ${workerd_pid}`);
    await target.check(url);
  } catch (err) {
    fail(`${name} runtime`, err.message);
  } finally {
    await runtime.stop();
  }
}
console.log(failures ? `${failures} check(s) FAILED` : "all checks passed");
process.exit(failures ? 1 : 0);
