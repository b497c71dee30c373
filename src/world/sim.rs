//! The world's state and its two faces: `Sim`, the operator's handle (create nodes, crash, restart,
//! pause, replace, inject and heal faults), and `NodeContext`, all a node's program ever sees
//! (its id and incarnation, the clock, send/recv, its disks, its randomness, the trace).
//!
//! All state lives in one `World` behind one lock; madsim runs every task of a run on one OS
//! thread, so the lock is never contended and exists only because madsim's spawn wants `Send`.
//! Never hold the lock across an `.await` or a call into madsim that may drop tasks (kill).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::clock::{self, NodeClock};
use super::disk::{CrashReport, Disk, DiskConfig, DiskError, DiskOp};
use super::fault::Fault;
use super::net::{self, Envelope, Inbox, Link, Message, NetworkConfig, NetworkStats, Pending};
use super::NodeId;
use crate::trace::{DropReason, EventKind, SharedTrace, Subscription, TraceLevel, TraceSink};

/// A node's program: called at every boot (first start, restart, after replacement) with a fresh
/// context; its future is the node's main task.
pub type Program<M> = Arc<dyn Fn(NodeContext<M>) -> Pin<Box<dyn Future<Output = ()>>> + Send + Sync>;

/// Identifies one injected fault, to heal it alone.
pub type FaultId = u32;

/// Whether a node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    Up,
    Paused,
    Down,
}

/// What a world is built from.
#[derive(Clone, Debug)]
pub struct WorldConfig {
    pub seed: u64,
    pub network: NetworkConfig,
    pub disk: DiskConfig,
    pub disks_per_node: u32,
    pub trace: TraceLevel,
}

impl WorldConfig {
    /// A world with default network and disks (two per node), as tests want it.
    pub fn new(seed: u64, network: NetworkConfig) -> WorldConfig {
        WorldConfig { seed, network, disk: DiskConfig::default(), disks_per_node: 2, trace: TraceLevel::History }
    }
}

/// The file on each node's first disk that holds its incarnation, written by the world when the
/// node is created or replaced. The system under test may read it and must not write it.
pub const INCARNATION_FILE: &str = "incarnation";

struct NodeSlot<M> {
    name: String,
    madsim_id: Option<madsim::task::NodeId>,
    state: NodeState,
    incarnation: u32,
    boots: u32,
    inbox: Inbox<M>,
    waker: Option<Waker>,
    clock: NodeClock,
    baseline_clock: NodeClock,
    disks: Vec<Disk>,
    program: Program<M>,
}

pub(crate) struct World<M> {
    config: WorldConfig,
    nodes: Vec<NodeSlot<M>>,
    /// Links indexed `from * capacity + to`; `capacity` grows by doubling as nodes are added.
    links: Vec<Link<M>>,
    link_capacity: usize,
    network_rng: ChaCha8Rng,
    disk_rng: ChaCha8Rng,
    trace: SharedTrace,
    next_message_id: u64,
    next_inbox_seq: u64,
    faults: BTreeMap<FaultId, Fault>,
    next_fault_id: FaultId,
    stats: NetworkStats,
}

/// Seeds one component's generator from the run seed and the component's name, so adding a draw
/// in one component never shifts another's stream.
pub fn component_rng(seed: u64, component: &str, index: u64) -> ChaCha8Rng {
    let mut hasher = crate::trace::TraceHasher::default();
    hasher.word(seed);
    hasher.text(component);
    hasher.word(index);
    ChaCha8Rng::seed_from_u64(hasher.finish())
}

impl<M: Message> World<M> {
    fn link_index(&self, from: NodeId, to: NodeId) -> usize {
        from as usize * self.link_capacity + to as usize
    }

    fn record(&mut self, now_us: u64, node: Option<NodeId>, kind: EventKind) {
        let incarnation = node.map_or(0, |id| self.nodes[id as usize].incarnation);
        self.trace().record(now_us, node, incarnation, kind);
    }

    fn trace(&self) -> MutexGuard<'_, TraceSink> {
        self.trace.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn drop_message(&mut self, now_us: u64, from: NodeId, to: NodeId, message: u64, reason: DropReason) {
        self.stats.dropped += 1;
        self.record(now_us, Some(from), EventKind::MessageDrop { from, to, message, reason });
    }

