//! The one event type from which traces, histories, checkers and plots all read.
//!
//! Every event the world or the system under test records goes through `TraceSink::record`, which
//! folds it into the run's 64-bit hash as it streams (a fixed binary encoding, never JSON) and keeps
//! it only when asked: events that checkers need (client ops, write ownership, migration phases) are
//! always kept; everything else is kept only when a full trace is requested (`--trace`, or a failing
//! seed replayed for its repro bundle). Two runs of one (scenario, seed) must produce equal hashes;
//! a difference is nondeterminism, exit code 4.
//!
//! This module must never read the clock or draw randomness: it records what it is given.

use serde::{Deserialize, Serialize};

mod hash_serde;

use crate::vocabulary::{AbortReason, DiskMoveState, FaultKind, GroupStatus, MigrationPhase, NodeId, PartitionStatus};

/// One thing that happened, at one model-time instant, on one node (or in the world itself, when
/// `node` is `None`: fault injection, healing).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    pub at_us: u64,
    pub node: Option<NodeId>,
    pub incarnation: u32,
    #[serde(flatten)]
    pub kind: EventKind,
    /// A few words for people (what a message says), in full traces only; never hashed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub summary: String,
}

/// Why the network dropped a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// `net_loss` or the network's base loss rate.
    Loss,
    /// A `net_partition` separates sender and receiver.
    Partition,
    /// The receiver was crashed when the message arrived.
    NodeDown,
}

/// A client operation's function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpFunction {
    Get,
    Put,
    Cas,
    Append,
}

/// How a client operation ended: `ok` (happened, with its result), `fail` (definitely not applied),
/// `info` (unknown: timed out or the client lost its connection).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Fail,
    Info,
}

/// Why a write was refused because of a migration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteRefusal {
    /// The source has fenced the partition for cut-over.
    Fenced,
    /// The partition has moved: the source's forwarding stub names its new owner.
    Moved,
}

