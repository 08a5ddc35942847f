//! Scenario 2, fan-out: for each room size N, the send-rate sweep (`sweep.rs`) to the
//! highest sustainable rate, then repetitions at it until a rate is confirmed.

use super::steps::{repeat_steps, run_step, summarize_steps, At, Round};
use crate::context::{say, Ctx};
use crate::fanout;
use crate::progress::{Costs, Phase};
use crate::sweep;
use crate::target::Running;
use serde_json::{json, Value};

pub async fn run(ctx: &Ctx, t: &Running) -> Value {
    let c = &ctx.cfg;
    let mut out = serde_json::Map::new();
    for &n in &c.fanout_n {
        let cap = (c.max_deliveries_per_s / n as u64).clamp(c.start_rate.max(1), 50_000);
        let mut sweep = sweep::Sweep::new(c.start_rate, c.bisections, cap);
        let mut room = None;
        let mut steps = vec![];
        let mut error = None;
        // A rate fails only when two steps at it fail in a row: on a shared machine a
        // one-off latency spike would otherwise end the doubling early (both steps are
        // kept in the JSON).
        let mut retried = false;
        let costs = ctx.progress.costs();
        let phase = Phase::Fanout(n);
        loop {
            // Nominal seconds of this N, for the progress line: the room, the steps run
            // (this one included), then what the sweep and the repetitions will take.
            let run = steps.len() + 1;
            let at = At {
                phase,
                label: format!("N={n} step {run}"),
                done_s: costs.connect(n) + run as f64 * costs.step(),
                left_s: Costs::sweep_steps_left(n, run, sweep.doubling(), sweep.bisections_left())
                    * costs.step()
                    + costs.fanout_reps(),
            };
            match run_step(ctx, t, &mut room, n, sweep.current(), &at).await {
                Ok(res) => {
                    let ok = res.sustainable;
                    steps.push(res);
                    if !ok && !retried {
                        retried = true;
                        say!(
                            "{}: N={n}: not sustainable once; running it again",
                            t.kind.name()
                        );
                        continue;
                    }
                    retried = false;
                    if sweep.next(ok).is_none() {
                        break;
                    }
                }
                Err(e) => {
                    say!("{}: fan-out N={n}: {e}", t.kind.name());
                    error = Some(e);
                    break;
                }
            }
        }
        // Confirm the sweep's best rate: most repetitions at it must be sustainable
        // again, or a lower rate is tried (the rounds that did not confirm are kept).
        let sweep_best = sweep.best();
        let mut best = sweep_best;
        let mut reps = vec![];
        let mut unconfirmed = vec![];
        let mut step_downs = 0;
        while let (Some(rate), None) = (best, &error) {
            let rounds_run = step_downs as f64 * costs.rep_round();
            let round = Round {
                phase,
                reps: ctx.cfg.reps,
                done_s: costs.connect(n) + steps.len() as f64 * costs.step() + rounds_run,
                left_s: (costs.fanout_reps() - rounds_run - costs.rep_round()).max(0.0),
            };
            (reps, error) = repeat_steps(ctx, t, &mut room, n, rate, round).await;
            let ok = reps.iter().filter(|r| r.sustainable).count();
            if error.is_some()
                || sweep::confirmed(ok, reps.len())
                || step_downs == sweep::MAX_STEP_DOWNS
            {
                break;
            }
            let Some(lower) = sweep::step_down(rate) else {
                break;
            };
            say!(
                "{}: N={n}: {rate}/s sustained in {ok} of {} repetitions; confirming {lower}/s",
                t.kind.name(),
                reps.len()
            );
            unconfirmed.push(json!({ "rate_per_s": rate, "repetitions": reps }));
            step_downs += 1;
            best = Some(lower);
        }
        let confirmed = sweep::confirmed(reps.iter().filter(|r| r.sustainable).count(), reps.len());
        if let Some(r) = room.take() {
            r.close().await;
        }
        let mut v = summarize_steps(&reps);
        v["n"] = json!(n);
        v["senders"] = json!(n.min(10));
        v["max_sustainable_rate_per_s"] = best.map_or(json!("none"), |b| json!(b));
        v["sweep_best_rate_per_s"] = sweep_best.map_or(json!("none"), |b| json!(b));
        v["confirmed"] = json!(confirmed);
        v["unconfirmed_rates"] = json!(unconfirmed);
        // The sweep stopped at its cap (max deliveries/s ÷ N, at most 50,000 msg/s): the
        // target's limit lies higher (or the generator's core is the limit).
        v["sweep_hit_cap"] = json!(sweep_best == Some(cap));
        // The generator's core was saturated at or above the best rate: the steps that
        // failed may have failed on the generator's receive path, so the maximum is a
        // lower bound for the target (the generator's limit, not the server's).
        let floor = best.unwrap_or(0);
        let limited = steps
            .iter()
            .chain(&reps)
            .any(|s| s.generator_saturated && s.offered_per_s >= floor);
        v["generator_limited"] = json!(limited);
        if limited {
            say!(
                "{}: N={n}: the generator's core was ≥ {:.0}% busy at or above the best rate: the figure is the generator's limit (a lower bound for the target)",
                t.kind.name(),
                fanout::GENERATOR_SATURATED * 100.0
            );
        }
        v["repetitions_sustainable"] = json!(format!(
            "{} of {}",
            reps.iter().filter(|r| r.sustainable).count(),
            reps.len()
        ));
        v["sweep"] = serde_json::to_value(&steps).unwrap();
        v["repetitions"] = serde_json::to_value(&reps).unwrap();
        v["error"] = json!(error);
        out.insert(n.to_string(), v);
    }
    Value::Object(out)
}
