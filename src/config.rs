//! Configuration: every tunable in one type, with documented defaults, parsed once per
//! isolate from the Worker's `[vars]` (`runtime::env::config` keeps it; the Worker and
//! its Durable Objects share it).
//!
//! Parsing is pure (it takes a lookup function), so defaults and bad values are tested on
//! the host. Secrets (`JWT_SECRET`, `JWT_KEYS`, `ADMIN_TOKEN`) are not part of this type:
//! they are read where they are used and never end up in a `Debug` print.

use crate::auth::grants;
use crate::auth::password::{DEFAULT_ITERATIONS, MAX_ITERATIONS, MIN_ITERATIONS};
use crate::auth::remote_keys::check_url;
use crate::auth::throttle::ThrottlePolicy;
use crate::auth::token::TokenPolicy;
use crate::room::rate::RatePolicy;
use crate::room::state::RoomLimits;

/// Every `[vars]` key roomgate reads, with its default. The README's configuration table
/// lists the same keys.
pub mod keys {
    pub const JWT_ISSUER: &str = "JWT_ISSUER";
    pub const JWT_AUDIENCE: &str = "JWT_AUDIENCE";
    pub const TOKEN_TTL_SECONDS: &str = "TOKEN_TTL_SECONDS";
    pub const CLOCK_LEEWAY_SECONDS: &str = "CLOCK_LEEWAY_SECONDS";
    pub const ALLOW_QUERY_TOKEN: &str = "ALLOW_QUERY_TOKEN";
    pub const MAX_FRAME_BYTES: &str = "MAX_FRAME_BYTES";
    pub const EXPIRY_WARNING_SECONDS: &str = "EXPIRY_WARNING_SECONDS";
    pub const PBKDF2_ITERATIONS: &str = "PBKDF2_ITERATIONS";
    pub const MAX_TOKEN_LIFETIME_SECONDS: &str = "MAX_TOKEN_LIFETIME_SECONDS";
    pub const JWT_SECRET_KID: &str = "JWT_SECRET_KID";
    pub const JWT_SIGNING_KID: &str = "JWT_SIGNING_KID";
    pub const TRUSTED_ISSUERS: &str = "TRUSTED_ISSUERS";
    pub const ROOMS_OPEN_BY_DEFAULT: &str = "ROOMS_OPEN_BY_DEFAULT";
    pub const ALLOWED_ORIGINS: &str = "ALLOWED_ORIGINS";
    pub const LOGIN_MAX_FAILURES: &str = "LOGIN_MAX_FAILURES";
    pub const LOGIN_WINDOW_SECONDS: &str = "LOGIN_WINDOW_SECONDS";
    pub const HISTORY_LIMIT: &str = "HISTORY_LIMIT";
    pub const FLUSH_MS: &str = "FLUSH_MS";
    pub const RATE_LIMIT_PER_SECOND: &str = "RATE_LIMIT_PER_SECOND";
    pub const RATE_LIMIT_BURST: &str = "RATE_LIMIT_BURST";
    pub const RATE_LIMIT_MAX_REJECTED: &str = "RATE_LIMIT_MAX_REJECTED";
    pub const MAX_CONNECTIONS_PER_ROOM: &str = "MAX_CONNECTIONS_PER_ROOM";
    pub const MAX_CONNECTIONS_PER_USER: &str = "MAX_CONNECTIONS_PER_USER";
    pub const PRESENCE_ROOMS: &str = "PRESENCE_ROOMS";
    pub const REGISTRY_GRACE_SECONDS: &str = "REGISTRY_GRACE_SECONDS";
    pub const TICKETS_PER_MINUTE: &str = "TICKETS_PER_MINUTE";
    pub const REVOKE_PAGE_SIZE: &str = "REVOKE_PAGE_SIZE";
    pub const API_REQUESTS_PER_MINUTE: &str = "API_REQUESTS_PER_MINUTE";
    pub const ALLOW_LOOPBACK_URLS: &str = "ALLOW_LOOPBACK_URLS";
    pub const WEBHOOK_URL: &str = "WEBHOOK_URL";
    pub const WEBHOOK_MESSAGE_ROOMS: &str = "WEBHOOK_MESSAGE_ROOMS";
}

