//! What crosses a boundary, and nothing else: the leaf every other layer builds on.
//!
//! - [`frames`]: protocol v1, the JSON text frames between a client and a room;
//! - [`close`]: the close codes that end a socket;
//! - [`names`]: room names, usernames, display names and the bounds on identity claims;
//! - [`identity`]: the verified identity behind a socket, and revocations;
//! - [`internal`]: the calls between the Worker and its Durable Objects.
//!
//! Plain Rust with no `worker` types and no imports from the rest of the crate, so it is
//! host-tested and can be read first.

pub mod close;
pub mod frames;
pub mod identity;
pub mod internal;
pub mod names;

#[cfg(test)]
pub(crate) mod props;
