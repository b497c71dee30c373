//! What a group's log holds and what its state machine answers: client operations and their
//! results, log entries (each carrying its partition), and per-partition snapshots.
//!
//! Plain data with serde derives (entries go to disk through `codec`, snapshots over the network);
//! no behaviour beyond naming.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::migration::messages::{AttemptOutcome, HandoffSeal, MigrationRef, ShippedEntry, ShippedKind, SnapshotChunk};
use super::{Epoch, GroupId, Lsn, PartitionId};
use crate::trace::OpFunction;
use crate::vocabulary::{AbortReason, PartitionStatus};

/// A client operation on one key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    Get {
        key: String,
    },
    Put {
        key: String,
        value: String,
    },
    /// Sets the key to `new` if it currently equals `expected` (`None`: absent).
    Cas {
        key: String,
        expected: Option<String>,
        new: String,
    },
    /// Concatenates `value` to the key (an absent key becomes `value`).
    Append {
        key: String,
        value: String,
    },
}

impl Op {
    pub fn key(&self) -> &str {
        match self {
            Op::Get { key } | Op::Put { key, .. } | Op::Cas { key, .. } | Op::Append { key, .. } => key,
        }
    }

    pub fn is_write(&self) -> bool {
        match self {
            Op::Get { .. } => false,
            Op::Put { .. } | Op::Cas { .. } | Op::Append { .. } => true,
        }
    }

    pub fn function(&self) -> OpFunction {
        match self {
            Op::Get { .. } => OpFunction::Get,
            Op::Put { .. } => OpFunction::Put,
            Op::Cas { .. } => OpFunction::Cas,
            Op::Append { .. } => OpFunction::Append,
        }
    }

    /// The invocation's `value` in migsim's history format: get null, put/append the string,
    /// cas `[expected or null, new]`.
    pub fn history_value(&self) -> serde_json::Value {
        match self {
            Op::Get { .. } => serde_json::Value::Null,
            Op::Put { value, .. } | Op::Append { value, .. } => serde_json::Value::String(value.clone()),
            Op::Cas { expected, new, .. } => serde_json::json!([expected, new]),
        }
    }

    /// Rough size on the wire, for bandwidth.
    pub fn size_bytes(&self) -> u32 {
        let text = match self {
            Op::Get { key } => key.len(),
            Op::Put { key, value } | Op::Append { key, value } => key.len() + value.len(),
            Op::Cas { key, expected, new } => key.len() + expected.as_ref().map_or(0, String::len) + new.len(),
        };
        8 + text as u32
    }
}

/// What an operation returned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpResult {
    /// A get's value (`None`: absent).
    Value(Option<String>),
    /// Whether a cas's compare succeeded.
    Cas(bool),
    /// A put or append took effect.
    Done,
}

impl OpResult {
    /// The completion's `result` in migsim's history format: get a string or null, cas a
    /// boolean, put/append null.
    pub fn history_value(&self) -> serde_json::Value {
        match self {
            OpResult::Value(Some(value)) => serde_json::Value::String(value.clone()),
            OpResult::Value(None) | OpResult::Done => serde_json::Value::Null,
            OpResult::Cas(succeeded) => serde_json::Value::Bool(*succeeded),
        }
    }
}

/// A client operation's identity: the client and its sequence number (increasing per client).
/// Retries carry the same id, which is how the state machine applies a write at most once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OpId {
    pub client: u32,
    pub seq: u64,
}

/// What a log entry does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryKind {
    /// The first entry of every epoch; a new primary serves nothing until it commits. It is the
    /// only entry without a partition.
    EpochStart,
    /// A client write (never a get: reads go through the read index, not the log).
    Write {
        op_id: OpId,
        op: Op,
    },
    /// The group owns the partition from here on, under `owner_epoch` (a group's initial
    /// partitions, claimed once by its first primary).
    Own {
        owner_epoch: u64,
    },
    // ---- a migration's source ----
    /// Writes to the partition are refused from here on (cut-over's freeze), for at most
    /// `lease_us` by the source primary's clock, unless a handoff follows.
    Fence {
        migration: MigrationRef,
        lease_us: u64,
    },
    /// Lifts the attempt's fence: the attempt aborted (the lease expired, or a new primary found
    /// the fence open). Whichever of `Unfence` and `Handoff` follows a fence first wins.
    Unfence {
        migration: MigrationRef,
        reason: AbortReason,
    },
    /// The source's primary began streaming an attempt: a successor that finds it without an
    /// end aborts it, rather than run the same attempt a second time.
    AttemptBegin {
        migration: MigrationRef,
    },
    /// An attempt that never fenced ended, aborted.
    AttemptAbort {
        migration: MigrationRef,
        reason: AbortReason,
    },
    /// The commit point: the partition belongs to `to_group` under `owner_epoch`; this group keeps
    /// a forwarding stub. `digest` is the partition's state here, which the target's copy must
    /// equal.
    Handoff {
        migration: MigrationRef,
        to_group: GroupId,
        owner_epoch: u64,
        digest: u64,
    },
    /// Cleanup: the moved partition's data goes; the stub stays.
    Purge {
        migration: MigrationRef,
    },
    /// Cleanup: every gateway routes to the new owner; the stub goes.
    Unstub {
        migration: MigrationRef,
    },
    // ---- a migration's target ----
    /// A copy of the partition starts arriving: its snapshot at the source's `base_lsn` follows
    /// in `chunks` chunks (any earlier copy is replaced).
    IncomingBegin {
        migration: MigrationRef,
        stream: u64,
        source_group: GroupId,
        base_lsn: Lsn,
        owner_epoch: u64,
        chunks: u32,
        dedup: Vec<(u32, DedupEntry)>,
        handoff: Option<HandoffSeal>,
    },
    IncomingChunk {
        migration: MigrationRef,
        stream: u64,
        chunk: SnapshotChunk,
    },
    /// One of the source's entries of the partition, applied to the copy as the source applied it.
    IncomingEntry {
        migration: MigrationRef,
        stream: u64,
        entry: ShippedEntry,
    },
    /// The attempt (or an earlier one) aborted: the copy goes.
    IncomingDrop {
        migration: MigrationRef,
    },
    /// A gateway gave up on the client operation `op_id`: unless it was applied before this
    /// entry, it never will be. Recorded in the partition's dedup table (`Fate::Cancelled`), so
    /// every copy of any attempt of it that is logged later is refused, and the answer travels
    /// with the partition's snapshot (and, shipped, to a migration's copy). This is what a
    /// gateway's `fail` rests on.
    Cancel {
        op_id: OpId,
    },
}

