//! The frame rate limit: a token bucket per user in each room, as plain arithmetic.
//!
//! Every client frame costs one token, and a `history` answer costs more in proportion to
//! what it returns ([`charge`]): the bucket may go into debt, which later frames wait out.
//! All of a user's sockets in a room share one bucket, so opening more sockets buys no
//! more frames. The bucket holds at most `burst` tokens and
//! refills at `per_second` tokens a second; a frame that finds it empty is refused (the
//! sender gets `rate_limited`, nothing is published). Refusals are counted from the last
//! time the bucket was full: a client that keeps sending faster than the refill — for
//! `max_rejected` refused frames without ever letting the bucket fill up again — is
//! closed with 1008. A client that pauses until its bucket is full starts with a clean
//! slate.
//!
//! The bucket is part of the socket's attachment (`state::Connection::rate`), because
//! hibernation may evict the object between any two frames: the room keeps it in memory
//! while a socket's frames pass and writes it to the attachment whenever one is refused
//! (`objects::room::roster`), so an eviction can only ever leave a bucket fuller than it
//! was, never emptier. Tokens are kept in thousandths so the state is integers only (exact, and
//! `Eq` like the rest of the attachment). The clock is passed in (unix milliseconds).

use serde::{Deserialize, Serialize};

/// One token, in the bucket's unit (thousandths).
const TOKEN: i64 = 1000;

/// The limit every socket of a room gets (`RATE_LIMIT_*` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RatePolicy {
    /// Tokens added per second.
    pub per_second: u64,
    /// Bucket size: how many frames may arrive at once after a quiet spell.
    pub burst: u64,
    /// Refused frames (since the bucket was last full) that close the socket with 1008.
    pub max_rejected: u64,
}

/// A socket's bucket, as stored in its attachment. Absent (`None` in the attachment)
/// means full: a new socket starts with `burst` tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    /// Tokens left, in thousandths; below zero after a [`charge`] that cost more than
    /// was left.
    pub milli_tokens: i64,
    /// When the bucket was last refilled, unix milliseconds.
    pub at_ms: u64,
    /// Frames refused since the bucket was last full.
    pub rejected: u64,
}

/// What the bucket says about one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Within the limit: handle the frame.
    Pass,
    /// Over the limit: drop the frame, answer `rate_limited`.
    Limited,
    /// Over the limit for too long: close the socket with 1008.
    Close,
}

impl Bucket {
    /// A full bucket at `now_ms`.
    pub fn full(policy: &RatePolicy, now_ms: u64) -> Self {
        Self {
            milli_tokens: capacity(policy),
            at_ms: now_ms,
            rejected: 0,
        }
    }
}

/// Takes one frame's token from `bucket` (a full one when `None`) at `now_ms`, and
/// returns the new bucket with the verdict. A clock that went backwards adds nothing.
pub fn admit(bucket: Option<Bucket>, policy: &RatePolicy, now_ms: u64) -> (Bucket, Admission) {
    let capacity = capacity(policy);
    let mut b = refill(bucket, policy, now_ms);
    if b.milli_tokens == capacity {
        b.rejected = 0;
    }
    if b.milli_tokens >= TOKEN {
        b.milli_tokens -= TOKEN;
        return (b, Admission::Pass);
    }
    b.rejected = b.rejected.saturating_add(1);
    let verdict = if b.rejected >= policy.max_rejected {
        Admission::Close
    } else {
        Admission::Limited
    };
    (b, verdict)
}

/// The bucket's size, in thousandths.
fn capacity(policy: &RatePolicy) -> i64 {
    i64::try_from(policy.burst)
        .unwrap_or(i64::MAX)
        .saturating_mul(TOKEN)
}

/// `bucket` (a full one when `None`) refilled up to `now_ms`. A clock that went
/// backwards adds nothing.
fn refill(bucket: Option<Bucket>, policy: &RatePolicy, now_ms: u64) -> Bucket {
    let mut b = bucket.unwrap_or_else(|| Bucket::full(policy, now_ms));
    let elapsed = i64::try_from(now_ms.saturating_sub(b.at_ms)).unwrap_or(i64::MAX);
    let per_second = i64::try_from(policy.per_second).unwrap_or(i64::MAX);
    // per_second tokens a second is per_second thousandths a millisecond.
    b.milli_tokens = b
        .milli_tokens
        .saturating_add(elapsed.saturating_mul(per_second))
        .min(capacity(policy));
    b.at_ms = b.at_ms.max(now_ms);
    b
}

