//! The fan-out load of scenarios 2 and 4 (`scenario/fanout.rs`, `scenario/cpu.rs`): one
//! room of N clients, S senders publishing open loop at a combined rate R; every receiver
//! checks order and records latency.
//!
//! [`room`] joins the clients and closes them, [`receive`] is each client's reader and
//! the per-step counters it fills, [`step`] runs one measured step on a room.

mod receive;
mod room;
mod step;

pub use room::Room;
pub use step::{StepConfig, StepResult, GENERATOR_SATURATED};
