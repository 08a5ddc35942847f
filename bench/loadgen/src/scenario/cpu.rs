//! Scenario 4, server CPU per delivered message at a fixed load: repetitions of one step
//! of N clients at a fixed rate. Then, in the same room, the quiet room: repetitions at
//! a low rate (`--quiet-rate`), where what counts is latency (a coalescing target must
//! not make a quiet room slower). A quiet step carries few messages, so one stall of the
//! machine decides its p99: the quiet room has more repetitions (`--quiet-reps`), and
//! the median over them is what counts.

use super::steps::{repeat_steps, summarize_steps, Round};
use crate::context::Ctx;
use crate::progress::Phase;
use crate::target::Running;
use serde_json::{json, Value};

pub async fn run(ctx: &Ctx, t: &Running) -> Value {
    let c = &ctx.cfg;
    let mut room = None;
    let round = Round {
        phase: Phase::Cpu,
        reps: c.reps,
        done_s: ctx.progress.costs().connect(c.cpu_n),
        left_s: 0.0,
    };
    let (reps, error) = repeat_steps(ctx, t, &mut room, c.cpu_n, c.cpu_rate, round).await;
    let quiet_round = Round {
        phase: Phase::Cpu,
        reps: c.quiet_reps,
        done_s: 0.0,
        left_s: 0.0,
    };
    let (quiet, quiet_error) = match error {
        None => repeat_steps(ctx, t, &mut room, c.cpu_n, c.quiet_rate, quiet_round).await,
        Some(_) => (vec![], Some("not run: the fixed load failed".to_owned())),
    };
    if let Some(r) = room.take() {
        r.close().await;
    }
    let mut v = summarize(&reps, c.cpu_n, c.cpu_rate, error);
    v["quiet"] = summarize(&quiet, c.cpu_n, c.quiet_rate, quiet_error);
    v
}

fn summarize(
    reps: &[crate::fanout::StepResult],
    n: usize,
    rate: u64,
    error: Option<String>,
) -> Value {
    let mut v = summarize_steps(reps);
    v["n"] = json!(n);
    v["rate_per_s"] = json!(rate);
    v["server_cpu_us"] = json!(reps.iter().map(|r| r.server_cpu_us).collect::<Vec<_>>());
    v["repetitions"] = serde_json::to_value(reps).unwrap();
    v["error"] = json!(error);
    v
}