    fn send(&mut self, now_us: u64, from: NodeId, to: NodeId, payload: M) {
        assert!((to as usize) < self.nodes.len(), "network: node {from} sent to unknown node {to}");
        let id = self.next_message_id;
        self.next_message_id += 1;
        let bytes = payload.size_bytes();
        self.stats.sent += 1;
        self.stats.bytes_sent += u64::from(bytes);
        let from_incarnation = self.nodes[from as usize].incarnation;
        let mut trace = self.trace();
        let summary = if trace.keeps_everything() { payload.summary() } else { String::new() };
        trace.record_with_summary(
            now_us,
            Some(from),
            from_incarnation,
            EventKind::MessageSend { to, message: id, bytes },
            summary,
        );
        drop(trace);
        let envelope = Envelope { id, from, from_incarnation, to, sent_at_us: now_us, payload };
        let index = self.link_index(from, to);
        let link = &mut self.links[index];
        if link.blocked {
            self.drop_message(now_us, from, to, id, DropReason::Partition);
            return;
        }
        if link.clogged {
            link.held.push(envelope);
            self.stats.held += 1;
            return;
        }
        if link.loss > 0.0 && self.network_rng.gen_bool(link.loss.min(1.0)) {
            self.drop_message(now_us, from, to, id, DropReason::Loss);
            return;
        }
        let duplicate = link.duplicate > 0.0 && self.network_rng.gen_bool(link.duplicate.min(1.0));
        if duplicate {
            self.stats.duplicated += 1;
            self.record(now_us, Some(from), EventKind::MessageDuplicate { to, message: id });
            self.enqueue(now_us, index, envelope.clone());
        }
        self.enqueue(now_us, index, envelope);
    }

    /// Puts a message on its link and into the receiver's inbox, waking the receiver if the message
    /// is now the first due.
    fn enqueue(&mut self, now_us: u64, link_index: usize, envelope: Envelope<M>) {
        let bytes = envelope.payload.size_bytes();
        let deliver_at_us = self.links[link_index].schedule(now_us, bytes, &self.config.network, &mut self.network_rng);
        let seq = self.next_inbox_seq;
        self.next_inbox_seq += 1;
        let slot = &mut self.nodes[envelope.to as usize];
        let first = slot.inbox.peek().is_none_or(|top| deliver_at_us < top.deliver_at_us);
        slot.inbox.push(Pending { deliver_at_us, seq, envelope });
        if first {
            if let Some(waker) = slot.waker.take() {
                waker.wake();
            }
        }
    }

    /// Messages that arrived while a node was down are lost: called when it boots.
    fn purge_inbox(&mut self, node: NodeId, now_us: u64) {
        let mut lost = Vec::new();
        let inbox = &mut self.nodes[node as usize].inbox;
        while inbox.peek().is_some_and(|top| top.deliver_at_us <= now_us) {
            if let Some(pending) = inbox.pop() {
                lost.push(pending.envelope);
            }
        }
        for envelope in lost {
            self.drop_message(now_us, envelope.from, node, envelope.id, DropReason::NodeDown);
        }
    }

