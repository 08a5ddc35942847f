// js-bare: the platform's ceiling for room fan-out. No auth, no JSON, no storage: a
// hibernating Durable Object per room that sends each text frame, verbatim, to every
// socket of the room (the sender's included).
import { DurableObject } from "cloudflare:workers";

const ROOM_RE = /^\/ws\/([A-Za-z0-9_.-]{1,64})$/;

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

export class Bare extends DurableObject {
  async fetch() {
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server);
    return new Response(null, { status: 101, webSocket: client });
  }

  async webSocketMessage(ws, message) {
    for (const socket of this.ctx.getWebSockets()) {
      try {
        socket.send(message);
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
