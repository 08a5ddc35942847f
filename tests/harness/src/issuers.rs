//! Key fixtures (`tests/fixtures/`) and the issuers built from them: the pretend external
//! issuer and its `TRUSTED_ISSUERS` entry, tokens it signs with an independent JWT library
//! (`jsonwebtoken`, ring backend), the shared-secret partner, and roomgate's own Ed25519
//! key.

use std::path::PathBuf;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::repo_root;
use crate::tokens::{claims, with};

/// `iss` and `aud` of the pretend external issuer whose keys are the fixture PEMs.
pub const EXT_ISS: &str = "https://id.fixture.test";
/// Deliberately not roomgate's own audience, so a token for one cannot pass as the other.
pub const EXT_AUD: &str = "roomgate-fixture";

/// A second external issuer that shares an HS256 secret with roomgate (a Worker secret).
pub const PARTNER_ISS: &str = "partner";
pub const PARTNER_AUD: &str = "roomgate";
pub const PARTNER_KID: &str = "partner-hs";
pub const PARTNER_BINDING: &str = "PARTNER_SECRET";
pub const PARTNER_SECRET: &str = "partner-shared-secret-0123456789abcdef-test";

/// Kid of roomgate's own Ed25519 key in `tests/fixtures/own-ed25519.jwk.json`.
pub const OWN_ED_KID: &str = "rg-ed-1";

fn fixtures() -> PathBuf {
    repo_root().join("tests/fixtures")
}

/// The text of a file in `tests/fixtures/`.
pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixtures().join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// The fixture issuer's public JWK Set, optionally without the weak 1024-bit RSA key.
pub fn issuer_jwks(with_weak_rsa: bool) -> Value {
    let mut set: Value = serde_json::from_str(&fixture("issuer-public.jwks.json")).unwrap();
    if !with_weak_rsa {
        set["keys"]
            .as_array_mut()
            .unwrap()
            .retain(|k| k["kid"] != "rsa-weak");
    }
    set
}

/// One public JWK of the fixture issuer by kid.
pub fn issuer_jwk(kid: &str) -> Value {
    issuer_jwks(true)["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap_or_else(|| panic!("no fixture jwk {kid}"))
        .clone()
}

/// The `TRUSTED_ISSUERS` entry of the fixture issuer. External issuers are closed by
/// default; this one opens every room to its tokens without a `rooms` claim.
pub fn fixture_issuer(with_weak_rsa: bool) -> Value {
    json!({"iss": EXT_ISS, "aud": EXT_AUD, "jwks": issuer_jwks(with_weak_rsa),
           "default_rooms": ["*"]})
}

/// The `TRUSTED_ISSUERS` entry of the shared-secret partner (needs [`PARTNER_BINDING`]),
/// with every room as its `default_rooms`.
pub fn partner_issuer() -> Value {
    json!({"iss": PARTNER_ISS, "aud": PARTNER_AUD,
           "secret": {"kid": PARTNER_KID, "binding": PARTNER_BINDING},
           "default_rooms": ["*"]})
}

/// roomgate's own Ed25519 private JWK (test-only).
pub fn own_ed_jwk() -> Value {
    serde_json::from_str(&fixture("own-ed25519.jwk.json")).unwrap()
}

/// An `oct` JWK holding `secret`.
pub fn oct_jwk(kid: &str, secret: &[u8]) -> Value {
    json!({"kty": "oct", "kid": kid, "k": URL_SAFE_NO_PAD.encode(secret)})
}

/// Valid claims for the fixture issuer, valid for an hour.
pub fn ext_claims(sub: &str) -> Value {
    with(
        claims(sub, &format!("Ext {sub}")),
        json!({"iss": EXT_ISS, "aud": EXT_AUD}),
    )
}

/// Valid claims for the partner issuer.
pub fn partner_claims(sub: &str) -> Value {
    with(
        claims(sub, &format!("Partner {sub}")),
        json!({"iss": PARTNER_ISS, "aud": PARTNER_AUD}),
    )
}

/// The fixture issuer's private keys, by algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ext {
    Rs256,
    Es256,
    EdDsa,
}

impl Ext {
    pub const ALL: [Ext; 3] = [Ext::Rs256, Ext::Es256, Ext::EdDsa];

    pub fn kid(self) -> &'static str {
        match self {
            Ext::Rs256 => "rsa-1",
            Ext::Es256 => "ec-1",
            Ext::EdDsa => "ed-1",
        }
    }

    pub fn alg(self) -> Algorithm {
        match self {
            Ext::Rs256 => Algorithm::RS256,
            Ext::Es256 => Algorithm::ES256,
            Ext::EdDsa => Algorithm::EdDSA,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Ext::Rs256 => "RS256",
            Ext::Es256 => "ES256",
            Ext::EdDsa => "EdDSA",
        }
    }

    pub fn key(self) -> EncodingKey {
        let pem = |f: &str| fixture(f).into_bytes();
        match self {
            Ext::Rs256 => EncodingKey::from_rsa_pem(&pem("rsa-2048.pem")),
            Ext::Es256 => EncodingKey::from_ec_pem(&pem("ec-p256.pem")),
            Ext::EdDsa => EncodingKey::from_ed_pem(&pem("ed25519.pem")),
        }
        .unwrap_or_else(|e| panic!("fixture key for {self:?}: {e}"))
    }

    /// A token signed by this key with the given header `alg` and `kid`.
    pub fn sign_as(self, alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &self.key())
            .unwrap_or_else(|e| panic!("jsonwebtoken encode {self:?}: {e}"))
    }

    /// A proper token of this key: its own alg and kid.
    pub fn sign(self, claims: &Value) -> String {
        self.sign_as(self.alg(), Some(self.kid()), claims)
    }
}

/// A token whose header names the weak RSA key (`rsa-weak`). ring refuses to sign with a
/// 1024-bit key, so it is signed with the 2048-bit one: only the `kid` matters to a gate
/// that does not have that key configured.
pub fn weak_rsa_kid_token(claims: &Value) -> String {
    Ext::Rs256.sign_as(Algorithm::RS256, Some("rsa-weak"), claims)
}
