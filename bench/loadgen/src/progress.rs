//! Progress lines on stderr: one per measured step, each with the time the run has taken
//! and an estimate of the time it has left.
//!
//! The estimate starts from the nominal cost of every phase the run will go through
//! ([`Costs`], the per-step costs of bench/README.md "One command", in terms of the
//! run's settings). A phase in progress reports how much of it is done and how much is
//! left, in the same nominal seconds (a fan-out sweep re-estimates its steps left as it
//! goes). The nominal time left is then scaled by the run's pace so far: its real time
//! over the nominal cost of the phases done (the one in progress counted up to its
//! nominal cost at most). So the pace takes in what the nominal costs leave out: waits
//! for a quiet server, drains, sweeps that take more steps than expected, a slower
//! machine.

use crate::bench_target::SERVED;
use crate::cli::Config;
use crate::target::Kind;
use std::cell::RefCell;
use std::time::{Duration, Instant};

/// Fan-out sweep steps expected per room size, before the repetitions, as bench/README.md
/// ("One command") gives them; interpolated in log N.
const SWEEP_STEPS: [(f64, f64); 3] = [(10.0, 13.0), (100.0, 11.0), (1000.0, 8.0)];
/// Rounds of repetitions expected per room size: the confirmation, and a step down for
/// every other N.
const REP_ROUNDS: f64 = 1.5;
/// Before the pace is known, the nominal costs are trusted: this many seconds of both
/// real and nominal time are added to the pace's numerator and denominator.
const PACE_PRIOR_S: f64 = 60.0;

/// A part of a target's run whose nominal cost is known in advance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Starting the target, warming it up, counting its descriptors at rest: before each
    /// scenario that needs it running.
    Start,
    Upgrades,
    Fanout(usize),
    Cpu,
    Login,
    Size,
}

impl Phase {
    /// The scenario it belongs to, as `--scenarios` names it.
    pub fn scenario(self) -> &'static str {
        match self {
            Phase::Start => "start",
            Phase::Upgrades => "upgrades",
            Phase::Fanout(_) => "fanout",
            Phase::Cpu => "cpu",
            Phase::Login => "login",
            Phase::Size => "size",
        }
    }
}

/// Nominal costs, in seconds, from the run's settings.
#[derive(Debug, Clone)]
pub struct Costs {
    step: f64,
    upgrade_open: f64,
    closed: f64,
    reps: f64,
    quiet_reps: f64,
    login: f64,
    cold_reps: f64,
}

impl Costs {
    pub fn of(c: &Config) -> Costs {
        Costs {
            step: c.warmup_secs + c.step_secs + 0.35,
            upgrade_open: c.upgrade_k as f64 / c.upgrade_rate.max(1.0),
            closed: c.closed_secs,
            reps: c.reps as f64,
            quiet_reps: c.quiet_reps as f64,
            login: c.login_secs,
            cold_reps: c.cold_reps as f64,
        }
    }

    /// One fan-out step: its warm-up, window and drain, and the wait for an idle server
    /// before it.
    pub fn step(&self) -> f64 {
        self.step
    }

    /// Joining a room of `n` clients.
    pub fn connect(&self, n: usize) -> f64 {
        0.5 + n as f64 * 0.002
    }

    /// Sweep steps expected at room size `n`.
    pub fn sweep_steps(n: usize) -> f64 {
        let x = (n.max(1) as f64).log10();
        let pts = SWEEP_STEPS.map(|(n, s)| (n.log10(), s));
        if x <= pts[0].0 {
            return pts[0].1;
        }
        for w in pts.windows(2) {
            let ((x0, y0), (x1, y1)) = (w[0], w[1]);
            if x <= x1 {
                return y0 + (y1 - y0) * (x - x0) / (x1 - x0);
            }
        }
        pts[pts.len() - 1].1
    }

