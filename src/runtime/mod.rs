//! Platform plumbing: everything that touches the Workers runtime but decides nothing.
//!
//! - [`env`]: binding names, the clock, and the per-isolate configuration and keyring;
//! - [`error`]: [`error::ApiError`] and its one mapping to a JSON response;
//! - [`http`]: JSON responses, bounded JSON bodies, the bearer token;
//! - [`object`]: the one client for roomgate's Durable Objects;
//! - [`d1`]: the D1 binding and its parameters;
//! - [`webcrypto`]: PBKDF2 and public-key signatures in the runtime's native crypto;
//! - [`remote_keys`]: fetching and caching the keys identity providers publish;
//! - [`outbound`]: requests to other servers, with a timeout;
//! - [`executor`]: answering the runtime without a promise when nothing had to wait.
//!
//! Tested end to end against workerd (`tests/`): any call into a JS-backed type panics
//! on the host.

pub mod d1;
pub mod env;
pub mod error;
pub mod executor;
pub mod http;
pub mod object;
pub mod outbound;
pub mod remote_keys;
pub mod webcrypto;
