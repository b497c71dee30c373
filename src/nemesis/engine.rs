//! The fault engine's core: it holds the scenario's faults, learns roles and migration phases
//! from the events it is shown, and says which faults fire or heal when. It does no I/O: the
//! driver (the runner's safety phase) feeds it events and time and applies the steps it returns to
//! the world. Every time it decides comes from the scenario or from an event's own time, never
//! from when the driver happened to look.
//!
//! A fault's targets are resolved when it fires, from what the trace has told so far; a target
//! that names nobody at that moment (a group with no primary yet) makes the fault a `Skip`, which
//! the trace records, never a silent no-op. So does a fault that never fired by the end of the
//! safety phase (its migration never reached the phase it waits for): a scenario whose fault
//! tested nothing says so in its trace. Draws (which secondary, which gateway) come from the
//! engine's own generator, so they never shift another component's stream.

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::roles::{Cast, Roles};
use super::spec::{FaultAction, FaultSpec, Member, MigrationGroups, NodeSet, Selector, Side, Trigger, TriggerPhase};
use crate::trace::{Event, EventKind};
use crate::units::format_us;
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
    /// Entries with a phase trigger whose phase has not been reached yet.
    waiting: BTreeSet<u32>,
    /// Entries with a phase trigger whose phase was reached, with the time of the `phase` event.
    reached: BTreeMap<u32, u64>,
}

impl Nemesis {
    pub fn new(specs: Vec<FaultSpec>, cast: Cast, rng: ChaCha8Rng) -> Nemesis {
        let mut schedule = BTreeSet::new();
        let mut waiting = BTreeSet::new();
        for (index, spec) in specs.iter().enumerate() {
            assert_eq!(spec.entry as usize, index, "nemesis_entries_dense: fault entries are numbered in order");
            assert!(
                !spec.needs_migration() || spec.migration.is_some(),
                "nemesis_migration_named: entry {index} names a migration role but no migration"
            );
            match spec.trigger {
                Trigger::At { at_us } => {
                    schedule.insert((at_us, Pending::Fire, spec.entry));
                }
                Trigger::Phase { .. } => {
                    waiting.insert(spec.entry);
                }
            }
        }
        Nemesis {
            specs,
            cast,
            roles: Roles::default(),
            rng,
            schedule,
            fired: BTreeMap::new(),
            waiting,
            reached: BTreeMap::new(),
        }
    }

    /// Whether the engine wants to see events of this kind (subscribe with it): what `Roles`
    /// learns from, and the `phase` events that phase triggers wait for.
    pub fn watches(kind: &EventKind) -> bool {
        Roles::watches(kind) || matches!(kind, EventKind::Phase { .. } | EventKind::DiskMove { .. })
    }

    pub fn observe(&mut self, event: &Event) {
        self.roles.observe(event);
        let (migration, attempt, to) = match &event.kind {
            EventKind::Phase { migration, attempt, to, .. } => (migration, attempt, TriggerPhase::Migration(*to)),
            EventKind::DiskMove { migration, attempt, to, .. } => (migration, attempt, TriggerPhase::Disk(*to)),
            _ => return,
        };
        let matched: Vec<u32> = self
            .waiting
            .iter()
            .copied()
            .filter(|&entry| match &self.specs[entry as usize].trigger {
                Trigger::Phase { migration: name, phase, attempt: wanted, .. } => {
                    name == migration && *phase == to && wanted.is_none_or(|wanted| wanted == *attempt)
                }
                Trigger::At { .. } => unreachable!("nemesis: entry {entry} waits for a phase but has a time trigger"),
            })
            .collect();
        for entry in matched {
            let Trigger::Phase { after_us, .. } = self.specs[entry as usize].trigger else {
                unreachable!("nemesis: entry {entry} matched a phase without a phase trigger")
            };
            self.waiting.remove(&entry);
            self.reached.insert(entry, event.at_us);
            // From the event's time, not the driver's: the fault fires `after` past the moment the
            // phase was entered, however late the driver saw it.
            self.schedule.insert((event.at_us.saturating_add(after_us), Pending::Fire, entry));
        }
    }

