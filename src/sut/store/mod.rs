//! The replicated, sharded key-value store that migrations will move partitions of.
//!
//! Who runs where (see [`Layout`]): storage nodes host one replica of each of several partition
//! groups; one config master owns membership, epochs, primaries and routing; gateways route client
//! operations; one client node runs the workload's clients (in `workload/`).
//!
//! Replication is primary-backup with epochs handed out by the master, under Raft's log rules
//! (entries tagged with their epoch, log matching, a primary commits only entries of its own epoch
//! by counting). A write is acknowledged once it is fsynced on a majority; reads go through a
//! read index confirmed by a majority. Each replica's protocol core (`replica.rs`, `master.rs`)
//! does no I/O: it takes an input and returns effects; the drivers (`node.rs`, `master.rs`'s
//! driver, `gateway.rs`) are the only code that touches the world's `NodeContext`.
//!
//! This module never imports `world` internals, `checker` or `workload`.
//!
//! # Time
//!
//! Every timer and timeout of the master, the replicas and the gateways reads its own node's
//! clock (`local_clock::LocalClock`: the node's skewed, drifting local time, never run backwards;
//! a step back is held until the clock catches up). The protocol cores take that time as their
//! `now_us` input and assert it is monotone (`clock_monotone`); traces keep true model time.
//! The clients node is the experiment's harness, not part of the store: its schedule (arrivals,
//! stop, read-back) follows true model time, and it hands each request a duration, never an
//! instant, which the gateway measures on its own clock.
//!
//! Which rules read time, and why skew and drift cannot make any of them unsafe:
//! - **Failure detection** (master): a primary silent, or not serving, for `failure_timeout` on
//!   the master's clock is replaced. A fast master or a slow primary only makes the master
//!   suspect early. Safety never rested on the suspicion being right: the new primary is chosen
//!   from a quorum of *durable promises* of a new epoch, and a deposed primary can then neither
//!   commit (a majority has promised the newer epoch and refuses its appends) nor confirm a read
//!   round (it needs a majority still on its epoch). A wrong suspicion costs an election.
//! - **Heartbeats and status reports** (replicas, every `heartbeat`), **election retries** and
//!   **view pushes** (master, every `retry` and at most once a `heartbeat`), **recovery and
//!   persist retries**: liveness only; a message sent early or late is the same message.
//! - **Serving** (primary): a primary serves only while a majority confirmed one of its rounds
//!   within `failure_timeout`, and reads waiting longer are turned away (`Unavailable`). Both only
//!   refuse; neither grants anything. A primary that wrongly thinks it is fresh still answers a
//!   read only after a round begun after the read is confirmed by a majority (the read index),
//!   which no clock can shortcut: reads use read-index rounds, not leases.
//! - **Snapshot resends** (primary, after `retry`, doubling): load only; a duplicate install of
//!   an older base is acknowledged and ignored.
//! - **Gateways**: the attempt timeout, pauses after refusals, the routing-query rate and the
//!   request's time budget. They decide when to stop trying, never what happened: a write is
//!   reported `fail` only on a committed cancellation in the partition's log (`gateway.rs`), so a
//!   gateway whose clock runs slow or fast gives up at another moment, with the same truth.
//!
//! Rules that *would* be unsafe on a clock, and are therefore not timed: reading from local state
//! under a lease (reads use rounds); deciding that a stale copy of a request can no longer apply
//! because its deadline passed (the log's cancellation decides); a new primary starting once
//! the old one's lease "must" have run out (epochs and durable promises decide); ordering writes
//! by timestamps (the log orders them). Sessions and request ids are random draws, not times.
//!
//! What the store assumes of drift: nothing, for safety. For liveness without spurious elections,
//! reports must arrive within the master's timeout: with drift at most `ρ` (a fraction),
//! `heartbeat / (1 - ρ)` plus network delay must stay below `failure_timeout / (1 + ρ)`. With the
//! default 5 ms and 25 ms that is |drift| below about 600,000 ppm (less the network's delay); at
//! the smallest ratio validation allows (`failure_timeout` just over 2 x `heartbeat`), below about
//! 330,000 ppm. A clock stepped back by more than `failure_timeout` is held still that long, so its
//! node sends no heartbeat meanwhile and its groups fail over. `store-clock-skew` does both on
//! purpose for a while (the groups fail over more; the heal phase returns to the 5% baseline).
//!
//! For the migration's holds and fence lease: a hold or a lease is a bound on *true* time taken
//! from a local one, so it needs a drift bound. Scenarios with migrations allow drift up to
//! `migration::design::CLOCK_DRIFT_MAX_PPM` (100,000 ppm) and no clock stepped back (validation
//! refuses more): a gateway spends at most 90% of a write's budget by its own clock
//! (`Design::write_budget_us`), which lasts at most the budget in true time; a step back would
//! hold `LocalClock` still and stretch a hold by the step, so it is refused rather than modelled.

