//! Scenario 2 (and 4): one room of N clients, S senders publishing open loop at a combined
//! rate R; every receiver checks order and records latency.

use crate::scan::{is_welcome, scan_bare, scan_message, Delivery, OrderCheck};
use crate::stats::{new_histogram, record_us, Latency};
use crate::ws::{now_ns, upgrade, wait_for_text, Upgrade, Ws};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

const PADDING: &str = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
/// Upgrades in flight while a room fills up.
const CONNECT_CONCURRENCY: usize = 64;
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

/// Counters of one step, filled by the receivers.
struct StepState {
    step_start_ns: u64,
    window_start_ns: u64,
    window_end_ns: u64,
    hist: Histogram<u64>,
    /// Deliveries received inside the window (of messages of this step).
    delivered_in_window: u64,
    /// Deliveries of messages sent inside the window, whenever received.
    received_of_window: u64,
    /// Deliveries of messages from an earlier step.
    stale: u64,
    reorders: u64,
    gaps: u64,
    unparsed: u64,
    disconnects: u64,
}

impl StepState {
    fn new(step_start_ns: u64, window_start_ns: u64, window_end_ns: u64) -> StepState {
        StepState {
            step_start_ns,
            window_start_ns,
            window_end_ns,
            hist: new_histogram(),
            delivered_in_window: 0,
            received_of_window: 0,
            stale: 0,
            reorders: 0,
            gaps: 0,
            unparsed: 0,
            disconnects: 0,
        }
    }

    fn on_delivery(&mut self, d: &Delivery, now: u64) {
        if d.sent_ns < self.step_start_ns {
            self.stale += 1;
            return;
        }
        if now >= self.window_start_ns && now < self.window_end_ns {
            self.delivered_in_window += 1;
        }
        if d.sent_ns >= self.window_start_ns && d.sent_ns < self.window_end_ns {
            self.received_of_window += 1;
            record_us(&mut self.hist, now.saturating_sub(d.sent_ns) / 1000);
        }
    }
}

