//! HTTP helpers shared by the Worker's routes and the Durable Objects: JSON responses,
//! bounded JSON bodies, the bearer token, and a request without `request.cf`.

use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde::Serialize;
use worker::js_sys;
use worker::wasm_bindgen::JsValue;
use worker::worker_sys::web_sys;
use worker::{Headers, Request, Response};

use super::error::ApiError;
use crate::auth::transport::bearer_token;

/// A JSON response with `status`. API responses carry credentials or user data, so none
/// of them may be cached.
pub fn json<T: Serialize>(status: u16, body: &T) -> Result<Response, ApiError> {
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    headers.set("cache-control", "no-store")?;
    let text = serde_json::to_string(body).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Response::ok(text)?
        .with_status(status)
        .with_headers(headers))
}

/// Reads a JSON body of at most `max` bytes into `T`.
///
/// 415 unless `Content-Type` is `application/json` (parameters such as `charset` allowed);
/// 413 when the declared or actual length exceeds `max`; 400 when the body is not a JSON
/// object, or does not have `T`'s shape.
pub async fn read_json<T: DeserializeOwned>(req: &mut Request, max: usize) -> Result<T, ApiError> {
    let body = read_object_body(req, max).await?;
    serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(if e.is_syntax() || e.is_eof() {
            "request body is not valid JSON".to_owned()
        } else {
            format!("request body has the wrong shape: {e}")
        })
    })
}

/// [`read_json`]'s checks up to the parse, shared by every body type: boxed, so its
/// state machine is compiled once rather than into each caller's.
fn read_object_body(
    req: &mut Request,
    max: usize,
) -> LocalBoxFuture<'_, Result<Vec<u8>, ApiError>> {
    Box::pin(async move {
        let content_type = req.headers().get("content-type")?.unwrap_or_default();
        let media_type = content_type.split(';').next().unwrap_or("").trim();
        if !media_type.eq_ignore_ascii_case("application/json") {
            return Err(ApiError::UnsupportedMediaType);
        }
        // Refuse on the declared length before reading anything; check again after
        // reading for bodies sent without one (chunked).
        let declared = req
            .headers()
            .get("content-length")?
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > max as u64) {
            return Err(ApiError::PayloadTooLarge(max));
        }
        let body = req.bytes().await?;
        if body.len() > max {
            return Err(ApiError::PayloadTooLarge(max));
        }
        // serde's derived structs also accept a JSON array of the fields in order; the
        // API speaks objects only, so anything that does not open with `{` is refused.
        if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::BadRequest(
                "request body must be a JSON object".to_owned(),
            ));
        }
        Ok(body)
    })
}

/// The token of an `Authorization: Bearer <token>` header, if present.
pub fn bearer(req: &Request) -> Result<Option<String>, ApiError> {
    Ok(bearer_token(req.headers().get("authorization")?.as_deref()).map(str::to_owned))
}

/// Drops `request.cf` from a request before it becomes a `worker::Request`, whose
/// conversion reads it: the runtime builds that object (some thirty fields) afresh on
/// every read, and roomgate never uses it. An own property shadows the prototype's
/// getter.
pub fn without_cf(req: web_sys::Request) -> web_sys::Request {
    NO_CF.with(|(key, absent)| {
        let _ = js_sys::Reflect::define_property(&req, key, absent);
    });
    req
}

thread_local! {
    /// `"cf"` and the descriptor that shadows it, made once per isolate (a string or an
    /// object made from Rust is a crossing each).
    static NO_CF: (JsValue, js_sys::Object) = {
        let absent = js_sys::Object::new();
        // Writable and configurable: code that wants a `cf` of its own can still set it.
        for key in ["writable", "configurable"] {
            let _ = js_sys::Reflect::set(&absent, &key.into(), &JsValue::TRUE);
        }
        (JsValue::from_str("cf"), absent)
    };
}