pub mod codec;
pub mod entry;
pub mod gateway;
pub mod leader;
pub mod local_clock;
pub mod log;
pub mod mailbox;
pub mod master;
pub mod message;
pub mod migration;
pub mod node;
pub mod replica;
pub mod state_machine;
pub mod storage;

use serde::Serialize;

use crate::world::NodeId;

/// A partition group's id: `0..groups`.
pub type GroupId = u32;
/// A partition's id: `0..partitions`.
pub type PartitionId = u32;
/// A log sequence number within one group's log; the first entry is 1, 0 means "none".
pub type Lsn = u64;
/// A group's epoch (view) number, handed out by the master; 0 means "none yet".
pub type Epoch = u64;

/// Bugs planted on purpose (`--bug NAME`) to prove the checkers catch them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bug {
    /// Replicas acknowledge appended entries (and primaries count themselves) before the fsync.
    AckBeforeFsync,
    /// Gateways send reads to any replica, which answers from its local state at once.
    StaleLocalRead,
    /// The state machine ignores its deduplication table, so a retried write applies twice.
    SkipDedup,
    /// A migration's source logs no fence: only the gateways' holds stop writes during cut-over.
    NoSourceFence,
    /// A migration's source reads its final LSN when the freeze starts, before the fence.
    FinalLsnBeforeFence,
    /// A migration's source keeps counting what a replaced target acknowledged, and the target
    /// acknowledges what its primary logged rather than what its group holds.
    CatchupIgnoresIncarnation,
    /// A migration's source deletes the partition's data when it fences, before the handoff commits.
    CleanupBeforeCommit,
    /// Gateways hold a frozen partition's writes until released, with no bound of their own.
    UnboundedHold,
    /// Gateways forget a write's pause when an attempt aborts, so retries pause it afresh.
    AbortPauseNotCounted,
    /// Gateways report a write `fail` when its attempts were only refused, without cancelling
    /// it (the rule before the `fail` contract): a delayed copy of a refused attempt may still
    /// apply it.
    FailWithoutCancel,
    /// Gateways keep one hold for every frozen partition: while any partition is frozen, every
    /// write waits, until the last freeze is released or the longest window ends.
    SharedHoldWindow,
    /// A migration's source acts on its handoff once its primary appends it, before it commits.
    HandoffOnAppend,
    /// The master retries a migration that keeps failing with no limit on attempts.
    RetryForever,
    /// A source logs its cleanup whenever the master asks, and the purge deletes the partition
    /// whatever the group holds of it now.
    CleanupAnyHolding,
    /// A target appends chunks and entries of any stream of the partition to the copy it is
    /// building, not only those of the stream that copy came from.
    StaleStreamApplies,
    /// The master retires a drained group once its moves committed, before each target owns.
    RetireBeforeOwned,
    /// A cancellation ends running moves at once and drops the target's copy, without waiting for
    /// the source's log to decide the attempt.
    CancelSkipsSourceLog,
    /// A migration's source starts the cut-over once the target acknowledged the stream's
    /// beginning, while the target is still receiving the snapshot.
    FreezeBeforeSnapshot,
    /// The master has the source clean up once the handoff committed, before the target owns.
    CleanupBeforeOwned,
    /// A disk move's completion removes the old copy's `.ori` mark but not its files.
    DiskMoveKeepsOldCopy,
}

