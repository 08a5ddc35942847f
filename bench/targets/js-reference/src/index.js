// js-reference: roomgate's job (the wire subset in bench/README.md) written the way one
// would write it in plain JavaScript on Workers — WebCrypto HS256 at the gate, one
// hibernating SQLite-backed Durable Object per room, PBKDF2 logins over D1.
//
//   GET  /ws/{room}            Authorization: Bearer <jwt>  → WebSocket into the room
//   POST /login                {"username","password"}      → {"token", ...}
//   PUT  /admin/users/{name}   Authorization: Bearer <ADMIN_TOKEN>, {"password", "name"?}
//   GET  /healthz
//
// Secrets: JWT_SECRET (≥ 32 bytes), ADMIN_TOKEN (unset: the admin API answers 404).
import { DurableObject } from "cloudflare:workers";

const NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const LEEWAY_SECONDS = 30;
const MAX_FRAME_BYTES = 16384;
const MAX_TOKEN_BYTES = 8192;
const PBKDF2_ITERATIONS = 100_000; // also the most the Workers platform allows
const USER_HEADER = "X-Room-User"; // the verified user, set by the Worker for the room

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

// ---------------------------------------------------------------------------------------
// Small helpers

function json(body, status = 200, headers = {}) {
  return Response.json(body, { status, headers });
}

function error(status, code, message, headers = {}) {
  return json({ error: code, message }, status, headers);
}

function positiveInt(value, fallback) {
  const n = Number(value);
  return Number.isSafeInteger(n) && n > 0 ? n : fallback;
}

