//! Single-use WebSocket tickets, end to end: `POST /ws-ticket` and their redemption with
//! `GET /ws/{room}?ticket=...`.
//!
//! - issuing needs a valid bearer token (401 `invalid_token` without one, with a bad or
//!   revoked one); the answer is `200 {"ticket", "expires_in" <= 30}`;
//! - a ticket opens exactly one socket, as the token's user (`welcome`), with
//!   `roomgate.v1` selected when offered; the second use is 401;
//! - a room-bound ticket opens that room only; used at another room it is 401 and used up;
//! - a ticket for a room the token's `rooms` claim does not grant is 403
//!   `room_forbidden` (at issue, and at redemption of an unbound ticket); a bad room name
//!   is 400 `invalid_room`;
//! - ten simultaneous redemptions of one ticket yield exactly one socket;
//! - the ticket never appears in the 101 response's headers;
//! - a revocation after issue stops the redemption;
//! - a ticket, when present, is the only credential looked at (a valid one beats tokens
//!   for someone else, a bad one does not fall back to a valid token);
//! - `/ws-ticket` answers other methods with 405 and `Allow: POST`;
//! - refusals checked before the ticket (no upgrade, bad room name) do not use it up;
//! - with `ALLOW_QUERY_TOKEN=false` (its own runtime) tickets still work.
//!
//! Run: `cargo test --test tickets` (from the repository root; builds the Worker if
//! `src/` changed and starts its own runtime).
use roomgate_harness::admin::revoke_jti;
use roomgate_harness::http::{ticket, ticket_request, Reply};
use roomgate_harness::runtime::{server, Server};
use roomgate_harness::tokens::{claims, claims_of, mint, now, own_hs, token_for, with};
use roomgate_harness::ws::{upgrade_raw, Auth};

use futures_util::future::join_all;
use serde_json::json;

fn expect_401(r: &Reply, case: &str) {
    r.expect_error(401, "invalid_token", case);
    let challenge = r.header("www-authenticate").unwrap_or("");
    assert!(
        challenge.starts_with("Bearer"),
        "{case}: www-authenticate {challenge:?}"
    );
}

/// Redeems `ticket` at `room`, asserting it is refused with 401 (no socket).
async fn expect_ticket_refused(s: &Server, room: &str, ticket: &str, case: &str) {
    match s
        .connect(&format!("/ws/{room}?ticket={ticket}"), Auth::None)
        .await
    {
        Ok(mut c) => panic!("{case}: a socket was opened: {:?}", c.next_event().await),
        Err(r) => r.expect(401, "invalid_token"),
    }
}

