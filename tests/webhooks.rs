//! End to end: webhooks (`WEBHOOK_URL`, `WEBHOOK_SECRET`, `WEBHOOK_MESSAGE_ROOMS`) to a
//! real receiver on loopback (`roomgate_harness::loopback`).
//!
//! The receiver first fails (500), then recovers. Checked: every event of the room
//! arrives (`room.occupied`, `member.joined` per user not per tab, `message.published`
//! for a listed room only, `member.left`, `room.vacated`), in order, with ids that count
//! up without a gap once duplicates are dropped; every batch carries a valid
//! `Roomgate-Signature`; failed batches were retried; the room's messages went out while
//! the receiver was failing, and while it held a delivery unanswered; and the admin
//! stats show the backlog draining.
//!
//! Run: `cargo test --test webhooks` (builds the Worker first if `src/` changed).
use roomgate_harness::loopback::{Answer, Loopback};
use roomgate_harness::runtime::{Server, ADMIN_TOKEN};
use roomgate_harness::tokens::token_for;
use roomgate_harness::ws::Auth;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

const SECRET: &str = "webhook-test-secret-0123456789abcdef-0123";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks `Roomgate-Signature: t=<t>,v1=<hex>` against the body; returns `t`.
fn verify(signature: &str, body: &str) -> u64 {
    let (t, v1) = signature
        .split_once(',')
        .and_then(|(t, v)| Some((t.strip_prefix("t=")?, v.strip_prefix("v1=")?)))
        .unwrap_or_else(|| panic!("signature shape: {signature}"));
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    assert_eq!(v1, hex(&mac.finalize().into_bytes()), "signature of {body}");
    t.parse().unwrap()
}

