//! The fault engine's core: it holds the scenario's faults, learns roles from the events it is
//! shown, and says which faults fire or heal when. It does no I/O: the driver (the runner's
//! safety phase) feeds it events and time and applies the steps it returns to the world.
//!
//! A fault's targets are resolved when it fires, from what the trace has told so far; a target
//! that names nobody at that moment (a group with no primary yet) makes the fault a `Skip`, which
//! the trace records, never a silent no-op. Draws (which secondary, which gateway) come from the
//! engine's own generator, so they never shift another component's stream.

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::roles::{Cast, Roles};
use super::spec::{FaultAction, FaultSpec, NodeSet, Selector, Trigger};
use crate::trace::Event;
use crate::vocabulary::{FaultKind, NodeId};
use crate::world::fault::{DiskTarget, Fault, LinkSet};

/// What the driver must do now.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Apply these world faults for entry `entry`, recording `selector` with each.
    Inject { entry: u32, faults: Vec<Fault>, selector: String },
    /// Entry `entry` fired but names no node now.
    Skip { entry: u32, kind: FaultKind, selector: String, reason: String },
    /// Heal every world fault entry `entry` injected.
    Heal { entry: u32 },
}

/// What is scheduled, in the order ties are broken at one instant: injections before heals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Pending {
    Fire,
    Heal,
}

pub struct Nemesis {
    specs: Vec<FaultSpec>,
    cast: Cast,
    roles: Roles,
    rng: ChaCha8Rng,
    /// (due, what, entry), in firing order.
    schedule: BTreeSet<(u64, Pending, u32)>,
    /// Entries that fired and were not skipped, with when.
    fired: BTreeMap<u32, u64>,
}

impl Nemesis {
    pub fn new(specs: Vec<FaultSpec>, cast: Cast, rng: ChaCha8Rng) -> Nemesis {
        let mut schedule = BTreeSet::new();
        for (index, spec) in specs.iter().enumerate() {
            assert_eq!(spec.entry as usize, index, "nemesis_entries_dense: fault entries are numbered in order");
            match spec.trigger {
                Trigger::At { at_us } => {
                    schedule.insert((at_us, Pending::Fire, spec.entry));
                }
            }
        }
        Nemesis { specs, cast, roles: Roles::default(), rng, schedule, fired: BTreeMap::new() }
    }

    /// Whether the engine wants to see events of this kind (subscribe with it).
    pub fn watches(kind: &crate::trace::EventKind) -> bool {
        Roles::watches(kind)
    }

    pub fn observe(&mut self, event: &Event) {
        self.roles.observe(event);
    }

    /// When the next step is due, if anything is scheduled.
    pub fn next_due_us(&self) -> Option<u64> {
        self.schedule.first().map(|(at, _, _)| *at)
    }

    /// Entries that fired (and were applied), with the time they fired.
    pub fn fired(&self) -> &BTreeMap<u32, u64> {
        &self.fired
    }

    /// Every step due at or before `now_us`, in order.
    pub fn due(&mut self, now_us: u64) -> Vec<Step> {
        let mut steps = Vec::new();
        while let Some(&(at, pending, entry)) = self.schedule.first() {
            if at > now_us {
                break;
            }
            self.schedule.pop_first();
            match pending {
                Pending::Fire => steps.push(self.fire(entry, now_us)),
                Pending::Heal => steps.push(Step::Heal { entry }),
            }
        }
        steps
    }

    fn fire(&mut self, entry: u32, now_us: u64) -> Step {
        let spec = self.specs[entry as usize].clone();
        let selector = spec.selector();
        match self.resolve(&spec) {
            Ok(faults) => {
                assert!(!faults.is_empty(), "nemesis_resolves_to_faults: entry {entry} resolved to nothing");
                self.fired.insert(entry, now_us);
                if let Some(duration) = spec.duration_us {
                    self.schedule.insert((now_us.saturating_add(duration), Pending::Heal, entry));
                }
                Step::Inject { entry, faults, selector }
            }
            Err(reason) => Step::Skip { entry, kind: spec.kind, selector, reason },
        }
    }

