//! Revocations: the rules for what the admin may revoke, the isolate's snapshot of the
//! revocations in force, and how a room keeps its own list.
//!
//! A revocation ([`Revocation`]) names one token (`jti`) or one user (`sub`) and lasts
//! `until` a unix second. While it lasts, a matching token gets no socket at the gate, no
//! refresh in a room, and its live sockets are closed. Once `until` has passed it no
//! longer matters and is pruned. Plain Rust: the request rules, the snapshot's clock
//! and the merge of lists are host-tested here; `store::revocations` keeps them in D1
//! and the `Room` object keeps its own list.

use serde::Deserialize;

use crate::protocol::identity::{Revocation, Target, TokenFacts};
use crate::protocol::names::{MAX_JTI_BYTES, MAX_USER_ID_BYTES};

/// Longest a revocation may last, from now: ten years. Also keeps `until` far inside
/// the integer range JavaScript (and so D1) represents exactly.
pub const MAX_REVOCATION_SECS: u64 = 10 * 365 * 24 * 3600;

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
    /// How many rows to read for a snapshot: one more than fits tells "too many".
    pub const READ_LIMIT: usize = Self::MAX_ENTRIES + 1;

    /// `revocations` as read at `read_at_ms` (at most `MAX_ENTRIES + 1` of them: one
    /// more than fits means too many to keep).
    pub fn new(revocations: Vec<Revocation>, read_at_ms: u64) -> Self {
        Self {
            read_at_ms,
            revocations: (revocations.len() <= Self::MAX_ENTRIES).then_some(revocations),
        }
    }

    /// How long a stale snapshot still serves while another request of the isolate is
    /// reading its replacement: one read at a time, not one per request, so a burst of
    /// upgrades that all find the snapshot stale does not pile up behind as many D1 reads.
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

    /// Whether `token` is refused at `now` (unix seconds); `None` when the snapshot
    /// holds too many to tell.
    pub fn refuses(&self, token: TokenFacts<'_>, now: u64) -> Option<bool> {
        let list = self.revocations.as_ref()?;
        Some(list.iter().any(|r| r.applies_to(token, now)))
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
                check_value("sub", &sub, MAX_USER_ID_BYTES)?;
                Target::Sub(sub)
            }
            _ => return Err("give exactly one of \"jti\" and \"sub\"".into()),
        };
        let until = match (&target, self.until) {
            (_, Some(until)) => until,
            (Target::Jti(_), None) => now.saturating_add(default_jti_secs),
            (_, None) => return Err("revoking a user needs \"until\" (unix seconds)".into()),
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

/// A revocation as storage keeps it (D1's `revocations`, a room's `revoked` table): a
/// `kind` column, a `value` and an `until`.
#[derive(Debug, Clone, Deserialize)]
pub struct RevocationRow {
    pub kind: String,
    pub value: String,
    pub until: i64,
    #[serde(default)]
    pub issued_before: Option<i64>,
}

impl RevocationRow {
    /// The revocation the row holds; `None` for a kind this version does not know or a
    /// time out of range, which refuse nothing.
    pub fn into_revocation(self) -> Option<Revocation> {
        let issued_before = match self.issued_before {
            Some(t) => Some(u64::try_from(t).ok()?),
            None => None,
        };
        Some(Revocation {
            target: Target::from_stored(&self.kind, self.value, issued_before)?,
            until: u64::try_from(self.until).ok()?,
        })
    }
}

/// Adds `new` to `list` at `now`: revocations that have run out go, and a target listed
/// already (the same kind and value) keeps the later `until` and the later
/// `issued_before` (revoking never shortens a revocation), as storage does.
pub fn merge(list: &mut Vec<Revocation>, new: &Revocation, now: u64) {
    list.retain(|r| r.until > now);
    let same = |r: &&mut Revocation| {
        r.target.kind() == new.target.kind() && r.target.value() == new.target.value()
    };
    match list.iter_mut().find(same) {
        Some(known) => {
            known.until = known.until.max(new.until);
            if let (
                Target::SubIssuedBefore { before, .. },
                Target::SubIssuedBefore { before: later, .. },
            ) = (&mut known.target, &new.target)
            {
                *before = (*before).max(*later);
            }
        }
        None => list.push(new.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::names::{MAX_SUB_BYTES, MAX_SUB_PREFIX};

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
    fn every_user_id_the_gate_accepts_can_be_revoked() {
        // An external issuer's longest prefix and longest `sub`.
        let id = format!(
            "{}{}",
            "p".repeat(MAX_SUB_PREFIX),
            "s".repeat(MAX_SUB_BYTES)
        );
        let r = req(None, Some(&id), Some(NOW + 5)).into_revocation(NOW, DAY);
        assert_eq!(r.map(|r| r.target), Ok(Target::Sub(id)));
    }

    #[test]
    fn refused_requests() {
        let long = "x".repeat(129);
        let long_user = "x".repeat(MAX_USER_ID_BYTES + 1);
        let cases = [
            req(None, None, None),
            req(None, None, Some(NOW + 5)),
            req(Some("j"), Some("u"), Some(NOW + 5)),
            req(Some(""), None, None),
            req(Some(&long), None, None),
            req(None, Some(""), Some(NOW + 5)),
            req(None, Some(&long_user), Some(NOW + 5)),
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

    fn facts<'a>(sub: &'a str, jti: Option<&'a str>) -> TokenFacts<'a> {
        TokenFacts { sub, jti, iat: 0 }
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
        assert_eq!(snap.refuses(facts("mallory", None), 50), Some(true));
        assert_eq!(
            snap.refuses(facts("mallory", None), 100),
            Some(false),
            "until is exclusive"
        );
        assert_eq!(snap.refuses(facts("alice", Some("t1")), 50), Some(true));
        assert_eq!(snap.refuses(facts("alice", Some("t2")), 50), Some(false));
        assert_eq!(snap.refuses(facts("alice", None), 50), Some(false));
    }

    #[test]
    fn a_snapshot_of_too_many_revocations_cannot_tell() {
        let many: Vec<_> = (0..=Snapshot::MAX_ENTRIES)
            .map(|i| sub(&format!("u{i}"), 100))
            .collect();
        let snap = Snapshot::new(many, 0);
        assert_eq!(snap.refuses(facts("u1", None), 50), None);
        let enough: Vec<_> = (0..Snapshot::MAX_ENTRIES)
            .map(|i| sub(&format!("u{i}"), 100))
            .collect();
        assert_eq!(
            Snapshot::new(enough, 0).refuses(facts("u1", None), 50),
            Some(true)
        );
    }

    #[test]
    fn merging_keeps_the_later_until_and_drops_what_ran_out() {
        let mut list = vec![sub("a", 100), sub("gone", 50)];
        merge(&mut list, &sub("a", 80), 60);
        assert_eq!(
            list,
            [sub("a", 100)],
            "never shortened; the expired one pruned"
        );
        merge(&mut list, &sub("a", 200), 60);
        assert_eq!(list, [sub("a", 200)]);
        let jti = Revocation {
            target: Target::Jti("a".into()),
            until: 90,
        };
        merge(&mut list, &jti, 60);
        assert_eq!(list, [sub("a", 200), jti], "kinds are kept apart");
    }

    #[test]
    fn stored_rows_become_revocations_and_unknown_ones_none() {
        let row = |kind: &str, until: i64| RevocationRow {
            kind: kind.into(),
            value: "v".into(),
            until,
            issued_before: None,
        };
        assert_eq!(row("sub", 7).into_revocation(), Some(sub("v", 7)));
        assert_eq!(
            row("jti", 7).into_revocation().map(|r| r.target),
            Some(Target::Jti("v".into()))
        );
        assert_eq!(row("iss", 7).into_revocation(), None);
        assert_eq!(row("sub", -1).into_revocation(), None);
    }
}
