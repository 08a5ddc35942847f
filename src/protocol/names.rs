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

/// A display name must be 1–64 characters, none of them hidden ([`is_hidden`]), and not
/// blank.
pub fn valid_display_name(name: &str) -> bool {
    let count = name.chars().count();
    (1..=MAX_DISPLAY_NAME).contains(&count) && !has_hidden(name) && !name.trim().is_empty()
}

/// Whether `c` is never shown as itself: a control character, or an invisible format
/// character (Unicode category Cf), which includes the bidirectional overrides and
/// isolates that make a name read as something else (a `U+202E` in `evil<U+202E>gnp.exe`
/// shows it as `evilexe.png`). The zero-width joiner is allowed: emoji sequences are made with it.
pub fn is_hidden(c: char) -> bool {
    const FORMAT: &[(u32, u32)] = &[
        (0x00AD, 0x00AD),
        (0x0600, 0x0605),
        (0x061C, 0x061C),
        (0x06DD, 0x06DD),
        (0x070F, 0x070F),
        (0x0890, 0x0891),
        (0x08E2, 0x08E2),
        (0x180E, 0x180E),
        (0x200B, 0x200C),
        (0x200E, 0x200F),
        (0x202A, 0x202E),
        (0x2060, 0x2064),
        (0x2066, 0x206F),
        (0xFEFF, 0xFEFF),
        (0xFFF9, 0xFFFB),
        (0x110BD, 0x110BD),
        (0x110CD, 0x110CD),
        (0x13430, 0x1343F),
        (0x1BCA0, 0x1BCA3),
        (0x1D173, 0x1D17A),
        (0xE0001, 0xE0001),
        (0xE0020, 0xE007F),
    ];
    let code = u32::from(c);
    c.is_control() || FORMAT.iter().any(|&(lo, hi)| (lo..=hi).contains(&code))
}

/// Whether `text` holds a hidden character.
pub fn has_hidden(text: &str) -> bool {
    text.chars().any(is_hidden)
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
        // A family emoji is joined with U+200D, which stays allowed.
        assert!(valid_display_name("Ana 👩\u{200D}👩\u{200D}👧"));
        assert!(valid_display_name("שלום"));
        for bad in ["", "   ", "tab\there", "new\nline", &"x".repeat(65)] {
            assert!(!valid_display_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn names_that_lie_are_refused() {
        let lies = [
            "admin\u{202E}nimda",     // right-to-left override
            "Alice\u{202A}",          // left-to-right embedding
            "\u{202D}Bob",            // left-to-right override
            "Carol\u{2066}x\u{2069}", // isolates
            "Dave\u{2067}",           // right-to-left isolate
            "Eve\u{2068}",            // first-strong isolate
            "Mal\u{200B}lory",        // zero-width space
            "Tr\u{200F}ent",          // right-to-left mark
            "\u{FEFF}Peggy",          // byte-order mark
            "Vic\u{00AD}tor",         // soft hyphen
            "Wal\u{2060}ter",         // word joiner
            "tag\u{E0041}",           // tag character
        ];
        for name in lies {
            assert!(has_hidden(name), "{name:?}");
            assert!(!valid_display_name(name), "{name:?}");
        }
        for c in ['a', 'é', '🌟', '\u{200D}', 'א', ' '] {
            assert!(!is_hidden(c), "{c:?}");
        }
        for c in (0x202A..=0x202E)
            .chain(0x2066..=0x2069)
            .filter_map(char::from_u32)
        {
            assert!(is_hidden(c), "U+{:04X}", u32::from(c));
        }
    }
}