    /// Recomputes every link's fault settings from the base configuration and the active network
    /// faults (in injection order), then releases messages held by clogs that no longer hold.
    fn recompute_links(&mut self, now_us: u64) {
        let node_count = self.nodes.len() as u32;
        let config = self.config.network.clone();
        for link in &mut self.links {
            link.reset_faults(&config);
        }
        let faults: Vec<Fault> = self.faults.values().cloned().collect();
        for fault in &faults {
            let pairs = match fault {
                Fault::NetPartition { side_a, side_b } => {
                    let side_b: Vec<NodeId> = if side_b.is_empty() {
                        (0..node_count).filter(|id| !side_a.contains(id)).collect()
                    } else {
                        side_b.clone()
                    };
                    net::link_pairs(
                        &super::fault::LinkSet { from: side_a.clone(), to: side_b, both_ways: true },
                        node_count,
                    )
                }
                Fault::NetLoss { links, .. }
                | Fault::NetDelay { links, .. }
                | Fault::NetDuplicate { links, .. }
                | Fault::NetReorder { links }
                | Fault::NetClog { links } => net::link_pairs(links, node_count),
                Fault::NodeCrash { .. }
                | Fault::NodeRestart { .. }
                | Fault::NodePause { .. }
                | Fault::PeerReplace { .. }
                | Fault::DiskLostFsync { .. }
                | Fault::DiskTornWrite { .. }
                | Fault::DiskCorruption { .. }
                | Fault::DiskFsyncError { .. }
                | Fault::DiskFull { .. }
                | Fault::DiskSlow { .. }
                | Fault::ClockSkew { .. } => continue,
            };
            for (from, to) in pairs {
                let index = self.link_index(from, to);
                let link = &mut self.links[index];
                match fault {
                    Fault::NetPartition { .. } => link.blocked = true,
                    Fault::NetLoss { rate, .. } => link.loss = 1.0 - (1.0 - link.loss) * (1.0 - rate),
                    Fault::NetDelay { latency, .. } => link.extra_latency = Some(*latency),
                    Fault::NetDuplicate { rate, .. } => link.duplicate = 1.0 - (1.0 - link.duplicate) * (1.0 - rate),
                    Fault::NetReorder { .. } => link.reorder = true,
                    Fault::NetClog { .. } => link.clogged = true,
                    Fault::NodeCrash { .. }
                    | Fault::NodeRestart { .. }
                    | Fault::NodePause { .. }
                    | Fault::PeerReplace { .. }
                    | Fault::DiskLostFsync { .. }
                    | Fault::DiskTornWrite { .. }
                    | Fault::DiskCorruption { .. }
                    | Fault::DiskFsyncError { .. }
                    | Fault::DiskFull { .. }
                    | Fault::DiskSlow { .. }
                    | Fault::ClockSkew { .. } => {
                        unreachable!("world: non-network fault {fault:?} reached link recomputation")
                    }
                }
            }
        }
        let mut released = Vec::new();
        for (index, link) in self.links.iter_mut().enumerate() {
            if !link.clogged && !link.held.is_empty() {
                released.extend(link.held.drain(..).map(|envelope| (index, envelope)));
            }
        }
        for (index, envelope) in released {
            if self.links[index].blocked {
                self.drop_message(now_us, envelope.from, envelope.to, envelope.id, DropReason::Partition);
            } else {
                self.enqueue(now_us, index, envelope);
            }
        }
    }

    fn grow_links(&mut self) {
        let needed = self.nodes.len();
        if needed <= self.link_capacity {
            return;
        }
        let capacity = needed.next_power_of_two().max(4);
        let mut links = Vec::with_capacity(capacity * capacity);
        for _ in 0..capacity * capacity {
            links.push(Link::new(&self.config.network));
        }
        for from in 0..self.link_capacity {
            for to in 0..self.link_capacity {
                std::mem::swap(&mut links[from * capacity + to], &mut self.links[from * self.link_capacity + to]);
            }
        }
        self.links = links;
        self.link_capacity = capacity;
    }
}

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

