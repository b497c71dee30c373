//! The operator's handle, `Sim`: create nodes, crash, restart, pause, resume and replace them,
//! inject and heal faults (one at a time, or all at once to end the safety phase), watch and read
//! the trace, and close the run. It is the only part of the world that calls madsim's node
//! lifecycle; it applies each fault through the rules of the part the fault acts on (`transport`
//! for links, `disk_faults` for disks) and never reaches into a node's program.

use std::sync::{Arc, Mutex, MutexGuard};

use super::clock::{self, NodeClock};
use super::disk::Disk;
use super::fault::{Effect, Fault, FaultId, NodeEffect};
use super::net::{Inbox, Message, NetworkStats};
use super::node_context::NodeContext;
use super::state::{lock, NodeSlot, NodeState, Program, World, WorldConfig};
use super::NodeId;
use crate::trace::{EventKind, SharedTrace, Subscription};

/// The operator's handle on a running world. Cheap to clone. Must be used inside the run's madsim
/// runtime.
pub struct Sim<M> {
    world: Arc<Mutex<World<M>>>,
}

impl<M> Clone for Sim<M> {
    fn clone(&self) -> Self {
        Sim { world: self.world.clone() }
    }
}

/// What a finished run leaves behind.
#[derive(Debug)]
pub struct WorldRecord {
    pub trace_hash: u64,
    pub events_recorded: u64,
    pub events: Vec<crate::trace::Event>,
    pub network: NetworkStats,
    /// Every disk's counters at the end, by node then disk.
    pub disks: Vec<Vec<super::disk::DiskStats>>,
    pub end_us: u64,
}

impl<M: Message> Sim<M> {
    pub fn new(config: WorldConfig) -> Sim<M> {
        Sim { world: Arc::new(Mutex::new(World::new(config))) }
    }

