//! Systems under test. Each runs on the world only through `world::NodeContext` and never imports
//! world internals, `checker` or `workload`.
//!
//! `ping` is the world's own exercise (nodes pinging each other under faults); the replicated store
//! and the migration protocol come next.

pub mod durable;
pub mod ping;
pub mod store;