fn lock<M>(world: &Mutex<World<M>>) -> MutexGuard<'_, World<M>> {
    // A panic inside the simulation poisons the lock; the run is over by then, so keep going and
    // let the panic report itself.
    world.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<M: Message> Sim<M> {
    pub fn new(config: WorldConfig) -> Sim<M> {
        let network_rng = component_rng(config.seed, "network", 0);
        let disk_rng = component_rng(config.seed, "disk", 0);
        let trace = TraceSink::shared(config.trace);
        let world = World {
            config,
            nodes: Vec::new(),
            links: Vec::new(),
            link_capacity: 0,
            network_rng,
            disk_rng,
            trace,
            next_message_id: 0,
            next_inbox_seq: 0,
            faults: BTreeMap::new(),
            next_fault_id: 0,
            stats: NetworkStats::default(),
        };
        Sim { world: Arc::new(Mutex::new(world)) }
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
    /// must check identity itself.
    pub fn replace(&self, node: NodeId) {
        self.crash(node);
        let now = clock::now_us();
        {
            let mut world = self.lock();
            let slot = &mut world.nodes[node as usize];
            slot.incarnation += 1;
            for disk in &mut slot.disks {
                disk.wipe();
            }
            let new_incarnation = slot.incarnation;
            world.write_incarnation(node);
            world.record(now, Some(node), EventKind::PeerReplace { new_incarnation });
        }
        madsim::runtime::Handle::current().restart(self.madsim_id(node));
    }

    /// Applies a fault now. Node faults act at once; network, disk and clock faults last until
    /// `heal` (or `heal_all`).
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
        match &fault {
            Fault::NodeCrash { node } => {
                // Kept until healed: healing a crash restarts the node (before the heal phase,
                // when the scenario gave the crash a duration).
                self.crash(*node);
                self.lock().faults.insert(id, fault.clone());
            }
            Fault::NodeRestart { node } => self.restart(*node),
            Fault::NodePause { node, duration_us } => {
                self.pause(*node, *duration_us);
                self.lock().faults.insert(id, fault.clone());
            }
            Fault::PeerReplace { node } => self.replace(*node),
            Fault::NetPartition { .. }
            | Fault::NetLoss { .. }
            | Fault::NetDelay { .. }
            | Fault::NetDuplicate { .. }
            | Fault::NetReorder { .. }
            | Fault::NetClog { .. } => {
                let mut world = self.lock();
                world.faults.insert(id, fault.clone());
                world.recompute_links(now);
            }
            Fault::ClockSkew { node, skew_us, drift_ppm } => {
                let mut world = self.lock();
                world.nodes[*node as usize].clock = NodeClock { skew_us: *skew_us, drift_ppm: *drift_ppm };
                world.faults.insert(id, fault.clone());
            }
            Fault::DiskLostFsync { .. }
            | Fault::DiskTornWrite { .. }
            | Fault::DiskCorruption { .. }
            | Fault::DiskFsyncError { .. }
            | Fault::DiskFull { .. }
            | Fault::DiskSlow { .. } => {
                let mut world = self.lock();
                world.faults.insert(id, fault.clone());
                world.apply_disk_fault(&fault);
            }
        }
        id
    }

    /// Undoes one lasting fault (no-op for faults that already ended).
    pub fn heal(&self, id: FaultId) {
        let now = clock::now_us();
        let fault = {
            let mut world = self.lock();
            let Some(fault) = world.faults.remove(&id) else { return };
            world.record(now, None, EventKind::FaultHeal { fault: fault.kind(), fault_id: id });
            fault
        };
        match &fault {
            Fault::NodePause { node, .. } => self.resume(*node),
            Fault::ClockSkew { node, .. } => {
                let mut world = self.lock();
                let slot = &mut world.nodes[*node as usize];
                slot.clock = slot.baseline_clock;
            }
            Fault::NetPartition { .. }
            | Fault::NetLoss { .. }
            | Fault::NetDelay { .. }
            | Fault::NetDuplicate { .. }
            | Fault::NetReorder { .. }
            | Fault::NetClog { .. } => self.lock().recompute_links(now),
            Fault::DiskLostFsync { .. }
            | Fault::DiskTornWrite { .. }
            | Fault::DiskCorruption { .. }
            | Fault::DiskFsyncError { .. }
            | Fault::DiskFull { .. }
            | Fault::DiskSlow { .. } => self.lock().heal_disk_fault(&fault),
            Fault::NodeCrash { node } => self.revive(*node),
            Fault::NodeRestart { .. } | Fault::PeerReplace { .. } => {}
        }
    }

    /// Ends the safety phase: heals every fault, resumes paused nodes, restarts crashed ones.
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

impl<M: Message> World<M> {
    /// The disks a disk fault aims at.
    fn target_disks(&mut self, target: super::fault::DiskTarget) -> impl Iterator<Item = &mut Disk> {
        let disks = &mut self.nodes[target.node as usize].disks;
        disks
            .iter_mut()
            .enumerate()
            .filter(move |(index, _)| target.disk.is_none_or(|disk| disk as usize == *index))
            .map(|(_, disk)| disk)
    }

    fn apply_disk_fault(&mut self, fault: &Fault) {
        match fault {
            Fault::DiskLostFsync { target, rate } => {
                self.target_disks(*target).for_each(|disk| disk.set_lost_fsync(*rate))
            }
            Fault::DiskTornWrite { target } => self.target_disks(*target).for_each(Disk::arm_torn_write),
            Fault::DiskCorruption { target, rate } => {
                self.target_disks(*target).for_each(|disk| disk.set_corruption(*rate))
            }
            Fault::DiskFsyncError { target } => self.target_disks(*target).for_each(Disk::arm_fsync_error),
            Fault::DiskFull { target } => self.target_disks(*target).for_each(|disk| disk.set_full(true)),
            Fault::DiskSlow { target, latency } => {
                self.target_disks(*target).for_each(|disk| disk.set_slow(Some(*latency)))
            }
            Fault::NodeCrash { .. }
            | Fault::NodeRestart { .. }
            | Fault::NodePause { .. }
            | Fault::PeerReplace { .. }
            | Fault::NetPartition { .. }
            | Fault::NetLoss { .. }
            | Fault::NetDelay { .. }
            | Fault::NetDuplicate { .. }
            | Fault::NetReorder { .. }
            | Fault::NetClog { .. }
            | Fault::ClockSkew { .. } => unreachable!("world: {fault:?} is not a disk fault"),
        }
    }

    /// Undoes one disk fault's lasting setting. One-shot faults (a torn write, an fsync error)
    /// have nothing to undo once armed; healing disarms nothing that already fired.
    fn heal_disk_fault(&mut self, fault: &Fault) {
        match fault {
            Fault::DiskLostFsync { target, .. } => self.target_disks(*target).for_each(|disk| disk.set_lost_fsync(0.0)),
            Fault::DiskCorruption { target, .. } => {
                self.target_disks(*target).for_each(|disk| disk.set_corruption(0.0))
            }
            Fault::DiskFull { target } => self.target_disks(*target).for_each(|disk| disk.set_full(false)),
            Fault::DiskSlow { target, .. } => self.target_disks(*target).for_each(|disk| disk.set_slow(None)),
            Fault::DiskTornWrite { .. } | Fault::DiskFsyncError { .. } => {}
            Fault::NodeCrash { .. }
            | Fault::NodeRestart { .. }
            | Fault::NodePause { .. }
            | Fault::PeerReplace { .. }
            | Fault::NetPartition { .. }
            | Fault::NetLoss { .. }
            | Fault::NetDelay { .. }
            | Fault::NetDuplicate { .. }
            | Fault::NetReorder { .. }
            | Fault::NetClog { .. }
            | Fault::ClockSkew { .. } => unreachable!("world: {fault:?} is not a disk fault"),
        }
    }

    /// Resolves every disk of a crashing node by the crash model and records what survived.
    fn crash_disks(&mut self, node: NodeId, now_us: u64) {
        let mut reports: Vec<CrashReport> = Vec::new();
        let World { nodes, disk_rng, .. } = self;
        for disk in &mut nodes[node as usize].disks {
            reports.push(disk.crash(disk_rng));
        }
        for (index, report) in reports.into_iter().enumerate() {
            let writes_kept = report.files.iter().map(|file| file.writes_kept).sum::<usize>() as u32;
            let writes_lost = report.files.iter().map(|file| file.writes_lost).sum::<usize>() as u32;
            let torn_writes = report.files.iter().filter(|file| file.torn.is_some()).count() as u32;
            self.record(
                now_us,
                Some(node),
                EventKind::DiskCrash {
                    disk: index as u32,
                    writes_kept,
                    writes_lost,
                    names_kept: report.directory_operations_kept as u32,
                    names_lost: report.directory_operations_lost as u32,
                    torn_writes,
                },
            );
        }
    }

    /// Writes the node's incarnation, durably, to its first disk (at creation and replacement).
    fn write_incarnation(&mut self, node: NodeId) {
        let World { nodes, disk_rng, .. } = self;
        let slot = &mut nodes[node as usize];
        let text = slot.incarnation.to_string();
        let disk = &mut slot.disks[0];
        let written = disk
            .create(INCARNATION_FILE)
            .and_then(|()| disk.write_at(INCARNATION_FILE, 0, text.as_bytes()))
            .and_then(|()| disk.fsync(INCARNATION_FILE, disk_rng))
            .and_then(|()| disk.fsync_dir(disk_rng));
        assert!(written.is_ok(), "world: could not write node {node}'s incarnation to an empty disk: {written:?}");
    }

    /// Copies a disk's silent fault events into the trace.
    fn drain_disk_events(&mut self, node: NodeId, index: u32, now_us: u64) {
        let events = self.nodes[node as usize].disks[index as usize].take_events();
        for event in events {
            let fault = event.fault();
            let detail = format!("{event:?}");
            self.record(now_us, Some(node), EventKind::DiskFault { disk: index, fault, detail });
        }
    }
}

/// One disk of a node, as its program sees it: every operation takes the model's latency in model
/// time. Writes and name changes take effect when issued (a crash during the wait resolves them
/// by the crash model); an fsync takes effect only when its wait is over, so a crash during an
/// fsync leaves the data unsynced.
pub struct NodeDisk<'a, M> {
    context: &'a NodeContext<M>,
    index: u32,
}