#[tokio::test]
async fn issuing_needs_a_valid_bearer_token() {
    let s = server();
    let n = now();
    let expired = own_hs(
        None,
        &with(
            claims("tix-expired", "E"),
            json!({"iat": n - 7200, "nbf": n - 7200, "exp": n - 120}),
        ),
    );
    let wrong_secret = mint(
        b"not-the-secret-but-long-enough-0123456789abcdef",
        &json!({"alg": "HS256", "typ": "JWT"}),
        &claims("tix-forged", "F"),
    );
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no authorization", None),
        ("garbage bearer", Some("garbage".into())),
        ("expired token", Some(expired)),
        ("wrong secret", Some(wrong_secret)),
        ("empty bearer", Some(String::new())),
    ];
    for (case, bearer) in cases {
        let r = ticket_request(s, bearer.as_deref(), None).await;
        expect_401(&r, case);
    }
    // Another scheme is no bearer token.
    let token = token_for("tix-basic", "B");
    let r = Reply::from(
        s.http()
            .post(format!("{}/ws-ticket", s.url))
            .header("authorization", format!("Basic {token}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    expect_401(&r, "Basic scheme");

    // A revoked token gets no ticket.
    let jti = format!("tix-revoked-{}", now());
    let revoked = own_hs(None, &with(claims("tix-revoked", "R"), json!({"jti": jti})));
    assert_eq!(ticket_request(s, Some(&revoked), None).await.status, 200);
    revoke_jti(s, &jti).await;
    expect_401(
        &ticket_request(s, Some(&revoked), None).await,
        "revoked token",
    );
}

#[tokio::test]
async fn a_ticket_is_opaque_short_lived_and_random() {
    let s = server();
    let token = s.token("alice").await;
    let mut seen = Vec::new();
    for body in [None, Some(json!({})), Some(json!({"room": "tix-shape"}))] {
        let r = ticket_request(s, Some(&token), body.as_ref()).await;
        assert_eq!(r.status, 200, "{body:?}: {}", r.text);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("cache-control"), Some("no-store"), "{body:?}");
        let ticket = r.json["ticket"].as_str().expect("ticket").to_owned();
        let expires_in = r.json["expires_in"].as_u64().expect("expires_in");
        assert!(
            (1..=30).contains(&expires_in),
            "{body:?}: expires_in {expires_in}"
        );
        assert_eq!(ticket.len(), 43, "{ticket}");
        assert!(
            ticket
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{ticket}"
        );
        assert!(
            !token.contains(&ticket) && !ticket.contains('.'),
            "not derived from the JWT"
        );
        assert_eq!(
            r.json.as_object().unwrap().len(),
            2,
            "exactly ticket and expires_in: {}",
            r.text
        );
        seen.push(ticket);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 3, "every ticket is new");
}

#[tokio::test]
async fn a_ticket_opens_one_socket_once_as_the_tokens_user() {
    let s = server();
    let token = s.token("bob").await;
    let sub = claims_of(&token)["sub"].as_str().unwrap().to_owned();

    // Offered roomgate.v1: selected.
    let t = ticket(s, &token, None).await;
    let path = format!("/ws/tix-once?ticket={t}");
    let mut c = s
        .connect_with(
            &path,
            Auth::None,
            &[("sec-websocket-protocol", "roomgate.v1")],
        )
        .await
        .unwrap_or_else(|r| panic!("first use refused: {} {}", r.status, r.body));
    assert_eq!(c.protocol.as_deref(), Some("roomgate.v1"));
    let welcome = c.recv_type("welcome").await;
    assert_eq!(welcome["user"], json!({"id": sub, "name": "Bob"}));
    assert_eq!(welcome["room"], "tix-once");

    // Second use, while the first socket is still open, and after it closed.
    expect_ticket_refused(s, "tix-once", &t, "second use").await;
    c.close().await;
    expect_ticket_refused(s, "tix-once", &t, "third use").await;

    // Not offered: nothing selected.
    let t = ticket(s, &token, None).await;
    let mut c = s
        .connect(&format!("/ws/tix-once?ticket={t}"), Auth::None)
        .await
        .unwrap_or_else(|r| panic!("refused: {} {}", r.status, r.body));
    assert_eq!(c.protocol, None);
    assert_eq!(c.recv_type("welcome").await["user"]["id"], sub);
    c.close().await;
}

#[tokio::test]
async fn a_room_bound_ticket_opens_that_room_only() {
    let s = server();
    let token = s.token("carol").await;
    let sub = claims_of(&token)["sub"].as_str().unwrap().to_owned();

    let t = ticket(s, &token, Some("tix-a")).await;
    let (c, welcome) = {
        let mut c = s
            .connect(&format!("/ws/tix-a?ticket={t}"), Auth::None)
            .await
            .unwrap_or_else(|r| panic!("bound room refused: {} {}", r.status, r.body));
        let w = c.recv_type("welcome").await;
        (c, w)
    };
    assert_eq!(welcome["user"]["id"], sub);
    assert_eq!(welcome["room"], "tix-a");
    c.close().await;

    // At another room: refused, and used up (README: a mismatch uses the ticket).
    let t = ticket(s, &token, Some("tix-a")).await;
    expect_ticket_refused(s, "tix-b", &t, "bound ticket at another room").await;
    expect_ticket_refused(s, "tix-a", &t, "bound ticket after the mismatch").await;

    // An unbound ticket opens any room.
    let t = ticket(s, &token, None).await;
    let mut c = s
        .connect(&format!("/ws/tix-b?ticket={t}"), Auth::None)
        .await
        .unwrap_or_else(|r| panic!("unbound refused: {} {}", r.status, r.body));
    assert_eq!(c.recv_type("welcome").await["room"], "tix-b");
    c.close().await;
}

#[tokio::test]
async fn ticket_rooms_must_be_granted_and_valid() {
    let s = server();
    let token = own_hs(
        None,
        &with(claims("tix-granted", "G"), json!({"rooms": ["other"]})),
    );

    let r = ticket_request(s, Some(&token), Some(&json!({"room": "tix-lobby"}))).await;
    r.expect_error(403, "room_forbidden", "room not in the rooms claim");
    let r = ticket_request(s, Some(&token), Some(&json!({"room": "other"}))).await;
    assert_eq!(r.status, 200, "granted room: {}", r.text);

    // An unbound ticket carries the grants: the gate still refuses other rooms.
    let t = ticket(s, &token, None).await;
    // (Not `connect`: its replay of a refusal would redeem the ticket a second time.)
    match upgrade_raw(s, &format!("/ws/tix-lobby?ticket={t}"), &[]).await {
        Ok(_) => panic!("an unbound ticket opened a room its token does not grant"),
        Err((status, body)) => {
            assert_eq!(status, 403, "{body}");
            // The body may be cut short with the response head; judge it when whole.
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) {
                assert_eq!(v["error"], "room_forbidden", "{body}");
            }
        }
    }

    let valid = token_for("tix-rooms", "R");
    let long = "a".repeat(65);
    for room in ["bad name", "", "a/b", "semi;colon", "café", long.as_str()] {
        let r = ticket_request(s, Some(&valid), Some(&json!({"room": room}))).await;
        r.expect_error(400, "invalid_room", &format!("room {room:?}"));
    }
}