pub const DEFAULT_ISSUER: &str = "roomgate";
pub const DEFAULT_AUDIENCE: &str = "roomgate";
pub const DEFAULT_TOKEN_TTL_SECONDS: u64 = 3600;
pub const DEFAULT_CLOCK_LEEWAY_SECONDS: u64 = 30;
pub const DEFAULT_MAX_FRAME_BYTES: usize = 16 * 1024;
/// Bounds that keep a typo from producing a useless or dangerous service.
pub const MAX_TOKEN_TTL_SECONDS: u64 = 7 * 24 * 3600;
pub const MAX_CLOCK_LEEWAY_SECONDS: u64 = 300;
/// Longest accepted `exp - iat`, for every issuer.
pub const DEFAULT_MAX_TOKEN_LIFETIME_SECONDS: u64 = 24 * 3600;
pub const MAX_MAX_TOKEN_LIFETIME_SECONDS: u64 = 30 * 24 * 3600;
/// The runtime refuses WebSocket messages over 1 MiB, so larger limits would be a lie.
pub const MAX_FRAME_BYTES_LIMIT: usize = 1024 * 1024;
/// `expiring` goes out this long before a socket's token expires (0: never).
pub const DEFAULT_EXPIRY_WARNING_SECONDS: u64 = 60;
pub const MAX_EXPIRY_WARNING_SECONDS: u64 = 24 * 3600;
/// Failed logins per username, and per client address, within the window before 429.
pub const DEFAULT_LOGIN_MAX_FAILURES: u64 = 5;
pub const DEFAULT_LOGIN_WINDOW_SECONDS: u64 = 60;
pub const MAX_LOGIN_MAX_FAILURES: u64 = 1000;
pub const MAX_LOGIN_WINDOW_SECONDS: u64 = 24 * 3600;
/// Messages each room keeps (for resume and `history`); 0 keeps none. The cap bounds a
/// room's storage at about `MAX_HISTORY_LIMIT` × `MAX_FRAME_BYTES`.
pub const DEFAULT_HISTORY_LIMIT: u64 = 100;
pub const MAX_HISTORY_LIMIT: u64 = 1000;
/// A busy room's coalescing window (`room::flush`); 0: every frame goes out at once.
pub const DEFAULT_FLUSH_MS: u64 = 16;
/// Above this a message waits noticeably; the window is a latency bound, not a queue.
pub const MAX_FLUSH_MS: u64 = 1000;
/// Per-socket frame rate (`room::rate`): tokens a second, bucket size, and how many
/// refused frames (without the bucket filling up again) close the socket with 1008.
pub const DEFAULT_RATE_LIMIT_PER_SECOND: u64 = 20;
pub const DEFAULT_RATE_LIMIT_BURST: u64 = 40;
pub const DEFAULT_RATE_LIMIT_MAX_REJECTED: u64 = 40;
pub const MAX_RATE_LIMIT: u64 = 10_000;
/// Open sockets per room. The platform's own cap on a Durable Object's hibernatable
/// sockets is 32,768; every join, leave and presence frame costs work per open socket,
/// so the default stays well below it.
pub const DEFAULT_MAX_CONNECTIONS_PER_ROOM: u64 = 1000;
pub const MAX_MAX_CONNECTIONS_PER_ROOM: u64 = 32_768;
/// Open sockets one user may hold in one room, so that no user can take every seat.
pub const DEFAULT_MAX_CONNECTIONS_PER_USER: u64 = 10;
/// Rooms that announce presence (`members` in `welcome`, `join` and `leave`): all.
pub const DEFAULT_PRESENCE_ROOMS: &str = "*";
/// How long an emptied room stays in the registry of active rooms: a room whose members
/// come and go within it writes nothing to D1.
pub const DEFAULT_REGISTRY_GRACE_SECONDS: u64 = 30;
pub const MAX_REGISTRY_GRACE_SECONDS: u64 = 3600;
/// Tickets one access token may be traded for per minute.
pub const DEFAULT_TICKETS_PER_MINUTE: u64 = 60;
pub const MAX_TICKETS_PER_MINUTE: u64 = 10_000;
/// Rooms one request of a push calls (or parts it hands on): what keeps each request far
/// below the platform's subrequest limit.
pub const DEFAULT_REVOKE_PAGE_SIZE: u64 = 100;
pub const MAX_REVOKE_PAGE_SIZE: u64 = 1000;
/// Requests one server API key may make per minute.
pub const DEFAULT_API_REQUESTS_PER_MINUTE: u64 = 600;
pub const MAX_API_REQUESTS_PER_MINUTE: u64 = 100_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub tokens: TokenPolicy,
    /// Accept `?token=` on `/ws/{room}` (URLs end up in logs; see the README).
    pub allow_query_token: bool,
    pub room: RoomLimits,
    /// PBKDF2 iterations for new password hashes, and for the unknown-user decoy.
    pub pbkdf2_iterations: u32,
    /// Failed-login limit, per username and per client address.
    pub login_throttle: ThrottlePolicy,
    /// Where the keyring comes from besides the secrets (see `auth::keyring`).
    pub keys: KeyConfig,
    /// Whether a token without a `rooms` claim may enter every room.
    pub rooms_open_by_default: bool,
    /// Browser origins allowed to open sockets; `None`: any (the check is off).
    pub allowed_origins: Option<Vec<String>>,
    /// How many of its latest messages each room keeps (`room::history`).
    pub history_limit: u64,
    /// A busy room's coalescing window in milliseconds (`room::flush`); 0: off.
    pub flush_ms: u64,
    /// Room-name patterns (as in a token's `rooms` claim) of the rooms that announce
    /// presence; empty: none. Presence costs a frame to every other socket per join and
    /// per leave, which a broadcast room (a live feed, a dashboard) has no use for.
    pub presence_rooms: Vec<String>,
    /// How long an emptied room stays registered before it removes itself.
    pub registry_grace_secs: u64,
    /// Tickets one access token may be traded for per minute.
    pub tickets_per_minute: u32,
    /// Rooms (or parts) one request of a push calls.
    pub revoke_page_size: u32,
    /// Requests one server API key may make per minute.
    pub api_requests_per_minute: u32,
    /// URLs roomgate fetches (key sets, webhooks) may be `http` to a loopback host:
    /// for local development and tests only.
    pub allow_loopback_urls: bool,
    /// Where rooms report their events (`room::webhooks`); `None`: nowhere.
    pub webhook_url: Option<String>,
    /// Rooms whose messages are reported too (`message.published`); default none.
    pub webhook_message_rooms: Vec<String>,
}

