//! What crosses a boundary, and nothing else: the leaf every other layer builds on.
//!
//! - [`frames`]: the JSON frame objects between a client and a room (all of v1);
//! - [`v2`]: protocol v2, many frame objects to a text frame;
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
pub mod v2;

#[cfg(test)]
pub(crate) mod props;
