//! Host stand-in for the runtime's WebCrypto in unit tests: the same operations through
//! `jsonwebtoken` (ring), an implementation independent of ours. Plus a minimal
//! `block_on`, since these futures never wait on anything.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use serde_json::{Map, Value};

use super::keys::{Crypto, PublicAlg, PublicKey};

pub struct RingCrypto;

fn member<'a>(jwk: &'a Map<String, Value>, name: &str) -> &'a str {
    jwk.get(name).and_then(Value::as_str).unwrap_or_default()
}

impl Crypto for RingCrypto {
    async fn verify(&self, key: &PublicKey, message: &[u8], signature: &[u8]) -> bool {
        let jwk = &key.jwk;
        let (decoding, alg) = match key.alg {
            PublicAlg::EdDsa => (
                DecodingKey::from_ed_components(member(jwk, "x")),
                Algorithm::EdDSA,
            ),
            PublicAlg::Es256 => (
                DecodingKey::from_ec_components(member(jwk, "x"), member(jwk, "y")),
                Algorithm::ES256,
            ),
            PublicAlg::Rs256 => (
                DecodingKey::from_rsa_components(member(jwk, "n"), member(jwk, "e")),
                Algorithm::RS256,
            ),
        };
        let Ok(decoding) = decoding else {
            return false;
        };
        let sig = URL_SAFE_NO_PAD.encode(signature);
        jsonwebtoken::crypto::verify(&sig, message, &decoding, alg).unwrap_or(false)
    }

    async fn sign_ed25519(&self, jwk: &Map<String, Value>, message: &[u8]) -> Option<Vec<u8>> {
        // PKCS#8 wrapping of a raw Ed25519 seed (RFC 8410).
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        der.extend(URL_SAFE_NO_PAD.decode(member(jwk, "d")).ok()?);
        let key = EncodingKey::from_ed_der(&der);
        let sig = jsonwebtoken::crypto::sign(message, &key, Algorithm::EdDSA).ok()?;
        URL_SAFE_NO_PAD.decode(sig).ok()
    }
}

/// Runs a future that never waits (ours only await `RingCrypto`, which is synchronous).
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("test future waited on something"),
    }
}
