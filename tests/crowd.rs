//! A crowded room, end to end: 200 clients in one room on the local runtime, a few of them
//! publishing at once; every client receives every message, in the same order, nothing
//! lost and nothing twice.
//!
//! A correctness test, not a benchmark: there are no timing assertions, timeouts are
//! generous, and clients connect at most [`CONNECT_AT_ONCE`] at a time (identities are
//! minted with `token_for`, not `/login`, whose PBKDF2 would dominate the run).
//!
//! Run: `cargo test --test crowd` (from the repository root; builds the Worker first if
//! `src/` changed, and starts its own runtime).
use roomgate_harness::runtime::server;
use roomgate_harness::tokens::token_for;
use roomgate_harness::ws::{Client, Event};

use std::time::{Duration, Instant};

use futures_util::{stream, StreamExt};
use serde_json::{json, Value};

/// Clients in the room (the spec's number).
const CLIENTS: usize = 200;
/// Upgrades in flight at once.
const CONNECT_AT_ONCE: usize = 20;
/// Clients that publish, and how many messages each.
const SENDERS: usize = 4;
const PER_SENDER: usize = 25;
/// How long one client may wait for its next message: generous, as 200 clients share two
/// cores with the runtime.
const PATIENCE: Duration = Duration::from_secs(60);

/// The next `message` frame, skipping presence.
async fn next_message(c: &mut Client) -> Value {
    loop {
        match c.next_event_within(PATIENCE).await {
            Some(Event::Frame(v)) if v["type"] == "message" => return v,
            Some(Event::Frame(v)) if v["type"] == "join" || v["type"] == "leave" => continue,
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_clients_all_receive_every_message_in_one_order() {
    let s = server();
    let room = "crowd";
    let started = Instant::now();

    let clients: Vec<(Client, Value)> = stream::iter(0..CLIENTS)
        .map(|i| async move {
            s.join_welcomed(room, &token_for(&format!("c{i}"), &format!("Crowd {i}")))
                .await
        })
        .buffered(CONNECT_AT_ONCE)
        .collect()
        .await;
    let connected = started.elapsed();
    let base = clients
        .iter()
        .map(|(_, w)| w["last_seq"].as_u64().unwrap())
        .max()
        .unwrap();
    // Up to CONNECT_AT_ONCE upgrades race, so the one the room accepted last is not
    // necessarily the last in this list; that one is welcomed with everyone.
    let most = clients
        .iter()
        .map(|(_, w)| w["members"].as_array().unwrap().len())
        .max()
        .unwrap();
    assert_eq!(
        most, CLIENTS,
        "the last client accepted is welcomed with everyone"
    );

    // Every client reads on its own task; the first SENDERS also publish, all at once.
    let total = SENDERS * PER_SENDER;
    let readers = clients
        .into_iter()
        .enumerate()
        .map(|(i, (mut c, _))| {
            tokio::spawn(async move {
                let mut got = Vec::with_capacity(total);
                if i < SENDERS {
                    for n in 0..PER_SENDER {
                        c.publish(json!({"sender": i, "n": n})).await;
                    }
                }
                while got.len() < total {
                    let m = next_message(&mut c).await;
                    got.push((m["seq"].as_u64().unwrap(), m["data"].clone()));
                }
                (i, got, c)
            })
        })
        .collect::<Vec<_>>();

    let mut reference: Option<Vec<(u64, Value)>> = None;
    let mut sockets = Vec::new();
    for r in readers {
        let (i, got, c) = r.await.unwrap();
        sockets.push(c);
        match &reference {
            None => {
                // Gap-free seqs right after the room's state at join, each sender's
                // messages in the order it sent them, nothing twice.
                let seqs: Vec<u64> = got.iter().map(|(s, _)| *s).collect();
                let want: Vec<u64> = (base + 1..=base + total as u64).collect();
                assert_eq!(seqs, want, "client {i}");
                for sender in 0..SENDERS {
                    let ns: Vec<u64> = got
                        .iter()
                        .filter(|(_, d)| d["sender"] == sender)
                        .map(|(_, d)| d["n"].as_u64().unwrap())
                        .collect();
                    assert_eq!(ns, (0..PER_SENDER as u64).collect::<Vec<_>>());
                }
                reference = Some(got);
            }
            Some(want) => assert_eq!(&got, want, "client {i} saw another order"),
        }
    }
    let delivered = started.elapsed();
    eprintln!(
        "crowd: {CLIENTS} clients connected in {connected:?}; {total} messages x {CLIENTS} \
         delivered after {delivered:?}"
    );
    // The runtime stops with the test process; dropping the sockets is enough.
    drop(sockets);
}