    /// The safety phase ends at `end_us`: every fault that has not fired by then never will, and
    /// is returned as a `Skip` saying why, once, in entry order. Nothing stays scheduled (heals
    /// still pending are the driver's `heal_all`'s).
    pub fn end(&mut self, end_us: u64) -> Vec<Step> {
        let unfired: BTreeSet<u32> = self
            .schedule
            .iter()
            .filter(|(_, pending, _)| *pending == Pending::Fire)
            .map(|(_, _, entry)| *entry)
            .chain(self.waiting.iter().copied())
            .collect();
        self.schedule.clear();
        self.waiting.clear();
        let mut steps = Vec::new();
        for entry in unfired {
            let spec = &self.specs[entry as usize];
            let reason = match (&spec.trigger, self.reached.get(&entry)) {
                (Trigger::Phase { migration, phase, attempt, .. }, None) => {
                    let attempt = attempt.map(|attempt| format!(" in attempt {attempt}")).unwrap_or_default();
                    format!("never triggered: migration {migration} never reached {phase}{attempt}")
                }
                (Trigger::Phase { migration, phase, after_us, .. }, Some(reached_us)) => format!(
                    "never triggered: migration {migration} reached {phase} at {}; the fault was due {} later, at {}, after the safety phase ended ({})",
                    format_us(*reached_us),
                    format_us(*after_us),
                    format_us(reached_us.saturating_add(*after_us)),
                    format_us(end_us)
                ),
                (Trigger::At { at_us }, _) => format!(
                    "never triggered: due at {}, past the end of the safety phase ({})",
                    format_us(*at_us),
                    format_us(end_us)
                ),
            };
            steps.push(Step::Skip { entry, kind: spec.kind, selector: self.describe(spec), reason });
        }
        steps
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
        let selector = self.describe(&spec);
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

    /// How a fault names its targets, with what is known now of its migration's groups: `nodes =
    /// primary of the source of move-7 (group 0)`.
    fn describe(&self, spec: &FaultSpec) -> String {
        let migration = spec.migration.as_deref().map(|name| {
            let view = self.roles.migration(name);
            MigrationGroups { name, source: view.map(|view| view.source), target: view.map(|view| view.target) }
        });
        spec.selector_in(migration)
    }

    /// The world faults a spec means now.
    fn resolve(&mut self, spec: &FaultSpec) -> Result<Vec<Fault>, String> {
        let per_node = |nodes: Vec<NodeId>, make: &dyn Fn(NodeId) -> Fault| nodes.into_iter().map(make).collect();
        let migration = spec.migration.as_deref();
        match &spec.action {
            FaultAction::Node { nodes } => {
                let nodes = self.nodes(nodes, true, migration)?;
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
                let side_a = self.nodes(nodes, false, migration)?;
                let side_b = match peers {
                    Some(peers) => self.nodes(peers, false, migration)?,
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
                        let from = self.nodes(nodes, false, migration)?;
                        let to = match peers {
                            Some(peers) => self.nodes(peers, false, migration)?,
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
                let nodes = self.nodes(nodes, true, migration)?;
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
                let nodes = self.nodes(nodes, true, migration)?;
                Ok(per_node(nodes, &|node| Fault::ClockSkew { node, skew_us: *skew_us, drift_ppm: *drift_ppm }))
            }
        }
    }

    /// The nodes a set means now, without duplicates, in the order named. `on_nodes`: the fault
    /// acts on the nodes themselves (not their links), so observers are left out of `all`.
    /// `migration` is the fault's, whose groups its migration roles name.
    fn nodes(&mut self, set: &NodeSet, on_nodes: bool, migration: Option<&str>) -> Result<Vec<NodeId>, String> {
        let nodes = match set {
            NodeSet::All if on_nodes => self.cast.faultable(),
            NodeSet::All => (0..self.cast.node_count).collect(),
            NodeSet::Storage => self.cast.storage.clone(),
            NodeSet::Gateways => self.cast.gateways.clone(),
            NodeSet::Listed(selectors) => {
                let mut nodes = Vec::new();
                for selector in selectors {
                    let node = self.node(selector, migration, &nodes)?;
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

    /// The node `selector` names now. A draw (a secondary, a gateway) avoids the nodes `taken`
    /// earlier in the same set while another candidate remains, so a set that lists
    /// `target_secondary` twice names both secondaries of a three-replica group.
    fn node(&mut self, selector: &Selector, migration: Option<&str>, taken: &[NodeId]) -> Result<NodeId, String> {
        match selector {
            Selector::Node(node) => Ok(*node),
            Selector::Primary { group } => self.member(*group, Member::Primary, taken),
            Selector::Secondary { group } => self.member(*group, Member::Secondary, taken),
            Selector::Master => self.cast.master.ok_or_else(|| "this system has no master".to_string()),
            Selector::Gateway => {
                if self.cast.gateways.is_empty() {
                    return Err("this system has no gateway".to_string());
                }
                let gateways = self.cast.gateways.clone();
                Ok(self.draw(&gateways, taken))
            }
            Selector::Migration { side, member } => {
                let name = migration.expect("nemesis_migration_named: checked when the engine was built");
                let view =
                    self.roles.migration(name).ok_or_else(|| format!("migration {name} has not been planned yet"))?;
                let group = match side {
                    Side::Source => view.source,
                    Side::Target => view.target,
                };
                self.member(group, *member, taken)
            }
        }
    }

    /// One of `candidates`, drawn from the engine's generator, among those not `taken` if any.
    fn draw(&mut self, candidates: &[NodeId], taken: &[NodeId]) -> NodeId {
        let fresh: Vec<NodeId> = candidates.iter().copied().filter(|node| !taken.contains(node)).collect();
        let pool = if fresh.is_empty() { candidates } else { &fresh };
        pool[self.rng.gen_range(0..pool.len())]
    }

    /// The primary of `group`, or one of its other members drawn from the engine's generator, as
    /// the group's latest view names them.
    fn member(&mut self, group: u32, member: Member, taken: &[NodeId]) -> Result<NodeId, String> {
        let view = self.roles.group(group).ok_or_else(|| format!("group {group} has had no primary yet"))?;
        match member {
            Member::Primary => Ok(view.primary),
            Member::Secondary => {
                let secondaries: Vec<NodeId> =
                    view.members.iter().copied().filter(|&node| node != view.primary).collect();
                if secondaries.is_empty() {
                    return Err(format!("group {group} has no member besides its primary"));
                }
                Ok(self.draw(&secondaries, taken))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::vocabulary::MigrationPhase;

    fn cast() -> Cast {
        Cast { node_count: 9, storage: (0..5).collect(), master: Some(5), gateways: vec![6, 7], observers: vec![8] }
    }

    fn spec(entry: u32, kind: FaultKind, at_us: u64, duration_us: Option<u64>, action: FaultAction) -> FaultSpec {
        FaultSpec { entry, line: 1, kind, trigger: Trigger::At { at_us }, duration_us, action, migration: None }
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
    fn a_draw_listed_twice_in_one_set_names_two_nodes() {
        for seed in 0..32 {
            let twice = NodeSet::Listed(vec![Selector::Secondary { group: 0 }, Selector::Secondary { group: 0 }]);
            let mut nemesis = Nemesis::new(
                vec![spec(0, FaultKind::NodeCrash, 1, None, FaultAction::Node { nodes: twice })],
                cast(),
                ChaCha8Rng::seed_from_u64(seed),
            );
            nemesis.observe(&view(0, 4, 2, vec![0, 1, 2]));
            let Step::Inject { faults, .. } = &nemesis.due(1)[0] else { panic!("not injected") };
            let mut crashed: Vec<NodeId> = faults
                .iter()
                .map(|fault| match fault {
                    Fault::NodeCrash { node } => *node,
                    other => panic!("{other:?}"),
                })
                .collect();
            crashed.sort_unstable();
            assert_eq!(crashed, [0, 1], "seed {seed}: both secondaries, each once");
        }
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

    fn phase(migration: &str, attempt: u32, to: MigrationPhase, at_us: u64) -> Event {
        let kind = EventKind::Phase {
            migration: migration.to_string(),
            attempt,
            partition: 7,
            from: MigrationPhase::Planned,
            to,
            reason: None,
        };
        Event { seq: 0, at_us, node: Some(0), incarnation: 0, kind, summary: String::new() }
    }

    fn plan(migration: &str, partition: u32, source: u32, target: u32) -> Event {
        let kind = EventKind::MigrationPlan {
            migration: migration.to_string(),
            partition,
            source,
            target,
            pause_budget_us: 50,
        };
        Event { seq: 0, at_us: 0, node: Some(5), incarnation: 0, kind, summary: String::new() }
    }

    fn on_phase(
        entry: u32,
        phase: MigrationPhase,
        attempt: Option<u32>,
        after_us: u64,
        duration_us: Option<u64>,
        nodes: NodeSet,
    ) -> FaultSpec {
        FaultSpec {
            entry,
            line: 1,
            kind: FaultKind::NodeCrash,
            trigger: Trigger::Phase { migration: "move-7".to_string(), phase: phase.into(), attempt, after_us },
            duration_us,
            action: FaultAction::Node { nodes },
            migration: Some("move-7".to_string()),
        }
    }

    fn node(id: NodeId) -> NodeSet {
        NodeSet::Listed(vec![Selector::Node(id)])
    }

    fn migration_role(side: Side, member: Member) -> NodeSet {
        NodeSet::Listed(vec![Selector::Migration { side, member }])
    }

    #[test]
    fn a_phase_trigger_fires_after_its_phase_is_entered_and_not_before() {
        let mut nemesis = engine(vec![on_phase(0, MigrationPhase::CatchUp, None, 20, Some(30), node(2))]);
        assert_eq!(nemesis.next_due_us(), None, "nothing is due before the phase is entered");
        // Another migration's catch-up, and this one's earlier phases, do not start it.
        nemesis.observe(&phase("move-8", 1, MigrationPhase::CatchUp, 50));
        nemesis.observe(&phase("move-7", 1, MigrationPhase::Snapshot, 60));
        assert_eq!(nemesis.next_due_us(), None);
        assert!(nemesis.due(90).is_empty());
        nemesis.observe(&phase("move-7", 1, MigrationPhase::CatchUp, 100));
        // Due `after` past the event's own time, whenever the driver looks.
        assert_eq!(nemesis.next_due_us(), Some(120));
        assert!(nemesis.due(119).is_empty(), "not before `after` has passed");
        assert_eq!(
            nemesis.due(120),
            vec![Step::Inject {
                entry: 0,
                faults: vec![Fault::NodeCrash { node: 2 }],
                selector: "nodes = node 2".into()
            }]
        );
        assert_eq!(nemesis.fired().get(&0), Some(&120));
        assert_eq!(nemesis.next_due_us(), Some(150), "healed `duration` after it fired");
        // The first matching event starts it; later ones (a second attempt's catch-up) do not.
        nemesis.observe(&phase("move-7", 2, MigrationPhase::CatchUp, 140));
        assert_eq!(nemesis.due(150), vec![Step::Heal { entry: 0 }]);
        assert_eq!(nemesis.next_due_us(), None);
        assert!(nemesis.end(1_000).is_empty(), "a fault that fired is not reported as skipped");
    }

    #[test]
    fn a_phase_trigger_with_an_attempt_waits_for_that_attempt() {
        let mut nemesis = engine(vec![on_phase(0, MigrationPhase::Freeze, Some(2), 0, None, node(1))]);
        nemesis.observe(&phase("move-7", 1, MigrationPhase::Freeze, 100));
        assert_eq!(nemesis.next_due_us(), None, "attempt 1's freeze is not attempt 2's");
        nemesis.observe(&phase("move-7", 2, MigrationPhase::Freeze, 300));
        assert_eq!(nemesis.next_due_us(), Some(300));
        let steps = nemesis.due(300);
        assert!(matches!(&steps[..], [Step::Inject { entry: 0, .. }]), "{steps:?}");
        assert_eq!(nemesis.next_due_us(), None, "no duration: healed by the heal phase");
    }

    #[test]
    fn a_trigger_that_never_fired_is_skipped_once_at_the_end_with_why() {
        let mut nemesis = engine(vec![
            on_phase(0, MigrationPhase::CatchUp, None, 0, None, node(1)),
            on_phase(1, MigrationPhase::Drain, Some(2), 0, None, node(1)),
            on_phase(2, MigrationPhase::Snapshot, None, 500, None, node(1)),
            spec(3, FaultKind::NodeCrash, 10, None, FaultAction::Node { nodes: node(4) }),
        ]);
        nemesis.observe(&phase("move-7", 1, MigrationPhase::Snapshot, 600));
        nemesis.observe(&phase("move-7", 1, MigrationPhase::Drain, 700));
        let steps = nemesis.due(999);
        assert!(matches!(&steps[..], [Step::Inject { entry: 3, .. }]), "{steps:?}");
        assert_eq!(
            nemesis.end(1_000),
            vec![
                Step::Skip {
                    entry: 0,
                    kind: FaultKind::NodeCrash,
                    selector: "nodes = node 1".into(),
                    reason: "never triggered: migration move-7 never reached catch_up".into(),
                },
                Step::Skip {
                    entry: 1,
                    kind: FaultKind::NodeCrash,
                    selector: "nodes = node 1".into(),
                    reason: "never triggered: migration move-7 never reached drain in attempt 2".into(),
                },
                Step::Skip {
                    entry: 2,
                    kind: FaultKind::NodeCrash,
                    selector: "nodes = node 1".into(),
                    reason: "never triggered: migration move-7 reached snapshot at 600us; the fault was due 500us \
                             later, at 1.1ms, after the safety phase ended (1ms)"
                        .into(),
                },
            ]
        );
        assert!(nemesis.end(1_000).is_empty(), "each is reported once");
        assert_eq!(nemesis.next_due_us(), None);
    }

    #[test]
    fn source_and_target_selectors_follow_the_plan_and_a_failover_of_the_source() {
        let at = |entry: u32, at_us: u64, nodes: NodeSet| FaultSpec {
            migration: Some("move-7".to_string()),
            ..spec(entry, FaultKind::NodeCrash, at_us, None, FaultAction::Node { nodes })
        };
        let mut nemesis = engine(vec![
            at(0, 5, migration_role(Side::Source, Member::Primary)),
            at(1, 10, migration_role(Side::Source, Member::Primary)),
            at(2, 20, migration_role(Side::Source, Member::Primary)),
            at(3, 20, migration_role(Side::Target, Member::Secondary)),
            at(4, 30, migration_role(Side::Source, Member::Primary)),
        ]);
        nemesis.observe(&view(0, 1, 0, vec![0, 1, 2]));
        nemesis.observe(&view(3, 1, 3, vec![3, 4, 0]));
        assert_eq!(
            nemesis.due(5),
            vec![Step::Skip {
                entry: 0,
                kind: FaultKind::NodeCrash,
                selector: "nodes = primary of the source of move-7".into(),
                reason: "migration move-7 has not been planned yet".into(),
            }]
        );
        nemesis.observe(&plan("move-7", 7, 0, 3));
        assert_eq!(
            nemesis.due(10),
            vec![Step::Inject {
                entry: 1,
                faults: vec![Fault::NodeCrash { node: 0 }],
                selector: "nodes = primary of the source of move-7 (group 0)".into(),
            }]
        );
        // The source group fails over: its primary is now node 1.
        nemesis.observe(&view(0, 2, 1, vec![0, 1, 2]));
        let steps = nemesis.due(20);
        assert_eq!(
            steps[0],
            Step::Inject {
                entry: 2,
                faults: vec![Fault::NodeCrash { node: 1 }],
                selector: "nodes = primary of the source of move-7 (group 0)".into(),
            }
        );
        let Step::Inject { faults, selector, .. } = &steps[1] else { panic!("{steps:?}") };
        assert_eq!(selector, "nodes = secondary of the target of move-7 (group 3)");
        assert!(
            matches!(faults[..], [Fault::NodeCrash { node: 4 | 0 }]),
            "a secondary of the target, never its primary: {faults:?}"
        );
        // The migration's next partition comes from group 2: the latest plan names the groups.
        nemesis.observe(&view(2, 1, 2, vec![2, 3, 4]));
        nemesis.observe(&plan("move-7", 8, 2, 3));
        assert_eq!(
            nemesis.due(30),
            vec![Step::Inject {
                entry: 4,
                faults: vec![Fault::NodeCrash { node: 2 }],
                selector: "nodes = primary of the source of move-7 (group 2)".into(),
            }]
        );
    }

    #[test]
    fn a_migration_role_of_a_group_without_a_primary_yet_is_skipped() {
        let mut nemesis = engine(vec![FaultSpec {
            migration: Some("move-7".to_string()),
            ..spec(
                0,
                FaultKind::NodePause,
                10,
                Some(5),
                FaultAction::Node { nodes: migration_role(Side::Target, Member::Primary) },
            )
        }]);
        nemesis.observe(&plan("move-7", 7, 0, 4));
        assert_eq!(
            nemesis.due(10),
            vec![Step::Skip {
                entry: 0,
                kind: FaultKind::NodePause,
                selector: "nodes = primary of the target of move-7 (group 4)".into(),
                reason: "group 4 has had no primary yet".into(),
            }]
        );
    }

    #[test]
    fn the_engine_watches_views_plans_and_phases() {
        assert!(Nemesis::watches(&view(0, 1, 0, vec![0]).kind));
        assert!(Nemesis::watches(&plan("move-7", 7, 0, 3).kind));
        assert!(Nemesis::watches(&phase("move-7", 1, MigrationPhase::Done, 0).kind));
        assert!(!Nemesis::watches(&EventKind::HealAll));
    }
}