function base64urlToBytes(s) {
  // atob is forgiving about whitespace and padding; a JWT segment must be plain base64url.
  if (!/^[A-Za-z0-9_-]*$/.test(s)) throw new Error("bad base64url");
  const bin = atob(s.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

function bytesToBase64(bytes) {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

function bytesToBase64url(bytes) {
  return bytesToBase64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function base64ToBytes(s) {
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}

function jsonToBase64url(value) {
  return bytesToBase64url(encoder.encode(JSON.stringify(value)));
}

function bearer(request) {
  const m = /^Bearer +(\S+) *$/i.exec(request.headers.get("Authorization") ?? "");
  return m ? m[1] : null;
}

// ---------------------------------------------------------------------------------------
// Tokens (HS256 only: the algorithm is fixed here, never taken from the token)

class TokenError extends Error {}

// The HMAC key is imported once per isolate, not per request. Keyed by the secret string
// so a rotated secret (a new deploy / new env) gets a new key.
let cachedSecret = null;
let cachedKey = null;

function hmacKey(secret) {
  if (secret !== cachedSecret) {
    cachedSecret = secret;
    cachedKey = crypto.subtle.importKey(
      "raw",
      encoder.encode(secret),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign", "verify"],
    );
  }
  return cachedKey; // a promise: concurrent first requests share one import
}

function jwtSecret(env) {
  const secret = env.JWT_SECRET;
  return typeof secret === "string" && encoder.encode(secret).byteLength >= 32 ? secret : null;
}

const JWT_HEADER = jsonToBase64url({ alg: "HS256", typ: "JWT", kid: "primary" });

async function signToken(claims, secret) {
  const input = `${JWT_HEADER}.${jsonToBase64url(claims)}`;
  const sig = await crypto.subtle.sign("HMAC", await hmacKey(secret), encoder.encode(input));
  return `${input}.${bytesToBase64url(new Uint8Array(sig))}`;
}

function decodeSegment(segment) {
  try {
    return JSON.parse(decoder.decode(base64urlToBytes(segment)));
  } catch {
    throw new TokenError("malformed token");
  }
}

/** Verifies a token and returns the user it names, `{id, name}`; throws TokenError. */
async function verifyToken(token, env, secret) {
  if (token.length > MAX_TOKEN_BYTES) throw new TokenError("token too large");
  const parts = token.split(".");
  if (parts.length !== 3) throw new TokenError("malformed token");
  const [h, p, s] = parts;

  const header = decodeSegment(h);
  if (header === null || typeof header !== "object") throw new TokenError("malformed token");
  if (header.alg !== "HS256") throw new TokenError("unsupported algorithm");
  if (header.kid !== undefined && header.kid !== "primary") throw new TokenError("unknown key id");

  let sig;
  try {
    sig = base64urlToBytes(s);
  } catch {
    throw new TokenError("malformed token");
  }
  const key = await hmacKey(secret);
  if (!(await crypto.subtle.verify("HMAC", key, sig, encoder.encode(`${h}.${p}`)))) {
    throw new TokenError("bad signature");
  }

  const claims = decodeSegment(p);
  if (claims === null || typeof claims !== "object" || Array.isArray(claims)) {
    throw new TokenError("malformed claims");
  }
  const issuer = env.JWT_ISSUER ?? "roomgate";
  const audience = env.JWT_AUDIENCE ?? "roomgate";
  if (claims.iss !== issuer) throw new TokenError("wrong issuer");
  const aud = claims.aud;
  if (!(aud === audience || (Array.isArray(aud) && aud.includes(audience)))) {
    throw new TokenError("wrong audience");
  }
  const now = Math.floor(Date.now() / 1000);
  if (typeof claims.exp !== "number") throw new TokenError("missing exp");
  if (typeof claims.iat !== "number") throw new TokenError("missing iat");
  if (claims.exp + LEEWAY_SECONDS < now) throw new TokenError("token expired");
  if (claims.iat - LEEWAY_SECONDS > now) throw new TokenError("token issued in the future");
  if (claims.nbf !== undefined) {
    if (typeof claims.nbf !== "number") throw new TokenError("bad nbf");
    if (claims.nbf - LEEWAY_SECONDS > now) throw new TokenError("token not yet valid");
  }
  if (typeof claims.sub !== "string" || claims.sub === "") throw new TokenError("missing sub");
  const name = typeof claims.name === "string" && claims.name !== "" ? claims.name : claims.sub;
  return { id: claims.sub, name };
}

// ---------------------------------------------------------------------------------------
// Passwords

async function pbkdf2(password, salt, iterations) {
  const key = await crypto.subtle.importKey("raw", encoder.encode(password), "PBKDF2", false, [
    "deriveBits",
  ]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations },
    key,
    256,
  );
  return new Uint8Array(bits);
}

// Unknown users are checked against this decoy, so they cost the same PBKDF2 work as known
// ones and the response time does not tell which usernames exist.
const DECOY_SALT = encoder.encode("js-reference-decoy-salt");

function equalBytes(a, b) {
  // crypto.subtle.timingSafeEqual is a Workers extension; it requires equal lengths.
  return a.byteLength === b.byteLength && crypto.subtle.timingSafeEqual(a, b);
}

/** Constant-time comparison of two strings of any lengths (compares their SHA-256). */
async function equalSecrets(a, b) {
  const [da, db] = await Promise.all([
    crypto.subtle.digest("SHA-256", encoder.encode(a)),
    crypto.subtle.digest("SHA-256", encoder.encode(b)),
  ]);
  return crypto.subtle.timingSafeEqual(da, db);
}

async function readJson(request) {
  const type = request.headers.get("Content-Type") ?? "";
  if (!/^application\/json\b/i.test(type)) return null;
  try {
    const body = await request.json();
    return body !== null && typeof body === "object" && !Array.isArray(body) ? body : null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------
// Routes

async function handleSocket(request, env, room) {
  if (!NAME_RE.test(room)) {
    return error(400, "invalid_room", "room names match [A-Za-z0-9_.-]{1,64}");
  }
  if (request.method !== "GET") return error(405, "method_not_allowed", "use GET");
  if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
    return error(426, "upgrade_required", "expected a WebSocket upgrade");
  }
  const secret = jwtSecret(env);
  if (!secret) return error(500, "misconfigured", "JWT_SECRET is missing or too short");

  const challenge = { "WWW-Authenticate": 'Bearer realm="roomgate"' };
  const token = bearer(request);
  if (!token) return error(401, "invalid_token", "missing bearer token", challenge);
  let user;
  try {
    user = await verifyToken(token, env, secret);
  } catch (err) {
    if (!(err instanceof TokenError)) throw err;
    return error(401, "invalid_token", err.message, challenge);
  }

  // The room trusts this header, so it is built here from the verified token only: any
  // copy the client sent is dropped, and the token itself does not travel further.
  const headers = new Headers(request.headers);
  headers.delete(USER_HEADER);
  headers.delete("Authorization");
  headers.set(USER_HEADER, JSON.stringify(user));
  const stub = env.ROOMS.get(env.ROOMS.idFromName(room));
  return stub.fetch(new Request(request, { headers }));
}

async function handleLogin(request, env) {
  if (request.method !== "POST") return error(405, "method_not_allowed", "use POST");
  const secret = jwtSecret(env);
  if (!secret) return error(500, "misconfigured", "JWT_SECRET is missing or too short");
  const body = await readJson(request);
  const { username, password } = body ?? {};
  if (typeof username !== "string" || typeof password !== "string" || username.length > 256) {
    return error(400, "bad_request", 'expected JSON {"username": "...", "password": "..."}');
  }

  const row = await env.DB.prepare(
    "SELECT username, name, salt, hash, iterations FROM users WHERE username = ?",
  )
    .bind(username)
    .first();
  const derived = await pbkdf2(
    password,
    row ? base64ToBytes(row.salt) : DECOY_SALT,
    row ? row.iterations : PBKDF2_ITERATIONS,
  );
  if (!row || !equalBytes(derived, base64ToBytes(row.hash))) {
    return error(401, "invalid_credentials", "unknown user or wrong password");
  }

  const ttl = positiveInt(env.TOKEN_TTL_SECONDS, 3600);
  const iat = Math.floor(Date.now() / 1000);
  const token = await signToken(
    {
      iss: env.JWT_ISSUER ?? "roomgate",
      aud: env.JWT_AUDIENCE ?? "roomgate",
      sub: row.username,
      name: row.name,
      iat,
      exp: iat + ttl,
      jti: crypto.randomUUID(),
    },
    secret,
  );
  return json({ token, token_type: "Bearer", expires_in: ttl });
}

async function handleAdminUser(request, env, username) {
  // No admin token configured: the admin API does not exist.
  if (!env.ADMIN_TOKEN) return error(404, "not_found", "no such route");
  const given = bearer(request);
  if (!given || !(await equalSecrets(given, env.ADMIN_TOKEN))) {
    return error(401, "unauthorized", "admin token required", { "WWW-Authenticate": "Bearer" });
  }
  if (request.method !== "PUT") return error(405, "method_not_allowed", "use PUT");
  if (!NAME_RE.test(username)) {
    return error(400, "bad_request", "usernames match [A-Za-z0-9_.-]{1,64}");
  }
  const body = await readJson(request);
  const { password, name } = body ?? {};
  if (typeof password !== "string" || password.length < 8 || password.length > 1024) {
    return error(400, "bad_request", 'expected JSON {"password": "<8 to 1024 characters>"}');
  }
  if (name !== undefined && (typeof name !== "string" || name === "" || name.length > 128)) {
    return error(400, "bad_request", "name must be a non-empty string (at most 128)");
  }

  const existing = await env.DB.prepare("SELECT name FROM users WHERE username = ?")
    .bind(username)
    .first();
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const hash = await pbkdf2(password, salt, PBKDF2_ITERATIONS);
  const displayName = name ?? existing?.name ?? username;
  await env.DB.prepare(
    `INSERT INTO users (username, name, salt, hash, iterations) VALUES (?1, ?2, ?3, ?4, ?5)
     ON CONFLICT (username) DO UPDATE SET
       name = excluded.name, salt = excluded.salt, hash = excluded.hash,
       iterations = excluded.iterations`,
  )
    .bind(username, displayName, bytesToBase64(salt), bytesToBase64(hash), PBKDF2_ITERATIONS)
    .run();
  return json({ username, name: displayName, created: !existing }, existing ? 200 : 201);
}

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    try {
      if (pathname.startsWith("/ws/")) return await handleSocket(request, env, pathname.slice(4));
      if (pathname === "/login") return await handleLogin(request, env);
      if (pathname.startsWith("/admin/users/")) {
        let username;
        try {
          username = decodeURIComponent(pathname.slice("/admin/users/".length));
        } catch {
          return error(400, "bad_request", "bad username");
        }
        return await handleAdminUser(request, env, username);
      }
      if (pathname === "/healthz" && request.method === "GET") return json({ status: "ok" });
      return error(404, "not_found", "no such route");
    } catch (err) {
      console.error("request failed:", err);
      return error(500, "internal", "internal error");
    }
  },
};

// ---------------------------------------------------------------------------------------
// The room: one Durable Object per room name, hibernatable WebSockets, SQLite storage.

export class Room extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.historyLimit = positiveInt(env.HISTORY_LIMIT, 100);
    // sql.exec is synchronous and nothing else runs until the constructor returns, so
    // no blockConcurrencyWhile is needed: the tables exist and seq is loaded before the
    // first event (also after every wake-up from hibernation).
    const sql = ctx.storage.sql;
    sql.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)");
    sql.exec("CREATE TABLE IF NOT EXISTS history (seq INTEGER PRIMARY KEY, frame TEXT NOT NULL)");
    this.seq = sql.exec("SELECT value FROM meta WHERE key = 'seq'").toArray()[0]?.value ?? 0;
    // An exact {"type":"ping"} is answered by the runtime without waking the object
    // (roomgate does the same); any other spelling reaches webSocketMessage.
    ctx.setWebSocketAutoResponse(
      new WebSocketRequestResponsePair('{"type":"ping"}', '{"type":"pong"}'),
    );
  }

  async fetch(request) {
    // Only the Worker calls this, after verifying the token; see handleSocket.
    const raw = request.headers.get(USER_HEADER);
    if (!raw) return error(400, "bad_request", "no verified user");
    const { id, name } = JSON.parse(raw);
    const room = new URL(request.url).pathname.slice(4);

    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server);
    // The attachment survives hibernation: it is who this socket is.
    server.serializeAttachment({ id, name });
    server.send(
      JSON.stringify({ type: "welcome", room, user: { id, name }, last_seq: this.seq }),
    );
    return new Response(null, { status: 101, webSocket: client });
  }

  async webSocketMessage(ws, message) {
    if (typeof message !== "string") {
      ws.close(1003, "binary frames are not supported");
      return;
    }
    // UTF-8 bytes are between length and 3 × length: encode only when it can matter.
    if (
      message.length > MAX_FRAME_BYTES / 3 &&
      encoder.encode(message).byteLength > MAX_FRAME_BYTES
    ) {
      ws.close(1009, "frame too large");
      return;
    }

    let frame;
    try {
      frame = JSON.parse(message);
    } catch {
      return this.sendError(ws, "bad_frame", "frame is not JSON");
    }
    if (frame === null || typeof frame !== "object" || Array.isArray(frame)) {
      return this.sendError(ws, "bad_frame", "frame must be a JSON object");
    }
    switch (frame.type) {
      case "publish":
        if (!("data" in frame)) return this.sendError(ws, "bad_frame", 'publish needs "data"');
        return this.publish(ws, frame.data);
      case "ping":
        return ws.send('{"type":"pong"}');
      default:
        if (typeof frame.type !== "string") {
          return this.sendError(ws, "bad_frame", 'frame needs a string "type"');
        }
        return this.sendError(ws, "unknown_type", `unknown frame type ${frame.type}`);
    }
  }

  publish(ws, data) {
    const from = ws.deserializeAttachment();
    const seq = this.seq + 1;
    const frame = JSON.stringify({
      type: "message",
      seq,
      from: { id: from.id, name: from.name },
      data,
      ts: Date.now(),
    });
    // Synchronous writes with no await in between: they commit together, and the output
    // gate holds the outgoing frames until they are durable.
    const sql = this.ctx.storage.sql;
    sql.exec(
      "INSERT INTO meta (key, value) VALUES ('seq', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      seq,
    );
    sql.exec("INSERT INTO history (seq, frame) VALUES (?, ?)", seq, frame);
    sql.exec("DELETE FROM history WHERE seq <= ?", seq - this.historyLimit);
    this.seq = seq;

    for (const socket of this.ctx.getWebSockets()) {
      try {
        socket.send(frame);
      } catch {
        // A socket that is already closing; its own close event follows.
      }
    }
  }

  sendError(ws, code, message) {
    ws.send(JSON.stringify({ type: "error", code: code, message }));
  }

  async webSocketClose(ws, code) {
    // From compatibility date 2026-04-07 (web_socket_auto_reply_to_close) the runtime
    // answers the client's close frame itself; closing here is what older dates require,
    // and harmless on later ones. Echo the client's code when it is a sendable one.
    const sendable = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
      (code >= 3000 && code <= 4999);
    const echo = sendable ? code : 1000;
    try {
      ws.close(echo, "closing");
    } catch {
      // Already closed.
    }
  }

  async webSocketError(ws, err) {
    console.error("room socket error:", err);
  }
}
