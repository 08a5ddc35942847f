// roomgate-client: one room of a roomgate server, over a WebSocket speaking protocol v2.
//
// A RoomClient gets a socket (a single-use ticket per connection, or the token in the
// subprotocol list), resumes after every drop with `?since=<last seq>`, and hands each
// message to its listeners once, in `seq` order. Publishes, history requests and token
// refreshes carry a `ref`, so each settles with its own answer; those made in one tick go
// out in one array frame. No dependencies and no build step: this one file runs in
// browsers, Cloudflare Workers, Deno and Node (pass the `ws` package's WebSocket where
// there is no global one). The wire protocol is docs/protocol.md in the roomgate sources.

const SUBPROTOCOL = "roomgate.v2";
const ROOM_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const BASE_URL = /^(?:https?|wss?):\/\/[^/?#]+(?:\/[^?#]*)?$/;
// This exact text is answered by the Workers runtime itself, without waking the room.
const PING = '{"type":"ping"}';
const OPEN = 1;
const EVENTS = new Set(["state", "welcome", "members", "presence", "message", "gap",
  "expiring", "refreshed", "close", "error"]);
// Refusals of a `refresh` that a later attempt on the same socket can overcome.
const TRANSIENT_REFRESH = new Set(["rate_limited", "issuer_unavailable"]);
const REFRESH_RETRY_MS = 10000;

/** An error with a stable machine-readable `code`; see the README for every code. */
export class RoomError extends Error {
  constructor(code, message, details = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = "RoomError";
    this.code = code;
    if (details.status !== undefined) this.status = details.status;
    if (details.closeCode !== undefined) this.closeCode = details.closeCode;
  }
}

export class RoomClient {
  #o;
  #name;
  #wsBase;
  #ticketUrl;
  #listeners = new Map();
  #state = "connecting";
  #ws = null;
  #generation = 0; // bumped per attempt and by close(), so stale async work can tell
  #attempt = 0; // failed attempts since the last welcome: the backoff exponent
  // backoff: until the next attempt; dead: the welcome, or any frame after a ping, must
  // come before it fires; ping: the next keep-alive; refresh: a refused refresh's retry.
  #timers = { backoff: null, ping: null, dead: null, refresh: null };
  #resume; // whether the next socket asks for `?since=`
  #lastSeq;
  #members = new Map();
  #me = null;
  #expiresAt = null;
  #socketToken = null; // the token the current socket was opened or refreshed with
  #expiredToken = null; // the token a 4001 close said is expired
  #upgradeStatus; // an HTTP status the WebSocket implementation reported for a refused upgrade
  #nextRef = 0;
  #pending = new Map(); // ref -> request waiting to be sent or answered
  #queue = []; // requests not yet sent, in call order
  #flushScheduled = false;
  #decoder = null;

  constructor(options) {
    const o = options ?? {};
    if (typeof o.url !== "string" || !BASE_URL.test(o.url)) {
      throw new TypeError("url must be an http(s):// or ws(s):// URL without query or fragment");
    }
    if (typeof o.room !== "string" || !ROOM_NAME.test(o.room)) {
      throw new TypeError("room must match ^[A-Za-z0-9_.-]{1,64}$");
    }
    if (typeof o.token !== "string" && typeof o.token !== "function") {
      throw new TypeError("token must be a string or a function returning one");
    }
    const transport = o.transport ?? "subprotocol";
    if (transport !== "subprotocol" && transport !== "ticket") {
      throw new TypeError('transport must be "subprotocol" or "ticket"');
    }
    if (o.since !== undefined && !isSeq(o.since)) {
      throw new TypeError("since must be a whole number of at least 0");
    }
    const initialMs = o.backoff?.initialMs ?? 500;
    const maxMs = o.backoff?.maxMs ?? 15000;
    if (!(initialMs > 0 && maxMs >= initialMs)) {
      throw new TypeError("backoff needs 0 < initialMs <= maxMs");
    }
    if (typeof (o.WebSocket ?? globalThis.WebSocket) !== "function") {
      throw new TypeError('no WebSocket here: pass one (in Node: WebSocket from the "ws" package)');
    }
    if (transport === "ticket" && typeof (o.fetch ?? globalThis.fetch) !== "function") {
      throw new TypeError("the ticket transport needs fetch: pass one");
    }
    const timers = o.timers ?? {
      setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
      clearTimeout: (handle) => globalThis.clearTimeout(handle),
    };
    this.#o = {
      token: o.token,
      transport,
      initialMs,
      maxMs,
      pingIntervalMs: o.pingIntervalMs ?? 30000,
      timeoutMs: o.timeoutMs ?? 15000,
      maxFrameBytes: o.maxFrameBytes ?? 16384,
      WebSocket: o.WebSocket,
      fetch: o.fetch,
      setTimeout: timers.setTimeout,
      clearTimeout: timers.clearTimeout,
      random: o.random ?? Math.random,
    };
    const base = o.url.replace(/\/+$/, "");
    const httpBase = base.replace(/^ws/i, "http");
    const ticketUrl = o.ticketUrl ?? `${httpBase}/ws-ticket`;
    this.#name = o.room;
    this.#wsBase = base.replace(/^http/i, "ws");
    // A path is taken on the server's origin, so the same options work outside a page.
    this.#ticketUrl = ticketUrl.startsWith("/")
      ? httpBase.match(/^[a-z]+:\/\/[^/]+/i)[0] + ticketUrl
      : ticketUrl;
    this.#resume = o.since !== undefined;
    this.#lastSeq = o.since ?? 0;
    this.#connect();
  }

  get name() { return this.#name; }
  get state() { return this.#state; }
  get members() { return this.#members; }
  get me() { return this.#me; }
  get lastSeq() { return this.#lastSeq; }
  get expiresAt() { return this.#expiresAt; }

  on(event, listener) {
    if (!EVENTS.has(event)) throw new TypeError(`unknown event "${event}"`);
    if (typeof listener !== "function") throw new TypeError("listener must be a function");
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => { set.delete(listener); };
  }

  off(event, listener) {
    this.#listeners.get(event)?.delete(listener);
  }

  publish(data) {
    if (this.#state === "closed") return Promise.reject(closedError());
    let json;
    try {
      json = JSON.stringify(data);
    } catch (e) {
      return Promise.reject(new TypeError(`publish data is not JSON: ${describe(e)}`));
    }
    if (json === undefined) {
      return Promise.reject(new TypeError("publish data must be a JSON value (null is one)"));
    }
    const ref = this.#ref();
    return this.#request("publish", ref, `{"type":"publish","data":${json},"ref":"${ref}"}`);
  }

  history({ before, limit } = {}) {
    if (this.#state === "closed") return Promise.reject(closedError());
    if (before !== undefined && !(isSeq(before) && before > 0)) {
      return Promise.reject(new TypeError("before must be a whole number of at least 1"));
    }
    if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1 && limit <= 100)) {
      return Promise.reject(new TypeError("limit must be a whole number from 1 to 100"));
    }
    const ref = this.#ref();
    return this.#request("history", ref, JSON.stringify({ type: "history", before, limit, ref }));
  }

  // Pages back from `before` (absent: the newest), one `history` request per page, until
  // the room has nothing older. A short page is no end: the answer may have hit its size
  // bound, so only an empty page (or seq 1) is.
  async *historyPages({ before, limit } = {}) {
    let cursor = before;
    for (;;) {
      const page = await this.history({ before: cursor, limit });
      if (page.length === 0) return;
      yield page;
      cursor = page[0].seq;
      if (cursor <= 1) return;
    }
  }

  close() {
    if (this.#state === "closed") return;
    this.#generation++;
    this.#disarm("backoff");
    const ws = this.#ws;
    this.#ws = null;
    this.#connectionGone();
    if (ws) {
      detach(ws);
      try { ws.close(1000, "client closed"); } catch { /* already closing */ }
    }
    this.#members = new Map();
    this.#stop();
  }

  // --- connecting ------------------------------------------------------------------

  async #connect() {
    const generation = ++this.#generation;
    this.#setState("connecting");
    let token;
    try {
      token = await this.#token("connect");
    } catch (e) {
      if (generation !== this.#generation) return;
      return this.#ended({ error: providerError(e), retry: true });
    }
    if (generation !== this.#generation) return;
    if (typeof token !== "string" || token === "") {
      const error = new RoomError("no_token", "the token provider gave no token");
      return this.#ended({ error, retry: false });
    }
    if (token === this.#expiredToken) {
      const error = new RoomError("token_expired", "the token has expired and the provider gave no newer one");
      return this.#ended({ error, retry: false });
    }
    const query = [];
    const protocols = [SUBPROTOCOL];
    if (this.#o.transport === "ticket") {
      const got = await this.#ticket(token);
      if (generation !== this.#generation) return;
      if (got.error) return this.#ended(got);
      query.push(`ticket=${encodeURIComponent(got.ticket)}`);
    } else {
      protocols.push(`bearer.${token}`);
    }
    if (this.#resume) query.push(`since=${this.#lastSeq}`);
    const url = `${this.#wsBase}/ws/${this.#name}${query.length ? `?${query.join("&")}` : ""}`;
    const WebSocketClass = this.#o.WebSocket ?? globalThis.WebSocket;
    let ws;
    try {
      ws = new WebSocketClass(url, protocols);
    } catch (e) {
      const error = new RoomError("socket_failed", `the WebSocket could not be created: ${describe(e)}`, { cause: e });
      return this.#ended({ error, retry: false });
    }
    this.#ws = ws;
    this.#socketToken = token;
    this.#upgradeStatus = undefined;
    try { ws.binaryType = "arraybuffer"; } catch { /* not every implementation has it */ }
    ws.onmessage = (event) => { if (this.#ws === ws) this.#receive(event.data); };
    ws.onclose = (event) => {
      if (this.#ws === ws) this.#socketClosed(event.code, event.reason ?? "");
    };
    ws.onerror = (event) => { if (this.#ws === ws) this.#upgradeStatus = upgradeStatusOf(event); };
    this.#arm("dead", this.#o.timeoutMs, () => this.#timedOut("no welcome in time"));
  }

  async #token(reason) {
    const t = this.#o.token;
    return typeof t === "function" ? await t({ reason, room: this.#name }) : t;
  }

  async #ticket(token) {
    const fetchFn = this.#o.fetch ?? ((...args) => globalThis.fetch(...args));
    let res;
    try {
      res = await fetchFn(this.#ticketUrl, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ room: this.#name }),
      });
    } catch (e) {
      const error = new RoomError("network_error", `ticket request failed: ${describe(e)}`, { cause: e });
      return { error, retry: true };
    }
    let body = null;
    try { body = await res.json(); } catch { /* not JSON: judged by the status alone */ }
    if (res.ok && typeof body?.ticket === "string" && body.ticket !== "") {
      return { ticket: body.ticket };
    }
    const status = res.status;
    const outcome = res.ok ? { retry: true, code: "bad_response" } : httpOutcome(status);
    const code = typeof body?.error === "string" ? body.error : outcome.code;
    const message = typeof body?.message === "string"
      ? body.message
      : `ticket request answered ${status}`;
    const retryAfter = Number(res.headers?.get?.("retry-after"));
    return {
      error: new RoomError(code, message, { status }),
      retry: outcome.retry,
      minDelayMs: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : 0,
    };
  }

  #socketClosed(code, reason) {
    const status = this.#state === "open" ? undefined : this.#upgradeStatus;
    const outcome = status === undefined ? closeOutcome(code, reason) : httpOutcome(status);
    const message = status === undefined
      ? reason || `connection closed (${code})`
      : `the upgrade was refused with ${status}`;
    const error = new RoomError(outcome.code, message, { status, closeCode: code });
    if (code === 4001) this.#expiredToken = this.#socketToken;
    this.#ended({ code, reason, error, retry: outcome.retry });
  }

  // The socket may be half-open (no close will ever arrive), so it is given up on at once.
  #timedOut(why) {
    const ws = this.#ws;
    if (!ws) return;
    this.#ws = null;
    detach(ws);
    try { ws.close(4000, why); } catch { /* already closing */ }
    const error = new RoomError("connection_lost", why, { closeCode: 1006 });
    this.#ended({ code: 1006, reason: why, error, retry: true });
  }

  // One connection, or one attempt at one, ended. Bookkeeping comes first, then the
  // events, so a listener that calls close() finds nothing left to undo.
  #ended({ code = null, reason = "", error, retry, minDelayMs = 0 }) {
    const ws = this.#ws;
    this.#ws = null;
    if (ws) detach(ws);
    this.#connectionGone();
    const hadMembers = this.#members.size > 0;
    this.#members = new Map();
    let delayMs = null;
    if (retry) {
      const span = Math.min(this.#o.maxMs, this.#o.initialMs * 2 ** Math.min(this.#attempt, 30));
      // Equal jitter: a restart of the server does not bring every client back at once.
      delayMs = Math.max(minDelayMs, Math.round(span / 2 + (this.#o.random() * span) / 2));
      this.#attempt += 1;
      this.#arm("backoff", delayMs, () => this.#connect());
    }
    if (hadMembers) this.#emit("members", this.#members);
    if (this.#state === "closed") return;
    this.#emit("close", { code, reason, willRetry: retry, delayMs, error });
    if (this.#state === "closed") return;
    if (retry) this.#setState("reconnecting");
    else this.#stop();
  }

  // What was sent on a socket that is gone may or may not have been acted on: its answer
  // went with the socket. What was never sent stays queued for the next one.
  #connectionGone() {
    this.#disarm("ping");
    this.#disarm("dead");
    this.#disarm("refresh");
    for (const [ref, entry] of this.#pending) {
      if (entry.socket === null && entry.kind !== "refresh") continue;
      this.#pending.delete(ref);
      if (entry.kind !== "refresh") {
        entry.reject(new RoomError("connection_lost", "the connection was lost before the answer"));
      }
    }
    this.#queue = this.#queue.filter((entry) => entry.kind !== "refresh");
  }

  #stop() {
    for (const entry of this.#pending.values()) entry.reject(closedError());
    this.#pending.clear();
    this.#queue = [];
    this.#setState("closed");
  }

  // --- receiving -------------------------------------------------------------------

  #receive(data) {
    this.#keepalive();
    let text = data;
    if (typeof text !== "string") {
      const isBuffer = Object.prototype.toString.call(data) === "[object ArrayBuffer]";
      if (!isBuffer && !ArrayBuffer.isView(data)) return;
      this.#decoder ??= new TextDecoder();
      text = this.#decoder.decode(data);
    }
    let parsed;
    try {
      parsed = JSON.parse(text);
    } catch {
      this.#emit("error", new RoomError("protocol_error", "the server sent a frame that is not JSON"));
      return;
    }
    const ws = this.#ws;
    // v2 frames are arrays; the runtime's own answer to a ping is a bare object.
    for (const frame of Array.isArray(parsed) ? parsed : [parsed]) {
      if (this.#ws !== ws) return; // a listener closed the client
      if (typeof frame?.type === "string") this.#frame(frame);
    }
  }

  #frame(f) {
    switch (f.type) {
      case "welcome": return this.#welcome(f);
      case "message": return this.#message(f);
      case "presence": return this.#presence(f);
      case "gap":
        if (isSeq(f.from) && isSeq(f.to)) {
          this.#lastSeq = Math.max(this.#lastSeq, f.to);
          this.#emit("gap", { from: f.from, to: f.to });
        }
        return;
      case "expiring":
        this.#expiresAt = isSeq(f.expires_at) ? f.expires_at : this.#expiresAt;
        this.#emit("expiring", { expiresAt: this.#expiresAt });
        this.#refresh();
        return;
      case "refreshed": return this.#answered("refresh", f, f.expires_at);
      case "history":
        return this.#answered("history", f, listOf(f.messages, toMessage));
      case "error": return this.#serverError(f);
      default: return; // pong, and frame types this client does not know yet
    }
  }

  #welcome(f) {
    this.#disarm("dead");
    const lastSeq = isSeq(f.last_seq) ? f.last_seq : 0;
    // Without `since` the room replays nothing, so the room's position is the start. A
    // resume point ahead of the room (another deployment's, say) would hide every new
    // message, so the room's position wins there too.
    if (!this.#resume || this.#lastSeq > lastSeq) this.#lastSeq = lastSeq;
    this.#resume = true;
    this.#attempt = 0;
    this.#expiredToken = null;
    this.#me = toUser(f.user);
    const members = listOf(f.members, toUser);
    this.#members = new Map(members.map((u) => [u.id, u]));
    this.#expiresAt = isSeq(f.expires_at) ? f.expires_at : null;
    this.#setState("open");
    const expiresAt = this.#expiresAt;
    this.#emit("welcome", { room: f.room, user: this.#me, members, expiresAt, lastSeq });
    this.#emit("members", this.#members);
    this.#keepalive();
    this.#flush();
  }

  #message(f) {
    const m = toMessage(f);
    if (typeof f.ref === "string") this.#answered("publish", f, f.seq);
    // At or below lastSeq: already delivered, by a resume overlapping what was seen.
    if (!m || m.seq <= this.#lastSeq) return;
    this.#lastSeq = m.seq;
    this.#emit("message", m);
  }

  #presence(f) {
    const joined = listOf(f.joined, toUser);
    const left = listOf(f.left, toUser);
    const members = new Map(this.#members);
    for (const u of left) members.delete(u.id);
    for (const u of joined) members.set(u.id, u);
    this.#members = members;
    this.#emit("presence", { joined, left });
    this.#emit("members", members);
  }

  // Settles the request an answer names by its ref. An answer without a ref (a server
  // that does not echo one) goes to the oldest request of its kind still waiting.
  #answered(kind, f, value) {
    const entry = this.#entryFor(kind, f);
    if (!entry) return;
    this.#pending.delete(entry.ref);
    entry.resolve(value);
  }

  #entryFor(kind, f) {
    if (typeof f.ref === "string") {
      const entry = this.#pending.get(f.ref);
      return entry && entry.kind === kind && entry.socket ? entry : undefined;
    }
    // A message without a ref is someone else's, or a replay: it answers no publish.
    if (kind === "publish") return undefined;
    for (const entry of this.#pending.values()) {
      if (entry.kind === kind && entry.socket) return entry;
    }
    return undefined;
  }

  #serverError(f) {
    const code = typeof f.code === "string" ? f.code : "error";
    const error = new RoomError(code, typeof f.message === "string" ? f.message : code);
    const entry = typeof f.ref === "string" ? this.#pending.get(f.ref) : undefined;
    if (!entry || !entry.socket) return this.#emit("error", error);
    this.#pending.delete(entry.ref);
    entry.reject(error);
  }

  // --- refresh ---------------------------------------------------------------------

  async #refresh() {
    const ws = this.#ws;
    let token;
    try {
      token = await this.#token("refresh");
    } catch (e) {
      if (this.#ws === ws) {
        this.#emit("error", providerError(e));
      }
      return;
    }
    // The same token again is no refresh: the socket keeps its expiry, and a 4001 follows.
    if (this.#ws !== ws || typeof token !== "string" || token === "") return;
    if (token === this.#socketToken) return;
    const ref = this.#ref();
    const entry = {
      kind: "refresh",
      ref,
      text: JSON.stringify({ type: "refresh", token, ref }),
      socket: null,
      resolve: (expiresAt) => {
        this.#socketToken = token;
        if (isSeq(expiresAt)) this.#expiresAt = expiresAt;
        this.#emit("refreshed", { expiresAt: this.#expiresAt });
      },
      reject: (error) => {
        this.#emit("error", error);
        if (TRANSIENT_REFRESH.has(error.code) && this.#ws === ws) {
          this.#arm("refresh", REFRESH_RETRY_MS, () => this.#refresh());
        }
      },
    };
    this.#enqueue(entry);
  }

  // --- sending ---------------------------------------------------------------------

  #ref() {
    this.#nextRef += 1;
    return String(this.#nextRef);
  }

  #request(kind, ref, text) {
    return new Promise((resolve, reject) => {
      this.#enqueue({ kind, ref, text, socket: null, resolve, reject });
    });
  }

  #enqueue(entry) {
    entry.bytes = utf8Length(entry.text);
    // A frame over the server's bound closes the socket (1009) with everything in flight.
    if (entry.bytes + 2 > this.#o.maxFrameBytes) {
      const limit = this.#o.maxFrameBytes;
      entry.reject(new RoomError("frame_too_large", `the frame is ${entry.bytes} bytes; the limit is ${limit}`));
      return;
    }
    this.#pending.set(entry.ref, entry);
    this.#queue.push(entry);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      Promise.resolve().then(() => { this.#flushScheduled = false; this.#flush(); });
    }
  }

  // Sends everything queued as few array frames as the frame-size bound allows.
  #flush() {
    const ws = this.#ws;
    if (this.#state !== "open" || !ws || ws.readyState !== OPEN) return;
    while (this.#queue.length > 0) {
      let size = 1;
      let n = 0;
      for (; n < this.#queue.length; n++) {
        const more = this.#queue[n].bytes + 1;
        if (n > 0 && size + more > this.#o.maxFrameBytes) break;
        size += more;
      }
      const batch = this.#queue.slice(0, n);
      try {
        ws.send(`[${batch.map((entry) => entry.text).join(",")}]`);
      } catch {
        return; // not sent: the close that follows finds these still queued
      }
      this.#queue.splice(0, n);
      for (const entry of batch) entry.socket = ws;
    }
  }

  #keepalive() {
    if (!this.#ws || this.#state !== "open") return;
    this.#disarm("ping");
    this.#disarm("dead");
    if (!(this.#o.pingIntervalMs > 0)) return;
    const ws = this.#ws;
    this.#arm("ping", this.#o.pingIntervalMs, () => {
      if (ws.readyState === OPEN) {
        try { ws.send(PING); } catch { /* the close that follows says why */ }
      }
      this.#arm("dead", this.#o.timeoutMs, () => this.#timedOut("no answer to a ping"));
    });
  }

  // --- plumbing --------------------------------------------------------------------

  #arm(name, ms, fn) {
    this.#disarm(name);
    this.#timers[name] = this.#o.setTimeout(() => { this.#timers[name] = null; fn(); }, ms);
  }

  #disarm(name) {
    if (this.#timers[name] !== null) this.#o.clearTimeout(this.#timers[name]);
    this.#timers[name] = null;
  }

  #setState(state) {
    if (this.#state === state || this.#state === "closed") return;
    this.#state = state;
    this.#emit("state", state);
  }

  // A throwing listener neither stops the others nor the client; its error is reported
  // the way an uncaught one would be.
  #emit(event, value) {
    const set = this.#listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(value);
      } catch (e) {
        Promise.reject(e);
      }
    }
  }
}

// What a close code asks of the client (protocol §3). `retry: false` ends the client.
function closeOutcome(code, reason) {
  if (code === 4001) return { retry: true, code: "token_expired" };
  if (code === 4003) {
    const known = reason === "kicked" || reason === "revoked" || reason === "forbidden";
    return { retry: false, code: known ? reason : "forbidden" };
  }
  if (code === 1003) return { retry: false, code: "unsupported_data" };
  if (code >= 4000 && code <= 4999) return { retry: false, code: `closed_${code}` };
  const known = { 1008: "rate_limited", 1009: "frame_too_large", 1011: "internal" };
  return { retry: true, code: known[code] ?? "connection_lost" };
}

// What an HTTP refusal (of a ticket, or of the upgrade itself) asks of the client.
function httpOutcome(status) {
  if (status === 401) return { retry: false, code: "invalid_token" };
  if (status === 403) return { retry: false, code: "forbidden" };
  const retry = status === 408 || status === 429 || status >= 500;
  return { retry, code: `http_${status}` };
}

// Browsers hide why an upgrade failed; the `ws` package names the status in its error.
function upgradeStatusOf(event) {
  const text = String(event?.message ?? event?.error?.message ?? "");
  const m = /Unexpected server response: (\d{3})/.exec(text);
  return m ? Number(m[1]) : undefined;
}

function detach(ws) {
  ws.onmessage = null;
  ws.onclose = null;
  // Left as a function: an EventEmitter-based socket (the `ws` package) throws an error
  // event that has no listener.
  ws.onerror = () => {};
}

function toUser(u) {
  return u !== null && typeof u === "object" && typeof u.id === "string"
    ? { id: u.id, name: typeof u.name === "string" ? u.name : u.id }
    : null;
}

function toMessage(f) {
  const from = toUser(f?.from);
  if (!from || !isSeq(f.seq)) return null;
  return { seq: f.seq, from, data: f.data, ts: f.ts };
}

function isSeq(n) {
  return Number.isSafeInteger(n) && n >= 0;
}

function listOf(value, convert) {
  return Array.isArray(value) ? value.map(convert).filter(Boolean) : [];
}

function providerError(cause) {
  return new RoomError("token_unavailable", `the token provider failed: ${describe(cause)}`, { cause });
}

function closedError() {
  return new RoomError("closed", "the client is closed");
}

function describe(e) {
  return e instanceof Error ? e.message : String(e);
}

function utf8Length(s) {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4; // a surrogate pair: one code point
      i++;
    } else n += 3;
  }
  return n;
}
