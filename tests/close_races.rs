//! Closing, end to end, when closes race each other: presence changes exactly once.
//!
//! The runtime may deliver a socket's close and error events in either order (or only
//! one of them), and a server-side close is followed by the client's own close frame. The
//! room must answer every client close frame and announce each departed user with
//! exactly one `leave` — none while the user still has a socket — and carry on.
//!
//! Covers: many sockets of one user closing at once; many users closing at once, some
//! cleanly and some by dropping the TCP connection without a close frame; a close right
//! behind a `publish` still in flight; a client close racing a server close (oversize
//! frame); and the room working normally afterwards.
//!
//! Run: `cargo test --test close_races` (from the repository root; builds the Worker first
//! if `src/` changed, and starts its own runtime).
use roomgate_harness::runtime::{server, Server, ADMIN_TOKEN};
use roomgate_harness::tokens::token_for;
use roomgate_harness::ws::{Client, Event, FRAME_TIMEOUT};

use std::collections::HashMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// How long an observer keeps listening after the last expected frame, so that a
/// duplicate `leave` would be seen.
const SETTLE: Duration = Duration::from_millis(1500);

/// Sends a close frame with `code` and returns the code of the server's answering close
/// frame (`None`: the connection ended without one).
async fn close_with(mut c: Client, code: u16) -> Option<u16> {
    c.ws.send(Message::Close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: "bye".into(),
    })))
    .await
    .unwrap();
    loop {
        match tokio::time::timeout(FRAME_TIMEOUT, c.ws.next()).await {
            Err(_) => panic!("no answer to a close frame"),
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_)) | None) => return None,
        }
    }
}

/// Joins `n` sockets of one identity, each welcomed.
async fn join_many(s: &Server, room: &str, sub: &str, n: usize) -> Vec<Client> {
    let token = token_for(sub, sub);
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(s.join_welcomed(room, &token).await.0);
    }
    out
}

/// Reads frames on `c` until it has seen a `leave` for each of `users` and then nothing
/// more for [`SETTLE`]; returns every frame seen (for counting).
async fn frames_until_left(c: &mut Client, users: &[&str]) -> Vec<Value> {
    let mut frames = Vec::new();
    let left = |frames: &[Value], u: &str| {
        frames
            .iter()
            .any(|f| f["type"] == "leave" && f["user"]["id"] == u)
    };
    while !users.iter().all(|u| left(&frames, u)) {
        frames.push(c.recv().await);
    }
    while let Some(e) = c.next_event_within(SETTLE).await {
        match e {
            Event::Frame(v) => frames.push(v),
            Event::Closed(code) => panic!("observer closed: {code:?}"),
        }
    }
    frames
}

