//! Online partition migration: moving a partition from a source group to a target group while
//! clients keep writing. `spec` is what a scenario asks for; the participants (the master's
//! coordinator, the source and target primaries' streams, the gateways' holds) follow; `design`
//! holds the choices they share (where writes are held, the commit point, the lag judgement).

pub mod coordinator;
pub mod design;
pub mod disk_move;
pub mod holds;
pub mod messages;
pub mod source;
pub mod spec;
pub mod target;

pub use spec::{Expectation, MigrationId, MigrationSpec};
