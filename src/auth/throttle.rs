//! Failed-login throttling: which counters an attempt touches, whether a counter is
//! locked, and what an attempt's outcome does to it.
//!
//! A counter is a sliding window of failure times (unix milliseconds) for one key: a
//! username (`user:<name>`) or a client address (`ip:<address>`). It is locked while it
//! holds `max_failures` failures younger than the window, and `Retry-After` is the time
//! until enough of them have aged out.
//!
//! One counter per key lives in a `Limiter` Durable Object (`objects::limiter`),
//! which loads the failures, asks this module, and writes back what it decides. Nothing here
//! touches the runtime: the clock is an argument, so every rule is tested on the host.
//!
//! Concurrency: a login asks every counter before the password check ([`Ledger::standing`])
//! and reports the outcome after it ([`Ledger::commit`]). Attempts in flight together all
//! pass the first step, so the second decides again: an attempt that finds its counter
//! locked by then is answered as locked **and counted as a failure, whatever its
//! password**. A burst of concurrent guesses therefore learns the outcome of no more than
//! `max_failures` of them, and a right password inside the burst looks like a wrong one.

use std::net::IpAddr;

use crate::protocol::internal::{LoginOutcome, Standing};

/// The limit on failed logins, per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures within the window that lock the key.
    pub max_failures: u32,
    /// Length of the sliding window, in seconds.
    pub window_secs: u64,
}

impl ThrottlePolicy {
    fn window_ms(&self) -> u64 {
        self.window_secs.saturating_mul(1000)
    }

    /// Failures at or before this instant no longer count (and may be deleted).
    pub fn cutoff(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.window_ms())
    }
}

/// What the storage must do after [`Ledger::commit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Nothing,
    /// Store one failure at this time.
    Record(u64),
    /// Delete every failure of the key (only asked when there are some).
    Clear,
}

/// One key's failures younger than the window, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    failures: Vec<u64>,
}

impl Ledger {
    /// A ledger from stored failure times (any order; expired ones are dropped).
    pub fn new(policy: &ThrottlePolicy, now_ms: u64, mut failures: Vec<u64>) -> Self {
        let cutoff = policy.cutoff(now_ms);
        failures.retain(|&at| at > cutoff);
        failures.sort_unstable();
        Self { failures }
    }

    pub fn failures(&self) -> &[u64] {
        &self.failures
    }

    /// Locked or not at `now_ms`.
    pub fn standing(&self, policy: &ThrottlePolicy, now_ms: u64) -> Standing {
        let cutoff = policy.cutoff(now_ms);
        let live: Vec<u64> = self
            .failures
            .iter()
            .copied()
            .filter(|&at| at > cutoff)
            .collect();
        // A limit of 0 would lock every key for good: treat it as 1.
        let max = (policy.max_failures as usize).max(1);
        if live.len() < max {
            return Standing::Open;
        }
        // Unlocked once all but `max - 1` failures have aged out: when the
        // `(len - max)`-th oldest does. (A clock that stepped back can leave failures "in
        // the future": the wait is capped at one window.)
        let frees_at = live[live.len() - max] + policy.window_ms();
        let wait_ms = frees_at.saturating_sub(now_ms).min(policy.window_ms());
        Standing::Locked {
            retry_after_secs: wait_ms.div_ceil(1000).max(1),
        }
    }

    /// Applies an attempt's outcome at `now_ms`. Returns what to store, and the standing
    /// the attempt gets as its answer: the standing *before* it, so the failure that
    /// reaches the limit is still answered as a plain failure and the next attempt is
    /// locked — with its `Retry-After` counted after recording.
    pub fn commit(
        &mut self,
        policy: &ThrottlePolicy,
        now_ms: u64,
        outcome: LoginOutcome,
    ) -> (Effect, Standing) {
        let was_locked = self.standing(policy, now_ms) != Standing::Open;
        let effect = match outcome {
            // Over the limit, even the right password counts as a failure (module doc).
            _ if was_locked => Effect::Record(now_ms),
            LoginOutcome::Failed => Effect::Record(now_ms),
            LoginOutcome::Succeeded { reset: true } if !self.failures.is_empty() => Effect::Clear,
            LoginOutcome::Succeeded { .. } => Effect::Nothing,
        };
        match effect {
            Effect::Record(at) => {
                let i = self.failures.partition_point(|&f| f <= at);
                self.failures.insert(i, at);
            }
            Effect::Clear => self.failures.clear(),
            Effect::Nothing => {}
        }
        let answer = if was_locked {
            self.standing(policy, now_ms)
        } else {
            Standing::Open
        };
        (effect, answer)
    }
}

