//! PBKDF2-HMAC-SHA256 through the runtime's WebCrypto.
//!
//! SubtleCrypto runs natively in workerd, so 100,000 iterations cost tens of
//! milliseconds instead of the seconds a wasm implementation would burn of the request's
//! CPU budget. The platform caps PBKDF2 at 100,000 iterations (`MAX_ITERATIONS`).

use worker::js_sys::{Array, Object, Uint8Array};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{CryptoKey, Pbkdf2Params, SubtleCrypto, WorkerGlobalScope};

use crate::auth::password::HASH_BYTES;
use crate::error::ApiError;

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