impl<M: Message> NodeDisk<'_, M> {
    /// Draws one operation's latency from the disk's model (including `disk_slow`).
    fn latency(&self, operation: DiskOp) -> u64 {
        let mut world = self.context.lock();
        let World { nodes, disk_rng, .. } = &mut *world;
        nodes[self.context.node as usize].disks[self.index as usize].latency_us(operation, disk_rng)
    }

    /// Runs one operation on the model under the lock and traces its silent faults and errors.
    fn act<T>(
        &self,
        operation: DiskOp,
        name: &str,
        act: impl FnOnce(&mut Disk, &mut ChaCha8Rng) -> Result<T, DiskError>,
    ) -> Result<T, DiskError> {
        let now = clock::now_us();
        let node = self.context.node;
        let mut world = self.context.lock();
        let World { nodes, disk_rng, .. } = &mut *world;
        let result = act(&mut nodes[node as usize].disks[self.index as usize], disk_rng);
        world.drain_disk_events(node, self.index, now);
        if let Err(error @ (DiskError::Full | DiskError::Io { .. })) = &result {
            let kind = EventKind::DiskError {
                disk: self.index,
                operation: format!("{operation:?} {name}"),
                error: error.to_string(),
            };
            world.record(now, Some(node), kind);
        }
        result
    }

    /// Waits the latency first, then acts (reads see the state at their end; fsyncs persist at it).
    async fn wait_then<T>(
        &self,
        operation: DiskOp,
        name: &str,
        act: impl FnOnce(&mut Disk, &mut ChaCha8Rng) -> Result<T, DiskError>,
    ) -> Result<T, DiskError> {
        clock::sleep_us(self.latency(operation)).await;
        self.act(operation, name, act)
    }

    /// Acts first, then waits the latency.
    async fn act_then_wait<T>(
        &self,
        operation: DiskOp,
        name: &str,
        act: impl FnOnce(&mut Disk, &mut ChaCha8Rng) -> Result<T, DiskError>,
    ) -> Result<T, DiskError> {
        let result = self.act(operation, name, act);
        clock::sleep_us(self.latency(operation)).await;
        result
    }

    pub async fn create(&self, name: &str) -> Result<(), DiskError> {
        self.act_then_wait(DiskOp::Metadata, name, |disk, _| disk.create(name)).await
    }

    pub async fn write_at(&self, name: &str, offset: u64, data: &[u8]) -> Result<(), DiskError> {
        self.act_then_wait(DiskOp::Write, name, |disk, _| disk.write_at(name, offset, data)).await
    }

    /// Appends and returns the offset written at.
    pub async fn append(&self, name: &str, data: &[u8]) -> Result<u64, DiskError> {
        self.act_then_wait(DiskOp::Write, name, |disk, _| disk.append(name, data)).await
    }

    /// Reads up to `length` bytes at `offset`; short at the end of the file, empty past it.
    pub async fn read(&self, name: &str, offset: u64, length: usize) -> Result<Vec<u8>, DiskError> {
        self.wait_then(DiskOp::Read, name, |disk, rng| disk.read(name, offset, length, rng)).await
    }

    /// The whole file.
    pub async fn read_all(&self, name: &str) -> Result<Vec<u8>, DiskError> {
        self.wait_then(DiskOp::Read, name, |disk, rng| {
            let length = disk.len(name)?;
            disk.read(name, 0, length as usize, rng)
        })
        .await
    }

    pub async fn len(&self, name: &str) -> Result<u64, DiskError> {
        self.wait_then(DiskOp::Metadata, name, |disk, _| disk.len(name)).await
    }

    pub async fn fsync(&self, name: &str) -> Result<(), DiskError> {
        self.wait_then(DiskOp::Fsync, name, |disk, rng| disk.fsync(name, rng)).await
    }

    pub async fn fsync_dir(&self) -> Result<(), DiskError> {
        self.wait_then(DiskOp::FsyncDir, "", |disk, rng| disk.fsync_dir(rng)).await
    }

    pub async fn rename(&self, from: &str, to: &str) -> Result<(), DiskError> {
        self.act_then_wait(DiskOp::Metadata, from, |disk, _| disk.rename(from, to)).await
    }

    pub async fn remove(&self, name: &str) -> Result<(), DiskError> {
        self.act_then_wait(DiskOp::Metadata, name, |disk, _| disk.remove(name)).await
    }

    pub async fn list(&self) -> Vec<String> {
        let listed: Result<Vec<String>, DiskError> =
            self.wait_then(DiskOp::Metadata, "", |disk, _| Ok(disk.list())).await;
        listed.unwrap_or_default()
    }
}

