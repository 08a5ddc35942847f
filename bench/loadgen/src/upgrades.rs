//! The upgrade load of scenario 1 (`scenario/upgrades.rs`): open-loop latency, closed-loop
//! throughput, the 401 path.

use crate::stats::{new_histogram, record_us, Latency};
use crate::ws::{close_politely, upgrade, upgrade_expecting_refusal, Upgrade};
use serde::Serialize;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(10);
pub const LINGER: Duration = Duration::from_millis(500);

/// What every attempt ended as, plus latencies of the successes.
#[derive(Debug, Default, Serialize, Clone)]
pub struct Tally {
    pub attempts: u64,
    /// The expected answer (101, or 401 with an invalid_token body on the rejection path).
    pub ok: u64,
    /// Every other outcome, by kind ("status 503", "no answer ...", "401 without invalid_token").
    pub failures: BTreeMap<String, u64>,
    pub failed: u64,
    #[serde(skip)]
    pub hist: Option<hdrhistogram::Histogram<u64>>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            hist: Some(new_histogram()),
            ..Default::default()
        }
    }

    fn fail(&mut self, why: String) {
        self.failed += 1;
        *self.failures.entry(why).or_default() += 1;
    }

    /// Records one attempt; `expect_401`: the rejection path.
    fn record(&mut self, outcome: Upgrade, expect_401: bool) {
        self.attempts += 1;
        match (outcome, expect_401) {
            (Upgrade::Open(ws, d), false) => {
                self.ok += 1;
                record_us(self.hist.as_mut().unwrap(), d.as_micros() as u64);
                tokio::task::spawn_local(close_politely(*ws, LINGER));
            }
            (Upgrade::Open(ws, _), true) => {
                self.fail("101 for a bad token".into());
                tokio::task::spawn_local(close_politely(*ws, LINGER));
            }
            (Upgrade::Refused(401, body, d), true) => {
                if body.windows(13).any(|w| w == b"invalid_token") {
                    self.ok += 1;
                    record_us(self.hist.as_mut().unwrap(), d.as_micros() as u64);
                } else {
                    self.fail("401 without invalid_token body".into());
                }
            }
            (Upgrade::Refused(s, _, _), _) => self.fail(format!("status {s}")),
            (Upgrade::Failed(e), _) => {
                let short: String = e.chars().take(60).collect();
                self.fail(short)
            }
        }
    }
}

#[derive(Debug, Serialize, Clone)]
pub struct OpenLoop {
    pub offered_per_s: f64,
    pub scheduled: u64,
    pub ok: u64,
    pub failed: u64,
    pub failures: BTreeMap<String, u64>,
    /// Successful upgrades / (last completion − first scheduled start).
    pub achieved_per_s: f64,
    pub latency: Option<Latency>,
    /// How late the generator started attempts versus the schedule (ms).
    pub max_start_lag_ms: f64,
    pub elapsed_s: f64,
    /// Server process CPU (utime+stime) from the first attempt until every socket has
    /// lingered and closed, per successful upgrade (µs); filled in by the caller.
    pub server_cpu_us_per_upgrade: Option<f64>,
}

/// (a) `k` upgrades scheduled at `rate`/s, open loop; token(i) gives the i-th token,
/// `protocol` is the subprotocol offered.
pub async fn open_loop(
    addr: &str,
    k: u64,
    rate: f64,
    token: &dyn Fn(u64) -> Option<String>,
    protocol: Option<&'static str>,
) -> OpenLoop {
    let tally = Rc::new(RefCell::new(Tally::new()));
    let last_done = Rc::new(RefCell::new(Instant::now()));
    let t0 = Instant::now() + Duration::from_millis(20);
    let mut max_lag = Duration::ZERO;
    let mut handles = Vec::with_capacity(k as usize);
    for i in 0..k {
        let due = t0 + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        max_lag = max_lag.max(Instant::now().saturating_duration_since(due));
        let (tally, last_done) = (tally.clone(), last_done.clone());
        let addr = addr.to_owned();
        let tok = token(i);
        handles.push(tokio::task::spawn_local(async move {
            let out = upgrade(
                &addr,
                &format!("/ws/up-{}", i % 50),
                tok.as_deref(),
                protocol,
                TIMEOUT,
            )
            .await;
            *last_done.borrow_mut() = Instant::now();
            tally.borrow_mut().record(out, false);
        }));
    }
    for h in handles {
        let _ = h.await;
    }
    let tally = tally.borrow();
    let elapsed = last_done
        .borrow()
        .saturating_duration_since(t0)
        .as_secs_f64();
    OpenLoop {
        offered_per_s: rate,
        scheduled: k,
        ok: tally.ok,
        failed: tally.failed,
        failures: tally.failures.clone(),
        achieved_per_s: if elapsed > 0.0 {
            tally.ok as f64 / elapsed
        } else {
            0.0
        },
        latency: Latency::of(tally.hist.as_ref().unwrap()),
        max_start_lag_ms: max_lag.as_secs_f64() * 1000.0,
        elapsed_s: elapsed,
        server_cpu_us_per_upgrade: None,
    }
}