/// Takes `tokens` more from `bucket` at `now_ms`, for work a frame caused beyond its own
/// token (a `history` answer): the bucket may go below zero, and the sender's next
/// frames are refused until the refill has paid the debt back.
pub fn charge(bucket: Option<Bucket>, policy: &RatePolicy, now_ms: u64, tokens: u64) -> Bucket {
    let mut b = refill(bucket, policy, now_ms);
    let cost = i64::try_from(tokens)
        .unwrap_or(i64::MAX)
        .saturating_mul(TOKEN);
    b.milli_tokens = b.milli_tokens.saturating_sub(cost);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RatePolicy = RatePolicy {
        per_second: 20,
        burst: 40,
        max_rejected: 5,
    };

    /// Sends `n` frames at `now_ms`; returns the bucket and each verdict.
    fn burst_at(mut b: Option<Bucket>, n: usize, now_ms: u64) -> (Option<Bucket>, Vec<Admission>) {
        let mut out = Vec::new();
        for _ in 0..n {
            let (next, a) = admit(b, &POLICY, now_ms);
            b = Some(next);
            out.push(a);
        }
        (b, out)
    }

    #[test]
    fn a_new_socket_may_send_a_burst() {
        let (b, verdicts) = burst_at(None, 40, 1_000);
        assert!(verdicts.iter().all(|a| *a == Admission::Pass));
        assert_eq!(b.unwrap().milli_tokens, 0);
        let (_, verdicts) = burst_at(b, 1, 1_000);
        assert_eq!(verdicts, [Admission::Limited]);
    }

    #[test]
    fn refills_at_the_configured_rate() {
        let (b, _) = burst_at(None, 40, 1_000);
        // 20 tokens a second: one every 50 ms.
        let (b, v) = burst_at(b, 1, 1_049);
        assert_eq!(v, [Admission::Limited]);
        let (b, v) = burst_at(b, 1, 1_050);
        assert_eq!(v, [Admission::Pass]);
        // One second later: 20 more, not more.
        let (_, v) = burst_at(b, 21, 2_050);
        assert_eq!(v.iter().filter(|a| **a == Admission::Pass).count(), 20);
    }

    #[test]
    fn never_holds_more_than_burst() {
        let (b, _) = burst_at(None, 1, 0);
        let (_, v) = burst_at(b, 41, 3_600_000);
        assert_eq!(v.iter().filter(|a| **a == Admission::Pass).count(), 40);
        assert_eq!(v[40], Admission::Limited);
    }

    #[test]
    fn sustained_abuse_closes() {
        let (b, _) = burst_at(None, 40, 0);
        let (_, v) = burst_at(b, 5, 0);
        assert_eq!(
            v,
            [
                Admission::Limited,
                Admission::Limited,
                Admission::Limited,
                Admission::Limited,
                Admission::Close
            ]
        );
    }

    #[test]
    fn trickled_tokens_do_not_forgive_refusals_but_a_full_bucket_does() {
        let (b, _) = burst_at(None, 40, 0);
        let (b, _) = burst_at(b, 4, 0);
        // A token trickles in and is used: the refusals still count.
        let (_, v) = burst_at(b, 2, 50);
        assert_eq!(v, [Admission::Pass, Admission::Close]);
        // After a pause long enough to fill the bucket, the count starts over.
        let (b, _) = burst_at(None, 40, 0);
        let (b, _) = burst_at(b, 4, 0);
        let (b, v) = burst_at(b, 40, 2_000);
        assert!(v.iter().all(|a| *a == Admission::Pass));
        let (_, v) = burst_at(b, 1, 2_000);
        assert_eq!(v, [Admission::Limited]);
    }

    #[test]
    fn a_clock_going_backwards_adds_nothing() {
        let (b, _) = burst_at(None, 40, 10_000);
        let (b, v) = burst_at(b, 1, 5_000);
        assert_eq!(v, [Admission::Limited]);
        assert_eq!(b.unwrap().at_ms, 10_000);
    }

    #[test]
    fn huge_values_saturate() {
        let policy = RatePolicy {
            per_second: u64::MAX,
            burst: u64::MAX,
            max_rejected: 1,
        };
        let (b, a) = admit(None, &policy, u64::MAX);
        assert_eq!(a, Admission::Pass);
        assert_eq!(admit(Some(b), &policy, u64::MAX).1, Admission::Pass);
    }

    #[test]
    fn a_charge_is_a_debt_that_later_frames_wait_out() {
        let b = charge(None, &POLICY, 1_000, 64);
        assert_eq!(b.milli_tokens, (40 - 64) * TOKEN, "24 tokens in debt");
        let (b, v) = burst_at(Some(b), 1, 1_000);
        assert_eq!(v, [Admission::Limited], "nothing passes while in debt");
        // 20 tokens a second: 25 tokens (the debt and one frame) take 1.25 s.
        let (_, v) = burst_at(b, 1, 1_000 + 1_249);
        assert_eq!(v, [Admission::Limited]);
        let (_, v) = burst_at(b, 1, 1_000 + 1_250);
        assert_eq!(v, [Admission::Pass]);
    }

    #[test]
    fn a_charge_of_nothing_changes_nothing() {
        let full = Bucket::full(&POLICY, 5);
        assert_eq!(charge(None, &POLICY, 5, 0), full);
    }
}
