//! One measured step on a room: S senders publish open loop at a combined rate R through
//! a warm-up and a measured window, then the drain waits for every delivery; the step's
//! figures and its verdict (sustainable or not, and why).

use super::receive::StepState;
use super::room::Room;
use crate::stats::Latency;
use crate::ws::now_ns;
use futures_util::SinkExt;
use serde::Serialize;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const PADDING: &str = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
/// The generator's core counts as saturated from this share of busy time over the window:
/// its receive path then sets the latencies and the delivered rate, not the server.
pub const GENERATOR_SATURATED: f64 = 0.9;

/// Step settings.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StepConfig {
    pub warmup: Duration,
    pub measure: Duration,
    pub drain: Duration,
}

#[derive(Debug, Serialize, Clone)]
pub struct StepResult {
    pub n: usize,
    pub senders: usize,
    pub offered_per_s: u64,
    pub window_s: f64,
    /// Messages the senders published inside the window.
    pub sent_in_window: u64,
    pub achieved_send_per_s: f64,
    /// sent_in_window × receivers connected.
    pub expected_deliveries: u64,
    pub received_deliveries: u64,
    pub loss: u64,
    pub reorders: u64,
    /// Values skipped over by a receiver's seq (or a sender's counter on js-bare).
    pub seq_gaps: u64,
    pub stale_deliveries: u64,
    pub unparsed_frames: u64,
    pub disconnects: u64,
    pub send_errors: u64,
    /// Deliveries received inside the window, per second.
    pub delivered_per_s: f64,
    pub latency: Option<Latency>,
    pub drain_timed_out: bool,
    pub drain_ms: f64,
    pub server_cpu_us: Option<u64>,
    pub cpu_us_per_delivery: Option<f64>,
    /// The generator's own CPU time over the window / window length (1.0 = its core is
    /// saturated and the figures describe the generator, not the server).
    pub generator_cpu_share: Option<f64>,
    /// `generator_cpu_share` ≥ [`GENERATOR_SATURATED`]: this step measured the generator
    /// at least as much as the server (a sustainable verdict still holds: the server kept
    /// up with a generator that was slow to read; an unsustainable one may be the
    /// generator's).
    pub generator_saturated: bool,
    pub sustainable: bool,
    /// Why not sustainable.
    pub verdict: String,
}