#[tokio::test]
async fn events_survive_a_failing_receiver_and_arrive_in_order() {
    let hooks = Loopback::start().await;
    hooks.set("/hook", Answer::Status(500));
    let url = hooks.url("/hook");
    let s = Server::start(&[
        ("WEBHOOK_URL", url.as_str()),
        ("WEBHOOK_SECRET", SECRET),
        ("WEBHOOK_MESSAGE_ROOMS", "hook-*"),
        ("ALLOW_LOOPBACK_URLS", "true"),
    ]);
    let room = "hook-1";
    let (mut a, _) = s.join_welcomed(room, &token_for("wh-a", "A")).await;
    let (a2, _) = s.join_welcomed(room, &token_for("wh-a", "A")).await; // a second tab
    let (mut b, _) = s.join_welcomed(room, &token_for("wh-b", "B")).await;
    // Messages go out while the receiver fails.
    for n in 0..3 {
        a.publish(json!({"n": n})).await;
    }
    let mut seqs = Vec::new();
    while seqs.len() < 3 {
        let f = b.recv().await;
        if f["type"] == "message" {
            seqs.push(f["seq"].as_u64().unwrap());
        }
    }
    // A room outside WEBHOOK_MESSAGE_ROOMS reports presence but no messages.
    let (mut other, _) = s.join_welcomed("quiet-1", &token_for("wh-c", "C")).await;
    other.publish(json!("not reported")).await;
    other.recv_type("message").await;
    other.close().await;
    a2.close().await;
    b.close().await;
    a.close().await;

    // Retried while failing.
    let deadline = Instant::now() + Duration::from_secs(30);
    while hooks.seen("/hook").len() < 2 {
        assert!(Instant::now() < deadline, "no retry");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stats = s.room_stats(room, Some(ADMIN_TOKEN)).await;
    assert!(
        stats.json["webhook_backlog"].as_u64().unwrap() > 0,
        "{}",
        stats.text
    );

    // The receiver recovers; everything arrives.
    hooks.set("/hook", Answer::Json("{}".into()));
    let want_hook1 = [
        "room.occupied",
        "member.joined",
        "member.joined",
        "message.published",
        "message.published",
        "message.published",
        "member.left",
        "member.left",
        "room.vacated",
    ];
    let want_quiet = [
        "room.occupied",
        "member.joined",
        "member.left",
        "room.vacated",
    ];
    let deadline = Instant::now() + Duration::from_secs(60);
    let by_room = loop {
        let mut by_room: BTreeMap<String, BTreeMap<u64, Value>> = BTreeMap::new();
        for seen in hooks.seen("/hook") {
            let t = verify(&seen.headers["roomgate-signature"], &seen.body);
            assert!(t > 1_700_000_000);
            assert_eq!(seen.headers["content-type"], "application/json");
            let batch: Value = serde_json::from_str(&seen.body).unwrap();
            let mut last = 0;
            for e in batch["events"].as_array().unwrap() {
                let (r, n) = e["id"].as_str().unwrap().rsplit_once('/').unwrap();
                assert_eq!(r, e["room"].as_str().unwrap());
                let n: u64 = n.parse().unwrap();
                assert!(
                    n > last,
                    "events out of order within a batch: {}",
                    seen.body
                );
                last = n;
                if seen.status == 200 {
                    by_room
                        .entry(r.to_owned())
                        .or_default()
                        .insert(n, e.clone());
                }
            }
        }
        let done = by_room.get(room).map_or(0, |m| m.len()) == want_hook1.len()
            && by_room.get("quiet-1").map_or(0, |m| m.len()) == want_quiet.len();
        if done {
            break by_room;
        }
        assert!(
            Instant::now() < deadline,
            "not everything arrived: {by_room:#?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    for (name, want) in [(room, &want_hook1[..]), ("quiet-1", &want_quiet[..])] {
        let events = &by_room[name];
        let ns: Vec<u64> = events.keys().copied().collect();
        assert_eq!(
            ns,
            (1..=want.len() as u64).collect::<Vec<_>>(),
            "{name}: ids count up without a gap"
        );
        let kinds: Vec<&str> = events
            .values()
            .map(|e| e["type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, want, "{name}");
    }
    let events = &by_room[room];
    let joined: Vec<&str> = events
        .values()
        .filter(|e| e["type"] == "member.joined")
        .map(|e| e["user"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(joined, ["wh-a", "wh-b"], "one per user, not per tab");
    let published: Vec<u64> = events
        .values()
        .filter(|e| e["type"] == "message.published")
        .map(|e| e["message"]["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(published, seqs, "the messages, as clients got them");
    assert!(events
        .values()
        .all(|e| e["ts"].as_u64().unwrap() > 1_700_000_000_000));

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = s.room_stats(room, Some(ADMIN_TOKEN)).await;
        if stats.json["webhook_backlog"] == 0 {
            assert_eq!(stats.json["webhook_dropped"], 0, "{}", stats.text);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the backlog stays: {}",
            stats.text
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_webhook_url_must_be_https_or_allowed_loopback() {
    // Seeded with a usable configuration, then redeployed with an http webhook URL.
    let s = Server::start(&[("WEBHOOK_SECRET", SECRET)])
        .restart_with(&[("WEBHOOK_URL", "http://hooks.example/rg")]);
    let refused = s
        .connect("/ws/any", Auth::Subprotocol(&token_for("wh-x", "X")))
        .await
        .err()
        .expect("no socket with a bad WEBHOOK_URL");
    refused.expect(500, "misconfigured");
}

#[tokio::test]
async fn a_slow_receiver_does_not_hold_up_the_rooms_messages() {
    let hooks = Loopback::start().await;
    // Each delivery takes 4 s to answer (within the 5 s the room waits).
    hooks.set("/slow", Answer::Slow(Duration::from_secs(4), "{}".into()));
    let url = hooks.url("/slow");
    let s = Server::start(&[
        ("WEBHOOK_URL", url.as_str()),
        ("WEBHOOK_SECRET", SECRET),
        ("WEBHOOK_MESSAGE_ROOMS", "slow-*"),
        ("ALLOW_LOOPBACK_URLS", "true"),
    ]);
    let (mut a, _) = s.join_welcomed("slow-1", &token_for("sl-a", "A")).await;
    // The join's events are on their way: wait until the receiver holds that request.
    let deadline = Instant::now() + Duration::from_secs(10);
    while hooks.hits("/slow") == 0 {
        assert!(Instant::now() < deadline, "no delivery started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        hooks.seen("/slow").is_empty(),
        "the first delivery already finished"
    );
    // While it is pending, messages go round as usual.
    for n in 0..3 {
        a.publish(json!({"n": n})).await;
        assert_eq!(a.recv_message().await["data"]["n"], n);
    }
    assert!(
        hooks.seen("/slow").is_empty(),
        "the messages waited for the receiver"
    );
    // And they are reported once the receiver answers.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let published = hooks
            .seen("/slow")
            .iter()
            .filter(|r| r.status == 200)
            .flat_map(|r| {
                serde_json::from_str::<Value>(&r.body).unwrap()["events"]
                    .as_array()
                    .unwrap()
                    .clone()
            })
            .filter(|e| e["type"] == "message.published")
            .count();
        if published == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "messages not reported");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
