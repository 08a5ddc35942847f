//! Single-use WebSocket tickets: a way in without any JWT in a URL.
//!
//! `POST /ws-ticket` trades a verified token for an opaque random ticket, valid once, for
//! at most 30 s and never past the token's own expiry, bound to the token's identity (and
//! to one room, if asked). `GET /ws/{room}?ticket=...` redeems it. The store (a Durable
//! Object, so redemption is atomic) keeps only the ticket's SHA-256, never the ticket.
//!
//! A ticket is 16 random bytes and an HMAC-SHA256 tag of them under the deployment's
//! ticket key ([`TicketKey`]), so the Worker refuses a ticket it did not issue without
//! calling any store, and the store shard a ticket lives in is a keyed hash of it that
//! nobody without the key can aim at.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::secret::{ct_eq, hex, random_bytes};
use crate::protocol::identity::Identity;

/// How long a ticket lives at most.
pub const TICKET_TTL_SECS: u64 = 30;
/// Length of a ticket as text (32 bytes, unpadded base64url).
pub const TICKET_CHARS: usize = 43;
/// How many store objects tickets are spread over.
pub const SHARDS: u8 = 64;
/// Random bytes in a ticket; the rest is their tag.
const NONCE_BYTES: usize = 16;

/// The deployment's secret for tickets: tags them and picks their shard.
#[derive(Clone)]
pub struct TicketKey([u8; 32]);

impl std::fmt::Debug for TicketKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TicketKey(..)")
    }
}

impl TicketKey {
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// HMAC-SHA256 of `label` and `data` under the key.
    fn mac(&self, label: &[u8], data: &[u8]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key");
        mac.update(label);
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// A new ticket: random bytes and their tag.
    pub fn new_ticket(&self) -> String {
        let nonce = random_bytes::<NONCE_BYTES>();
        let tag = self.mac(b"ticket", &nonce);
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&tag[..32 - NONCE_BYTES]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// True when `ticket` was issued under this key: well formed and its tag checks,
    /// compared in constant time. Checked before any lookup.
    pub fn issued(&self, ticket: &str) -> bool {
        if !well_formed(ticket) {
            return false;
        }
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(ticket) else {
            return false;
        };
        let (nonce, tag) = bytes.split_at(NONCE_BYTES);
        ct_eq(&self.mac(b"ticket", nonce)[..32 - NONCE_BYTES], tag)
    }

    /// Which store shard a ticket lives in: spreads tickets over [`SHARDS`] Durable
    /// Objects without losing atomicity (a ticket is only ever in one).
    pub fn shard(&self, ticket: &str) -> String {
        let n = self.mac(b"shard", ticket.as_bytes())[0] % SHARDS;
        format!("tickets-{n}")
    }
}

/// The form a ticket is stored and looked up under.
pub fn ticket_hash(ticket: &str) -> String {
    hex(&Sha256::digest(ticket.as_bytes()))
}

/// True when `ticket` has a ticket's shape (length and alphabet).
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
            iat: 0,
            jti: None,
            rooms: None,
        }
    }

    fn key(byte: u8) -> TicketKey {
        TicketKey::new([byte; 32])
    }

    #[test]
    fn tickets_are_random_well_formed_and_hashed() {
        let k = key(1);
        let a = k.new_ticket();
        assert!(well_formed(&a), "{a}");
        assert_ne!(a, k.new_ticket());
        assert_eq!(ticket_hash(&a).len(), 64);
        assert_ne!(ticket_hash(&a), a);
        assert!(!well_formed("short"));
        assert!(!well_formed(&format!("{}!", &a[..42])));
        assert!(k.shard(&a).starts_with("tickets-"));
    }

    #[test]
    fn only_tickets_issued_under_the_key_are_taken_for_tickets() {
        let k = key(1);
        let issued = k.new_ticket();
        assert!(k.issued(&issued));
        assert!(!key(2).issued(&issued), "another key's");
        // Well formed, but not issued: refused without any lookup.
        let forged = "A".repeat(TICKET_CHARS);
        assert!(well_formed(&forged) && !k.issued(&forged));
        // One character changed anywhere breaks the tag.
        for i in [0, 10, 21, 30, 42] {
            let mut bytes = issued.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(bytes).unwrap();
            assert!(!k.issued(&changed), "changed at {i}");
        }
        assert!(!k.issued("not a ticket"));
    }

    #[test]
    fn the_shard_is_a_keyed_hash_not_a_character_of_the_ticket() {
        let k = key(1);
        let shards: std::collections::HashSet<String> =
            (0..400).map(|_| k.shard(&k.new_ticket())).collect();
        assert!(shards.len() > 50, "{} shards used", shards.len());
        assert!(shards.iter().all(|s| s
            .strip_prefix("tickets-")
            .and_then(|n| n.parse::<u8>().ok())
            .is_some_and(|n| n < SHARDS)));
        // Tickets that share a first character do not share a shard because of it...
        let same_start: std::collections::HashSet<String> = (0..200)
            .map(|i| format!("A{:0>42}", i))
            .map(|t| k.shard(&t))
            .collect();
        assert!(same_start.len() > 20, "{}", same_start.len());
        // ...and without the key the shard of a ticket cannot be told.
        let t = k.new_ticket();
        let moved = (2..40).filter(|&b| key(b).shard(&t) != k.shard(&t)).count();
        assert!(moved > 30, "{moved}");
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
