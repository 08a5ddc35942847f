// CPU profile of the Workers served by workerd, over the V8 inspector (Chrome DevTools
// Protocol). Start the target with an inspector port, e.g.
//
//   node tests/support/runtime.mjs '{"stateDir": "...", "inspectorPort": 9229, "vars": {...}}'
//   node bench/support/profile.mjs --port 9229 --seconds 10 --out /tmp/fanout.cpuprofile \
//        [--target-filter roomgate] [--interval-us 100] [--top 40] [--top-total 25]
//
// workerd lists one inspector target per isolate (http://<host>:<port>/json); a Worker and
// its Durable Object classes share their service's isolate, so roomgate's Worker and its
// Room / Limiter / TicketBox objects are all in the one "roomgate" target. Miniflare's
// own services are listed too; --target-filter keeps the targets whose id/title/url contain
// the given substring (default: every target).
//
// For every target: Profiler.enable, Profiler.setSamplingInterval, Profiler.start, wait,
// Profiler.stop. Writes the profile to --out (one target) or to <out>.<target>.cpuprofile
// (several; load any of them in Chrome DevTools' Performance panel or speedscope), and
// prints, per target, the top functions by self time and by total (inclusive) time.
// Wasm functions carry their Rust names only when the name section was kept
// (ROOMGATE_KEEP_NAMES=1 ./scripts/build); otherwise they show as $func<index>.
import { writeFileSync } from "node:fs";
import { WebSocket } from "ws";

function parseArgs(argv) {
  const o = { port: undefined, seconds: 10, out: "profile.cpuprofile", filter: undefined,
    intervalUs: 100, top: 40, topTotal: 25, host: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i], v = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case "--port": o.port = Number(v()); break;
      case "--host": o.host = v(); break;
      case "--seconds": o.seconds = Number(v()); break;
      case "--out": o.out = v(); break;
      case "--target-filter": o.filter = v(); break;
      case "--interval-us": o.intervalUs = Number(v()); break;
      case "--top": o.top = Number(v()); break;
      case "--top-total": o.topTotal = Number(v()); break;
      case "-h": case "--help":
        console.log("usage: node bench/support/profile.mjs --port <inspectorPort> --seconds S " +
          "--out file.cpuprofile [--target-filter <substring>] [--interval-us 100] " +
          "[--top 40] [--top-total 25] [--host 127.0.0.1]");
        process.exit(0);
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  if (!Number.isInteger(o.port)) throw new Error("--port <inspectorPort> is required");
  if (!(o.seconds > 0)) throw new Error("--seconds must be > 0");
  return o;
}

// workerd binds the inspector to "localhost": try both loopback families.
async function listTargets(opts) {
  const hosts = opts.host ? [opts.host] : ["127.0.0.1", "[::1]", "localhost"];
  let lastErr;
  for (const host of hosts) {
    for (const path of ["/json", "/json/list"]) {
      try {
        const res = await fetch(`http://${host}:${opts.port}${path}`);
        if (!res.ok) { lastErr = new Error(`${path}: HTTP ${res.status}`); continue; }
        return { host, targets: await res.json() };
      } catch (err) { lastErr = err; }
    }
  }
  throw new Error(`no inspector on port ${opts.port}: ${lastErr?.message ?? lastErr}`);
}

class Cdp {
  constructor(url) {
    this.ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 1 << 30 });
    this.nextId = 1;
    this.pending = new Map();
    this.ws.on("message", (data) => {
      const msg = JSON.parse(data.toString());
      if (msg.id === undefined) return; // events (console messages, ...)
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.error) p.reject(new Error(`${p.method}: ${JSON.stringify(msg.error)}`));
      else p.resolve(msg.result);
    });
    const failAll = (err) => {
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    this.ws.on("close", () => failAll(new Error("inspector connection closed")));
    this.ws.on("error", failAll);
    this.open = new Promise((resolve, reject) => {
      this.ws.once("open", resolve);
      this.ws.once("error", reject);
    });
  }
  send(method, params = {}) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, method });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }
  close() { this.ws.close(); }
}

const META = new Set(["(root)", "(program)", "(idle)", "(garbage collector)"]);

function frameLabel(cf) {
  const name = cf.functionName || "(anonymous)";
  if (META.has(name) && !cf.url) return { name, where: "" };
  let where = cf.url || "";
  if (where.startsWith("wasm://")) where = `wasm+0x${(cf.columnNumber ?? 0).toString(16)}`;
  else if (where) where = `${where.replace(/^.*\//, "")}:${cf.lineNumber + 1}:${cf.columnNumber + 1}`;
  return { name, where };
}

