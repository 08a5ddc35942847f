//! Keys an identity provider publishes at a URL (`jwks_uri`, or the `jwks_uri` of an
//! OpenID `discovery` document): which URLs are acceptable, how a fetched set becomes
//! keys, and when to fetch. The fetching itself is the runtime's
//! (`runtime::remote_keys`); this decides, at an injected clock.
//!
//! The rules, per issuer and per isolate:
//! - a set is used for `cache_secs` (`jwks_cache_seconds`, default 600) after it was
//!   fetched, then fetched again;
//! - a token whose `kid` the set lacks triggers one fetch, at most once per
//!   [`REFETCH_MIN_SECS`]: that is how a rotation is picked up without waiting;
//! - a failed fetch keeps the last good set working for up to [`STALE_MAX_SECS`] after
//!   it was fetched, and is not retried for [`REFETCH_MIN_SECS`];
//! - with no usable set at all, the issuer is unavailable (503 `issuer_unavailable`,
//!   which clients retry, rather than 401, which would log them out).

use std::rc::Rc;

use serde_json::Value;

use super::keys::{verifying_key, VerifyingKey};

/// How long one fetch (each of the discovery document and the key set) may take.
pub const FETCH_TIMEOUT_MS: u32 = 2000;
/// The least time between two fetches for an unknown `kid`, or after a failure.
pub const REFETCH_MIN_SECS: u64 = 30;
/// How long after its fetch a set keeps working while fetches fail.
pub const STALE_MAX_SECS: u64 = 24 * 3600;
pub const DEFAULT_CACHE_SECS: u64 = 600;
pub const MAX_CACHE_SECS: u64 = 24 * 3600;
/// The most bytes read of a key set or discovery document.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

/// Where an issuer's keys are published.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RemoteSource {
    pub url: String,
    /// `url` is an OpenID configuration document whose `jwks_uri` names the set.
    pub discovery: bool,
    pub cache_secs: u64,
}

/// Whether `url` may be fetched: `https`, or `http` to a loopback host when
/// `allow_loopback` (`ALLOW_LOOPBACK_URLS`, for local development and tests).
pub fn check_url(url: &str, allow_loopback: bool) -> Result<(), String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("{url:?} is not an absolute URL"));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.split(':').next().unwrap_or(""),
    };
    if host.is_empty() || authority.contains('@') {
        return Err(format!("{url:?} has no usable host"));
    }
    match scheme.to_ascii_lowercase().as_str() {
        "https" => Ok(()),
        "http" if allow_loopback && is_loopback(host) => Ok(()),
        "http" if is_loopback(host) => Err(format!(
            "{url:?}: http to a loopback host needs ALLOW_LOOPBACK_URLS=true"
        )),
        _ => Err(format!("{url:?}: only https URLs are fetched")),
    }
}

fn is_loopback(host: &str) -> bool {
    host == "127.0.0.1" || host == "::1" || host.eq_ignore_ascii_case("localhost")
}

/// One usable key of a fetched set.
pub type RemoteKey = (String, VerifyingKey);

/// The keys of a fetched JWK Set: every key that passes the checks inline keys pass
/// (public keys only: a shared secret never comes from a URL), and that is for
/// signatures. The keys left out are named in the second list. `Err`: not a JWK Set, or
/// no usable key in it.
pub fn keys_of(body: &str) -> Result<(Vec<RemoteKey>, Vec<String>), String> {
    let set: Value =
        serde_json::from_str(body).map_err(|_| "the key set is not JSON".to_owned())?;
    let entries = set
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| "the key set has no \"keys\" array".to_owned())?;
    let mut keys = Vec::new();
    let mut skipped = Vec::new();
    for entry in entries {
        let kid = entry.get("kid").and_then(Value::as_str).unwrap_or("?");
        if entry
            .get("use")
            .and_then(Value::as_str)
            .is_some_and(|u| u != "sig")
        {
            skipped.push(format!("{kid}: not a signature key"));
            continue;
        }
        match verifying_key(entry) {
            Ok((_, VerifyingKey::Hs256(_))) => {
                skipped.push(format!("{kid}: a shared secret is never taken from a URL"))
            }
            Ok((kid, key)) if keys.iter().all(|(k, _)| *k != kid) => keys.push((kid, key)),
            Ok((kid, _)) => skipped.push(format!("{kid}: listed twice")),
            Err(e) => skipped.push(e.to_string()),
        }
    }
    if keys.is_empty() {
        return Err(format!(
            "the key set has no usable key ({})",
            skipped.join("; ")
        ));
    }
    Ok((keys, skipped))
}

/// The `jwks_uri` of an OpenID configuration document.
pub fn jwks_uri_of(body: &str) -> Result<String, String> {
    let doc: Value =
        serde_json::from_str(body).map_err(|_| "the discovery document is not JSON".to_owned())?;
    doc.get("jwks_uri")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| "the discovery document has no jwks_uri".to_owned())
}

