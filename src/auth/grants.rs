//! Per-room grants: the optional `rooms` claim.
//!
//! A token may carry `"rooms": ["lobby", "team-7.*"]`: exact room names, or prefixes that
//! end in `*` (`"*"` alone grants every room). The gate refuses a room the token does not
//! grant with 403 `room_forbidden`, before the room's Durable Object is called. A token
//! without the claim gets every room or none, by configuration (`ROOMS_OPEN_BY_DEFAULT`).

use crate::protocol::names::{is_valid_room_name, MAX_ROOM_NAME};

/// Most patterns one token may carry (keeps tokens and checks small).
pub const MAX_PATTERNS: usize = 64;

/// True when every pattern is an exact room name or a room-name prefix followed by `*`.
pub fn valid_patterns(patterns: &[String]) -> bool {
    patterns.len() <= MAX_PATTERNS
        && patterns.iter().all(|p| match p.strip_suffix('*') {
            Some("") => true,
            Some(prefix) => prefix.len() < MAX_ROOM_NAME && is_valid_room_name(prefix),
            None => is_valid_room_name(p),
        })
}

/// Whether `room` is granted by `patterns` (`None`: the token has no `rooms` claim).
pub fn allows(patterns: Option<&[String]>, room: &str, open_by_default: bool) -> bool {
    match patterns {
        None => open_by_default,
        Some(patterns) => patterns.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => room.starts_with(prefix),
            None => p == room,
        }),
    }
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