#[tokio::test]
async fn simultaneous_redemptions_of_one_ticket_open_exactly_one_socket() {
    let s = server();
    let token = s.token("alice").await;
    let t = ticket(s, &token, None).await;
    let path = format!("/ws/tix-race?ticket={t}");
    let attempts = join_all((0..10).map(|_| s.connect(&path, Auth::None))).await;
    let mut sockets = Vec::new();
    let mut refusals = Vec::new();
    for a in attempts {
        match a {
            Ok(c) => sockets.push(c),
            Err(r) => refusals.push(r),
        }
    }
    assert_eq!(
        sockets.len(),
        1,
        "exactly one winner; refusals: {:?}",
        refusals
            .iter()
            .map(|r| (r.status, r.body.clone()))
            .collect::<Vec<_>>()
    );
    for r in &refusals {
        r.expect(401, "invalid_token");
    }
    let mut winner = sockets.pop().unwrap();
    let welcome = winner.recv_type("welcome").await;
    assert_eq!(
        welcome["members"].as_array().map(Vec::len),
        Some(1),
        "{welcome}"
    );
    winner.close().await;
}

#[tokio::test]
async fn the_ticket_never_appears_in_the_101_response() {
    let s = server();
    let token = s.token("bob").await;
    for offered in [None, Some("roomgate.v1")] {
        let t = ticket(s, &token, None).await;
        let headers: Vec<(&str, &str)> = offered
            .map(|p| vec![("sec-websocket-protocol", p)])
            .unwrap_or_default();
        let (ws, response) = upgrade_raw(s, &format!("/ws/tix-echo?ticket={t}"), &headers)
            .await
            .unwrap_or_else(|(status, body)| panic!("refused: {status} {body}"));
        assert_eq!(response.status().as_u16(), 101);
        for (name, value) in response.headers() {
            let value = String::from_utf8_lossy(value.as_bytes());
            assert!(
                !value.contains(&t) && !name.as_str().contains(&t.to_ascii_lowercase()),
                "{offered:?}: header {name}: {value} echoes the ticket"
            );
            assert!(
                !value.contains(&token),
                "{offered:?}: header {name} echoes the token"
            );
        }
        assert_eq!(
            response
                .headers()
                .get("sec-websocket-protocol")
                .map(|v| v.to_str().unwrap()),
            offered,
            "selected protocol"
        );
        drop(ws);
    }
}

#[tokio::test]
async fn a_revocation_after_issue_stops_the_redemption() {
    let s = server();
    let jti = format!("tix-late-revoke-{}", now());
    let token = own_hs(None, &with(claims("tix-late", "L"), json!({"jti": jti})));
    let t = ticket(s, &token, None).await;
    revoke_jti(s, &jti).await;
    expect_ticket_refused(s, "tix-late", &t, "ticket of a token revoked after issue").await;
}

#[tokio::test]
async fn a_ticket_is_the_only_credential_looked_at() {
    let s = server();
    let token = s.token("carol").await;
    let sub = claims_of(&token)["sub"].as_str().unwrap().to_owned();
    let other = token_for("tix-other-user", "Other");

    // A valid ticket wins over a token for someone else in every other transport.
    let t = ticket(s, &token, None).await;
    let protocols = format!("roomgate.v1, bearer.{other}");
    let mut c = s
        .connect_with(
            &format!("/ws/tix-only?ticket={t}&token={other}"),
            Auth::Header(&other),
            &[("sec-websocket-protocol", protocols.as_str())],
        )
        .await
        .unwrap_or_else(|r| panic!("refused: {} {}", r.status, r.body));
    assert_eq!(c.protocol.as_deref(), Some("roomgate.v1"));
    assert_eq!(c.recv_type("welcome").await["user"]["id"], sub);
    c.close().await;

    // A bad ticket is refused even next to a valid token: no fallback.
    let bogus = "B".repeat(43);
    for (what, auth) in [
        ("subprotocol", Auth::Subprotocol(&token)),
        ("header", Auth::Header(&token)),
        ("query", Auth::Query(&token)),
    ] {
        match s
            .connect(&format!("/ws/tix-only?ticket={bogus}"), auth)
            .await
        {
            Ok(_) => panic!("{what}: an unknown ticket fell back to the token"),
            Err(r) => r.expect(401, "invalid_token"),
        }
    }
}

