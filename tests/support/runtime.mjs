// Serves the built Worker (build/) on the real workerd runtime through Miniflare, for the
// end-to-end tests in tests/*.rs. Bindings come from wrangler.toml (the same Durable
// Object, D1 and [vars] a deploy gets); state is fresh, under the directory given.
//
//   node tests/support/runtime.mjs '{"stateDir": "...", "vars": {"JWT_SECRET": "..."}}'
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

const opts = JSON.parse(process.argv[2] ?? "{}");
const root = new URL("../..", import.meta.url).pathname;
const configPath = join(root, "wrangler.toml");

const config = unstable_readConfig({ config: configPath });
const { workerOptions } = unstable_getMiniflareWorkerOptions(configPath);
const state = opts.stateDir;

const mf = new Miniflare({
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
async function stop(code) {
  if (stopping) return;
  stopping = true;
  try {
    await mf.dispose();
  } finally {
    process.exit(code);
  }
}
process.stdin.on("end", () => stop(0));
process.stdin.on("error", () => stop(0));
process.stdin.resume();
process.on("SIGTERM", () => stop(0));
process.on("SIGINT", () => stop(0));

try {
  const url = await mf.ready;
  // Apply migrations/ in order, as `wrangler d1 migrations apply` would.
  const binding = config.d1_databases[0].binding;
  const db = await mf.getD1Database(binding);
  const dir = resolve(root, config.d1_databases[0].migrations_dir ?? "migrations");
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".sql")).sort()) {
    const statements = unstable_splitSqlQuery(readFileSync(join(dir, file), "utf8"));
    await db.batch(statements.map((s) => db.prepare(s)));
  }
  process.stdout.write(JSON.stringify({ url: url.origin }) + "\n");
} catch (err) {
  console.error("runtime failed to start:", err);
  await stop(1);
}