/// What a node's program holds: its identity, time, network, disks, randomness and the trace.
/// A new context is made at every boot; one from a previous boot is never seen again because
/// madsim drops every task of a killed node.
pub struct NodeContext<M> {
    world: Arc<Mutex<World<M>>>,
    node: NodeId,
    incarnation: u32,
    rng: std::rc::Rc<std::cell::RefCell<ChaCha8Rng>>,
}

impl<M> Clone for NodeContext<M> {
    fn clone(&self) -> Self {
        NodeContext { world: self.world.clone(), node: self.node, incarnation: self.incarnation, rng: self.rng.clone() }
    }
}

impl<M: Message> NodeContext<M> {
    fn boot(world: Arc<Mutex<World<M>>>, node: NodeId) -> NodeContext<M> {
        let now = clock::now_us();
        let (incarnation, boots, seed) = {
            let mut guard = lock(&world);
            guard.purge_inbox(node, now);
            let slot = &mut guard.nodes[node as usize];
            slot.state = NodeState::Up;
            slot.boots += 1;
            slot.waker = None;
            let result = (slot.incarnation, slot.boots, guard.config.seed);
            guard.record(now, Some(node), EventKind::NodeStart);
            result
        };
        let rng = component_rng(seed, "node", u64::from(node) << 32 | u64::from(boots));
        NodeContext { world, node, incarnation, rng: std::rc::Rc::new(std::cell::RefCell::new(rng)) }
    }

