//! The scenarios of bench/README.md, one module each, run against one running target by
//! `bench_target.rs` (size and cold start start their own). Each returns the JSON that
//! goes under its name in the target's results. They drive the load with the lower-level
//! modules (`upgrades.rs`, `fanout/`, `sweep.rs`, `login.rs`, `size.rs`, `quiet.rs`).

pub mod cpu;
pub mod fanout;
pub mod login;
pub mod size;
pub mod steps;
pub mod upgrades;
pub mod warm_up;
