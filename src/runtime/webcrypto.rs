//! The runtime's WebCrypto: PBKDF2 for passwords, and the public-key signatures of tokens
//! (EdDSA, ES256, RS256 — `auth::keys::Crypto`).
//!
//! SubtleCrypto runs natively in workerd, so 100,000 iterations cost tens of
//! milliseconds instead of the seconds a wasm implementation would burn of the request's
//! CPU budget. The platform caps PBKDF2 at 100,000 iterations (`MAX_ITERATIONS`).

use worker::js_sys::{Array, Object, Uint8Array};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{CryptoKey, Pbkdf2Params, SubtleCrypto, WorkerGlobalScope};

use serde_json::{Map, Value};

use super::error::ApiError;
use crate::auth::keys::{Crypto, PublicAlg, PublicKey};
use crate::auth::password::HASH_BYTES;

fn subtle() -> Result<SubtleCrypto, ApiError> {
    let scope: WorkerGlobalScope = worker::js_sys::global().unchecked_into();
    Ok(scope.crypto().map_err(js_err)?.subtle())
}

fn js_err(e: JsValue) -> ApiError {
    ApiError::Internal(format!("webcrypto: {e:?}"))
}

/// Derives `HASH_BYTES` bytes from `password` with `salt` and `iterations`.
pub async fn pbkdf2_sha256(
    password: &[u8],
    salt: &[u8],
    iterations: u32,
) -> Result<Vec<u8>, ApiError> {
    let subtle = subtle()?;
    let usages = Array::of1(&JsValue::from_str("deriveBits"));
    let key_data: Object = Uint8Array::from(password).into();
    let key: CryptoKey = JsFuture::from(
        subtle
            .import_key_with_str("raw", &key_data, "PBKDF2", false, &usages)
            .map_err(js_err)?,
    )
    .await
    .map_err(js_err)?
    .unchecked_into();

    let salt: Object = Uint8Array::from(salt).into();
    let params = Pbkdf2Params::new("PBKDF2", &JsValue::from_str("SHA-256"), iterations, &salt);
    let bits = JsFuture::from(
        subtle
            .derive_bits_with_object(&params, &key, (HASH_BYTES * 8) as u32)
            .map_err(js_err)?,
    )
    .await
    .map_err(js_err)?;
    Ok(Uint8Array::new(&bits).to_vec())
}

/// Public-key signatures for tokens, through WebCrypto (see `auth::keys::Crypto`).
pub struct WebCrypto;

fn js_object(json: &str) -> Result<Object, ApiError> {
    worker::js_sys::JSON::parse(json)
        .map_err(js_err)?
        .dyn_into::<Object>()
        .map_err(js_err)
}

/// (importKey algorithm, sign/verify algorithm) for each public-key algorithm.
fn params(alg: PublicAlg) -> (&'static str, &'static str) {
    match alg {
        PublicAlg::EdDsa => (r#"{"name":"Ed25519"}"#, r#"{"name":"Ed25519"}"#),
        PublicAlg::Es256 => (
            r#"{"name":"ECDSA","namedCurve":"P-256"}"#,
            r#"{"name":"ECDSA","hash":"SHA-256"}"#,
        ),
        PublicAlg::Rs256 => (
            r#"{"name":"RSASSA-PKCS1-v1_5","hash":"SHA-256"}"#,
            r#"{"name":"RSASSA-PKCS1-v1_5"}"#,
        ),
    }
}

async fn import(
    jwk: &Map<String, Value>,
    alg: PublicAlg,
    usage: &str,
) -> Result<CryptoKey, ApiError> {
    let key_data = js_object(&Value::Object(jwk.clone()).to_string())?;
    let algorithm = js_object(params(alg).0)?;
    let usages = Array::of1(&JsValue::from_str(usage));
    Ok(JsFuture::from(
        subtle()?
            .import_key_with_object("jwk", &key_data, &algorithm, false, &usages)
            .map_err(js_err)?,
    )
    .await
    .map_err(js_err)?
    .unchecked_into())
}

async fn verify(key: &PublicKey, message: &[u8], signature: &[u8]) -> Result<bool, ApiError> {
    let crypto_key = import(&key.jwk, key.alg, "verify").await?;
    let algorithm = js_object(params(key.alg).1)?;
    let ok = JsFuture::from(
        subtle()?
            .verify_with_object_and_u8_array_and_u8_array(
                &algorithm,
                &crypto_key,
                signature,
                message,
            )
            .map_err(js_err)?,
    )
    .await
    .map_err(js_err)?;
    Ok(ok.as_bool() == Some(true))
}

impl Crypto for WebCrypto {
    async fn verify(&self, key: &PublicKey, message: &[u8], signature: &[u8]) -> bool {
        // A key WebCrypto refuses to import (not on the curve, ...) verifies nothing.
        verify(key, message, signature).await.unwrap_or_else(|e| {
            worker::console_warn!("token signature check failed: {e:?}");
            false
        })
    }

    async fn sign_ed25519(
        &self,
        private_jwk: &Map<String, Value>,
        message: &[u8],
    ) -> Option<Vec<u8>> {
        let signed = async {
            let key = import(private_jwk, PublicAlg::EdDsa, "sign").await?;
            let algorithm = js_object(params(PublicAlg::EdDsa).1)?;
            let signature = JsFuture::from(
                subtle()?
                    .sign_with_object_and_u8_array(&algorithm, &key, message)
                    .map_err(js_err)?,
            )
            .await
            .map_err(js_err)?;
            Ok::<_, ApiError>(Uint8Array::new(&signature).to_vec())
        };
        signed
            .await
            .map_err(|e| worker::console_error!("Ed25519 signing failed: {e:?}"))
            .ok()
    }
}