// Self and total time per function (functionName + script + position), from the samples.
export function summarize(profile, nominalIntervalUs) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const keyOf = (n) => {
    const cf = n.callFrame;
    return `${cf.functionName}\u0000${cf.url}\u0000${cf.lineNumber}\u0000${cf.columnNumber}`;
  };
  // Time of sample i: the gap to the next sample (the last gets the nominal interval).
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  const durUs = (i) => (i + 1 < deltas.length ? deltas[i + 1] : nominalIntervalUs);
  const perNode = new Map(); // node id -> {count, us}
  for (let i = 0; i < samples.length; i++) {
    const e = perNode.get(samples[i]) ?? { count: 0, us: 0 };
    e.count++; e.us += Math.max(0, durUs(i));
    perNode.set(samples[i], e);
  }
  const fns = new Map(); // key -> {label, selfCount, selfUs, totalCount, totalUs}
  const fn = (n) => {
    const k = keyOf(n);
    let f = fns.get(k);
    if (!f) { f = { ...frameLabel(n.callFrame), selfCount: 0, selfUs: 0, totalCount: 0, totalUs: 0 }; fns.set(k, f); }
    return f;
  };
  let totalCount = 0, totalUs = 0, idleCount = 0, idleUs = 0;
  for (const [id, { count, us }] of perNode) {
    const node = byId.get(id);
    if (!node) continue;
    totalCount += count; totalUs += us;
    const self = fn(node);
    self.selfCount += count; self.selfUs += us;
    if (self.name === "(idle)") { idleCount += count; idleUs += us; }
    // Inclusive: every distinct function on the stack, once (recursion counted once).
    const seen = new Set();
    for (let cur = node; cur; cur = byId.get(parent.get(cur.id))) {
      const k = keyOf(cur);
      if (seen.has(k)) continue;
      seen.add(k);
      const f = fn(cur);
      f.totalCount += count; f.totalUs += us;
    }
  }
  // V8 may sample less often than asked (a busy workerd in particular), so
  // "count × interval" uses the interval actually achieved over the whole profile.
  const spanUs = (profile.endTime ?? 0) - (profile.startTime ?? 0);
  const effIntervalUs = totalCount && spanUs > 0 ? spanUs / totalCount : nominalIntervalUs;
  return { fns: [...fns.values()], totalCount, totalUs, idleCount, idleUs, effIntervalUs };
}

function printSummary(title, s, opts) {
  const ms = (us) => (us / 1000).toFixed(1).padStart(9);
  const pct = (c, of) => (of ? ((100 * c) / of).toFixed(1) : "0.0").padStart(6);
  const busy = s.totalCount - s.idleCount;
  console.log(`\n=== ${title}`);
  console.log(`${s.totalCount} samples over ${(s.totalUs / 1e6).toFixed(2)} s ` +
    `(interval asked ${opts.intervalUs} µs, achieved ${s.effIntervalUs.toFixed(0)} µs); ` +
    `idle ${pct(s.idleCount, s.totalCount).trim()}%, ` +
    `busy ${(busy * s.effIntervalUs / 1000).toFixed(1)} ms by count × interval ` +
    `(${((s.totalUs - s.idleUs) / 1000).toFixed(1)} ms by timestamps)`);
  const line = (f, count, us) =>
    `${String(count).padStart(8)} ${ms(count * s.effIntervalUs)} ${ms(us)} ${pct(count, s.totalCount)} ` +
    `${pct(f.name === "(idle)" ? 0 : count, busy)}  ${f.name}${f.where ? `  [${f.where}]` : ""}`;
  const head = `${"samples".padStart(8)} ${"ms(n×iv)".padStart(9)} ${"ms(ts)".padStart(9)} ${"%all".padStart(6)} ${"%busy".padStart(6)}  function  [url:line:col | wasm+offset]`;
  console.log(`\n-- top ${opts.top} by self time`);
  console.log(head);
  for (const f of [...s.fns].sort((a, b) => b.selfCount - a.selfCount).slice(0, opts.top).filter((f) => f.selfCount > 0))
    console.log(line(f, f.selfCount, f.selfUs));
  console.log(`\n-- top ${opts.topTotal} by total (inclusive) time, excluding (root)/(idle)/(program)/(gc)`);
  console.log(head);
  for (const f of [...s.fns].filter((f) => !META.has(f.name)).sort((a, b) => b.totalCount - a.totalCount).slice(0, opts.topTotal))
    console.log(line(f, f.totalCount, f.totalUs));
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const { host, targets } = await listTargets(opts);
  console.log(`inspector ${host}:${opts.port}: ${targets.length} target(s)`);
  for (const t of targets) console.log(`  - id=${t.id} title=${JSON.stringify(t.title)} url=${t.url ?? ""} type=${t.type ?? ""}`);
  const chosen = targets.filter((t) => t.webSocketDebuggerUrl &&
    (!opts.filter || [t.id, t.title, t.url].some((x) => String(x ?? "").includes(opts.filter))));
  if (chosen.length === 0) throw new Error(`no target matches ${JSON.stringify(opts.filter ?? "")}`);

  const sessions = [];
  for (const t of chosen) {
    // The listed URL may say "localhost"; connect where /json answered.
    const u = new URL(t.webSocketDebuggerUrl);
    u.host = `${host}:${opts.port}`;
    const cdp = new Cdp(u.toString());
    await cdp.open;
    await cdp.send("Profiler.enable");
    await cdp.send("Profiler.setSamplingInterval", { interval: opts.intervalUs });
    sessions.push({ t, cdp });
  }
  // Start all as close together as possible.
  await Promise.all(sessions.map(({ cdp }) => cdp.send("Profiler.start")));
  console.log(`profiling ${sessions.map((s) => s.t.title || s.t.id).join(", ")} for ${opts.seconds} s ...`);
  await new Promise((r) => setTimeout(r, opts.seconds * 1000));
  const results = await Promise.all(sessions.map(async ({ t, cdp }) => {
    const { profile } = await cdp.send("Profiler.stop");
    await cdp.send("Profiler.disable").catch(() => {});
    cdp.close();
    return { t, profile };
  }));

  for (const { t, profile } of results) {
    let out = opts.out;
    if (results.length > 1) {
      const tag = String(t.title || t.id).replace(/[^A-Za-z0-9_.-]+/g, "_");
      out = opts.out.replace(/(\.cpuprofile)?$/, `.${tag}.cpuprofile`);
    }
    writeFileSync(out, JSON.stringify(profile));
    const s = summarize(profile, opts.intervalUs);
    printSummary(`${t.title || t.id} -> ${out}`, s, opts);
  }
}

main().catch((err) => {
  console.error(`profile: ${err.message ?? err}`);
  process.exit(1);
});
