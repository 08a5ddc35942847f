//! The handoff from the gate (Worker) to the room (Durable Object).
//!
//! After the Worker verifies a token it calls the room's Durable Object with an internal
//! request it builds from scratch — none of the client's headers are copied — carrying
//! this struct in one header. The Durable Object is reachable only through the `ROOMS`
//! binding, so this header can only have come from the gate: a client sending a header of
//! the same name reaches the Worker, which never forwards it.
//!
//! Encoded as base64url JSON, because display names may hold any Unicode and header
//! values are bytes in the Latin-1 range.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::auth::token::Identity;

pub const HANDOFF_HEADER: &str = "x-roomgate-handoff";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handoff {
    pub room: String,
    pub identity: Identity,
    /// Subprotocol to select in the 101 response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// `?since=<seq>`: the client resumes and is replayed every kept message after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u64>,
}

impl Handoff {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("handoff serializes"))
    }

    pub fn decode(value: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(value.trim()).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_unicode_names() {
        let h = Handoff {
            room: "lobby".into(),
            identity: Identity {
                sub: "u1".into(),
                name: "Zoë 🌟".into(),
                exp: 1_900_000_000,
                jti: Some("j".into()),
                rooms: Some(vec!["lobby".into()]),
            },
            protocol: Some("roomgate.v1".into()),
            since: Some(u64::MAX),
        };
        let encoded = h.encode();
        assert!(encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(Handoff::decode(&encoded), Some(h));
    }

    #[test]
    fn garbage_does_not_decode() {
        for bad in ["", "!!!", "e30", "bm90IGpzb24"] {
            assert_eq!(Handoff::decode(bad), None, "{bad:?}");
        }
    }
}