impl Ledger {
    /// A rate counter's use at `now_ms`: counted when the counter is open, refused (and
    /// not counted) when `max_failures` uses are within the window already.
    pub fn spend(&mut self, policy: &ThrottlePolicy, now_ms: u64) -> (Effect, Standing) {
        match self.standing(policy, now_ms) {
            Standing::Open => {
                let i = self.failures.partition_point(|&f| f <= now_ms);
                self.failures.insert(i, now_ms);
                (Effect::Record(now_ms), Standing::Open)
            }
            locked => (Effect::Nothing, locked),
        }
    }
}

/// The counter key of the tickets issued for one access token, from the token's
/// SHA-256 (the token itself is never a key: object names can show up in logs).
pub fn ticket_issue_key(token: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(token.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("tickets:{hex}")
}

/// The counter key of one API key's requests, by the key's public id.
pub fn api_key_rate_key(key_id: &str) -> String {
    format!("api:{key_id}")
}

/// The counter key of a username (already normalized: lowercase, valid).
pub fn user_key(normalized_username: &str) -> String {
    format!("user:{normalized_username}")
}

/// The counter key of a client address for failed admin authentications: apart from its
/// login counter, so admin guesses and login guesses do not lock each other.
pub fn admin_address_key(header: &str) -> Option<String> {
    address_key(header).map(|key| format!("admin-{key}"))
}

/// The counter key of a client address (`CF-Connecting-IP`), or `None` when the value is
/// not an IP address. An IPv4 address counts alone; an IPv6 address counts with its whole
/// /64, the block one subscriber usually holds (counting single IPv6 addresses would let
/// one client rotate through billions of them). IPv4-mapped IPv6 counts as IPv4.
pub fn address_key(header: &str) -> Option<String> {
    let ip: IpAddr = header.trim().parse().ok()?;
    Some(match ip.to_canonical() {
        IpAddr::V4(v4) => format!("ip:{v4}"),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let prefix = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("ip:{prefix}/64")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: ThrottlePolicy = ThrottlePolicy {
        max_failures: 5,
        window_secs: 60,
    };
    /// A fixed "now" for every test: the clock is injected, never read.
    const NOW: u64 = 1_700_000_000_000;

    fn ledger(ages_ms: &[u64]) -> Ledger {
        Ledger::new(&POLICY, NOW, ages_ms.iter().map(|age| NOW - age).collect())
    }

    fn locked(secs: u64) -> Standing {
        Standing::Locked {
            retry_after_secs: secs,
        }
    }

    #[test]
    fn standing_table() {
        // (case, failure ages in ms, expected)
        let cases: &[(&str, &[u64], Standing)] = &[
            ("no failures", &[], Standing::Open),
            ("one under the limit", &[1, 2, 3, 4], Standing::Open),
            (
                "at the limit",
                &[1_000, 2_000, 3_000, 4_000, 5_000],
                locked(55),
            ),
            (
                "order does not matter",
                &[3_000, 5_000, 1_000, 4_000, 2_000],
                locked(55),
            ),
            (
                "oldest aged out exactly at the window edge",
                &[60_000, 1, 2, 3, 4],
                Standing::Open,
            ),
            (
                "older than the window",
                &[90_000, 70_000, 1, 2, 3],
                Standing::Open,
            ),
            ("partial second rounds up", &[59_900, 1, 2, 3, 4], locked(1)),
            ("just recorded", &[0, 0, 0, 0, 0], locked(60)),
            (
                "over the limit: wait for the second oldest",
                &[50_000, 40_000, 30_000, 20_000, 10_000, 5_000],
                locked(20),
            ),
        ];
        for (case, ages, expected) in cases {
            assert_eq!(ledger(ages).standing(&POLICY, NOW), *expected, "{case}");
        }
    }

    #[test]
    fn lock_lifts_as_the_clock_moves() {
        let l = ledger(&[10_000, 8_000, 6_000, 4_000, 2_000]);
        assert_eq!(l.standing(&POLICY, NOW), locked(50));
        assert_eq!(l.standing(&POLICY, NOW + 49_500), locked(1));
        assert_eq!(l.standing(&POLICY, NOW + 50_000), Standing::Open);
    }

    #[test]
    fn failures_from_the_future_wait_at_most_one_window() {
        // The clock stepped back by an hour since these were recorded.
        let future = vec![NOW + 3_600_000; 5];
        let l = Ledger::new(&POLICY, NOW, future);
        assert_eq!(l.standing(&POLICY, NOW), locked(60));
    }

    #[test]
    fn new_drops_expired_failures() {
        let l = ledger(&[120_000, 60_000, 59_999, 10]);
        assert_eq!(l.failures(), &[NOW - 59_999, NOW - 10]);
    }

    #[test]
    fn fifth_failure_is_answered_as_a_failure_and_locks_the_sixth() {
        let mut l = ledger(&[]);
        for i in 0..5 {
            let (effect, answer) = l.commit(&POLICY, NOW + i, LoginOutcome::Failed);
            assert_eq!(effect, Effect::Record(NOW + i), "failure {i}");
            assert_eq!(answer, Standing::Open, "failure {i}");
        }
        assert_eq!(l.standing(&POLICY, NOW + 5), locked(60));
    }

    #[test]
    fn success_resets_only_when_asked() {
        let mut l = ledger(&[4, 3, 2, 1]);
        let (effect, answer) = l.commit(&POLICY, NOW, LoginOutcome::Succeeded { reset: false });
        assert_eq!((effect, answer), (Effect::Nothing, Standing::Open));
        assert_eq!(l.failures().len(), 4);

        let (effect, answer) = l.commit(&POLICY, NOW, LoginOutcome::Succeeded { reset: true });
        assert_eq!((effect, answer), (Effect::Clear, Standing::Open));
        assert!(l.failures().is_empty());
        // Nothing to clear: nothing to write.
        let (effect, _) = l.commit(&POLICY, NOW, LoginOutcome::Succeeded { reset: true });
        assert_eq!(effect, Effect::Nothing);
        // Four more failures after the reset: still open.
        for _ in 0..4 {
            l.commit(&POLICY, NOW, LoginOutcome::Failed);
        }
        assert_eq!(l.standing(&POLICY, NOW), Standing::Open);
    }

    #[test]
    fn over_the_limit_a_right_password_counts_as_a_wrong_one() {
        // Two attempts passed the check concurrently at four failures; the wrong one
        // committed first and locked the key.
        let base = ledger(&[5_000, 4_000, 3_000, 2_000, 1_000]);
        let mut right = base.clone();
        let mut wrong = base;
        let r = right.commit(&POLICY, NOW, LoginOutcome::Succeeded { reset: true });
        let w = wrong.commit(&POLICY, NOW, LoginOutcome::Failed);
        assert_eq!(r, (Effect::Record(NOW), locked(56)));
        assert_eq!(r, w, "indistinguishable answers");
        assert_eq!(right, wrong, "indistinguishable state");
    }

    #[test]
    fn a_limit_of_one_locks_after_the_first_failure() {
        let policy = ThrottlePolicy {
            max_failures: 1,
            window_secs: 2,
        };
        let mut l = Ledger::default();
        assert_eq!(
            l.commit(&policy, NOW, LoginOutcome::Failed).1,
            Standing::Open
        );
        assert_eq!(l.standing(&policy, NOW + 500), locked(2));
        assert_eq!(l.standing(&policy, NOW + 2_000), Standing::Open);
    }

    #[test]
    fn address_keys() {
        let cases: &[(&str, Option<&str>)] = &[
            ("203.0.113.7", Some("ip:203.0.113.7")),
            (" 203.0.113.7 ", Some("ip:203.0.113.7")),
            ("::ffff:203.0.113.7", Some("ip:203.0.113.7")),
            ("2001:db8:1:2:3:4:5:6", Some("ip:2001:db8:1:2::/64")),
            ("2001:DB8:1:2::ffff", Some("ip:2001:db8:1:2::/64")),
            ("2001:db8:1:3::1", Some("ip:2001:db8:1:3::/64")),
            ("::1", Some("ip:::/64")),
            ("", None),
            ("unknown", None),
            ("203.0.113.7, 198.51.100.1", None),
            ("203.0.113.7:443", None),
        ];
        for (header, expected) in cases {
            assert_eq!(address_key(header).as_deref(), *expected, "{header:?}");
        }
    }

    #[test]
    fn user_keys() {
        assert_eq!(user_key("alice"), "user:alice");
    }

    #[test]
    fn a_rate_counter_counts_up_to_its_limit_and_then_refuses_without_counting() {
        let policy = ThrottlePolicy {
            max_failures: 3,
            window_secs: 60,
        };
        let mut l = Ledger::default();
        for i in 0..3 {
            assert_eq!(
                l.spend(&policy, NOW + i),
                (Effect::Record(NOW + i), Standing::Open)
            );
        }
        let (effect, standing) = l.spend(&policy, NOW + 10);
        assert_eq!(effect, Effect::Nothing, "a refused use is not counted");
        assert!(matches!(
            standing,
            Standing::Locked {
                retry_after_secs: 60
            }
        ));
        assert_eq!(l.failures().len(), 3);
        // Once the oldest use has aged out, one more passes.
        assert_eq!(l.spend(&policy, NOW + 60_001).1, Standing::Open);
    }

    #[test]
    fn ticket_issue_keys_do_not_show_the_token() {
        let key = ticket_issue_key("eyJhbGciOiJIUzI1NiJ9.secret.sig");
        assert!(key.starts_with("tickets:") && !key.contains("secret"));
        assert_eq!(key.len(), "tickets:".len() + 32);
        assert_ne!(key, ticket_issue_key("another"));
    }
}
