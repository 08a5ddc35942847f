//! roomgate-bench: runs every scenario of bench/README.md against every target and writes
//! bench/results/. Started by `./bench/run` (pinned to core 1; the servers get core 0).

mod fanout;
mod http;
mod login;
mod quiet;
mod report;
mod scan;
mod size;
mod stats;
mod sweep;
mod target;
mod token;
mod upgrades;
mod ws;

use serde_json::{json, Value};
use stats::Spread;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;
use target::{Kind, Running, Secrets};

const USAGE: &str =
    "usage: roomgate-bench [--quick] [--targets roomgate,roomgate-no-presence,js-reference,js-bare,native]
       [--scenarios upgrades,fanout,cpu,login,size] [--n 10,100,1000] [--reps N]
       [--k N] [--upgrade-rate R] [--closed-secs S] [--warmup-secs S] [--step-secs S]
       [--start-rate R] [--cpu-n N] [--cpu-rate R] [--login-secs S]
       [--out DIR]";

#[derive(Debug, Clone, serde::Serialize)]
struct Config {
    quick: bool,
    targets: Vec<&'static str>,
    scenarios: Vec<String>,
    fanout_n: Vec<usize>,
    reps: usize,
    upgrade_k: u64,
    upgrade_rate: f64,
    closed_in_flight: u64,
    closed_secs: f64,
    warmup_secs: f64,
    step_secs: f64,
    drain_secs: f64,
    start_rate: u64,
    bisections: u32,
    max_deliveries_per_s: u64,
    cpu_n: usize,
    cpu_rate: u64,
    login_in_flight: u64,
    login_secs: f64,
    cold_reps: usize,
    #[serde(skip)]
    kinds: Vec<Kind>,
    #[serde(skip)]
    out: Option<PathBuf>,
}

