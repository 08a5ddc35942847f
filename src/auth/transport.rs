//! Where a WebSocket upgrade carries its token, and which subprotocol the server selects.
//!
//! Browsers cannot set headers on `new WebSocket(...)`, but they can offer subprotocols,
//! so the browser transport is `Sec-WebSocket-Protocol: roomgate.v1, bearer.<jwt>`.
//! The server must then select one offered protocol (browsers fail the handshake
//! otherwise) and must never echo the token back, so it selects `roomgate.v1`.
//!
//! Transports, first match wins (no fallback when the first is present but bad):
//! 1. subprotocol `bearer.<jwt>` offered together with `roomgate.v1`;
//! 2. `Authorization: Bearer <jwt>`;
//! 3. `?token=<jwt>`, when enabled.

use crate::room::protocol::SUBPROTOCOL;

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
pub struct Credential {
    pub token: String,
    pub transport: Transport,
    /// `Some("roomgate.v1")` whenever the client offered it, whatever the transport.
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

/// The subprotocol to select in the 101: `roomgate.v1` whenever the client offered it.
pub fn selected_protocol(protocols: Option<&str>) -> Option<&'static str> {
    protocols
        .is_some_and(|p| p.split(',').any(|p| p.trim() == SUBPROTOCOL))
        .then_some(SUBPROTOCOL)
}

/// Finds the token by the transport order above. `None` means "no token at all".
pub fn find_credential(offer: UpgradeAuth<'_>, allow_query_token: bool) -> Option<Credential> {
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
    let speaks_v1 = selected_protocol.is_some();
    let credential = |token: &str, transport| Credential {
        token: token.to_owned(),
        transport,
        selected_protocol,
    };

    if speaks_v1 {
        if let Some(token) = offered
            .iter()
            .find_map(|p| p.strip_prefix(BEARER_PROTOCOL_PREFIX))
        {
            return Some(credential(token, Transport::Subprotocol));
        }
    }
    if let Some(token) = offer.bearer.filter(|t| !t.is_empty()) {
        return Some(credential(token, Transport::AuthorizationHeader));
    }
    if allow_query_token {
        if let Some(token) = offer.query_token.filter(|t| !t.is_empty()) {
            return Some(credential(token, Transport::QueryParameter));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(
        protocols: Option<&str>,
        bearer: Option<&str>,
        query: Option<&str>,
    ) -> Option<Credential> {
        find_credential(
            UpgradeAuth {
                protocols,
                bearer,
                query_token: query,
            },
            true,
        )
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
    }

    #[test]
    fn query_token_can_be_switched_off() {
        let offer = UpgradeAuth {
            query_token: Some("Q"),
            ..Default::default()
        };
        assert_eq!(find_credential(offer, false), None);
        assert!(find_credential(offer, true).is_some());
    }
}
