//! D1 access shared by the stores: the database binding and its parameter types.

use worker::wasm_bindgen::JsValue;
use worker::{D1Database, Env};

use super::env::DB_BINDING;
use super::error::ApiError;

/// The `DB` database, or 500 `misconfigured` when the binding is missing.
pub fn db(env: &Env) -> Result<D1Database, ApiError> {
    env.d1(DB_BINDING)
        .map_err(|e| ApiError::Misconfigured(format!("D1 binding {DB_BINDING}: {e}")))
}

/// A whole number as a D1 parameter. Parameters cross as JS numbers, exact up to 2^53;
/// every number roomgate stores (unix seconds, counters) is far below that.
pub fn int(n: u64) -> JsValue {
    JsValue::from_f64(n as f64)
}

/// A signed whole number as a D1 parameter (exact up to 2^53, like [`int`]).
pub fn signed(n: i64) -> JsValue {
    JsValue::from_f64(n as f64)
}

/// An optional text parameter: `NULL` when absent.
pub fn text_or_null(value: Option<&str>) -> JsValue {
    value.map_or(JsValue::NULL, JsValue::from_str)
}
