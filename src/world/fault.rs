//! The fault vocabulary: one snake_case name per fault, the same in scenario files, traces, reports
//! and code. This module only names and describes faults; `world::sim` applies them. It must never
//! know about roles (`target_primary`): the run resolves role selectors before faults reach here.

use serde::{Deserialize, Serialize};

use super::NodeId;

/// Every fault migsim can inject, by name. The order here is the order `migsim list faults` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    NodeCrash,
    NodeRestart,
    NodePause,
    PeerReplace,
    NetPartition,
    NetLoss,
    NetDelay,
    NetDuplicate,
    NetReorder,
    NetClog,
    DiskLostFsync,
    DiskTornWrite,
    DiskCorruption,
    DiskFsyncError,
    DiskFull,
    DiskSlow,
    ClockSkew,
}

impl FaultKind {
    pub const ALL: [FaultKind; 17] = [
        FaultKind::NodeCrash,
        FaultKind::NodeRestart,
        FaultKind::NodePause,
        FaultKind::PeerReplace,
        FaultKind::NetPartition,
        FaultKind::NetLoss,
        FaultKind::NetDelay,
        FaultKind::NetDuplicate,
        FaultKind::NetReorder,
        FaultKind::NetClog,
        FaultKind::DiskLostFsync,
        FaultKind::DiskTornWrite,
        FaultKind::DiskCorruption,
        FaultKind::DiskFsyncError,
        FaultKind::DiskFull,
        FaultKind::DiskSlow,
        FaultKind::ClockSkew,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::NodeCrash => "node_crash",
            FaultKind::NodeRestart => "node_restart",
            FaultKind::NodePause => "node_pause",
            FaultKind::PeerReplace => "peer_replace",
            FaultKind::NetPartition => "net_partition",
            FaultKind::NetLoss => "net_loss",
            FaultKind::NetDelay => "net_delay",
            FaultKind::NetDuplicate => "net_duplicate",
            FaultKind::NetReorder => "net_reorder",
            FaultKind::NetClog => "net_clog",
            FaultKind::DiskLostFsync => "disk_lost_fsync",
            FaultKind::DiskTornWrite => "disk_torn_write",
            FaultKind::DiskCorruption => "disk_corruption",
            FaultKind::DiskFsyncError => "disk_fsync_error",
            FaultKind::DiskFull => "disk_full",
            FaultKind::DiskSlow => "disk_slow",
            FaultKind::ClockSkew => "clock_skew",
        }
    }

    pub fn from_name(name: &str) -> Option<FaultKind> {
        FaultKind::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// One line for `migsim list faults` and for error messages.
    pub fn description(self) -> &'static str {
        match self {
            FaultKind::NodeCrash => "kill a node: its tasks stop, unsynced disk writes are resolved by the crash model",
            FaultKind::NodeRestart => {
                "start a crashed node again from what its disks hold (crashes it first if it is up)"
            }
            FaultKind::NodePause => "stop-the-world stall of a node for `duration`; no messages or timers run on it",
            FaultKind::PeerReplace => {
                "swap a node's machine: kill, wipe every disk, incarnation + 1, restart with the same id"
            }
            FaultKind::NetPartition => {
                "drop every message between `nodes` and the rest (or between `nodes` and `peers`)"
            }
            FaultKind::NetLoss => "drop each message on the chosen links with probability `rate`",
            FaultKind::NetDelay => "add `latency` (a range) to each message on the chosen links",
            FaultKind::NetDuplicate => "deliver each message on the chosen links twice with probability `rate`",
            FaultKind::NetReorder => "stop keeping the chosen links FIFO: each message's latency is drawn on its own",
            FaultKind::NetClog => "hold every message from `nodes` to `peers` (one way) until the fault heals",
            FaultKind::DiskLostFsync => {
                "fsync on the chosen disks returns Ok but persists nothing, with probability `rate`"
            }
            FaultKind::DiskTornWrite => {
                "at the next crash, the last unsynced write on the chosen disks tears at 512 bytes"
            }
            FaultKind::DiskCorruption => {
                "silently flip bytes in durable data of the chosen disks, with probability `rate` per read"
            }
            FaultKind::DiskFsyncError => {
                "the next fsync on the chosen disks fails: dirty data is dropped, the error reported once"
            }
            FaultKind::DiskFull => "writes to the chosen disks fail with a distinct `disk full` error",
            FaultKind::DiskSlow => "add `latency` (a range) to every operation on the chosen disks",
            FaultKind::ClockSkew => "offset a node's clock by `skew` and let it drift by `drift_ppm`",
        }
    }
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A latency range in model microseconds, drawn uniformly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencyRange {
    pub min_us: u64,
    pub max_us: u64,
}

/// Which links a network fault touches: messages from a node in `from` to a node in `to`.
/// `both_ways` adds the reverse direction. An empty `from` or `to` means every node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkSet {
    pub from: Vec<NodeId>,
    pub to: Vec<NodeId>,
    pub both_ways: bool,
}

/// Which disks a disk fault touches: `disk = None` means every disk of `node`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskTarget {
    pub node: NodeId,
    pub disk: Option<u32>,
}

/// A fault with its resolved targets and parameters. Applying it is `Sim::inject`; faults with a
/// lasting effect are undone by `Sim::heal` (or all at once by `Sim::heal_all`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Fault {
    NodeCrash { node: NodeId },
    NodeRestart { node: NodeId },
    NodePause { node: NodeId, duration_us: u64 },
    PeerReplace { node: NodeId },
    NetPartition { side_a: Vec<NodeId>, side_b: Vec<NodeId> },
    NetLoss { links: LinkSet, rate: f64 },
    NetDelay { links: LinkSet, latency: LatencyRange },
    NetDuplicate { links: LinkSet, rate: f64 },
    NetReorder { links: LinkSet },
    NetClog { links: LinkSet },
    DiskLostFsync { target: DiskTarget, rate: f64 },
    DiskTornWrite { target: DiskTarget },
    DiskCorruption { target: DiskTarget, rate: f64 },
    DiskFsyncError { target: DiskTarget },
    DiskFull { target: DiskTarget },
    DiskSlow { target: DiskTarget, latency: LatencyRange },
    ClockSkew { node: NodeId, skew_us: i64, drift_ppm: i64 },
}

impl Fault {
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::NodeCrash { .. } => FaultKind::NodeCrash,
            Fault::NodeRestart { .. } => FaultKind::NodeRestart,
            Fault::NodePause { .. } => FaultKind::NodePause,
            Fault::PeerReplace { .. } => FaultKind::PeerReplace,
            Fault::NetPartition { .. } => FaultKind::NetPartition,
            Fault::NetLoss { .. } => FaultKind::NetLoss,
            Fault::NetDelay { .. } => FaultKind::NetDelay,
            Fault::NetDuplicate { .. } => FaultKind::NetDuplicate,
            Fault::NetReorder { .. } => FaultKind::NetReorder,
            Fault::NetClog { .. } => FaultKind::NetClog,
            Fault::DiskLostFsync { .. } => FaultKind::DiskLostFsync,
            Fault::DiskTornWrite { .. } => FaultKind::DiskTornWrite,
            Fault::DiskCorruption { .. } => FaultKind::DiskCorruption,
            Fault::DiskFsyncError { .. } => FaultKind::DiskFsyncError,
            Fault::DiskFull { .. } => FaultKind::DiskFull,
            Fault::DiskSlow { .. } => FaultKind::DiskSlow,
            Fault::ClockSkew { .. } => FaultKind::ClockSkew,
        }
    }
}
