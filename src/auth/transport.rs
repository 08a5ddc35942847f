//! Where a WebSocket upgrade carries its token, and which subprotocol the server selects.
//!
//! Browsers cannot set headers on `new WebSocket(...)`, but they can offer subprotocols,
//! so the browser transport is `Sec-WebSocket-Protocol: roomgate.v2, bearer.<jwt>` (or
//! `roomgate.v1`). The server must then select one offered protocol (browsers fail the
//! handshake otherwise) and must never echo the token back, so it selects the roomgate
//! protocol: `roomgate.v2` when offered, else `roomgate.v1`.
//!
//! Transports, first match wins (no fallback when the first is present but bad):
//! 1. subprotocol `bearer.<jwt>` offered together with `roomgate.v2` or `roomgate.v1`;
//! 2. `Authorization: Bearer <jwt>`;
//! 3. `?token=<jwt>`, only when `ALLOW_QUERY_TOKEN` is on (off by default: a reusable
//!    token in a URL ends up in request logs).
//!
//! A single-use `?ticket=` replaces all three, and `?since=` asks for a resume; both are
//! read from the URL's query ([`Query`]), because a browser's `WebSocket` constructor
//! can set no headers.

use crate::protocol::frames::SUBPROTOCOL as V1;
use crate::protocol::v2::SUBPROTOCOL as V2;

/// Prefix of the subprotocol entry that carries the token.
pub const BEARER_PROTOCOL_PREFIX: &str = "bearer.";

/// Which transport a token came from (for logs and tests; never the token itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Subprotocol,
    AuthorizationHeader,
    QueryParameter,
}

/// The token found on an upgrade request, and the subprotocol to select in the 101.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedToken {
    pub token: String,
    pub transport: Transport,
    /// The roomgate protocol the client offered ([`selected_protocol`]), whatever the
    /// transport.
    pub selected_protocol: Option<&'static str>,
}

/// What the upgrade request offered, as raw header and query values.
#[derive(Debug, Default, Clone, Copy)]
pub struct UpgradeAuth<'a> {
    pub protocols: Option<&'a str>,
    /// The token of `Authorization: Bearer <token>`, already unwrapped.
    pub bearer: Option<&'a str>,
    pub query_token: Option<&'a str>,
}

/// The subprotocol to select in the 101: `roomgate.v2` when the client offered it, else
/// `roomgate.v1` when it offered that.
pub fn selected_protocol(protocols: Option<&str>) -> Option<&'static str> {
    let offered = |name: &str| protocols.is_some_and(|p| p.split(',').any(|p| p.trim() == name));
    [V2, V1].into_iter().find(|name| offered(name))
}

/// Why no token was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoToken {
    /// No transport carried one.
    Absent,
    /// Only `?token=` did, and it is switched off.
    QueryTokenOff,
}

impl std::fmt::Display for NoToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Absent => "no access token presented",
            Self::QueryTokenOff => {
                "?token= is not accepted (ALLOW_QUERY_TOKEN is off): use a ticket, the \
                 bearer.<token> subprotocol or Authorization: Bearer"
            }
        })
    }
}

