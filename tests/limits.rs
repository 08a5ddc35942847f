//! The gate's bounds and policies, end to end: sizes, origins and room grants.
//!
//! - Sizes (checked before anything is parsed, before the upgrade check): a URL over
//!   10,240 bytes → 414 `uri_too_long`; an `Authorization`, `Sec-WebSocket-Protocol` or
//!   `Origin` header over 8,704 bytes → 431 `header_too_large`; a token over 8 KiB that
//!   fits those bounds → 401 `invalid_token`, while a validly signed token of exactly
//!   8 KiB is accepted. The room name (400) is checked before the bounds.
//! - Origins (`ALLOWED_ORIGINS`): a listed origin is let in whatever its case and with a
//!   trailing `/`; an unlisted one gets 403 `origin_forbidden` (also with a valid ticket,
//!   which is then not used up); no `Origin` at all is let in.
//! - Grants (`ROOMS_OPEN_BY_DEFAULT=false`): a token without `rooms` gets 403
//!   `room_forbidden`; exact names and `prefix*` patterns open what they match and nothing
//!   else. `/login` puts the grants set with the admin API (`PUT /admin/users/{u}` with
//!   `"rooms"`) in the token: `team-*` enters `team-x` and is refused from `lobby`.
//!
//! Each configuration is its own runtime, started on first use and shared by its tests.
//! Run: `cargo test --test limits` (from the repository root; builds the Worker if `src/`
//! changed).
use roomgate_harness::admin::admin_put_user;
use roomgate_harness::http::{ticket, ticket_request, Reply};
use roomgate_harness::runtime::{server, Server};
use roomgate_harness::tokens::{claims, claims_of, own_hs, token_for, token_of_at_least, with};
use roomgate_harness::ws::{Auth, Refused};

use std::sync::OnceLock;

use serde_json::{json, Value};

/// The gate's documented bounds (README, docs/protocol.md).
const MAX_TOKEN_BYTES: usize = 8 * 1024;
const MAX_URL_BYTES: usize = 10_240;
const MAX_HEADER_BYTES: usize = 8_704;

/// With `ALLOWED_ORIGINS`, written with odd case, spaces and a trailing slash.
fn origins() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| {
        Server::start(&[(
            "ALLOWED_ORIGINS",
            "https://app.limits.test, https://Admin.Limits.test/",
        )])
    })
}

/// Rooms closed by default: only a `rooms` claim opens them.
fn closed() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| Server::start(&[("ROOMS_OPEN_BY_DEFAULT", "false")]))
}

/// Asserts the upgrade is refused with `status`/`code` (no socket).
async fn refused(
    s: &Server,
    path: &str,
    auth: Auth<'_>,
    headers: &[(&str, &str)],
    status: u16,
    code: &str,
    case: &str,
) -> Refused {
    match s.connect_with(path, auth, headers).await {
        Ok(mut c) => panic!("{case}: a socket was opened: {:?}", c.next_event().await),
        Err(r) => {
            assert_eq!(
                (r.status, r.json["error"].as_str()),
                (status, Some(code)),
                "{case}: {}",
                r.body
            );
            assert!(r.json["message"].is_string(), "{case}: {}", r.body);
            r
        }
    }
}

/// Asserts the upgrade opens a socket whose `welcome` is for `sub`.
async fn accepted(
    s: &Server,
    path: &str,
    auth: Auth<'_>,
    headers: &[(&str, &str)],
    sub: &str,
    case: &str,
) {
    let mut c = s
        .connect_with(path, auth, headers)
        .await
        .unwrap_or_else(|r| panic!("{case}: refused {} {}", r.status, r.body));
    let welcome = c.recv_type("welcome").await;
    assert_eq!(welcome["user"]["id"], sub, "{case}: {welcome}");
    c.close().await;
}

fn transports(token: &str) -> [(&'static str, Auth<'_>); 3] {
    [
        ("subprotocol", Auth::Subprotocol(token)),
        ("authorization header", Auth::Header(token)),
        ("query parameter", Auth::Query(token)),
    ]
}

