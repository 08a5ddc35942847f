//! The one client for roomgate's Durable Objects: how the Worker (and an object) calls
//! one, and how an object reads the call.
//!
//! Each object's own `client` module is the only code that uses this, so every call to
//! an object is typed by that object's call enum (`protocol::internal`). Only code
//! holding a binding reaches an object, so anything but a 200 from one is a server
//! fault, never the client's.

use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use worker::worker_sys::web_sys;
use worker::{js_sys, Env, Headers, Method, Request, RequestInit, Stub};

use super::error::ApiError;
use crate::protocol::internal::CALL_PATH;

/// The object named `name` in namespace `binding`.
pub fn stub(env: &Env, binding: &str, name: &str) -> Result<Stub, ApiError> {
    Ok(env
        .durable_object(binding)
        .map_err(|e| ApiError::Misconfigured(format!("Durable Object binding {binding}: {e}")))?
        .get_by_name(name)?)
}

/// An internal request's URL: the host means nothing to an object, only the path.
fn url(path: &str) -> String {
    format!("https://roomgate.internal{path}")
}

/// Sends `call` as JSON to the object's [`CALL_PATH`] and decodes its JSON answer.
pub async fn call<C: Serialize, A: DeserializeOwned>(stub: &Stub, call: &C) -> Result<A, ApiError> {
    let body = serde_json::to_string(call).map_err(|e| ApiError::Internal(e.to_string()))?;
    let answer = call_text(stub, body).await?;
    serde_json::from_str(&answer).map_err(|e| ApiError::Internal(format!("object answer: {e}")))
}

/// The request and its answer's text, shared by every call: boxed, so its state machine
/// is compiled once rather than into each caller's.
fn call_text(stub: &Stub, body: String) -> LocalBoxFuture<'_, Result<String, ApiError>> {
    Box::pin(async move {
        let headers = Headers::new();
        headers.set("content-type", "application/json")?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_headers(headers)
            .with_body(Some(JsValue::from_str(&body)));
        let req = Request::new_with_init(&url(CALL_PATH), &init)?;
        let mut res = stub.fetch_with_request(req).await?;
        let text = res.text().await;
        if res.status_code() != 200 {
            return Err(ApiError::Internal(format!(
                "object call answered {}: {}",
                res.status_code(),
                text.unwrap_or_default()
            )));
        }
        Ok(text?)
    })
}

/// On the object's side: the call a request carries (from [`call`]); 404 for any other
/// request.
pub async fn read_call<C: DeserializeOwned>(req: &mut Request) -> Result<C, ApiError> {
    if (req.method(), req.path().as_str()) != (Method::Post, CALL_PATH) {
        return Err(ApiError::NotFound(format!(
            "no object route {}",
            req.path()
        )));
    }
    let text = req.text().await?;
    serde_json::from_str(&text).map_err(|e| ApiError::BadRequest(format!("internal call: {e}")))
}

/// Sends the object a `GET` to `path` with exactly `headers` (nothing else from any
/// client request), and returns the promise of its response without waiting for it: the
/// caller hands it to the runtime as its own answer, so a 101 and its socket pass through
/// untouched. Only a failure to reach the object is turned into the API's JSON 500.
pub fn forward(stub: Stub, path: &str, headers: &[(&str, &str)]) -> Result<JsValue, ApiError> {
    // A plain object of fresh headers.
    let fresh = js_sys::Object::new();
    for (name, value) in headers {
        js_sys::Reflect::set(&fresh, &(*name).into(), &(*value).into())
            .map_err(worker::Error::from)?;
    }
    let init = web_sys::RequestInit::new();
    init.set_headers(&fresh);
    let stub: ForwardingStub = stub.into_rpc();
    let answer = stub.fetch(&url(path), &init).map_err(worker::Error::from)?;
    Ok(UNREACHABLE
        .with(|handler| answer.catch_with(handler.as_ref().unchecked_ref()))
        .into())
}

thread_local! {
    /// Turns a failed call (the object threw, or could not be reached) into the API's
    /// JSON 500. One function per isolate, attached to every forwarded promise.
    static UNREACHABLE: Closure<dyn FnMut(JsValue) -> JsValue> =
        Closure::new(|e: JsValue| -> JsValue {
            let error = ApiError::from(worker::Error::from(e));
            web_sys::Response::from(error.into_response()).into()
        });
}

#[wasm_bindgen]
extern "C" {
    /// A Durable Object stub, seen through `fetch(url, init)`.
    #[wasm_bindgen(extends = js_sys::Object)]
    type ForwardingStub;

    #[wasm_bindgen(method, catch)]
    fn fetch(
        this: &ForwardingStub,
        url: &str,
        init: &web_sys::RequestInit,
    ) -> Result<ObjectAnswer, JsValue>;

    /// The promise of an object's response.
    #[wasm_bindgen(extends = js_sys::Promise)]
    type ObjectAnswer;

    /// `promise.catch(handler)`, with a plain JS function (one made once, above).
    #[wasm_bindgen(method, js_name = catch)]
    fn catch_with(this: &ObjectAnswer, handler: &js_sys::Function) -> js_sys::Promise;
}