impl Bug {
    pub const ALL: [Bug; 20] = [
        Bug::AckBeforeFsync,
        Bug::StaleLocalRead,
        Bug::SkipDedup,
        Bug::FailWithoutCancel,
        Bug::NoSourceFence,
        Bug::FinalLsnBeforeFence,
        Bug::CatchupIgnoresIncarnation,
        Bug::CleanupBeforeCommit,
        Bug::UnboundedHold,
        Bug::AbortPauseNotCounted,
        Bug::SharedHoldWindow,
        Bug::HandoffOnAppend,
        Bug::RetryForever,
        Bug::CleanupAnyHolding,
        Bug::StaleStreamApplies,
        Bug::RetireBeforeOwned,
        Bug::CancelSkipsSourceLog,
        Bug::FreezeBeforeSnapshot,
        Bug::CleanupBeforeOwned,
        Bug::DiskMoveKeepsOldCopy,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Bug::AckBeforeFsync => "ack_before_fsync",
            Bug::StaleLocalRead => "stale_local_read",
            Bug::SkipDedup => "skip_dedup",
            Bug::NoSourceFence => "no_source_fence",
            Bug::FinalLsnBeforeFence => "final_lsn_before_fence",
            Bug::CatchupIgnoresIncarnation => "catchup_ignores_incarnation",
            Bug::CleanupBeforeCommit => "cleanup_before_commit",
            Bug::UnboundedHold => "unbounded_hold",
            Bug::AbortPauseNotCounted => "abort_pause_not_counted",
            Bug::FailWithoutCancel => "fail_without_cancel",
            Bug::SharedHoldWindow => "shared_hold_window",
            Bug::HandoffOnAppend => "handoff_on_append",
            Bug::RetryForever => "retry_forever",
            Bug::CleanupAnyHolding => "cleanup_any_holding",
            Bug::StaleStreamApplies => "stale_stream_applies",
            Bug::RetireBeforeOwned => "retire_before_owned",
            Bug::CancelSkipsSourceLog => "cancel_skips_source_log",
            Bug::FreezeBeforeSnapshot => "freeze_before_snapshot",
            Bug::CleanupBeforeOwned => "cleanup_before_owned",
            Bug::DiskMoveKeepsOldCopy => "disk_move_keeps_old_copy",
        }
    }

    pub fn from_name(name: &str) -> Option<Bug> {
        Bug::ALL.into_iter().find(|bug| bug.name() == name)
    }

    pub fn description(self) -> &'static str {
        match self {
            Bug::AckBeforeFsync => {
                "replicas acknowledge entries before fsyncing them, so a power loss can lose acknowledged writes"
            }
            Bug::StaleLocalRead => "gateways read from any replica, which answers from its local state at once",
            Bug::SkipDedup => "the state machine forgets client op ids, so a retried write applies twice",
            Bug::NoSourceFence => {
                "a migration's source logs no fence: a write that misses the gateways' hold commits at the source after the final LSN"
            }
            Bug::FinalLsnBeforeFence => {
                "a migration's source reads its final LSN before it fences, so writes that land in between miss the target"
            }
            Bug::CatchupIgnoresIncarnation => {
                "a migration's target acknowledges what its primary logged, and the source keeps counting it when that primary is replaced: entries the replaced machine lost are never sent again"
            }
            Bug::CleanupBeforeCommit => {
                "a migration's source deletes the partition's data when it fences, before the handoff commits; an abort leaves it empty"
            }
            Bug::UnboundedHold => "gateways hold a frozen partition's writes until released, with no bound of their own",
            Bug::AbortPauseNotCounted => "gateways forget a write's pause when a cut-over aborts, so a retried cut-over pauses it afresh",
            Bug::FailWithoutCancel => {
                "gateways report a write failed when its attempts were only refused, though a delayed copy may still apply it"
            }
            Bug::SharedHoldWindow => {
                "gateways keep one hold for every frozen partition: while any is frozen all writes wait, to the last release or the longest window (Vitess)"
            }
            Bug::HandoffOnAppend => {
                "a migration's source treats its handoff as committed once appended: a failover that loses it flips ownership back (Valkey)"
            }
            Bug::RetryForever => "the master retries a failing migration with no limit on attempts (Valkey)",
            Bug::CleanupAnyHolding => {
                "a source's cleanup deletes the partition whatever it holds now: a late cleanup wipes data a later move brought back (Dgraph)"
            }
            Bug::StaleStreamApplies => {
                "a target applies chunks and entries of an earlier attempt's stream to the copy it is building (TiKV)"
            }
            Bug::RetireBeforeOwned => {
                "the master retires a drained group once its moves committed, before each target owns its partitions (IoTDB)"
            }
            Bug::CancelSkipsSourceLog => {
                "a cancellation drops the target's copy at once, without the source's log deciding the attempt (Kafka)"
            }
            Bug::FreezeBeforeSnapshot => {
                "a migration's source cuts over while the target is still receiving the snapshot, so writes stall for it (CockroachDB)"
            }
            Bug::DiskMoveKeepsOldCopy => {
                "a disk move's completion removes the old copy's `.ori` mark but leaves its files on the old disk"
            }
            Bug::CleanupBeforeOwned => {
                "the source deletes its copy once the handoff committed, before the target installed it: a target crash loses the partition (TiKV)"
            }
        }
    }
}

impl std::fmt::Display for Bug {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.name())
    }
}

/// The set of planted bugs switched on for a run (empty for an honest store).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Bugs(pub Vec<Bug>);

impl Bugs {
    pub fn has(&self, bug: Bug) -> bool {
        self.0.contains(&bug)
    }
}