impl Config {
    /// Whether `room`'s messages go to the webhook (`WEBHOOK_MESSAGE_ROOMS`).
    pub fn webhook_messages_in(&self, room: &str) -> bool {
        grants::allows(Some(&self.webhook_message_rooms), room, false)
    }
}

impl Config {
    /// Whether `room` announces presence (`PRESENCE_ROOMS`).
    pub fn presence_in(&self, room: &str) -> bool {
        grants::allows(Some(&self.presence_rooms), room, false)
    }
}

/// Non-secret keyring settings.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct KeyConfig {
    pub secret_kid: Option<String>,
    pub signing_kid: Option<String>,
    /// `TRUSTED_ISSUERS` as JSON text.
    pub trusted_issuers: Option<String>,
}

/// A `[vars]` value that could not be used. Answered as 500 `misconfigured`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: &'static str,
    pub reason: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "config {}: {}", self.key, self.reason)
    }
}

impl Config {
    /// Reads every key through `lookup` (a missing or empty value means "use the default").
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |key: &str| {
            lookup(key)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let text =
            |key: &'static str, default: &str| get(key).unwrap_or_else(|| default.to_owned());
        let number =
            |key: &'static str, default: u64, min: u64, max: u64| -> Result<u64, ConfigError> {
                let Some(raw) = get(key) else {
                    return Ok(default);
                };
                raw.parse::<u64>()
                    .ok()
                    .filter(|n| (min..=max).contains(n))
                    .ok_or_else(|| ConfigError {
                        key,
                        reason: format!("{raw:?} is not a whole number in {min}..={max}"),
                    })
            };
        let flag = |key: &'static str, default: bool| -> Result<bool, ConfigError> {
            match get(key).as_deref().map(str::to_ascii_lowercase).as_deref() {
                None => Ok(default),
                Some("true" | "1" | "yes" | "on") => Ok(true),
                Some("false" | "0" | "no" | "off") => Ok(false),
                Some(other) => Err(ConfigError {
                    key,
                    reason: format!("{other:?} is not true or false"),
                }),
            }
        };

        let allow_loopback_urls = flag(keys::ALLOW_LOOPBACK_URLS, false)?;
        Ok(Self {
            tokens: TokenPolicy {
                issuer: text(keys::JWT_ISSUER, DEFAULT_ISSUER),
                audience: text(keys::JWT_AUDIENCE, DEFAULT_AUDIENCE),
                ttl_secs: number(
                    keys::TOKEN_TTL_SECONDS,
                    DEFAULT_TOKEN_TTL_SECONDS,
                    1,
                    MAX_TOKEN_TTL_SECONDS,
                )?,
                leeway_secs: number(
                    keys::CLOCK_LEEWAY_SECONDS,
                    DEFAULT_CLOCK_LEEWAY_SECONDS,
                    0,
                    MAX_CLOCK_LEEWAY_SECONDS,
                )?,
                max_lifetime_secs: number(
                    keys::MAX_TOKEN_LIFETIME_SECONDS,
                    DEFAULT_MAX_TOKEN_LIFETIME_SECONDS,
                    60,
                    MAX_MAX_TOKEN_LIFETIME_SECONDS,
                )?,
            },
            allow_query_token: flag(keys::ALLOW_QUERY_TOKEN, false)?,
            room: RoomLimits {
                max_frame_bytes: number(
                    keys::MAX_FRAME_BYTES,
                    DEFAULT_MAX_FRAME_BYTES as u64,
                    64,
                    MAX_FRAME_BYTES_LIMIT as u64,
                )? as usize,
                expiry_warning_secs: number(
                    keys::EXPIRY_WARNING_SECONDS,
                    DEFAULT_EXPIRY_WARNING_SECONDS,
                    0,
                    MAX_EXPIRY_WARNING_SECONDS,
                )?,
                rate: RatePolicy {
                    per_second: number(
                        keys::RATE_LIMIT_PER_SECOND,
                        DEFAULT_RATE_LIMIT_PER_SECOND,
                        1,
                        MAX_RATE_LIMIT,
                    )?,
                    burst: number(
                        keys::RATE_LIMIT_BURST,
                        DEFAULT_RATE_LIMIT_BURST,
                        1,
                        MAX_RATE_LIMIT,
                    )?,
                    max_rejected: number(
                        keys::RATE_LIMIT_MAX_REJECTED,
                        DEFAULT_RATE_LIMIT_MAX_REJECTED,
                        1,
                        MAX_RATE_LIMIT,
                    )?,
                },
                max_connections: number(
                    keys::MAX_CONNECTIONS_PER_ROOM,
                    DEFAULT_MAX_CONNECTIONS_PER_ROOM,
                    1,
                    MAX_MAX_CONNECTIONS_PER_ROOM,
                )? as usize,
                max_connections_per_user: number(
                    keys::MAX_CONNECTIONS_PER_USER,
                    DEFAULT_MAX_CONNECTIONS_PER_USER,
                    1,
                    MAX_MAX_CONNECTIONS_PER_ROOM,
                )? as usize,
            },
            pbkdf2_iterations: number(
                keys::PBKDF2_ITERATIONS,
                u64::from(DEFAULT_ITERATIONS),
                u64::from(MIN_ITERATIONS),
                u64::from(MAX_ITERATIONS),
            )? as u32,
            login_throttle: ThrottlePolicy {
                max_failures: number(
                    keys::LOGIN_MAX_FAILURES,
                    DEFAULT_LOGIN_MAX_FAILURES,
                    1,
                    MAX_LOGIN_MAX_FAILURES,
                )? as u32,
                window_secs: number(
                    keys::LOGIN_WINDOW_SECONDS,
                    DEFAULT_LOGIN_WINDOW_SECONDS,
                    1,
                    MAX_LOGIN_WINDOW_SECONDS,
                )?,
            },
            keys: KeyConfig {
                secret_kid: get(keys::JWT_SECRET_KID),
                signing_kid: get(keys::JWT_SIGNING_KID),
                trusted_issuers: get(keys::TRUSTED_ISSUERS),
            },
            rooms_open_by_default: flag(keys::ROOMS_OPEN_BY_DEFAULT, true)?,
            allowed_origins: get(keys::ALLOWED_ORIGINS).map(|list| {
                list.split(',')
                    .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
                    .filter(|o| !o.is_empty())
                    .collect()
            }),
            history_limit: number(
                keys::HISTORY_LIMIT,
                DEFAULT_HISTORY_LIMIT,
                0,
                MAX_HISTORY_LIMIT,
            )?,
            flush_ms: number(keys::FLUSH_MS, DEFAULT_FLUSH_MS, 0, MAX_FLUSH_MS)?,
            presence_rooms: room_patterns(
                keys::PRESENCE_ROOMS,
                &text(keys::PRESENCE_ROOMS, DEFAULT_PRESENCE_ROOMS),
            )?,
            registry_grace_secs: number(
                keys::REGISTRY_GRACE_SECONDS,
                DEFAULT_REGISTRY_GRACE_SECONDS,
                1,
                MAX_REGISTRY_GRACE_SECONDS,
            )?,
            tickets_per_minute: number(
                keys::TICKETS_PER_MINUTE,
                DEFAULT_TICKETS_PER_MINUTE,
                1,
                MAX_TICKETS_PER_MINUTE,
            )? as u32,
            revoke_page_size: number(
                keys::REVOKE_PAGE_SIZE,
                DEFAULT_REVOKE_PAGE_SIZE,
                2,
                MAX_REVOKE_PAGE_SIZE,
            )? as u32,
            api_requests_per_minute: number(
                keys::API_REQUESTS_PER_MINUTE,
                DEFAULT_API_REQUESTS_PER_MINUTE,
                1,
                MAX_API_REQUESTS_PER_MINUTE,
            )? as u32,
            allow_loopback_urls,
            webhook_url: get(keys::WEBHOOK_URL)
                .map(|url| {
                    check_url(&url, allow_loopback_urls)
                        .map(|()| url)
                        .map_err(|reason| ConfigError {
                            key: keys::WEBHOOK_URL,
                            reason,
                        })
                })
                .transpose()?,
            webhook_message_rooms: room_patterns(
                keys::WEBHOOK_MESSAGE_ROOMS,
                &text(keys::WEBHOOK_MESSAGE_ROOMS, "[]"),
            )?,
        })
    }
}