/// A room full of connected clients and their receiver tasks.
pub struct Room {
    pub name: String,
    pub n: usize,
    state: Rc<RefCell<StepState>>,
    /// Write halves of the senders (the first S clients), lent to sender tasks per step.
    sinks: Vec<Option<SplitSink<Ws, Message>>>,
    /// The other clients' write halves, kept so nothing closes.
    idle_sinks: Vec<SplitSink<Ws, Message>>,
    receivers: Vec<JoinHandle<()>>,
    /// Each sender's next counter.
    counters: Vec<u64>,
    alive: Rc<RefCell<usize>>,
    pub connect_s: f64,
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

async fn receive(
    mut stream: SplitStream<Ws>,
    senders: usize,
    bare: bool,
    state: Rc<RefCell<StepState>>,
    alive: Rc<RefCell<usize>>,
) {
    // The order checks span the room's life; the step counts their increments.
    let mut seq = OrderCheck::default();
    let mut per_sender = vec![OrderCheck::default(); senders];
    while let Some(m) = stream.next().await {
        let text = match m {
            Ok(Message::Text(t)) => t,
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => continue,
        };
        let now = now_ns();
        let bytes = text.as_bytes();
        let d = if bare {
            scan_bare(bytes)
        } else {
            scan_message(bytes)
        };
        let mut st = state.borrow_mut();
        let Some(d) = d else {
            // Join/leave/etc. are expected on authenticated targets; on js-bare every
            // frame should be one of ours.
            if bare {
                st.unparsed += 1;
            }
            continue;
        };
        let check = match d.seq {
            Some(_) => &mut seq,
            None => match per_sender.get_mut(d.sender as usize) {
                Some(c) => c,
                None => {
                    st.unparsed += 1;
                    continue;
                }
            },
        };
        let (r0, g0) = (check.reorders, check.gaps);
        check.observe(d.seq.unwrap_or(d.counter));
        st.reorders += check.reorders - r0;
        st.gaps += check.gaps - g0;
        st.on_delivery(&d, now);
    }
    state.borrow_mut().disconnects += 1;
    *alive.borrow_mut() -= 1;
}

impl Room {
    /// Connects `n` clients to `room` (valid tokens u0..u<n-1>, `tokens[i]`), waits for each
    /// welcome (js-bare: the 101), then starts the receivers.
    pub async fn connect(
        addr: &str,
        room: &str,
        n: usize,
        senders: usize,
        bare: bool,
        tokens: &[String],
    ) -> Result<Room, String> {
        let t0 = Instant::now();
        let mut conns: Vec<Option<Ws>> = (0..n).map(|_| None).collect();
        let mut next = 0usize;
        let mut tasks = tokio::task::JoinSet::new();
        let path = format!("/ws/{room}");
        let mut errors: Vec<String> = Vec::new();
        while next < n || !tasks.is_empty() {
            while next < n && tasks.len() < CONNECT_CONCURRENCY {
                let (addr, path) = (addr.to_owned(), path.clone());
                let token = if bare {
                    None
                } else {
                    Some(tokens[next % tokens.len()].clone())
                };
                let i = next;
                tasks.spawn_local(async move {
                    let out =
                        upgrade(&addr, &path, token.as_deref(), Duration::from_secs(20)).await;
                    let r = match out {
                        Upgrade::Open(mut ws, _) => {
                            if bare
                                || wait_for_text(&mut ws, Duration::from_secs(20), is_welcome).await
                            {
                                Ok(ws)
                            } else {
                                Err("no welcome frame".to_string())
                            }
                        }
                        Upgrade::Refused(s, body, _) => Err(format!(
                            "status {s}: {}",
                            String::from_utf8_lossy(&body)
                                .chars()
                                .take(120)
                                .collect::<String>()
                        )),
                        Upgrade::Failed(e) => Err(e),
                    };
                    (i, r)
                });
                next += 1;
            }
            if let Some(done) = tasks.join_next().await {
                match done {
                    Ok((i, Ok(ws))) => conns[i] = Some(*ws),
                    Ok((i, Err(e))) => errors.push(format!("client {i}: {e}")),
                    Err(e) => errors.push(format!("task: {e}")),
                }
            }
        }
        if !errors.is_empty() {
            return Err(format!(
                "{} of {n} clients failed to join {room}; first: {}",
                errors.len(),
                errors[0]
            ));
        }
        let state = Rc::new(RefCell::new(StepState::new(u64::MAX, u64::MAX, u64::MAX)));
        let alive = Rc::new(RefCell::new(n));
        let mut sinks = Vec::new();
        let mut idle_sinks = Vec::new();
        let mut receivers = Vec::new();
        for (i, ws) in conns.into_iter().enumerate() {
            let (sink, stream) = ws.expect("every client connected").split();
            if i < senders {
                sinks.push(Some(sink));
            } else {
                idle_sinks.push(sink);
            }
            receivers.push(tokio::task::spawn_local(receive(
                stream,
                senders,
                bare,
                state.clone(),
                alive.clone(),
            )));
        }
        Ok(Room {
            name: room.to_owned(),
            n,
            state,
            sinks,
            idle_sinks,
            receivers,
            counters: vec![0; senders],
            alive,
            connect_s: t0.elapsed().as_secs_f64(),
        })
    }

    /// Closes every client (close frames sent, at most ~2 s spent).
    pub async fn close(mut self) {
        let mut sinks: Vec<SplitSink<Ws, Message>> = self.sinks.drain(..).flatten().collect();
        sinks.append(&mut self.idle_sinks);
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            for s in sinks.iter_mut() {
                let _ = s.send(Message::Close(None)).await;
            }
        })
        .await;
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            for r in self.receivers.iter_mut() {
                let _ = r.await;
            }
        })
        .await;
        for r in &self.receivers {
            r.abort();
        }
    }

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
