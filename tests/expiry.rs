//! Token expiry on live sockets, end to end: a socket whose token runs out is sent
//! `expiring` first and then closed with 4001 `token_expired`, by the room's alarm, while
//! the room is otherwise idle; an in-band `refresh` with a new token for the same user
//! moves the expiry (`refreshed`), while a token for another user (`refresh_mismatch`) or
//! an invalid one (`invalid_token`) changes nothing.
//!
//! These tests are about time, so they wait: tokens live a few seconds, on a runtime
//! started with `CLOCK_LEEWAY_SECONDS=0` and `EXPIRY_WARNING_SECONDS=2`. Closes are awaited
//! with generous margins (the spec says "within a couple of seconds").
//!
//! Run: `cargo test --test expiry` (from the repository root; builds the Worker first if
//! `src/` changed, and starts its own runtime).
use roomgate_harness::runtime::{Server, JWT_SECRET};
use roomgate_harness::tokens::{claims, mint, now};
use roomgate_harness::ws::Client;

use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{json, Value};

/// Seconds before `exp` that `expiring` is sent on this runtime.
const WARNING_SECS: i64 = 2;
/// How long past a token's `exp` a close may take before the test fails.
const CLOSE_MARGIN: Duration = Duration::from_secs(5);

fn runtime() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        Server::start(&[
            ("CLOCK_LEEWAY_SECONDS", "0"),
            ("EXPIRY_WARNING_SECONDS", &WARNING_SECS.to_string()),
        ])
    })
}

/// A token for `sub` that expires `secs` from now, and that `exp`.
fn token_expiring_in(sub: &str, secs: i64) -> (String, i64) {
    let mut c = claims(sub, sub);
    let exp = now() + secs;
    c["exp"] = json!(exp);
    c["jti"] = json!(format!("{sub}-{exp}-{}", unique()));
    let token = mint(
        JWT_SECRET.as_bytes(),
        &json!({"alg": "HS256", "typ": "JWT"}),
        &c,
    );
    (token, exp)
}