/// A valid own HS256 token of exactly `len` bytes (the `sub` is varied until the
/// base64 steps land on `len`); returns it with its `sub`.
fn token_of_exactly(len: usize) -> (String, String) {
    for extra in 0..8 {
        let sub = format!("exact-{len}{}", "x".repeat(extra));
        let token = token_of_at_least(&sub, len);
        if token.len() == len {
            return (token, sub);
        }
    }
    panic!("no token of exactly {len} bytes");
}

/// A plain GET (no upgrade) with one extra header.
async fn plain_get(s: &Server, path: &str, header: Option<(&str, &str)>) -> Reply {
    let mut req = s.http().get(format!("{}{path}", s.url));
    if let Some((k, v)) = header {
        req = req.header(k, v);
    }
    Reply::from(req.send().await.unwrap()).await
}

// ---------------------------------------------------------------------------------------
// Sizes

#[tokio::test]
async fn a_url_over_the_bound_is_414() {
    let s = server();
    let token = token_for("limits-url", "U");
    let over = format!("/ws/limits?pad={}", "a".repeat(MAX_URL_BYTES));
    for (what, auth) in [
        ("token in a header", Auth::Header(&token)),
        ("no token", Auth::None),
    ] {
        refused(s, &over, auth, &[], 414, "uri_too_long", what).await;
    }
    // Before the upgrade check: a plain GET is 414 too, not 426.
    plain_get(s, &over, None)
        .await
        .expect_error(414, "uri_too_long", "plain GET");
    // A query token too long for the URL bound trips the URL bound first.
    let huge = token_of_at_least("limits-url-token", MAX_URL_BYTES);
    refused(
        s,
        "/ws/limits",
        Auth::Query(&huge),
        &[],
        414,
        "uri_too_long",
        "query token over the URL bound",
    )
    .await;

    // Under the bound, a long URL is fine.
    let under = format!("/ws/limits?pad={}", "a".repeat(MAX_URL_BYTES - 200));
    accepted(
        s,
        &under,
        Auth::Header(&token),
        &[],
        "limits-url",
        "URL under the bound",
    )
    .await;
}

#[tokio::test]
async fn a_header_over_the_bound_is_431() {
    let s = server();
    let huge = "h".repeat(MAX_HEADER_BYTES + 1);
    let authorization = format!("Bearer {huge}");
    let protocols = format!("roomgate.v1, bearer.{huge}");
    let origin = format!("https://{huge}.test");
    let cases = [
        ("authorization", authorization.as_str()),
        ("sec-websocket-protocol", protocols.as_str()),
        ("origin", origin.as_str()),
    ];
    for (name, value) in cases {
        let r = refused(
            s,
            "/ws/limits",
            Auth::None,
            &[(name, value)],
            431,
            "header_too_large",
            name,
        )
        .await;
        let message = r.json["message"].as_str().unwrap();
        assert!(message.contains(name), "{name}: message {message:?}");
        // Before the upgrade check: a plain GET is 431 too.
        if name != "sec-websocket-protocol" {
            plain_get(s, "/ws/limits", Some((name, value)))
                .await
                .expect_error(431, "header_too_large", &format!("plain GET {name}"));
        }
    }
    // Just under the bound, the same headers are read and judged on their merits.
    let fits = "h".repeat(MAX_HEADER_BYTES - "Bearer ".len());
    refused(
        s,
        "/ws/limits",
        Auth::Header(&fits),
        &[],
        401,
        "invalid_token",
        "authorization at the bound",
    )
    .await;
    // A big header the gate does not read is no reason to refuse.
    let token = token_for("limits-other-header", "O");
    let pad = "p".repeat(MAX_HEADER_BYTES + 100);
    accepted(
        s,
        "/ws/limits",
        Auth::Header(&token),
        &[("x-padding", pad.as_str())],
        "limits-other-header",
        "unread header over the bound",
    )
    .await;
}

