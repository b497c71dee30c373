//! Who plays which role, as the fault engine knows it: the system's fixed cast (which nodes are
//! storage, master, gateways, clients), and the roles that change as the run goes on (each
//! group's primary and members, each migration's source and target groups), learned from typed
//! trace events (`view`, `migration_plan`), never from a node's memory.
//!
//! Only what the trace has told so far is known: a group whose first election has not been
//! recorded has no primary here, and a migration the master has not planned has no groups.

use std::collections::BTreeMap;

use crate::trace::{Event, EventKind};
use crate::vocabulary::NodeId;

/// The fixed roles of a run's nodes, from the system wiring.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cast {
    pub node_count: u32,
    pub storage: Vec<NodeId>,
    pub master: Option<NodeId>,
    pub gateways: Vec<NodeId>,
    /// Nodes that observe the system rather than belong to it (the store's clients node): node
    /// faults never act on them, since the history they keep lives in their memory.
    pub observers: Vec<NodeId>,
}

impl Cast {
    /// Every node a node fault may act on.
    pub fn faultable(&self) -> Vec<NodeId> {
        (0..self.node_count).filter(|node| !self.observers.contains(node)).collect()
    }
}

/// A group as the latest `view` event described it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupView {
    pub epoch: u64,
    pub primary: NodeId,
    pub members: Vec<NodeId>,
}

/// A migration as its latest `migration_plan` event described it: the partition being moved now,
/// from which group to which.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationView {
    pub partition: u32,
    pub source: u32,
    pub target: u32,
}

/// The roles that change during a run.
#[derive(Clone, Debug, Default)]
pub struct Roles {
    groups: BTreeMap<u32, GroupView>,
    /// By migration name.
    migrations: BTreeMap<String, MigrationView>,
}

impl Roles {
    /// Learns from one event; events that say nothing about roles are ignored.
    pub fn observe(&mut self, event: &Event) {
        if let EventKind::View { group, epoch, primary, members, .. } = &event.kind {
            let newer = self.groups.get(group).is_none_or(|known| *epoch > known.epoch);
            if newer {
                self.groups.insert(*group, GroupView { epoch: *epoch, primary: *primary, members: members.clone() });
            }
        }
        // A migration of several partitions moves them one after another, each planned by its
        // own event, so the latest plan names the partition moving now. The master records its
        // plans in the order it makes them, so the latest recorded is the latest made.
        if let EventKind::MigrationPlan { migration, partition, source, target, .. } = &event.kind {
            let view = MigrationView { partition: *partition, source: *source, target: *target };
            self.migrations.insert(migration.clone(), view);
        }
    }

    pub fn group(&self, group: u32) -> Option<&GroupView> {
        self.groups.get(&group)
    }

    /// The groups of migration `name`, once the master has planned it.
    pub fn migration(&self, name: &str) -> Option<&MigrationView> {
        self.migrations.get(name)
    }

    /// Whether an event is one `observe` learns from.
    pub fn watches(kind: &EventKind) -> bool {
        matches!(kind, EventKind::View { .. } | EventKind::MigrationPlan { .. })
    }
}
