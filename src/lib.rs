//! migsim: a deterministic simulation testbed for online shard migration.

pub mod checker;
pub mod cli;
pub mod units;
pub mod world;
