//! Events a room reports to the team's backend (`WEBHOOK_URL`): what they are, how a
//! batch is signed, and when a failed delivery is tried again. The room object keeps the
//! outbox and delivers from its alarm (`objects::room::webhooks`).
//!
//! Events: `room.occupied` (the first socket), `room.vacated` (the last one left),
//! `member.joined` / `member.left` (a user's first and last visible socket, as presence
//! counts them, not per tab) and `message.published` (in rooms `WEBHOOK_MESSAGE_ROOMS`
//! names). Each has an `id` unique in the deployment (`<room>/<n>`, `n` counting up per
//! room from 1), so a receiver drops duplicates, and they are delivered in `n` order.

use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::value::RawValue;
use sha2::Sha256;

use crate::auth::secret::hex;
use crate::protocol::frames::Member;

/// The header that carries a batch's signature.
pub const SIGNATURE_HEADER: &str = "Roomgate-Signature";
/// Events one POST carries at most.
pub const BATCH: u64 = 100;
/// Events a room keeps waiting at most; past it new events are dropped and counted.
pub const MAX_BACKLOG: u64 = 1000;
/// How long an event is retried before it is dropped (and counted).
pub const MAX_AGE_MS: u64 = 24 * 3600 * 1000;
/// How long one delivery may take.
pub const TIMEOUT_MS: u32 = 5000;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Occupied,
    Vacated,
    Joined,
    Left,
    Published,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Occupied => "room.occupied",
            Self::Vacated => "room.vacated",
            Self::Joined => "member.joined",
            Self::Left => "member.left",
            Self::Published => "message.published",
        }
    }
}

#[derive(Serialize)]
struct Event<'a> {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    room: &'a str,
    ts: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a Member>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a RawValue>,
}

/// One event as JSON: `{"id", "type", "room", "ts"}`, with `user` for member events and
/// `message` (the `message` frame clients got) for `message.published`.
pub fn event(
    kind: Kind,
    room: &str,
    n: u64,
    ts_ms: u64,
    user: Option<&Member>,
    message: Option<&RawValue>,
) -> String {
    serde_json::to_string(&Event {
        id: format!("{room}/{n}"),
        kind: kind.name(),
        room,
        ts: ts_ms,
        user,
        message,
    })
    .expect("events serialize")
}

/// The body of a POST: `{"events": [...]}`, from stored events in order.
pub fn batch(events: &[String]) -> String {
    let mut body = String::from("{\"events\":[");
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(e);
    }
    body.push_str("]}");
    body
}

/// The `Roomgate-Signature` value for `body` sent at `t` (unix seconds):
/// `t=<t>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed with the secret>`.
pub fn signature(secret: &[u8], t: u64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("t={t},v1={}", hex(&mac.finalize().into_bytes()))
}

/// How long to wait before the next try after `failures` failed deliveries in a row:
/// 1 s, doubling, at most 10 minutes.
pub fn retry_delay_ms(failures: u32) -> u64 {
    let secs = 1u64 << failures.saturating_sub(1).min(10);
    secs.min(600) * 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_have_their_shape() {
        let alice = Member {
            id: "u1".into(),
            name: "Alice".into(),
        };
        let e = event(
            Kind::Joined,
            "lobby",
            7,
            1_800_000_000_000,
            Some(&alice),
            None,
        );
        assert_eq!(
            e,
            r#"{"id":"lobby/7","type":"member.joined","room":"lobby","ts":1800000000000,"user":{"id":"u1","name":"Alice"}}"#
        );
        let frame = RawValue::from_string(r#"{"type":"message","seq":3}"#.into()).unwrap();
        let m = event(Kind::Published, "lobby", 8, 5, None, Some(&frame));
        assert!(
            m.ends_with(r#""message":{"type":"message","seq":3}}"#),
            "{m}"
        );
        let o = event(Kind::Occupied, "a", 1, 5, None, None);
        assert_eq!(
            o,
            r#"{"id":"a/1","type":"room.occupied","room":"a","ts":5}"#
        );
        assert_eq!(
            batch(&[o.clone(), o.clone()]),
            format!("{{\"events\":[{o},{o}]}}")
        );
        assert_eq!(batch(&[]), r#"{"events":[]}"#);
        for k in [
            Kind::Occupied,
            Kind::Vacated,
            Kind::Joined,
            Kind::Left,
            Kind::Published,
        ] {
            assert!(k.name().contains('.'));
        }
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_time_dot_body() {
        // The expected value was computed independently (Python's hmac module).
        let sig = signature(b"Jefe", 1_800_000_000, "{\"events\":[]}");
        assert_eq!(
            sig,
            "t=1800000000,v1=0c2686eaa5d7e950da895164fa331c3efdbbebb70eb2ef9a42f6a85ec3222a59"
        );
        assert_ne!(
            signature(b"Jefe", 1_800_000_001, "{}"),
            signature(b"Jefe", 1_800_000_000, "{}")
        );
    }

    #[test]
    fn retries_back_off_to_ten_minutes() {
        let delays: Vec<u64> = (1..=12).map(retry_delay_ms).collect();
        assert_eq!(
            delays,
            [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600].map(|s| s * 1000)
        );
        assert_eq!(retry_delay_ms(0), 1000);
        assert_eq!(retry_delay_ms(u32::MAX), 600_000);
    }
}
