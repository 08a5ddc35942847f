//! Token lifetimes on live sockets: the `expiring` warning, the 4001 close, and in-band
//! refresh.
//!
//! A socket lives as long as the token it was opened (or last refreshed) with: it is
//! closed at `exp` plus the clock leeway the gate allows, and warned a configurable time
//! before `exp`. The Durable Object drives this with its one alarm, set to the earliest
//! deadline of any socket, so a hibernating room still closes on time without timers.
//! This module decides, from the connections and an injected clock (`now_ms`), who is
//! warned, who is closed and when the alarm fires next; the object only carries it out.

use super::state::Connection;
use crate::protocol::frames::{error_code, ServerFrame};
use crate::protocol::identity::Identity;

/// When sockets are warned and closed, relative to their token's `exp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryPolicy {
    /// Tolerance after `exp`, the same the gate allows (`CLOCK_LEEWAY_SECONDS`).
    pub leeway_secs: u64,
    /// `expiring` goes out this long before `exp` (0: never).
    pub warning_secs: u64,
}

impl ExpiryPolicy {
    /// The instant (unix ms) a connection with this `exp` is closed with 4001.
    pub fn close_at_ms(&self, exp: u64) -> u64 {
        exp.saturating_add(self.leeway_secs).saturating_mul(1000)
    }

    /// The instant (unix ms) it is sent `expiring`, unless warnings are off.
    pub fn warn_at_ms(&self, exp: u64) -> Option<u64> {
        (self.warning_secs > 0).then(|| exp.saturating_sub(self.warning_secs).saturating_mul(1000))
    }

    /// The next instant this connection needs the alarm: its warning (if not sent yet),
    /// else its close.
    fn next_ms(&self, c: &Connection) -> u64 {
        let close = self.close_at_ms(c.exp);
        match self.warn_at_ms(c.exp) {
            Some(warn) if !c.warned => warn.min(close),
            _ => close,
        }
    }
}

/// What the alarm does: the indices (into the connections passed in) to warn and to
/// close, and when the alarm should fire next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sweep {
    /// Connections to send `expiring` (the frame) and mark `warned`.
    pub warn: Vec<(usize, String)>,
    /// Connections to close with [`CloseCode::TokenExpired`](crate::protocol::close::CloseCode).
    pub expire: Vec<usize>,
    /// When the alarm should fire next (unix ms), or `None` when nobody needs it.
    pub next_alarm_ms: Option<u64>,
}

/// The alarm fired (or anything changed a deadline) at `now_ms`: who is past their
/// token's expiry, who is due a warning, and the earliest deadline left after that.
/// A connection due both at once is only closed: a warning for a socket that is
/// closing in the same breath says nothing.
pub fn sweep(connections: &[Connection], now_ms: u64, policy: &ExpiryPolicy) -> Sweep {
    let mut out = Sweep {
        warn: Vec::new(),
        expire: Vec::new(),
        next_alarm_ms: None,
    };
    for (i, c) in connections.iter().enumerate() {
        if now_ms >= policy.close_at_ms(c.exp) {
            out.expire.push(i);
            continue;
        }
        let mut after = c.clone();
        if policy.warn_at_ms(c.exp).is_some_and(|w| now_ms >= w) && !c.warned {
            out.warn
                .push((i, ServerFrame::Expiring { expires_at: c.exp }.to_json()));
            after.warned = true;
        }
        let next = policy.next_ms(&after);
        out.next_alarm_ms = Some(out.next_alarm_ms.map_or(next, |n| n.min(next)));
    }
    out
}

/// The earliest instant any of `connections` needs the alarm (unix ms).
pub fn next_alarm(connections: &[Connection], policy: &ExpiryPolicy) -> Option<u64> {
    connections.iter().map(|c| policy.next_ms(c)).min()
}

/// How often one socket's `refresh` may reach the revocation check (a D1 read): a
/// refresh sooner than this after the last checked one is answered `rate_limited`.
pub const REFRESH_CHECK_INTERVAL_MS: u64 = 10_000;

/// Whether a socket whose last `refresh` reached the revocation check at `last_ms` (if
/// ever) may have another one checked at `now_ms`.
pub fn refresh_check_due(last_ms: Option<u64>, now_ms: u64) -> bool {
    last_ms.is_none_or(|at| now_ms.saturating_sub(at) >= REFRESH_CHECK_INTERVAL_MS)
}

