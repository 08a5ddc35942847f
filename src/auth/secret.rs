//! Secrets: constant-time comparison and randomness.
//!
//! Comparisons of secret material (password hashes, the admin token) must not return early
//! on the first differing byte, or response timing tells an attacker how much of a guess
//! was right. Randomness comes from the OS on the host and from `crypto.getRandomValues`
//! in the Workers runtime (getrandom's `wasm_js` backend).

use std::hint::black_box;

/// Compares two byte strings in time that depends only on their lengths, never on where
/// they differ. Unequal lengths compare unequal; the length of `expected` (the secret) is
/// the only thing the running time reveals about it.
pub fn ct_eq(expected: &[u8], actual: &[u8]) -> bool {
    let mut diff = u8::from(expected.len() != actual.len());
    for (i, &e) in expected.iter().enumerate() {
        // Past the end of `actual`, compare against a value that cannot match a run of
        // equal bytes only, while still touching every byte of the secret.
        let a = actual.get(i).copied().unwrap_or(!e);
        diff |= black_box(e ^ a);
    }
    black_box(diff) == 0
}

/// The shortest shared secret roomgate accepts (`JWT_SECRET`, `ADMIN_TOKEN`, an HMAC key):
/// 256 bits, the strength of the HMAC-SHA256 it keys.
pub const MIN_SECRET_BYTES: usize = 32;

/// Fills `N` bytes from the platform's cryptographic random source.
///
/// # Panics
/// If the platform has no random source; the Workers runtime and every supported host OS
/// have one, so this is a broken-platform condition, not an input error.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).expect("platform random source unavailable");
    buf
}

/// A random 128-bit identifier as 32 lowercase hex characters (user ids, `jti`s,
/// connection ids).
pub fn random_id() -> String {
    hex(&random_bytes::<16>())
}

/// Lowercase hex encoding.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ct_eq_table() {
        let cases: &[(&[u8], &[u8], bool)] = &[
            (b"", b"", true),
            (b"secret", b"secret", true),
            (b"secret", b"secreT", false),
            (b"secret", b"Secret", false),
            (b"secret", b"secre", false),
            (b"secret", b"secrets", false),
            (b"secret", b"", false),
            (b"", b"x", false),
            (b"\x00", b"\xff", false),
        ];
        for &(a, b, want) in cases {
            assert_eq!(ct_eq(a, b), want, "ct_eq({a:?}, {b:?})");
        }
    }

    #[test]
    fn random_ids_are_hex_and_distinct() {
        let a = random_id();
        let b = random_id();
        assert_eq!(a.len(), 32);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }

    #[test]
    fn hex_encodes() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }
}
