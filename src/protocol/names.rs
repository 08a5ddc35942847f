//! Names and the rules they follow: room names, usernames, display names, and the bounds
//! on the identity claims every socket carries.
//!
//! Each rule is defined once here and checked wherever a name enters: the gate, the admin
//! API, the token verifier. Room names become Durable Object names and appear in frames
//! and logs, so their alphabet is small and URL-safe. Identity claims are kept in the
//! socket's attachment (which the platform caps at 2,048 bytes) and copied into frames,
//! so they are bounded like any other input.

/// Longest room name accepted.
pub const MAX_ROOM_NAME: usize = 64;
/// Longest username (after lowercasing; ASCII, so characters and bytes agree).
pub const MAX_USERNAME: usize = 64;
/// Longest display name the admin API stores, in characters.
pub const MAX_DISPLAY_NAME: usize = 64;
/// Longest `sub`, `name` and `jti` claims a token may carry, in bytes.
pub const MAX_SUB_BYTES: usize = 128;
pub const MAX_NAME_BYTES: usize = 128;
pub const MAX_JTI_BYTES: usize = 128;
/// Longest prefix a trusted issuer puts in front of its users' `sub`.
pub const MAX_SUB_PREFIX: usize = 128;
/// Longest user id the gate can accept: an issuer's prefix and a `sub`. Everything that
/// names a user (kick, revocation) accepts ids up to this length.
pub const MAX_USER_ID_BYTES: usize = MAX_SUB_PREFIX + MAX_SUB_BYTES;

/// True when `name` matches `^[A-Za-z0-9_.-]{1,64}$`.
pub fn is_valid_room_name(name: &str) -> bool {
    (1..=MAX_ROOM_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Normalizes a username for storage and lookup, or `None` when it is not acceptable:
/// 1–64 characters of `[a-z0-9_.-]` after lowercasing. Usernames are stored lowercased
/// and matched exactly, so `Alice` and `alice` are one account.
pub fn normalize_username(raw: &str) -> Option<String> {
    let name = raw.to_ascii_lowercase();
    let ok = (1..=MAX_USERNAME).contains(&name.len())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        });
    ok.then_some(name)
}

/// A display name must be 1–64 characters with no control characters.
pub fn valid_display_name(name: &str) -> bool {
    let count = name.chars().count();
    (1..=MAX_DISPLAY_NAME).contains(&count)
        && !name.chars().any(char::is_control)
        && !name.trim().is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names() {
        let long_ok = "a".repeat(64);
        let too_long = "a".repeat(65);
        let cases: &[(&str, bool)] = &[
            ("lobby", true),
            ("Team-7_chat.v2", true),
            ("a", true),
            ("...", true),
            (&long_ok, true),
            ("", false),
            (&too_long, false),
            ("with space", false),
            ("slash/inside", false),
            ("percent%20", false),
            ("émoji", false),
            ("semi;colon", false),
            ("q?x", false),
        ];
        for &(name, want) in cases {
            assert_eq!(is_valid_room_name(name), want, "{name:?}");
        }
    }

    #[test]
    fn usernames() {
        assert_eq!(normalize_username("Alice").as_deref(), Some("alice"));
        assert_eq!(
            normalize_username("bob_2.x-y").as_deref(),
            Some("bob_2.x-y")
        );
        for bad in ["", "a b", "ünï", "a/b", &"a".repeat(65)] {
            assert_eq!(normalize_username(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn display_names() {
        assert!(valid_display_name("Alice Liddell"));
        assert!(valid_display_name("Zoë 🌟"));
        for bad in ["", "   ", "tab\there", "new\nline", &"x".repeat(65)] {
            assert!(!valid_display_name(bad), "{bad:?}");
        }
    }
}
