//! Authentication: who a client is, proven without trusting the client.
//!
//! Plain Rust with no `worker` types, host-tested with an injected clock: tokens
//! ([`token`], [`keyring`], [`keys`]), password hashes ([`password`]), constant-time
//! comparison and randomness ([`secret`]), room grants ([`grants`]), where an upgrade
//! carries its credential ([`transport`]) and the `Origin` check ([`origin`]),
//! revocation rules ([`revocation`]), tickets ([`ticket`]), the failed-login ledger
//! ([`throttle`]) and the server API's keys ([`api_keys`]). What only the runtime has (the clock, WebCrypto, the bindings) is
//! passed in by the layers below.

pub mod api_keys;
pub mod grants;
pub mod keyring;
pub mod keys;
pub mod origin;
pub mod password;
pub mod remote_keys;
pub mod revocation;
pub mod secret;
#[cfg(test)]
pub mod test_crypto;
pub mod throttle;
pub mod ticket;
pub mod token;
pub mod transport;