/// Defines `EventKind`, one variant per line, each with its snake_case name and the trace level at
/// which it is kept (`History`: always, checkers read it; `Full`: only in a full trace). Adding an
/// event kind is one line here: serde gives it its JSON shape, and the hash is computed from that
/// same shape (`hash_into`), so nothing else needs to know the new variant.
macro_rules! event_kinds {
    ($(
        $(#[$meta:meta])*
        $variant:ident $({ $($body:tt)* })? = ($name:literal, $level:ident),
    )*) => {
        /// Everything that can be recorded, with one snake_case name each (`"kind"` in JSON).
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind")]
        pub enum EventKind {
            $( $(#[$meta])* #[serde(rename = $name)] $variant $({ $($body)* })?, )*
        }

        impl EventKind {
            /// Every kind's name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($name),*];

            /// The snake_case name, as in JSON traces and reports.
            pub fn name(&self) -> &'static str {
                match self {
                    $(EventKind::$variant { .. } => $name,)*
                }
            }

            /// The lowest trace level that keeps this kind.
            pub fn level(&self) -> TraceLevel {
                match self {
                    $(EventKind::$variant { .. } => TraceLevel::$level,)*
                }
            }
        }
    };
}

event_kinds! {
    // ---- the world ----
    /// A node booted (first start, restart or after replacement).
    NodeStart = ("node_start", History),
    /// A node was killed; its disks resolved what was unsynced.
    NodeCrash = ("node_crash", History),
    /// A node stalls for `duration_us` (stop-the-world).
    NodePause { duration_us: u64 } = ("node_pause", Full),
    NodeResume = ("node_resume", Full),
    /// A node's machine was swapped: disks wiped, incarnation bumped.
    PeerReplace { new_incarnation: u32 } = ("peer_replace", History),
    /// A disk resolved a crash: how many unsynced writes and directory operations survived.
    DiskCrash {
        disk: u32,
        writes_kept: u32,
        writes_lost: u32,
        names_kept: u32,
        names_lost: u32,
        torn_writes: u32,
    } = ("disk_crash", Full),
    /// A disk fault acted silently (a lost fsync, a flipped bit): the system under test was not told.
    DiskFault { disk: u32, fault: FaultKind, detail: String } = ("disk_fault", Full),
    /// A disk operation failed with an expected error (`disk_full`, an fsync error).
    DiskError { disk: u32, operation: String, error: String } = ("disk_error", Full),
    /// A fault was applied. `entry` is its `[[faults]]` entry in the scenario (when it came from
    /// one) and `selector` how that entry named its target, resolved into the nodes `detail` shows.
    FaultInject {
        fault: FaultKind,
        fault_id: u32,
        detail: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        entry: Option<u32>,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        selector: String,
    } = ("fault_inject", History),
    FaultHeal { fault: FaultKind, fault_id: u32 } = ("fault_heal", History),
    /// A scenario's fault fired but could not be applied: its selector named no node at that
    /// moment (a group with no primary yet, say).
    FaultSkip { fault: FaultKind, entry: u32, selector: String, reason: String } = ("fault_skip", History),
    /// The safety phase ended: every fault healed, crashed nodes restarted.
    HealAll = ("heal_all", History),
    /// The simulation panicked (an assertion fired): the run's last event.
    Panic { message: String, location: String } = ("panic", History),
    MessageSend { to: NodeId, message: u64, bytes: u32 } = ("message_send", Full),
    MessageDeliver { from: NodeId, message: u64 } = ("message_deliver", Full),
    MessageDrop { from: NodeId, to: NodeId, message: u64, reason: DropReason } = ("message_drop", Full),
    MessageDuplicate { to: NodeId, message: u64 } = ("message_duplicate", Full),
    // ---- the system under test ----
    /// A free-form line from the system under test, for people reading a trace.
    Note { text: String } = ("note", Full),
    OpInvoke {
        op: u64,
        client: u32,
        key: String,
        partition: u32,
        f: OpFunction,
        value: serde_json::Value,
    } = ("op_invoke", History),
    OpComplete {
        op: u64,
        client: u32,
        key: String,
        partition: u32,
        f: OpFunction,
        value: serde_json::Value,
        outcome: Outcome,
        result: serde_json::Value,
    } = ("op_complete", History),
    /// The final read-back of the heal phase read `key` and saw `value` (`None`: absent). The
    /// same read is also the ordinary `op_invoke`/`op_complete` pair of op `op`; this event marks
    /// it as the key's final state for `no_lost_write`.
    ReadBack { op: u64, key: String, value: Option<String> } = ("read_back", History),
    /// The config master made `primary` (in its boot session `session`) the primary of `group`
    /// for `epoch`, durably. Role selectors (`primary`, `secondary`) resolve from these.
    View { group: u32, epoch: u64, primary: NodeId, session: u64, members: Vec<NodeId> } = ("view", History),
    /// A group's primary applied a committed write for `partition`, which the group owns under
    /// owner epoch `epoch` (bumped each time the partition changes owner), at `lsn` in the group's
    /// log. A new primary may apply, and so record, an entry its predecessor already recorded:
    /// (group, lsn) names one write. `single_owner` reads these.
    WriteAccepted { group: u32, partition: u32, epoch: u64, lsn: u64 } = ("write_accepted", History),
    /// A gateway holds client `client`'s write `seq` because its partition is frozen for cut-over
    /// (told by the source, or refused by it). A write's pause is the time between this and its
    /// `write_released`, summed over its holds.
    WriteHeld { migration: String, attempt: u32, partition: u32, client: u32, seq: u64 } = ("write_held", History),
    /// The gateway let a held write go on (to the target, back to the source, or to the client as
    /// failed when its pause budget ran out).
    WriteReleased { migration: String, attempt: u32, partition: u32, client: u32, seq: u64 } = ("write_released", History),
    /// A gateway was told a write was refused because of a migration (it then holds it).
    WriteRefused {
        migration: String,
        attempt: u32,
        partition: u32,
        client: u32,
        seq: u64,
        reason: WriteRefusal,
    } = ("write_refused", History),
    /// The master planned migration `migration` (durably): `partition` moves from group `source`
    /// to group `target` with writes paused at most `pause_budget_us`. Role selectors
    /// (`source_primary`, `target_primary`) resolve from these.
    MigrationPlan {
        migration: String,
        partition: u32,
        source: u32,
        target: u32,
        pause_budget_us: u64,
    } = ("migration_plan", History),
    /// A migration attempt on `partition` changed phase; `reason` says why it was aborted.
    Phase {
        migration: String,
        attempt: u32,
        partition: u32,
        from: MigrationPhase,
        to: MigrationPhase,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<AbortReason>,
    } = ("phase", History),
    /// A partition's move ended for good: `done`, or `aborted` after `attempts` attempts, with the
    /// last attempt's reason. Recorded by the master once the outcome is durable.
    MigrationEnd {
        migration: String,
        partition: u32,
        attempts: u32,
        outcome: MigrationPhase,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<AbortReason>,
    } = ("migration_end", History),
    /// The master planned cluster operation `migration` (a `move`, `scale_out`, `scale_in` or
    /// `rebalance`, durably): `moves` lists each partition move as (partition, source, target), in
    /// the order they start, at most `max_concurrent` at a time. Each move also has its own
    /// `migration_plan` when it starts.
    OperationPlan { migration: String, operation: String, moves: Vec<(u32, u32, u32)>, max_concurrent: u32 } = ("operation_plan", History),
    /// An operator cancelled migration `migration`; the master took it at this moment.
    OperationCancel { migration: String } = ("operation_cancel", History),
    /// Cluster operation `migration` ended for good: `done` when every move finished (and, for a
    /// `scale_in`, its group retired), else `aborted` with the reason; `moved` of `total` moves
    /// committed.
    OperationEnd {
        migration: String,
        moved: u32,
        total: u32,
        outcome: MigrationPhase,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<AbortReason>,
    } = ("operation_end", History),
    /// The master changed a group's place in the cluster (durably): a reserve group joined, or a
    /// drained group was retired.
    GroupState { group: u32, status: GroupStatus, members: Vec<NodeId> } = ("group_state", History),
    /// A disk move (Pegasus's replica disk migration) of this storage node's replica of `group`
    /// changed state; `reason` says why a move went back to `idle` without completing.
    DiskMove {
        migration: String,
        attempt: u32,
        group: u32,
        from_disk: u32,
        to_disk: u32,
        from: DiskMoveState,
        to: DiskMoveState,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<AbortReason>,
    } = ("disk_move", History),
    /// This storage node's replica of `group` runs from `disk`; `stray_files` of the group's files
    /// lie on its other disks (a disk move's copy or old copy not yet deleted). Recorded at boot,
    /// once a crashed move is repaired, and when a disk move completes or reverts.
    ReplicaDisk { group: u32, disk: u32, stray_files: u32 } = ("replica_disk", History),
    /// This storage node deleted every file of retired group `group` and will host it no more.
    ReplicaRetired { group: u32 } = ("replica_retired", History),
    /// What a replica of `group` holds of `partition` changed (`keys`: how many keys it holds).
    /// The last one of each replica is its final state, which `cleanup` judges.
    PartitionState { group: u32, partition: u32, status: PartitionStatus, owner_epoch: u64, keys: u32 } = ("partition_state", History),
    /// The ping system: this node heard `peer` answer a ping it sent at `ping_sent_at_us`.
    Pong { peer: NodeId, ping_sent_at_us: u64 } = ("pong", History),
}

impl EventKind {
    /// Whether checkers read this kind; such events are kept even when no full trace is asked for.
    pub fn is_history(&self) -> bool {
        self.level() == TraceLevel::History
    }

    /// Feeds the event's fields into the hash, in a fixed binary encoding of its serde shape.
    fn hash_into(&self, hasher: &mut TraceHasher) {
        // The serializer below never fails: it has no I/O and accepts every serde shape.
        let _ = self.serialize(&mut hash_serde::HashSerializer { hasher });
    }
}

/// A stable 64-bit streaming hash over 64-bit words. Not `std`'s `DefaultHasher`, whose output may
/// change between Rust releases: a trace hash printed today must match a replay next year.
#[derive(Clone, Debug)]
pub struct TraceHasher {
    state: u64,
}

impl Default for TraceHasher {
    fn default() -> Self {
        TraceHasher { state: 0x6d69_6773_696d_2e31 }
    }
}

impl TraceHasher {
    #[inline]
    pub fn word(&mut self, word: u64) {
        // One multiply-xorshift round per word (the wyhash/fxhash family): cheap on the hot path of
        // message events, and every input bit reaches every output bit after `finish`.
        self.state = (self.state ^ word).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29) ^ (self.state >> 17);
    }

    pub fn text(&mut self, text: &str) {
        self.word(text.len() as u64);
        for chunk in text.as_bytes().chunks(8) {
            let mut bytes = [0u8; 8];
            bytes[..chunk.len()].copy_from_slice(chunk);
            self.word(u64::from_le_bytes(bytes));
        }
    }

    /// The final avalanche (splitmix64's finalizer).
    pub fn finish(&self) -> u64 {
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// How much of the trace a run keeps in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceLevel {
    /// Hash everything, keep only the events checkers read.
    History,
    /// Hash and keep everything (repro, `--trace`).
    Full,
}

/// Where a run's events go: the streaming hash, counters, the kept events, and the subscribers
/// that watch them as they happen (the fault engine).
pub struct TraceSink {
    level: TraceLevel,
    next_seq: u64,
    last_at_us: u64,
    hasher: TraceHasher,
    kept: Vec<Event>,
    subscribers: Vec<(fn(&EventKind) -> bool, Subscription)>,
}

impl std::fmt::Debug for TraceSink {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TraceSink")
            .field("level", &self.level)
            .field("next_seq", &self.next_seq)
            .field("kept", &self.kept.len())
            .field("subscribers", &self.subscribers.len())
            .finish()
    }
}

/// A run's trace, shared between the world that records into it and the host thread that reads
/// it afterwards, even when the simulation panicked halfway.
pub type SharedTrace = std::sync::Arc<std::sync::Mutex<TraceSink>>;

impl TraceSink {
    pub fn new(level: TraceLevel) -> TraceSink {
        TraceSink {
            level,
            next_seq: 0,
            last_at_us: 0,
            hasher: TraceHasher::default(),
            kept: Vec::new(),
            subscribers: Vec::new(),
        }
    }

    pub fn shared(level: TraceLevel) -> SharedTrace {
        std::sync::Arc::new(std::sync::Mutex::new(TraceSink::new(level)))
    }

    pub fn record(&mut self, at_us: u64, node: Option<NodeId>, incarnation: u32, kind: EventKind) {
        self.record_with_summary(at_us, node, incarnation, kind, String::new());
    }

    /// Records an event with a few words for people (what a message says). The summary is kept
    /// with the event but never hashed: it is filled only in full traces, and the hash must be the
    /// same at every trace level.
    pub fn record_with_summary(
        &mut self,
        at_us: u64,
        node: Option<NodeId>,
        incarnation: u32,
        kind: EventKind,
        summary: String,
    ) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.last_at_us = self.last_at_us.max(at_us);
        self.hasher.word(at_us);
        self.hasher.word(node.map_or(u64::MAX, u64::from) ^ u64::from(incarnation) << 40);
        kind.hash_into(&mut self.hasher);
        let watched = self.subscribers.iter().any(|(filter, _)| filter(&kind));
        if !watched && !(self.level == TraceLevel::Full || kind.is_history()) {
            return;
        }
        let event = Event { seq, at_us, node, incarnation, kind, summary };
        for (filter, subscription) in &self.subscribers {
            if filter(&event.kind) {
                subscription.push(event.clone());
            }
        }
        if self.level == TraceLevel::Full || event.kind.is_history() {
            self.kept.push(event);
        }
    }

    /// Starts watching the events `filter` selects, from now on. The subscription holds its own
    /// copies; it never changes what the trace keeps or hashes.
    pub fn subscribe(&mut self, filter: fn(&EventKind) -> bool) -> Subscription {
        let subscription = Subscription::default();
        self.subscribers.push((filter, subscription.clone()));
        subscription
    }

    /// Whether recording this kind would keep it; lets callers skip building costly events.
    pub fn keeps_everything(&self) -> bool {
        self.level == TraceLevel::Full
    }

    pub fn hash(&self) -> u64 {
        self.hasher.finish()
    }

    pub fn events_recorded(&self) -> u64 {
        self.next_seq
    }

    /// The model time of the latest event recorded.
    pub fn last_at_us(&self) -> u64 {
        self.last_at_us
    }

    /// Takes the kept events out, leaving the hash and counters; subscribers are dropped.
    pub fn take_events(&mut self) -> Vec<Event> {
        self.subscribers.clear();
        std::mem::take(&mut self.kept)
    }

    pub fn into_events(self) -> Vec<Event> {
        self.kept
    }

    pub fn events(&self) -> &[Event] {
        &self.kept
    }
}

