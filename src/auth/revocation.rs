//! Revocations: which tokens and users are refused before their tokens expire.
//!
//! A revocation names one token (`jti`) or one user (`sub`) and lasts `until` a unix
//! second. While it lasts, a matching token gets no socket at the gate, no refresh in a
//! room, and its live sockets are closed (the glue in `glue::revocation` stores these in
//! D1 and pushes them to the rooms). Once `until` has passed it no longer matters and is
//! pruned. Plain Rust: the request rules and the matching rule are host-tested here.

use serde::{Deserialize, Serialize};

use crate::auth::token::{MAX_JTI_BYTES, MAX_SUB_BYTES};

/// Longest a revocation may last, from now: ten years. Also keeps `until` far inside
/// the integer range JavaScript (and so D1) represents exactly.
pub const MAX_REVOCATION_SECS: u64 = 10 * 365 * 24 * 3600;

/// What a revocation refuses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// One token, by its `jti`.
    Jti(String),
    /// Every token of one user, by `sub`.
    Sub(String),
}

impl Target {
    /// The `kind` column in storage.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Jti(_) => "jti",
            Self::Sub(_) => "sub",
        }
    }

    pub fn value(&self) -> &str {
        match self {
            Self::Jti(v) | Self::Sub(v) => v,
        }
    }
}

/// A revocation in force until `until` (unix seconds, exclusive). Serializes as
/// `{"jti": "..."}` or `{"sub": "..."}` plus `"until"`, the admin API's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    #[serde(flatten)]
    pub target: Target,
    pub until: u64,
}

impl Revocation {
    /// True when a token of user `sub` with id `jti` is refused at time `now`.
    pub fn applies_to(&self, sub: &str, jti: Option<&str>, now: u64) -> bool {
        now < self.until
            && match &self.target {
                Target::Sub(s) => s == sub,
                Target::Jti(j) => jti == Some(j.as_str()),
            }
    }
}

impl Target {
    /// The target stored as `kind` / `value` (`None` for an unknown kind).
    pub fn from_stored(kind: &str, value: String) -> Option<Self> {
        match kind {
            "jti" => Some(Self::Jti(value)),
            "sub" => Some(Self::Sub(value)),
            _ => None,
        }
    }
}

/// The revocations in force as one isolate last read them: the gate's cache, so an
/// upgrade costs no D1 read. A snapshot is used for [`Snapshot::MAX_AGE_MS`]; a revoke
/// made meanwhile is still enforced by the room, whose own list is complete (pushed
/// revocations, plus every one in force when it registered), so such a token reaches the
/// room's Durable Object and is refused there, with no socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    read_at_ms: u64,
    /// `None`: more than [`Snapshot::MAX_ENTRIES`] revocations are in force; each check
    /// then asks D1 about its own token.
    revocations: Option<Vec<Revocation>>,
}

impl Snapshot {
    /// How long a snapshot is used.
    pub const MAX_AGE_MS: u64 = 1_000;
    /// The most revocations a snapshot holds.
    pub const MAX_ENTRIES: usize = 10_000;

    /// `revocations` as read at `read_at_ms` (at most `MAX_ENTRIES + 1` of them: one
    /// more than fits means too many to keep).
    pub fn new(revocations: Vec<Revocation>, read_at_ms: u64) -> Self {
        Self {
            read_at_ms,
            revocations: (revocations.len() <= Self::MAX_ENTRIES).then_some(revocations),
        }
    }

    /// How long a stale snapshot still serves while another request of the isolate is
    /// reading its replacement: one read at a time, not one per request (under load
    /// every request that found the snapshot stale used to read D1 at once, and the
    /// pile-up stalled upgrades for ~300 ms every second; bench/README.md).
    pub const MAX_STALE_MS: u64 = 10_000;

    /// Still usable at `now_ms` (a clock that went backwards makes it stale).
    pub fn is_fresh(&self, now_ms: u64) -> bool {
        now_ms >= self.read_at_ms && now_ms - self.read_at_ms < Self::MAX_AGE_MS
    }

    /// Usable at `now_ms` while a read of its replacement is in flight: for
    /// [`Snapshot::MAX_STALE_MS`] after it was read. A replacement that takes longer
    /// (D1 failing or stuck) no longer covers for the rest: each request reads again.
    pub fn may_serve_stale(&self, now_ms: u64) -> bool {
        now_ms >= self.read_at_ms && now_ms - self.read_at_ms < Self::MAX_STALE_MS
    }

