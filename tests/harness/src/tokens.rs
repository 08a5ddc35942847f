//! Test tokens made without the server's code: HS256 minting, claims, unverified
//! decoding, and surgery on a token's segments.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::runtime::JWT_SECRET;

/// Decodes a JWT's payload without verifying it (to read `sub`, `exp`, ...).
pub fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("jwt payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// Mints an HS256-signed JWT with any header and claims — an implementation independent
/// of the server's, so tests can forge exactly the token they mean.
pub fn mint(secret: &[u8], header: &Value, claims: &Value) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(signing_input.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{sig}")
}

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Valid roomgate claims for `sub`/`name`, valid for an hour from now.
pub fn claims(sub: &str, name: &str) -> Value {
    let n = now();
    json!({"sub": sub, "name": name, "iss": "roomgate", "aud": "roomgate",
           "iat": n, "nbf": n, "exp": n + 3600, "jti": format!("jti-{sub}-{n}")})
}

/// A valid token for an arbitrary identity, signed with the test secret.
pub fn token_for(sub: &str, name: &str) -> String {
    mint(
        JWT_SECRET.as_bytes(),
        &json!({"alg": "HS256", "typ": "JWT"}),
        &claims(sub, name),
    )
}

/// Base64url (no padding) of a JSON value's text.
pub fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// Base64url (no padding) of raw text.
pub fn b64_text(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

/// The decoded header of a JWT (unverified).
pub fn header_of(token: &str) -> Value {
    let header = token.split('.').next().expect("jwt header");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

/// `base` with some fields changed; a `null` in `changes` removes the field.
pub fn with(base: Value, changes: Value) -> Value {
    let mut c = base;
    for (k, v) in changes.as_object().expect("changes is an object") {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

/// HS256 over arbitrary header and payload *text* (for non-JSON or odd payloads).
pub fn hs256_raw(secret: &[u8], header: &str, payload: &str) -> String {
    let input = format!("{}.{}", b64_text(header), b64_text(payload));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

/// An own HS256 token signed with the test `JWT_SECRET`, with `kid` if given.
pub fn own_hs(kid: Option<&str>, claims: &Value) -> String {
    let mut header = json!({"alg": "HS256", "typ": "JWT"});
    if let Some(kid) = kid {
        header["kid"] = json!(kid);
    }
    mint(JWT_SECRET.as_bytes(), &header, claims)
}

/// `token` with segment `index` replaced by `f(segment)`.
pub fn replace_segment(token: &str, index: usize, f: impl FnOnce(&str) -> String) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[index] = f(&parts[index]);
    parts.join(".")
}

/// `token` with its header re-encoded after `changes` (signature kept).
pub fn with_header(token: &str, changes: Value) -> String {
    let header = with(header_of(token), changes);
    replace_segment(token, 0, |_| b64(&header))
}

/// `token` with its payload re-encoded after `changes` (signature kept).
pub fn with_payload(token: &str, changes: Value) -> String {
    let payload = with(claims_of(token), changes);
    replace_segment(token, 1, |_| b64(&payload))
}

/// `token` with one character of its signature changed (the first: always a data bit).
pub fn flip_signature(token: &str) -> String {
    replace_segment(token, 2, |sig| {
        let mut chars: Vec<char> = sig.chars().collect();
        chars[0] = if chars[0] == 'A' { 'B' } else { 'A' };
        chars.into_iter().collect()
    })
}

/// The shortest own HS256 token (valid, signed, padded with a `pad` claim) of at least
/// `len` bytes: base64 grows in steps, so it is at most a few bytes longer.
pub fn token_of_at_least(sub: &str, len: usize) -> String {
    let make = |pad: usize| {
        own_hs(
            None,
            &with(claims(sub, sub), json!({"pad": "p".repeat(pad)})),
        )
    };
    let (mut lo, mut hi) = (0, len);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if make(mid).len() >= len {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    make(lo)
}
