//! Scenario 4, server CPU per delivered message at a fixed load: repetitions of one step
//! of N clients at a fixed rate.

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
        done_s: ctx.progress.costs().connect(c.cpu_n),
        left_s: 0.0,
    };
    let (reps, error) = repeat_steps(ctx, t, &mut room, c.cpu_n, c.cpu_rate, round).await;
    if let Some(r) = room.take() {
        r.close().await;
    }
    let mut v = summarize_steps(&reps);
    v["n"] = json!(c.cpu_n);
    v["rate_per_s"] = json!(c.cpu_rate);
    v["server_cpu_us"] = json!(reps.iter().map(|r| r.server_cpu_us).collect::<Vec<_>>());
    v["repetitions"] = serde_json::to_value(&reps).unwrap();
    v["error"] = json!(error);
    v
}
