//! Authentication: who a client is, proven without trusting the client.
//!
//! Everything here is plain Rust with no `worker` types, so it is unit-tested on the host:
//! tokens ([`token`]), password hashes ([`password`]), constant-time comparison and
//! randomness ([`secret`]). The Worker glue supplies what only the runtime has — the clock,
//! WebCrypto's PBKDF2 and the bindings — and calls in here for every decision.

pub mod grants;
pub mod keyring;
pub mod keys;
pub mod password;
pub mod revocation;
pub mod secret;
#[cfg(test)]
pub mod test_crypto;
pub mod throttle;
pub mod ticket;
pub mod token;
pub mod transport;