    /// Sweep steps still to come after `run` steps of a sweep at room size `n`: while
    /// `doubling`, what is expected (but at least the failure and the bisections), then
    /// the `bisections_left`.
    pub fn sweep_steps_left(n: usize, run: usize, doubling: bool, bisections_left: u32) -> f64 {
        let floor = if doubling {
            2.0 + f64::from(bisections_left)
        } else {
            f64::from(bisections_left)
        };
        (Self::sweep_steps(n) - run as f64).max(floor)
    }

    /// The repetitions after a sweep: the confirmation and the step-downs expected.
    pub fn fanout_reps(&self) -> f64 {
        REP_ROUNDS * self.reps * self.step
    }

    /// The repetitions of one round at a rate.
    pub fn rep_round(&self) -> f64 {
        self.reps * self.step
    }

    /// One repetition of the upgrades: (a), (b) and, with auth, (c).
    pub fn upgrades_rep(&self, auth: bool) -> f64 {
        self.upgrade_open + self.closed * if auth { 2.0 } else { 1.0 }
    }

    pub fn upgrade_open(&self) -> f64 {
        self.upgrade_open
    }

    pub fn closed(&self) -> f64 {
        self.closed
    }

    pub fn login_rep(&self) -> f64 {
        self.login
    }

    /// One cold start: spawning a runtime to its first 101, and stopping it.
    pub fn cold_rep(kind: Kind) -> f64 {
        if kind == Kind::Native {
            0.2
        } else {
            5.0
        }
    }

    /// The whole of `phase` for `kind`.
    pub fn phase(&self, kind: Kind, phase: Phase, cpu_n: usize) -> f64 {
        match phase {
            Phase::Start if kind == Kind::Native => 3.0,
            Phase::Start => 8.0,
            Phase::Upgrades => self.reps * self.upgrades_rep(kind.has_auth()),
            Phase::Fanout(n) => {
                self.connect(n) + Self::sweep_steps(n) * self.step + self.fanout_reps()
            }
            Phase::Cpu => self.connect(cpu_n) + self.rep_round() + self.quiet_reps * self.step,
            Phase::Login if kind.has_login() => self.reps * self.login,
            Phase::Login => 0.0,
            Phase::Size => self.cold_reps * Self::cold_rep(kind),
        }
    }
}

/// The phases of a whole run, in the order they run, with their nominal costs.
pub fn plan(c: &Config) -> Vec<(Kind, Phase, f64)> {
    let costs = Costs::of(c);
    let mut out = vec![];
    for &kind in &c.kinds {
        let runs = |s: &str| c.has(s) && kind.measures(s);
        let mut phases = vec![];
        // Each served scenario starts a runtime of its own (`bench_target`).
        for s in SERVED.into_iter().filter(|s| runs(s)) {
            phases.push(Phase::Start);
            match s {
                "upgrades" => phases.push(Phase::Upgrades),
                "fanout" => phases.extend(c.fanout_n.iter().map(|&n| Phase::Fanout(n))),
                "cpu" => phases.push(Phase::Cpu),
                _ => phases.push(Phase::Login),
            }
        }
        if runs("size") {
            phases.push(Phase::Size);
        }
        out.extend(
            phases
                .into_iter()
                .map(|p| (kind, p, costs.phase(kind, p, c.cpu_n))),
        );
    }
    out
}

struct State {
    /// The plan's phases, their nominal costs (0 once skipped).
    plan: Vec<(Kind, Phase, f64)>,
    /// The phase in progress (an index into `plan`), if it has reported.
    at: Option<usize>,
    /// Nominal costs of the phases before `at` that ran.
    done_before: f64,
    /// Nominal seconds of the phase at `at` done, as last reported.
    done_here: f64,
}

pub struct Progress {
    started: Instant,
    costs: Costs,
    state: RefCell<State>,
}

/// `12m03s`, `45s`, `1h05m`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s / 60 % 60),
    }
}

