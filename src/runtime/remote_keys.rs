//! Fetching an identity provider's published keys, for `auth::remote_keys` to judge:
//! the isolate's copy of each set, the Cache API shared by the isolates of a location,
//! and the issuer itself, each fetch bounded by a timeout.
//!
//! A set found in the Cache API counts from its original fetch (kept in a header), so
//! every isolate agrees on when it expires. A fetch for an unknown `kid` skips the Cache
//! API: a rotation is exactly when a cached set is out of date. Errors are logged with
//! the URL and the reason; a set holds only public keys, so nothing secret is logged.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use sha2::{Digest, Sha256};
use worker::{console_error, console_warn, Cache, Headers, Response};

use super::error::ApiError;
use super::outbound::{send, Outbound};
use crate::auth::keyring::RemoteNeed;
use crate::auth::remote_keys::{
    check_url, jwks_uri_of, keys_of, KeyState, RemoteKey, RemoteSource, Step, FETCH_TIMEOUT_MS,
    MAX_DOCUMENT_BYTES,
};
use crate::auth::secret::hex;

thread_local! {
    /// Key-set URL (as configured) → what this isolate knows of it.
    static STATES: RefCell<HashMap<String, KeyState>> = RefCell::new(HashMap::new());
}

/// The header that carries, in the Cache API, when a set was fetched (unix seconds).
const FETCHED_AT: &str = "x-roomgate-fetched-at";

/// The keys to verify a token of `need`'s issuer with, at `now`: held, from the Cache
/// API, or fetched. 503 `issuer_unavailable` when no usable set can be had.
pub async fn keys_for(
    need: &RemoteNeed<'_>,
    allow_loopback: bool,
    now: u64,
) -> Result<Rc<Vec<RemoteKey>>, ApiError> {
    let source = need.source;
    let step = STATES.with_borrow(|states| {
        states
            .get(&source.url)
            .map_or(Step::Fetch { fresh: false }, |s| {
                s.step(need.kid.as_deref(), source.cache_secs, now)
            })
    });
    if let Step::Fetch { fresh } = step {
        let outcome = match fetch_set(source, fresh, allow_loopback, now).await {
            Ok((keys, fetched_at)) => (Some(keys), fetched_at),
            Err(why) => {
                console_error!("keys of {}: {why}", source.url);
                (None, now)
            }
        };
        STATES.with_borrow_mut(|states| {
            states
                .entry(source.url.clone())
                .or_default()
                .fetched(outcome.0, outcome.1, now)
        });
    }
    STATES
        .with_borrow(|states| states.get(&source.url).and_then(|s| s.usable(now)))
        .ok_or(ApiError::IssuerUnavailable)
}

/// A usable set and when it was fetched: from the Cache API (unless `fresh`), else from
/// the issuer, then stored in the Cache API for the rest of its life.
async fn fetch_set(
    source: &RemoteSource,
    fresh: bool,
    allow_loopback: bool,
    now: u64,
) -> Result<(Vec<RemoteKey>, u64), String> {
    let cache_key = format!(
        "https://roomgate.internal/keys/{}",
        hex(&Sha256::digest(source.url.as_bytes()))
    );
    let cache = Cache::default();
    if !fresh {
        if let Some((body, fetched_at)) = cached(&cache, &cache_key).await {
            if now.saturating_sub(fetched_at) < source.cache_secs {
                if let Ok((keys, _)) = keys_of(&body) {
                    return Ok((keys, fetched_at));
                }
            }
        }
    }
    let jwks_url = if source.discovery {
        let url = jwks_uri_of(&get(&source.url).await?)?;
        check_url(&url, allow_loopback).map_err(|e| format!("discovery's jwks_uri: {e}"))?;
        url
    } else {
        source.url.clone()
    };
    let body = get(&jwks_url).await?;
    let (keys, skipped) = keys_of(&body)?;
    if !skipped.is_empty() {
        console_warn!("keys of {}: left out {}", source.url, skipped.join("; "));
    }
    if let Err(e) = store(&cache, &cache_key, body, now, source.cache_secs).await {
        console_warn!("keys of {}: not cached: {e}", source.url);
    }
    Ok((keys, now))
}

async fn cached(cache: &Cache, key: &str) -> Option<(String, u64)> {
    let mut hit = cache.get(key, true).await.ok()??;
    let fetched_at = hit.headers().get(FETCHED_AT).ok()??.parse().ok()?;
    Some((hit.text().await.ok()?, fetched_at))
}

async fn store(
    cache: &Cache,
    key: &str,
    body: String,
    fetched_at: u64,
    cache_secs: u64,
) -> worker::Result<()> {
    let headers = Headers::new();
    headers.set("cache-control", &format!("max-age={cache_secs}"))?;
    headers.set(FETCHED_AT, &fetched_at.to_string())?;
    cache
        .put(key, Response::ok(body)?.with_headers(headers))
        .await
}

/// `GET url` within [`FETCH_TIMEOUT_MS`]: its body, if it answered 200 with at most
/// [`MAX_DOCUMENT_BYTES`].
async fn get(url: &str) -> Result<String, String> {
    let request = Outbound {
        url,
        json_body: None,
        headers: &[],
        timeout_ms: FETCH_TIMEOUT_MS,
        max_answer: MAX_DOCUMENT_BYTES,
    };
    match send(&request).await? {
        (200, body) => Ok(body),
        (status, _) => Err(format!("GET {url}: answered {status}")),
    }
}
