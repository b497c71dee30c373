//! Online partition migration: moving a partition from a source group to a target group while
//! clients keep writing. `spec` is what a scenario asks for; the participants (the master's
//! coordinator, the source and target primaries' streams, the gateways' holds) follow.

pub mod coordinator;
pub mod holds;
pub mod messages;
pub mod source;
pub mod spec;
pub mod target;

pub use spec::{Expectation, MigrationId, MigrationSpec};
