// The client library's end-to-end scenario, run unchanged in Node (tests/client/node.mjs)
// and in Chromium (tests/browser/client.mjs) against a real roomgate runtime.
//
// The runtime issues tokens that live TOKEN_TTL_SECONDS (short, so that the in-band
// refresh happens during the run) and sends `expiring` EXPIRY_WARNING_SECONDS before. The
// token provider of every client is a callback that logs in again (POST /login).
//
// Steps, each checked here (a failed check throws, naming what was wrong):
//   1. alice (subprotocol transport) and bob (ticket transport) join one room and each
//      sees both in `members`; alice's `presence` names bob joining.
//   2. alice publishes 30 messages at once: each promise settles with its own `seq`, in
//      order, and bob gets the 30 once each, in `seq` order, with the data that was sent.
//   3. bob's socket drops; alice publishes 5 while he is away; bob reconnects by himself,
//      resumes, and ends with all 35 once each, in order.
//   4. history pages back over the room, newest page first, to exactly those 35.
//   5. carol publishes 60 at once, over her rate limit: the refused ones reject with
//      `rate_limited`, each accepted one resolves with the `seq` its own data got, and
//      alice gets exactly the accepted ones.
//   6. a refused ticket (a token that is not one) closes a client for good, with
//      `invalid_token`.
//   7. alice's token is refreshed in-band before it expires, through the callback with
//      reason "refresh"; her socket never closes.
//
// Returns a JSON-able summary with what was observed.

const WAIT_MS = 15000;