/// An estimate of time left, to the precision it has: `~40s`, `~18m`, `~1h05m`.
pub fn estimate(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("~{}s", s.div_ceil(10) * 10),
        60..=3599 => format!("~{}m", (s + 30) / 60),
        _ => format!("~{}h{:02}m", s / 3600, s / 60 % 60),
    }
}

impl Progress {
    pub fn new(c: &Config) -> Progress {
        Progress {
            started: Instant::now(),
            costs: Costs::of(c),
            state: RefCell::new(State {
                plan: plan(c),
                at: None,
                done_before: 0.0,
                done_here: 0.0,
            }),
        }
    }

    pub fn costs(&self) -> &Costs {
        &self.costs
    }

    /// The nominal length of the whole run.
    pub fn nominal_total(&self) -> f64 {
        self.state.borrow().plan.iter().map(|p| p.2).sum()
    }

    /// Where the run stands after `real` seconds: `done_s` nominal seconds of `kind`'s
    /// `phase` are done and `left_s` are left. Returns the time left for the whole run.
    fn advance(&self, real: f64, kind: Kind, phase: Phase, done_s: f64, left_s: f64) -> Duration {
        let mut st = self.state.borrow_mut();
        // Phases run in the plan's order, and one may come more than once (`Start`): the
        // first match from the phase in progress on.
        let from = st.at.unwrap_or(0);
        let found = st
            .plan
            .iter()
            .skip(from)
            .position(|&(k, p, _)| k == kind && p == phase)
            .map(|j| j + from);
        if let Some(j) = found {
            if st.at != Some(j) {
                // The phase before is over: it counts for its nominal cost (phases that
                // never reported, such as a scenario a target skips, did nothing).
                if let Some(before) = st.at {
                    st.done_before += st.plan[before].2;
                }
                st.at = Some(j);
            }
            st.done_here = done_s;
        }
        let at = st.at.unwrap_or(0);
        let future: f64 = st.plan.iter().skip(at + 1).map(|p| p.2).sum();
        let here = st.at.map_or(0.0, |j| st.done_here.min(st.plan[j].2));
        let done = st.done_before + here;
        let pace = ((real + PACE_PRIOR_S) / (done + PACE_PRIOR_S)).clamp(0.5, 3.0);
        Duration::from_secs_f64(((left_s.max(0.0) + future) * pace).max(0.0))
    }

    /// Prints one progress line: the time taken, the estimate of the time left, then
    /// `line` (`<scenario> <target> <step>: <figures>`).
    pub fn step(&self, kind: Kind, phase: Phase, done_s: f64, left_s: f64, line: &str) {
        let real = self.started.elapsed().as_secs_f64();
        let left = self.advance(real, kind, phase, done_s, left_s);
        eprintln!(
            "[bench] [{}, {} left] {line}",
            duration(self.started.elapsed()),
            estimate(left)
        );
    }

