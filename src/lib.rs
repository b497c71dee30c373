//! migsim: a deterministic simulation testbed for online shard migration.

pub mod checker;
pub mod cli;
pub mod nemesis;
pub mod runner;
pub mod scenario;
pub mod sut;
pub mod trace;
pub mod units;
pub mod vocabulary;
pub mod workload;
pub mod world;
