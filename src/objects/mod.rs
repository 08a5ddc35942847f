//! roomgate's Durable Objects, one folder each: the class, its private state and
//! storage, and the `client` module that is the only way anything else calls it.
//!
//! - [`room`]: one `Room` per room name, owning its sockets, history and presence;
//! - [`tickets`]: `TicketBox`, single-use WebSocket tickets;
//! - [`limiter`]: `Limiter`, failed-login and rate counters;
//! - [`fanout`]: `Fanout`, one part of a push to every room with live sockets.

pub mod fanout;
pub mod limiter;
pub mod room;
pub mod tickets;
