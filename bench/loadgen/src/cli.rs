//! The command line: every setting of a run, its default (and its `--quick` default), and
//! the flag that overrides it. The settings are written to the results JSON as `config`.

use crate::target::{self, Kind};
use std::path::PathBuf;

pub const USAGE: &str =
    "usage: roomgate-bench [--quick]
       [--targets roomgate,roomgate-v1,roomgate-no-presence,js-reference,js-bare,js-bare-batched,native]
       [--scenarios upgrades,fanout,cpu,login,size] [--n 10,100,1000] [--reps N]
       [--k N] [--upgrade-rate R] [--closed-secs S] [--warmup-secs S] [--step-secs S]
       [--start-rate R] [--cpu-n N] [--cpu-rate R] [--quiet-rate R] [--quiet-reps N] [--login-secs S] [--max-deliveries D]
       [--out DIR] [--render RESULTS.json]";

#[derive(Debug, Clone, serde::Serialize)]
pub struct Config {
    pub quick: bool,
    pub targets: Vec<&'static str>,
    pub scenarios: Vec<String>,
    pub fanout_n: Vec<usize>,
    pub reps: usize,
    pub upgrade_k: u64,
    pub upgrade_rate: f64,
    pub closed_in_flight: u64,
    pub closed_secs: f64,
    pub warmup_secs: f64,
    pub step_secs: f64,
    pub drain_secs: f64,
    pub start_rate: u64,
    pub bisections: u32,
    pub max_deliveries_per_s: u64,
    pub cpu_n: usize,
    pub cpu_rate: u64,
    /// The quiet room's send rate (same N as the CPU scenario).
    pub quiet_rate: u64,
    /// Repetitions of the quiet room's step.
    pub quiet_reps: usize,
    pub login_in_flight: u64,
    pub login_secs: f64,
    pub cold_reps: usize,
    #[serde(skip)]
    pub kinds: Vec<Kind>,
    #[serde(skip)]
    pub out: Option<PathBuf>,
    /// `--render FILE`: no run; the report and chart of an earlier run's results JSON.
    #[serde(skip)]
    pub render: Option<PathBuf>,
}

impl Config {
    /// Was scenario `s` asked for?
    pub fn has(&self, s: &str) -> bool {
        self.scenarios.iter().any(|x| x == s)
    }
}

/// The settings of a run before its flags (other than `--quick`) apply.
pub fn defaults(quick: bool) -> Config {
    Config {
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
        max_deliveries_per_s: 3_000_000,
        cpu_n: 100,
        cpu_rate: 400,
        quiet_rate: 10,
        quiet_reps: if quick { 3 } else { 9 },
        login_in_flight: 4,
        login_secs: if quick { 2.0 } else { 5.0 },
        cold_reps: if quick { 1 } else { 3 },
        kinds: target::ALL.to_vec(),
        out: None,
        render: None,
    }
}

pub fn parse_args() -> Result<Config, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let mut c = defaults(quick);
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
            "--quiet-rate" => c.quiet_rate = num(val()?)?.max(1.0) as u64,
            "--quiet-reps" => c.quiet_reps = num(val()?)?.max(1.0) as usize,
            "--login-secs" => c.login_secs = num(val()?)?,
            "--max-deliveries" => c.max_deliveries_per_s = num(val()?)?.max(1.0) as u64,
            "--out" => c.out = Some(PathBuf::from(val()?)),
            "--render" => c.render = Some(PathBuf::from(val()?)),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    c.targets = c.kinds.iter().map(|k| k.name()).collect();
    Ok(c)
}
