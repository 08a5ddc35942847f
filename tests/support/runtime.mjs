// Serves the built Worker (build/) on the real workerd runtime through Miniflare, for the
// end-to-end tests in tests/*.rs. Bindings come from wrangler.toml (the same Durable
// Object, D1 and [vars] a deploy gets); state persists under the directory given.
//
//   node tests/support/runtime.mjs '{"stateDir": "...", "vars": {"JWT_SECRET": "..."}}'
//
// The D1 migrations are applied unless "migrate" is false (a restart on existing state).
//
// Prints one JSON line {"url": "http://127.0.0.1:<port>"} once ready. Stops — disposing
// Miniflare, which ends workerd — when stdin closes (the test process exited, however it
// exited) or on SIGTERM/SIGINT.
import { readFileSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
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
const configPath = join(root, "wrangler.toml");

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
  scriptPath: resolve(root, config.main),
  modulesRoot: join(root, "build"),
  modulesRules: [
    { type: "ESModule", include: ["**/*.js", "**/*.mjs"] },
    { type: "CompiledWasm", include: ["**/*.wasm"] },
  ],
  // Only wrangler.toml's [vars] plus the test's values: a developer's .dev.vars must not
  // change what the tests see.
  bindings: { ...config.vars, ...(opts.vars ?? {}) },
  host: "127.0.0.1",
  port: 0,
  d1Persist: join(state, "d1"),
  durableObjectsPersist: join(state, "do"),
  kvPersist: false,
  cachePersist: false,
});

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
  // Apply migrations/ in order, as `wrangler d1 migrations apply` would.
  const binding = config.d1_databases[0].binding;
  const db = await mf.getD1Database(binding);
  const dir = resolve(root, config.d1_databases[0].migrations_dir ?? "migrations");
  const files = opts.migrate === false ? [] : readdirSync(dir).filter((f) => f.endsWith(".sql"));
  for (const file of files.sort()) {
    const statements = unstable_splitSqlQuery(readFileSync(join(dir, file), "utf8"));
    await db.batch(statements.map((s) => db.prepare(s)));
  }
  process.stdout.write(JSON.stringify({ url: url.origin }) + "\n");
} catch (err) {
  console.error("runtime failed to start:", err);
  await stop(1, "start failed");
}