    /// Whether a token of `sub` with id `jti` is refused at `now` (unix seconds);
    /// `None` when the snapshot holds too many to tell.
    pub fn refuses(&self, sub: &str, jti: Option<&str>, now: u64) -> Option<bool> {
        let list = self.revocations.as_ref()?;
        Some(list.iter().any(|r| r.applies_to(sub, jti, now)))
    }
}

/// The body of `POST /admin/revoke`, before validation.
#[derive(Debug, Default, Deserialize)]
pub struct RevokeRequest {
    #[serde(default)]
    pub jti: Option<String>,
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub until: Option<u64>,
}

impl RevokeRequest {
    /// Validates the request at time `now`. A `jti` revocation without `until` lasts
    /// `default_jti_secs` (as long as any token of ours can live); a `sub` revocation
    /// must say until when, because it also refuses tokens the user has not got yet.
    pub fn into_revocation(self, now: u64, default_jti_secs: u64) -> Result<Revocation, String> {
        let target = match (self.jti, self.sub) {
            (Some(jti), None) => {
                check_value("jti", &jti, MAX_JTI_BYTES)?;
                Target::Jti(jti)
            }
            (None, Some(sub)) => {
                check_value("sub", &sub, MAX_SUB_BYTES)?;
                Target::Sub(sub)
            }
            _ => return Err("give exactly one of \"jti\" and \"sub\"".into()),
        };
        let until = match (&target, self.until) {
            (_, Some(until)) => until,
            (Target::Jti(_), None) => now.saturating_add(default_jti_secs),
            (Target::Sub(_), None) => {
                return Err("revoking a user needs \"until\" (unix seconds)".into())
            }
        };
        if until <= now {
            return Err("\"until\" must be in the future".into());
        }
        if until > now.saturating_add(MAX_REVOCATION_SECS) {
            return Err(format!(
                "\"until\" may be at most {MAX_REVOCATION_SECS} seconds from now"
            ));
        }
        Ok(Revocation { target, until })
    }
}

