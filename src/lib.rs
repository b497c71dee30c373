//! migsim: a deterministic simulation testbed for online shard migration.

pub mod checker;
pub mod scenario;
pub mod units;
pub mod world;
