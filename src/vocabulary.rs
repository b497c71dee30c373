//! The vocabulary every layer shares: node ids, fault names, system names and migration phases,
//! one snake_case name each, the same in scenario files, traces, reports and code.
//!
//! It sits below everything else (`world/`, `sut/`, `checker/`, `trace.rs` all import it) and so
//! imports nothing of migsim's own: it names things, it never does anything with them.

use serde::{Deserialize, Serialize};

/// A node's id: stable across crashes, restarts and replacement.
pub type NodeId = u32;

/// Defines a fieldless enum whose variants each have one snake_case name (serde uses it too), with
/// `ALL` in declaration order, `name`, `from_name`, `description` and `Display`.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        pub enum $type:ident {
            $( $(#[$variant_meta:meta])* $variant:ident = ($name:literal, $description:literal), )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $type {
            $( $(#[$variant_meta])* #[serde(rename = $name)] $variant, )*
        }

        impl $type {
            pub const ALL: &'static [$type] = &[$($type::$variant),*];

            pub fn name(self) -> &'static str {
                match self {
                    $($type::$variant => $name,)*
                }
            }

            pub fn from_name(name: &str) -> Option<$type> {
                $type::ALL.iter().copied().find(|value| value.name() == name)
            }

            /// One line for `migsim list` and for error messages.
            pub fn description(self) -> &'static str {
                match self {
                    $($type::$variant => $description,)*
                }
            }
        }

        impl std::fmt::Display for $type {
            fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str(self.name())
            }
        }
    };
}

named_enum! {
    /// Every fault migsim can inject, by name. The order here is the order `migsim list faults`
    /// prints.
    pub enum FaultKind {
        NodeCrash = ("node_crash", "kill a node: its tasks stop, unsynced disk writes are resolved by the crash model"),
        NodeRestart = ("node_restart", "start a crashed node again from what its disks hold (crashes it first if it is up)"),
        NodePause = ("node_pause", "stop-the-world stall of a node for `duration`; no messages or timers run on it"),
        PeerReplace = ("peer_replace", "swap a node's machine: kill, wipe every disk, incarnation + 1, restart with the same id"),
        NetPartition = ("net_partition", "drop every message between `nodes` and the rest (or between `nodes` and `peers`)"),
        NetLoss = ("net_loss", "drop each message on the chosen links with probability `rate`"),
        NetDelay = ("net_delay", "add `latency` (a range) to each message on the chosen links"),
        NetDuplicate = ("net_duplicate", "deliver each message on the chosen links twice with probability `rate`"),
        NetReorder = ("net_reorder", "stop keeping the chosen links FIFO: each message's latency is drawn on its own"),
        NetClog = ("net_clog", "hold every message from `nodes` to `peers` (one way) until the fault heals"),
        DiskLostFsync = ("disk_lost_fsync", "fsync on the chosen disks returns Ok but persists nothing, with probability `rate`"),
        DiskTornWrite = ("disk_torn_write", "at the next crash, the last unsynced write on the chosen disks tears at 512 bytes"),
        DiskCorruption = ("disk_corruption", "silently flip bytes in durable data of the chosen disks, with probability `rate` per read"),
        DiskFsyncError = ("disk_fsync_error", "the next fsync on the chosen disks fails: dirty data is dropped, the error reported once"),
        DiskFull = ("disk_full", "writes to the chosen disks fail with a distinct `disk full` error"),
        DiskSlow = ("disk_slow", "add `latency` (a range) to every operation on the chosen disks"),
        ClockSkew = ("clock_skew", "offset a node's clock by `skew` and let it drift by `drift_ppm`"),
    }
}

named_enum! {
    /// Which system runs on the world.
    pub enum SystemKind {
        /// The world-only system: every node pings every other node.
        Ping = ("ping", "every node pings every other node; the world's own exercise"),
        /// The replicated, sharded key-value store with its master, gateways and clients.
        Store = ("store", "the replicated, sharded key-value store with its config master, gateways and clients"),
    }
}