#[tokio::test]
async fn ws_ticket_only_answers_post() {
    let s = server();
    let token = token_for("tix-methods", "M");
    for method in ["GET", "PUT", "DELETE"] {
        let r = Reply::from(
            s.http()
                .request(method.parse().unwrap(), format!("{}/ws-ticket", s.url))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        r.expect_error(405, "method_not_allowed", method);
        assert_eq!(r.header("allow"), Some("POST"), "{method}");
    }
}

#[tokio::test]
async fn refusals_before_the_ticket_check_do_not_use_it_up() {
    let s = server();
    let token = s.token("alice").await;
    let sub = claims_of(&token)["sub"].as_str().unwrap().to_owned();
    let t = ticket(s, &token, None).await;

    // No upgrade (426) and a bad room name (400) are answered before the ticket is read.
    let r = Reply::from(
        s.http()
            .get(format!("{}/ws/tix-keep?ticket={t}", s.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.expect_error(426, "upgrade_required", "plain GET with a ticket");
    match s
        .connect(&format!("/ws/bad%20room?ticket={t}"), Auth::None)
        .await
    {
        Ok(_) => panic!("bad room name opened a socket"),
        Err(r) => r.expect(400, "invalid_room"),
    }

    // The ticket still works, once.
    let mut c = s
        .connect(&format!("/ws/tix-keep?ticket={t}"), Auth::None)
        .await
        .unwrap_or_else(|r| {
            panic!(
                "ticket used up by an earlier refusal: {} {}",
                r.status, r.body
            )
        });
    assert_eq!(c.recv_type("welcome").await["user"]["id"], sub);
    c.close().await;
}

#[tokio::test]
async fn tickets_work_with_query_tokens_switched_off() {
    let s = tokio::task::spawn_blocking(|| Server::start(&[("ALLOW_QUERY_TOKEN", "false")]))
        .await
        .unwrap();
    let token = s.token("bob").await;
    let sub = claims_of(&token)["sub"].as_str().unwrap().to_owned();
    match s.connect("/ws/tix-noquery", Auth::Query(&token)).await {
        Ok(_) => panic!("?token= accepted with ALLOW_QUERY_TOKEN=false"),
        Err(r) => r.expect(401, "invalid_token"),
    }
    // The ticket is the way to keep JWTs out of URLs: it is not a query *token*.
    let t = ticket(&s, &token, Some("tix-noquery")).await;
    let mut c = s
        .connect(&format!("/ws/tix-noquery?ticket={t}"), Auth::None)
        .await
        .unwrap_or_else(|r| panic!("ticket refused: {} {}", r.status, r.body));
    assert_eq!(c.recv_type("welcome").await["user"]["id"], sub);
    c.close().await;
}

#[tokio::test]
async fn one_token_is_traded_for_at_most_its_tickets_per_minute() {
    let s = tokio::task::spawn_blocking(|| Server::start(&[("TICKETS_PER_MINUTE", "3")]))
        .await
        .unwrap();
    let token = token_for("tix-rate", "Rate");
    for i in 0..3 {
        let r = ticket_request(&s, Some(&token), None).await;
        assert_eq!(r.status, 200, "ticket {i}: {}", r.text);
    }
    let refused = ticket_request(&s, Some(&token), None).await;
    refused.expect_error(429, "rate_limited", "a 4th ticket within the minute");
    let retry: u64 = refused
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("429 with a whole-second Retry-After");
    assert!((1..=60).contains(&retry), "retry-after {retry}");
    // The limit is the token's: another token of the same user still gets tickets.
    let mut other = claims("tix-rate", "Rate");
    other["jti"] = json!("tix-rate-other");
    let other = mint(
        roomgate_harness::runtime::JWT_SECRET.as_bytes(),
        &json!({"alg": "HS256", "typ": "JWT"}),
        &other,
    );
    let r = ticket_request(&s, Some(&other), None).await;
    assert_eq!(r.status, 200, "another token: {}", r.text);
}