/// One entry of a group's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub epoch: Epoch,
    pub lsn: Lsn,
    /// `None` only for `EpochStart`.
    pub partition: Option<PartitionId>,
    pub kind: EntryKind,
}

impl Entry {
    pub fn size_bytes(&self) -> u32 {
        24 + match &self.kind {
            EntryKind::Write { op, .. } => 12 + op.size_bytes(),
            EntryKind::IncomingBegin { dedup, .. } => 48 + 24 * dedup.len() as u32,
            EntryKind::IncomingChunk { chunk, .. } => {
                16 + chunk.data.iter().map(|(key, value)| (key.len() + value.len() + 8) as u32).sum::<u32>()
            }
            EntryKind::IncomingEntry { entry, .. } => {
                32 + match &entry.kind {
                    ShippedKind::Write { op, .. } => 12 + op.size_bytes(),
                    ShippedKind::Cancel { .. } => 12,
                    ShippedKind::Fence | ShippedKind::Unfence | ShippedKind::Handoff { .. } => 16,
                }
            }
            EntryKind::Cancel { .. } => 12,
            EntryKind::EpochStart
            | EntryKind::Own { .. }
            | EntryKind::Fence { .. }
            | EntryKind::Unfence { .. }
            | EntryKind::AttemptBegin { .. }
            | EntryKind::AttemptAbort { .. }
            | EntryKind::Handoff { .. }
            | EntryKind::Purge { .. }
            | EntryKind::Unstub { .. }
            | EntryKind::IncomingDrop { .. } => 16,
        }
    }
}

/// The latest operation of one client in one partition, and what became of it, so that a retry
/// of it gets the same answer and a retry of an older one is recognised as stale.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedupEntry {
    pub seq: u64,
    pub fate: Fate,
}

/// What became of a client operation the dedup table remembers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fate {
    /// Applied, with this result.
    Applied(OpResult),
    /// Cancelled before it was applied: it never will be.
    Cancelled,
}

/// What a group holds of one partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Holding {
    /// The group owns the partition under `owner_epoch` (bumped at every handoff); a fence stops
    /// its writes during a cut-over.
    Owned { owner_epoch: u64, fence: Option<MigrationRef> },
    /// A migration's copy, arriving.
    Incoming(Incoming),
    /// The partition moved to `to_group`: requests for it are answered with where it went.
    Stub { to_group: GroupId, migration: MigrationRef, owner_epoch: u64 },
    /// The group held the partition once and holds nothing of it now.
    Retired,
}

impl Holding {
    pub fn status(&self) -> PartitionStatus {
        match self {
            Holding::Owned { fence: None, .. } => PartitionStatus::Owned,
            Holding::Owned { fence: Some(_), .. } => PartitionStatus::Fenced,
            Holding::Incoming(_) => PartitionStatus::Incoming,
            Holding::Stub { .. } => PartitionStatus::Stub,
            Holding::Retired => PartitionStatus::Absent,
        }
    }
}

/// A migration's incoming copy of a partition, at the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incoming {
    pub migration: MigrationRef,
    pub stream: u64,
    pub source_group: GroupId,
    /// The source LSN of the snapshot.
    pub base_lsn: Lsn,
    /// The partition's owner epoch at the source.
    pub owner_epoch: u64,
    pub chunks_total: u32,
    pub chunks_applied: u32,
    /// The source LSN of the last entry applied to the copy (`base_lsn` before any).
    pub source_lsn: Lsn,
    /// The source fenced the partition; the copy refuses writes as the source did.
    pub fenced: bool,
    /// The copy is of a partition already handed off: owned once complete.
    pub handoff: Option<HandoffSeal>,
}

impl Incoming {
    pub fn snapshot_complete(&self) -> bool {
        self.chunks_applied == self.chunks_total
    }
}

/// One partition's whole state: what the group holds of it, its data, its deduplication table and
/// how recent attempts to move it ended. This is what a checkpoint holds per partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionSnapshot {
    pub partition: PartitionId,
    pub holding: Holding,
    pub data: BTreeMap<String, String>,
    pub dedup: BTreeMap<u32, DedupEntry>,
    pub outcomes: Vec<(MigrationRef, AttemptOutcome)>,
    /// The attempt a source's primary began and that has not ended.
    #[serde(default)]
    pub begun: Option<MigrationRef>,
}

impl PartitionSnapshot {
    pub fn size_bytes(&self) -> u32 {
        let data: usize = self.data.iter().map(|(key, value)| key.len() + value.len() + 8).sum();
        (48 + data + self.dedup.len() * 24 + self.outcomes.len() * 16) as u32
    }
}
