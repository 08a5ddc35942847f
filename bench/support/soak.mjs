// The soak: many clients over many rooms for many minutes against `wrangler dev`, with a
// steady publish rate, connections that drop and resume with `since`, kicks, revocations,
// and the runtime killed and restarted on the same state halfway. Started by `bench/soak`
// (bench/README.md, "Soak"), which builds the Worker first.
//
// Pass: no client misses, repeats or reorders a message as it sees them through resume (a
// `gap` only where history was trimmed), every kicked or revoked socket is closed with
// 4003 and its reason, and the runtime's memory does not keep growing. Writes
// bench/results/soak-<time>.{json,md} and exits 1 on a failure.
//
//   node bench/support/soak.mjs [--clients 1000] [--rooms 20] [--minutes 10] [--rate 20]
import { spawn, execFileSync } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { cpSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import WebSocket from "ws";

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const CLIENTS = arg("clients", 1000);
const ROOMS = arg("rooms", 20);
const MINUTES = arg("minutes", 10);
const RATE = arg("rate", 20); // publishes a second, all rooms together
const PORT = arg("port", 8799);
const HISTORY_LIMIT = 100; // wrangler.toml's default, which the soak does not change
const KICK_EVERY_MS = 20_000;
const REVOKE_EVERY_MS = 45_000;
const CHURN_PER_S = 5;
const CLOSE_DEADLINE_MS = 15_000;

const root = new URL("../..", import.meta.url).pathname;
const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*/, "Z");
const state = join("/tmp", `roomgate-soak-${stamp}`);
const SECRET = randomBytes(32).toString("hex");
const ADMIN = randomBytes(32).toString("hex");
const base = `http://127.0.0.1:${PORT}`;
const log = (...a) => console.error(`[soak ${((Date.now() - t0) / 1000).toFixed(0)}s]`, ...a);
const t0 = Date.now();

// --- the runtime ---------------------------------------------------------------------

// The runtime serves a frozen copy of the build (wrangler.toml without its [build] step,
// build/, migrations/): `wrangler dev` reloads when the files it serves change, and an
// edit or a test build during the soak must not reload the Worker under it.
const app = join(state, "app");
function freezeApp() {
  mkdirSync(app, { recursive: true });
  cpSync(join(root, "build"), join(app, "build"), { recursive: true });
  cpSync(join(root, "migrations"), join(app, "migrations"), { recursive: true });
  const config = readFileSync(join(root, "wrangler.toml"), "utf8")
    .replace(/^\[build\]\n(?:(?!\[).*\n)*/m, "");
  writeFileSync(join(app, "wrangler.toml"), config);
}
freezeApp();

let dev = null;
function startDev() {
  const wrangler = join(root, "node_modules/.bin/wrangler");
  execFileSync(wrangler, ["d1", "migrations", "apply", "DB", "--local", "--persist-to", state], {
    cwd: app,
    env: { ...process.env, CI: "true" },
    stdio: ["ignore", "ignore", "inherit"],
  });
  dev = spawn(
    wrangler,
    ["dev", "--ip", "127.0.0.1", "--port", String(PORT), "--persist-to", state,
      "--var", `JWT_SECRET:${SECRET}`, "--var", `ADMIN_TOKEN:${ADMIN}`,
      "--show-interactive-dev-session=false"],
    { cwd: app, detached: true, stdio: ["ignore", "ignore", "inherit"] },
  );
}
async function ready() {
  for (let i = 0; i < 240; i++) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) return;
    } catch {}
    await sleep(500);
  }
  throw new Error("wrangler dev did not become ready");
}
function stopDev() {
  try {
    process.kill(-dev.pid, "SIGKILL"); // the whole group: wrangler and workerd
  } catch {}
}
function workerdRss() {
  try {
    const pids = execFileSync("pgrep", ["-x", "workerd"]).toString().trim().split("\n");
    return pids.reduce((sum, pid) => {
      const m = readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/);
      return sum + (m ? Number(m[1]) : 0);
    }, 0);
  } catch {
    return null;
  }
}

// --- tokens and admin calls ------------------------------------------------------------