/// A list of room-name patterns: a JSON array of strings (`[]` is none), or names
/// separated by commas. Each is a room name, or a room-name prefix followed by `*`.
fn room_patterns(key: &'static str, raw: &str) -> Result<Vec<String>, ConfigError> {
    let list: Vec<String> = if raw.starts_with('[') {
        serde_json::from_str(raw).map_err(|e| ConfigError {
            key,
            reason: format!("not a list of room-name patterns: {e}"),
        })?
    } else {
        raw.split(',').map(str::to_owned).collect()
    };
    let list: Vec<String> = list
        .iter()
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    match list
        .iter()
        .find(|p| !grants::valid_patterns(std::slice::from_ref(*p)))
    {
        Some(bad) => Err(ConfigError {
            key,
            reason: format!("{bad:?} is not a room name or a room-name prefix followed by *"),
        }),
        None if list.len() > grants::MAX_PATTERNS => Err(ConfigError {
            key,
            reason: format!("more than {} patterns", grants::MAX_PATTERNS),
        }),
        None => Ok(list),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let c = from(&[]).unwrap();
        assert_eq!(c.tokens.issuer, "roomgate");
        assert_eq!(c.tokens.audience, "roomgate");
        assert_eq!(c.tokens.ttl_secs, 3600);
        assert_eq!(c.tokens.leeway_secs, 30);
        assert!(!c.allow_query_token);
        assert_eq!(c.room.max_frame_bytes, 16384);
        assert_eq!(c.room.expiry_warning_secs, 60);
        assert_eq!(c.pbkdf2_iterations, 100_000);
        assert_eq!(c.tokens.max_lifetime_secs, 86_400);
        assert!(c.rooms_open_by_default);
        assert_eq!(c.allowed_origins, None);
        assert_eq!(c.keys, KeyConfig::default());
        assert_eq!(c.login_throttle.max_failures, 5);
        assert_eq!(c.login_throttle.window_secs, 60);
        assert_eq!(c.history_limit, 100);
        assert_eq!(c.flush_ms, 16);
        assert_eq!(
            c.room.rate,
            RatePolicy {
                per_second: 20,
                burst: 40,
                max_rejected: 40
            }
        );
        assert_eq!(c.room.max_connections, 1000);
        assert_eq!(c.room.max_connections_per_user, 10);
        assert_eq!(c.registry_grace_secs, 30);
        assert_eq!(c.tickets_per_minute, 60);
        assert_eq!(c.api_requests_per_minute, 600);
        assert!(!c.allow_loopback_urls);
        assert_eq!(c.webhook_url, None);
        assert!(!c.webhook_messages_in("lobby"));
        let hooked = from(&[
            ("WEBHOOK_URL", "https://hooks.example/rg"),
            ("WEBHOOK_MESSAGE_ROOMS", "orders-*"),
        ])
        .unwrap();
        assert_eq!(
            hooked.webhook_url.as_deref(),
            Some("https://hooks.example/rg")
        );
        assert!(hooked.webhook_messages_in("orders-7") && !hooked.webhook_messages_in("lobby"));
        for (url, loopback) in [
            ("http://hooks.example/rg", "true"),
            ("http://127.0.0.1:9/h", "false"),
            ("nonsense", "true"),
        ] {
            let e = from(&[("WEBHOOK_URL", url), ("ALLOW_LOOPBACK_URLS", loopback)]).unwrap_err();
            assert_eq!(e.key, "WEBHOOK_URL", "{url}");
        }
        let local = from(&[
            ("WEBHOOK_URL", "http://127.0.0.1:9/h"),
            ("ALLOW_LOOPBACK_URLS", "true"),
        ]);
        assert!(local.is_ok());
        assert_eq!(c.revoke_page_size, 100);
        assert_eq!(
            from(&[("JWT_ISSUER", "  ")]).unwrap(),
            c,
            "blank means default"
        );
    }

    #[test]
    fn overrides() {
        let c = from(&[
            ("JWT_ISSUER", "https://id.example"),
            ("TOKEN_TTL_SECONDS", "60"),
            ("CLOCK_LEEWAY_SECONDS", "0"),
            ("ALLOW_QUERY_TOKEN", "true"),
            ("MAX_FRAME_BYTES", "1024"),
            ("EXPIRY_WARNING_SECONDS", "0"),
            ("PBKDF2_ITERATIONS", "5000"),
            ("LOGIN_MAX_FAILURES", "1"),
            ("LOGIN_WINDOW_SECONDS", "2"),
            ("HISTORY_LIMIT", "5"),
            ("RATE_LIMIT_PER_SECOND", "1"),
            ("RATE_LIMIT_BURST", "10000"),
            ("RATE_LIMIT_MAX_REJECTED", "3"),
            ("MAX_CONNECTIONS_PER_ROOM", "2"),
        ])
        .unwrap();
        assert_eq!(
            c.room.rate,
            RatePolicy {
                per_second: 1,
                burst: 10_000,
                max_rejected: 3
            }
        );
        assert_eq!(c.room.max_connections, 2);
        assert_eq!(
            from(&[("MAX_CONNECTIONS_PER_ROOM", "32768")])
                .unwrap()
                .room
                .max_connections,
            32_768
        );
        assert_eq!(c.history_limit, 5);
        assert_eq!(from(&[("HISTORY_LIMIT", "0")]).unwrap().history_limit, 0);
        assert_eq!(
            from(&[("HISTORY_LIMIT", "1000")]).unwrap().history_limit,
            1000
        );
        assert_eq!(c.tokens.issuer, "https://id.example");
        assert_eq!(c.tokens.ttl_secs, 60);
        assert_eq!(c.tokens.leeway_secs, 0);
        assert!(c.allow_query_token);
        assert_eq!(c.room.max_frame_bytes, 1024);
        assert_eq!(c.room.expiry_warning_secs, 0);
        assert_eq!(c.pbkdf2_iterations, 5000);
        assert_eq!(c.login_throttle.max_failures, 1);
        assert_eq!(c.login_throttle.window_secs, 2);
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases = [
            ("TOKEN_TTL_SECONDS", "soon"),
            ("TOKEN_TTL_SECONDS", "0"),
            ("TOKEN_TTL_SECONDS", "-5"),
            ("CLOCK_LEEWAY_SECONDS", "301"),
            ("ALLOW_QUERY_TOKEN", "maybe"),
            ("MAX_FRAME_BYTES", "2000000"),
            ("EXPIRY_WARNING_SECONDS", "86401"),
            ("EXPIRY_WARNING_SECONDS", "soon"),
            ("PBKDF2_ITERATIONS", "100001"),
            ("PBKDF2_ITERATIONS", "10"),
            ("MAX_TOKEN_LIFETIME_SECONDS", "59"),
            ("ROOMS_OPEN_BY_DEFAULT", "sometimes"),
            ("LOGIN_MAX_FAILURES", "0"),
            ("LOGIN_MAX_FAILURES", "1001"),
            ("LOGIN_MAX_FAILURES", "five"),
            ("LOGIN_WINDOW_SECONDS", "0"),
            ("LOGIN_WINDOW_SECONDS", "86401"),
            ("HISTORY_LIMIT", "1001"),
            ("HISTORY_LIMIT", "-1"),
            ("HISTORY_LIMIT", "lots"),
            ("RATE_LIMIT_PER_SECOND", "0"),
            ("RATE_LIMIT_PER_SECOND", "10001"),
            ("RATE_LIMIT_PER_SECOND", "2.5"),
            ("RATE_LIMIT_BURST", "0"),
            ("RATE_LIMIT_BURST", "many"),
            ("RATE_LIMIT_MAX_REJECTED", "0"),
            ("MAX_CONNECTIONS_PER_ROOM", "0"),
            ("MAX_CONNECTIONS_PER_ROOM", "32769"),
            ("MAX_CONNECTIONS_PER_USER", "0"),
            ("MAX_CONNECTIONS_PER_USER", "many"),
            ("PRESENCE_ROOMS", "chat/*"),
            ("PRESENCE_ROOMS", "lobby, a b"),
            ("PRESENCE_ROOMS", "[\"lobby\""),
            ("PRESENCE_ROOMS", "[1, 2]"),
            ("PRESENCE_ROOMS", "*a"),
            ("REGISTRY_GRACE_SECONDS", "0"),
            ("REGISTRY_GRACE_SECONDS", "3601"),
            ("TICKETS_PER_MINUTE", "0"),
            ("TICKETS_PER_MINUTE", "10001"),
            ("REVOKE_PAGE_SIZE", "1"),
            ("REVOKE_PAGE_SIZE", "1001"),
        ];
        for (key, value) in cases {
            let err = from(&[(key, value)]).unwrap_err();
            assert_eq!(err.key, key, "{key}={value}");
        }
    }

    #[test]
    fn presence_rooms_every_room_by_default_some_or_none() {
        let every = from(&[]).unwrap();
        assert_eq!(every.presence_rooms, vec!["*".to_owned()]);
        assert!(every.presence_in("lobby") && every.presence_in("feed-1"));

        for value in ["chat-*, lobby", r#"["chat-*", "lobby"]"#] {
            let some = from(&[("PRESENCE_ROOMS", value)]).unwrap();
            assert_eq!(some.presence_rooms, vec!["chat-*", "lobby"], "{value}");
            assert!(some.presence_in("chat-7") && some.presence_in("lobby"));
            assert!(!some.presence_in("lobby-2") && !some.presence_in("feed"));
        }

        // `[]`: presence nowhere. An empty string is "unset", as for every key, so it
        // keeps the default.
        let none = from(&[("PRESENCE_ROOMS", "[]")]).unwrap();
        assert!(none.presence_rooms.is_empty());
        assert!(!none.presence_in("lobby"));
        assert_eq!(
            from(&[("PRESENCE_ROOMS", " ")]).unwrap().presence_rooms,
            vec!["*"]
        );
    }
}