    fn lock(&self) -> MutexGuard<'_, World<M>> {
        lock(&self.world)
    }

    pub fn now_us(&self) -> u64 {
        clock::now_us()
    }

    /// Creates a node and boots it. Ids are dense, in creation order.
    pub fn add_node(&self, name: &str, program: Program<M>) -> NodeId {
        let id = {
            let mut world = self.lock();
            let id = world.nodes.len() as NodeId;
            world.nodes.push(NodeSlot {
                name: name.to_string(),
                madsim_id: None,
                state: NodeState::Down,
                incarnation: 0,
                boots: 0,
                inbox: Inbox::new(),
                waker: None,
                clock: NodeClock::default(),
                baseline_clock: NodeClock::default(),
                disks: Vec::new(),
                program,
            });
            let disks = (0..world.config.disks_per_node.max(1)).map(|_| Disk::new(world.config.disk.clone())).collect();
            world.nodes[id as usize].disks = disks;
            world.write_incarnation(id);
            world.grow_links();
            id
        };
        let world = self.world.clone();
        let handle = madsim::runtime::Handle::current()
            .create_node()
            .name(name)
            .init(move || {
                let context = NodeContext::boot(world.clone(), id);
                let program = lock(&world).nodes[id as usize].program.clone();
                program(context)
            })
            .build();
        self.lock().nodes[id as usize].madsim_id = Some(handle.id());
        id
    }

    pub fn node_count(&self) -> u32 {
        self.lock().nodes.len() as u32
    }

    pub fn node_state(&self, node: NodeId) -> NodeState {
        self.lock().nodes[node as usize].state
    }

    pub fn incarnation(&self, node: NodeId) -> u32 {
        self.lock().nodes[node as usize].incarnation
    }

    pub fn node_name(&self, node: NodeId) -> String {
        self.lock().nodes[node as usize].name.clone()
    }

    fn madsim_id(&self, node: NodeId) -> madsim::task::NodeId {
        self.lock().nodes[node as usize].madsim_id.expect("world: node has no madsim id before it was built")
    }

    /// Kills a node: its tasks stop at once and its disks resolve what was unsynced. No-op if down.
    pub fn crash(&self, node: NodeId) {
        let now = clock::now_us();
        {
            let mut world = self.lock();
            if world.nodes[node as usize].state == NodeState::Down {
                return;
            }
            let slot = &mut world.nodes[node as usize];
            slot.state = NodeState::Down;
            slot.waker = None;
            world.record(now, Some(node), EventKind::NodeCrash);
            world.crash_disks(node, now);
        }
        madsim::runtime::Handle::current().kill(self.madsim_id(node));
    }

    /// Boots a node again from what its disks hold; crashes it first if it is up.
    pub fn restart(&self, node: NodeId) {
        self.crash(node);
        madsim::runtime::Handle::current().restart(self.madsim_id(node));
    }

    /// Stalls a node (stop-the-world): none of its tasks run until `resume`. Messages still arrive.
    pub fn pause(&self, node: NodeId, duration_us: u64) {
        let now = clock::now_us();
        {
            let mut world = self.lock();
            if world.nodes[node as usize].state != NodeState::Up {
                return;
            }
            world.nodes[node as usize].state = NodeState::Paused;
            world.record(now, Some(node), EventKind::NodePause { duration_us });
        }
        madsim::runtime::Handle::current().pause(self.madsim_id(node));
    }

    pub fn resume(&self, node: NodeId) {
        let now = clock::now_us();
        {
            let mut world = self.lock();
            if world.nodes[node as usize].state != NodeState::Paused {
                return;
            }
            world.nodes[node as usize].state = NodeState::Up;
            world.record(now, Some(node), EventKind::NodeResume);
        }
        madsim::runtime::Handle::current().resume(self.madsim_id(node));
    }

    /// Swaps a node's machine for an empty one: kill, wipe every disk, incarnation + 1, boot with
    /// the same id. Messages already on their way reach the new incarnation; the system under test
    /// must check identity itself. Disk faults still in force on the node act on its new disks.
    pub fn replace(&self, node: NodeId) {
        self.crash(node);
        let now = clock::now_us();
        {
            let mut world = self.lock();
            world.nodes[node as usize].incarnation += 1;
            let new_incarnation = world.nodes[node as usize].incarnation;
            world.replace_disks(node);
            world.record(now, Some(node), EventKind::PeerReplace { new_incarnation });
        }
        madsim::runtime::Handle::current().restart(self.madsim_id(node));
    }

    /// Applies a fault now. Node faults act at once; network, disk and clock faults last until
    /// `heal` (or `heal_all`), and a one-shot disk fault stays armed until it fires or is healed.
    pub fn inject(&self, fault: Fault) -> FaultId {
        self.inject_from(fault, None, String::new())
    }

    /// Applies a fault that came from a scenario's `[[faults]]` entry `entry`, whose target
    /// `selector` (a role, a node set) resolved to the nodes the fault names; both are recorded.
    pub fn inject_from(&self, fault: Fault, entry: Option<u32>, selector: String) -> FaultId {
        let now = clock::now_us();
        let id = {
            let mut world = self.lock();
            let id = world.next_fault_id;
            world.next_fault_id += 1;
            let detail = format!("{fault:?}");
            world.record(
                now,
                None,
                EventKind::FaultInject { fault: fault.kind(), fault_id: id, detail, entry, selector },
            );
            id
        };
        match fault.effect() {
            Effect::Node(NodeEffect::Crash { node }) => {
                // Kept until healed: healing a crash restarts the node (before the heal phase,
                // when the scenario gave the crash a duration).
                self.crash(node);
                self.lock().faults.insert(id, fault.clone());
            }
            Effect::Node(NodeEffect::Restart { node }) => self.restart(node),
            Effect::Node(NodeEffect::Pause { node, duration_us }) => {
                self.pause(node, duration_us);
                self.lock().faults.insert(id, fault.clone());
            }
            Effect::Node(NodeEffect::Replace { node }) => self.replace(node),
            Effect::Link { .. } => {
                let mut world = self.lock();
                world.faults.insert(id, fault.clone());
                world.recompute_links(now);
            }
            Effect::Disk { target, change } => {
                let mut world = self.lock();
                world.faults.insert(id, fault.clone());
                world.apply_disk_fault(id, target, change);
            }
            Effect::Clock { node, skew_us, drift_ppm } => {
                let mut world = self.lock();
                world.nodes[node as usize].clock = NodeClock { skew_us, drift_ppm };
                world.faults.insert(id, fault.clone());
            }
        }
        id
    }

    /// Undoes one fault, leaving every other in force (no-op for faults that already ended). A
    /// one-shot disk fault that has not fired is disarmed.
    pub fn heal(&self, id: FaultId) {
        let now = clock::now_us();
        let fault = {
            let mut world = self.lock();
            let Some(fault) = world.faults.remove(&id) else { return };
            world.record(now, None, EventKind::FaultHeal { fault: fault.kind(), fault_id: id });
            fault
        };
        match fault.effect() {
            Effect::Node(NodeEffect::Crash { node }) => self.revive(node),
            Effect::Node(NodeEffect::Pause { node, .. }) => self.resume(node),
            Effect::Node(NodeEffect::Restart { .. } | NodeEffect::Replace { .. }) => {}
            Effect::Link { .. } => self.lock().recompute_links(now),
            Effect::Disk { target, change } => self.lock().heal_disk_fault(id, target, change),
            Effect::Clock { node, .. } => {
                let mut world = self.lock();
                let slot = &mut world.nodes[node as usize];
                slot.clock = slot.baseline_clock;
            }
        }
    }

    /// Ends the safety phase: heals every fault (so no one-shot disk fault stays armed), resumes
    /// paused nodes, restarts crashed ones.
    pub fn heal_all(&self) {
        let ids: Vec<FaultId> = self.lock().faults.keys().copied().collect();
        for id in ids {
            self.heal(id);
        }
        let now = clock::now_us();
        self.lock().record(now, None, EventKind::HealAll);
        for node in 0..self.node_count() {
            match self.node_state(node) {
                NodeState::Down => self.revive(node),
                NodeState::Paused => self.resume(node),
                NodeState::Up => {}
            }
        }
    }

    /// Boots a crashed node again (no-op unless it is down). It counts as up from here on, so a
    /// second revive before its program starts does not boot it twice.
    fn revive(&self, node: NodeId) {
        {
            let mut world = self.lock();
            if world.nodes[node as usize].state != NodeState::Down {
                return;
            }
            world.nodes[node as usize].state = NodeState::Up;
        }
        madsim::runtime::Handle::current().restart(self.madsim_id(node));
    }

    /// Sets a node's baseline clock (skew and drift). `clock_skew` faults override it while they
    /// last and restore the baseline when healed.
    pub fn set_clock(&self, node: NodeId, clock: NodeClock) {
        let mut world = self.lock();
        world.nodes[node as usize].clock = clock;
        world.nodes[node as usize].baseline_clock = clock;
    }

    /// Records an event from outside any node (the run itself).
    pub fn record(&self, node: Option<NodeId>, kind: EventKind) {
        let now = clock::now_us();
        self.lock().record(now, node, kind);
    }

    pub fn network_stats(&self) -> NetworkStats {
        self.lock().stats
    }

    /// The events kept so far (history-level events, or all under `TraceLevel::Full`).
    pub fn events(&self) -> Vec<crate::trace::Event> {
        self.lock().trace().events().to_vec()
    }

    /// The run's trace, which outlives the world: the runner keeps it to read a panicked run's
    /// events and hash.
    pub fn trace(&self) -> SharedTrace {
        self.lock().trace.clone()
    }

    /// Watches the events `filter` selects as they are recorded (the fault engine's triggers).
    pub fn watch(&self, filter: fn(&EventKind) -> bool) -> Subscription {
        self.lock().trace().subscribe(filter)
    }

    /// Closes the run: the hash and the kept events. Kills every node so no task outlives the world.
    pub fn finish(&self) -> WorldRecord {
        let now = clock::now_us();
        for node in 0..self.node_count() {
            if self.node_state(node) != NodeState::Down {
                let id = self.madsim_id(node);
                self.lock().nodes[node as usize].state = NodeState::Down;
                madsim::runtime::Handle::current().kill(id);
            }
        }
        let world = self.lock();
        let mut trace = world.trace();
        WorldRecord {
            trace_hash: trace.hash(),
            events_recorded: trace.events_recorded(),
            network: world.stats,
            disks: world.nodes.iter().map(|node| node.disks.iter().map(Disk::stats).collect()).collect(),
            end_us: now,
            events: trace.take_events(),
        }
    }
}