named_enum! {
    /// The phases of one migration attempt, in the order a successful one passes through them.
    pub enum MigrationPhase {
        Planned = ("planned", "the master recorded the migration durably; nothing moved yet"),
        Snapshot = ("snapshot", "the source streams a consistent snapshot of the partition to the target"),
        CatchUp = ("catch_up", "the source ships the partition's log after the snapshot; the target applies it"),
        Freeze = ("freeze", "gateways hold the partition's writes and the source fences it"),
        Drain = ("drain", "the target applies the source's log through the fence"),
        Commit = ("commit", "the handoff is logged: the target owns the partition"),
        Cleanup = ("cleanup", "the source deletes the partition's data; its forwarding stub waits for every gateway"),
        Done = ("done", "the migration finished"),
        Aborted = ("aborted", "the attempt (or the whole migration) gave up; the source keeps the partition"),
    }
}

named_enum! {
    /// Why a migration attempt was aborted. A migration that gives up reports its last attempt's
    /// reason; a scenario may expect a migration to end `aborted` with one of these.
    pub enum AbortReason {
        LagNotConverging = ("lag_not_converging", "catch-up did not bring the lag (and the drain it predicts) within bounds before the attempt's time ran out"),
        DrainOverBudget = ("drain_over_budget", "the target did not apply through the fence before the fence's lease expired"),
        SourceFailover = ("source_failover", "the source's primary changed during the attempt (fenced or not); its successor logged the attempt's end at once"),
        TargetLost = ("target_lost", "the target could not keep its copy (its group lost it, or refused the stream)"),
        AttemptTimeout = ("attempt_timeout", "the attempt did not commit within its time limit"),
        Cancelled = ("cancelled", "an operator cancelled the migration; moves not yet committed abort and never retry"),
        DiskError = ("disk_error", "a disk move's destination disk failed a write or an fsync (full, or an fsync error); the move reverted"),
        CopyCorrupt = ("copy_corrupt", "a disk move's copy, read back from the destination disk, differed from its source; the move reverted"),
        NodeRestart = ("node_restart", "the node restarted in the middle of a disk move; its boot reverted what had not switched"),
    }
}

named_enum! {
    /// The states of a disk move (Apache Pegasus's replica disk migration), in order; any failure
    /// before the switch goes back to `idle` with the old copy intact.
    pub enum DiskMoveState {
        Idle = ("idle", "no move: the replica runs from its disk"),
        Moving = ("moving", "the replica's files are copied to the destination disk, marked temporary, while it keeps serving"),
        Moved = ("moved", "the copy is complete, durable and verified against its source"),
        Closed = ("closed", "the replica is closed; the old copy is marked `.ori` and the new one switched into place"),
        Learn = ("learn", "the replica reopened from the destination disk and learns what it missed from its primary"),
        Completed = ("completed", "the replica is up to date on the new disk; the old copy is deleted"),
    }
}

named_enum! {
    /// Where a partition group stands in the cluster, as the master's `group_state` events tell.
    pub enum GroupStatus {
        Reserve = ("reserve", "the group's nodes are booted empty and held in reserve; the master runs no election for it"),
        Active = ("active", "the group is a member of the cluster: it may own partitions and is failed over by the master"),
        Draining = ("draining", "a scale-in moves the group's partitions away; planners move none to it"),
        Retired = ("retired", "the group was drained and removed from routing and membership; its replicas delete their data"),
    }
}

named_enum! {
    /// What a replica holds of one partition, as its `partition_state` events tell.
    pub enum PartitionStatus {
        Owned = ("owned", "the group owns the partition and serves it"),
        Fenced = ("fenced", "the group owns the partition, but its writes are fenced for a cut-over"),
        Incoming = ("incoming", "the group is receiving the partition's copy from a migration's source; it serves nothing"),
        Stub = ("stub", "the partition moved away; the group answers its requests with where it went"),
        Absent = ("absent", "the group holds nothing of the partition"),
    }
}

impl FaultKind {
    /// Faults that act on a whole node (its tasks), as opposed to its links, disks or clock.
    pub fn acts_on_node(self) -> bool {
        matches!(self, FaultKind::NodeCrash | FaultKind::NodeRestart | FaultKind::NodePause | FaultKind::PeerReplace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for &kind in FaultKind::ALL {
            assert_eq!(FaultKind::from_name(kind.name()), Some(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), serde_json::json!(kind.name()));
        }
        for &phase in MigrationPhase::ALL {
            assert_eq!(MigrationPhase::from_name(phase.name()), Some(phase));
        }
        assert_eq!(FaultKind::ALL.len(), 17);
    }
}
