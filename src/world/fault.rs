//! Faults with their resolved targets and parameters (`Fault`), as the world applies them. Their
//! names (`FaultKind`) live in `crate::vocabulary`, which every layer shares. This module must never
//! know about roles (`primary`, `target_primary`): the fault engine (`crate::nemesis`) resolves role
//! selectors to node ids when a fault fires, before the fault reaches the world.

use serde::{Deserialize, Serialize};

use super::disk::Shot;
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
/// lasting effect, and one-shot disk faults that have not fired, are undone by `Sim::heal` (or all
/// at once by `Sim::heal_all`).
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

/// What a fault does, sorted by the part of the world it acts on. `Fault::effect` is the one match
/// over every fault; each part of the world then matches only its own class, so no match needs
/// arms for faults it does not handle.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Effect<'a> {
    /// Acts on a node when injected; only a crash and a pause have anything to undo at heal.
    Node(NodeEffect),
    /// Changes links while it lasts; the network recomputes every link from the faults in force.
    Link { links: Links<'a>, change: LinkChange },
    /// Changes disks while it lasts, or arms a one-shot fault on them until it fires or is healed.
    Disk { target: DiskTarget, change: DiskChange },
    /// Sets a node's clock while it lasts; healing restores the node's baseline clock.
    Clock { node: NodeId, skew_us: i64, drift_ppm: i64 },
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum NodeEffect {
    Crash { node: NodeId },
    Restart { node: NodeId },
    Pause { node: NodeId, duration_us: u64 },
    Replace { node: NodeId },
}

/// The links a network fault touches.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Links<'a> {
    Set(&'a LinkSet),
    /// Both ways between the sides; an empty `side_b` is every node not in `side_a`.
    Partition {
        side_a: &'a [NodeId],
        side_b: &'a [NodeId],
    },
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum LinkChange {
    Block,
    Loss { rate: f64 },
    Delay { latency: LatencyRange },
    Duplicate { rate: f64 },
    Reorder,
    Clog,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum DiskChange {
    /// Lasting: the world composes every one in force on a disk (`disk_faults::LastingFaults`).
    LostFsync {
        rate: f64,
    },
    Corruption {
        rate: f64,
    },
    Full,
    Slow {
        latency: LatencyRange,
    },
    /// One-shot: armed on each target disk, in the name of its fault, until it fires once, a
    /// crash consumes it, or healing the fault disarms it.
    OneShot(Shot),
}

impl Fault {
    pub(crate) fn effect(&self) -> Effect<'_> {
        match self {
            Fault::NodeCrash { node } => Effect::Node(NodeEffect::Crash { node: *node }),
            Fault::NodeRestart { node } => Effect::Node(NodeEffect::Restart { node: *node }),
            Fault::NodePause { node, duration_us } => {
                Effect::Node(NodeEffect::Pause { node: *node, duration_us: *duration_us })
            }
            Fault::PeerReplace { node } => Effect::Node(NodeEffect::Replace { node: *node }),
            Fault::NetPartition { side_a, side_b } => {
                Effect::Link { links: Links::Partition { side_a, side_b }, change: LinkChange::Block }
            }
            Fault::NetLoss { links, rate } => {
                Effect::Link { links: Links::Set(links), change: LinkChange::Loss { rate: *rate } }
            }
            Fault::NetDelay { links, latency } => {
                Effect::Link { links: Links::Set(links), change: LinkChange::Delay { latency: *latency } }
            }
            Fault::NetDuplicate { links, rate } => {
                Effect::Link { links: Links::Set(links), change: LinkChange::Duplicate { rate: *rate } }
            }
            Fault::NetReorder { links } => Effect::Link { links: Links::Set(links), change: LinkChange::Reorder },
            Fault::NetClog { links } => Effect::Link { links: Links::Set(links), change: LinkChange::Clog },
            Fault::DiskLostFsync { target, rate } => {
                Effect::Disk { target: *target, change: DiskChange::LostFsync { rate: *rate } }
            }
            Fault::DiskTornWrite { target } => {
                Effect::Disk { target: *target, change: DiskChange::OneShot(Shot::TornWrite) }
            }
            Fault::DiskCorruption { target, rate } => {
                Effect::Disk { target: *target, change: DiskChange::Corruption { rate: *rate } }
            }
            Fault::DiskFsyncError { target } => {
                Effect::Disk { target: *target, change: DiskChange::OneShot(Shot::FsyncError) }
            }
            Fault::DiskFull { target } => Effect::Disk { target: *target, change: DiskChange::Full },
            Fault::DiskSlow { target, latency } => {
                Effect::Disk { target: *target, change: DiskChange::Slow { latency: *latency } }
            }
            Fault::ClockSkew { node, skew_us, drift_ppm } => {
                Effect::Clock { node: *node, skew_us: *skew_us, drift_ppm: *drift_ppm }
            }
        }
    }
}
