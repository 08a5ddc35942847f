//! Fan-out steps on a room, shared by the fan-out sweep and the fixed-load CPU scenario:
//! joining a room, running a step on it (starting from a quiet server, reconnecting
//! when a step left the room unusable), repeating a step, and summarising repetitions.

use crate::context::{say, Ctx};
use crate::fanout;
use crate::progress::Phase;
use crate::quiet;
use crate::stats::{self, spread};
use crate::target::Running;
use crate::token;
use serde_json::{json, Value};

/// A fresh room name, `<prefix>-<8 random characters>`.
pub fn room_name(prefix: &str) -> String {
    format!("{prefix}-{}", token::random_alnum(8))
}

/// Summary of repetitions of fan-out steps.
pub fn summarize_steps(steps: &[fanout::StepResult]) -> Value {
    let lat = |f: fn(&stats::Latency) -> f64| {
        spread(
            steps
                .iter()
                .filter_map(|s| s.latency.as_ref().map(f))
                .collect(),
        )
    };
    json!({
        "delivered_per_s": spread(steps.iter().map(|s| s.delivered_per_s).collect()),
        "p50_ms": lat(|l| l.p50_ms),
        "p99_ms": lat(|l| l.p99_ms),
        "p999_ms": lat(|l| l.p999_ms),
        "loss": steps.iter().map(|s| s.loss).sum::<u64>(),
        "reorders": steps.iter().map(|s| s.reorders).sum::<u64>(),
        "cpu_us_per_delivery": spread(steps.iter().filter_map(|s| s.cpu_us_per_delivery).collect()),
        "all_sustainable": steps.iter().all(|s| s.sustainable),
        "generator_cpu_share": spread(steps.iter().filter_map(|s| s.generator_cpu_share).collect()),
    })
}

/// Where a step stands in the run, for its progress line: its phase, its label
/// (`N=100 step 7`), and the phase's nominal seconds done once it has run and left after
/// it (`progress.rs`).
pub struct At {
    pub phase: Phase,
    pub label: String,
    pub done_s: f64,
    pub left_s: f64,
}

fn log_step(ctx: &Ctx, t: &Running, at: &At, s: &fanout::StepResult) {
    let line = format!(
        "{} {} {} rate {}/s: sent {:.0}/s, delivered {:.0}/s, p99 {} ms, loss {}, reorders {}, cpu {} µs/msg, generator core {}: {}",
        at.phase.scenario(),
        t.kind.name(),
        at.label,
        s.offered_per_s,
        s.achieved_send_per_s,
        s.delivered_per_s,
        s.latency.as_ref().map_or("-".into(), |l| format!("{:.2}", l.p99_ms)),
        s.loss,
        s.reorders,
        s.cpu_us_per_delivery.map_or("-".into(), |c| format!("{c:.2}")),
        s.generator_cpu_share.map_or("-".into(), |c| format!("{:.0}%", c * 100.0)),
        s.verdict
    );
    ctx.progress
        .step(t.kind, at.phase, at.done_s, at.left_s, &line);
}

async fn connect_room(ctx: &Ctx, t: &Running, n: usize) -> Result<fanout::Room, String> {
    let room = fanout::Room::connect(
        &t.addr,
        &room_name(&format!("fan{n}")),
        n,
        n.min(10),
        t.kind.wire(),
        &ctx.tokens,
    )
    .await?;
    say!(
        "{}: {n} clients joined {} in {:.2} s",
        t.kind.name(),
        room.name,
        room.connect_s
    );
    Ok(room)
}

/// Runs `rate` on `room`, replacing the room by a fresh one when the step left it unusable.
pub async fn run_step(
    ctx: &Ctx,
    t: &Running,
    room: &mut Option<fanout::Room>,
    n: usize,
    rate: u64,
    at: &At,
) -> Result<fanout::StepResult, String> {
    if room.is_none() {
        quiet::wait(t, &format!("connecting a room of {n}")).await;
        *room = Some(connect_room(ctx, t, n).await?);
    }
    // The step before may have left a backlog the server is still delivering (or the
    // room's connect its joins).
    quiet::wait_idle(t, &format!("a step of N={n} at {rate}/s")).await;
    let r = room.as_mut().unwrap();
    let cpu = || t.cpu_us();
    let res = r.step(rate, ctx.step_config(), &cpu).await;
    log_step(ctx, t, at, &res);
    if r.needs_reconnect(&res) {
        say!(
            "{}: reconnecting the room before the next step",
            t.kind.name()
        );
        room.take().unwrap().close().await;
    }
    Ok(res)
}

/// Where a round of repetitions stands in its phase, for the progress lines: the
/// phase's nominal seconds done before the round and left after it.
pub struct Round {
    pub phase: Phase,
    /// How many steps.
    pub reps: usize,
    pub done_s: f64,
    pub left_s: f64,
}

/// `round.reps` steps of N clients at `rate`; stops at the first error (returned too).
pub async fn repeat_steps(
    ctx: &Ctx,
    t: &Running,
    room: &mut Option<fanout::Room>,
    n: usize,
    rate: u64,
    round: Round,
) -> (Vec<fanout::StepResult>, Option<String>) {
    let mut reps = vec![];
    let step = ctx.progress.costs().step();
    let of = round.reps;
    for i in 0..of {
        let at = At {
            phase: round.phase,
            label: format!("N={n} rep {}/{of}", i + 1),
            done_s: round.done_s + (i + 1) as f64 * step,
            left_s: round.left_s + (of - i - 1) as f64 * step,
        };
        match run_step(ctx, t, room, n, rate, &at).await {
            Ok(r) => reps.push(r),
            Err(e) => return (reps, Some(e)),
        }
    }
    (reps, None)
}
