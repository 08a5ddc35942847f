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
    /// When the token was issued, unix seconds.
    #[serde(default)]
    pub iat: u64,
    /// Token id, when the token carried one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Room grants (`rooms` claim), when the token carried them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rooms: Option<Vec<String>>,
}

/// What a revocation refuses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// One token, by its `jti`.
    Jti(String),
    /// Every token of one user, by `sub`.
    Sub(String),
    /// The tokens of one user issued before a time (unix seconds): what a change of the
    /// user's room grants revokes, so that only tokens with the new grants work.
    SubIssuedBefore { sub: String, before: u64 },
}

impl Target {
    /// The `kind` column in storage.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Jti(_) => "jti",
            Self::Sub(_) => "sub",
            Self::SubIssuedBefore { .. } => "sub_before",
        }
    }

    pub fn value(&self) -> &str {
        match self {
            Self::Jti(v) | Self::Sub(v) | Self::SubIssuedBefore { sub: v, .. } => v,
        }
    }

    /// The `issued_before` column in storage (only a `sub_before` target has one).
    pub fn issued_before(&self) -> Option<u64> {
        match self {
            Self::SubIssuedBefore { before, .. } => Some(*before),
            _ => None,
        }
    }

    /// The target stored as `kind` / `value` / `issued_before` (`None` for an unknown
    /// kind, or a `sub_before` row without its time).
    pub fn from_stored(kind: &str, value: String, issued_before: Option<u64>) -> Option<Self> {
        match kind {
            "jti" => Some(Self::Jti(value)),
            "sub" => Some(Self::Sub(value)),
            "sub_before" => Some(Self::SubIssuedBefore {
                sub: value,
                before: issued_before?,
            }),
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

/// What a revocation is matched against: the facts of one token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenFacts<'a> {
    pub sub: &'a str,
    pub jti: Option<&'a str>,
    pub iat: u64,
}

impl<'a> From<&'a Identity> for TokenFacts<'a> {
    fn from(identity: &'a Identity) -> Self {
        Self {
            sub: &identity.sub,
            jti: identity.jti.as_deref(),
            iat: identity.iat,
        }
    }
}

impl Revocation {
    /// True when `token` is refused at time `now`.
    pub fn applies_to(&self, token: TokenFacts<'_>, now: u64) -> bool {
        now < self.until
            && match &self.target {
                Target::Sub(s) => s == token.sub,
                Target::Jti(j) => token.jti == Some(j.as_str()),
                Target::SubIssuedBefore { sub, before } => sub == token.sub && token.iat < *before,
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn facts<'a>(sub: &'a str, jti: Option<&'a str>) -> TokenFacts<'a> {
        TokenFacts { sub, jti, iat: 0 }
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
                rev.applies_to(facts(sub, jti), now),
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
        let before = Target::SubIssuedBefore {
            sub: "c".into(),
            before: 7,
        };
        for t in [Target::Jti("a".into()), Target::Sub("b".into()), before] {
            let back = Target::from_stored(t.kind(), t.value().to_owned(), t.issued_before());
            assert_eq!(back, Some(t));
        }
        assert_eq!(Target::from_stored("iss", "x".into(), None), None);
        assert_eq!(Target::from_stored("sub_before", "x".into(), None), None);
    }

    #[test]
    fn a_revocation_of_old_tokens_spares_the_new_ones() {
        let old = Revocation {
            target: Target::SubIssuedBefore {
                sub: "u1".into(),
                before: NOW,
            },
            until: NOW + 100,
        };
        let at = |iat| TokenFacts {
            sub: "u1",
            jti: Some("j"),
            iat,
        };
        assert!(old.applies_to(at(NOW - 1), NOW + 5), "issued before");
        assert!(!old.applies_to(at(NOW), NOW + 5), "issued at the change");
        assert!(!old.applies_to(at(NOW + 3), NOW + 5), "issued after");
        assert!(
            !old.applies_to(TokenFacts { sub: "u2", ..at(0) }, NOW + 5),
            "another user"
        );
        assert!(!old.applies_to(at(0), NOW + 100), "until is exclusive");
    }
}
