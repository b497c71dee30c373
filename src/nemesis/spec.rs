//! What a scenario's `[[faults]]` entry asks for, validated but not yet resolved: its trigger,
//! its targets as selectors (a node id, a role such as the primary of a group, a set such as every
//! storage node), and its parameters. The engine resolves selectors into node ids when the fault
//! fires, since who plays a role changes as the run goes on.
//!
//! Plain data; no resolution, no randomness, no world.

use serde::Serialize;

use crate::vocabulary::{FaultKind, NodeId};
use crate::world::fault::LatencyRange;

/// One node, as a fault names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Selector {
    /// A fixed node id.
    Node(NodeId),
    /// Whichever node leads `group` when the fault fires (the store's `primary`).
    Primary { group: u32 },
    /// One of `group`'s other members when the fault fires, drawn from the engine's generator.
    Secondary { group: u32 },
    /// The config master.
    Master,
    /// One gateway, drawn from the engine's generator.
    Gateway,
}

impl Selector {
    /// The selector names a scenario may write for `node`, besides a numeric id.
    pub const ROLE_NAMES: [&'static str; 4] = ["primary", "secondary", "master", "gateway"];

    /// How the selector reads in traces and reports: `primary of group 2`, `node 3`.
    pub fn describe(&self) -> String {
        match self {
            Selector::Node(node) => format!("node {node}"),
            Selector::Primary { group } => format!("primary of group {group}"),
            Selector::Secondary { group } => format!("secondary of group {group}"),
            Selector::Master => "master".to_string(),
            Selector::Gateway => "gateway".to_string(),
        }
    }

    /// Whether the selector names a role (resolved when the fault fires) rather than an id.
    pub fn is_role(&self) -> bool {
        !matches!(self, Selector::Node(_))
    }
}

/// A set of nodes, as a fault names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeSet {
    /// Each listed node (ids and roles may mix); one entry listing several is one fault on each.
    Listed(Vec<Selector>),
    /// Every node the fault may act on (node faults never act on the clients node).
    All,
    /// Every storage node.
    Storage,
    /// Every gateway.
    Gateways,
}

impl NodeSet {
    /// The set names a scenario may write for `nodes` instead of a list.
    pub const SET_NAMES: [&'static str; 3] = ["all", "storage", "gateways"];

    pub fn describe(&self) -> String {
        match self {
            NodeSet::Listed(selectors) => {
                let names: Vec<String> = selectors.iter().map(Selector::describe).collect();
                names.join(", ")
            }
            NodeSet::All => "all".to_string(),
            NodeSet::Storage => "storage".to_string(),
            NodeSet::Gateways => "gateways".to_string(),
        }
    }

    /// Whether resolving the set depends on the run's state (a role, or a draw).
    pub fn has_roles(&self) -> bool {
        match self {
            NodeSet::Listed(selectors) => selectors.iter().any(Selector::is_role),
            NodeSet::All | NodeSet::Storage | NodeSet::Gateways => false,
        }
    }
}

/// When a fault fires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// At a model time in the safety phase.
    At { at_us: u64 },
}

/// What a fault does to its targets, by the class of thing it acts on.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultAction {
    /// `node_crash`, `node_restart`, `node_pause`, `peer_replace`: each node of the set.
    Node { nodes: NodeSet },
    /// `net_partition`: `nodes` against `peers` (or against every other node).
    Partition { nodes: NodeSet, peers: Option<NodeSet> },
    /// `net_loss`, `net_delay`, `net_duplicate`, `net_reorder`, `net_clog`: the links from `nodes`
    /// to `peers` (and back when `both_ways`); no `nodes` means every link.
    Links { nodes: Option<NodeSet>, peers: Option<NodeSet>, both_ways: bool, rate: f64, latency: Option<LatencyRange> },
    /// Disk faults: disk `disk` (or every disk) of each node of the set.
    Disk { nodes: NodeSet, disk: Option<u32>, rate: f64, latency: Option<LatencyRange> },
    /// `clock_skew`: each node of the set.
    Clock { nodes: NodeSet, skew_us: i64, drift_ppm: i64 },
}

/// One validated `[[faults]]` entry.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FaultSpec {
    /// Its index among the scenario's `[[faults]]` entries.
    pub entry: u32,
    /// The line of its `fault = ...`, for reports.
    pub line: usize,
    pub kind: FaultKind,
    pub trigger: Trigger,
    /// Healed this long after it fires; `None`: at the end of the safety phase.
    pub duration_us: Option<u64>,
    pub action: FaultAction,
}

impl FaultSpec {
    /// How the entry names its targets, for the trace: `nodes = storage`, `node = primary of group 0`.
    pub fn selector(&self) -> String {
        match &self.action {
            FaultAction::Node { nodes } | FaultAction::Disk { nodes, .. } | FaultAction::Clock { nodes, .. } => {
                format!("nodes = {}", nodes.describe())
            }
            FaultAction::Partition { nodes, peers } => match peers {
                Some(peers) => format!("nodes = {}; peers = {}", nodes.describe(), peers.describe()),
                None => format!("nodes = {}", nodes.describe()),
            },
            FaultAction::Links { nodes, peers, .. } => match (nodes, peers) {
                (None, _) => "every link".to_string(),
                (Some(nodes), None) => format!("nodes = {}", nodes.describe()),
                (Some(nodes), Some(peers)) => format!("nodes = {}; peers = {}", nodes.describe(), peers.describe()),
            },
        }
    }
}
