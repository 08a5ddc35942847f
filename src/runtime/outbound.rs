//! Requests roomgate makes to other servers (an identity provider's keys, the team's
//! webhook receiver): the runtime's `fetch`, bounded by a timeout that covers the body
//! too, and a bounded answer.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use worker::js_sys;
use worker::wasm_bindgen_futures::JsFuture;
use worker::worker_sys::web_sys;

#[wasm_bindgen]
extern "C" {
    /// The runtime's global `fetch(url, init)`.
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(url: &str, init: &web_sys::RequestInit) -> js_sys::Promise;

    /// `AbortSignal.timeout(ms)`: aborts the fetch, body included, after `ms`.
    #[wasm_bindgen(js_namespace = AbortSignal, js_name = timeout)]
    fn abort_after(ms: u32) -> JsValue;
}

/// A request: `GET` without a body, or `POST` with a JSON one.
pub struct Outbound<'a> {
    pub url: &'a str,
    pub json_body: Option<&'a str>,
    pub headers: &'a [(&'a str, &'a str)],
    pub timeout_ms: u32,
    /// The most bytes of the answer's body read; a longer one is an error.
    pub max_answer: usize,
}

/// Sends the request; its status and body, or why it failed (said in words, with the
/// URL, for the log).
pub async fn send(request: &Outbound<'_>) -> Result<(u16, String), String> {
    let url = request.url;
    let init = web_sys::RequestInit::new();
    let headers = js_sys::Object::new();
    let set = |target: &JsValue, key: &str, value: &JsValue| {
        js_sys::Reflect::set(target, &key.into(), value)
            .map(|_| ())
            .map_err(|_| format!("{url}: could not build the request"))
    };
    for (name, value) in request.headers {
        set(&headers, name, &(*value).into())?;
    }
    match request.json_body {
        Some(body) => {
            init.set_method("POST");
            set(&headers, "content-type", &"application/json".into())?;
            init.set_body(&body.into());
        }
        None => init.set_method("GET"),
    }
    set(&init, "headers", &headers)?;
    set(&init, "signal", &abort_after(request.timeout_ms))?;
    let failed = |stage: &str, e: JsValue| {
        let why = e
            .dyn_ref::<js_sys::Error>()
            .map(|e| String::from(e.message()))
            .unwrap_or_else(|| format!("{e:?}"));
        format!("{url}: {stage}: {why}")
    };
    let response: web_sys::Response = JsFuture::from(global_fetch(url, &init))
        .await
        .map_err(|e| failed("no answer", e))?
        .unchecked_into();
    let status = response.status();
    let text = response.text().map_err(|e| failed("body", e))?;
    let body = JsFuture::from(text)
        .await
        .map_err(|e| failed("body", e))?
        .as_string()
        .unwrap_or_default();
    if body.len() > request.max_answer {
        return Err(format!(
            "{url}: the answer is over {} bytes",
            request.max_answer
        ));
    }
    Ok((status, body))
}