fn check_value(field: &str, value: &str, max: usize) -> Result<(), String> {
    if value.is_empty() || value.len() > max {
        return Err(format!("\"{field}\" must be 1-{max} bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;
    const DAY: u64 = 86_400;

    fn req(jti: Option<&str>, sub: Option<&str>, until: Option<u64>) -> RevokeRequest {
        RevokeRequest {
            jti: jti.map(Into::into),
            sub: sub.map(Into::into),
            until,
        }
    }

    #[test]
    fn valid_requests() {
        let cases = [
            (
                req(Some("j1"), None, None),
                Target::Jti("j1".into()),
                NOW + DAY,
            ),
            (
                req(Some("j1"), None, Some(NOW + 5)),
                Target::Jti("j1".into()),
                NOW + 5,
            ),
            (
                req(None, Some("u1"), Some(NOW + 1)),
                Target::Sub("u1".into()),
                NOW + 1,
            ),
            (
                req(None, Some("u1"), Some(NOW + MAX_REVOCATION_SECS)),
                Target::Sub("u1".into()),
                NOW + MAX_REVOCATION_SECS,
            ),
        ];
        for (r, target, until) in cases {
            let got = r.into_revocation(NOW, DAY).unwrap();
            assert_eq!(got, Revocation { target, until });
        }
    }

    #[test]
    fn refused_requests() {
        let long = "x".repeat(129);
        let cases = [
            req(None, None, None),
            req(None, None, Some(NOW + 5)),
            req(Some("j"), Some("u"), Some(NOW + 5)),
            req(Some(""), None, None),
            req(Some(&long), None, None),
            req(None, Some(""), Some(NOW + 5)),
            req(None, Some(&long), Some(NOW + 5)),
            req(None, Some("u"), None),
            req(None, Some("u"), Some(NOW)),
            req(Some("j"), None, Some(NOW - 1)),
            req(None, Some("u"), Some(NOW + MAX_REVOCATION_SECS + 1)),
        ];
        for r in cases {
            let shown = format!("{r:?}");
            let err = r.into_revocation(NOW, DAY).unwrap_err();
            assert!(!err.is_empty(), "{shown}");
        }
    }

    #[test]
    fn matching() {
        let by_jti = Revocation {
            target: Target::Jti("j1".into()),
            until: NOW + 10,
        };
        let by_sub = Revocation {
            target: Target::Sub("u1".into()),
            until: NOW + 10,
        };
        let cases = [
            (&by_jti, "u1", Some("j1"), NOW, true),
            (&by_jti, "u2", Some("j1"), NOW, true),
            (&by_jti, "u1", Some("j2"), NOW, false),
            (&by_jti, "u1", None, NOW, false),
            (&by_jti, "u1", Some("j1"), NOW + 10, false),
            (&by_sub, "u1", None, NOW, true),
            (&by_sub, "u1", Some("j9"), NOW + 9, true),
            (&by_sub, "u2", Some("j1"), NOW, false),
            (&by_sub, "u1", None, NOW + 10, false),
        ];
        for (rev, sub, jti, now, want) in cases {
            assert_eq!(
                rev.applies_to(sub, jti, now),
                want,
                "{rev:?} {sub} {jti:?} @{now}"
            );
        }
    }

    #[test]
    fn wire_shape() {
        let rev = Revocation {
            target: Target::Sub("u1".into()),
            until: 7,
        };
        let text = serde_json::to_string(&rev).unwrap();
        assert_eq!(text, r#"{"sub":"u1","until":7}"#);
        assert_eq!(serde_json::from_str::<Revocation>(&text).unwrap(), rev);
        let jti: Revocation = serde_json::from_str(r#"{"jti":"j","until":9}"#).unwrap();
        assert_eq!(jti.target, Target::Jti("j".into()));
    }

    fn sub(value: &str, until: u64) -> Revocation {
        Revocation {
            target: Target::Sub(value.into()),
            until,
        }
    }

    #[test]
    fn a_snapshot_is_used_for_one_second_of_the_injected_clock() {
        let snap = Snapshot::new(vec![], 5_000);
        assert!(snap.is_fresh(5_000));
        assert!(snap.is_fresh(5_999));
        assert!(!snap.is_fresh(6_000));
        assert!(!snap.is_fresh(4_999), "a clock that went backwards");
    }

    #[test]
    fn a_stale_snapshot_covers_an_in_flight_read_for_ten_seconds_only() {
        let snap = Snapshot::new(vec![], 5_000);
        assert!(!snap.is_fresh(6_000));
        assert!(snap.may_serve_stale(6_000));
        assert!(snap.may_serve_stale(14_999));
        assert!(!snap.may_serve_stale(15_000));
        assert!(!snap.may_serve_stale(4_999), "a clock that went backwards");
    }

    #[test]
    fn a_snapshot_refuses_what_its_revocations_refuse() {
        let jti = Revocation {
            target: Target::Jti("t1".into()),
            until: 100,
        };
        let snap = Snapshot::new(vec![sub("mallory", 100), jti], 0);
        assert_eq!(snap.refuses("mallory", None, 50), Some(true));
        assert_eq!(
            snap.refuses("mallory", None, 100),
            Some(false),
            "until is exclusive"
        );
        assert_eq!(snap.refuses("alice", Some("t1"), 50), Some(true));
        assert_eq!(snap.refuses("alice", Some("t2"), 50), Some(false));
        assert_eq!(snap.refuses("alice", None, 50), Some(false));
    }

    #[test]
    fn a_snapshot_of_too_many_revocations_cannot_tell() {
        let many: Vec<_> = (0..=Snapshot::MAX_ENTRIES)
            .map(|i| sub(&format!("u{i}"), 100))
            .collect();
        let snap = Snapshot::new(many, 0);
        assert_eq!(snap.refuses("u1", None, 50), None);
        let enough: Vec<_> = (0..Snapshot::MAX_ENTRIES)
            .map(|i| sub(&format!("u{i}"), 100))
            .collect();
        assert_eq!(Snapshot::new(enough, 0).refuses("u1", None, 50), Some(true));
    }

    #[test]
    fn stored_targets_round_trip() {
        for t in [Target::Jti("a".into()), Target::Sub("b".into())] {
            let back = Target::from_stored(t.kind(), t.value().to_owned());
            assert_eq!(back, Some(t));
        }
        assert_eq!(Target::from_stored("iss", "x".into()), None);
    }
}
