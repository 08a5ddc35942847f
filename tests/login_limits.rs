//! End to end: failed-login limits on `POST /login` — per username and per client address
//! (`CF-Connecting-IP`), 429 `too_many_attempts` with `Retry-After`, a success resetting
//! the username's counter (not the address's), concurrent guesses, and the lock lifting
//! when the window has passed.
//!
//! Run with `cargo test --test login_limits` from the repository root (builds the Worker
//! first if `src/` changed, then serves it on workerd through Miniflare; see tests/harness).
//!
//! Tests run in parallel against one runtime, so each uses its own usernames and its own
//! addresses (documentation ranges, sent as `CF-Connecting-IP`; without the header
//! Miniflare fills in 127.0.0.1 for every client). The default limit applies: 5 failures
//! within 60 s.
use roomgate_harness::http::Reply;
use roomgate_harness::runtime::{server, Server, ADMIN_TOKEN};

use std::sync::OnceLock;
use std::time::Duration;

use serde_json::json;

const MAX_FAILURES: usize = 5;
const WRONG: &str = "not-the-password";

/// Creates a user through the admin API; its password is `<username>-password`.
async fn create_user(s: &Server, username: &str) -> String {
    let password = format!("{username}-password");
    let res = s
        .http()
        .put(format!("{}/admin/users/{username}", s.url))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"password": password, "name": username}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "create {username}");
    password
}

/// `POST /login` from the client address `ip`.
async fn login_from(s: &Server, ip: &str, username: &str, password: &str) -> Reply {
    let res = s
        .http()
        .post(format!("{}/login", s.url))
        .header("cf-connecting-ip", ip)
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap();
    Reply::from(res).await
}

/// Asserts a 429 `too_many_attempts` with a whole-second `Retry-After` in 1..=`window`,
/// and returns it.
fn expect_locked(res: &Reply, window: u64, case: &str) -> u64 {
    res.expect_error(429, "too_many_attempts", case);
    let retry: u64 = res
        .header("retry-after")
        .unwrap_or_else(|| panic!("{case}: 429 without retry-after"))
        .parse()
        .unwrap_or_else(|_| panic!("{case}: retry-after is not a whole number"));
    assert!((1..=window).contains(&retry), "{case}: retry-after {retry}");
    retry
}

/// A wrong password for `username` from each address; each must be a plain 401.
async fn fail_from_each(s: &Server, addresses: &[String], username: &str) {
    for ip in addresses {
        let res = login_from(s, ip, username, WRONG).await;
        res.expect_error(401, "invalid_credentials", &format!("{username} from {ip}"));
    }
}

fn addresses(prefix: &str, range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|i| format!("{prefix}{i}")).collect()
}

#[tokio::test]
async fn five_failures_lock_the_username_even_for_the_right_password() {
    let s = server();
    let password = create_user(s, "lim-lock").await;
    // One failure per address: only the username's counter reaches the limit.
    fail_from_each(s, &addresses("192.0.2.", 1..6), "lim-lock").await;

    let res = login_from(s, "192.0.2.6", "lim-lock", &password).await;
    expect_locked(&res, 60, "6th attempt, right password, fresh address");
    let res = login_from(s, "192.0.2.7", "LIM-Lock", WRONG).await;
    expect_locked(&res, 60, "another spelling of the username");

    // Another user from another address is unaffected.
    let other = create_user(s, "lim-other").await;
    let res = login_from(s, "192.0.2.8", "lim-other", &other).await;
    assert_eq!(res.status, 200, "other user: {}", res.text);
}

/// `GET /admin/users` from the client address `ip` with `token`.
async fn admin_from(s: &Server, ip: &str, token: &str) -> Reply {
    let res = s
        .http()
        .get(format!("{}/admin/users", s.url))
        .header("cf-connecting-ip", ip)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    Reply::from(res).await
}

#[tokio::test]
async fn failed_admin_authentications_lock_the_address() {
    let s = server();
    let ip = "198.51.100.200";
    for i in 0..MAX_FAILURES {
        admin_from(s, ip, &format!("guess-{i}-0123456789abcdef0123456789"))
            .await
            .expect_error(401, "unauthorized", &format!("guess {i}"));
    }
    let locked = admin_from(s, ip, "one-more-guess-0123456789abcdef0123").await;
    expect_locked(&locked, 60, "a guess past the limit");
    let right = admin_from(s, ip, ADMIN_TOKEN).await;
    expect_locked(&right, 60, "the right token from the locked address");
    // The address's login counter is its own: logins from it are not locked.
    let password = create_user(s, "lim-admin-guesser").await;
    let res = login_from(s, ip, "lim-admin-guesser", &password).await;
    assert_eq!(res.status, 200, "login from the address: {}", res.text);
    // Another address is unaffected.
    let res = admin_from(s, "198.51.100.201", ADMIN_TOKEN).await;
    assert_eq!(res.status, 200, "another address: {}", res.text);
}

