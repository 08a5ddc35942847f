//! Per-room grants: the optional `rooms` claim, and room-pattern lists in general.
//!
//! A token may carry `"rooms": ["lobby", "team-7.*"]`: exact room names, or prefixes that
//! end in `*` (`"*"` alone grants every room), each with every right; or an object that
//! gives each pattern its capabilities, `{"lobby": ["subscribe", "publish"]}`. A socket's
//! rights in a room are the union of its matching entries' ([`rights`]). The gate refuses
//! a room where the token lacks `subscribe` with 403 `room_forbidden`, before the room's
//! Durable Object is called. An own token without the claim gets every room or none, by
//! configuration (`ROOMS_OPEN_BY_DEFAULT`); an external issuer's gets the issuer's
//! `default_rooms` (`auth::keyring`).

use crate::protocol::identity::{Capability, Rights, RoomGrants};
use crate::protocol::names::{is_valid_room_name, MAX_ROOM_NAME};

/// Most patterns one token may carry (keeps tokens and checks small).
pub const MAX_PATTERNS: usize = 64;

/// True when every pattern is an exact room name or a room-name prefix followed by `*`.
pub fn valid_patterns(patterns: &[String]) -> bool {
    patterns.len() <= MAX_PATTERNS && patterns.iter().all(|p| valid_pattern(p))
}

fn valid_pattern(p: &str) -> bool {
    match p.strip_suffix('*') {
        Some("") => true,
        Some(prefix) => prefix.len() < MAX_ROOM_NAME && is_valid_room_name(prefix),
        None => is_valid_room_name(p),
    }
}

/// True when grants of either form have at most [`MAX_PATTERNS`] valid patterns.
pub fn valid(grants: &RoomGrants) -> bool {
    let patterns = grants.patterns();
    patterns.len() <= MAX_PATTERNS && patterns.into_iter().all(valid_pattern)
}

fn matches(pattern: &str, room: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => room.starts_with(prefix),
        None => pattern == room,
    }
}

/// Whether `room` is matched by `patterns` (`None`: no list, then `open_by_default`).
pub fn allows(patterns: Option<&[String]>, room: &str, open_by_default: bool) -> bool {
    match patterns {
        None => open_by_default,
        Some(patterns) => patterns.iter().any(|p| matches(p, room)),
    }
}

/// A socket's rights in `room` under `grants` (`None`: an own token without a `rooms`
/// claim: every right, or none, by `open_by_default`).
pub fn rights(grants: Option<&RoomGrants>, room: &str, open_by_default: bool) -> Rights {
    match grants {
        None if open_by_default => Rights::ALL,
        None => Rights::NONE,
        Some(RoomGrants::Full(patterns)) if allows(Some(patterns), room, false) => Rights::ALL,
        Some(RoomGrants::Full(_)) => Rights::NONE,
        Some(RoomGrants::Scoped(map)) => map
            .iter()
            .filter(|(pattern, _)| matches(pattern, room))
            .fold(Rights::NONE, |all, (_, caps)| all.union(Rights::of(caps))),
    }
}

/// Whether `grants` let a socket into `room` at all (`subscribe`).
pub fn enters(grants: Option<&RoomGrants>, room: &str, open_by_default: bool) -> bool {
    rights(grants, room, open_by_default).has(Capability::Subscribe)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn matching_table() {
        let grants = v(&["lobby", "team-7.*"]);
        let cases = [
            (Some(grants.as_slice()), "lobby", true),
            (Some(grants.as_slice()), "lobby2", false),
            (Some(grants.as_slice()), "team-7.general", true),
            (Some(grants.as_slice()), "team-7.", true),
            (Some(grants.as_slice()), "team-8.general", false),
            (Some(&[][..]), "lobby", false),
        ];
        for (patterns, room, want) in cases {
            assert_eq!(allows(patterns, room, true), want, "{room}");
        }
        let all = v(&["*"]);
        assert!(allows(Some(&all), "anything", false));
        assert!(allows(None, "x", true));
        assert!(!allows(None, "x", false));
    }

    #[test]
    fn rights_are_the_union_of_the_matching_entries() {
        use Capability::*;
        let scoped: RoomGrants = serde_json::from_value(serde_json::json!({
            "lobby": ["subscribe", "publish", "presence"],
            "dash.*": ["subscribe"],
            "dash.ops": ["history"],
            "*": ["presence"],
        }))
        .unwrap();
        let r = |room| rights(Some(&scoped), room, true).capabilities();
        assert_eq!(r("lobby"), [Subscribe, Publish, Presence]);
        assert_eq!(r("dash.sales"), [Subscribe, Presence]);
        assert_eq!(r("dash.ops"), [Subscribe, Presence, History]);
        assert_eq!(r("elsewhere"), [Presence]);
        assert!(
            !enters(Some(&scoped), "elsewhere", true),
            "presence alone is no entry"
        );
        assert!(enters(Some(&scoped), "dash.ops", false));

        let full = RoomGrants::Full(v(&["lobby"]));
        assert_eq!(rights(Some(&full), "lobby", false), Rights::ALL);
        assert_eq!(rights(Some(&full), "other", true), Rights::NONE);
        assert_eq!(rights(None, "x", true), Rights::ALL);
        assert_eq!(rights(None, "x", false), Rights::NONE);
        let nothing = RoomGrants::Scoped(Default::default());
        assert_eq!(rights(Some(&nothing), "x", true), Rights::NONE);
    }

    #[test]
    fn grants_of_either_form_are_validated() {
        assert!(valid(&RoomGrants::Full(v(&["lobby", "a*"]))));
        let scoped: RoomGrants =
            serde_json::from_value(serde_json::json!({"a*": ["subscribe"], "b": []})).unwrap();
        assert!(valid(&scoped));
        let bad: RoomGrants =
            serde_json::from_value(serde_json::json!({"a b": ["subscribe"]})).unwrap();
        assert!(!valid(&bad));
        let many: std::collections::BTreeMap<String, Vec<Capability>> = (0..=MAX_PATTERNS)
            .map(|i| (format!("r{i}"), vec![]))
            .collect();
        assert!(!valid(&RoomGrants::Scoped(many)));
    }

    #[test]
    fn pattern_validation() {
        assert!(valid_patterns(&v(&["lobby", "a*", "*", "team-7.*"])));
        for bad in [&["a b"][..], &["**"], &["a*b"], &["a/b*"], &[""]] {
            assert!(!valid_patterns(&v(bad)), "{bad:?}");
        }
        assert!(valid_patterns(&v(&[&"a".repeat(64)])));
        assert!(!valid_patterns(&v(&[&format!("{}*", "a".repeat(64))])));
        let many: Vec<String> = (0..=MAX_PATTERNS).map(|i| format!("r{i}")).collect();
        assert!(!valid_patterns(&many));
    }
}
