//! API keys: how a team's backend proves itself to the server API (`/api/v1/...`).
//!
//! A key is `rgk_<id>_<secret>`: `id` is 16 lowercase hex characters, public (the admin
//! listing shows it, `DELETE /admin/api-keys/{id}` names it); `secret` is 32 random
//! bytes as 43 characters of unpadded base64url. Only the SHA-256 of the whole key is
//! stored. A 256-bit random secret cannot be guessed, so it needs no slow hash the way a
//! password does, and a fast one keeps every API request cheap.
//!
//! A presented key is checked in three steps: its shape (a malformed one is refused
//! with no store call), the stored record under its `id`, and the digest, compared in
//! constant time. Then [`ApiKey::permits`] says whether the key may do what it asks.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::grants::{self, MAX_PATTERNS};
use super::secret::{ct_eq, hex, random_bytes};
use crate::protocol::names::{is_valid_room_name, MAX_ROOM_NAME};

pub const KEY_PREFIX: &str = "rgk_";
const ID_BYTES: usize = 8;
const SECRET_BYTES: usize = 32;
/// `rgk_` + 16 hex + `_` + 43 base64url.
pub const KEY_LEN: usize = KEY_PREFIX.len() + ID_BYTES * 2 + 1 + 43;

/// What a key may do. Each endpoint of the server API needs one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// `POST /api/v1/rooms/{room}/messages`, `POST /api/v1/publish`.
    Publish,
    /// `GET /api/v1/rooms/{room}/members`.
    Presence,
    /// `GET /api/v1/rooms/{room}/messages`.
    History,
    /// `GET /api/v1/rooms`.
    Rooms,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Self::Publish => "publish",
            Self::Presence => "presence",
            Self::History => "history",
            Self::Rooms => "rooms",
        }
    }
}

/// A key as stored and listed: everything but the key and its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    /// Room patterns (as in a token's `rooms` claim) of the rooms the key may act in.
    pub rooms: Vec<String>,
    pub created_at: u64,
}

/// Why a key may not do what it asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// The key lacks the scope.
    Scope(Scope),
    /// The room is outside the key's patterns.
    Room,
}

impl ApiKey {
    /// Whether the key holds `scope` and, when the request names a room, whether its
    /// patterns cover it.
    pub fn permits(&self, scope: Scope, room: Option<&str>) -> Result<(), Denied> {
        if !self.scopes.contains(&scope) {
            return Err(Denied::Scope(scope));
        }
        match room {
            Some(room) if !self.covers(room) => Err(Denied::Room),
            _ => Ok(()),
        }
    }

    /// Whether `room` is one the key may act in.
    pub fn covers(&self, room: &str) -> bool {
        grants::allows(Some(&self.rooms), room, false)
    }

    /// The `from.id` of the messages the key publishes.
    pub fn sender_id(&self) -> String {
        format!("api:{}", self.name)
    }
}

/// What `POST /admin/api-keys` asks for, before it is checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRequest {
    pub name: String,
    pub scopes: Vec<String>,
    pub rooms: Vec<String>,
}