/// What one isolate knows of one issuer's published keys.
#[derive(Clone, Default)]
pub struct KeyState {
    /// The last good set and when it was fetched (unix seconds).
    pub keys: Option<(Rc<Vec<RemoteKey>>, u64)>,
    /// The last fetch and whether it failed.
    pub last_attempt: Option<(u64, bool)>,
}

/// What to do for a token (with `kid`, if it has one) of this issuer at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Verify with the keys held.
    Use,
    /// Fetch the set first. `fresh`: past any shared cache, straight from the issuer
    /// (for an unknown `kid`).
    Fetch { fresh: bool },
    /// No usable set, and no fetch is due: 503.
    Unavailable,
}

impl KeyState {
    /// The set if it may still be used at `now` (fetched less than [`STALE_MAX_SECS`]
    /// ago).
    pub fn usable(&self, now: u64) -> Option<Rc<Vec<RemoteKey>>> {
        self.keys
            .as_ref()
            .filter(|(_, at)| now.saturating_sub(*at) < STALE_MAX_SECS)
            .map(|(keys, _)| Rc::clone(keys))
    }

    pub fn step(&self, kid: Option<&str>, cache_secs: u64, now: u64) -> Step {
        let since_attempt = self
            .last_attempt
            .map(|(at, failed)| (now.saturating_sub(at), failed));
        let tried_lately = since_attempt.is_some_and(|(ago, _)| ago < REFETCH_MIN_SECS);
        let failed_lately =
            since_attempt.is_some_and(|(ago, failed)| failed && ago < REFETCH_MIN_SECS);
        let Some((keys, at)) = &self.keys else {
            return if failed_lately {
                Step::Unavailable
            } else {
                Step::Fetch { fresh: false }
            };
        };
        let age = now.saturating_sub(*at);
        let known = kid.is_none_or(|kid| keys.iter().any(|(k, _)| k == kid));
        if age >= cache_secs && !failed_lately {
            Step::Fetch { fresh: false }
        } else if !known && !tried_lately {
            Step::Fetch { fresh: true }
        } else if self.usable(now).is_some() {
            Step::Use
        } else {
            Step::Unavailable
        }
    }

