//! Answering the runtime without a promise when nothing had to wait.
//!
//! An `async` export (worker-rs's `#[event(fetch)]`, wasm-bindgen's `async fn`) always
//! answers with a promise and starts its body from the microtask queue, and each `await`
//! on a JS promise is another round through wasm-bindgen's executor. Most requests here
//! wait for nothing before their answer: a room accepting a socket writes nothing
//! asynchronously unless it has to, and the gate's only wait, the room's 101, is handed
//! back as the promise it is (`runtime::object::forward`). So the Worker's `fetch` and
//! the `Room` class poll their future once, here.

use std::future::Future;
use std::task::{Context, Poll, Waker};

use worker::wasm_bindgen::JsValue;
use worker::wasm_bindgen_futures::future_to_promise;

/// Runs `work` on the caller's stack as far as it gets without waiting, and answers the
/// runtime with its value, or with a promise of it when it had to wait. Finished: the
/// value goes back directly. Not finished (a D1 read, WebCrypto, an alarm write): the
/// same future goes on in wasm-bindgen's executor, and the runtime awaits its promise.
///
/// Sound because everything this crate awaits is a JS promise (`JsFuture`, directly or
/// inside worker-rs), and a `JsFuture` keeps the waker of its latest poll: the executor's
/// next poll replaces the no-op waker of this one, and a promise that settled in
/// between is read from the future's slot, not lost.
pub fn run_to_first_wait<F>(work: F) -> JsValue
where
    F: Future<Output = JsValue> + 'static,
{
    let mut work = Box::pin(work);
    match work.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(value) => value,
        Poll::Pending => future_to_promise(async move { Ok(work.await) }).into(),
    }
}
