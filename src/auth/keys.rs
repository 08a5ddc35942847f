//! Keys: parsing JWKs into verifying and signing keys, each pinned to one algorithm.
//!
//! The algorithm belongs to the key, decided here from the key's type when the key is
//! loaded — never from a token. An `oct` key is HS256, an `OKP`/Ed25519 key is EdDSA, an
//! `EC`/P-256 key is ES256 and an `RSA` key (≥ 2048 bits) is RS256. A JWK whose `alg`
//! says otherwise is a configuration error. This is what makes algorithm confusion
//! impossible: a token whose header says HS256 can only ever be checked against an `oct`
//! key, so an RSA or EC public key can never be misused as an HMAC secret.
//!
//! HS256 runs in Rust (`jwt-compact`). The public-key algorithms run in the runtime's
//! WebCrypto (`runtime::webcrypto` implements [`Crypto`]): native code instead of
//! big-number arithmetic compiled to wasm, which keeps the Worker small and fast. This
//! module only checks the keys' shape; WebCrypto checks the math when it imports them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_compact::alg::Hs256Key;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Shortest HMAC secret accepted (RFC 7518 §3.2: at least the hash size).
pub const MIN_HMAC_BYTES: usize = super::secret::MIN_SECRET_BYTES;
/// Smallest RSA modulus accepted (RFC 7518 §3.3).
pub const MIN_RSA_BITS: usize = 2048;

/// A public-key algorithm, carried out by [`Crypto`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicAlg {
    EdDsa,
    Es256,
    Rs256,
}

impl PublicAlg {
    pub fn name(self) -> &'static str {
        match self {
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
        }
    }
}

/// A public key as a JWK holding only its public members (what WebCrypto imports).
#[derive(Debug, Clone, PartialEq)]
pub struct PublicKey {
    pub alg: PublicAlg,
    pub jwk: Map<String, Value>,
}

/// Signature operations the runtime provides (WebCrypto in the Worker; a test double on
/// the host).
#[allow(async_fn_in_trait)] // single-threaded wasm: no `Send` bound wanted
pub trait Crypto {
    /// True when `signature` is `key`'s valid signature of `message`.
    async fn verify(&self, key: &PublicKey, message: &[u8], signature: &[u8]) -> bool;
    /// Signs `message` with an Ed25519 private JWK; `None` if the runtime refuses.
    async fn sign_ed25519(
        &self,
        private_jwk: &Map<String, Value>,
        message: &[u8],
    ) -> Option<Vec<u8>>;
}

/// A key that can check a signature, with its algorithm.
#[derive(Clone)]
pub enum VerifyingKey {
    Hs256(Hs256Key),
    Public(PublicKey),
}

impl VerifyingKey {
    /// The JWS `alg` this key verifies, and the only one it accepts.
    pub fn alg(&self) -> &'static str {
        match self {
            Self::Hs256(_) => "HS256",
            Self::Public(k) => k.alg.name(),
        }
    }
}

/// A key roomgate signs with.
#[derive(Clone)]
pub enum SigningKey {
    Hs256(Hs256Key),
    /// Ed25519 private JWK (`kty`, `crv`, `x`, `d`).
    EdDsa(Map<String, Value>),
}

/// Why a configured key was refused (a configuration error: 500 `misconfigured`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError(pub String);

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err(kid: &str, why: impl std::fmt::Display) -> KeyError {
    KeyError(format!("key {kid:?}: {why}"))
}

/// An HMAC key from raw secret bytes; refuses secrets under [`MIN_HMAC_BYTES`].
pub fn hmac_key(kid: &str, secret: &[u8]) -> Result<Hs256Key, KeyError> {
    if secret.len() < MIN_HMAC_BYTES {
        return Err(err(
            kid,
            format_args!(
                "HMAC secret is {} bytes; at least {MIN_HMAC_BYTES} are required",
                secret.len()
            ),
        ));
    }
    Ok(Hs256Key::new(secret))
}

/// A JWK Set (`{"keys": [...]}`) as raw values, parsed key by key for clear errors.
#[derive(Deserialize)]
pub struct JwkSet {
    pub keys: Vec<Value>,
}

/// A configured JWK, read field by field.
struct Jwk<'a> {
    kid: String,
    members: &'a Map<String, Value>,
}