    /// The world faults a spec means now.
    fn resolve(&mut self, spec: &FaultSpec) -> Result<Vec<Fault>, String> {
        let per_node = |nodes: Vec<NodeId>, make: &dyn Fn(NodeId) -> Fault| nodes.into_iter().map(make).collect();
        match &spec.action {
            FaultAction::Node { nodes } => {
                let nodes = self.nodes(nodes, true)?;
                let duration_us = spec.duration_us.unwrap_or(0);
                Ok(per_node(nodes, &|node| match spec.kind {
                    FaultKind::NodeCrash => Fault::NodeCrash { node },
                    FaultKind::NodeRestart => Fault::NodeRestart { node },
                    FaultKind::NodePause => Fault::NodePause { node, duration_us },
                    FaultKind::PeerReplace => Fault::PeerReplace { node },
                    other => unreachable!("nemesis: {other} is not a node fault"),
                }))
            }
            FaultAction::Partition { nodes, peers } => {
                let side_a = self.nodes(nodes, false)?;
                let side_b = match peers {
                    Some(peers) => self.nodes(peers, false)?,
                    None => (0..self.cast.node_count).filter(|node| !side_a.contains(node)).collect(),
                };
                if let Some(shared) = side_b.iter().find(|node| side_a.contains(node)) {
                    return Err(format!("node {shared} is on both sides of the partition"));
                }
                if side_b.is_empty() {
                    return Err("no node is left on the other side of the partition".to_string());
                }
                Ok(vec![Fault::NetPartition { side_a, side_b }])
            }
            FaultAction::Links { nodes, peers, both_ways, rate, latency } => {
                let (from, to) = match nodes {
                    None => (Vec::new(), Vec::new()),
                    Some(nodes) => {
                        let from = self.nodes(nodes, false)?;
                        let to = match peers {
                            Some(peers) => self.nodes(peers, false)?,
                            None => (0..self.cast.node_count).filter(|node| !from.contains(node)).collect(),
                        };
                        if let Some(shared) = to.iter().find(|node| from.contains(node)) {
                            return Err(format!("node {shared} is in both `nodes` and `peers`"));
                        }
                        if to.is_empty() {
                            return Err("no node is left on the other end of the links".to_string());
                        }
                        (from, to)
                    }
                };
                let links = LinkSet { from, to, both_ways: *both_ways };
                let latency = || latency.expect("validation gives net_delay its latency");
                Ok(vec![match spec.kind {
                    FaultKind::NetLoss => Fault::NetLoss { links, rate: *rate },
                    FaultKind::NetDelay => Fault::NetDelay { links, latency: latency() },
                    FaultKind::NetDuplicate => Fault::NetDuplicate { links, rate: *rate },
                    FaultKind::NetReorder => Fault::NetReorder { links },
                    FaultKind::NetClog => Fault::NetClog { links },
                    other => unreachable!("nemesis: {other} is not a link fault"),
                }])
            }
            FaultAction::Disk { nodes, disk, rate, latency } => {
                let nodes = self.nodes(nodes, true)?;
                Ok(per_node(nodes, &|node| {
                    let target = DiskTarget { node, disk: *disk };
                    match spec.kind {
                        FaultKind::DiskLostFsync => Fault::DiskLostFsync { target, rate: *rate },
                        FaultKind::DiskTornWrite => Fault::DiskTornWrite { target },
                        FaultKind::DiskCorruption => Fault::DiskCorruption { target, rate: *rate },
                        FaultKind::DiskFsyncError => Fault::DiskFsyncError { target },
                        FaultKind::DiskFull => Fault::DiskFull { target },
                        FaultKind::DiskSlow => Fault::DiskSlow {
                            target,
                            latency: latency.expect("validation gives disk_slow its latency"),
                        },
                        other => unreachable!("nemesis: {other} is not a disk fault"),
                    }
                }))
            }
            FaultAction::Clock { nodes, skew_us, drift_ppm } => {
                let nodes = self.nodes(nodes, true)?;
                Ok(per_node(nodes, &|node| Fault::ClockSkew { node, skew_us: *skew_us, drift_ppm: *drift_ppm }))
            }
        }
    }

