//! The fault engine (the "nemesis", after Jepsen's): it runs inside the simulation, fires the
//! scenario's faults when their triggers say, resolves each fault's targets when it fires (the
//! primary of a group is whoever leads it at that moment, as the trace's `view` events tell), and
//! heals them on schedule.
//!
//! `spec` is what a scenario asks for, `roles` what the engine knows of who plays which role,
//! `engine` the sans-I/O core; the runner's safety phase is its driver. It never reads a node's
//! memory: everything it knows of the system comes from typed trace events and the fixed cast.

mod engine;
mod roles;
pub mod spec;

pub use engine::{Nemesis, Step};
pub use roles::{Cast, GroupView, MigrationView, Roles};
pub use spec::{FaultAction, FaultSpec, Member, MigrationGroups, NodeSet, Selector, Side, Trigger, TriggerPhase};
