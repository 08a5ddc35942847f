//! Room limits, end to end: the rate limit (per user in a room, history answers
//! included), the connection caps (per room and per user), one refresh check per socket
//! every 10 s, and the nesting bound on `data`.
//!
//! A client flooding a room gets `rate_limited` error frames for what it sent over its
//! limit and is closed with 1008, while the other members' messages all arrive, in `seq`
//! order; an upgrade to a full room is refused with 503 `room_full` and no socket; `data`
//! nested deeper than 32 levels is refused with `bad_frame`. No timings are asserted.
//!
//! Run: `cargo test --test room_limits` (from the repository root; builds the Worker first
//! if `src/` changed, and starts its own runtimes).
use roomgate_harness::runtime::{server, Server};
use roomgate_harness::tokens::token_for;
use roomgate_harness::ws::{Auth, Client, Event, FRAME_TIMEOUT};

use futures_util::SinkExt;
use serde_json::{json, Value};
use std::sync::OnceLock;
use tokio_tungstenite::tungstenite::Message;

/// Frames the flooder sends as fast as it can: far more than the default burst (40)
/// plus the refused frames that close it (40).
const FLOOD: usize = 500;
/// Messages each well-behaved member publishes during the flood.
const EACH: usize = 5;

/// A runtime whose rooms take at most 3 sockets.
fn small_rooms() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| Server::start(&[("MAX_CONNECTIONS_PER_ROOM", "3")]))
}

/// Reads `c`'s frames until it has seen every message in `want` (as `data`). Returns the
/// `seq` of every message frame it got on the way, in arrival order, and every other
/// frame it got (presence among them: a `leave` may come before the last message).
async fn until_seen(c: &mut Client, want: &[Value]) -> (Vec<u64>, Vec<Value>) {
    let mut missing: Vec<Value> = want.to_vec();
    let mut seqs = Vec::new();
    let mut others = Vec::new();
    while !missing.is_empty() {
        let f = match c.next_event().await {
            Event::Frame(f) => f,
            Event::Closed(code) => panic!("closed ({code:?}) with {missing:?} missing"),
        };
        if f["type"] == "message" {
            seqs.push(f["seq"].as_u64().unwrap());
            missing.retain(|d| *d != f["data"]);
        } else {
            others.push(f);
        }
    }
    (seqs, others)
}

#[tokio::test]
async fn a_flooder_is_limited_and_closed_while_the_others_lose_nothing() {
    let s = server();
    let room = "limits-flood";
    let (mut flooder, _) = s.join_welcomed(room, &token_for("flooder", "F")).await;
    let (mut bob, _) = s.join_welcomed(room, &token_for("bob-f", "Bob")).await;
    let (mut carol, _) = s.join_welcomed(room, &token_for("carol-f", "Carol")).await;

    let flood = tokio::spawn(async move {
        let frame = json!({"type": "publish", "data": {"flood": true}}).to_string();
        for _ in 0..FLOOD {
            // The server may close the socket mid-flood: stop sending then.
            if flooder.ws.send(Message::text(frame.clone())).await.is_err() {
                break;
            }
        }
        let _ = flooder.ws.flush().await;
        let closed = flooder
            .closed_within(FRAME_TIMEOUT * 3)
            .await
            .expect("the flooder was never closed");
        closed
    });

    let mine = |who: &str| -> Vec<Value> {
        (0..EACH)
            .map(|i| json!({"from": who, "n": i}))
            .collect::<Vec<_>>()
    };
    let (bobs, carols) = (mine("bob"), mine("carol"));
    for i in 0..EACH {
        bob.publish(bobs[i].clone()).await;
        carol.publish(carols[i].clone()).await;
    }
    let everything: Vec<Value> = bobs.iter().chain(&carols).cloned().collect();
    let is_flooders_leave = |f: &Value| f["type"] == "leave" && f["user"]["id"] == "flooder";
    // Whether each of bob and carol has already had the flooder's `leave`: it is
    // closed while they publish, so it may arrive between their messages.
    let mut left = [false, false];
    for (i, (name, c)) in [("bob", &mut bob), ("carol", &mut carol)]
        .into_iter()
        .enumerate()
    {
        let (seqs, others) = until_seen(c, &everything).await;
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "{name} got messages out of seq order: {seqs:?}"
        );
        left[i] = others.iter().any(is_flooders_leave);
    }

    let closed = flood.await.unwrap();
    assert_eq!(closed.code, Some(1008), "reason {:?}", closed.reason);
    assert_eq!(closed.reason, "rate limit exceeded");
    let limited = closed
        .frames
        .iter()
        .filter(|f| f["type"] == "error" && f["code"] == "rate_limited")
        .count();
    assert!(limited > 0, "no rate_limited frame before the close");
    // The dropped frames were not published: the flooder's own messages (its echo) are
    // at most what its bucket allowed, far fewer than it sent.
    let published = closed
        .frames
        .iter()
        .filter(|f| f["type"] == "message")
        .count();
    assert!(published < FLOOD / 2, "{published} of {FLOOD} published");
    for f in closed.frames.iter().filter(|f| f["type"] == "error") {
        assert_eq!(f["code"], "rate_limited", "{f}");
    }

    // The others carry on; the flooder's departure reaches them as a `leave`.
    for (c, left) in [&mut bob, &mut carol].into_iter().zip(left) {
        if left {
            continue;
        }
        loop {
            let f = c.recv().await;
            if f["type"] == "leave" {
                assert!(is_flooders_leave(&f), "{f}");
                break;
            }
        }
    }
    bob.publish(json!("after")).await;
    for c in [&mut bob, &mut carol] {
        until_seen(c, &[json!("after")]).await;
    }
    bob.close().await;
    carol.close().await;
}

