//! Single-use WebSocket tickets: a way in without any JWT in a URL.
//!
//! `POST /ws-ticket` trades a verified token for an opaque random ticket, valid once, for
//! at most 30 s and never past the token's own expiry, bound to the token's identity (and
//! to one room, if asked). `GET /ws/{room}?ticket=...` redeems it. The store (a Durable
//! Object, so redemption is atomic) keeps only the ticket's SHA-256, never the ticket.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::secret::{hex, random_bytes};
use crate::protocol::identity::Identity;

/// How long a ticket lives at most.
pub const TICKET_TTL_SECS: u64 = 30;
/// Length of a ticket as text (32 random bytes, unpadded base64url).
pub const TICKET_CHARS: usize = 43;

/// A new random ticket.
pub fn new_ticket() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// The form a ticket is stored and looked up under.
pub fn ticket_hash(ticket: &str) -> String {
    hex(&Sha256::digest(ticket.as_bytes()))
}

/// Which store shard a ticket lives in: spreads tickets over a few Durable Objects
/// without losing atomicity (a ticket is only ever in one).
pub fn shard(ticket: &str) -> String {
    format!("tickets-{}", ticket.chars().next().unwrap_or('_'))
}

/// True when `ticket` could be one of ours (checked before any lookup).
pub fn well_formed(ticket: &str) -> bool {
    ticket.len() == TICKET_CHARS
        && ticket
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What the store keeps per ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketRecord {
    pub identity: Identity,
    pub room: Option<String>,
    pub expires_at: u64,
}

impl TicketRecord {
    /// A record for `identity`, optionally bound to `room`, issued at `now`.
    pub fn new(identity: Identity, room: Option<String>, now: u64) -> Self {
        let expires_at = (now + TICKET_TTL_SECS).min(identity.exp);
        Self {
            identity,
            room,
            expires_at,
        }
    }

    /// Seconds the ticket is valid for from `now`.
    pub fn expires_in(&self, now: u64) -> u64 {
        self.expires_at.saturating_sub(now)
    }

    /// Checks a taken (already deleted) record against the room it is used for.
    pub fn redeem(self, room: &str, now: u64) -> Result<Identity, TicketError> {
        if now >= self.expires_at {
            return Err(TicketError::Expired);
        }
        if self.room.as_deref().is_some_and(|r| r != room) {
            return Err(TicketError::OtherRoom);
        }
        Ok(self.identity)
    }
}

/// Why a ticket did not open a socket (all answered 401 `invalid_token`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketError {
    /// Unknown, malformed, or already used.
    Unknown,
    Expired,
    OtherRoom,
}

impl std::fmt::Display for TicketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Unknown => "ticket is unknown or already used",
            Self::Expired => "ticket has expired",
            Self::OtherRoom => "ticket is for another room",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(exp: u64) -> Identity {
        Identity {
            sub: "u1".into(),
            name: "A".into(),
            exp,
            jti: None,
            rooms: None,
        }
    }

    #[test]
    fn tickets_are_random_well_formed_and_hashed() {
        let a = new_ticket();
        assert!(well_formed(&a), "{a}");
        assert_ne!(a, new_ticket());
        assert_eq!(ticket_hash(&a).len(), 64);
        assert_ne!(ticket_hash(&a), a);
        assert!(!well_formed("short"));
        assert!(!well_formed(&format!("{}!", &a[..42])));
        assert!(shard(&a).starts_with("tickets-"));
    }

    #[test]
    fn lifetime_is_capped_by_the_token() {
        assert_eq!(
            TicketRecord::new(identity(10_000), None, 1000).expires_at,
            1030
        );
        assert_eq!(
            TicketRecord::new(identity(1010), None, 1000).expires_at,
            1010
        );
    }

    #[test]
    fn redemption_table() {
        let bound = TicketRecord::new(identity(10_000), Some("lobby".into()), 1000);
        let free = TicketRecord::new(identity(10_000), None, 1000);
        assert!(bound.clone().redeem("lobby", 1029).is_ok());
        assert_eq!(
            bound.clone().redeem("lobby", 1030),
            Err(TicketError::Expired)
        );
        assert_eq!(bound.redeem("other", 1001), Err(TicketError::OtherRoom));
        assert!(free.redeem("anything", 1001).is_ok());
    }
}