const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
function token(sub, jti) {
  const now = Math.floor(Date.now() / 1000);
  const h = b64({ alg: "HS256", typ: "JWT" });
  const p = b64({ sub, name: sub, iss: "roomgate", aud: "roomgate", iat: now, nbf: now, exp: now + 3600, jti });
  return `${h}.${p}.${createHmac("sha256", SECRET).update(`${h}.${p}`).digest("base64url")}`;
}
async function admin(path, body) {
  const res = await fetch(`${base}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.text() };
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// --- clients ---------------------------------------------------------------------------

const stats = {
  delivered: 0, published: 0, publishFailed: 0, losses: [], reorders: 0, duplicates: 0,
  gaps: 0, unjustifiedGaps: [], reconnects: 0, kicks: 0, revocations: 0, interruptedByRestart: 0,
  expectedCloses: 0, missedCloses: [], wrongCloses: [], errors: {},
};

class Client {
  constructor(i) {
    this.i = i;
    this.sub = `soak-u${i % Math.ceil(CLIENTS / 2)}`;
    this.room = `soak-r${i % ROOMS}`;
    this.generation = 0;
    this.jti = `${this.sub}-${i}-0`;
    this.last = null; // highest seq seen (or covered by a gap)
    this.open = false;
    this.expect = null; // {reason, by}
  }
  connect() {
    const since = this.last === null ? "" : `?since=${this.last}`;
    const ws = new WebSocket(`${base.replace("http", "ws")}/ws/${this.room}${since}`,
      ["roomgate.v1", `bearer.${token(this.sub, this.jti)}`]);
    this.ws = ws;
    ws.on("message", (data) => this.onFrame(JSON.parse(String(data))));
    // Act on the close frame, as a client should: the runtime ends the TCP connection of
    // a close the room started on its own (a kick, a revocation) only later
    // (docs/protocol.md, "When a close arrives"). `ws` reports the frame to its receiver.
    ws.on("open", () => ws._receiver.on("conclude", () => setImmediate(() => ws.terminate())));
    ws.on("close", (code, reason) => this.onClose(ws, code, String(reason)));
    ws.on("error", () => {});
  }
  onFrame(f) {
    switch (f.type) {
      case "welcome":
        this.open = true;
        this.welcomeLast = f.last_seq;
        if (this.last === null) this.last = f.last_seq;
        break;
      case "gap":
        stats.gaps++;
        // The room keeps the last HISTORY_LIMIT messages: a gap ends just before them.
        if (f.from !== this.last + 1 || f.to !== this.welcomeLast - HISTORY_LIMIT) {
          stats.unjustifiedGaps.push({ client: this.i, since: this.last, gap: f, last_seq: this.welcomeLast });
        }
        this.last = f.to;
        break;
      case "message":
        stats.delivered++;
        if (f.seq <= this.last) {
          if (f.seq === this.last) stats.duplicates++;
          else stats.reorders++;
        } else if (f.seq !== this.last + 1) {
          stats.losses.push({ client: this.i, room: this.room, after: this.last, got: f.seq });
        }
        this.last = Math.max(this.last, f.seq);
        break;
      case "error":
        stats.errors[f.code] = (stats.errors[f.code] ?? 0) + 1;
        break;
    }
  }
  onClose(ws, code, reason) {
    if (ws !== this.ws) return;
    this.open = false;
    if (this.expect && code === 1006 && restarting) {
      // The runtime went down before the room could close it: nothing to judge.
      stats.interruptedByRestart++;
      this.expect = null;
    }
    if (this.expect) {
      if (code === 4003 && reason === this.expect.reason) {
        this.expect = null;
        if (reason === "revoked") this.jti = `${this.sub}-${this.i}-${++this.generation}`;
      } else if (code !== 1006) {
        stats.wrongCloses.push({ client: this.i, code, reason, expected: this.expect.reason });
      }
    }
    if (!running) return;
    stats.reconnects++;
    setTimeout(() => this.connect(), 200 + Math.random() * 1800);
  }
}

// --- the run ---------------------------------------------------------------------------

let running = true;
let restarting = false;
mkdirSync(join(root, "bench/results"), { recursive: true });
log(`state ${state}; ${CLIENTS} clients, ${ROOMS} rooms, ${MINUTES} min, ${RATE} msg/s`);
startDev();
await ready();
const clients = Array.from({ length: CLIENTS }, (_, i) => new Client(i));
for (const c of clients) {
  c.connect();
  await sleep(5);
}
const memory = [];
const end = t0 + MINUTES * 60_000;
let restarted = false;
let n = 0;
const timers = [
  setInterval(() => {
    const open = clients.filter((c) => c.open);
    if (!open.length) return;
    const c = open[Math.floor(Math.random() * open.length)];
    try {
      c.ws.send(JSON.stringify({ type: "publish", data: { n: n++ } }));
      stats.published++;
    } catch {
      stats.publishFailed++;
    }
  }, 1000 / RATE),
  setInterval(() => {
    for (let k = 0; k < CHURN_PER_S; k++) {
      const c = clients[Math.floor(Math.random() * CLIENTS)];
      if (c.open && !c.expect) c.ws.terminate();
    }
  }, 1000),
  setInterval(async () => {
    const c = clients.find((c) => c.open && !c.expect && Math.random() < 0.01) ?? clients.find((c) => c.open && !c.expect);
    if (!c) return;
    const mates = clients.filter((o) => o.sub === c.sub && o.room === c.room && o.open);
    for (const m of mates) m.expect = { reason: "kicked", by: Date.now() + CLOSE_DEADLINE_MS };
    stats.kicks++;
    stats.expectedCloses += mates.length;
    const r = await admin(`/admin/rooms/${c.room}/kick`, { user_id: c.sub });
    if (r.status !== 200) log("kick answered", r.status, r.body);
  }, KICK_EVERY_MS),
  setInterval(async () => {
    const c = clients.find((c) => c.open && !c.expect && Math.random() < 0.01) ?? clients.find((c) => c.open && !c.expect);
    if (!c) return;
    c.expect = { reason: "revoked", by: Date.now() + CLOSE_DEADLINE_MS };
    stats.revocations++;
    stats.expectedCloses++;
    const r = await admin("/admin/revoke", { jti: c.jti });
    if (r.status !== 200) log("revoke answered", r.status, r.body);
  }, REVOKE_EVERY_MS),
  setInterval(() => {
    memory.push({ t_s: Math.round((Date.now() - t0) / 1000), rss_kb: workerdRss(), open: clients.filter((c) => c.open).length });
    for (const c of clients) {
      if (c.expect && Date.now() > c.expect.by) {
        stats.missedCloses.push({ client: c.i, expected: c.expect.reason });
        c.expect = null;
      }
    }
    const last = memory.at(-1);
    log(`open ${last.open}, rss ${last.rss_kb} kB, delivered ${stats.delivered}, losses ${stats.losses.length}`);
  }, 5000),
];
while (Date.now() < end) {
  await sleep(1000);
  if (!restarted && Date.now() > t0 + (MINUTES * 60_000) / 2) {
    restarted = true;
    restarting = true;
    log("killing the runtime; restarting on the same state");
    stopDev();
    await sleep(1000);
    startDev();
    await ready();
    log("runtime back");
    // Sockets that were waiting for a close when the runtime died have reconnected.
    setTimeout(() => (restarting = false), CLOSE_DEADLINE_MS);
  }
}
running = false;
timers.forEach(clearInterval);
// Let the last frames and closes land.
await sleep(5000);
for (const c of clients) c.ws?.terminate();
stopDev();

// --- the verdict -----------------------------------------------------------------------

const rss = memory.map((m) => m.rss_kb).filter((v) => v);
const quarter = (k) => {
  const part = rss.slice(Math.floor((rss.length * k) / 4), Math.floor((rss.length * (k + 1)) / 4));
  return part.length ? Math.round(part.reduce((a, b) => a + b, 0) / part.length) : null;
};
// After the restart the runtime starts from nothing: compare the two halves' ends with
// their beginnings (each half's last quarter against its second quarter).
const growth = [quarter(3) / quarter(2), quarter(1) / quarter(0)].map((r) => Math.round(r * 100) / 100);
const pass = {
  no_loss: stats.losses.length === 0,
  no_reorder_or_duplicate: stats.reorders === 0 && stats.duplicates === 0,
  gaps_only_where_trimmed: stats.unjustifiedGaps.length === 0,
  every_kicked_or_revoked_socket_closed: stats.missedCloses.length === 0 && stats.wrongCloses.length === 0,
  memory_bounded: growth.every((g) => g < 1.5),
};
const result = {
  date: new Date().toISOString(),
  config: { clients: CLIENTS, rooms: ROOMS, minutes: MINUTES, publish_rate_per_s: RATE, churn_per_s: CHURN_PER_S, kick_every_s: KICK_EVERY_MS / 1000, revoke_every_s: REVOKE_EVERY_MS / 1000 },
  stats: { ...stats, losses: stats.losses.slice(0, 20), loss_count: stats.losses.length },
  memory,
  memory_growth_by_half: growth,
  pass,
  ok: Object.values(pass).every(Boolean),
};
const out = join(root, "bench/results", `soak-${stamp}`);
writeFileSync(`${out}.json`, JSON.stringify(result, null, 2));
const md = [
  `# Soak ${result.date}`,
  "",
  `${CLIENTS} clients over ${ROOMS} rooms for ${MINUTES} minutes against \`wrangler dev\`, ${RATE} publishes a second, ${CHURN_PER_S} dropped connections a second (resumed with \`since\`), a kick every ${KICK_EVERY_MS / 1000} s, a revocation every ${REVOKE_EVERY_MS / 1000} s, the runtime killed and restarted on its state halfway.`,
  "",
  "| figure | value |",
  "|---|---|",
  `| published / delivered | ${stats.published} / ${stats.delivered} |`,
  `| losses / reorders / duplicates | ${stats.losses.length} / ${stats.reorders} / ${stats.duplicates} |`,
  `| gaps (unjustified) | ${stats.gaps} (${stats.unjustifiedGaps.length}) |`,
  `| reconnects | ${stats.reconnects} |`,
  `| kicks / revocations / sockets expected to close / missed / wrong | ${stats.kicks} / ${stats.revocations} / ${stats.expectedCloses} / ${stats.missedCloses.length} / ${stats.wrongCloses.length} |`,
  `| workerd RSS min / max / last (kB) | ${Math.min(...rss)} / ${Math.max(...rss)} / ${rss.at(-1)} |`,
  `| memory growth, last vs second quarter of each half | ${growth.join(" / ")} |`,
  `| error frames | ${JSON.stringify(stats.errors)} |`,
  "",
  `Verdict: ${result.ok ? "pass" : "FAIL"} (${Object.entries(pass).map(([k, v]) => `${k}: ${v}`).join(", ")}).`,
  "",
  "Memory over time (every 5 s): " + memory.map((m) => `${m.t_s}s ${m.rss_kb} kB`).join(", "),
  "",
].join("\n");
writeFileSync(`${out}.md`, md);
console.log(md);
process.exit(result.ok ? 0 : 1);