#[derive(Default)]
struct SubscriptionState {
    events: std::collections::VecDeque<Event>,
    waker: Option<std::task::Waker>,
}

/// Events a subscriber has not read yet, in the order they were recorded. Inside a simulation
/// every task runs on one thread, so the lock is never contended; it exists because the world
/// that pushes into it must be `Send`.
#[derive(Clone, Default)]
pub struct Subscription {
    state: std::sync::Arc<std::sync::Mutex<SubscriptionState>>,
}

impl Subscription {
    fn lock(&self) -> std::sync::MutexGuard<'_, SubscriptionState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn push(&self, event: Event) {
        let mut state = self.lock();
        state.events.push_back(event);
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
    }

    /// The next unread event, if any.
    pub fn try_next(&self) -> Option<Event> {
        self.lock().events.pop_front()
    }

    /// The next event, waiting for it.
    pub async fn next(&self) -> Event {
        std::future::poll_fn(|context| {
            let mut state = self.lock();
            match state.events.pop_front() {
                Some(event) => std::task::Poll::Ready(event),
                None => {
                    state.waker = Some(context.waker().clone());
                    std::task::Poll::Pending
                }
            }
        })
        .await
    }
}

impl Event {
    /// One line for people: time, node, event name and its fields as `key=value`.
    pub fn describe(&self) -> String {
        let node = match self.node {
            Some(node) => format!("n{node}#{}", self.incarnation),
            None => "world".to_string(),
        };
        let mut fields = String::new();
        if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(&self.kind) {
            for (key, value) in map {
                if key == "kind" {
                    continue;
                }
                let text = match value {
                    serde_json::Value::String(text) => text,
                    other => other.to_string(),
                };
                fields.push(' ');
                fields.push_str(&key);
                fields.push('=');
                fields.push_str(&text);
            }
        }
        if !self.summary.is_empty() {
            fields.push_str(" summary=");
            fields.push_str(&self.summary);
        }
        format!("{:>12}  {:<8} {}{}", crate::units::format_us(self.at_us), node, self.kind.name(), fields)
    }
}