/// Finds the token by the transport order above.
pub fn find_token(
    offer: UpgradeAuth<'_>,
    allow_query_token: bool,
) -> Result<OfferedToken, NoToken> {
    let offered: Vec<&str> = offer
        .protocols
        .map(|p| {
            p.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let selected_protocol = selected_protocol(offer.protocols);
    let speaks_roomgate = selected_protocol.is_some();
    let credential = |token: &str, transport| OfferedToken {
        token: token.to_owned(),
        transport,
        selected_protocol,
    };

    if speaks_roomgate {
        if let Some(token) = offered
            .iter()
            .find_map(|p| p.strip_prefix(BEARER_PROTOCOL_PREFIX))
        {
            return Ok(credential(token, Transport::Subprotocol));
        }
    }
    if let Some(token) = offer.bearer.filter(|t| !t.is_empty()) {
        return Ok(credential(token, Transport::AuthorizationHeader));
    }
    match offer.query_token.filter(|t| !t.is_empty()) {
        Some(token) if allow_query_token => Ok(credential(token, Transport::QueryParameter)),
        Some(_) => Err(NoToken::QueryTokenOff),
        None => Err(NoToken::Absent),
    }
}

/// The token of an `Authorization` header value, if it is `Bearer <token>`. The scheme
/// is case-insensitive (RFC 7235).
pub fn bearer_token(authorization: Option<&str>) -> Option<&str> {
    let value = authorization?.trim();
    value
        .get(..7)
        .filter(|scheme| scheme.eq_ignore_ascii_case("bearer "))
        .map(|_| value[7..].trim())
        .filter(|t| !t.is_empty())
}

/// The query parameters of an upgrade URL (none when it has no `?`).
#[derive(Debug, Clone, Copy)]
pub struct Query<'a>(Option<&'a str>);

impl<'a> Query<'a> {
    /// The query of `url` (a fragment is not part of it).
    pub fn of(url: &'a str) -> Self {
        let without_fragment = url.split('#').next().unwrap_or("");
        Query(without_fragment.split_once('?').map(|(_, q)| q))
    }

    /// The first value of `key`, percent-decoded.
    pub fn get(&self, key: &str) -> Option<String> {
        form_urlencoded::parse(self.0?.as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    }

    /// `?since=<seq>`: `Ok(None)` when absent, `Err` when it is not a whole number.
    pub fn since(&self) -> Result<Option<u64>, &'static str> {
        self.get("since")
            .map(|raw| {
                raw.parse::<u64>()
                    .map_err(|_| "since must be a whole number (a seq)")
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(
        protocols: Option<&str>,
        bearer: Option<&str>,
        query: Option<&str>,
    ) -> Option<OfferedToken> {
        find_token(
            UpgradeAuth {
                protocols,
                bearer,
                query_token: query,
            },
            true,
        )
        .ok()
    }

    /// (subprotocols, bearer, query token) → (token, transport, roomgate.v1 selected).
    type Case<'a> = (
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
        Option<(&'a str, Transport, bool)>,
    );

    #[test]
    fn transport_order_and_selection() {
        use Transport::*;
        let cases: &[Case] = &[
            (
                Some("roomgate.v1, bearer.P"),
                Some("H"),
                Some("Q"),
                Some(("P", Subprotocol, true)),
            ),
            (
                Some("bearer.P,roomgate.v1"),
                None,
                None,
                Some(("P", Subprotocol, true)),
            ),
            (
                Some("roomgate.v1"),
                Some("H"),
                Some("Q"),
                Some(("H", AuthorizationHeader, true)),
            ),
            (
                Some("roomgate.v1"),
                None,
                Some("Q"),
                Some(("Q", QueryParameter, true)),
            ),
            (
                None,
                Some("H"),
                Some("Q"),
                Some(("H", AuthorizationHeader, false)),
            ),
            (None, None, Some("Q"), Some(("Q", QueryParameter, false))),
            // bearer.* without roomgate.v1 is not a transport: nothing could be selected.
            (Some("bearer.P"), None, None, None),
            (
                Some("bearer.P"),
                Some("H"),
                None,
                Some(("H", AuthorizationHeader, false)),
            ),
            (Some("chat, superchat"), None, None, None),
            (None, None, None, None),
            (None, Some(""), Some(""), None),
        ];
        for &(protocols, bearer, query, want) in cases {
            let got = find(protocols, bearer, query);
            let got = got
                .as_ref()
                .map(|c| (c.token.as_str(), c.transport, c.selected_protocol.is_some()));
            assert_eq!(got, want, "{protocols:?} {bearer:?} {query:?}");
        }
    }

    #[test]
    fn selected_protocol_is_never_the_token() {
        let c = find(Some("roomgate.v1, bearer.secret"), None, None).unwrap();
        assert_eq!(c.selected_protocol, Some("roomgate.v1"));
        let c = find(Some("roomgate.v2, bearer.secret"), None, None).unwrap();
        assert_eq!(c.selected_protocol, Some("roomgate.v2"));
        assert_eq!(c.token, "secret");
    }

    #[test]
    fn v2_is_selected_whenever_offered() {
        let cases = [
            ("roomgate.v1", Some("roomgate.v1")),
            ("roomgate.v2", Some("roomgate.v2")),
            ("roomgate.v1, roomgate.v2", Some("roomgate.v2")),
            ("roomgate.v2,roomgate.v1", Some("roomgate.v2")),
            ("roomgate.v3", None),
            ("roomgate.v2x", None),
        ];
        for (offered, want) in cases {
            assert_eq!(selected_protocol(Some(offered)), want, "{offered}");
        }
    }

    #[test]
    fn query_token_can_be_switched_off() {
        let offer = UpgradeAuth {
            query_token: Some("Q"),
            ..Default::default()
        };
        assert_eq!(find_token(offer, false), Err(NoToken::QueryTokenOff));
        assert!(find_token(offer, true).is_ok());
        // The refusal names the setting, so an operator knows what to change.
        assert!(NoToken::QueryTokenOff
            .to_string()
            .contains("ALLOW_QUERY_TOKEN"));
        // Another transport still wins when the query one is off.
        let with_header = UpgradeAuth {
            bearer: Some("H"),
            ..offer
        };
        assert_eq!(find_token(with_header, false).unwrap().token, "H");
        assert_eq!(
            find_token(UpgradeAuth::default(), false),
            Err(NoToken::Absent)
        );
    }

    #[test]
    fn query_parameters_are_decoded_and_the_first_one_wins() {
        let q = Query::of("https://h/ws/r?ticket=a%2Bb&token=x+y&ticket=second#frag");
        assert_eq!(q.get("ticket").as_deref(), Some("a+b"));
        assert_eq!(q.get("token").as_deref(), Some("x y"));
        assert_eq!(q.get("since"), None);
        assert_eq!(Query::of("https://h/ws/r").get("ticket"), None);
        assert_eq!(Query::of("https://h/ws/r#?ticket=x").get("ticket"), None);
        assert_eq!(
            Query::of("https://h/ws/r?t=1#x").get("t").as_deref(),
            Some("1")
        );
    }

    #[test]
    fn since_is_a_whole_number_or_absent() {
        assert_eq!(Query::of("/ws/r").since(), Ok(None));
        assert_eq!(Query::of("/ws/r?since=0").since(), Ok(Some(0)));
        let max = format!("/ws/r?since={}", u64::MAX);
        assert_eq!(Query::of(&max).since(), Ok(Some(u64::MAX)));
        for bad in ["-1", "1.5", "x", "", "18446744073709551616"] {
            assert!(
                Query::of(&format!("/ws/r?since={bad}")).since().is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn bearer_header_values() {
        let cases = [
            (Some("Bearer abc"), Some("abc")),
            (Some("bearer  abc "), Some("abc")),
            (Some("BEARER abc"), Some("abc")),
            (Some("Bearer "), None),
            (Some("Basic abc"), None),
            (Some("Bearerabc"), None),
            (Some("Bear"), None),
            (Some(""), None),
            (None, None),
        ];
        for (header, want) in cases {
            assert_eq!(bearer_token(header), want, "{header:?}");
        }
    }
}