#[derive(Debug, Serialize, Clone)]
pub struct ClosedLoop {
    pub in_flight: u64,
    pub duration_s: f64,
    pub attempts: u64,
    pub ok: u64,
    pub failed: u64,
    pub failures: BTreeMap<String, u64>,
    /// Expected answers completed within the duration, per second.
    pub ok_per_s: f64,
    pub latency: Option<Latency>,
    /// How long the server went on releasing this phase's sockets after it (s, to a
    /// quarter second: quiet.rs); filled in by the caller.
    pub release_s: Option<f64>,
    /// `ok` / (duration + `release_s`): the rate once the work the runtime deferred past
    /// the phase is counted.
    pub ok_per_s_with_release: Option<f64>,
    /// Server CPU from the phase's start until it was quiet again, per expected answer.
    pub server_cpu_us_per_upgrade: Option<f64>,
}

impl ClosedLoop {
    /// Fills in what the phase left for the server to do: `waited` = the wait for a
    /// quiet server right after it (its last tick was the idle one), `cpu_us` = the
    /// server's CPU from the phase's start to the end of that wait.
    pub fn count_release(&mut self, waited: Duration, tick: Duration, cpu_us: Option<u64>) {
        let release = waited.saturating_sub(tick).as_secs_f64();
        self.release_s = Some(release);
        self.ok_per_s_with_release = Some(self.ok as f64 / (self.duration_s + release));
        self.server_cpu_us_per_upgrade = cpu_us
            .filter(|_| self.ok > 0)
            .map(|c| c as f64 / self.ok as f64);
    }
}

/// (b)/(c): `in_flight` workers upgrading back to back for `duration`, offering
/// `protocol`; only answers that complete within the duration count.
pub async fn closed_loop(
    addr: &str,
    in_flight: u64,
    duration: Duration,
    expect_401: bool,
    token: Rc<dyn Fn(u64) -> Option<String>>,
    protocol: Option<&'static str>,
) -> ClosedLoop {
    let tally = Rc::new(RefCell::new(Tally::new()));
    let start = Instant::now();
    let end = start + duration;
    let counter = Rc::new(RefCell::new(0u64));
    let mut handles = Vec::new();
    for _ in 0..in_flight {
        let (tally, counter, token) = (tally.clone(), counter.clone(), token.clone());
        let addr = addr.to_owned();
        handles.push(tokio::task::spawn_local(async move {
            while Instant::now() < end {
                let i = {
                    let mut c = counter.borrow_mut();
                    *c += 1;
                    *c
                };
                let tok = token(i);
                let path = format!("/ws/up-{}", i % 50);
                let out = if expect_401 {
                    upgrade_expecting_refusal(&addr, &path, tok.as_deref(), protocol).await
                } else {
                    upgrade(&addr, &path, tok.as_deref(), protocol, TIMEOUT).await
                };
                if Instant::now() <= end {
                    tally.borrow_mut().record(out, expect_401);
                } else if let Upgrade::Open(ws, _) = out {
                    tokio::task::spawn_local(close_politely(*ws, LINGER));
                }
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
    let tally = tally.borrow();
    ClosedLoop {
        in_flight,
        duration_s: duration.as_secs_f64(),
        attempts: tally.attempts,
        ok: tally.ok,
        failed: tally.failed,
        failures: tally.failures.clone(),
        ok_per_s: tally.ok as f64 / duration.as_secs_f64(),
        latency: Latency::of(tally.hist.as_ref().unwrap()),
        release_s: None,
        ok_per_s_with_release: None,
        server_cpu_us_per_upgrade: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_release_after_a_phase_counts_against_its_rate() {
        let mut b = ClosedLoop {
            in_flight: 32,
            duration_s: 5.0,
            attempts: 6_010,
            ok: 6_000,
            failed: 0,
            failures: BTreeMap::new(),
            ok_per_s: 1_200.0,
            latency: None,
            release_s: None,
            ok_per_s_with_release: None,
            server_cpu_us_per_upgrade: None,
        };
        let tick = Duration::from_millis(250);
        // Quiet at the first tick: nothing was left over.
        b.count_release(tick, tick, Some(6_000_000));
        assert_eq!(b.release_s, Some(0.0));
        assert_eq!(b.ok_per_s_with_release, Some(1_200.0));
        assert_eq!(b.server_cpu_us_per_upgrade, Some(1_000.0));
        // 1.25 s of release after the phase.
        b.count_release(Duration::from_millis(1_500), tick, None);
        assert_eq!(b.release_s, Some(1.25));
        assert_eq!(b.ok_per_s_with_release, Some(6_000.0 / 6.25));
        assert_eq!(b.server_cpu_us_per_upgrade, None);
    }
}
