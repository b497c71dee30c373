//! What a scenario's `[[faults]]` entry asks for, validated but not yet resolved: its trigger,
//! its targets as selectors (a node id, a role such as the primary of a group, a set such as every
//! storage node), and its parameters. The engine resolves selectors into node ids when the fault
//! fires, since who plays a role changes as the run goes on.
//!
//! Plain data; no resolution, no randomness, no world.

use serde::Serialize;

use crate::vocabulary::{DiskMoveState, FaultKind, MigrationPhase, NodeId};
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
    /// The primary or a secondary of the source or target group of the fault's migration
    /// (`FaultSpec::migration`), as that migration's latest `migration_plan` names the groups.
    Migration { side: Side, member: Member },
}

/// One side of a migration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The group the partition moves from.
    Source,
    /// The group the partition moves to.
    Target,
}

/// A role within a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Member {
    Primary,
    /// A member other than the primary, drawn from the engine's generator.
    Secondary,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Source => "source",
            Side::Target => "target",
        }
    }
}

impl Member {
    pub fn name(self) -> &'static str {
        match self {
            Member::Primary => "primary",
            Member::Secondary => "secondary",
        }
    }
}

/// What the engine knows of a migration when it describes a selector: its name and, once it has
/// been planned, its source and target groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MigrationGroups<'name> {
    pub name: &'name str,
    pub source: Option<u32>,
    pub target: Option<u32>,
}

impl Selector {
    /// The selector names a scenario may write for `node`, besides a numeric id.
    pub const ROLE_NAMES: [&'static str; 8] = [
        "primary",
        "secondary",
        "master",
        "gateway",
        "source_primary",
        "source_secondary",
        "target_primary",
        "target_secondary",
    ];

    /// The role names that need a migration, with the selector each means.
    pub const MIGRATION_ROLES: [(&'static str, Selector); 4] = [
        ("source_primary", Selector::Migration { side: Side::Source, member: Member::Primary }),
        ("source_secondary", Selector::Migration { side: Side::Source, member: Member::Secondary }),
        ("target_primary", Selector::Migration { side: Side::Target, member: Member::Primary }),
        ("target_secondary", Selector::Migration { side: Side::Target, member: Member::Secondary }),
    ];

    /// The selector a migration role name (`source_primary`, ...) means.
    pub fn migration_role(name: &str) -> Option<Selector> {
        Selector::MIGRATION_ROLES.iter().find(|(role, _)| *role == name).map(|(_, selector)| *selector)
    }

    /// How the selector reads in traces and reports: `primary of group 2`, `node 3`, `primary of
    /// the source of move-7 (group 0)`. `migration` is what is known of the fault's migration;
    /// without it a migration role reads `primary of the source`.
    pub fn describe_in(&self, migration: Option<MigrationGroups<'_>>) -> String {
        match self {
            Selector::Node(node) => format!("node {node}"),
            Selector::Primary { group } => format!("primary of group {group}"),
            Selector::Secondary { group } => format!("secondary of group {group}"),
            Selector::Master => "master".to_string(),
            Selector::Gateway => "gateway".to_string(),
            Selector::Migration { side, member } => {
                let role = format!("{} of the {}", member.name(), side.name());
                let Some(migration) = migration else { return role };
                let group = match side {
                    Side::Source => migration.source,
                    Side::Target => migration.target,
                };
                match group {
                    Some(group) => format!("{role} of {} (group {group})", migration.name),
                    None => format!("{role} of {}", migration.name),
                }
            }
        }
    }

    /// `describe_in` without knowledge of any migration.
    pub fn describe(&self) -> String {
        self.describe_in(None)
    }

    /// Whether the selector names a role within a migration, and so needs the fault to name one.
    pub fn needs_migration(&self) -> bool {
        match self {
            Selector::Migration { .. } => true,
            Selector::Node(_)
            | Selector::Primary { .. }
            | Selector::Secondary { .. }
            | Selector::Master
            | Selector::Gateway => false,
        }
    }

    /// Whether one set may list the selector twice: a draw (a secondary, a gateway) may pick
    /// different nodes each time, while a fixed node or a primary is one node.
    pub fn may_repeat(&self) -> bool {
        match self {
            Selector::Secondary { .. } | Selector::Gateway => true,
            Selector::Migration { member, .. } => *member == Member::Secondary,
            Selector::Node(_) | Selector::Primary { .. } | Selector::Master => false,
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
        self.describe_in(None)
    }

    /// The set as it reads in traces, with what is known of the fault's migration.
    pub fn describe_in(&self, migration: Option<MigrationGroups<'_>>) -> String {
        match self {
            NodeSet::Listed(selectors) => {
                let names: Vec<String> = selectors.iter().map(|selector| selector.describe_in(migration)).collect();
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

    /// The selectors the set lists (none for a named set).
    pub fn selectors(&self) -> &[Selector] {
        match self {
            NodeSet::Listed(selectors) => selectors,
            NodeSet::All | NodeSet::Storage | NodeSet::Gateways => &[],
        }
    }
}

/// When a fault fires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// At a model time in the safety phase.
    At { at_us: u64 },
    /// `after_us` past the first `phase` event of `migration` whose `to` is `phase` (and whose
    /// attempt is `attempt`, when given; any attempt otherwise); for a disk move, its first
    /// `disk_move` event whose `to` is the state.
    Phase { migration: String, phase: TriggerPhase, attempt: Option<u32>, after_us: u64 },
}

/// What a phase trigger waits for: a migration's phase, or a disk move's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerPhase {
    Migration(MigrationPhase),
    Disk(DiskMoveState),
}

impl From<MigrationPhase> for TriggerPhase {
    fn from(phase: MigrationPhase) -> TriggerPhase {
        TriggerPhase::Migration(phase)
    }
}

impl std::fmt::Display for TriggerPhase {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TriggerPhase::Migration(phase) => write!(formatter, "{phase}"),
            TriggerPhase::Disk(state) => write!(formatter, "{state}"),
        }
    }
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
    /// The migration the fault is about: the one its phase trigger watches, or the one its
    /// `migration` field names. Its `source_*` and `target_*` selectors name this migration's
    /// groups.
    pub migration: Option<String>,
}

impl FaultSpec {
    /// How the entry names its targets, for the trace: `nodes = storage`, `node = primary of group 0`.
    pub fn selector(&self) -> String {
        self.selector_in(self.migration.as_deref().map(|name| MigrationGroups { name, source: None, target: None }))
    }