fn sender_frame(sender: usize, counter: u64, ns: u64) -> String {
    format!(r#"{{"type":"publish","data":{{"b":"{sender}.{counter}.{ns}","p":"{PADDING}"}}}}"#)
}

impl Room {
    /// Runs one step at `rate` messages/s combined. `cpu` reads the server's CPU time (µs).
    pub async fn step(
        &mut self,
        rate: u64,
        cfg: StepConfig,
        cpu: &dyn Fn() -> Option<u64>,
    ) -> StepResult {
        let senders = self.sinks.len();
        let step_start = now_ns() + 5_000_000;
        let window_start = step_start + cfg.warmup.as_nanos() as u64;
        let window_end = window_start + cfg.measure.as_nanos() as u64;
        let receivers_at_start = *self.alive.borrow();
        *self.state.borrow_mut() = StepState::new(step_start, window_start, window_end);
        let origin = Instant::now() - Duration::from_nanos(now_ns());
        let at = move |ns: u64| origin + Duration::from_nanos(ns);

        // Senders: open loop, sender j sends its k-th message at
        // step_start + (j + k·S) / R, whatever happened to earlier ones.
        let interval_ns = 1e9 * senders as f64 / rate as f64;
        let mut handles = Vec::new();
        for j in 0..senders {
            let mut sink = self.sinks[j]
                .take()
                .expect("sink returned by the last step");
            let mut counter = self.counters[j];
            let offset_ns = 1e9 * j as f64 / rate as f64;
            handles.push(tokio::task::spawn_local(async move {
                let (mut sent_in_window, mut errors) = (0u64, 0u64);
                let mut k = 0u64;
                loop {
                    let due = step_start + (offset_ns + k as f64 * interval_ns) as u64;
                    if due >= window_end {
                        break;
                    }
                    tokio::time::sleep_until(at(due).into()).await;
                    let ns = now_ns();
                    let frame = sender_frame(j, counter, ns);
                    counter += 1;
                    if sink.send(Message::text(frame)).await.is_err() {
                        errors += 1;
                    } else if ns >= window_start && ns < window_end {
                        sent_in_window += 1;
                    }
                    k += 1;
                }
                (sink, counter, sent_in_window, errors)
            }));
        }
        // CPU at the window's edges.
        tokio::time::sleep_until(at(window_start).into()).await;
        let cpu0 = cpu();
        let gen0 = crate::target::cpu_us(std::process::id() as i32);
        tokio::time::sleep_until(at(window_end).into()).await;
        let cpu1 = cpu();
        let gen1 = crate::target::cpu_us(std::process::id() as i32);
        let (mut sent_in_window, mut send_errors) = (0, 0);
        for (j, h) in handles.into_iter().enumerate() {
            let (sink, counter, sent, errors) = h.await.expect("sender task");
            self.sinks[j] = Some(sink);
            self.counters[j] = counter;
            sent_in_window += sent;
            send_errors += errors;
        }
        // Drain: wait for every expected delivery.
        let expected = sent_in_window * receivers_at_start as u64;
        let drain_start = Instant::now();
        let mut drain_timed_out = false;
        loop {
            if self.state.borrow().received_of_window >= expected {
                break;
            }
            if drain_start.elapsed() >= cfg.drain {
                drain_timed_out = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let drain_ms = drain_start.elapsed().as_secs_f64() * 1000.0;
        let st = self.state.borrow();
        let window_s = cfg.measure.as_secs_f64();
        let achieved = sent_in_window as f64 / window_s;
        let loss = expected.saturating_sub(st.received_of_window);
        let latency = Latency::of(&st.hist);
        let server_cpu_us = match (cpu0, cpu1) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        };
        let cpu_us_per_delivery = server_cpu_us
            .filter(|_| st.delivered_in_window > 0)
            .map(|c| c as f64 / st.delivered_in_window as f64);
        let mut why = Vec::new();
        match &latency {
            Some(l) if l.p99_ms < 50.0 => {}
            Some(l) => why.push(format!("p99 {:.1} ms", l.p99_ms)),
            None => why.push("nothing received".into()),
        }
        if loss > 0 {
            why.push(format!("loss {loss}"));
        }
        if st.reorders > 0 {
            why.push(format!("reorders {}", st.reorders));
        }
        // One message of slack: the window holds rate × window ± 1 scheduled sends, which
        // matters at the few-per-second rates of large rooms.
        if ((sent_in_window + 1) as f64) < 0.95 * rate as f64 * window_s {
            why.push(format!("sent {achieved:.0}/s of {rate}/s"));
        }
        if st.disconnects > 0 || send_errors > 0 {
            why.push(format!(
                "{} disconnects, {send_errors} send errors",
                st.disconnects
            ));
        }
        if sent_in_window == 0 {
            why.push("nothing sent".into());
        }
        let generator_cpu_share = match (gen0, gen1) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / 1e6 / window_s),
            _ => None,
        };
        let generator_saturated = generator_cpu_share.is_some_and(|g| g >= GENERATOR_SATURATED);
        let sustainable = why.is_empty();
        if generator_saturated {
            why.push(format!(
                "generator core {:.0}% busy: generator-limited",
                generator_cpu_share.unwrap_or(0.0) * 100.0
            ));
        }
        StepResult {
            n: self.n,
            senders,
            offered_per_s: rate,
            window_s,
            sent_in_window,
            achieved_send_per_s: achieved,
            expected_deliveries: expected,
            received_deliveries: st.received_of_window,
            loss,
            reorders: st.reorders,
            seq_gaps: st.gaps,
            stale_deliveries: st.stale,
            unparsed_frames: st.unparsed,
            disconnects: st.disconnects,
            send_errors,
            delivered_per_s: st.delivered_in_window as f64 / window_s,
            latency,
            drain_timed_out,
            drain_ms,
            server_cpu_us,
            cpu_us_per_delivery,
            generator_cpu_share,
            generator_saturated,
            sustainable,
            verdict: match (sustainable, why.is_empty()) {
                (true, true) => "sustainable".into(),
                (true, false) => format!("sustainable ({})", why.join(", ")),
                (false, _) => why.join(", "),
            },
        }
    }

    /// Should the next step start from fresh clients in a fresh room?
    pub fn needs_reconnect(&self, last: &StepResult) -> bool {
        last.drain_timed_out
            || last.disconnects > 0
            || last.send_errors > 0
            || *self.alive.borrow() < self.n
    }
}