#[tokio::test]
async fn a_token_over_8_kib_is_401_and_one_of_8_kib_is_accepted() {
    let s = server();
    let (at_bound, sub) = token_of_exactly(MAX_TOKEN_BYTES);
    assert_eq!(at_bound.len(), MAX_TOKEN_BYTES);
    for (what, auth) in transports(&at_bound) {
        accepted(
            s,
            "/ws/limits",
            auth,
            &[],
            &sub,
            &format!("8 KiB token via {what}"),
        )
        .await;
    }

    let (over, _) = token_of_exactly(MAX_TOKEN_BYTES + 1);
    let (well_over, _) = token_of_exactly(MAX_TOKEN_BYTES + 400);
    for token in [&over, &well_over] {
        // Under the header and URL bounds on every transport: the token bound decides.
        assert!(token.len() + "roomgate.v1, bearer.".len() <= MAX_HEADER_BYTES);
        for (what, auth) in transports(token) {
            let case = format!("{}-byte token via {what}", token.len());
            let r = refused(s, "/ws/limits", auth, &[], 401, "invalid_token", &case).await;
            assert!(
                r.headers.contains_key("www-authenticate"),
                "{case}: no www-authenticate"
            );
        }
    }
}

#[tokio::test]
async fn the_room_name_is_checked_before_the_size_bounds() {
    let s = server();
    let bad_room = "/ws/bad%20name";
    let long_url = format!("{bad_room}?pad={}", "a".repeat(MAX_URL_BYTES));
    refused(
        s,
        &long_url,
        Auth::None,
        &[],
        400,
        "invalid_room",
        "bad room, long URL",
    )
    .await;
    let huge = format!("Bearer {}", "h".repeat(MAX_HEADER_BYTES));
    refused(
        s,
        bad_room,
        Auth::None,
        &[("authorization", huge.as_str())],
        400,
        "invalid_room",
        "bad room, huge header",
    )
    .await;
    // And the size bounds before the token: an oversized garbage token is 431, not 401.
    refused(
        s,
        "/ws/limits",
        Auth::None,
        &[("authorization", huge.as_str())],
        431,
        "header_too_large",
        "huge garbage token",
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// Origins

#[tokio::test]
async fn only_listed_origins_may_open_sockets() {
    let s = origins();
    let token = token_for("limits-origin", "O");
    let listed = [
        "https://app.limits.test",
        "HTTPS://APP.LIMITS.TEST",
        "https://app.limits.test/",
        "https://admin.limits.test",
        "https://Admin.Limits.test/",
    ];
    for origin in listed {
        for (what, auth) in transports(&token) {
            let case = format!("listed {origin} via {what}");
            accepted(
                s,
                "/ws/limits-origin",
                auth,
                &[("origin", origin)],
                "limits-origin",
                &case,
            )
            .await;
        }
    }
    accepted(
        s,
        "/ws/limits-origin",
        Auth::Subprotocol(&token),
        &[],
        "limits-origin",
        "no Origin",
    )
    .await;

    let unlisted = [
        "https://evil.test",
        "http://app.limits.test",
        "https://app.limits.test:8443",
        "https://app.limits.test.evil.test",
        "https://limits.test",
        "null",
    ];
    for origin in unlisted {
        for (what, auth) in transports(&token) {
            let case = format!("unlisted {origin} via {what}");
            refused(
                s,
                "/ws/limits-origin",
                auth,
                &[("origin", origin)],
                403,
                "origin_forbidden",
                &case,
            )
            .await;
        }
    }

    // The origin is checked before the ticket: a refused origin does not use it up.
    let t = ticket(s, &token, None).await;
    let path = format!("/ws/limits-origin?ticket={t}");
    refused(
        s,
        &path,
        Auth::None,
        &[("origin", "https://evil.test")],
        403,
        "origin_forbidden",
        "ticket from an unlisted origin",
    )
    .await;
    accepted(
        s,
        &path,
        Auth::None,
        &[("origin", "https://app.limits.test")],
        "limits-origin",
        "the same ticket from a listed origin",
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// Room grants

#[tokio::test]
async fn rooms_closed_by_default_open_only_what_the_claim_grants() {
    let s = closed();
    let grant =
        |sub: &str, rooms: Value| own_hs(None, &with(claims(sub, sub), json!({ "rooms": rooms })));

    let no_claim = token_for("limits-noclaim", "N");
    for (what, auth) in transports(&no_claim) {
        refused(
            s,
            "/ws/lobby",
            auth,
            &[],
            403,
            "room_forbidden",
            &format!("no rooms claim via {what}"),
        )
        .await;
    }
    let seeded = s.token("alice").await;
    refused(
        s,
        "/ws/lobby",
        Auth::Subprotocol(&seeded),
        &[],
        403,
        "room_forbidden",
        "login token without grants",
    )
    .await;

    // (case, rooms, room, allowed)
    let cases = [
        ("exact match", json!(["lim-exact"]), "lim-exact", true),
        (
            "exact is not a prefix",
            json!(["lim-exact"]),
            "lim-exact-2",
            false,
        ),
        (
            "exact is case-sensitive",
            json!(["lim-exact"]),
            "LIM-EXACT",
            false,
        ),
        ("prefix match", json!(["team-*"]), "team-x", true),
        (
            "prefix match, bare prefix",
            json!(["team-*"]),
            "team-",
            true,
        ),
        ("prefix mismatch", json!(["team-*"]), "lobby", false),
        ("prefix mismatch, shorter", json!(["team-*"]), "team", false),
        (
            "one of several",
            json!(["a", "b.*", "lobby"]),
            "lobby",
            true,
        ),
        (
            "star grants every room",
            json!(["*"]),
            "anything-at-all",
            true,
        ),
        ("empty list grants nothing", json!([]), "lobby", false),
    ];
    for (i, (case, rooms, room, allowed)) in cases.into_iter().enumerate() {
        let sub = format!("limits-grant-{i}");
        let token = grant(&sub, rooms);
        let path = format!("/ws/{room}");
        if allowed {
            accepted(s, &path, Auth::Subprotocol(&token), &[], &sub, case).await;
        } else {
            refused(
                s,
                &path,
                Auth::Subprotocol(&token),
                &[],
                403,
                "room_forbidden",
                case,
            )
            .await;
        }
    }

    // Tickets follow the same rule.
    let r = ticket_request(s, Some(&no_claim), Some(&json!({"room": "lobby"}))).await;
    r.expect_error(403, "room_forbidden", "ticket without a rooms claim");
}

#[tokio::test]
async fn login_issues_the_grants_set_with_the_admin_api() {
    for (label, s) in [
        ("open by default", server()),
        ("closed by default", closed()),
    ] {
        let user = "dave";
        let password = "dave-test-password";
        let r = admin_put_user(
            s,
            user,
            &json!({"password": password, "name": "Dave", "rooms": ["team-*"]}),
        )
        .await;
        assert!(r.status == 201 || r.status == 200, "{label}: {}", r.text);
        assert_eq!(
            r.json["user"]["rooms"],
            json!(["team-*"]),
            "{label}: {}",
            r.text
        );

        let res = Reply::from(s.login(user, password).await).await;
        assert_eq!(res.status, 200, "{label}: {}", res.text);
        let token = res.json["token"].as_str().unwrap().to_owned();
        let sub = claims_of(&token)["sub"].as_str().unwrap().to_owned();
        assert_eq!(claims_of(&token)["rooms"], json!(["team-*"]), "{label}");
        accepted(
            s,
            "/ws/team-x",
            Auth::Subprotocol(&token),
            &[],
            &sub,
            &format!("{label}: team-x"),
        )
        .await;
        refused(
            s,
            "/ws/lobby",
            Auth::Subprotocol(&token),
            &[],
            403,
            "room_forbidden",
            &format!("{label}: lobby"),
        )
        .await;

        // Clearing the grants (null): the next token has no claim, and the default rules.
        let r = admin_put_user(s, user, &json!({"rooms": null})).await;
        assert_eq!(r.status, 200, "{label}: {}", r.text);
        let res = Reply::from(s.login(user, password).await).await;
        let token = res.json["token"].as_str().unwrap().to_owned();
        assert!(
            claims_of(&token).get("rooms").is_none(),
            "{label}: {}",
            claims_of(&token)
        );
        if std::ptr::eq(s, server()) {
            accepted(
                s,
                "/ws/lobby",
                Auth::Subprotocol(&token),
                &[],
                &sub,
                &format!("{label}: cleared"),
            )
            .await;
        } else {
            refused(
                s,
                "/ws/lobby",
                Auth::Subprotocol(&token),
                &[],
                403,
                "room_forbidden",
                &format!("{label}: cleared"),
            )
            .await;
        }
    }
}
