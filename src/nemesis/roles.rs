//! Who plays which role, as the fault engine knows it: the system's fixed cast (which nodes are
//! storage, master, gateways, clients), and the roles that change as the run goes on (each
//! group's primary and members), learned from typed trace events, never from a node's memory.
//!
//! Only what the trace has told so far is known: a group whose first election has not been
//! recorded has no primary here.

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

/// The roles that change during a run.
#[derive(Clone, Debug, Default)]
pub struct Roles {
    groups: BTreeMap<u32, GroupView>,
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
    }

    pub fn group(&self, group: u32) -> Option<&GroupView> {
        self.groups.get(&group)
    }

    /// Whether an event is one `observe` learns from: what the engine subscribes to.
    pub fn watches(kind: &EventKind) -> bool {
        matches!(kind, EventKind::View { .. })
    }
}
