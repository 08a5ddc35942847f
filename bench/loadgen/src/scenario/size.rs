//! Scenario 5, size and cold start: the shipped artefacts' sizes, then repetitions of a
//! fresh start of the target until its first 101. Needs no running target.

use crate::context::Ctx;
use crate::progress::{Costs, Phase};
use crate::size;
use crate::stats::spread;
use crate::target::Kind;
use serde_json::{json, Value};

pub async fn run(ctx: &Ctx, kind: Kind) -> Value {
    let files: Vec<Value> = size::artefacts(&ctx.root, kind)
        .into_iter()
        .map(|r| {
            r.map_or_else(
                |e| json!({ "error": e }),
                |f| serde_json::to_value(f).unwrap(),
            )
        })
        .collect();
    let mut runs = vec![];
    let mut errors = vec![];
    let tok = ctx.tokens[0].clone();
    let of = ctx.cfg.cold_reps;
    for rep in 0..of {
        let log = ctx.logs.join(format!("{}-cold.log", kind.name()));
        let token = kind.has_auth().then_some(tok.as_str());
        let outcome = match size::cold_start(&ctx.root, kind, &ctx.secrets, &log, token).await {
            Ok(c) => {
                let ms = c.to_first_101_ms;
                runs.push(c);
                format!("{ms:.0} ms")
            }
            Err(e) => {
                errors.push(e.clone());
                e
            }
        };
        let per = Costs::cold_rep(kind);
        ctx.progress.step(
            kind,
            Phase::Size,
            (rep + 1) as f64 * per,
            (of - rep - 1) as f64 * per,
            &format!(
                "size {} cold start {}/{of}: {outcome}",
                kind.name(),
                rep + 1
            ),
        );
    }
    let first = files.first().cloned().unwrap_or(Value::Null);
    json!({
        "files": files,
        "main_raw_bytes": first.get("raw_bytes"),
        "main_gzip9_bytes": first.get("gzip9_bytes"),
        "main_gzip_cli_bytes": first.get("gzip_cli_bytes"),
        "main_path": first.get("path"),
        "cold_start_ms": spread(runs.iter().map(|r| r.to_first_101_ms).collect()),
        "cold_start_to_url_ms": spread(runs.iter().map(|r| r.to_url_ms).collect()),
        "cold_start_runs": runs,
        "cold_start_errors": errors,
    })
}
