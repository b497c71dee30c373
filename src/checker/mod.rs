//! Checkers: pure functions over histories and traces.

pub mod linearizability;