/// Checks a key request: the name is 1-64 characters of `[A-Za-z0-9_.-]`, the scopes
/// are known and at least one (duplicates folded), the room patterns valid and at least
/// one. Answers the scopes in their canonical order.
pub fn check_request(request: &KeyRequest) -> Result<Vec<Scope>, String> {
    if !is_valid_room_name(&request.name) {
        return Err(format!(
            "name must be 1-{MAX_ROOM_NAME} characters of [A-Za-z0-9_.-]"
        ));
    }
    let mut scopes = Vec::new();
    for raw in &request.scopes {
        let scope = match raw.as_str() {
            "publish" => Scope::Publish,
            "presence" => Scope::Presence,
            "history" => Scope::History,
            "rooms" => Scope::Rooms,
            other => {
                return Err(format!(
                    "unknown scope {other:?}; scopes are publish, presence, history, rooms"
                ))
            }
        };
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    if scopes.is_empty() {
        return Err("scopes must name at least one of publish, presence, history, rooms".into());
    }
    scopes.sort_by_key(|s| *s as u8);
    if request.rooms.is_empty() || !grants::valid_patterns(&request.rooms) {
        return Err(format!(
            "rooms must be 1-{MAX_PATTERNS} room names or prefixes ending in * (\"*\": every room)"
        ));
    }
    Ok(scopes)
}

/// A new key: its public id and the whole key, shown once.
pub struct NewKey {
    pub id: String,
    pub key: String,
}

impl NewKey {
    pub fn generate() -> Self {
        let id = hex(&random_bytes::<ID_BYTES>());
        let secret = URL_SAFE_NO_PAD.encode(random_bytes::<SECRET_BYTES>());
        let key = format!("{KEY_PREFIX}{id}_{secret}");
        Self { id, key }
    }
}

/// The id inside a presented key, if the key has the shape of one (`None`: refuse it
/// without looking anything up).
pub fn key_id(presented: &str) -> Option<&str> {
    if presented.len() != KEY_LEN {
        return None;
    }
    let rest = presented.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_at_checked(ID_BYTES * 2)?;
    let secret = secret.strip_prefix('_')?;
    let id_ok = id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let secret_ok = secret
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then_some(id)
}

/// The stored digest of a key: SHA-256 as lowercase hex.
pub fn digest(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

/// Whether `presented` is the key whose digest is `stored`, in constant time.
pub fn matches(stored: &str, presented: &str) -> bool {
    ct_eq(stored.as_bytes(), digest(presented).as_bytes())
}

/// The longest `idempotency_key` a publish may carry.
pub const MAX_IDEMPOTENCY_KEY: usize = 128;

/// Whether an `idempotency_key` is usable: 1-128 bytes, no control characters.
pub fn valid_idempotency_key(key: &str) -> bool {
    (1..=MAX_IDEMPOTENCY_KEY).contains(&key.len()) && !key.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(name: &str, scopes: &[&str], rooms: &[&str]) -> KeyRequest {
        KeyRequest {
            name: name.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            rooms: rooms.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn key(scopes: &[Scope], rooms: &[&str]) -> ApiKey {
        ApiKey {
            id: "0123456789abcdef".into(),
            name: "orders".into(),
            scopes: scopes.to_vec(),
            rooms: rooms.iter().map(|s| s.to_string()).collect(),
            created_at: 1,
        }
    }

    #[test]
    fn a_generated_key_parses_back_to_its_id_and_matches_its_digest() {
        let new = NewKey::generate();
        assert_eq!(new.key.len(), KEY_LEN);
        assert_eq!(key_id(&new.key), Some(new.id.as_str()));
        let stored = digest(&new.key);
        assert!(matches(&stored, &new.key));
        let other = NewKey::generate();
        assert_ne!(other.key, new.key);
        assert!(!matches(&stored, &other.key));
    }

    #[test]
    fn malformed_keys_have_no_id() {
        let good = NewKey::generate().key;
        let mut cases = vec![
            String::new(),
            "rgk_".into(),
            good[..good.len() - 1].to_string(),
            format!("{good}x"),
            good.replacen("rgk_", "rgx_", 1),
            good.to_uppercase(),
        ];
        // A non-hex id, a missing separator, a character outside base64url.
        let mut bytes = good.clone().into_bytes();
        bytes[4] = b'g';
        cases.push(String::from_utf8(bytes).unwrap());
        let mut bytes = good.clone().into_bytes();
        bytes[20] = b'x';
        cases.push(String::from_utf8(bytes).unwrap());
        let mut bytes = good.into_bytes();
        bytes[30] = b'+';
        cases.push(String::from_utf8(bytes).unwrap());
        for bad in cases {
            assert_eq!(key_id(&bad), None, "{bad:?}");
        }
        // Multi-byte characters of the right total length do not panic the split.
        let wide = format!("rgk_{}", "é".repeat((KEY_LEN - 4) / 2));
        assert_eq!(key_id(&wide), None);
    }

    #[test]
    fn requests_are_checked_and_scopes_put_in_order() {
        let ok = check_request(&request("orders", &["rooms", "publish", "rooms"], &["*"]));
        assert_eq!(ok, Ok(vec![Scope::Publish, Scope::Rooms]));
        for bad in [
            request("", &["publish"], &["*"]),
            request("has space", &["publish"], &["*"]),
            request(&"n".repeat(65), &["publish"], &["*"]),
            request("orders", &[], &["*"]),
            request("orders", &["admin"], &["*"]),
            request("orders", &["Publish"], &["*"]),
            request("orders", &["publish"], &[]),
            request("orders", &["publish"], &["bad room"]),
        ] {
            assert!(check_request(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unknown_fields_in_a_request_are_refused() {
        let text = r#"{"name":"a","scopes":["publish"],"rooms":["*"],"admin":true}"#;
        assert!(serde_json::from_str::<KeyRequest>(text).is_err());
    }

    #[test]
    fn a_key_permits_its_scopes_in_its_rooms_only() {
        let k = key(&[Scope::Publish, Scope::History], &["orders.*", "lobby"]);
        assert_eq!(k.permits(Scope::Publish, Some("orders.7")), Ok(()));
        assert_eq!(k.permits(Scope::History, Some("lobby")), Ok(()));
        assert_eq!(k.permits(Scope::Publish, Some("lobby2")), Err(Denied::Room));
        assert_eq!(
            k.permits(Scope::Presence, Some("lobby")),
            Err(Denied::Scope(Scope::Presence))
        );
        assert_eq!(
            k.permits(Scope::Rooms, None),
            Err(Denied::Scope(Scope::Rooms))
        );
        assert_eq!(
            key(&[Scope::Rooms], &["*"]).permits(Scope::Rooms, None),
            Ok(())
        );
        assert_eq!(k.sender_id(), "api:orders");
    }

    #[test]
    fn idempotency_keys_are_bounded_and_printable() {
        assert!(valid_idempotency_key("order-17/shipped"));
        assert!(valid_idempotency_key(&"k".repeat(128)));
        assert!(!valid_idempotency_key(""));
        assert!(!valid_idempotency_key(&"k".repeat(129)));
        assert!(!valid_idempotency_key("a\nb"));
    }

    #[test]
    fn scopes_serialize_by_name() {
        for s in [
            Scope::Publish,
            Scope::Presence,
            Scope::History,
            Scope::Rooms,
        ] {
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.name())
            );
        }
    }
}