/// Writes events as JSON Lines (the trace format, and migsim's history format when filtered to ops).
pub fn write_jsonl(events: &[Event], mut out: impl std::io::Write) -> std::io::Result<()> {
    for event in events {
        serde_json::to_writer(&mut out, event)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_events_serialize_in_the_history_format() {
        let event = Event {
            seq: 12,
            at_us: 1500,
            node: Some(7),
            incarnation: 0,
            kind: EventKind::OpInvoke {
                op: 3,
                client: 1,
                key: "k12".into(),
                partition: 4,
                f: OpFunction::Put,
                value: serde_json::json!("c1-3"),
            },
            summary: String::new(),
        };
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"seq":12,"at_us":1500,"node":7,"incarnation":0,"kind":"op_invoke","op":3,"client":1,"key":"k12","partition":4,"f":"put","value":"c1-3"}"#
        );
        let back: Event = serde_json::from_str(&serde_json::to_string(&event).unwrap()).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn hash_depends_on_every_field_and_on_order() {
        let hash_of = |events: &[(u64, EventKind)]| {
            let mut sink = TraceSink::new(TraceLevel::History);
            for (at, kind) in events {
                sink.record(*at, Some(1), 0, kind.clone());
            }
            sink.hash()
        };
        let send = |message| EventKind::MessageSend { to: 2, message, bytes: 64 };
        let base = hash_of(&[(5, send(1)), (6, send(2))]);
        assert_eq!(base, hash_of(&[(5, send(1)), (6, send(2))]));
        assert_ne!(base, hash_of(&[(6, send(2)), (5, send(1))]));
        assert_ne!(base, hash_of(&[(5, send(1)), (7, send(2))]));
        assert_ne!(base, hash_of(&[(5, send(1)), (6, send(3))]));
    }

    #[test]
    fn history_level_keeps_only_what_checkers_read() {
        let mut sink = TraceSink::new(TraceLevel::History);
        sink.record(1, Some(1), 0, EventKind::MessageSend { to: 2, message: 1, bytes: 8 });
        sink.record(2, Some(1), 0, EventKind::WriteAccepted { group: 1, partition: 3, epoch: 2, lsn: 9 });
        assert_eq!(sink.events().len(), 1);
        assert_eq!(sink.events_recorded(), 2);
    }
}