export async function scenario({ RoomClient, WebSocket, base, users, tag, ttlSeconds }) {
  const room = `client-${tag}-${Date.now()}`;
  const summary = { room };
  const opened = [];
  // Every socket the clients open, so that the test can drop one as a network would.
  const Recorded = class extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols);
      opened.push(this);
    }
  };
  const clients = [];
  const client = (user, options = {}) => {
    const reasons = [];
    const c = new RoomClient({
      url: base,
      room,
      token: async ({ reason }) => {
        reasons.push(reason);
        return (await login(base, user.creds)).token;
      },
      WebSocket: Recorded,
      backoff: { initialMs: 400, maxMs: 2000 },
      ...options,
    });
    c.reasons = reasons;
    c.seen = [];
    c.closes = [];
    c.on("message", (m) => c.seen.push(m));
    c.on("close", (info) => c.closes.push(info));
    clients.push(c);
    return c;
  };

  try {
    const [alice, bob, carol] = await Promise.all(
      users.map(async (creds) => ({ creds, id: (await login(base, creds)).user.id })),
    );
    // 1. Members, both transports.
    const a = client(alice);
    const aPresence = [];
    a.on("presence", (p) => aPresence.push(p));
    const aRefreshed = new Promise((resolve) => a.on("refreshed", resolve));
    await opens(a);
    const b = client(bob, { transport: "ticket" });
    await opens(b);
    for (const c of [a, b]) {
      await until(() => c.members.has(alice.id) && c.members.has(bob.id), `${c.me?.id} sees both`);
    }
    await until(
      () => aPresence.some((p) => p.joined.some((u) => u.id === bob.id)),
      "alice's presence names bob",
    );
    summary.members = [...a.members.values()].map((u) => u.name);

    // 2. Acknowledged publishes, in order, delivered once each.
    const first = await Promise.all(range(0, 30).map((i) => a.publish({ i })));
    check(increasing(first), `publish seqs increase: ${first}`);
    await until(() => from(b, alice).length === 30, "bob has 30 messages");
    expectMessages(from(b, alice), first, range(0, 30), "bob before the drop");
    expectMessages(from(a, alice), first, range(0, 30), "alice's own echoes");

    // 3. A drop, messages while away, the resume.
    const bSocket = opened.at(-1);
    const dropped = new Promise((resolve) => b.on("close", resolve));
    bSocket.close(3000, "test drop");
    const close = await within(dropped, "bob's close");
    check(close.willRetry === true, `bob retries after a drop: ${JSON.stringify(close)}`);
    summary.drop = { code: close.code, error: close.error.code, delayMs: close.delayMs };
    const away = await Promise.all(range(30, 35).map((i) => a.publish({ i })));
    await opens(b);
    await until(() => from(b, alice).length === 35, "bob caught up to 35");
    const all = [...first, ...away];
    expectMessages(from(b, alice), all, range(0, 35), "bob after the resume");
    check(b.lastSeq === all.at(-1), `bob's lastSeq ${b.lastSeq}`);
    summary.bob_seqs = b.seen.map((m) => m.seq);

    // 4. History, paged.
    const pages = [];
    for await (const page of a.historyPages({ limit: 8 })) pages.push(page.map((m) => m.seq));
    check(
      same(pages.slice().reverse().flat(), all),
      `history pages ${JSON.stringify(pages)} cover ${all}`,
    );
    const latest = await a.history({ limit: 5 });
    check(same(latest.map((m) => m.seq), all.slice(-5)), "the newest page of five");
    summary.history_pages = pages.length;

    // 5. Refusals settle the publish they answer.
    const c = client(carol);
    await opens(c);
    const outcomes = await Promise.allSettled(range(0, 60).map((i) => c.publish({ i })));
    const accepted = [];
    const refused = [];
    outcomes.forEach((o, i) => (o.status === "fulfilled" ? accepted.push([i, o.value]) : refused.push(o.reason)));
    check(refused.length > 0 && accepted.length >= 20, `${accepted.length} accepted, ${refused.length} refused`);
    check(
      refused.every((e) => e.code === "rate_limited"),
      `refusals are rate_limited: ${refused.map((e) => e.code)}`,
    );
    await until(() => from(a, carol).length === accepted.length, "alice has carol's accepted messages");
    expectMessages(
      from(a, carol),
      accepted.map(([, seq]) => seq),
      accepted.map(([i]) => i),
      "carol's accepted publishes",
    );
    check(c.state === "open", `carol is still connected: ${c.state}`);
    summary.rate_limit = { accepted: accepted.length, refused: refused.length };

    // 6. A refusal that must not be retried.
    const bad = new RoomClient({
      url: base,
      room,
      token: "not-a-token",
      transport: "ticket",
      WebSocket: Recorded,
    });
    clients.push(bad);
    const badClose = await within(new Promise((resolve) => bad.on("close", resolve)), "refused ticket");
    check(
      badClose.willRetry === false && badClose.error.code === "invalid_token" && bad.state === "closed",
      `a refused ticket ends the client: ${JSON.stringify({ ...badClose, state: bad.state })}`,
    );
    summary.refused_ticket = { code: badClose.error.code, status: badClose.error.status };

    // 7. The in-band refresh.
    const before = a.expiresAt;
    const refreshed = await within(aRefreshed, "alice's refresh", (ttlSeconds + 5) * 1000);
    check(refreshed.expiresAt > before, `expiry moved: ${before} -> ${refreshed.expiresAt}`);
    check(a.reasons.includes("refresh"), `provider reasons ${a.reasons}`);
    check(a.closes.length === 0 && a.state === "open", `alice never closed: ${JSON.stringify(a.closes)}`);
    summary.refresh = { before, after: refreshed.expiresAt, reasons: a.reasons };

    for (const x of clients) x.close();
    check(clients.every((x) => x.state === "closed"), "close() closes");
    summary.ok = true;
  } catch (e) {
    summary.ok = false;
    summary.error = String(e?.stack ?? e);
    for (const x of clients) x.close();
  }
  return summary;
}

async function login(base, [username, password]) {
  const res = await fetch(`${base}/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username, password }),
  });
  if (!res.ok) throw new Error(`login ${username}: ${res.status}`);
  return res.json();
}

function opens(c) {
  if (c.state === "open") return Promise.resolve();
  return within(
    new Promise((resolve) => {
      const off = c.on("state", (s) => s === "open" && (off(), resolve()));
    }),
    `${c.name} open`,
  );
}

function within(promise, what, ms = WAIT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function until(condition, what) {
  const deadline = Date.now() + WAIT_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function from(c, user) {
  return c.seen.filter((m) => m.from.id === user.id);
}

/** `messages` are exactly `seqs` in order, carrying `{i}` for each of `is`. */
function expectMessages(messages, seqs, is, what) {
  const got = messages.map((m) => [m.seq, m.data?.i]);
  const want = seqs.map((s, k) => [s, is[k]]);
  check(JSON.stringify(got) === JSON.stringify(want), `${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

function range(from, to) {
  return Array.from({ length: to - from }, (_, k) => from + k);
}

function increasing(xs) {
  return xs.every((x, k) => k === 0 || x > xs[k - 1]);
}

function same(xs, ys) {
  return xs.length === ys.length && xs.every((x, k) => x === ys[k]);
}