#[tokio::test]
async fn unknown_usernames_are_limited_like_existing_ones() {
    let s = server();
    create_user(s, "lim-known").await;
    fail_from_each(s, &addresses("192.0.2.", 20..25), "lim-known").await;
    fail_from_each(s, &addresses("192.0.2.", 30..35), "lim-nobody").await;
    let known = login_from(s, "192.0.2.26", "lim-known", WRONG).await;
    let unknown = login_from(s, "192.0.2.36", "lim-nobody", WRONG).await;
    expect_locked(&known, 60, "existing user");
    expect_locked(&unknown, 60, "unknown user");
}

#[tokio::test]
async fn failures_across_usernames_lock_the_address() {
    let s = server();
    let password = create_user(s, "lim-spray").await;
    let ip = "198.51.100.10";
    for i in 0..MAX_FAILURES {
        let res = login_from(s, ip, &format!("lim-spray-{i}"), WRONG).await;
        res.expect_error(401, "invalid_credentials", &format!("spray {i}"));
    }
    let res = login_from(s, ip, "lim-spray", &password).await;
    expect_locked(&res, 60, "right password from the locked address");

    // The user is not locked: from another address the same login works.
    let res = login_from(s, "198.51.100.11", "lim-spray", &password).await;
    assert_eq!(res.status, 200, "from another address: {}", res.text);
}

#[tokio::test]
async fn ipv6_addresses_count_per_64_block() {
    let s = server();
    let password = create_user(s, "lim-six").await;
    for i in 1..=MAX_FAILURES {
        let ip = format!("2001:db8:a:b::{i}");
        let res = login_from(s, &ip, &format!("lim-six-{i}"), WRONG).await;
        res.expect_error(401, "invalid_credentials", &ip);
    }
    let res = login_from(s, "2001:db8:a:b:ffff::1", "lim-six", &password).await;
    expect_locked(&res, 60, "same /64");
    let res = login_from(s, "2001:db8:a:c::1", "lim-six", &password).await;
    assert_eq!(res.status, 200, "next /64: {}", res.text);
}

#[tokio::test]
async fn success_resets_the_username_counter() {
    let s = server();
    let password = create_user(s, "lim-reset").await;
    fail_from_each(s, &addresses("198.51.100.", 20..24), "lim-reset").await;
    let res = login_from(s, "198.51.100.24", "lim-reset", &password).await;
    assert_eq!(res.status, 200, "success at 4 failures: {}", res.text);

    // Four more: eight in the window, but only four since the success.
    fail_from_each(s, &addresses("198.51.100.", 25..29), "lim-reset").await;
    let res = login_from(s, "198.51.100.29", "lim-reset", &password).await;
    assert_eq!(res.status, 200, "not locked after the reset: {}", res.text);
}

#[tokio::test]
async fn success_does_not_reset_the_address_counter() {
    let s = server();
    let password = create_user(s, "lim-addr").await;
    let ip = "198.51.100.30";
    for i in 0..MAX_FAILURES - 1 {
        let res = login_from(s, ip, &format!("lim-addr-{i}"), WRONG).await;
        res.expect_error(401, "invalid_credentials", &format!("spray {i}"));
    }
    // A valid account from the same address does not buy it more guesses.
    let res = login_from(s, ip, "lim-addr", &password).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let res = login_from(s, ip, "lim-addr-last", WRONG).await;
    res.expect_error(401, "invalid_credentials", "5th failure");
    let res = login_from(s, ip, "lim-addr", &password).await;
    expect_locked(&res, 60, "after the 5th failure");
}

/// Guesses sent all at once pass the check before any has failed; the limit still holds:
/// exactly five are answered, the rest refused.
#[tokio::test]
async fn concurrent_guesses_get_at_most_five_answers() {
    let s = server();
    let password = create_user(s, "lim-burst").await;
    let guesses = (0..12).map(|i| {
        let ip = format!("203.0.113.{}", i + 1);
        async move { login_from(s, &ip, "lim-burst", &format!("guess-{i}")).await }
    });
    let replies = futures_util::future::join_all(guesses).await;
    let mut answered = 0;
    for (i, res) in replies.iter().enumerate() {
        match res.status {
            401 => answered += 1,
            _ => {
                expect_locked(res, 60, &format!("guess {i}"));
            }
        }
    }
    assert_eq!(answered, MAX_FAILURES, "401s in the burst");
    let res = login_from(s, "203.0.113.50", "lim-burst", &password).await;
    expect_locked(&res, 60, "right password after the burst");
}

/// A runtime with a 2-second window, so the lock lifts without a long sleep.
fn short_window() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| Server::start(&[("LOGIN_WINDOW_SECONDS", "2")]))
}

#[tokio::test]
async fn lock_lifts_when_the_window_has_passed() {
    let s = short_window();
    let password = create_user(s, "lim-window").await;
    let ip = "203.0.113.100";
    for i in 0..MAX_FAILURES {
        let res = login_from(s, ip, "lim-window", WRONG).await;
        res.expect_error(401, "invalid_credentials", &format!("failure {i}"));
    }
    let res = login_from(s, ip, "lim-window", &password).await;
    let retry = expect_locked(&res, 2, "locked");

    // Retry-After is rounded up to whole seconds; a little slack for the two clocks.
    tokio::time::sleep(Duration::from_millis(retry * 1000 + 300)).await;
    let res = login_from(s, ip, "lim-window", &password).await;
    assert_eq!(res.status, 200, "after Retry-After: {}", res.text);
}
