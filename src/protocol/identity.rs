//! Who is behind a socket, and what can refuse them: the verified [`Identity`] the
//! Worker hands a room, and a [`Revocation`] of one token or one user.
//!
//! Both cross from the Worker to its Durable Objects (the handoff, ticket records, the
//! revocation push), so they are defined here, below everything that produces or reads
//! them.

use std::collections::BTreeMap;

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
    /// Room grants: the `rooms` claim, or for an external issuer's token without one the
    /// issuer's `default_rooms` (`None`: an own token without the claim, governed by
    /// `ROOMS_OPEN_BY_DEFAULT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rooms: Option<RoomGrants>,
}

/// The `rooms` claim (and a user's stored grants): room patterns (exact names, or
/// prefixes ending in `*`), as a list with full rights in every room it matches, or as an
/// object mapping each pattern to its capabilities. In a room, the rights are the union
/// of every matching entry's (`auth::grants::rights`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RoomGrants {
    /// `["lobby", "team-7.*"]`.
    Full(Vec<String>),
    /// `{"lobby": ["subscribe", "publish", "presence"], "dash.*": ["subscribe"]}`.
    Scoped(BTreeMap<String, Vec<Capability>>),
}

impl RoomGrants {
    /// The patterns, whatever the form.
    pub fn patterns(&self) -> Vec<&str> {
        match self {
            Self::Full(list) => list.iter().map(String::as_str).collect(),
            Self::Scoped(map) => map.keys().map(String::as_str).collect(),
        }
    }
}

/// One right in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// Enter the room: receive its messages, resume with `since`. Without it the gate
    /// refuses the room (403 `room_forbidden`).
    Subscribe,
    /// Send `publish` frames.
    Publish,
    /// Appear in `members`, `join` and `leave`, and receive them.
    Presence,
    /// Page back with `history` frames.
    History,
}

impl Capability {
    pub const ALL: [Capability; 4] = [
        Capability::Subscribe,
        Capability::Publish,
        Capability::Presence,
        Capability::History,
    ];

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of capabilities: what one socket may do in its room. Kept as a bit set in the
/// handoff and the socket's attachment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Rights(u8);

impl Rights {
    pub const NONE: Rights = Rights(0);
    pub const ALL: Rights = Rights(0b1111);

    pub fn of(capabilities: &[Capability]) -> Self {
        Rights(capabilities.iter().fold(0, |bits, c| bits | c.bit()))
    }

    pub fn has(self, capability: Capability) -> bool {
        self.0 & capability.bit() != 0
    }

    pub fn union(self, other: Rights) -> Self {
        Rights(self.0 | other.0)
    }

    pub fn without(self, capability: Capability) -> Self {
        Rights(self.0 & !capability.bit())
    }

    /// The capabilities in the set, in [`Capability::ALL`]'s order.
    pub fn capabilities(self) -> Vec<Capability> {
        Capability::ALL
            .into_iter()
            .filter(|c| self.has(*c))
            .collect()
    }
}

impl Default for Rights {
    /// What a socket accepted before rights existed had: everything.
    fn default() -> Self {
        Rights::ALL
    }
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
    fn grants_take_either_form_and_refuse_unknown_capabilities() {
        let full: RoomGrants = serde_json::from_str(r#"["lobby","team-*"]"#).unwrap();
        assert_eq!(
            full,
            RoomGrants::Full(vec!["lobby".into(), "team-*".into()])
        );
        let scoped: RoomGrants =
            serde_json::from_str(r#"{"lobby":["subscribe","publish"],"dash.*":[]}"#).unwrap();
        let RoomGrants::Scoped(map) = &scoped else {
            panic!("{scoped:?}")
        };
        assert_eq!(map["lobby"], [Capability::Subscribe, Capability::Publish]);
        assert_eq!(scoped.patterns(), ["dash.*", "lobby"]);
        for bad in [
            r#"{"lobby":["admin"]}"#,
            r#"{"lobby":"subscribe"}"#,
            "5",
            r#"[1]"#,
        ] {
            assert!(serde_json::from_str::<RoomGrants>(bad).is_err(), "{bad}");
        }
        // Round trips keep the form.
        for g in [full, scoped] {
            let text = serde_json::to_string(&g).unwrap();
            assert_eq!(serde_json::from_str::<RoomGrants>(&text).unwrap(), g);
        }
    }

    #[test]
    fn rights_are_a_set() {
        let r = Rights::of(&[Capability::Subscribe, Capability::History]);
        assert!(r.has(Capability::Subscribe) && r.has(Capability::History));
        assert!(!r.has(Capability::Publish) && !r.has(Capability::Presence));
        assert_eq!(
            r.capabilities(),
            [Capability::Subscribe, Capability::History]
        );
        assert_eq!(
            r.union(Rights::of(&[Capability::Publish])).capabilities(),
            [
                Capability::Subscribe,
                Capability::Publish,
                Capability::History
            ]
        );
        assert_eq!(Rights::of(&Capability::ALL), Rights::ALL);
        assert_eq!(
            r.without(Capability::History).capabilities(),
            [Capability::Subscribe]
        );
        assert_eq!(r.without(Capability::Publish), r);
        assert_eq!(Rights::default(), Rights::ALL);
        assert!(Rights::NONE.capabilities().is_empty());
        assert_eq!(serde_json::to_string(&r).unwrap(), "9");
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