/// The answer to a `refresh` sooner than [`REFRESH_CHECK_INTERVAL_MS`] after the
/// socket's last checked one: nothing changes.
pub fn refresh_too_soon() -> String {
    let message = format!(
        "a refresh is checked at most once every {} s; try again later",
        REFRESH_CHECK_INTERVAL_MS / 1000
    );
    ServerFrame::Error {
        code: error_code::RATE_LIMITED,
        message: &message,
    }
    .to_json()
}

/// The answer to a `refresh` whose token's issuer publishes its keys at a URL that
/// cannot be reached now: nothing changes; the client may try again.
pub fn issuer_unavailable() -> String {
    ServerFrame::Error {
        code: error_code::ISSUER_UNAVAILABLE,
        message: "the token's issuer's keys cannot be fetched right now; try again soon",
    }
    .to_json()
}

/// What a `refresh` leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    /// Store `conn` as the socket's attachment and send `reply` (`refreshed`).
    Accepted { conn: Connection, reply: String },
    /// Send `reply` (an `error` frame); the connection keeps its old expiry.
    Rejected { reply: String },
}

/// A connection offered a new token. `verified` is the gate's verdict on it (the
/// identity, or why it was refused); `revoked` says whether that identity is revoked.
/// The token must be for the same user (`sub`); on success its `exp` and `jti` replace
/// the old ones and a new warning becomes due. The display name stays as it was at
/// join: presence frames must keep naming the member the room announced.
pub fn refresh(conn: &Connection, verified: Result<&Identity, &str>, revoked: bool) -> Refresh {
    let reject = |code: &str, message: &str| Refresh::Rejected {
        reply: ServerFrame::Error { code, message }.to_json(),
    };
    let identity = match verified {
        Err(reason) => return reject(error_code::INVALID_TOKEN, reason),
        Ok(identity) => identity,
    };
    if identity.sub != conn.user.id {
        return reject(
            error_code::REFRESH_MISMATCH,
            "the refresh token is for another user",
        );
    }
    if revoked {
        return reject(error_code::INVALID_TOKEN, "token has been revoked");
    }
    let conn = Connection {
        exp: identity.exp,
        iat: identity.iat,
        jti: identity.jti.clone(),
        warned: false,
        ..conn.clone()
    };
    let reply = ServerFrame::Refreshed {
        expires_at: conn.exp,
    }
    .to_json();
    Refresh::Accepted { conn, reply }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::room::state::tests::conn;
    use serde_json::Value;

    fn json(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    fn expiring_at(conn_id: &str, id: &str, exp: u64) -> Connection {
        Connection {
            exp,
            ..conn(conn_id, id, id)
        }
    }

    const E: u64 = 1_800_000_000;
    const MS: u64 = 1000;

    #[test]
    fn sweep_warns_then_expires_one_connection() {
        let p = ExpiryPolicy {
            leeway_secs: 0,
            warning_secs: 60,
        };
        let fresh = expiring_at("c1", "u1", E);
        let warned = Connection {
            warned: true,
            ..fresh.clone()
        };
        // (connection, now, warned?, expired?, next alarm)
        let cases = [
            (&fresh, (E - 61) * MS, false, false, Some((E - 60) * MS)),
            (&fresh, (E - 60) * MS, true, false, Some(E * MS)),
            (&fresh, (E - 1) * MS, true, false, Some(E * MS)),
            (&warned, (E - 30) * MS, false, false, Some(E * MS)),
            (&warned, E * MS - 1, false, false, Some(E * MS)),
            (&warned, E * MS, false, true, None),
            // Both due at once (the alarm was late): closed, not warned.
            (&fresh, E * MS + 500, false, true, None),
        ];
        for (i, (c, now, warn, expire, next)) in cases.into_iter().enumerate() {
            let s = sweep(std::slice::from_ref(c), now, &p);
            assert_eq!(!s.warn.is_empty(), warn, "case {i}: {s:?}");
            assert_eq!(!s.expire.is_empty(), expire, "case {i}: {s:?}");
            assert_eq!(s.next_alarm_ms, next, "case {i}");
        }
        let s = sweep(std::slice::from_ref(&fresh), (E - 60) * MS, &p);
        assert_eq!(
            json(&s.warn[0].1),
            json(&format!(r#"{{"type":"expiring","expires_at":{E}}}"#))
        );
    }

    #[test]
    fn leeway_delays_the_close_and_zero_warning_sends_none() {
        let p = ExpiryPolicy {
            leeway_secs: 30,
            warning_secs: 0,
        };
        let c = [expiring_at("c1", "u1", E)];
        assert_eq!(next_alarm(&c, &p), Some((E + 30) * MS));
        let s = sweep(&c, (E + 29) * MS, &p);
        assert!(s.warn.is_empty() && s.expire.is_empty(), "{s:?}");
        assert_eq!(s.next_alarm_ms, Some((E + 30) * MS));
        assert_eq!(sweep(&c, (E + 30) * MS, &p).expire, [0]);
    }

    #[test]
    fn sweep_over_many_connections_picks_the_earliest_next_deadline() {
        let p = ExpiryPolicy {
            leeway_secs: 0,
            warning_secs: 10,
        };
        let cs = [
            expiring_at("c1", "u1", E),       // expired at E
            expiring_at("c2", "u2", E + 5),   // warned at E (window E-5..E+5)
            expiring_at("c3", "u3", E + 100), // nothing yet; warn at E+90
        ];
        let s = sweep(&cs, E * MS, &p);
        assert_eq!(s.expire, [0]);
        assert_eq!(s.warn.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [1]);
        assert_eq!(s.next_alarm_ms, Some((E + 5) * MS));
        assert_eq!(next_alarm(&cs, &p), Some((E - 10) * MS));
        assert_eq!(next_alarm(&[], &p), None);
        assert_eq!(sweep(&[], E * MS, &p).next_alarm_ms, None);
    }

    fn identity(sub: &str, exp: u64, jti: &str) -> Identity {
        // From JSON, as the gate hands it over: optional claims stay absent.
        serde_json::from_value(serde_json::json!({
            "sub": sub, "name": format!("{sub} renamed"), "exp": exp, "jti": jti,
        }))
        .unwrap()
    }

    #[test]
    fn refresh_outcomes() {
        let c = Connection {
            warned: true,
            jti: Some("old".into()),
            ..expiring_at("c1", "u1", E)
        };
        let same = identity("u1", E + 3600, "new");
        let other = identity("u2", E + 3600, "new");
        let cases: [(Result<&Identity, &str>, bool, Option<&str>); 5] = [
            (Err("token has expired"), false, Some("invalid_token")),
            (Ok(&other), false, Some("refresh_mismatch")),
            (Ok(&other), true, Some("refresh_mismatch")),
            (Ok(&same), true, Some("invalid_token")),
            (Ok(&same), false, None),
        ];
        for (verified, revoked, want) in cases {
            let shown = format!("{verified:?} revoked={revoked}");
            match (refresh(&c, verified, revoked), want) {
                (Refresh::Rejected { reply }, Some(code)) => {
                    let v = json(&reply);
                    assert_eq!(
                        (v["type"].as_str(), v["code"].as_str()),
                        (Some("error"), Some(code)),
                        "{shown}"
                    );
                    assert!(!v["message"].as_str().unwrap().is_empty(), "{shown}");
                }
                (Refresh::Accepted { conn, reply }, None) => {
                    assert_eq!(
                        conn,
                        Connection {
                            exp: E + 3600,
                            // The socket now runs on the new token, issued when it was.
                            iat: same.iat,
                            jti: Some("new".into()),
                            warned: false,
                            ..c.clone()
                        },
                        "name, id and join order stay"
                    );
                    assert_eq!(
                        json(&reply),
                        json(&format!(
                            r#"{{"type":"refreshed","expires_at":{}}}"#,
                            E + 3600
                        ))
                    );
                }
                (got, _) => panic!("{shown}: {got:?}"),
            }
        }
        match refresh(&c, Err("token signature is invalid"), false) {
            Refresh::Rejected { reply } => {
                assert_eq!(json(&reply)["message"], "token signature is invalid")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_socket_gets_one_refresh_check_every_ten_seconds() {
        assert!(refresh_check_due(None, 5), "the first one");
        assert!(!refresh_check_due(
            Some(1_000),
            1_000 + REFRESH_CHECK_INTERVAL_MS - 1
        ));
        assert!(refresh_check_due(
            Some(1_000),
            1_000 + REFRESH_CHECK_INTERVAL_MS
        ));
        assert!(
            !refresh_check_due(Some(5_000), 1_000),
            "a clock that went backwards"
        );
        let frame: serde_json::Value = serde_json::from_str(&refresh_too_soon()).unwrap();
        assert_eq!(
            (frame["type"].as_str(), frame["code"].as_str()),
            (Some("error"), Some("rate_limited"))
        );
    }
}