fn unique() -> u64 {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// How long until `exp` has passed, plus the close margin.
fn until_closed(exp: i64) -> Duration {
    Duration::from_millis((exp * 1000 - now_ms()).max(0) as u64) + CLOSE_MARGIN
}

/// Asserts the socket is closed with 4001 after `expiring` (and nothing else) for `exp`,
/// not before `exp`.
async fn expect_warned_then_expired(c: &mut Client, exp: i64, case: &str) {
    let closed = c
        .closed_within(until_closed(exp))
        .await
        .unwrap_or_else(|| panic!("{case}: still open {CLOSE_MARGIN:?} after exp"));
    assert!(
        now_ms() >= exp * 1000 - 1000,
        "{case}: closed before its token expired"
    );
    assert_eq!(
        (closed.code, closed.reason.as_str()),
        (Some(4001), "token_expired"),
        "{case}"
    );
    assert_eq!(
        closed.frames,
        [json!({"type": "expiring", "expires_at": exp})],
        "{case}: exactly one expiring frame before the close"
    );
}

#[tokio::test]
async fn expired_socket_is_warned_then_closed_with_4001_in_an_idle_room() {
    let s = runtime();
    let room = "expiry-idle";
    let (bob_token, _) = token_expiring_in("exp-bob", 3600);
    let (mut bob, _) = s.join_welcomed(room, &bob_token).await;
    let (alice_token, exp) = token_expiring_in("exp-alice", 4);
    let (mut alice, welcome) = s.join_welcomed(room, &alice_token).await;
    assert_eq!(welcome["expires_at"], exp);
    assert_eq!(bob.recv_type("join").await["user"]["id"], "exp-alice");

    // Nobody sends anything from here: only the room's alarm can act.
    expect_warned_then_expired(&mut alice, exp, "idle room").await;

    // The rest of the room hears that she left, and carries on.
    let leave = bob.recv_type("leave").await;
    assert_eq!(leave["user"]["id"], "exp-alice");
    bob.publish(json!("still here")).await;
    assert_eq!(bob.recv_type("message").await["data"], "still here");
    bob.close().await;
}

#[tokio::test]
async fn refresh_moves_the_expiry() {
    let s = runtime();
    let (token, old_exp) = token_expiring_in("exp-refresher", 5);
    let (mut c, _) = s.join_welcomed("expiry-refresh", &token).await;

    let (fresh, new_exp) = token_expiring_in("exp-refresher", 120);
    c.send_json(json!({"type": "refresh", "token": fresh}))
        .await;
    assert_eq!(
        c.recv().await,
        json!({"type": "refreshed", "expires_at": new_exp})
    );

    // Past the old expiry (and its warning time): no `expiring`, no close.
    if let Some(e) = c.next_event_within(until_closed(old_exp)).await {
        panic!("expected nothing after the refresh, got {e:?}");
    }
    c.publish(json!(1)).await;
    assert_eq!(c.recv_type("message").await["data"], 1);
    c.close().await;
}

#[tokio::test]
async fn refresh_after_the_warning_warns_again_for_the_new_token() {
    let s = runtime();
    let (token, old_exp) = token_expiring_in("exp-late", 3);
    let (mut c, _) = s.join_welcomed("expiry-late-refresh", &token).await;
    assert_eq!(
        c.recv().await,
        json!({"type": "expiring", "expires_at": old_exp})
    );

    let (fresh, new_exp) = token_expiring_in("exp-late", 6);
    c.send_json(json!({"type": "refresh", "token": fresh}))
        .await;
    assert_eq!(
        c.recv().await,
        json!({"type": "refreshed", "expires_at": new_exp})
    );
    expect_warned_then_expired(&mut c, new_exp, "refreshed token").await;
}

#[tokio::test]
async fn refresh_for_another_user_is_refused_and_changes_nothing() {
    let s = runtime();
    let (token, exp) = token_expiring_in("exp-mismatch", 5);
    let (mut c, _) = s.join_welcomed("expiry-mismatch", &token).await;

    let (other, _) = token_expiring_in("exp-someone-else", 120);
    c.send_json(json!({"type": "refresh", "token": other}))
        .await;
    let err = c.recv_type("error").await;
    assert_eq!(err["code"], "refresh_mismatch", "{err}");
    assert!(err["message"].is_string());

    expect_warned_then_expired(&mut c, exp, "after a mismatched refresh").await;
}

#[tokio::test]
async fn invalid_refresh_tokens_get_an_error_and_change_nothing() {
    let s = runtime();
    let (token, exp) = token_expiring_in("exp-invalid", 6);
    let (mut c, _) = s.join_welcomed("expiry-invalid", &token).await;

    let header = json!({"alg": "HS256", "typ": "JWT"});
    let mut expired = claims("exp-invalid", "x");
    expired["exp"] = json!(now() - 10);
    let mut wrong_issuer = claims("exp-invalid", "x");
    wrong_issuer["iss"] = json!("someone-else");
    let cases: [(&str, Value); 5] = [
        ("garbage", json!("not-a-jwt")),
        (
            "wrong secret",
            json!(mint(
                b"another-secret-another-secret-0123",
                &header,
                &claims("exp-invalid", "x")
            )),
        ),
        (
            "expired",
            json!(mint(JWT_SECRET.as_bytes(), &header, &expired)),
        ),
        (
            "wrong issuer",
            json!(mint(JWT_SECRET.as_bytes(), &header, &wrong_issuer)),
        ),
        ("empty", json!("")),
    ];
    for (case, bad) in cases {
        c.send_json(json!({"type": "refresh", "token": bad})).await;
        let err = c.recv_type("error").await;
        assert_eq!(err["code"], "invalid_token", "{case}: {err}");
        assert!(
            !err["message"].as_str().unwrap_or("").is_empty(),
            "{case}: a reason"
        );
    }
    // Not a refresh at all: the frame is malformed.
    c.send_json(json!({"type": "refresh"})).await;
    assert_eq!(c.recv_type("error").await["code"], "bad_frame");

    expect_warned_then_expired(&mut c, exp, "after invalid refreshes").await;
}

#[tokio::test]
async fn extreme_time_claims_are_refused_at_the_gate_and_in_refresh_and_the_room_serves_on() {
    let s = runtime();
    let (token, _) = token_expiring_in("exp-extreme", 120);
    let (mut c, _) = s.join_welcomed("expiry-extreme", &token).await;
    let header = json!({"alg": "HS256", "typ": "JWT"});
    let values = [
        json!(i64::MIN),
        json!(i64::MAX),
        json!(-8_334_601_228_800_i64),
        json!(-1e13),
        json!(1e13),
        json!(1e12),
        json!("1800000000"),
    ];
    for claim in ["exp", "nbf", "iat"] {
        for value in &values {
            let mut bad = claims("exp-extreme", "x");
            bad[claim] = value.clone();
            let bad = mint(JWT_SECRET.as_bytes(), &header, &bad);
            let case = format!("{claim} = {value}");
            c.send_json(json!({"type": "refresh", "token": bad})).await;
            let err = c.recv_type("error").await;
            assert_eq!(err["code"], "invalid_token", "refresh with {case}: {err}");
            let refused = s
                .connect(
                    "/ws/expiry-extreme",
                    roomgate_harness::ws::Auth::Header(&bad),
                )
                .await
                .err()
                .unwrap_or_else(|| panic!("gate accepted {case}"));
            refused.expect(401, "invalid_token");
        }
    }
    // The room still sequences and delivers, to this socket and to a new one.
    let (mut other, _) = s.join_welcomed("expiry-extreme", &token).await;
    c.publish(json!("still here")).await;
    for socket in [&mut c, &mut other] {
        let message = socket.recv_type("message").await;
        assert_eq!(message["data"], "still here");
    }
}
