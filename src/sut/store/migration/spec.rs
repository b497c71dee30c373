//! What one migration is asked to do, resolved from a scenario's `[[migrations]]` entry: which
//! partitions move where, when, and within which bounds. Plain data; no behaviour.

use serde::Serialize;

use crate::sut::store::{GroupId, PartitionId};
use crate::vocabulary::{AbortReason, NodeId};

/// A migration's id: its index among the scenario's `[[migrations]]`.
pub type MigrationId = u32;

/// How a scenario expects a migration to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expectation {
    Done,
    /// Done, or aborted by its operator's cancellation (`cancel_at`): which depends on the
    /// moment the cancellation meets each move.
    DoneOrCancelled,
    /// Aborted for good (after its attempts), with this reason.
    Aborted(AbortReason),
}

/// What kind of cluster operation a migration is: which partitions it moves where, decided when
/// the master plans it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationKind {
    /// Move `partitions` to `to`.
    Move,
    /// Bring the reserve group `to` into the cluster when the operation starts, then move
    /// `partitions` to it (none listed: the planner picks, from the most loaded groups, until
    /// `to` holds its even share).
    ScaleOut,
    /// Move every partition `group` owns when the operation starts to the groups `to` lists (empty:
    /// every other active group), least loaded first; then retire `group`.
    ScaleIn { group: GroupId, to: Vec<GroupId> },
    /// Even out partition counts over the active groups: the planner moves partitions from the
    /// most loaded groups to the least loaded until counts differ by at most one.
    Rebalance,
    /// Move storage node `node`'s replica of `group` to its disk `to_disk` (Apache Pegasus's
    /// replica disk migration); no partition changes group.
    DiskMove { node: NodeId, group: GroupId, to_disk: u32 },
}

impl OperationKind {
    pub fn name(&self) -> &'static str {
        match self {
            OperationKind::Move => "move",
            OperationKind::ScaleOut => "scale_out",
            OperationKind::ScaleIn { .. } => "scale_in",
            OperationKind::Rebalance => "rebalance",
            OperationKind::DiskMove { .. } => "disk_move",
        }
    }

    /// Whether the master's planner picks the partitions (they are unknown before the run).
    pub fn planned_by_master(&self, partitions: &[PartitionId]) -> bool {
        match self {
            OperationKind::Move | OperationKind::DiskMove { .. } => false,
            OperationKind::ScaleOut => partitions.is_empty(),
            OperationKind::ScaleIn { .. } | OperationKind::Rebalance => true,
        }
    }
}

/// One migration: a cluster operation of one or more partition moves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MigrationSpec {
    pub id: MigrationId,
    pub name: String,
    pub kind: OperationKind,
    /// When the master plans it, by the master's clock.
    pub at_us: u64,
    /// The partitions it moves, when the scenario lists them (`move`, `scale_out`); each move has
    /// its own attempts. Empty when the master's planner picks them.
    pub partitions: Vec<PartitionId>,
    /// The target group of `move` and `scale_out` (a group created for the migration is already
    /// resolved to its id); unused by `scale_in` and `rebalance`, whose planner picks targets.
    pub to: GroupId,
    /// At most this many of its moves run at once.
    pub max_concurrent: u32,
    /// An operator cancels the migration at this time (by the master's clock): running moves
    /// abort (`cancelled`), moves not yet started never start, moves already committed stay.
    pub cancel_at_us: Option<u64>,
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

impl MigrationSpec {
    /// A single move of `partitions` to `to`, one at a time, with the defaults a scenario gets.
    pub fn moving(id: MigrationId, name: &str, at_us: u64, partitions: Vec<PartitionId>, to: GroupId) -> MigrationSpec {
        MigrationSpec {
            id,
            name: name.to_owned(),
            kind: OperationKind::Move,
            at_us,
            partitions,
            to,
            max_concurrent: 1,
            cancel_at_us: None,
            pause_budget_us: 50_000,
            lag_threshold: 64,
            max_attempts: 3,
            attempt_timeout_us: 2_000_000,
            expect: Expectation::Done,
        }
    }
}
