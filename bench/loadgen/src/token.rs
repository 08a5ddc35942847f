//! HS256 tokens in the wire subset's shape (bench/README.md), minted by the generator.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::io::Read;

/// `n` random bytes from the kernel.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("read /dev/urandom");
    buf
}

/// A random string of `n` characters from `[A-Za-z0-9]`.
pub fn random_alnum(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    random_bytes(n)
        .into_iter()
        // 256 % 62 != 0: a slight bias, irrelevant for a benchmark secret.
        .map(|b| ALPHABET[b as usize % ALPHABET.len()] as char)
        .collect()
}

pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// `base64url(header).base64url(claims).base64url(HMAC-SHA256(secret, signing input))`.
pub fn sign_hs256(secret: &[u8], header_json: &str, claims_json: &str) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header_json),
        URL_SAFE_NO_PAD.encode(claims_json)
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(input.as_bytes());
    let sig = mac.finalize().into_bytes();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// A valid token for user `u<i>`: header `{"alg":"HS256","typ":"JWT","kid":"primary"}`,
/// `iss = aud = "roomgate"`, `iat` now, `exp` now + 3600, random `jti`.
pub fn mint(secret: &str, i: usize) -> String {
    let now = now_unix();
    let header = r#"{"alg":"HS256","typ":"JWT","kid":"primary"}"#;
    let claims = serde_json::json!({
        "iss": "roomgate",
        "aud": "roomgate",
        "sub": format!("u{i}"),
        "name": format!("Bench user {i}"),
        "iat": now,
        "exp": now + 3600,
        "jti": random_alnum(16),
    })
    .to_string();
    sign_hs256(secret.as_bytes(), header, &claims)
}

/// The same token with its signature's first character changed: well-formed, wrongly
/// signed (the rejection path).
pub fn with_bad_signature(token: &str) -> String {
    let dot = token.rfind('.').expect("a JWT has two dots");
    let mut out = token.to_owned();
    let first = out.as_bytes()[dot + 1];
    let replacement = if first == b'A' { "B" } else { "A" };
    out.replace_range(dot + 1..dot + 2, replacement);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The HS256 example published on jwt.io (independent of this code).
    #[test]
    fn matches_the_jwt_io_example() {
        let token = sign_hs256(
            b"your-256-bit-secret",
            r#"{"alg":"HS256","typ":"JWT"}"#,
            r#"{"sub":"1234567890","name":"John Doe","iat":1516239022}"#,
        );
        assert_eq!(
            token,
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
             eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.\
             SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
        );
    }

    #[test]
    fn minted_claims_have_the_wire_shape() {
        let token = mint("0123456789abcdef0123456789abcdef", 7);
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "HS256");
        assert_eq!(header["kid"], "primary");
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["iss"], "roomgate");
        assert_eq!(claims["aud"], "roomgate");
        assert_eq!(claims["sub"], "u7");
        assert_eq!(
            claims["exp"].as_u64().unwrap(),
            claims["iat"].as_u64().unwrap() + 3600
        );
        let bad = with_bad_signature(&token);
        assert_ne!(bad, token);
        assert_eq!(bad.len(), token.len());
        assert_eq!(
            bad.rsplit_once('.').unwrap().0,
            token.rsplit_once('.').unwrap().0
        );
    }
}
