//! Faults with their resolved targets and parameters (`Fault`), as the world applies them. Their
//! names (`FaultKind`) live in `crate::vocabulary`, which every layer shares. This module must never
//! know about roles (`primary`, `target_primary`): the fault engine (`crate::nemesis`) resolves role
//! selectors to node ids when a fault fires, before the fault reaches the world.

use serde::{Deserialize, Serialize};

pub use crate::vocabulary::FaultKind;
use crate::vocabulary::NodeId;

/// A latency range in model microseconds, drawn uniformly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencyRange {
    pub min_us: u64,
    pub max_us: u64,
}

/// Identifies one injected fault, to heal it alone.
pub type FaultId = u32;

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
