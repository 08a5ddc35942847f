//! Scenario 3, logins: the bench user seeded through the admin API, then repetitions of a
//! closed loop of `POST /login` (targets without a login answer "n/a").

use crate::context::{say, Ctx};
use crate::login;
use crate::progress::Phase;
use crate::quiet;
use crate::stats::spread;
use crate::target::Running;
use serde_json::{json, Value};
use std::time::Duration;

pub async fn run(ctx: &Ctx, t: &Running) -> Value {
    if !t.kind.has_login() {
        return json!({ "logins_per_s": "n/a", "p50_ms": "n/a", "p99_ms": "n/a", "failures": "n/a" });
    }
    if let Err(e) = login::seed(&t.addr, &ctx.secrets.admin_token).await {
        say!("{}: seeding the login user failed: {e}", t.kind.name());
        return json!({ "error": e });
    }
    let c = &ctx.cfg;
    let mut runs = vec![];
    for rep in 0..c.reps {
        quiet::wait(t, &format!("login rep {rep}")).await;
        let r = login::run(
            &t.addr,
            c.login_in_flight,
            Duration::from_secs_f64(c.login_secs),
        )
        .await;
        let per = ctx.progress.costs().login_rep();
        ctx.progress.step(
            t.kind,
            Phase::Login,
            (rep + 1) as f64 * per,
            (c.reps - rep - 1) as f64 * per,
            &format!(
                "login {} rep {}/{}: {:.1}/s, {} failed, p99 {:?} ms",
                t.kind.name(),
                rep + 1,
                c.reps,
                r.logins_per_s,
                r.failed,
                r.latency.as_ref().map(|l| l.p99_ms)
            ),
        );
        runs.push(r);
    }
    json!({
        "in_flight": c.login_in_flight,
        "logins_per_s": spread(runs.iter().map(|r| r.logins_per_s).collect()),
        "p50_ms": spread(runs.iter().filter_map(|r| r.latency.as_ref().map(|l| l.p50_ms)).collect()),
        "p99_ms": spread(runs.iter().filter_map(|r| r.latency.as_ref().map(|l| l.p99_ms)).collect()),
        "failures": runs.iter().map(|r| r.failed).sum::<u64>(),
        "note": "PBKDF2-SHA256 at 100,000 iterations dominates each login",
        "runs": runs,
    })
}