fn leaves_by_user(frames: &[Value]) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for f in frames.iter().filter(|f| f["type"] == "leave") {
        *out.entry(f["user"]["id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    out
}

/// The room still works: a newcomer is welcomed with exactly `members` (ids, any
/// order) plus itself, the observer sees its join and its message.
async fn room_still_works(s: &Server, room: &str, observer: &mut Client, members: &[&str]) {
    let (mut n, welcome) = s.join_welcomed(room, &token_for("newcomer", "N")).await;
    let mut ids: Vec<&str> = welcome["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut want: Vec<&str> = members.iter().copied().chain(["newcomer"]).collect();
    want.sort();
    assert_eq!(ids, want, "members after the closes");
    assert_eq!(observer.recv_type("join").await["user"]["id"], "newcomer");
    n.publish(json!("after")).await;
    assert_eq!(observer.recv_type("message").await["data"], "after");
    assert_eq!(n.recv_type("message").await["data"], "after");
    n.close().await;
    assert_eq!(observer.recv_type("leave").await["user"]["id"], "newcomer");
}

#[tokio::test]
async fn many_sockets_of_one_user_closing_at_once_leave_once() {
    let s = server();
    let room = "cr-one-user";
    let (mut observer, _) = s.join_welcomed(room, &token_for("cr-obs1", "O")).await;
    let mut tabs = join_many(s, room, "cr-tabs", 8).await;
    assert_eq!(observer.recv_type("join").await["user"]["id"], "cr-tabs");

    // Seven of eight go at once, half cleanly, half by dropping the connection: the user
    // still has a socket, so nobody is told anything.
    let last = tabs.pop().unwrap();
    let closes = tabs
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            tokio::spawn(async move {
                if i % 2 == 0 {
                    assert_eq!(close_with(c, 1000).await, Some(1000), "close answered");
                } else {
                    drop(c);
                }
            })
        })
        .collect::<Vec<_>>();
    for c in closes {
        c.await.unwrap();
    }
    if let Some(e) = observer.next_event_within(SETTLE).await {
        panic!("a user with a socket left must not leave: {e:?}");
    }

    // The last one goes: exactly one leave.
    assert_eq!(close_with(last, 4000).await, Some(4000), "own code echoed");
    let frames = frames_until_left(&mut observer, &["cr-tabs"]).await;
    assert_eq!(
        leaves_by_user(&frames),
        HashMap::from([("cr-tabs".into(), 1)])
    );
    assert_eq!(frames.len(), 1, "{frames:?}");

    room_still_works(s, room, &mut observer, &["cr-obs1"]).await;
    observer.close().await;
}

#[tokio::test]
async fn many_users_closing_and_dropping_at_once_each_leave_once() {
    let s = server();
    let room = "cr-many-users";
    let (mut observer, _) = s.join_welcomed(room, &token_for("cr-obs2", "O")).await;
    let users: Vec<String> = (0..12).map(|i| format!("cr-u{i}")).collect();
    let mut sockets = Vec::new();
    for (i, u) in users.iter().enumerate() {
        // One to three sockets each.
        for c in join_many(s, room, u, 1 + i % 3).await {
            sockets.push((i, c));
        }
        assert_eq!(observer.recv_type("join").await["user"]["id"], u.as_str());
    }

    // Everyone goes at the same moment: users with an even index close cleanly, odd ones
    // drop the TCP connection; the sockets of users 0 mod 4 also publish right before
    // closing.
    let publishers = sockets.iter().filter(|(i, _)| i % 4 == 0).count();
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(sockets.len()));
    let tasks = sockets
        .into_iter()
        .map(|(i, mut c)| {
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                if i % 4 == 0 {
                    c.publish(json!({"last words from": i})).await;
                }
                if i % 2 == 0 {
                    // The answer may be a close frame, or (if the server was closing
                    // already) the end of the connection; never silence.
                    let _ = close_with(c, 1000).await;
                } else {
                    drop(c);
                }
            })
        })
        .collect::<Vec<_>>();
    for t in tasks {
        t.await.unwrap();
    }

    let ids: Vec<&str> = users.iter().map(String::as_str).collect();
    let frames = frames_until_left(&mut observer, &ids).await;
    let leaves = leaves_by_user(&frames);
    assert_eq!(leaves.len(), users.len(), "{leaves:?}");
    assert!(leaves.values().all(|&n| n == 1), "{leaves:?}");
    // Messages in flight when their senders closed were still delivered, in seq order.
    let messages: Vec<&Value> = frames.iter().filter(|f| f["type"] == "message").collect();
    assert_eq!(messages.len(), publishers, "{frames:?}");
    let seqs: Vec<u64> = messages
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    assert_eq!(
        frames.len(),
        users.len() + publishers,
        "only leaves and messages: {frames:?}"
    );

    // Closed and dropped sockets are gone from the runtime's list too (so the room
    // need not mark them departed in their attachments): only the observer is left.
    let stats = s.room_stats(room, Some(ADMIN_TOKEN)).await;
    assert_eq!(stats.status, 200, "{}", stats.text);
    let stats = stats.json;
    assert_eq!(stats["connections"], 1, "{stats}");
    assert_eq!(stats["runtime_sockets"], 1, "{stats}");

    room_still_works(s, room, &mut observer, &["cr-obs2"]).await;
    observer.close().await;
}

#[tokio::test]
async fn close_behind_an_in_flight_message_delivers_it_then_leaves_once() {
    let s = server();
    let room = "cr-in-flight";
    let (mut observer, _) = s.join_welcomed(room, &token_for("cr-obs3", "O")).await;
    for round in 0..5 {
        let (mut c, _) = s.join_welcomed(room, &token_for("cr-flier", "F")).await;
        assert_eq!(observer.recv_type("join").await["user"]["id"], "cr-flier");
        // Publish and close (or drop) back to back, without waiting for the echo.
        c.publish(json!({"round": round})).await;
        if round % 2 == 0 {
            let _ = close_with(c, 1000).await;
        } else {
            drop(c);
        }
        let m = observer.recv_type("message").await;
        assert_eq!(m["data"], json!({"round": round}));
        assert_eq!(observer.recv_type("leave").await["user"]["id"], "cr-flier");
        observer.expect_silence().await;
    }
    room_still_works(s, room, &mut observer, &["cr-obs3"]).await;
    observer.close().await;
}

#[tokio::test]
async fn client_close_racing_a_server_close_leaves_once() {
    let s = server();
    let room = "cr-server-close";
    let (mut observer, _) = s.join_welcomed(room, &token_for("cr-obs4", "O")).await;
    for round in 0..4 {
        let (mut c, _) = s.join_welcomed(room, &token_for("cr-big", "B")).await;
        assert_eq!(observer.recv_type("join").await["user"]["id"], "cr-big");
        // An oversize frame (the server closes with 1009) and, at once, the client's own
        // close frame or a dropped connection.
        c.send_text(&format!(
            r#"{{"type":"publish","data":"{}"}}"#,
            "x".repeat(20_000)
        ))
        .await;
        if round % 2 == 0 {
            let code = close_with(c, 1000).await;
            assert!(matches!(code, Some(1000 | 1009) | None), "{code:?}");
        } else {
            drop(c);
        }
        let frames = frames_until_left(&mut observer, &["cr-big"]).await;
        assert_eq!(frames.len(), 1, "one leave and nothing else: {frames:?}");
    }
    room_still_works(s, room, &mut observer, &["cr-obs4"]).await;
    observer.close().await;
}
