//! What a group's log holds and what its state machine answers: client operations and their
//! results, log entries (each carrying its partition), and per-partition snapshots.
//!
//! Plain data with serde derives (entries go to disk through `codec`, snapshots over the network);
//! no behaviour beyond naming.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Epoch, Lsn, PartitionId};
use crate::trace::OpFunction;

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
    Write { op_id: OpId, op: Op },
    /// The group owns the partition from here on, under `owner_epoch`.
    Own { owner_epoch: u64 },
    /// Writes to the partition are refused from here on (cut-over's freeze).
    Fence,
    /// Lifts a fence.
    Unfence,
    /// A gateway gave up on the client operation `op_id`: unless it was applied before this
    /// entry, it never will be. Recorded in the partition's dedup table (`Fate::Cancelled`), so
    /// every copy of any attempt of it that is logged later is refused, and the answer travels
    /// with the partition's snapshot. This is what a gateway's `fail` rests on.
    Cancel { op_id: OpId },
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
            EntryKind::Cancel { .. } => 12,
            EntryKind::EpochStart | EntryKind::Own { .. } | EntryKind::Fence | EntryKind::Unfence => 8,
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

/// One partition's whole state: data, deduplication table, ownership and fence. This is what a
/// checkpoint holds per partition and what a migration (later) ships.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionSnapshot {
    pub partition: PartitionId,
    pub owner_epoch: u64,
    pub fenced: bool,
    pub data: BTreeMap<String, String>,
    pub dedup: BTreeMap<u32, DedupEntry>,
}

impl PartitionSnapshot {
    pub fn size_bytes(&self) -> u32 {
        let data: usize = self.data.iter().map(|(key, value)| key.len() + value.len() + 8).sum();
        (32 + data + self.dedup.len() * 24) as u32
    }
}
