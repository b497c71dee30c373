//! The client side of the store system: what clients ask for (`generator`), the client program
//! that sends it through gateways and records every operation's call and return on the model
//! clock (`client`), and the final read-back of every key.
//!
//! It sees the store only through its client-facing messages (`sut::store::message`), never a
//! replica's state, and it never judges: checkers read the events it records.

pub mod client;
pub mod generator;

use serde::Serialize;

/// The share of each operation; the four sum to 1.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OperationMix {
    pub get: f64,
    pub put: f64,
    pub cas: f64,
    pub append: f64,
}

/// How keys are drawn from `0..keys`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyDistribution {
    Uniform,
    /// Key `i` (0-based) is drawn with probability proportional to `1 / (i + 1)^exponent`.
    Zipfian {
        exponent: f64,
    },
}

/// What a scenario's `[workload]` asks of the clients.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Workload {
    pub clients: u32,
    pub keys: u64,
    pub mix: OperationMix,
    pub distribution: KeyDistribution,
    /// Operations per simulated second, all clients together.
    pub rate: f64,
    pub op_timeout_us: u64,
}

/// A workload placed in a run: what the clients ask, and when they stop and read back.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WorkloadConfig {
    pub workload: Workload,
    /// Clients issue no new workload operation at or after this time.
    pub stop_at_us: u64,
    /// The read-back of every key starts at this time (after the faults have healed).
    pub read_back_at_us: u64,
}
