// Small load for profiling (bench/support/profile.mjs), in the wire subset of
// bench/README.md. Two modes:
//
//   fanout:   N clients join one room (waiting for each "welcome"), then publish
//             {"type":"publish","data":{"b":"x"}} at R messages/s in total for S seconds;
//             each publish is fanned out to all N sockets.
//   upgrades: repeated upgrades for S seconds, C in flight: connect with a fresh token,
//             wait for the 101, close.
//
//   node bench/support/load-fanout.mjs --url http://127.0.0.1:PORT --secret <JWT_SECRET> \
//        [--mode fanout|upgrades] [--seconds 10] [--clients 10] [--rate 300] \
//        [--inflight 16] [--room bench]
//
// Prints one JSON line of counts at the end.
import { createHmac, randomBytes } from "node:crypto";
import WebSocket from "ws";

const o = { url: undefined, secret: undefined, mode: "fanout", seconds: 10, clients: 10,
  rate: 300, inflight: 16, room: "bench" };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const k = argv[i].replace(/^--/, ""), v = argv[i + 1];
  if (!(k in o) || v === undefined) { console.error(`bad argument ${argv[i]}`); process.exit(2); }
  o[k] = typeof o[k] === "number" ? Number(v) : v;
}
if (!o.url || !o.secret) { console.error("--url and --secret are required"); process.exit(2); }
const wsBase = o.url.replace(/^http/, "ws");

const b64url = (buf) => Buffer.from(buf).toString("base64url");
let userSeq = 0;
function token() {
  const i = userSeq++;
  const iat = Math.floor(Date.now() / 1000);
  const header = b64url(JSON.stringify({ alg: "HS256", typ: "JWT", kid: "primary" }));
  const claims = b64url(JSON.stringify({
    iss: "roomgate", aud: "roomgate", sub: `u${i}`, name: `user ${i}`, iat, exp: iat + 3600,
    jti: randomBytes(12).toString("hex"),
  }));
  const sig = b64url(createHmac("sha256", o.secret).update(`${header}.${claims}`).digest());
  return `${header}.${claims}.${sig}`;
}
function connect() {
  return new WebSocket(`${wsBase}/ws/${o.room}`, {
    headers: { Authorization: `Bearer ${token()}` }, perMessageDeflate: false,
  });
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function fanout() {
  const stats = { mode: "fanout", clients: o.clients, sent: 0, received: 0, errors: 0 };
  const socks = await Promise.all(Array.from({ length: o.clients }, () => new Promise((resolve, reject) => {
    const ws = connect();
    const timer = setTimeout(() => reject(new Error("no welcome within 10 s")), 10_000);
    ws.on("unexpected-response", (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
    ws.on("error", reject);
    ws.on("message", (data) => {
      const m = JSON.parse(data.toString());
      if (m.type === "welcome") { clearTimeout(timer); resolve(ws); }
      else if (m.type === "message") stats.received++;
      else if (m.type === "error") stats.errors++;
    });
  })));
  const frame = JSON.stringify({ type: "publish", data: { b: "x" } });
  const start = performance.now();
  const end = start + o.seconds * 1000;
  // Fixed schedule: message k goes at start + k/rate, from client k mod N.
  for (let k = 0; ; k++) {
    const due = start + (k * 1000) / o.rate;
    if (due >= end) break;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    socks[k % socks.length].send(frame);
    stats.sent++;
  }
  await sleep(500); // let the last fan-outs arrive
  stats.expected = stats.sent * o.clients;
  stats.seconds = (performance.now() - start) / 1000;
  for (const ws of socks) ws.close();
  return stats;
}

async function upgrades() {
  const stats = { mode: "upgrades", inflight: o.inflight, ok: 0, failed: 0, lat_ms_sum: 0 };
  const end = performance.now() + o.seconds * 1000;
  const one = () => new Promise((resolve) => {
    const t0 = performance.now();
    const ws = connect();
    ws.on("upgrade", () => { stats.ok++; stats.lat_ms_sum += performance.now() - t0; });
    ws.on("open", () => { ws.close(); });
    ws.on("unexpected-response", (_req, res) => { stats.failed++; res.resume(); resolve(); });
    ws.on("error", () => { stats.failed++; resolve(); });
    ws.on("close", () => resolve());
  });
  await Promise.all(Array.from({ length: o.inflight }, async () => {
    while (performance.now() < end) await one();
  }));
  stats.seconds = o.seconds;
  stats.per_second = +(stats.ok / o.seconds).toFixed(1);
  stats.mean_upgrade_ms = +(stats.lat_ms_sum / Math.max(1, stats.ok)).toFixed(2);
  delete stats.lat_ms_sum;
  return stats;
}

const stats = await (o.mode === "upgrades" ? upgrades() : fanout());
console.log(JSON.stringify(stats));
process.exit(0);
