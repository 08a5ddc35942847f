//! The warm-up before any measurement: upgrades and one fan-out step, so that no measured
//! phase carries a target's first traffic; the server's descriptors at rest are counted
//! after it (`quiet::measure_rest`).

use super::steps::room_name;
use crate::context::{say, Ctx};
use crate::fanout;
use crate::target::Running;
use crate::upgrades;
use serde_json::{json, Value};
use std::time::Duration;

pub async fn run(ctx: &Ctx, t: &Running) -> Value {
    let tok = ctx.token_fn(t.kind, false);
    let up = upgrades::open_loop(&t.addr, 300, 300.0, &*tok).await;
    let cpu = || t.cpu_us();
    let mut fan = json!(null);
    match fanout::Room::connect(
        &t.addr,
        &room_name("warm"),
        10,
        10,
        !t.kind.has_auth(),
        &ctx.tokens,
    )
    .await
    {
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
    say!(
        "{}: warmed up ({} of 300 upgrades ok)",
        t.kind.name(),
        up.ok
    );
    json!({ "upgrades": up, "fanout": fan })
}
