//! The world's state: every node's slot (its program, whether it runs, its incarnation, inbox,
//! clock and disks), the links, the faults in force, the random streams and the trace, all in one
//! `World` behind one lock. The other files of `world/` each add one job's rules to `World`:
//! `transport` the network's, `disk_faults` the disks', `sim` the operator's handle and
//! `node_context` the node's face. This file holds data and the few helpers every job shares; it
//! must never decide anything about messages, disks or faults itself.
//!
//! madsim runs every task of a run on one OS thread, so the lock is never contended and exists
//! only because madsim's spawn wants `Send`. Never hold the lock across an `.await` or a call into
//! madsim that may drop tasks (kill).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::clock::NodeClock;
use super::disk::{Disk, DiskConfig};
use super::fault::{Fault, FaultId};
use super::net::{Inbox, Link, Message, NetworkConfig, NetworkStats};
use super::node_context::NodeContext;
use super::NodeId;
use crate::trace::{EventKind, SharedTrace, TraceLevel, TraceSink};

/// A node's program: called at every boot (first start, restart, after replacement) with a fresh
/// context; its future is the node's main task.
pub type Program<M> = Arc<dyn Fn(NodeContext<M>) -> Pin<Box<dyn Future<Output = ()>>> + Send + Sync>;

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

/// One node's place in the world, which outlives its boots: a restart or replacement reuses it.
pub(super) struct NodeSlot<M> {
    pub(super) name: String,
    pub(super) madsim_id: Option<madsim::task::NodeId>,
    pub(super) state: NodeState,
    pub(super) incarnation: u32,
    pub(super) boots: u32,
    pub(super) inbox: Inbox<M>,
    /// The node's `recv`, to wake when a message earlier than its timer is queued.
    pub(super) waker: Option<Waker>,
    /// The clock in force: `baseline_clock` unless a `clock_skew` fault overrides it.
    pub(super) clock: NodeClock,
    pub(super) baseline_clock: NodeClock,
    pub(super) disks: Vec<Disk>,
    pub(super) program: Program<M>,
}

/// Everything a run's world holds; one per run, behind one lock.
pub(super) struct World<M> {
    pub(super) config: WorldConfig,
    pub(super) nodes: Vec<NodeSlot<M>>,
    /// Links indexed `from * capacity + to`; `capacity` grows by doubling as nodes are added.
    pub(super) links: Vec<Link<M>>,
    pub(super) link_capacity: usize,
    pub(super) network_rng: ChaCha8Rng,
    pub(super) disk_rng: ChaCha8Rng,
    pub(super) trace: SharedTrace,
    pub(super) next_message_id: u64,
    pub(super) next_inbox_seq: u64,
    /// The faults in force, in injection order: what link and disk settings are recomputed from.
    pub(super) faults: BTreeMap<FaultId, Fault>,
    pub(super) next_fault_id: FaultId,
    /// The network's counters.
    pub(super) stats: NetworkStats,
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

/// Locks the world. A panic inside the simulation poisons the lock; the run is over by then, so
/// keep going and let the panic report itself.
pub(super) fn lock<M>(world: &Mutex<World<M>>) -> MutexGuard<'_, World<M>> {
    world.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<M: Message> World<M> {
    pub(super) fn new(config: WorldConfig) -> World<M> {
        let network_rng = component_rng(config.seed, "network", 0);
        let disk_rng = component_rng(config.seed, "disk", 0);
        let trace = TraceSink::shared(config.trace);
        World {
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
        }
    }

    pub(super) fn record(&mut self, now_us: u64, node: Option<NodeId>, kind: EventKind) {
        let incarnation = node.map_or(0, |id| self.nodes[id as usize].incarnation);
        self.trace().record(now_us, node, incarnation, kind);
    }

    pub(super) fn trace(&self) -> MutexGuard<'_, TraceSink> {
        self.trace.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
