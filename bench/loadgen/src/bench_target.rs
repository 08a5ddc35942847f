//! Runs the scenarios asked for against one target. Each scenario that needs a server
//! gets a runtime of its own: started on a fresh state directory, warmed up, its
//! descriptors at rest counted, the scenario run, the runtime stopped. So no figure
//! depends on the scenarios that ran before it (sockets, rooms and heap left behind by
//! them). Size and cold start last, without a running target.

use crate::context::{say, Ctx};
use crate::quiet;
use crate::scenario;
use crate::target::{self, Kind};
use serde_json::{json, Value};

/// The scenarios that run against a started target, in the order they run.
pub const SERVED: [&str; 4] = ["upgrades", "fanout", "cpu", "login"];

pub async fn bench_target(ctx: &Ctx, kind: Kind) -> Value {
    let c = &ctx.cfg;
    let name = kind.name();
    let mut out = json!({});
    // The scenarios asked for that this target measures.
    let runs = |s: &str| c.has(s) && kind.measures(s);
    for scenario_name in SERVED.into_iter().filter(|s| runs(s)) {
        say!("{name}: starting for {scenario_name}");
        let log = ctx.logs.join(format!("{name}-{scenario_name}.log"));
        let mut t = match target::start(kind, &ctx.root, &ctx.secrets, &log) {
            Ok(t) => t,
            Err(e) => {
                say!("{name}: {e}");
                out["error"] = json!(e);
                ctx.progress.skip_served(kind);
                break;
            }
        };
        say!(
            "{name}: serving at {} (server pid {}, {})",
            t.url,
            t.server_pid,
            t.pid_source
        );
        let mut runtime =
            json!({ "url": t.url, "server_pid": t.server_pid, "pid_source": t.pid_source });
        runtime["warm_up"] = scenario::warm_up::run(ctx, &t).await;
        t.rest_fds.set(quiet::measure_rest(&t).await);
        runtime["rest_fds"] = json!(t.rest_fds.get());
        out[scenario_name] = match scenario_name {
            "upgrades" => scenario::upgrades::run(ctx, &t).await,
            "fanout" => scenario::fanout::run(ctx, &t).await,
            "cpu" => scenario::cpu::run(ctx, &t).await,
            _ => scenario::login::run(ctx, &t).await,
        };
        runtime["quiet_waits"] = json!(*t.quiet_log.borrow());
        runtime["alive_at_end"] = json!(t.alive());
        out["runtimes"][scenario_name] = runtime;
        t.stop();
        say!("{name}: stopped");
    }
    if runs("size") {
        out["size"] = scenario::size::run(ctx, kind).await;
    }
    out
}
