//! Password hashes: the stored format and the constant-time check.
//!
//! Hashes are PBKDF2-HMAC-SHA256, derived by the runtime's WebCrypto
//! (`runtime::webcrypto`): SubtleCrypto runs natively, far faster than PBKDF2 compiled to
//! wasm. This module owns everything that is not the derivation itself: the encoded form
//! stored in D1, parsing it back, password rules, and comparing a derived key against the
//! stored one without leaking timing.
//!
//! Stored form (one TEXT column): `pbkdf2-sha256$<iterations>$<salt>$<hash>`, with salt
//! and hash in unpadded base64url. The iteration count travels with each hash, so raising
//! the default later leaves existing users able to log in.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::secret::ct_eq;

/// Scheme tag at the front of every stored hash.
pub const SCHEME: &str = "pbkdf2-sha256";
/// Default PBKDF2 iterations; also the most the Workers platform's WebCrypto accepts.
pub const DEFAULT_ITERATIONS: u32 = 100_000;
/// Upper bound on iterations run for a stored hash (the platform refuses more).
pub const MAX_ITERATIONS: u32 = 100_000;
/// Lowest iteration count accepted in configuration or a stored hash.
pub const MIN_ITERATIONS: u32 = 1_000;
/// Salt length in bytes (random per user).
pub const SALT_BYTES: usize = 16;
/// Derived key length in bytes (one SHA-256 block).
pub const HASH_BYTES: usize = 32;
/// Password length rules for new passwords, in bytes of UTF-8.
pub const MIN_PASSWORD_BYTES: usize = 8;
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// A parsed stored hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordHash {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub hash: Vec<u8>,
}

/// Why a stored hash could not be used. Stored data is ours, so this is a server fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashFormatError {
    Scheme,
    Iterations,
    Encoding,
}

impl std::fmt::Display for HashFormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Scheme => "unknown password hash scheme",
            Self::Iterations => "password hash iteration count out of range",
            Self::Encoding => "password hash salt or digest is malformed",
        })
    }
}

impl PasswordHash {
    pub fn parse(stored: &str) -> Result<Self, HashFormatError> {
        let mut parts = stored.split('$');
        if parts.next() != Some(SCHEME) {
            return Err(HashFormatError::Scheme);
        }
        let iterations: u32 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .filter(|n| (MIN_ITERATIONS..=MAX_ITERATIONS).contains(n))
            .ok_or(HashFormatError::Iterations)?;
        let mut field = || {
            parts
                .next()
                .and_then(|s| URL_SAFE_NO_PAD.decode(s).ok())
                .filter(|b| !b.is_empty())
                .ok_or(HashFormatError::Encoding)
        };
        let salt = field()?;
        let hash = field()?;
        if parts.next().is_some() {
            return Err(HashFormatError::Encoding);
        }
        Ok(Self {
            iterations,
            salt,
            hash,
        })
    }

    pub fn encode(&self) -> String {
        format!(
            "{SCHEME}${}${}${}",
            self.iterations,
            URL_SAFE_NO_PAD.encode(&self.salt),
            URL_SAFE_NO_PAD.encode(&self.hash)
        )
    }

    /// True when `derived` (PBKDF2 of the candidate password with this hash's salt and
    /// iterations) equals the stored digest. Constant time in the digest's contents.
    pub fn matches(&self, derived: &[u8]) -> bool {
        ct_eq(&self.hash, derived)
    }

    /// The stand-in used when a username does not exist: login derives a key against it
    /// with the cost real users' hashes have ([`decoy_iterations`]) and compares, so an
    /// unknown user costs the same PBKDF2 work as a wrong password and the two cannot be
    /// told apart by timing. Its digest is all zero bytes, which no real derivation is
    /// expected to produce.
    pub fn decoy(iterations: u32) -> Self {
        Self {
            iterations,
            salt: vec![0x5a; SALT_BYTES],
            hash: vec![0; HASH_BYTES],
        }
    }
}

