//! A room of N connected clients: joining it (each client's welcome awaited, its reader
//! started) and leaving it.

use super::receive::{receive, StepState};
use crate::wire::Wire;
use crate::ws::{upgrade, wait_for_text, Upgrade, Ws};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// Upgrades in flight while a room fills up.
const CONNECT_CONCURRENCY: usize = 64;

/// A room full of connected clients and their receiver tasks.
pub struct Room {
    pub name: String,
    pub n: usize,
    pub(super) state: Rc<RefCell<StepState>>,
    /// Write halves of the senders (the first S clients), lent to sender tasks per step.
    pub(super) sinks: Vec<Option<SplitSink<Ws, Message>>>,
    /// The other clients' write halves, kept so nothing closes.
    idle_sinks: Vec<SplitSink<Ws, Message>>,
    receivers: Vec<JoinHandle<()>>,
    /// Each sender's next counter.
    pub(super) counters: Vec<u64>,
    pub(super) alive: Rc<RefCell<usize>>,
    pub connect_s: f64,
}

impl Room {
    /// Connects `n` clients to `room` speaking `wire` (valid tokens u0..u<n-1>,
    /// `tokens[i]`, where the wire has a welcome), waits for each welcome (the js-bare
    /// targets: the 101), then starts the receivers.
    pub async fn connect(
        addr: &str,
        room: &str,
        n: usize,
        senders: usize,
        wire: Wire,
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
                let token = wire
                    .has_welcome()
                    .then(|| tokens[next % tokens.len()].clone());
                let i = next;
                tasks.spawn_local(async move {
                    let out = upgrade(
                        &addr,
                        &path,
                        token.as_deref(),
                        wire.subprotocol(),
                        Duration::from_secs(20),
                    )
                    .await;
                    let r = match out {
                        Upgrade::Open(mut ws, _) => {
                            if !wire.has_welcome()
                                || wait_for_text(&mut ws, Duration::from_secs(20), |f| {
                                    wire.is_welcome(f)
                                })
                                .await
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
                wire,
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

    /// Closes every client: sends the close frames, then awaits the receivers (each of the
    /// two waits bounded by 2 s), then aborts the receivers left.
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
}
