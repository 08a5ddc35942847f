// js-bare-batched: the platform's ceiling for coalesced room fan-out. js-bare (no auth,
// no JSON parsing, no storage: each text frame forwarded verbatim to every socket of the
// room, the sender's included) with roomgate's flush policy (docs/protocol.md §4.4):
//
// - a room that has sent nothing for FLUSH_MS sends a frame at once, as an array of one;
// - otherwise it gathers frames until the end of the window its last send opened, then
//   sends them as one array per socket, split so that no array is over 64 KiB (unless
//   one frame alone is).
//
// The frames are expected to be JSON, as the benchmark's are; they are not parsed.
import { DurableObject } from "cloudflare:workers";

const ROOM_RE = /^\/ws\/([A-Za-z0-9_.-]{1,64})$/;
const MAX_ARRAY_BYTES = 64 * 1024;
const DEFAULT_FLUSH_MS = 16;

export default {
  async fetch(request, env) {
    const m = ROOM_RE.exec(new URL(request.url).pathname);
    if (!m) return new Response("not found\n", { status: 404 });
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return new Response("expected a WebSocket upgrade\n", { status: 426 });
    }
    return env.ROOMS.get(env.ROOMS.idFromName(m[1])).fetch(request);
  },
};

// UTF-8 length of a string, without encoding it.
function utf8Length(s) {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // 2 bytes below U+0800; 3 above, except surrogates: a pair is 4 bytes for 2 units.
    if (c >= 0x80) n += c < 0x800 || (c >= 0xd800 && c <= 0xdfff) ? 1 : 2;
  }
  return n;
}

export class BareBatched extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    const ms = Number(env.FLUSH_MS ?? DEFAULT_FLUSH_MS);
    this.flushMs = Number.isFinite(ms) && ms >= 0 ? ms : DEFAULT_FLUSH_MS;
    // In memory only: an object that was evicted had been idle far longer than a window.
    this.lastSend = -Infinity;
    this.pending = [];
    this.timer = null;
  }

  async fetch() {
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server);
    return new Response(null, { status: 101, webSocket: client });
  }

  async webSocketMessage(ws, message) {
    if (typeof message !== "string") {
      // Binary frames cannot go into an array: they go at once, after what is pending,
      // so the order holds.
      this.flush();
      this.broadcast(message);
      this.lastSend = Date.now();
      return;
    }
    if (this.timer === null) {
      const now = Date.now();
      const wait = this.lastSend + this.flushMs - now;
      if (wait <= 0) {
        this.broadcast("[" + message + "]");
        this.lastSend = now;
        return;
      }
      this.timer = setTimeout(() => this.flush(), wait);
    }
    this.pending.push(message);
  }

  // Sends what is pending, in arrays of at most MAX_ARRAY_BYTES, and opens a new window.
  flush() {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const frames = this.pending;
    this.pending = [];
    let batch = [];
    let bytes = 2;
    for (const frame of frames) {
      const size = utf8Length(frame);
      if (batch.length > 0 && bytes + 1 + size > MAX_ARRAY_BYTES) {
        this.broadcast("[" + batch.join(",") + "]");
        batch = [];
        bytes = 2;
      }
      bytes += size + (batch.length > 0 ? 1 : 0);
      batch.push(frame);
    }
    if (batch.length > 0) this.broadcast("[" + batch.join(",") + "]");
    if (frames.length > 0) this.lastSend = Date.now();
  }

  broadcast(data) {
    for (const socket of this.ctx.getWebSockets()) {
      try {
        socket.send(data);
      } catch {
        // A socket that is already closing; its own close event follows.
      }
    }
  }

  async webSocketClose(ws, code) {
    // Not required since compatibility date 2026-04-07 (the runtime answers the close
    // frame itself, web_socket_auto_reply_to_close); harmless, and what older dates need.
    const sendable = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
      (code >= 3000 && code <= 4999);
    try {
      ws.close(sendable ? code : 1000, "closing");
    } catch {
      // Already closed.
    }
  }
}
