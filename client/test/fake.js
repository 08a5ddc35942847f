// Stand-ins for the network and the clock, so each test scripts the server's side: a
// WebSocket the test accepts, feeds and closes; a fetch answering POST /ws-ticket from a
// list; timers that run only when the test advances time. The client under test is the
// real one.
import { RoomClient } from "../src/index.js";

export const BASE = "https://chat.example";

/** Lets every promise chain the client started run to its end. */
export function settle() {
  return new Promise((resolve) => setImmediate(resolve));
}

export class FakeTimers {
  now = 0;
  #next = 1;
  #timers = new Map(); // id -> { at, ms, fn }

  setTimeout = (fn, ms) => {
    const id = this.#next++;
    this.#timers.set(id, { at: this.now + ms, ms, fn });
    return id;
  };

  clearTimeout = (id) => {
    this.#timers.delete(id);
  };

  /** The delays of the timers still pending, in the order they were set. */
  pending() {
    return [...this.#timers.values()].map((t) => t.ms);
  }

  /** Moves the clock on, running each timer that falls due, earliest first. */
  async advance(ms) {
    const end = this.now + ms;
    for (;;) {
      let due = null;
      for (const [id, t] of this.#timers) {
        if (t.at <= end && (due === null || t.at < due[1].at)) due = [id, t];
      }
      if (due === null) break;
      this.#timers.delete(due[0]);
      this.now = due[1].at;
      due[1].fn();
      await settle();
    }
    this.now = end;
  }
}

/** A WebSocket whose far end is the test. */
export function fakeWebSocketClass(sockets) {
  return class FakeWebSocket {
    static OPEN = 1;

    constructor(url, protocols) {
      this.url = url;
      this.protocols = protocols;
      this.readyState = 0;
      this.protocol = "";
      this.binaryType = "blob";
      this.sent = [];
      this.closedByClient = null;
      this.onmessage = null;
      this.onclose = null;
      this.onerror = null;
      sockets.push(this);
    }

    send(text) {
      if (this.readyState !== 1) throw new Error("InvalidStateError: not open");
      this.sent.push(text);
    }

    close(code, reason) {
      this.closedByClient = { code, reason };
      this.readyState = 2;
    }

    // --- the server's side ---

    /** Completes the upgrade and sends the welcome. */
    accept(welcomeFields = {}) {
      this.readyState = 1;
      this.protocol = "roomgate.v2";
      this.push(welcome(welcomeFields));
    }

    /** Sends the frames as one v2 text frame (an array). */
    push(...frames) {
      this.onmessage?.({ data: JSON.stringify(frames) });
    }

    /** Sends one text or binary frame as it is. */
    pushRaw(data) {
      this.onmessage?.({ data });
    }

    /** The server (or the network) ends the connection. */
    drop(code, reason = "") {
      this.readyState = 3;
      this.onclose?.({ code, reason, wasClean: code !== 1006 });
    }

    /** Every frame the client sent, array frames flattened, in order. */
    frames() {
      return this.sent.flatMap((text) => [].concat(JSON.parse(text)));
    }
  };
}

export function welcome(fields = {}) {
  return {
    type: "welcome",
    room: "lobby",
    user: { id: "u1", name: "Alice" },
    members: [{ id: "u1", name: "Alice" }, { id: "u2", name: "Bob" }],
    expires_at: 1795710003,
    last_seq: 0,
    ...fields,
  };
}

export function message(seq, fields = {}) {
  return { type: "message", seq, from: { id: "u2", name: "Bob" }, data: { text: `m${seq}` }, ts: 1795706400000 + seq, ...fields };
}

function response({ status = 200, body = {}, headers = {} }) {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), String(v)]));
  return {
    ok: status >= 200 && status < 300,
    status,
    headers: { get: (name) => lower[name.toLowerCase()] ?? null },
    json: async () => (typeof body === "string" ? JSON.parse(body) : body),
  };
}

/**
 * A client wired to the fakes. `fetchReplies` answers POST /ws-ticket in order (an Error
 * is a network failure); when it runs out, each call gets a fresh ticket.
 */
export function harness(options = {}) {
  const sockets = [];
  const timers = new FakeTimers();
  const fetchCalls = [];
  const fetchReplies = [];
  const h = {
    sockets,
    timers,
    fetchCalls,
    fetchReplies,
    random: 0.5,
    events: [],
    get socket() { return sockets.at(-1); },
    /** The events of one kind, in order. */
    of(kind) { return h.events.filter(([k]) => k === kind).map(([, v]) => v); },
  };
  const fetch = async (url, init) => {
    fetchCalls.push({ url, init });
    const reply = fetchReplies.shift() ?? { body: { ticket: `ticket-${fetchCalls.length}`, expires_in: 30 } };
    if (reply instanceof Error) throw reply;
    return response(reply);
  };
  h.client = new RoomClient({
    url: BASE,
    room: "lobby",
    token: "tok",
    WebSocket: fakeWebSocketClass(sockets),
    fetch,
    timers,
    random: () => h.random,
    ...options,
  });
  for (const kind of ["state", "welcome", "members", "presence", "message", "gap", "expiring", "refreshed", "close", "error"]) {
    h.client.on(kind, (value) => h.events.push([kind, value]));
  }
  return h;
}

/** A harness whose client is connected and welcomed. */
export async function connected(options = {}, welcomeFields = {}) {
  const h = harness(options);
  await settle();
  h.socket.accept(welcomeFields);
  return h;
}
