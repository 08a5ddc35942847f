//! Scenario 1, upgrades: (a) open loop at a fixed rate (connect latency, server CPU per
//! upgrade), (b) closed loop (throughput, with the release of the sockets after it
//! counted), (c) closed loop with wrongly signed tokens (the 401 path).

use crate::context::Ctx;
use crate::progress::Phase;
use crate::quiet;
use crate::stats::{self, spread};
use crate::target::Running;
use crate::upgrades;
use serde_json::{json, Value};
use std::time::Duration;

pub async fn run(ctx: &Ctx, t: &Running) -> Value {
    let c = &ctx.cfg;
    let name = t.kind.name();
    let good = ctx.token_fn(t.kind, false);
    let protocol = t.kind.wire().subprotocol();
    let auth = t.kind.has_auth();
    let costs = ctx.progress.costs();
    // Nominal seconds of the phase done after `rep` repetitions and `parts` of the next.
    let done = |rep: usize, parts: f64| rep as f64 * costs.upgrades_rep(auth) + parts;
    let total = c.reps as f64 * costs.upgrades_rep(auth);
    let line = |done_s: f64, text: String| {
        ctx.progress
            .step(t.kind, Phase::Upgrades, done_s, total - done_s, &text)
    };
    let (mut open, mut closed, mut reject) = (vec![], vec![], vec![]);
    for rep in 0..c.reps {
        quiet::wait(t, &format!("upgrades (a) rep {rep}")).await;
        let cpu0 = t.cpu_us();
        let mut o =
            upgrades::open_loop(&t.addr, c.upgrade_k, c.upgrade_rate, &*good, protocol).await;
        // The sockets linger, then close: their closes, and the runtime's release of
        // them (which waits for an idle moment: quiet.rs), are part of what an upgrade
        // costs.
        tokio::time::sleep(upgrades::LINGER + Duration::from_millis(500)).await;
        quiet::wait(t, &format!("the end of upgrades (a) rep {rep}")).await;
        o.server_cpu_us_per_upgrade = match (cpu0, t.cpu_us()) {
            (Some(a), Some(b)) if o.ok > 0 => Some(b.saturating_sub(a) as f64 / o.ok as f64),
            _ => None,
        };
        line(
            done(rep, costs.upgrade_open()),
            format!(
                "upgrades {name} rep {}/{} (a): {}/{} ok, {:.0}/s, p99 {:?} ms",
                rep + 1,
                c.reps,
                o.ok,
                o.scheduled,
                o.achieved_per_s,
                o.latency.as_ref().map(|l| l.p99_ms)
            ),
        );
        open.push(o);
        // Each phase ends with a wait for a quiet server, so the next one starts on one.
        let dur = Duration::from_secs_f64(c.closed_secs);
        let cpu0 = t.cpu_us();
        let mut b = upgrades::closed_loop(
            &t.addr,
            c.closed_in_flight,
            dur,
            false,
            good.clone(),
            protocol,
        )
        .await;
        // Some runtimes release a closed loop's sockets only once it stops (quiet.rs):
        // that work belongs to these upgrades.
        let released = quiet::wait(t, &format!("the end of upgrades (b) rep {rep}")).await;
        let cpu = cpu0
            .zip(t.cpu_us())
            .map(|(start, end)| end.saturating_sub(start));
        b.count_release(Duration::from_secs_f64(released.waited_s), quiet::TICK, cpu);
        line(
            done(rep, costs.upgrade_open() + costs.closed()),
            format!(
                "upgrades {name} rep {}/{} (b): {:.0}/s, {:.0}/s with the {:.2} s release after it, {} failed",
                rep + 1,
                c.reps,
                b.ok_per_s,
                b.ok_per_s_with_release.unwrap_or(0.0),
                b.release_s.unwrap_or(0.0),
                b.failed
            ),
        );
        closed.push(b);
        if auth {
            let bad = ctx.token_fn(t.kind, true);
            let r =
                upgrades::closed_loop(&t.addr, c.closed_in_flight, dur, true, bad, protocol).await;
            line(
                done(rep + 1, 0.0),
                format!(
                    "upgrades {name} rep {}/{} (c): {:.0} 401/s, {} wrong",
                    rep + 1,
                    c.reps,
                    r.ok_per_s,
                    r.failed
                ),
            );
            reject.push(r);
        }
    }
    let lat = |v: &[upgrades::OpenLoop], f: fn(&stats::Latency) -> f64| {
        spread(v.iter().filter_map(|o| o.latency.as_ref().map(f)).collect())
    };
    json!({
        "open_loop": {
            "offered_per_s": c.upgrade_rate,
            "k": c.upgrade_k,
            "achieved_per_s": spread(open.iter().map(|o| o.achieved_per_s).collect()),
            "p50_ms": lat(&open, |l| l.p50_ms),
            "p99_ms": lat(&open, |l| l.p99_ms),
            "server_cpu_us_per_upgrade": spread(open.iter().filter_map(|o| o.server_cpu_us_per_upgrade).collect()),
            "failures": open.iter().map(|o| o.failed).sum::<u64>(),
            "runs": open,
        },
        "closed_loop": {
            "in_flight": c.closed_in_flight,
            "ok_per_s": spread(closed.iter().map(|o| o.ok_per_s).collect()),
            "ok_per_s_with_release": spread(closed.iter().filter_map(|o| o.ok_per_s_with_release).collect()),
            "release_s": spread(closed.iter().filter_map(|o| o.release_s).collect()),
            "server_cpu_us_per_upgrade": spread(closed.iter().filter_map(|o| o.server_cpu_us_per_upgrade).collect()),
            "failures": closed.iter().map(|o| o.failed).sum::<u64>(),
            "runs": closed,
        },
        "rejection": if auth { json!({
            "in_flight": c.closed_in_flight,
            "rejected_per_s": spread(reject.iter().map(|o| o.ok_per_s).collect()),
            "not_401": reject.iter().map(|o| o.failed).sum::<u64>(),
            "runs": reject,
        }) } else { json!({ "rejected_per_s": "n/a", "not_401": "n/a", "why": format!("{name} has no auth") }) },
    })
}