fn parse_args() -> Result<Config, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let mut c = Config {
        quick,
        targets: vec![],
        scenarios: ["upgrades", "fanout", "cpu", "login", "size"]
            .map(String::from)
            .to_vec(),
        fanout_n: if quick {
            vec![10, 100]
        } else {
            vec![10, 100, 1000]
        },
        reps: if quick { 1 } else { 3 },
        upgrade_k: if quick { 200 } else { 1000 },
        upgrade_rate: 200.0,
        closed_in_flight: 32,
        closed_secs: if quick { 2.0 } else { 5.0 },
        warmup_secs: if quick { 0.5 } else { 1.0 },
        step_secs: if quick { 2.0 } else { 4.0 },
        drain_secs: 5.0,
        start_rate: 20,
        bisections: 3,
        max_deliveries_per_s: 1_000_000,
        cpu_n: 100,
        cpu_rate: 100,
        login_in_flight: 4,
        login_secs: if quick { 2.0 } else { 5.0 },
        cold_reps: if quick { 1 } else { 3 },
        kinds: target::ALL.to_vec(),
        out: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{a} needs a value"));
        let num = |s: String| {
            s.parse::<f64>()
                .map_err(|_| format!("{a}: not a number: {s}"))
        };
        match a.as_str() {
            "--quick" => {}
            "-h" | "--help" => return Err(USAGE.into()),
            "--targets" => {
                c.kinds = val()?
                    .split(',')
                    .map(|t| Kind::parse(t.trim()).ok_or(format!("unknown target {t}")))
                    .collect::<Result<_, _>>()?
            }
            "--scenarios" => {
                c.scenarios = val()?.split(',').map(|s| s.trim().to_owned()).collect();
                for s in &c.scenarios {
                    if !["upgrades", "fanout", "cpu", "login", "size"].contains(&s.as_str()) {
                        return Err(format!("unknown scenario {s}"));
                    }
                }
            }
            "--n" => {
                c.fanout_n = val()?
                    .split(',')
                    .map(|n| n.trim().parse().map_err(|_| format!("--n: {n}")))
                    .collect::<Result<_, _>>()?
            }
            "--reps" => c.reps = num(val()?)?.max(1.0) as usize,
            "--k" => c.upgrade_k = num(val()?)? as u64,
            "--upgrade-rate" => c.upgrade_rate = num(val()?)?,
            "--closed-secs" => c.closed_secs = num(val()?)?,
            "--warmup-secs" => c.warmup_secs = num(val()?)?,
            "--step-secs" => c.step_secs = num(val()?)?,
            "--start-rate" => c.start_rate = num(val()?)? as u64,
            "--cpu-n" => c.cpu_n = num(val()?)?.max(1.0) as usize,
            "--cpu-rate" => c.cpu_rate = num(val()?)?.max(1.0) as u64,
            "--login-secs" => c.login_secs = num(val()?)?,
            "--out" => c.out = Some(PathBuf::from(val()?)),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    c.targets = c.kinds.iter().map(|k| k.name()).collect();
    Ok(c)
}

/// The repository root: the first ancestor of the working directory with wrangler.toml
/// and bench/.
fn repo_root() -> PathBuf {
    let cwd = std::env::current_dir().expect("working directory");
    cwd.ancestors()
        .find(|p| p.join("wrangler.toml").is_file() && p.join("bench").is_dir())
        .map(Path::to_path_buf)
        .unwrap_or(cwd)
}

fn has(c: &Config, s: &str) -> bool {
    c.scenarios.iter().any(|x| x == s)
}

fn spread(values: Vec<f64>) -> Value {
    Spread::of(&values)
        .map(|s| serde_json::to_value(s).unwrap())
        .unwrap_or(Value::Null)
}

macro_rules! say {
    ($($t:tt)*) => { eprintln!("[bench] {}", format!($($t)*)) };
}

struct Ctx {
    root: PathBuf,
    cfg: Config,
    secrets: Secrets,
    /// Valid tokens for users u0..u1023.
    tokens: Rc<Vec<String>>,
    logs: PathBuf,
}

impl Ctx {
    fn token_fn(&self, kind: Kind, bad: bool) -> Rc<dyn Fn(u64) -> Option<String>> {
        let tokens = self.tokens.clone();
        let auth = kind.has_auth();
        Rc::new(move |i| {
            let t = &tokens[i as usize % tokens.len()];
            auth.then(|| {
                if bad {
                    token::with_bad_signature(t)
                } else {
                    t.clone()
                }
            })
        })
    }

    fn step_config(&self) -> fanout::StepConfig {
        fanout::StepConfig {
            warmup: Duration::from_secs_f64(self.cfg.warmup_secs),
            measure: Duration::from_secs_f64(self.cfg.step_secs),
            drain: Duration::from_secs_f64(self.cfg.drain_secs),
        }
    }
}

fn room_name(prefix: &str) -> String {
    format!("{prefix}-{}", token::random_alnum(8))
}

async fn warm_up(ctx: &Ctx, t: &Running) -> Value {
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

async fn scenario_upgrades(ctx: &Ctx, t: &Running) -> Value {
    let c = &ctx.cfg;
    let name = t.kind.name();
    let good = ctx.token_fn(t.kind, false);
    let (mut open, mut closed, mut reject) = (vec![], vec![], vec![]);
    for rep in 0..c.reps {
        quiet::wait(t, &format!("upgrades (a) rep {rep}")).await;
        let cpu0 = t.cpu_us();
        let mut o = upgrades::open_loop(&t.addr, c.upgrade_k, c.upgrade_rate, &*good).await;
        // The sockets linger, then close: their closes, and the runtime's release of
        // them (which waits for an idle moment: quiet.rs), are part of what an upgrade
        // costs.
        tokio::time::sleep(upgrades::LINGER + Duration::from_millis(500)).await;
        quiet::wait(t, &format!("the end of upgrades (a) rep {rep}")).await;
        o.server_cpu_us_per_upgrade = match (cpu0, t.cpu_us()) {
            (Some(a), Some(b)) if o.ok > 0 => Some(b.saturating_sub(a) as f64 / o.ok as f64),
            _ => None,
        };
        say!(
            "{name}: upgrades (a) rep {rep}: {}/{} ok, {:.0}/s, p99 {:?} ms",
            o.ok,
            o.scheduled,
            o.achieved_per_s,
            o.latency.as_ref().map(|l| l.p99_ms)
        );
        open.push(o);
        // Each phase ends with a wait for a quiet server, so the next one starts on one.
        let dur = Duration::from_secs_f64(c.closed_secs);
        let cpu0 = t.cpu_us();
        let mut b =
            upgrades::closed_loop(&t.addr, c.closed_in_flight, dur, false, good.clone()).await;
        // Some runtimes release a closed loop's sockets only once it stops (quiet.rs):
        // that work belongs to these upgrades.
        let released = quiet::wait(t, &format!("the end of upgrades (b) rep {rep}")).await;
        let cpu = cpu0
            .zip(t.cpu_us())
            .map(|(start, end)| end.saturating_sub(start));
        b.count_release(Duration::from_secs_f64(released.waited_s), quiet::TICK, cpu);
        say!(
            "{name}: upgrades (b) rep {rep}: {:.0}/s, {:.0}/s with the {:.2} s release after it, {} failed",
            b.ok_per_s,
            b.ok_per_s_with_release.unwrap_or(0.0),
            b.release_s.unwrap_or(0.0),
            b.failed
        );
        closed.push(b);
        if t.kind.has_auth() {
            let bad = ctx.token_fn(t.kind, true);
            let r = upgrades::closed_loop(&t.addr, c.closed_in_flight, dur, true, bad).await;
            say!(
                "{name}: upgrades (c) rep {rep}: {:.0} 401/s, {} wrong",
                r.ok_per_s,
                r.failed
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
        "rejection": if t.kind.has_auth() { json!({
            "in_flight": c.closed_in_flight,
            "rejected_per_s": spread(reject.iter().map(|o| o.ok_per_s).collect()),
            "not_401": reject.iter().map(|o| o.failed).sum::<u64>(),
            "runs": reject,
        }) } else { json!({ "rejected_per_s": "n/a", "not_401": "n/a", "why": "js-bare has no auth" }) },
    })
}

/// Summary of repetitions of fan-out steps.
fn summarize_steps(steps: &[fanout::StepResult]) -> Value {
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

fn log_step(name: &str, s: &fanout::StepResult) {
    say!(
        "{name}: N={} R={}/s: sent {:.0}/s, delivered {:.0}/s, p99 {} ms, loss {}, reorders {}, cpu {} µs/msg, generator core {}: {}",
        s.n,
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
}

async fn connect_room(ctx: &Ctx, t: &Running, n: usize) -> Result<fanout::Room, String> {
    let room = fanout::Room::connect(
        &t.addr,
        &room_name(&format!("fan{n}")),
        n,
        n.min(10),
        !t.kind.has_auth(),
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
async fn run_step(
    ctx: &Ctx,
    t: &Running,
    room: &mut Option<fanout::Room>,
    n: usize,
    rate: u64,
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
    log_step(t.kind.name(), &res);
    if r.needs_reconnect(&res) {
        say!(
            "{}: reconnecting the room before the next step",
            t.kind.name()
        );
        room.take().unwrap().close().await;
    }
    Ok(res)
}

/// Rooms of 1000 clients need 1000+ descriptors in the generator (and in the servers,
/// which inherit the limit): raises the soft RLIMIT_NOFILE to the hard limit.
fn raise_fd_limit() -> Option<u64> {
    // SAFETY: getrlimit/setrlimit on this process with a valid struct.
    unsafe {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return None;
        }
        if r.rlim_cur < r.rlim_max {
            let want = libc::rlimit {
                rlim_cur: r.rlim_max,
                rlim_max: r.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                r.rlim_cur = r.rlim_max;
            }
        }
        Some(r.rlim_cur)
    }
}

async fn scenario_fanout(ctx: &Ctx, t: &Running) -> Value {
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
        loop {
            match run_step(ctx, t, &mut room, n, sweep.current()).await {
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
            (reps, error) = repeat_steps(ctx, t, &mut room, n, rate).await;
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

/// `cfg.reps` steps of N clients at `rate`; stops at the first error (returned too).
async fn repeat_steps(
    ctx: &Ctx,
    t: &Running,
    room: &mut Option<fanout::Room>,
    n: usize,
    rate: u64,
) -> (Vec<fanout::StepResult>, Option<String>) {
    let mut reps = vec![];
    for _ in 0..ctx.cfg.reps {
        match run_step(ctx, t, room, n, rate).await {
            Ok(r) => reps.push(r),
            Err(e) => return (reps, Some(e)),
        }
    }
    (reps, None)
}

async fn scenario_cpu(ctx: &Ctx, t: &Running) -> Value {
    let c = &ctx.cfg;
    let mut room = None;
    let (reps, error) = repeat_steps(ctx, t, &mut room, c.cpu_n, c.cpu_rate).await;
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

async fn scenario_login(ctx: &Ctx, t: &Running) -> Value {
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
        say!(
            "{}: login rep {rep}: {:.1}/s, {} failed, p99 {:?} ms",
            t.kind.name(),
            r.logins_per_s,
            r.failed,
            r.latency.as_ref().map(|l| l.p99_ms)
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

async fn scenario_size(ctx: &Ctx, kind: Kind) -> Value {
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
    for rep in 0..ctx.cfg.cold_reps {
        let log = ctx.logs.join(format!("{}-cold.log", kind.name()));
        let token = kind.has_auth().then_some(tok.as_str());
        match size::cold_start(&ctx.root, kind, &ctx.secrets, &log, token).await {
            Ok(c) => {
                say!(
                    "{}: cold start rep {rep}: {:.0} ms",
                    kind.name(),
                    c.to_first_101_ms
                );
                runs.push(c)
            }
            Err(e) => {
                say!("{}: cold start rep {rep}: {e}", kind.name());
                errors.push(e)
            }
        }
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

async fn bench_target(ctx: &Ctx, kind: Kind) -> Value {
    let c = &ctx.cfg;
    let name = kind.name();
    let mut out = json!({});
    // The scenarios asked for that this target measures.
    let runs = |s: &str| has(c, s) && kind.measures(s);
    let needs_server = ["upgrades", "fanout", "cpu", "login"]
        .iter()
        .any(|s| runs(s));
    if needs_server {
        say!("{name}: starting");
        let log = ctx.logs.join(format!("{name}.log"));
        match target::start(kind, &ctx.root, &ctx.secrets, &log) {
            Err(e) => {
                say!("{name}: {e}");
                out["error"] = json!(e);
            }
            Ok(mut t) => {
                say!(
                    "{name}: serving at {} (server pid {}, {})",
                    t.url,
                    t.server_pid,
                    t.pid_source
                );
                out["server"] =
                    json!({ "url": t.url, "server_pid": t.server_pid, "pid_source": t.pid_source });
                out["warm_up"] = warm_up(ctx, &t).await;
                t.rest_fds.set(quiet::measure_rest(&t).await);
                out["server"]["rest_fds"] = json!(t.rest_fds.get());
                if runs("upgrades") {
                    out["upgrades"] = scenario_upgrades(ctx, &t).await;
                }
                if runs("fanout") {
                    out["fanout"] = scenario_fanout(ctx, &t).await;
                }
                if runs("cpu") {
                    out["cpu"] = scenario_cpu(ctx, &t).await;
                }
                if runs("login") {
                    out["login"] = scenario_login(ctx, &t).await;
                }
                out["quiet_waits"] = json!(*t.quiet_log.borrow());
                out["server"]["alive_at_end"] = json!(t.alive());
                t.stop();
                say!("{name}: stopped");
            }
        }
    }
    if runs("size") {
        out["size"] = scenario_size(ctx, kind).await;
    }
    out
}

fn markdown(results: &Value) -> String {
    let targets: Vec<(&str, &Value)> = results["targets"]
        .as_object()
        .map(|m| {
            target::ALL
                .iter()
                .filter_map(|k| m.get(k.name()).map(|v| (k.name(), v)))
                .collect()
        })
        .unwrap_or_default();
    let m = &results["machine"];
    let c = &results["config"];
    let s = |v: &Value| {
        v.as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| v.to_string())
    };
    let mut md = String::from("# roomgate benchmarks\n\n");
    md.push_str(&format!(
        "Machine: {} ({} cores), {}; {}; commit {}{}; workerd {} (wrangler {}); {}; node {}. {}.\n\n",
        s(&m["cpu_model"]),
        s(&m["cores"]),
        s(&m["kernel"]),
        s(&m["date"]),
        s(&m["git_commit"]).chars().take(12).collect::<String>(),
        if m["git_dirty"] == json!(true) { " (dirty)" } else { "" },
        s(&m["workerd_version"]),
        s(&m["wrangler_version"]),
        s(&m["rustc_version"]),
        s(&m["node_version"]),
        s(&m["pinning"]),
    ));
    md.push_str(
        "Each cell: median [min–max over repetitions] (×ratio to js-reference: the target's figure divided by js-reference's, for every figure, latencies and costs included). \"—\": not measured or failed (see latest.json).\n",
    );
    if c["quick"] == json!(true) {
        md.push_str(
            "\n**--quick run: short steps, one repetition; a smoke test, not a measurement.**\n",
        );
    }
    md.push('\n');
    let errors: Vec<String> = targets
        .iter()
        .filter_map(|(n, v)| {
            v.get("error")
                .and_then(Value::as_str)
                .map(|e| format!("- {n}: {e}"))
        })
        .collect();
    if !errors.is_empty() {
        md.push_str(&format!(
            "Targets that did not run:\n{}\n\n",
            errors.join("\n")
        ));
    }
    let row = |l: &str, p: &str, d: usize| (l.to_owned(), p.to_owned(), d);
    md.push_str(&report::table(
        "1. Upgrades",
        &format!(
            "(a) {} upgrades scheduled open loop at {}/s, room up-<i % 50>, valid token; latency = TCP connect start → 101. (b) closed loop, {} in flight, {} s; a runtime that releases the phase's sockets only after it (bench/README.md, \"A quiet server\") has that release counted: upgrades / (phase + release). (c) the same with wrongly signed tokens: each answer must be 401 invalid_token. Every phase starts on a quiet server (its descriptors back to their count at rest, its core idle: bench/README.md, \"A quiet server\"); (a)'s CPU runs until the runtime has released its sockets. roomgate-no-presence: roomgate with `PRESENCE_ROOMS = []` (no `members`, `join` or `leave`; js-reference has no presence either), measured on upgrades only.",
            s(&c["upgrade_k"]), s(&c["upgrade_rate"]), s(&c["closed_in_flight"]), s(&c["closed_secs"])
        ),
        &targets,
        &[
            row("(a) achieved upgrades/s", "/upgrades/open_loop/achieved_per_s", 1),
            row("(a) connect p50 (ms)", "/upgrades/open_loop/p50_ms", 2),
            row("(a) connect p99 (ms)", "/upgrades/open_loop/p99_ms", 2),
            row("(a) server CPU µs / upgrade", "/upgrades/open_loop/server_cpu_us_per_upgrade", 0),
            row("(a) failures", "/upgrades/open_loop/failures", 0),
            row("(b) upgrades/s, counting the release after it", "/upgrades/closed_loop/ok_per_s_with_release", 0),
            row("(b) upgrades/s within the phase", "/upgrades/closed_loop/ok_per_s", 0),
            row("(b) release after the phase (s)", "/upgrades/closed_loop/release_s", 2),
            row("(b) server CPU µs / upgrade, release included", "/upgrades/closed_loop/server_cpu_us_per_upgrade", 0),
            row("(b) failures", "/upgrades/closed_loop/failures", 0),
            row("(c) 401s/s", "/upgrades/rejection/rejected_per_s", 0),
            row("(c) answers not 401", "/upgrades/rejection/not_401", 0),
        ],
    ));
    let mut fan_rows = vec![];
    for n in c["fanout_n"].as_array().cloned().unwrap_or_default() {
        let n = n.as_u64().unwrap_or(0);
        let p = |k: &str| format!("/fanout/{n}/{k}");
        fan_rows.push((
            format!("N={n}: max sustainable send rate (msg/s)"),
            p("max_sustainable_rate_per_s"),
            0,
        ));
        fan_rows.push((
            format!("N={n}: sweep's best rate, before confirmation (msg/s)"),
            p("sweep_best_rate_per_s"),
            0,
        ));
        fan_rows.push((
            format!("N={n}: sweep stopped at its cap"),
            p("sweep_hit_cap"),
            0,
        ));
        fan_rows.push((
            format!("N={n}: generator-limited (its core ≥ 90 % busy)"),
            p("generator_limited"),
            0,
        ));
        fan_rows.push((
            format!("N={n}: repetitions sustainable"),
            p("repetitions_sustainable"),
            0,
        ));
        fan_rows.push((format!("N={n}: delivered msg/s"), p("delivered_per_s"), 0));
        fan_rows.push((format!("N={n}: latency p50 (ms)"), p("p50_ms"), 2));
        fan_rows.push((format!("N={n}: latency p99 (ms)"), p("p99_ms"), 2));
        fan_rows.push((format!("N={n}: latency p99.9 (ms)"), p("p999_ms"), 2));
        fan_rows.push((format!("N={n}: loss"), p("loss"), 0));
        fan_rows.push((format!("N={n}: reorders"), p("reorders"), 0));
        fan_rows.push((
            format!("N={n}: server CPU µs / delivery"),
            p("cpu_us_per_delivery"),
            2,
        ));
        fan_rows.push((
            format!("N={n}: generator core busy (share)"),
            p("generator_cpu_share"),
            2,
        ));
    }
    md.push_str(&report::table(
        "2. Fan-out at the highest sustainable rate",
        &format!(
            "One room of N clients, min(N, 10) senders, open loop. Sustainable: p99 < 50 ms, no loss, no reorder, ≥ 95 % of the offered send rate. Sweep from {}/s doubling, then 3 bisections (a rate fails only when two steps at it fail in a row); then {} repetitions at the sweep's best rate, which stands only if more than half of them are sustainable — otherwise the rate is lowered by a fifth and repeated, at most 3 times ({} s warm-up + {} s measured per step). Max sustainable rate, delivered msg/s, latency and CPU: from the repetitions at the confirmed rate. Loss/reorders: totals over the repetitions. Generator-limited \"yes\": the generator's own core (one core, pinned) was ≥ 90 % busy at or above the best rate, so the maximum is the generator's limit and only a lower bound for the target.",
            s(&c["start_rate"]), s(&c["reps"]), s(&c["warmup_secs"]), s(&c["step_secs"])
        ),
        &targets,
        &fan_rows,
    ));
    md.push_str(&report::table(
        "4. Server CPU per delivered message at a fixed load",
        &format!(
            "N={}, {} msg/s offered ({} deliveries/s); server process utime+stime over the measured window / deliveries in the window.",
            s(&c["cpu_n"]), s(&c["cpu_rate"]),
            c["cpu_n"].as_u64().unwrap_or(0) * c["cpu_rate"].as_u64().unwrap_or(0)
        ),
        &targets,
        &[
            row("server CPU µs / delivery", "/cpu/cpu_us_per_delivery", 2),
            row("delivered msg/s", "/cpu/delivered_per_s", 0),
            row("latency p99 (ms)", "/cpu/p99_ms", 2),
            row("loss", "/cpu/loss", 0),
        ],
    ));
    md.push_str(&report::table(
        "3. Login",
        &format!(
            "POST /login, closed loop, {} in flight, {} s; every answer must be 200 with a token. Both targets hash with PBKDF2-SHA256 at 100,000 iterations, which dominates.",
            s(&c["login_in_flight"]), s(&c["login_secs"])
        ),
        &targets,
        &[
            row("logins/s", "/login/logins_per_s", 2),
            row("p50 (ms)", "/login/p50_ms", 1),
            row("p99 (ms)", "/login/p99_ms", 1),
            row("failures", "/login/failures", 0),
        ],
    ));
    md.push_str(&report::table(
        "5. Size and cold start",
        "Artefact: roomgate build/index_bg.wasm, the JS workers' main script, the native server binary. gzip: level 9 (flate2, file name in the header like `gzip -9c`); gzip -9c: the system gzip, as tests/deploy.rs measures. Cold start: spawning a fresh runtime (new state) → first 101 on /ws/cold, polled every 10 ms.",
        &targets,
        &[
            row("artefact", "/size/main_path", 0),
            row("raw bytes", "/size/main_raw_bytes", 0),
            row("gzip -9 bytes (flate2)", "/size/main_gzip9_bytes", 0),
            row("gzip -9c bytes (system gzip)", "/size/main_gzip_cli_bytes", 0),
            row("cold start → first 101 (ms)", "/size/cold_start_ms", 0),
            row("cold start → URL printed (ms)", "/size/cold_start_to_url_ms", 0),
        ],
    ));
    md
}

async fn run() -> Result<(), String> {
    let cfg = parse_args()?;
    let root = repo_root();
    let results_dir = cfg
        .out
        .clone()
        .unwrap_or_else(|| root.join("bench/results"));
    let logs = results_dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
    ws::start();
    let fd_limit = raise_fd_limit();
    let biggest_room = if has(&cfg, "fanout") {
        cfg.fanout_n.iter().copied().max().unwrap_or(0)
    } else {
        0
    };
    if let Some(l) = fd_limit {
        if (l as usize) < biggest_room + 256 {
            say!("open-file limit {l} is too low for a room of {biggest_room} clients: raise the hard limit (ulimit -Hn)");
        }
    }
    let secrets = Secrets {
        jwt_secret: token::random_alnum(48),
        admin_token: token::random_alnum(32),
    };
    let tokens = Rc::new(
        (0..1024)
            .map(|i| token::mint(&secrets.jwt_secret, i))
            .collect::<Vec<_>>(),
    );
    say!(
        "root {}; targets {:?}; scenarios {:?}",
        root.display(),
        cfg.targets,
        cfg.scenarios
    );
    let ctx = Ctx {
        root: root.clone(),
        cfg: cfg.clone(),
        secrets,
        tokens,
        logs,
    };
    let started = token::now_unix();
    let mut per_target = serde_json::Map::new();
    for &kind in &cfg.kinds {
        per_target.insert(kind.name().into(), bench_target(&ctx, kind).await);
    }
    let results = json!({
        "machine": report::machine(&root),
        "config": cfg,
        "duration_s": token::now_unix() - started,
        "targets": per_target,
    });
    let md = markdown(&results);
    let stamp = report::utc(started).replace([':', '-'], "");
    let json_text = serde_json::to_string_pretty(&results).unwrap();
    for (name, text) in [
        ("latest.json".to_string(), &json_text),
        ("latest.md".to_string(), &md),
        (format!("{stamp}.json"), &json_text),
        (format!("{stamp}.md"), &md),
    ] {
        let path = results_dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    println!("{md}");
    say!(
        "wrote {}/latest.{{md,json}} and {stamp}.{{md,json}}",
        results_dir.display()
    );
    Ok(())
}

fn main() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        target::kill_all();
        default_hook(info);
    }));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let local = tokio::task::LocalSet::new();
    let code = local.block_on(&rt, async {
        tokio::task::spawn_local(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            eprintln!("[bench] interrupted: stopping the targets");
            target::kill_all();
            std::process::exit(130);
        });
        match run().await {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("roomgate-bench: {e}");
                2
            }
        }
    });
    target::kill_all();
    std::process::exit(code);
}
