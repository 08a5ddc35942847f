// Serves a Worker on the real workerd runtime through Miniflare. By default that is the
// built roomgate Worker (build/), for the end-to-end tests in tests/*.rs; with "config" it
// is any Worker described by a wrangler.toml (the benchmark targets in bench/targets/).
// Bindings come from the wrangler.toml (the same Durable Object, D1 and [vars] a deploy
// gets); state persists under the directory given.
//
//   node tests/support/runtime.mjs '{"stateDir": "...", "vars": {"JWT_SECRET": "..."}}'
//   node tests/support/runtime.mjs '{"config": "bench/targets/js-bare/wrangler.toml", "stateDir": "..."}'
//
// "inspectorPort" (optional, number): serve workerd's inspector on that port.
// "config" (optional): path to a wrangler.toml, relative to the current directory;
// default: the repository's wrangler.toml. The script is the config's `main` (relative
// to the config's directory) and modules resolve from the directory that holds it.
// The D1 migrations (the first [[d1_databases]]'s migrations_dir, relative to the
// config's directory) are applied unless "migrate" is false (a restart on existing
// state) or the config has no D1 database.
//
// Prints one JSON line {"url": "http://127.0.0.1:<port>", "workerd_pid": <pid or null>}
// once ready (workerd_pid lets a benchmark sample the runtime's CPU and memory). Stops —
// disposing Miniflare, which ends workerd — when stdin closes (the test process exited,
// however it exited) or on SIGTERM/SIGINT.
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { Miniflare } from "miniflare";
import {
  unstable_getMiniflareWorkerOptions,
  unstable_readConfig,
  unstable_splitSqlQuery,
} from "wrangler";

// stdout carries exactly one line (the URL). wrangler's helpers print notices with
// console.log/info (e.g. "Using secrets defined in .dev.vars"): send those to stderr.
console.log = console.info = console.warn = console.error;

const opts = JSON.parse(process.argv[2] ?? "{}");
const root = new URL("../..", import.meta.url).pathname;
const configPath = opts.config ? resolve(opts.config) : join(root, "wrangler.toml");
const configDir = dirname(configPath);

const config = unstable_readConfig({ config: configPath });
const { workerOptions } = unstable_getMiniflareWorkerOptions(configPath);
const state = opts.stateDir;

// The test process stops reading stdout after the URL line; workerd's own output goes to
// stderr (the log file).
process.stdout.on("error", () => {});
const mf = new Miniflare({
  handleRuntimeStdio(stdout, stderr) {
    stdout.pipe(process.stderr);
    stderr.pipe(process.stderr);
  },
  ...workerOptions,
  name: config.name,
  modules: true,
  // For roomgate: build/index.js, modules under build/ (the glue and the .wasm).
  scriptPath: resolve(configDir, config.main),
  modulesRoot: dirname(resolve(configDir, config.main)),
  modulesRules: [
    { type: "ESModule", include: ["**/*.js", "**/*.mjs"] },
    { type: "CompiledWasm", include: ["**/*.wasm"] },
  ],
  // Only the wrangler.toml's [vars] plus the caller's values: a developer's .dev.vars
  // must not change what the tests see.
  bindings: { ...config.vars, ...(opts.vars ?? {}) },
  host: "127.0.0.1",
  port: 0,
  d1Persist: join(state, "d1"),
  durableObjectsPersist: join(state, "do"),
  kvPersist: false,
  cachePersist: false,
  // "inspectorPort" (optional): workerd's V8 inspector (Chrome DevTools Protocol) on that
  // port; http://localhost:<port>/json lists the isolates (bench/support/profile.mjs).
  ...(opts.inspectorPort !== undefined ? { inspectorPort: opts.inspectorPort } : {}),
});

// The workerd process Miniflare spawned: a direct child of this node process (Miniflare
// starts it with child_process.spawn, from whichever thread), named "workerd". Linux only;
// null when it cannot be found.
function workerdPid() {
  try {
    for (const task of readdirSync(`/proc/${process.pid}/task`)) {
      let children;
      try {
        children = readFileSync(`/proc/${process.pid}/task/${task}/children`, "utf8");
      } catch {
        continue; // the thread ended meanwhile
      }
      for (const pid of children.split(/\s+/).filter(Boolean)) {
        try {
          if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "workerd") return Number(pid);
        } catch {}
      }
    }
  } catch {}
  return null;
}

let stopping = false;
// Safety net: however node exits, take workerd down with it. The test harness starts
// this script as the leader of its own process group, and workerd inherits the group.
process.on("exit", () => {
  try {
    if (process.env.ROOMGATE_RUNTIME_PGID_LEADER === "1") process.kill(-process.pid, "SIGKILL");
  } catch {}
});
async function stop(code, why) {
  if (stopping) return;
  stopping = true;
  console.error(`runtime: stopping (${why})`);
  // Miniflare does not hold the event loop open while workerd shuts down; without this
  // timer node exits mid-dispose and leaves workerd orphaned.
  setInterval(() => {}, 1000);
  try {
    await mf.dispose();
    console.error("runtime: stopped");
  } catch (err) {
    console.error("runtime: dispose failed:", err);
  } finally {
    process.exit(code);
  }
}
process.stdin.on("end", () => stop(0, "stdin closed"));
process.stdin.on("error", () => stop(0, "stdin error"));
process.stdin.resume();
process.on("SIGTERM", () => stop(0, "SIGTERM"));
process.on("SIGINT", () => stop(0, "SIGINT"));

try {
  const url = await mf.ready;
  // Apply the migrations in order, as `wrangler d1 migrations apply` would.
  const d1 = config.d1_databases?.[0];
  if (d1 && opts.migrate !== false) {
    const db = await mf.getD1Database(d1.binding);
    const dir = resolve(configDir, d1.migrations_dir ?? "migrations");
    const files = readdirSync(dir).filter((f) => f.endsWith(".sql"));
    for (const file of files.sort()) {
      const statements = unstable_splitSqlQuery(readFileSync(join(dir, file), "utf8"));
      // Miniflare's synchronous proxy (`prepare`) now and then fails an internal
      // assertion under load. A batch is one transaction, so a failed one applied
      // nothing and is tried again; a real SQL error fails every attempt.
      for (let attempt = 1; ; attempt++) {
        try {
          await db.batch(statements.map((s) => db.prepare(s)));
          break;
        } catch (err) {
          if (attempt >= 3) throw err;
          console.error(`runtime: migration ${file} failed (${err.code ?? err.message}); retrying`);
        }
      }
    }
  }
  process.stdout.write(JSON.stringify({ url: url.origin, workerd_pid: workerdPid() }) + "\n");
} catch (err) {
  console.error("runtime failed to start:", err);
  await stop(1, "start failed");
}
