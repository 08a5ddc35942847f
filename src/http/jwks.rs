//! `GET /.well-known/jwks.json`: the public keys roomgate signs with, so other services
//! can verify roomgate's tokens. EdDSA keys only — HMAC secrets are never published. Old
//! keys stay listed while they are still configured (they may have signed tokens that
//! are still valid); see the README's rotation procedure.

use serde::Serialize;
use worker::{Env, Headers, Response};

use crate::auth::keys::{public_jwk, PublicJwk};
use crate::runtime::env::keyring;
use crate::runtime::error::ApiError;

#[derive(Serialize)]
struct Jwks<'a> {
    keys: Vec<PublicJwk<'a>>,
}

pub fn handle(env: &Env) -> Result<Response, ApiError> {
    let keyring = keyring(env)?;
    let keys = keyring
        .own_keys()
        .filter_map(|(kid, key)| public_jwk(kid, key))
        .collect();
    let body =
        serde_json::to_string(&Jwks { keys }).map_err(|e| ApiError::Internal(e.to_string()))?;
    let headers = Headers::new();
    headers.set("content-type", "application/jwk-set+json")?;
    // Verifiers cache it; five minutes keeps a rotation's new key visible soon.
    headers.set("cache-control", "public, max-age=300")?;
    Ok(Response::ok(body)?.with_headers(headers))
}
