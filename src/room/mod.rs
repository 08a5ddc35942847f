//! Rooms: membership, fan-out and the wire protocol, as plain Rust.
//!
//! The Durable Object in `glue::room_object` owns sockets and storage; everything it
//! decides — what a frame means, who hears about it, which close code ends a socket — is
//! decided here, from data alone, so it is unit-tested on the host.
//!
//! - [`protocol`]: frames on the wire (parse client frames, render server frames, close
//!   codes).
//! - [`state`]: the room core: takes events (join, leave, frame, kick, revocation) and
//!   returns what to do.
//! - [`expiry`]: the same for token lifetimes on live sockets (alarm, warning, refresh).
//! - [`history`]: the kept messages: trimming, replay on resume (`gap`), `history` pages.
//! - [`rate`]: the per-connection frame rate limit (token bucket).

pub mod expiry;
pub mod history;
pub mod protocol;
pub mod rate;
pub mod state;

/// Longest room name accepted.
pub const MAX_ROOM_NAME: usize = 64;

/// True when `name` matches `^[A-Za-z0-9_.-]{1,64}$`. Room names become Durable Object
/// names and appear in frames and logs, so the alphabet is small and URL-safe.
pub fn is_valid_room_name(name: &str) -> bool {
    (1..=MAX_ROOM_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
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
}
