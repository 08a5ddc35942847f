//! Who is behind a socket, and what can refuse them: the verified [`Identity`] the
//! Worker hands a room, and a [`Revocation`] of one token or one user.
//!
//! Both cross from the Worker to its Durable Objects (the handoff, ticket records, the
//! revocation push), so they are defined here, below everything that produces or reads
//! them.

use serde::{Deserialize, Serialize};

/// The verified identity behind a socket: what the gate hands the room, and what the room
/// keeps in the socket's attachment. Never the raw token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// User id (`sub`, with the issuer's prefix for external issuers).
    pub sub: String,
    /// Display name (`name`, or `sub` when the issuer sent none).
    pub name: String,
    /// Expiry, unix seconds.
    pub exp: u64,
    /// Token id, when the token carried one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Room grants (`rooms` claim), when the token carried them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rooms: Option<Vec<String>>,
}

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

    /// The target stored as `kind` / `value` (`None` for an unknown kind).
    pub fn from_stored(kind: &str, value: String) -> Option<Self> {
        match kind {
            "jti" => Some(Self::Jti(value)),
            "sub" => Some(Self::Sub(value)),
            _ => None,
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

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

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

    #[test]
    fn stored_targets_round_trip() {
        for t in [Target::Jti("a".into()), Target::Sub("b".into())] {
            let back = Target::from_stored(t.kind(), t.value().to_owned());
            assert_eq!(back, Some(t));
        }
        assert_eq!(Target::from_stored("iss", "x".into()), None);
    }
}
