//! Checkers: pure functions over a run's history and trace that return named violations. They
//! only watch; they never drive the simulation, and never read the world's state directly.

pub mod linearizability;
mod ping_liveness;

pub use ping_liveness::ping_liveness;
