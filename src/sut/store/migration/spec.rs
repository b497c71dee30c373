//! What one migration is asked to do, resolved from a scenario's `[[migrations]]` entry: which
//! partitions move where, when, and within which bounds. Plain data; no behaviour.

use serde::Serialize;

use crate::sut::store::{GroupId, PartitionId};
use crate::vocabulary::AbortReason;

/// A migration's id: its index among the scenario's `[[migrations]]`.
pub type MigrationId = u32;

/// How a scenario expects a migration to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expectation {
    Done,
    /// Aborted for good (after its attempts), with this reason.
    Aborted(AbortReason),
}

/// One migration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MigrationSpec {
    pub id: MigrationId,
    pub name: String,
    /// When the master plans it, by the master's clock.
    pub at_us: u64,
    /// Moved one after another, each with its own attempts.
    pub partitions: Vec<PartitionId>,
    /// The target group (a group created for the migration is already resolved to its id).
    pub to: GroupId,
    /// No write may pause longer than this because of the migration, and no attempt's pause
    /// window may last longer.
    pub pause_budget_us: u64,
    /// Cut-over starts only when the target lags the source by at most this many of the
    /// partition's log entries (and the drain this predicts fits the budget).
    pub lag_threshold: u64,
    /// Attempts per partition before the migration gives up.
    pub max_attempts: u32,
    /// How long one attempt may take from its start to its commit before the master aborts it.
    pub attempt_timeout_us: u64,
    pub expect: Expectation,
}