    /// Records a fetch at `now`: a good set replaces the one held; a failure keeps it.
    pub fn fetched(&mut self, outcome: Option<Vec<RemoteKey>>, fetched_at: u64, now: u64) {
        self.last_attempt = Some((now, outcome.is_none()));
        if let Some(keys) = outcome {
            self.keys = Some((Rc::new(keys), fetched_at));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 1_800_000_000;
    const JWKS: &str = include_str!("../../tests/fixtures/issuer-public.jwks.json");

    fn keys(kids: &[&str]) -> Vec<RemoteKey> {
        let set: Value = serde_json::from_str(JWKS).unwrap();
        let (all, _) = keys_of(&set.to_string()).unwrap();
        kids.iter()
            .map(|kid| {
                let (_, key) = all.iter().find(|(k, _)| k == kid).unwrap().clone();
                (kid.to_string(), key)
            })
            .collect()
    }

    #[test]
    fn only_https_and_loopback_http_when_allowed() {
        assert!(check_url("https://id.example/.well-known/jwks.json", false).is_ok());
        assert!(check_url("HTTPS://id.example:8443/keys", false).is_ok());
        for local in [
            "http://127.0.0.1:9000/jwks",
            "http://localhost/x",
            "http://[::1]:80/",
        ] {
            assert!(check_url(local, true).is_ok(), "{local}");
            let refused = check_url(local, false).unwrap_err();
            assert!(refused.contains("ALLOW_LOOPBACK_URLS"), "{refused}");
        }
        for bad in [
            "http://id.example/jwks",
            "http://127.0.0.2/jwks",
            "http://localhost.evil.example/",
            "http://127.0.0.1@evil.example/",
            "ftp://id.example/jwks",
            "file:///etc/passwd",
            "//id.example/jwks",
            "https://",
            "jwks.json",
        ] {
            assert!(check_url(bad, true).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_fetched_set_keeps_its_usable_public_signature_keys() {
        let mut set: Value = serde_json::from_str(JWKS).unwrap();
        let list = set["keys"].as_array_mut().unwrap();
        let count = list.len();
        let mut enc = list[0].clone();
        enc["kid"] = "enc-1".into();
        enc["use"] = "enc".into();
        list.push(enc);
        list.push(serde_json::json!({"kty": "oct", "kid": "hs", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI"}));
        list.push(serde_json::json!({"kty": "RSA", "kid": "junk"}));
        let (keys, skipped) = keys_of(&set.to_string()).unwrap();
        // The fixture's weak RSA key is refused as it is inline.
        assert!(keys.len() < count + 3 && !keys.is_empty(), "{skipped:?}");
        assert!(keys
            .iter()
            .all(|(kid, _)| kid != "enc-1" && kid != "hs" && kid != "junk"));
        assert!(skipped.iter().any(|s| s.contains("enc-1")), "{skipped:?}");
        assert!(
            skipped.iter().any(|s| s.contains("shared secret")),
            "{skipped:?}"
        );
        for bad in [
            "",
            "not json",
            "{}",
            r#"{"keys": 5}"#,
            r#"{"keys": []}"#,
            r#"{"keys": [{"kty":"RSA"}]}"#,
        ] {
            assert!(keys_of(bad).is_err(), "{bad}");
        }
        assert_eq!(
            jwks_uri_of(r#"{"issuer":"x","jwks_uri":"https://x/keys"}"#),
            Ok("https://x/keys".into())
        );
        assert!(jwks_uri_of("{}").is_err() && jwks_uri_of("<html>").is_err());
    }

    #[test]
    fn the_first_token_fetches_and_the_set_serves_until_it_expires() {
        let mut s = KeyState::default();
        assert_eq!(s.step(Some("rsa-1"), 600, T), Step::Fetch { fresh: false });
        s.fetched(Some(keys(&["rsa-1"])), T, T);
        assert_eq!(s.step(Some("rsa-1"), 600, T + 599), Step::Use);
        assert_eq!(s.step(None, 600, T + 599), Step::Use);
        assert_eq!(
            s.step(Some("rsa-1"), 600, T + 600),
            Step::Fetch { fresh: false }
        );
    }

    #[test]
    fn an_unknown_kid_fetches_once_per_thirty_seconds() {
        let mut s = KeyState::default();
        s.fetched(Some(keys(&["rsa-1"])), T, T);
        // Within 30 s of the last fetch: no new fetch; the token is refused by the keyring.
        assert_eq!(s.step(Some("ec-1"), 600, T + 29), Step::Use);
        assert_eq!(
            s.step(Some("ec-1"), 600, T + 30),
            Step::Fetch { fresh: true }
        );
        s.fetched(Some(keys(&["rsa-1", "ec-1"])), T + 30, T + 30);
        assert_eq!(s.step(Some("ec-1"), 600, T + 31), Step::Use);
        assert_eq!(s.step(Some("other"), 600, T + 31), Step::Use);
        assert_eq!(
            s.step(Some("other"), 600, T + 60),
            Step::Fetch { fresh: true }
        );
    }

    #[test]
    fn a_failed_fetch_keeps_the_last_good_set_for_a_day() {
        let mut s = KeyState::default();
        s.fetched(Some(keys(&["rsa-1"])), T, T);
        let expired = T + 600;
        assert_eq!(
            s.step(Some("rsa-1"), 600, expired),
            Step::Fetch { fresh: false }
        );
        s.fetched(None, 0, expired);
        assert_eq!(s.step(Some("rsa-1"), 600, expired + 1), Step::Use);
        assert!(s.usable(expired + 1).is_some());
        // Retried after 30 s, not sooner, and failing again still serves the old set.
        assert_eq!(
            s.step(Some("rsa-1"), 600, expired + 30),
            Step::Fetch { fresh: false }
        );
        s.fetched(None, 0, expired + 30);
        assert_eq!(s.step(Some("rsa-1"), 600, expired + 31), Step::Use);
        // A day after the last good fetch, nothing is usable.
        let day = T + STALE_MAX_SECS;
        s.fetched(None, 0, day);
        assert_eq!(s.step(Some("rsa-1"), 600, day + 1), Step::Unavailable);
        assert!(s.usable(day).is_none());
        assert_eq!(
            s.step(Some("rsa-1"), 600, day + 30),
            Step::Fetch { fresh: false }
        );
        // A good fetch brings it back.
        s.fetched(Some(keys(&["rsa-1"])), day + 30, day + 30);
        assert_eq!(s.step(Some("rsa-1"), 600, day + 31), Step::Use);
    }

    #[test]
    fn with_no_set_at_all_a_failure_makes_the_issuer_unavailable_for_thirty_seconds() {
        let mut s = KeyState::default();
        s.fetched(None, 0, T);
        assert_eq!(s.step(Some("rsa-1"), 600, T + 1), Step::Unavailable);
        assert_eq!(
            s.step(Some("rsa-1"), 600, T + 30),
            Step::Fetch { fresh: false }
        );
    }

    #[test]
    fn a_set_from_a_shared_cache_counts_from_its_own_fetch() {
        let mut s = KeyState::default();
        // Found in the Cache API at T + 500, fetched at T by another isolate.
        s.fetched(Some(keys(&["rsa-1"])), T, T + 500);
        assert_eq!(s.step(Some("rsa-1"), 600, T + 599), Step::Use);
        assert_eq!(
            s.step(Some("rsa-1"), 600, T + 600),
            Step::Fetch { fresh: false }
        );
    }
}