    /// The nodes a set means now, without duplicates, in the order named. `on_nodes`: the fault
    /// acts on the nodes themselves (not their links), so observers are left out of `all`.
    fn nodes(&mut self, set: &NodeSet, on_nodes: bool) -> Result<Vec<NodeId>, String> {
        let nodes = match set {
            NodeSet::All if on_nodes => self.cast.faultable(),
            NodeSet::All => (0..self.cast.node_count).collect(),
            NodeSet::Storage => self.cast.storage.clone(),
            NodeSet::Gateways => self.cast.gateways.clone(),
            NodeSet::Listed(selectors) => {
                let mut nodes = Vec::new();
                for selector in selectors {
                    let node = self.node(selector)?;
                    if !nodes.contains(&node) {
                        nodes.push(node);
                    }
                }
                nodes
            }
        };
        if nodes.is_empty() {
            return Err(format!("`{}` names no node in this system", set.describe()));
        }
        Ok(nodes)
    }

    fn node(&mut self, selector: &Selector) -> Result<NodeId, String> {
        match selector {
            Selector::Node(node) => Ok(*node),
            Selector::Primary { group } => match self.roles.group(*group) {
                Some(view) => Ok(view.primary),
                None => Err(format!("group {group} has had no primary yet")),
            },
            Selector::Secondary { group } => {
                let view = self.roles.group(*group).ok_or_else(|| format!("group {group} has had no primary yet"))?;
                let secondaries: Vec<NodeId> =
                    view.members.iter().copied().filter(|&member| member != view.primary).collect();
                if secondaries.is_empty() {
                    return Err(format!("group {group} has no member besides its primary"));
                }
                Ok(secondaries[self.rng.gen_range(0..secondaries.len())])
            }
            Selector::Master => self.cast.master.ok_or_else(|| "this system has no master".to_string()),
            Selector::Gateway => {
                if self.cast.gateways.is_empty() {
                    return Err("this system has no gateway".to_string());
                }
                Ok(self.cast.gateways[self.rng.gen_range(0..self.cast.gateways.len())])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::trace::EventKind;

    fn cast() -> Cast {
        Cast { node_count: 9, storage: (0..5).collect(), master: Some(5), gateways: vec![6, 7], observers: vec![8] }
    }

    fn spec(entry: u32, kind: FaultKind, at_us: u64, duration_us: Option<u64>, action: FaultAction) -> FaultSpec {
        FaultSpec { entry, line: 1, kind, trigger: Trigger::At { at_us }, duration_us, action }
    }

    fn view(group: u32, epoch: u64, primary: NodeId, members: Vec<NodeId>) -> Event {
        let kind = EventKind::View { group, epoch, primary, session: 1, members };
        Event { seq: 0, at_us: 0, node: Some(5), incarnation: 0, kind, summary: String::new() }
    }

    fn engine(specs: Vec<FaultSpec>) -> Nemesis {
        Nemesis::new(specs, cast(), ChaCha8Rng::seed_from_u64(7))
    }

    #[test]
    fn a_primary_selector_hits_whoever_leads_when_the_fault_fires() {
        let primary = NodeSet::Listed(vec![Selector::Primary { group: 1 }]);
        let mut nemesis = engine(vec![
            spec(0, FaultKind::NodeCrash, 100, Some(50), FaultAction::Node { nodes: primary.clone() }),
            spec(1, FaultKind::NodeCrash, 200, None, FaultAction::Node { nodes: primary }),
        ]);
        assert_eq!(nemesis.next_due_us(), Some(100));
        nemesis.observe(&view(1, 1, 1, vec![1, 2, 3]));
        assert_eq!(
            nemesis.due(100),
            vec![Step::Inject {
                entry: 0,
                faults: vec![Fault::NodeCrash { node: 1 }],
                selector: "nodes = primary of group 1".into()
            }]
        );
        assert_eq!(nemesis.next_due_us(), Some(150), "the heal is scheduled when the fault fires");
        // A newer view moves the role; an older one arriving late does not move it back.
        nemesis.observe(&view(1, 2, 3, vec![1, 2, 3]));
        nemesis.observe(&view(1, 1, 1, vec![1, 2, 3]));
        let steps = nemesis.due(200);
        assert_eq!(steps[0], Step::Heal { entry: 0 });
        assert!(matches!(&steps[1], Step::Inject { faults, .. } if faults == &vec![Fault::NodeCrash { node: 3 }]));
        assert_eq!(nemesis.next_due_us(), None);
    }

    #[test]
    fn a_role_nobody_plays_yet_skips_the_fault() {
        let mut nemesis = engine(vec![spec(
            0,
            FaultKind::NodePause,
            10,
            Some(5),
            FaultAction::Node { nodes: NodeSet::Listed(vec![Selector::Secondary { group: 0 }]) },
        )]);
        let steps = nemesis.due(10);
        assert!(
            matches!(&steps[..], [Step::Skip { entry: 0, reason, .. }] if reason == "group 0 has had no primary yet"),
            "{steps:?}"
        );
        assert_eq!(nemesis.next_due_us(), None, "a skipped fault schedules no heal");
        assert!(nemesis.fired().is_empty());
    }

    #[test]
    fn secondaries_are_the_members_other_than_the_primary() {
        let mut chosen = std::collections::BTreeSet::new();
        for seed in 0..32 {
            let mut nemesis = Nemesis::new(
                vec![spec(
                    0,
                    FaultKind::NodeCrash,
                    1,
                    None,
                    FaultAction::Node { nodes: NodeSet::Listed(vec![Selector::Secondary { group: 0 }]) },
                )],
                cast(),
                ChaCha8Rng::seed_from_u64(seed),
            );
            nemesis.observe(&view(0, 4, 2, vec![0, 1, 2]));
            let Step::Inject { faults, .. } = &nemesis.due(1)[0] else { panic!("not injected") };
            let [Fault::NodeCrash { node }] = faults[..] else { panic!("{faults:?}") };
            chosen.insert(node);
        }
        assert_eq!(chosen, [0, 1].into_iter().collect(), "every secondary is drawn, the primary never");
    }

    #[test]
    fn node_sets_expand_to_one_fault_per_node_and_all_spares_the_observers() {
        let mut nemesis = engine(vec![
            spec(0, FaultKind::NodeRestart, 1, None, FaultAction::Node { nodes: NodeSet::Storage }),
            spec(1, FaultKind::NodeCrash, 2, None, FaultAction::Node { nodes: NodeSet::All }),
            spec(2, FaultKind::NetPartition, 3, None, FaultAction::Partition { nodes: NodeSet::Gateways, peers: None }),
        ]);
        let steps = nemesis.due(3);
        let Step::Inject { faults, .. } = &steps[0] else { panic!("{steps:?}") };
        assert_eq!(faults, &(0..5).map(|node| Fault::NodeRestart { node }).collect::<Vec<_>>());
        let Step::Inject { faults, .. } = &steps[1] else { panic!("{steps:?}") };
        assert_eq!(faults.len(), 8, "every node but the clients' node");
        assert!(!faults.contains(&Fault::NodeCrash { node: 8 }));
        let Step::Inject { faults, .. } = &steps[2] else { panic!("{steps:?}") };
        assert_eq!(faults, &vec![Fault::NetPartition { side_a: vec![6, 7], side_b: vec![0, 1, 2, 3, 4, 5, 8] }]);
    }

    #[test]
    fn a_partition_whose_sides_meet_when_resolved_is_skipped() {
        let mut nemesis = engine(vec![spec(
            0,
            FaultKind::NetPartition,
            1,
            None,
            FaultAction::Partition {
                nodes: NodeSet::Listed(vec![Selector::Node(2)]),
                peers: Some(NodeSet::Listed(vec![Selector::Primary { group: 0 }])),
            },
        )]);
        nemesis.observe(&view(0, 1, 2, vec![0, 1, 2]));
        let steps = nemesis.due(1);
        assert!(matches!(&steps[..], [Step::Skip { reason, .. }] if reason.contains("both sides")), "{steps:?}");
    }
}