impl<'a> Jwk<'a> {
    fn read(value: &'a Value) -> Result<Self, KeyError> {
        let members = value
            .as_object()
            .ok_or_else(|| KeyError("a JWK must be a JSON object".into()))?;
        let kid = members
            .get("kid")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| KeyError("every configured JWK needs a `kid`".into()))?
            .to_owned();
        Ok(Self { kid, members })
    }

    fn text(&self, name: &str) -> Option<&'a str> {
        self.members.get(name).and_then(Value::as_str)
    }

    fn bytes(&self, name: &str) -> Result<Vec<u8>, KeyError> {
        let text = self
            .text(name)
            .ok_or_else(|| err(&self.kid, format_args!("`{name}` is missing")))?;
        URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| err(&self.kid, format_args!("`{name}` is not base64url")))
    }

    fn exact(&self, name: &str, len: usize) -> Result<Vec<u8>, KeyError> {
        let b = self.bytes(name)?;
        if b.len() != len {
            return Err(err(&self.kid, format_args!("`{name}` must be {len} bytes")));
        }
        Ok(b)
    }

    fn expect(&self, name: &str, value: &str) -> Result<(), KeyError> {
        match self.text(name) {
            Some(v) if v == value => Ok(()),
            other => Err(err(
                &self.kid,
                format_args!("`{name}` is {other:?}; expected {value:?}"),
            )),
        }
    }

    /// The key's algorithm from its type; a declared `alg` must agree.
    fn algorithm(&self) -> Result<&'static str, KeyError> {
        let alg = match self.text("kty") {
            Some("oct") => "HS256",
            Some("OKP") => "EdDSA",
            Some("EC") => "ES256",
            Some("RSA") => "RS256",
            other => return Err(err(&self.kid, format_args!("unsupported kty {other:?}"))),
        };
        match self.text("alg") {
            Some(declared) if declared != alg => Err(err(
                &self.kid,
                format_args!("declares alg {declared:?} but its key type is for {alg}"),
            )),
            _ => Ok(alg),
        }
    }

    /// Only the named members, for WebCrypto.
    fn subset(&self, names: &[&str]) -> Map<String, Value> {
        names
            .iter()
            .filter_map(|n| self.members.get(*n).map(|v| ((*n).to_owned(), v.clone())))
            .collect()
    }

    fn has_private_parts(&self) -> bool {
        ["d", "p", "q", "dp", "dq", "qi"]
            .iter()
            .any(|n| self.members.contains_key(*n))
    }
}

fn public_key(jwk: &Jwk<'_>, alg: &str) -> Result<PublicKey, KeyError> {
    let (alg, members): (PublicAlg, &[&str]) = match alg {
        "EdDSA" => {
            jwk.expect("crv", "Ed25519")?;
            jwk.exact("x", 32)?;
            (PublicAlg::EdDsa, &["kty", "crv", "x"])
        }
        "ES256" => {
            jwk.expect("crv", "P-256")?;
            jwk.exact("x", 32)?;
            jwk.exact("y", 32)?;
            (PublicAlg::Es256, &["kty", "crv", "x", "y"])
        }
        _ => {
            let n = jwk.bytes("n")?;
            let significant = n.iter().skip_while(|b| **b == 0).count();
            if significant * 8 < MIN_RSA_BITS {
                return Err(err(&jwk.kid, "RSA keys must be at least 2048 bits"));
            }
            jwk.bytes("e")?;
            (PublicAlg::Rs256, &["kty", "n", "e"])
        }
    };
    Ok(PublicKey {
        alg,
        jwk: jwk.subset(members),
    })
}

/// Parses one public (or symmetric) JWK into a verifying key. Private parts of
/// asymmetric keys are refused: a verifier has no business holding them.
pub fn verifying_key(value: &Value) -> Result<(String, VerifyingKey), KeyError> {
    let jwk = Jwk::read(value)?;
    let alg = jwk.algorithm()?;
    let key = if alg == "HS256" {
        VerifyingKey::Hs256(hmac_key(&jwk.kid, &jwk.bytes("k")?)?)
    } else {
        if jwk.has_private_parts() {
            return Err(err(
                &jwk.kid,
                "a verification key must not contain private parts",
            ));
        }
        VerifyingKey::Public(public_key(&jwk, alg)?)
    };
    Ok((jwk.kid, key))
}

/// Parses one of roomgate's own keys: an `oct` secret (HS256) or an Ed25519 private key
/// (`OKP` with `d`). Returns the signing key and the matching verifying key.
pub fn own_key(value: &Value) -> Result<(String, SigningKey, VerifyingKey), KeyError> {
    let jwk = Jwk::read(value)?;
    match jwk.algorithm()? {
        "HS256" => {
            let key = hmac_key(&jwk.kid, &jwk.bytes("k")?)?;
            Ok((
                jwk.kid,
                SigningKey::Hs256(key.clone()),
                VerifyingKey::Hs256(key),
            ))
        }
        "EdDSA" => {
            let public = public_key(&jwk, "EdDSA")?;
            jwk.exact("d", 32)?;
            let private = jwk.subset(&["kty", "crv", "x", "d"]);
            Ok((
                jwk.kid,
                SigningKey::EdDsa(private),
                VerifyingKey::Public(public),
            ))
        }
        _ => Err(err(
            &jwk.kid,
            "roomgate signs with `oct` (HS256) or `OKP` Ed25519 (EdDSA) keys only",
        )),
    }
}

/// A public JWK for `/.well-known/jwks.json`.
#[derive(Serialize)]
pub struct PublicJwk<'a> {
    pub kid: &'a str,
    pub alg: &'static str,
    #[serde(rename = "use")]
    pub usage: &'static str,
    #[serde(flatten)]
    pub key: &'a Map<String, Value>,
}

/// The public JWK of an own EdDSA key; `None` for every other key. HMAC keys are secrets
/// and are never published; roomgate only signs with HMAC or EdDSA keys, so EdDSA keys
/// are all there is to publish.
pub fn public_jwk<'a>(kid: &'a str, key: &'a VerifyingKey) -> Option<PublicJwk<'a>> {
    match key {
        VerifyingKey::Public(k) if k.alg == PublicAlg::EdDsa => Some(PublicJwk {
            kid,
            alg: "EdDSA",
            usage: "sig",
            key: &k.jwk,
        }),
        _ => None,
    }
}