    fn lock(&self) -> MutexGuard<'_, World<M>> {
        lock(&self.world)
    }

    pub fn id(&self) -> NodeId {
        self.node
    }

    /// Bumped by every replacement; a node that finds a peer's incarnation changed must assume the
    /// peer lost everything.
    pub fn incarnation(&self) -> u32 {
        self.incarnation
    }

    pub fn node_count(&self) -> u32 {
        self.lock().nodes.len() as u32
    }

    /// True model time (for traces); protocol logic should prefer `local_time_us`.
    pub fn now_us(&self) -> u64 {
        clock::now_us()
    }

    /// This node's clock, with its skew and drift.
    pub fn local_time_us(&self) -> u64 {
        let clock = self.lock().nodes[self.node as usize].clock;
        clock.local_time_us(clock::now_us())
    }

    /// Sleeps for a duration measured by this node's (possibly drifting) clock.
    pub async fn sleep_us(&self, local_us: u64) {
        let clock = self.lock().nodes[self.node as usize].clock;
        clock::sleep_us(clock.true_duration_us(local_us)).await;
    }

    pub fn send(&self, to: NodeId, payload: M) {
        let now = clock::now_us();
        self.lock().send(now, self.node, to, payload);
    }

    /// The next message due for this node, waiting as long as it takes.
    pub fn recv(&self) -> Recv<'_, M> {
        Recv { context: self, timer: None }
    }

    /// The next message already due, if any.
    pub fn try_recv(&self) -> Option<Envelope<M>> {
        let now = clock::now_us();
        self.lock().pop_due(self.node, now)
    }

    /// A draw from this node's own generator (seeded by run seed, node and boot count).
    pub fn with_rng<T>(&self, draw: impl FnOnce(&mut ChaCha8Rng) -> T) -> T {
        draw(&mut self.rng.borrow_mut())
    }

    /// This node's disk `index` (0-based; the scenario says how many each node has).
    pub fn disk(&self, index: u32) -> NodeDisk<'_, M> {
        let count = self.lock().nodes[self.node as usize].disks.len() as u32;
        assert!(index < count, "world: node {} has {count} disks, asked for disk {index}", self.node);
        NodeDisk { context: self, index }
    }

    pub fn disk_count(&self) -> u32 {
        self.lock().nodes[self.node as usize].disks.len() as u32
    }

    /// Records an event of the system under test on this node.
    pub fn record(&self, kind: EventKind) {
        let now = clock::now_us();
        let world = self.lock();
        let incarnation = self.incarnation;
        world.trace().record(now, Some(self.node), incarnation, kind);
    }

    /// Whether the trace keeps every event; lets callers skip formatting notes nobody will read.
    pub fn tracing_everything(&self) -> bool {
        self.lock().trace().keeps_everything()
    }
}

