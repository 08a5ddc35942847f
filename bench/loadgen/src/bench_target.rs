//! Runs the scenarios asked for against one target: starts it, warms it up, counts its
//! descriptors at rest, runs each scenario it measures, stops it; size and cold start
//! last, without a running target.

use crate::context::{say, Ctx};
use crate::quiet;
use crate::scenario;
use crate::target::{self, Kind};
use serde_json::{json, Value};

pub async fn bench_target(ctx: &Ctx, kind: Kind) -> Value {
    let c = &ctx.cfg;
    let name = kind.name();
    let mut out = json!({});
    // The scenarios asked for that this target measures.
    let runs = |s: &str| c.has(s) && kind.measures(s);
    let needs_server = ["upgrades", "fanout", "cpu", "login"]
        .iter()
        .any(|s| runs(s));
    if needs_server {
        say!("{name}: starting");
        let log = ctx.logs.join(format!("{name}.log"));
        match target::start(kind, &ctx.root, &ctx.secrets, &log) {
            Err(e) => {
                say!("{name}: {e}");
                out["error"] = json!(e);
                ctx.progress.skip_served(kind);
            }
            Ok(mut t) => {
                say!(
                    "{name}: serving at {} (server pid {}, {})",
                    t.url,
                    t.server_pid,
                    t.pid_source
                );
                out["server"] =
                    json!({ "url": t.url, "server_pid": t.server_pid, "pid_source": t.pid_source });
                out["warm_up"] = scenario::warm_up::run(ctx, &t).await;
                t.rest_fds.set(quiet::measure_rest(&t).await);
                out["server"]["rest_fds"] = json!(t.rest_fds.get());
                if runs("upgrades") {
                    out["upgrades"] = scenario::upgrades::run(ctx, &t).await;
                }
                if runs("fanout") {
                    out["fanout"] = scenario::fanout::run(ctx, &t).await;
                }
                if runs("cpu") {
                    out["cpu"] = scenario::cpu::run(ctx, &t).await;
                }
                if runs("login") {
                    out["login"] = scenario::login::run(ctx, &t).await;
                }
                out["quiet_waits"] = json!(*t.quiet_log.borrow());
                out["server"]["alive_at_end"] = json!(t.alive());
                t.stop();
                say!("{name}: stopped");
            }
        }
    }
    if runs("size") {
        out["size"] = scenario::size::run(ctx, kind).await;
    }
    out
}
