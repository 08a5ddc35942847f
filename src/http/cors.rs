//! Cross-origin access for the routes a browser app on another origin needs: `/login`,
//! `/ws-ticket` (origins in `ALLOWED_ORIGINS` only) and `/.well-known/jwks.json` (any
//! origin: the keys are public).
//!
//! A listed origin's preflight (`OPTIONS`) gets 204 with the methods and headers the
//! route takes; its requests get `Access-Control-Allow-Origin: <that origin>` and
//! `Vary: Origin`, on errors too, so the app can read why it was refused. Any other
//! origin gets no CORS headers at all, so its browser hides every answer; its preflight
//! gets 403 `origin_forbidden`. No route allows credentials: roomgate's credentials are
//! bearer tokens, never cookies. The server-facing routes (`/admin`, `/api/v1`) have no
//! CORS at all (`auth::origin::same_origin`).

use worker::{Env, Headers, Request, Response};

use crate::auth::origin::cors_origin;
use crate::runtime::env::config;
use crate::runtime::error::ApiError;

/// How long a browser may cache a preflight answer (Chromium caps it at 2 h).
pub const MAX_AGE_SECS: u32 = 7200;
const ALLOWED_HEADERS: &str = "authorization, content-type";

/// Who may read a route across origins.
#[derive(Clone, Copy)]
pub enum Readers {
    /// Origins in `ALLOWED_ORIGINS`.
    Listed,
    /// Any origin.
    Anyone,
}

/// The `Access-Control-Allow-Origin` value for `req`'s origin, if it gets one.
fn allow_origin(req: &Request, env: &Env, readers: Readers) -> Result<Option<String>, ApiError> {
    let Some(origin) = req.headers().get("origin")? else {
        return Ok(None);
    };
    Ok(match readers {
        Readers::Anyone => Some("*".to_owned()),
        Readers::Listed => cors_origin(config(env)?.allowed_origins.as_deref(), Some(&origin)),
    })
}

/// `OPTIONS` on a CORS route whose methods are `methods`.
pub fn preflight(
    req: &Request,
    env: &Env,
    readers: Readers,
    methods: &str,
) -> Result<Response, ApiError> {
    let headers = Headers::new();
    headers.set("vary", "Origin")?;
    if req.headers().get("origin")?.is_none() {
        headers.set("allow", &format!("{methods}, OPTIONS"))?;
        return Ok(Response::empty()?.with_status(204).with_headers(headers));
    }
    let Some(origin) = allow_origin(req, env, readers)? else {
        return Err(ApiError::OriginForbidden);
    };
    headers.set("access-control-allow-origin", &origin)?;
    headers.set("access-control-allow-methods", methods)?;
    headers.set("access-control-allow-headers", ALLOWED_HEADERS)?;
    headers.set("access-control-max-age", &MAX_AGE_SECS.to_string())?;
    Ok(Response::empty()?.with_status(204).with_headers(headers))
}

/// The origin to name in the answer to `req`, read before the route takes the request.
pub struct Answer(Option<String>);

impl Answer {
    pub fn for_request(req: &Request, env: &Env, readers: Readers) -> Self {
        // A configuration that cannot be read is the route's own error to report.
        Self(allow_origin(req, env, readers).ok().flatten())
    }

    /// The route's answer (or its error as a response) with the CORS headers it gets.
    pub fn finish(self, answer: Result<Response, ApiError>) -> Result<Response, ApiError> {
        let mut response = answer.unwrap_or_else(ApiError::into_response);
        let headers = response.headers_mut();
        headers.append("vary", "Origin")?;
        if let Some(origin) = self.0 {
            headers.set("access-control-allow-origin", &origin)?;
            headers.set("access-control-expose-headers", "retry-after")?;
        }
        Ok(response)
    }
}