    /// `kind` will not run the phases that need it running (it did not start): they no
    /// longer count.
    pub fn skip_served(&self, kind: Kind) {
        let mut st = self.state.borrow_mut();
        let next = st.at.map_or(0, |j| j + 1);
        for p in st.plan.iter_mut().skip(next) {
            if p.0 == kind && p.1 != Phase::Size {
                p.2 = 0.0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(quick: bool) -> Config {
        let mut c = crate::cli::defaults(quick);
        c.targets = c.kinds.iter().map(|k| k.name()).collect();
        c
    }

    #[test]
    fn sweep_steps_follow_the_readme_and_interpolate() {
        assert_eq!(Costs::sweep_steps(1), 13.0);
        assert_eq!(Costs::sweep_steps(10), 13.0);
        assert_eq!(Costs::sweep_steps(100), 11.0);
        assert_eq!(Costs::sweep_steps(1000), 8.0);
        assert_eq!(Costs::sweep_steps(5000), 8.0);
        let mid = Costs::sweep_steps(316);
        assert!((mid - 9.5).abs() < 0.01, "{mid}");
        // Past the expected count, at least the failure and the bisections are left
        // while doubling, and exactly the bisections once bisecting.
        assert_eq!(Costs::sweep_steps_left(100, 20, true, 3), 5.0);
        assert_eq!(Costs::sweep_steps_left(100, 20, false, 2), 2.0);
        assert_eq!(Costs::sweep_steps_left(100, 4, true, 3), 7.0);
    }

    #[test]
    fn a_default_run_of_the_earlier_five_targets_is_about_what_the_readme_says() {
        // bench/README.md ("One command"): the length of a default run of the five
        // targets before protocol v2.
        let mut c = config(false);
        c.kinds = vec![
            Kind::RoomgateV1,
            Kind::RoomgateNoPresence,
            Kind::JsReference,
            Kind::JsBare,
            Kind::Native,
        ];
        let total: f64 = plan(&c).iter().map(|p| p.2).sum();
        // roomgate-v1 measures neither logins nor size: add roomgate's.
        let costs = Costs::of(&c);
        let total = total
            + costs.phase(Kind::Roomgate, Phase::Login, 100)
            + costs.phase(Kind::Roomgate, Phase::Size, 100);
        assert!((18.0 * 60.0..28.0 * 60.0).contains(&total), "{total} s");
    }

    #[test]
    fn the_plan_follows_the_targets_and_what_each_measures() {
        let c = config(true);
        let p = plan(&c);
        let of = |k: Kind| {
            p.iter()
                .filter(|x| x.0 == k)
                .map(|x| x.1)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            of(Kind::RoomgateNoPresence),
            [Phase::Start, Phase::Upgrades]
        );
        // A runtime of its own for each scenario that needs one.
        assert_eq!(
            of(Kind::RoomgateV1),
            [
                Phase::Start,
                Phase::Upgrades,
                Phase::Start,
                Phase::Fanout(10),
                Phase::Fanout(100),
                Phase::Start,
                Phase::Cpu
            ]
        );
        assert_eq!(
            of(Kind::JsBareBatched),
            [
                Phase::Start,
                Phase::Fanout(10),
                Phase::Fanout(100),
                Phase::Start,
                Phase::Cpu,
                Phase::Size
            ]
        );
        assert_eq!(of(Kind::Roomgate).len(), 10);
        // Login costs nothing where there is none.
        let login = |k: Kind| {
            p.iter()
                .find(|x| x.0 == k && x.1 == Phase::Login)
                .map(|x| x.2)
        };
        assert_eq!(login(Kind::JsBare), Some(0.0));
        assert!(login(Kind::JsReference).unwrap() > 0.0);
    }

    #[test]
    fn the_estimate_shrinks_as_phases_finish_and_skipped_targets_drop_out() {
        let mut c = config(true);
        c.kinds = vec![Kind::JsBare, Kind::JsBareBatched];
        c.scenarios = vec!["fanout".into()];
        let pr = Progress::new(&c);
        let total = pr.nominal_total();
        let step = pr.costs().step();
        let start = Costs::of(&c).phase(Kind::JsBare, Phase::Start, 100);
        let first = pr.advance(0.0, Kind::JsBare, Phase::Start, 0.0, start);
        // Nothing done yet, no time spent: the pace is 1.
        assert!(
            (first.as_secs_f64() - total).abs() < 1.0,
            "{first:?} vs {total}"
        );
        // On schedule: the time left is the nominal cost of what is left.
        let n10 = Costs::of(&c).phase(Kind::JsBare, Phase::Fanout(10), 100);
        pr.advance(start + n10, Kind::JsBare, Phase::Fanout(10), n10, 0.0);
        let on_time = pr.advance(start + n10, Kind::JsBare, Phase::Fanout(100), 0.0, 20.0);
        let rest = total - start - n10 - Costs::of(&c).phase(Kind::JsBare, Phase::Fanout(100), 100);
        assert!(
            (on_time.as_secs_f64() - (20.0 + rest)).abs() < 1.0,
            "{on_time:?} vs {}",
            20.0 + rest
        );
        pr.skip_served(Kind::JsBareBatched);
        let skipped = pr.advance(
            start + n10,
            Kind::JsBare,
            Phase::Fanout(100),
            0.0,
            8.0 * step,
        );
        assert!(
            (skipped.as_secs_f64() - 8.0 * step).abs() < 1.0,
            "{skipped:?}, one phase left"
        );
    }

    #[test]
    fn a_second_start_of_the_same_target_moves_the_run_forward() {
        let mut c = config(true);
        c.kinds = vec![Kind::JsBare];
        c.scenarios = vec!["fanout".into(), "cpu".into()];
        let costs = Costs::of(&c);
        let pr = Progress::new(&c);
        let total = pr.nominal_total();
        let start = costs.phase(Kind::JsBare, Phase::Start, 100);
        let fanout: f64 = c
            .fanout_n
            .iter()
            .map(|&n| costs.phase(Kind::JsBare, Phase::Fanout(n), 100))
            .sum();
        let cpu = costs.phase(Kind::JsBare, Phase::Cpu, 100);
        assert!((total - (2.0 * start + fanout + cpu)).abs() < 1e-6);
        let mut real = 0.0;
        pr.advance(real, Kind::JsBare, Phase::Start, start, 0.0);
        for &n in &c.fanout_n {
            let here = costs.phase(Kind::JsBare, Phase::Fanout(n), 100);
            real += here;
            pr.advance(real, Kind::JsBare, Phase::Fanout(n), here, 0.0);
        }
        // The start before the CPU scenario is the plan's second, not its first again:
        // only the CPU scenario is left after it.
        real += start;
        let left = pr.advance(real, Kind::JsBare, Phase::Start, start, 0.0);
        // On schedule (the pace is 1): what is left is the CPU scenario's nominal cost.
        assert!((left.as_secs_f64() - cpu).abs() < 1.0, "{left:?} vs {cpu}");
    }

    #[test]
    fn a_run_behind_its_nominal_costs_scales_what_is_left() {
        let mut c = config(true);
        c.kinds = vec![Kind::JsBare, Kind::JsBareBatched];
        c.scenarios = vec!["fanout".into()];
        let costs = Costs::of(&c);
        let pr = Progress::new(&c);
        let start = costs.phase(Kind::JsBare, Phase::Start, 100);
        let n10 = costs.phase(Kind::JsBare, Phase::Fanout(10), 100);
        pr.advance(start, Kind::JsBare, Phase::Start, start, 0.0);
        // N=10 took twice its nominal cost (a sweep of many more steps than expected):
        // it counts for its nominal cost, so the pace is above 1 and scales the rest.
        let real = start + 2.0 * n10;
        pr.advance(real, Kind::JsBare, Phase::Fanout(10), 2.0 * n10, 0.0);
        let left = pr.advance(real, Kind::JsBare, Phase::Fanout(100), 0.0, 30.0);
        let nominal_left =
            pr.nominal_total() - start - n10 - costs.phase(Kind::JsBare, Phase::Fanout(100), 100)
                + 30.0;
        let pace = (real + PACE_PRIOR_S) / (start + n10 + PACE_PRIOR_S);
        assert!(pace > 1.2, "{pace}");
        assert!(
            (left.as_secs_f64() - nominal_left * pace).abs() < 1.0,
            "{left:?} vs {}",
            nominal_left * pace
        );
    }

    #[test]
    fn formats_durations() {
        assert_eq!(duration(Duration::from_secs(45)), "45s");
        assert_eq!(duration(Duration::from_secs(723)), "12m03s");
        assert_eq!(duration(Duration::from_secs(3900)), "1h05m");
        assert_eq!(estimate(Duration::from_secs(41)), "~50s");
        assert_eq!(estimate(Duration::from_secs(0)), "~0s");
        assert_eq!(estimate(Duration::from_secs(1079)), "~18m");
        assert_eq!(estimate(Duration::from_secs(3900)), "~1h05m");
    }
}