#[tokio::test]
async fn a_full_room_refuses_the_upgrade_with_503() {
    let s = small_rooms();
    let room = "limits-full";
    let mut members = Vec::new();
    for i in 0..3 {
        let (c, _) = s
            .join_welcomed(room, &token_for(&format!("full-{i}"), "M"))
            .await;
        members.push(c);
    }
    let refused = match s
        .connect(
            &format!("/ws/{room}"),
            Auth::Subprotocol(&token_for("full-extra", "X")),
        )
        .await
    {
        Ok(_) => panic!("a fourth socket was opened in a room of 3"),
        Err(r) => r,
    };
    refused.expect(503, "room_full");
    assert_eq!(
        refused.json.as_object().map(|o| o.len()),
        Some(2),
        "{}",
        refused.body
    );
    // A second tab of a member counts like anyone else.
    match s
        .connect(
            &format!("/ws/{room}"),
            Auth::Subprotocol(&token_for("full-0", "M")),
        )
        .await
    {
        Ok(_) => panic!("a second tab got a socket in a full room"),
        Err(r) => r.expect(503, "room_full"),
    }

    // Other rooms are not affected.
    let (other, _) = s
        .join_welcomed("limits-other", &token_for("full-extra", "X"))
        .await;

    // The refused upgrades joined no one: past the members' own joins, no `join`.
    for (i, c) in members.iter_mut().enumerate() {
        for j in i + 1..3 {
            let f = c.recv_type("join").await;
            assert_eq!(f["user"]["id"], format!("full-{j}"));
        }
        c.expect_silence().await;
    }

    // Once one leaves, there is room again.
    let gone = members.pop().unwrap();
    gone.close().await;
    for c in members.iter_mut() {
        c.recv_type("leave").await;
    }
    let (mut late, welcome) = s.join_welcomed(room, &token_for("full-extra", "X")).await;
    assert_eq!(welcome["members"].as_array().unwrap().len(), 3);
    late.publish(json!("in")).await;
    assert_eq!(late.recv_type("message").await["data"], "in");

    for c in members.into_iter().chain([late, other]) {
        c.close().await;
    }
}

#[tokio::test]
async fn data_nested_deeper_than_32_levels_is_refused() {
    let s = server();
    let (mut a, _) = s
        .join_welcomed("limits-depth", &token_for("deep", "D"))
        .await;
    let nested = |n: usize| {
        format!(
            r#"{{"type":"publish","data":{}0{}}}"#,
            "[".repeat(n),
            "]".repeat(n)
        )
    };
    a.send_text(&nested(32)).await;
    let m = a.recv_type("message").await;
    assert_eq!(m["seq"], 1);
    a.send_text(&nested(33)).await;
    let e = a.recv_type("error").await;
    assert_eq!(e["code"], "bad_frame", "{e}");
    // Brackets inside strings are text, not nesting.
    let text = "[".repeat(100);
    a.publish(json!(text)).await;
    assert_eq!(a.recv_type("message").await["data"], text);
    // The socket stays usable and the refused frame took no seq.
    a.publish(json!("ok")).await;
    assert_eq!(a.recv_type("message").await["seq"], 3);
    a.close().await;
}

