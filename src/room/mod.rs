//! The room core: membership, fan-out decisions, history, rate and expiry, as plain Rust.
//!
//! The `Room` Durable Object (`objects::room`) owns sockets and storage; everything it
//! decides (what a frame means, who hears about it, which close code ends a socket) is
//! decided here, from data alone, so it is unit-tested on the host with an injected clock.
//!
//! - [`state`]: takes events (join, leave, frame, kick, revocation) and returns what to
//!   do;
//! - [`flush`]: coalescing: when gathered frames go out, and what each socket gets;
//! - [`expiry`]: the same for token lifetimes on live sockets (alarm, warning, refresh);
//! - [`history`]: the kept messages: trimming, replay on resume (`gap`), `history` pages;
//! - [`rate`]: the per-connection frame rate limit (token bucket);
//! - [`registration`]: the room's entry in the registry of active rooms;
//! - [`webhooks`]: the events a room reports to the team's backend, signed.

pub mod expiry;
pub mod flush;
pub mod history;
pub mod rate;
pub mod registration;
pub mod state;
pub mod webhooks;

#[cfg(test)]
mod props;
