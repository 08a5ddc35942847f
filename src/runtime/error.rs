//! The one error type of the HTTP boundary, and its one mapping to a response.
//!
//! Every client-facing error is JSON `{"error": "<code>", "message": "..."}` with a stable
//! machine-readable code. Server faults answer with a generic message; their detail goes
//! to the log (`console_error!`), never to the client.

use serde::Serialize;
use worker::{Headers, Response};

use crate::auth::remote_keys::REFETCH_MIN_SECS;
use crate::protocol::names::MAX_ROOM_NAME;

#[derive(Debug)]
pub enum ApiError {
    /// 400 `bad_request`: the body or a field is malformed.
    BadRequest(String),
    /// 400 `invalid_room`: the room name is outside `^[A-Za-z0-9_.-]{1,64}$`.
    InvalidRoom,
    /// 401 `invalid_credentials`: unknown user or wrong password (indistinguishable).
    InvalidCredentials,
    /// 401 `invalid_token`: missing or refused access token; the reason is safe to show.
    InvalidToken(String),
    /// 401 `unauthorized`: admin route without the right admin token.
    Unauthorized,
    /// 401 `unauthorized`: server API route without a valid API key.
    ApiKeyRequired,
    /// 403 `forbidden`: the API key lacks the scope the route needs.
    Forbidden(String),
    /// 403 `room_forbidden`: the token's `rooms` claim does not grant this room.
    RoomForbidden,
    /// 403 `origin_forbidden`: a browser `Origin` outside `ALLOWED_ORIGINS`.
    OriginForbidden,
    /// 404 `not_found`.
    NotFound(String),
    /// 409 `conflict`: the thing to create exists already.
    Conflict(String),
    /// 405 `method_not_allowed`, with the methods the route accepts.
    MethodNotAllowed(&'static str),
    /// 413 `payload_too_large`, with the limit in bytes.
    PayloadTooLarge(usize),
    /// 415 `unsupported_media_type`.
    UnsupportedMediaType,
    /// 414 `uri_too_long`: the URL is longer than the gate reads.
    UriTooLong(usize),
    /// 431 `header_too_large`: a header the gate reads is longer than it accepts.
    HeaderTooLarge(&'static str),
    /// 426 `upgrade_required`: `/ws/{room}` without a WebSocket upgrade.
    UpgradeRequired,
    /// 429 `too_many_attempts`: too many failed logins for the username or the client
    /// address; `Retry-After` says when to try again (whole seconds, at least 1).
    TooManyAttempts { retry_after_secs: u64 },
    /// 429 `too_many_connections`: the user already has `MAX_CONNECTIONS_PER_USER` open
    /// sockets in the room.
    TooManyConnections(usize),
    /// 429 `rate_limited`: more requests of this kind than its rate allows;
    /// `Retry-After` says when one more can succeed.
    RateLimited { retry_after_secs: u64 },
    /// 503 `room_full`: the room already has `MAX_CONNECTIONS_PER_ROOM` open sockets.
    RoomFull(usize),
    /// 503 `issuer_unavailable`: the token's issuer publishes its keys at a URL, and no
    /// usable key set could be had (`Retry-After`).
    IssuerUnavailable,
    /// 500 `misconfigured`: a secret or `[vars]` value is missing or unusable.
    Misconfigured(String),
    /// 500 `internal`: anything else that went wrong on our side.
    Internal(String),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest(_) | Self::InvalidRoom => 400,
            Self::InvalidCredentials
            | Self::InvalidToken(_)
            | Self::Unauthorized
            | Self::ApiKeyRequired => 401,
            Self::RoomForbidden | Self::OriginForbidden | Self::Forbidden(_) => 403,
            Self::NotFound(_) => 404,
            Self::Conflict(_) => 409,
            Self::MethodNotAllowed(_) => 405,
            Self::PayloadTooLarge(_) => 413,
            Self::UnsupportedMediaType => 415,
            Self::UriTooLong(_) => 414,
            Self::HeaderTooLarge(_) => 431,
            Self::UpgradeRequired => 426,
            Self::TooManyAttempts { .. }
            | Self::TooManyConnections(_)
            | Self::RateLimited { .. } => 429,
            Self::Misconfigured(_) | Self::Internal(_) => 500,
            Self::RoomFull(_) | Self::IssuerUnavailable => 503,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::InvalidRoom => "invalid_room",
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidToken(_) => "invalid_token",
            Self::Unauthorized | Self::ApiKeyRequired => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::Conflict(_) => "conflict",
            Self::RoomForbidden => "room_forbidden",
            Self::OriginForbidden => "origin_forbidden",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::UriTooLong(_) => "uri_too_long",
            Self::HeaderTooLarge(_) => "header_too_large",
            Self::UpgradeRequired => "upgrade_required",
            Self::TooManyAttempts { .. } => "too_many_attempts",
            Self::TooManyConnections(_) => "too_many_connections",
            Self::RateLimited { .. } => "rate_limited",
            Self::Misconfigured(_) => "misconfigured",
            Self::Internal(_) => "internal",
            Self::RoomFull(_) => "room_full",
            Self::IssuerUnavailable => "issuer_unavailable",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Self::BadRequest(m)
            | Self::InvalidToken(m)
            | Self::NotFound(m)
            | Self::Forbidden(m)
            | Self::Conflict(m) => m.clone(),
            Self::ApiKeyRequired => {
                "a valid API key is required (Authorization: Bearer rgk_...)".into()
            }
            Self::InvalidRoom => {
                format!("room names must match ^[A-Za-z0-9_.-]{{1,{MAX_ROOM_NAME}}}$")
            }
            Self::InvalidCredentials => "invalid username or password".into(),
            Self::Unauthorized => "a valid admin bearer token is required".into(),
            Self::MethodNotAllowed(allow) => format!("method not allowed; use {allow}"),
            Self::PayloadTooLarge(max) => format!("request body exceeds {max} bytes"),
            Self::UnsupportedMediaType => "request body must be application/json".into(),
            Self::RoomForbidden => "the token or API key does not grant this room".into(),
            Self::OriginForbidden => "this origin may not open sockets here".into(),
            Self::UriTooLong(max) => format!("URL longer than {max} bytes"),
            Self::HeaderTooLarge(name) => format!("header {name} is too large"),
            Self::UpgradeRequired => "this endpoint only accepts WebSocket upgrades".into(),
            Self::TooManyAttempts { retry_after_secs } => {
                format!("too many failed logins; try again in {retry_after_secs} s")
            }
            Self::Misconfigured(_) => "server is misconfigured; see the server log".into(),
            Self::Internal(_) => "internal error".into(),
            Self::RoomFull(max) => format!("room is full ({max} connections); try again later"),
            Self::IssuerUnavailable => {
                "the token's issuer's keys cannot be fetched right now; try again soon".into()
            }
            Self::RateLimited { retry_after_secs } => {
                format!("too many requests; try again in {retry_after_secs} s")
            }
            Self::TooManyConnections(max) => {
                format!("you already have {max} connections to this room; close one first")
            }
        }
    }