#[tokio::test]
async fn one_user_gets_at_most_ten_sockets_per_room() {
    let s = server();
    let token = token_for("seat-taker", "Seats");
    let mut held = Vec::new();
    for _ in 0..10 {
        held.push(s.join_welcomed("limits-seats", &token).await.0);
    }
    let refused = s
        .connect("/ws/limits-seats", Auth::Subprotocol(&token))
        .await
        .err()
        .expect("an 11th socket of one user is refused");
    refused.expect(429, "too_many_connections");
    // Everyone else still gets in, and so does the same user in another room.
    let (other, _) = s
        .join_welcomed("limits-seats", &token_for("seat-other", "Other"))
        .await;
    let (elsewhere, _) = s.join_welcomed("limits-seats-2", &token).await;
    // A seat given back can be taken again.
    held.pop().unwrap().close().await;
    let again = loop {
        match s
            .connect("/ws/limits-seats", Auth::Subprotocol(&token))
            .await
        {
            Ok(c) => break c,
            // The room may not have seen the close yet.
            Err(r) if r.status == 429 => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await
            }
            Err(r) => panic!("refused {} {}", r.status, r.body),
        }
    };
    for c in held.into_iter().chain([other, elsewhere, again]) {
        c.close().await;
    }
}

/// Publishes `n` frames on `c` as fast as it can and returns how many were refused
/// with `rate_limited` (reading until every one is accounted for).
async fn burst(c: &mut Client, n: usize, tag: &str) -> usize {
    for i in 0..n {
        c.send_json(json!({"type": "publish", "data": format!("{tag}-{i}")}))
            .await;
    }
    let (mut passed, mut refused) = (0, 0);
    while passed + refused < n {
        let f = c.recv().await;
        match (f["type"].as_str(), f["code"].as_str()) {
            (Some("message"), _) if f["data"].as_str().is_some_and(|d| d.starts_with(tag)) => {
                passed += 1
            }
            (Some("error"), Some("rate_limited")) => refused += 1,
            _ => {}
        }
    }
    refused
}

#[tokio::test]
async fn a_users_sockets_share_one_rate_limit() {
    let s = server();
    let token = token_for("rate-sharer", "Sharer");
    let (mut a, _) = s.join_welcomed("limits-shared-rate", &token).await;
    let (mut b, _) = s.join_welcomed("limits-shared-rate", &token).await;
    // The default bucket holds 40 frames: the first socket spends them all.
    assert_eq!(burst(&mut a, 40, "a").await, 0, "a full bucket passes 40");
    // A second socket of the same user finds the same bucket empty.
    assert!(
        burst(&mut b, 5, "b").await > 0,
        "the second socket has no bucket of its own"
    );
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn a_history_answer_costs_rate_tokens_in_proportion_to_its_size() {
    let s = small_frames();
    let room = "limits-history-cost";
    let (mut writer, _) = s.join_welcomed(room, &token_for("hist-writer", "W")).await;
    // 30 kept messages of about 100 bytes each: some 3 KB of history.
    burst(&mut writer, 30, "h").await;
    let (mut reader, _) = s.join_welcomed(room, &token_for("hist-reader", "R")).await;
    reader
        .send_json(json!({"type": "history", "limit": 30}))
        .await;
    let page = reader.recv_type("history").await;
    assert_eq!(page["messages"].as_array().map(Vec::len), Some(30));
    // With 64-byte frames that page cost far more than the reader's 40 tokens: its next
    // frame is refused, though it sent only one before.
    reader
        .send_json(json!({"type": "publish", "data": "after the page"}))
        .await;
    let next = reader.recv_type("error").await;
    assert_eq!(next["code"], "rate_limited", "{next}");
    writer.close().await;
    reader.close().await;
}

/// A runtime whose frames are at most 64 bytes.
fn small_frames() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| Server::start(&[("MAX_FRAME_BYTES", "64")]))
}

#[tokio::test]
async fn a_socket_gets_one_refresh_check_every_ten_seconds() {
    let s = server();
    let (mut c, _) = s
        .join_welcomed("limits-refresh", &token_for("refresher", "R"))
        .await;
    let fresh = token_for("refresher", "R");
    c.send_json(json!({"type": "refresh", "token": fresh}))
        .await;
    c.recv_type("refreshed").await;
    c.send_json(json!({"type": "refresh", "token": fresh}))
        .await;
    let err = c.recv_type("error").await;
    assert_eq!(err["code"], "rate_limited", "{err}");
    // The socket stays and is served.
    c.publish(json!("still served")).await;
    assert_eq!(c.recv_type("message").await["data"], "still served");
    c.close().await;
}
