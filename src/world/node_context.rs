//! The node's face: everything a node's program may touch (`NodeContext`: its id and
//! incarnation, its clock, send and receive, its disks, its own randomness, the trace), the disk
//! handle that makes each operation take the model's latency (`NodeDisk`), and the future that
//! waits for the next due message (`Recv`). A program sees nothing else of the world: no other
//! node's state, no fault, no operator's verb.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use rand_chacha::ChaCha8Rng;

use super::clock;
use super::disk::{Disk, DiskError, DiskOp};
use super::net::{Envelope, Message};
use super::state::{component_rng, lock, NodeState, World};
use super::NodeId;
use crate::trace::EventKind;

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
    pub(super) fn boot(world: Arc<Mutex<World<M>>>, node: NodeId) -> NodeContext<M> {
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

    /// Whether the trace keeps every event. A program must never let it decide whether or what to
    /// record: every recorded event is hashed, whatever the level, and a seed's hash must be the
    /// same under `run` (history trace) and `repro` (full trace).
    #[deprecated(note = "what a node records must not depend on the trace level; record unconditionally")]
    pub fn tracing_everything(&self) -> bool {
        self.lock().trace().keeps_everything()
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