impl<M: Message> World<M> {
    /// Pops the first message due at `now_us` for `node`, dropping those whose link is now
    /// partitioned (a partition drops what is in flight, as a real one does).
    fn pop_due(&mut self, node: NodeId, now_us: u64) -> Option<Envelope<M>> {
        loop {
            let slot = &mut self.nodes[node as usize];
            if !slot.inbox.peek().is_some_and(|top| top.deliver_at_us <= now_us) {
                return None;
            }
            let envelope = slot.inbox.pop()?.envelope;
            let index = self.link_index(envelope.from, node);
            if self.links[index].blocked {
                self.drop_message(now_us, envelope.from, node, envelope.id, DropReason::Partition);
                continue;
            }
            self.stats.delivered += 1;
            let incarnation = self.nodes[node as usize].incarnation;
            self.trace().record(
                now_us,
                Some(node),
                incarnation,
                EventKind::MessageDeliver { from: envelope.from, message: envelope.id },
            );
            return Some(envelope);
        }
    }
}

/// The future of `NodeContext::recv`: ready when a message is due; otherwise it sleeps until the
/// first queued message is due, and is woken early if an earlier one is queued meanwhile.
pub struct Recv<'a, M> {
    context: &'a NodeContext<M>,
    timer: Option<(u64, Pin<Box<madsim::time::Sleep>>)>,
}

impl<M: Message> Future for Recv<'_, M> {
    type Output = Envelope<M>;

    fn poll(mut self: Pin<&mut Self>, task: &mut Context<'_>) -> Poll<Envelope<M>> {
        loop {
            let now = clock::now_us();
            let next_due = {
                let mut world = self.context.lock();
                if let Some(envelope) = world.pop_due(self.context.node, now) {
                    return Poll::Ready(envelope);
                }
                let slot = &mut world.nodes[self.context.node as usize];
                slot.waker = Some(task.waker().clone());
                slot.inbox.peek().map(|top| top.deliver_at_us)
            };
            let Some(due_us) = next_due else {
                self.timer = None;
                return Poll::Pending;
            };
            if self.timer.as_ref().is_none_or(|(at, _)| *at != due_us) {
                self.timer = Some((due_us, Box::pin(clock::sleep_future(due_us - now))));
            }
            let Some((_, timer)) = self.timer.as_mut() else { return Poll::Pending };
            match timer.as_mut().poll(task) {
                Poll::Ready(()) => {
                    self.timer = None;
                    continue;
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