/// The store's timers and sizes, in model microseconds and bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoreTimers {
    /// How often a primary heartbeats its backups (and how often replicas report to the master).
    pub heartbeat_us: u64,
    /// How long the master waits without hearing from a primary before replacing it.
    pub failure_timeout_us: u64,
    /// How long one attempt of a gateway (or an election round of the master) waits for an answer.
    pub retry_us: u64,
    /// A replica checkpoints after this many applied entries, then truncates its log behind it.
    pub checkpoint_entries: u64,
    /// A log segment is closed, and a new one started, once it holds this many bytes.
    pub segment_bytes: u64,
    /// A migration's snapshot travels in chunks of at most this many bytes.
    pub snapshot_chunk_bytes: u64,
}

impl Default for StoreTimers {
    fn default() -> Self {
        StoreTimers {
            heartbeat_us: 5_000,
            failure_timeout_us: 25_000,
            retry_us: 20_000,
            checkpoint_entries: 512,
            segment_bytes: 32 * 1024,
            snapshot_chunk_bytes: 16 * 1024,
        }
    }
}

/// The store's shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoreConfig {
    /// Every storage node, those held in reserve included (the last `reserve_nodes`).
    pub storage_nodes: u32,
    /// Storage nodes that host no initial group: only groups a scale-out brings in.
    pub reserve_nodes: u32,
    pub disks_per_node: u32,
    pub groups: u32,
    pub replicas: u32,
    pub partitions: u32,
    pub gateways: u32,
    pub timers: StoreTimers,
    pub bugs: Bugs,
    /// The scenario's migrations, in `[[migrations]]` order (ids are indices).
    pub migrations: Vec<migration::MigrationSpec>,
    /// The members of the groups created for migrations, which take the ids after `groups`.
    pub new_groups: Vec<Vec<NodeId>>,
}

impl StoreConfig {
    pub fn layout(&self) -> Layout {
        Layout { storage_nodes: self.storage_nodes, gateways: self.gateways }
    }

    /// The storage nodes hosting `group`'s replicas, in preference order: replica `i` of group `g`
    /// lives on node `(g + i) % n`, `n` the storage nodes not in reserve, so groups' first replicas spread over the nodes; a
    /// group created for a migration lives where the scenario says.
    pub fn replicas_of(&self, group: GroupId) -> Vec<NodeId> {
        if group >= self.groups {
            return self.new_groups[(group - self.groups) as usize].clone();
        }
        let serving = self.storage_nodes - self.reserve_nodes;
        (0..self.replicas).map(|index| (group + index) % serving).collect()
    }

    /// Every group: the initial ones, then those created for migrations.
    pub fn group_count(&self) -> u32 {
        self.groups + self.new_groups.len() as u32
    }

    /// The groups with a replica on storage node `node`.
    pub fn groups_on(&self, node: NodeId) -> Vec<GroupId> {
        (0..self.group_count()).filter(|&group| self.replicas_of(group).contains(&node)).collect()
    }

    /// The group that owns `partition` when the store starts: partitions are dealt round-robin.
    pub fn initial_group_of(&self, partition: PartitionId) -> GroupId {
        partition % self.groups
    }

    /// The disk of a storage node that holds `group`'s files.
    pub fn disk_of(&self, group: GroupId) -> u32 {
        group % self.disks_per_node.max(1)
    }
}

/// Which world node plays which role. Storage nodes come first (`0..storage_nodes`), then the
/// master, then the gateways, then the one node that runs every client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Layout {
    pub storage_nodes: u32,
    pub gateways: u32,
}

impl Layout {
    pub fn master(&self) -> NodeId {
        self.storage_nodes
    }

    pub fn gateway(&self, index: u32) -> NodeId {
        self.storage_nodes + 1 + index
    }

    pub fn gateway_index(&self, node: NodeId) -> Option<u32> {
        (node > self.storage_nodes && node <= self.storage_nodes + self.gateways).then(|| node - self.storage_nodes - 1)
    }

    pub fn clients(&self) -> NodeId {
        self.storage_nodes + 1 + self.gateways
    }

    pub fn node_count(&self) -> u32 {
        self.storage_nodes + self.gateways + 2
    }

    /// The role name of a node, for traces and node names.
    pub fn role(&self, node: NodeId) -> String {
        if node < self.storage_nodes {
            format!("storage{node}")
        } else if node == self.master() {
            "master".to_string()
        } else if let Some(index) = self.gateway_index(node) {
            format!("gateway{index}")
        } else {
            "clients".to_string()
        }
    }
}

/// The partition a key belongs to: a stable hash of the key, modulo the partition count. Stable
/// across Rust releases and machines (not `DefaultHasher`), since partitions appear in traces.
pub fn partition_of(key: &str, partitions: u32) -> PartitionId {
    let mut hasher = crate::trace::TraceHasher::default();
    hasher.text(key);
    (hasher.finish() % u64::from(partitions.max(1))) as PartitionId
}