    /// `selector`, with what is known of the fault's migration when it fires: `nodes = primary of
    /// the source of move-7 (group 0)`.
    pub fn selector_in(&self, migration: Option<MigrationGroups<'_>>) -> String {
        let describe = |set: &NodeSet| set.describe_in(migration);
        match &self.action {
            FaultAction::Node { nodes } | FaultAction::Disk { nodes, .. } | FaultAction::Clock { nodes, .. } => {
                format!("nodes = {}", describe(nodes))
            }
            FaultAction::Partition { nodes, peers } => match peers {
                Some(peers) => format!("nodes = {}; peers = {}", describe(nodes), describe(peers)),
                None => format!("nodes = {}", describe(nodes)),
            },
            FaultAction::Links { nodes, peers, .. } => match (nodes, peers) {
                (None, _) => "every link".to_string(),
                (Some(nodes), None) => format!("nodes = {}", describe(nodes)),
                (Some(nodes), Some(peers)) => format!("nodes = {}; peers = {}", describe(nodes), describe(peers)),
            },
        }
    }

    /// Every node set the fault names.
    pub fn node_sets(&self) -> Vec<&NodeSet> {
        match &self.action {
            FaultAction::Node { nodes } | FaultAction::Disk { nodes, .. } | FaultAction::Clock { nodes, .. } => {
                vec![nodes]
            }
            FaultAction::Partition { nodes, peers } => std::iter::once(nodes).chain(peers).collect(),
            FaultAction::Links { nodes, peers, .. } => nodes.iter().chain(peers).collect(),
        }
    }

    /// Whether any of its selectors names a role within a migration.
    pub fn needs_migration(&self) -> bool {
        self.node_sets().iter().any(|set| set.selectors().iter().any(Selector::needs_migration))
    }
}