/// The iteration count of the decoy hash: the one most users' stored hashes have
/// (`typical`, when there are users), so that after `PBKDF2_ITERATIONS` changes an
/// unknown user still costs what a known one does; else the configured count.
pub fn decoy_iterations(typical: Option<u32>, configured: u32) -> u32 {
    typical
        .filter(|n| (MIN_ITERATIONS..=MAX_ITERATIONS).contains(n))
        .unwrap_or(configured)
}

/// Why a new password was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordRuleError {
    TooShort,
    TooLong,
}

impl std::fmt::Display for PasswordRuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooShort => write!(f, "password must be at least {MIN_PASSWORD_BYTES} bytes"),
            Self::TooLong => write!(f, "password must be at most {MAX_PASSWORD_BYTES} bytes"),
        }
    }
}

/// Rules a new password must meet (set through the admin API).
pub fn check_new_password(password: &str) -> Result<(), PasswordRuleError> {
    match password.len() {
        n if n < MIN_PASSWORD_BYTES => Err(PasswordRuleError::TooShort),
        n if n > MAX_PASSWORD_BYTES => Err(PasswordRuleError::TooLong),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PasswordHash {
        PasswordHash {
            iterations: 100_000,
            salt: (0u8..16).collect(),
            hash: (100u8..132).collect(),
        }
    }

    #[test]
    fn encode_parse_round_trip() {
        let h = sample();
        let s = h.encode();
        assert!(s.starts_with("pbkdf2-sha256$100000$"));
        assert_eq!(PasswordHash::parse(&s).unwrap(), h);
    }

    #[test]
    fn parse_rejects_bad_forms() {
        let good = sample().encode();
        let cases = [
            ("", HashFormatError::Scheme),
            ("bcrypt$10$abc$def", HashFormatError::Scheme),
            ("pbkdf2-sha256$x$AAAA$AAAA", HashFormatError::Iterations),
            ("pbkdf2-sha256$999$AAAA$AAAA", HashFormatError::Iterations),
            (
                "pbkdf2-sha256$100001$AAAA$AAAA",
                HashFormatError::Iterations,
            ),
            ("pbkdf2-sha256$100000$!!$AAAA", HashFormatError::Encoding),
            ("pbkdf2-sha256$100000$AAAA", HashFormatError::Encoding),
            ("pbkdf2-sha256$100000$$AAAA", HashFormatError::Encoding),
        ];
        for (input, want) in cases {
            assert_eq!(PasswordHash::parse(input), Err(want), "{input:?}");
        }
        assert_eq!(
            PasswordHash::parse(&format!("{good}$extra")),
            Err(HashFormatError::Encoding)
        );
    }

    #[test]
    fn matches_only_the_exact_digest() {
        let h = sample();
        assert!(h.matches(&h.hash));
        let mut other = h.hash.clone();
        other[31] ^= 1;
        assert!(!h.matches(&other));
        assert!(!h.matches(&h.hash[..31]));
        assert!(!h.matches(&[]));
    }

    #[test]
    fn decoy_never_matches_a_real_looking_digest() {
        let d = PasswordHash::decoy(DEFAULT_ITERATIONS);
        assert_eq!(d.iterations, DEFAULT_ITERATIONS);
        assert!(!d.matches(&[1u8; HASH_BYTES]));
    }

    #[test]
    fn new_password_rules() {
        assert_eq!(
            check_new_password("short"),
            Err(PasswordRuleError::TooShort)
        );
        assert_eq!(check_new_password("12345678"), Ok(()));
        assert_eq!(
            check_new_password(&"x".repeat(MAX_PASSWORD_BYTES + 1)),
            Err(PasswordRuleError::TooLong)
        );
    }

    #[test]
    fn the_decoy_costs_what_users_hashes_cost() {
        // Users hashed at 50,000 before the setting moved to 100,000.
        assert_eq!(decoy_iterations(Some(50_000), 100_000), 50_000);
        assert_eq!(decoy_iterations(None, 100_000), 100_000, "no users yet");
        // A count the platform would refuse is not copied.
        assert_eq!(decoy_iterations(Some(MAX_ITERATIONS + 1), 100_000), 100_000);
        assert_eq!(decoy_iterations(Some(0), 20_000), 20_000);
    }
}