    /// The single conversion into a response. Logs server faults with their detail.
    pub fn into_response(self) -> Response {
        match &self {
            Self::Misconfigured(detail) => worker::console_error!("misconfigured: {detail}"),
            Self::Internal(detail) => worker::console_error!("internal error: {detail}"),
            _ => {}
        }
        let message = self.message();
        let body = ErrorBody {
            error: self.code(),
            message: &message,
        };
        let headers = Headers::new();
        let _ = headers.set("content-type", "application/json");
        let _ = headers.set("cache-control", "no-store");
        match &self {
            Self::InvalidToken(_) => {
                let _ = headers.set(
                    "www-authenticate",
                    r#"Bearer realm="roomgate", error="invalid_token""#,
                );
            }
            Self::Unauthorized => {
                let _ = headers.set("www-authenticate", r#"Bearer realm="roomgate-admin""#);
            }
            Self::ApiKeyRequired => {
                let _ = headers.set("www-authenticate", r#"Bearer realm="roomgate-api""#);
            }
            Self::MethodNotAllowed(allow) => {
                let _ = headers.set("allow", allow);
            }
            Self::TooManyAttempts { retry_after_secs } | Self::RateLimited { retry_after_secs } => {
                let _ = headers.set("retry-after", &retry_after_secs.to_string());
            }
            Self::IssuerUnavailable => {
                let _ = headers.set("retry-after", &REFETCH_MIN_SECS.to_string());
            }
            _ => {}
        }
        let json = serde_json::to_string(&body).unwrap_or_default();
        match Response::ok(json) {
            Ok(r) => r.with_status(self.status()).with_headers(headers),
            Err(_) => Response::error("internal error", 500).expect("static response"),
        }
    }
}

impl From<worker::Error> for ApiError {
    fn from(e: worker::Error) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<crate::config::ConfigError> for ApiError {
    fn from(e: crate::config::ConfigError) -> Self {
        Self::Misconfigured(e.to_string())
    }
}

impl From<crate::auth::token::KeyError> for ApiError {
    fn from(e: crate::auth::token::KeyError) -> Self {
        Self::Misconfigured(e.to_string())
    }
}
