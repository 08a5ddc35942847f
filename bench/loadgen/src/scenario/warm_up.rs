//! The warm-up before any measurement: upgrades and one fan-out step, so that no measured
//! phase carries a target's first traffic; the server's descriptors at rest are counted
//! after it (`quiet::measure_rest`).

use super::steps::room_name;
use crate::context::{say, Ctx};
use crate::fanout;
use crate::progress::Phase;
use crate::target::Running;
use crate::upgrades;
use serde_json::{json, Value};
use std::time::Duration;

pub async fn run(ctx: &Ctx, t: &Running) -> Value {
    let tok = ctx.token_fn(t.kind, false);
    let wire = t.kind.wire();
    let up = upgrades::open_loop(&t.addr, 300, 300.0, &*tok, wire.subprotocol()).await;
    let cpu = || t.cpu_us();
    let mut fan = json!(null);
    match fanout::Room::connect(&t.addr, &room_name("warm"), 10, 10, wire, &ctx.tokens).await {
        Ok(mut room) => {
            let cfg = fanout::StepConfig {
                warmup: Duration::from_millis(300),
                measure: Duration::from_secs(1),
                drain: Duration::from_secs(5),
            };
            fan = serde_json::to_value(room.step(100, cfg, &cpu).await).unwrap();
            room.close().await;
        }
        Err(e) => say!("{}: warm-up fan-out failed: {e}", t.kind.name()),
    }
    let nominal = ctx
        .progress
        .costs()
        .phase(t.kind, Phase::Start, ctx.cfg.cpu_n);
    ctx.progress.step(
        t.kind,
        Phase::Start,
        nominal,
        0.0,
        &format!(
            "start {}: warmed up ({} of 300 upgrades ok)",
            t.kind.name(),
            up.ok
        ),
    );
    json!({ "upgrades": up, "fanout": fan })
}
