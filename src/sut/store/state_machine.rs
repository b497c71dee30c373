//! The key-value state machine of one partition group: per partition, the data, the client-op
//! deduplication table, the owner epoch and the fence. It applies committed log entries in order
//! and answers reads; it is deterministic and knows nothing of replication, disks or time.
//!
//! Deduplication is per partition and travels with the partition's snapshot, so a retried write
//! that lands after the partition moved (or after a failover, or a rebuild from a checkpoint) is
//! recognised and answered with its first result instead of being applied again. The same table
//! remembers cancellations (`EntryKind::Cancel`): a client's op id is settled once, applied or
//! cancelled, by whichever entry the log orders first, and every later copy gets that answer.

use std::collections::BTreeMap;

use super::entry::{DedupEntry, Entry, EntryKind, Fate, Op, OpId, OpResult, PartitionSnapshot};
use super::PartitionId;

/// Why a write or read was not served by this group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Refusal {
    /// The group does not own the partition.
    NotOwner,
    /// The partition is fenced (frozen for a cut-over).
    Fenced,
    /// A newer operation of the same client was already settled in this partition: this one is a
    /// retry that arrived too late. It was not applied now and never will be (it may have been
    /// applied before).
    Stale,
    /// The operation was cancelled (its cancellation is committed in the partition's log): it was
    /// not applied and never will be.
    Cancelled,
}

/// What applying one write decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Applied now, with this result, under the partition's owner epoch.
    Applied { result: OpResult, owner_epoch: u64 },
    /// Already applied earlier (a retry): the first result, not applied again.
    Duplicate { result: OpResult },
    /// Not applied.
    Refused(Refusal),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Partition {
    owner_epoch: u64,
    fenced: bool,
    data: BTreeMap<String, String>,
    dedup: BTreeMap<u32, DedupEntry>,
}

/// The state of every partition this group holds (owned or fenced).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateMachine {
    partitions: BTreeMap<PartitionId, Partition>,
    /// Planted bug `skip_dedup`: apply every write, retries included.
    skip_dedup: bool,
}

impl StateMachine {
    pub fn new(skip_dedup: bool) -> StateMachine {
        StateMachine { partitions: BTreeMap::new(), skip_dedup }
    }

    pub fn owns(&self, partition: PartitionId) -> bool {
        self.partitions.contains_key(&partition)
    }

    pub fn owned_partitions(&self) -> Vec<PartitionId> {
        self.partitions.keys().copied().collect()
    }

    pub fn owner_epoch(&self, partition: PartitionId) -> Option<u64> {
        self.partitions.get(&partition).map(|state| state.owner_epoch)
    }

    pub fn is_fenced(&self, partition: PartitionId) -> bool {
        self.partitions.get(&partition).is_some_and(|state| state.fenced)
    }

    /// Whether a write may be appended for `partition` now (the same rule `apply` enforces, checked
    /// early so a primary does not log writes it would refuse), or the answer it already has.
    pub fn precheck(&self, partition: PartitionId, op_id: OpId) -> Result<(), WriteOutcome> {
        self.settled(partition, op_id)?;
        if self.partitions.get(&partition).is_some_and(|state| state.fenced) {
            return Err(WriteOutcome::Refused(Refusal::Fenced));
        }
        Ok(())
    }

    /// Whether a cancellation of `op_id` may be appended for `partition` now, or the answer the
    /// operation already has. A fence does not stop it: it changes no data, and it is what lets
    /// a gateway give a definite answer while a partition is frozen.
    pub fn precheck_cancel(&self, partition: PartitionId, op_id: OpId) -> Result<(), WriteOutcome> {
        self.settled(partition, op_id)
    }

    /// The answer the partition's dedup table already holds for `op_id`, if any: its result, its
    /// cancellation, or staleness (a newer op of the client is settled).
    fn settled(&self, partition: PartitionId, op_id: OpId) -> Result<(), WriteOutcome> {
        let Some(state) = self.partitions.get(&partition) else {
            return Err(WriteOutcome::Refused(Refusal::NotOwner));
        };
        if self.skip_dedup {
            return Ok(());
        }
        let Some(previous) = state.dedup.get(&op_id.client) else { return Ok(()) };
        if previous.seq > op_id.seq {
            return Err(WriteOutcome::Refused(Refusal::Stale));
        }
        if previous.seq < op_id.seq {
            return Ok(());
        }
        match &previous.fate {
            Fate::Applied(result) => Err(WriteOutcome::Duplicate { result: result.clone() }),
            Fate::Cancelled => Err(WriteOutcome::Refused(Refusal::Cancelled)),
        }
    }

    /// Applies one committed entry. Returns the outcome for writes, `None` for the rest.
    pub fn apply(&mut self, entry: &Entry) -> Option<WriteOutcome> {
        match &entry.kind {
            EntryKind::EpochStart => None,
            EntryKind::Own { owner_epoch } => {
                let partition = entry.partition.expect("store: an Own entry carries its partition");
                let state = self.partitions.entry(partition).or_default();
                state.owner_epoch = state.owner_epoch.max(*owner_epoch);
                None
            }
            EntryKind::Fence | EntryKind::Unfence => {
                let partition = entry.partition.expect("store: a fence entry carries its partition");
                if let Some(state) = self.partitions.get_mut(&partition) {
                    state.fenced = matches!(entry.kind, EntryKind::Fence);
                }
                None
            }
            EntryKind::Write { op_id, op } => {
                let partition = entry.partition.expect("store: a write entry carries its partition");
                Some(self.apply_write(partition, *op_id, op))
            }
            EntryKind::Cancel { op_id } => {
                let partition = entry.partition.expect("store: a cancel entry carries its partition");
                Some(self.apply_cancel(partition, *op_id))
            }
        }
    }

    /// Settles `op_id` as cancelled unless it is settled already; either way, what its fate is.
    fn apply_cancel(&mut self, partition: PartitionId, op_id: OpId) -> WriteOutcome {
        if let Err(outcome) = self.precheck_cancel(partition, op_id) {
            return outcome;
        }
        let state = self.partitions.get_mut(&partition).expect("precheck_cancel: the partition is owned");
        state.dedup.insert(op_id.client, DedupEntry { seq: op_id.seq, fate: Fate::Cancelled });
        WriteOutcome::Refused(Refusal::Cancelled)
    }

    fn apply_write(&mut self, partition: PartitionId, op_id: OpId, op: &Op) -> WriteOutcome {
        if let Err(outcome) = self.precheck(partition, op_id) {
            return outcome;
        }
        let state = self.partitions.get_mut(&partition).expect("precheck: the partition is owned");
        assert!(
            self.skip_dedup || !state.dedup.get(&op_id.client).is_some_and(|previous| previous.seq >= op_id.seq),
            "cancelled_never_applied: partition {partition} applying {op_id:?} over {:?}",
            state.dedup.get(&op_id.client)
        );
        let result = match op {
            Op::Get { .. } => unreachable!("store: a get was logged; reads go through the read index"),
            Op::Put { key, value } => {
                state.data.insert(key.clone(), value.clone());
                OpResult::Done
            }
            Op::Append { key, value } => {
                state.data.entry(key.clone()).or_default().push_str(value);
                OpResult::Done
            }
            Op::Cas { key, expected, new } => {
                let matches = state.data.get(key) == expected.as_ref();
                if matches {
                    state.data.insert(key.clone(), new.clone());
                }
                OpResult::Cas(matches)
            }
        };
        state.dedup.insert(op_id.client, DedupEntry { seq: op_id.seq, fate: Fate::Applied(result.clone()) });
        WriteOutcome::Applied { result, owner_epoch: state.owner_epoch }
    }

    /// A key's current value, if this group owns its partition. A fenced partition still serves
    /// reads: a fence stops writes only.
    pub fn read(&self, partition: PartitionId, key: &str) -> Result<Option<String>, Refusal> {
        let state = self.partitions.get(&partition).ok_or(Refusal::NotOwner)?;
        Ok(state.data.get(key).cloned())
    }

    pub fn snapshot(&self, partition: PartitionId) -> Option<PartitionSnapshot> {
        self.partitions.get(&partition).map(|state| PartitionSnapshot {
            partition,
            owner_epoch: state.owner_epoch,
            fenced: state.fenced,
            data: state.data.clone(),
            dedup: state.dedup.clone(),
        })
    }

    pub fn snapshot_all(&self) -> Vec<PartitionSnapshot> {
        self.partitions.keys().filter_map(|&partition| self.snapshot(partition)).collect()
    }

    /// Replaces one partition's whole state with a snapshot's.
    pub fn install(&mut self, snapshot: PartitionSnapshot) {
        self.partitions.insert(
            snapshot.partition,
            Partition {
                owner_epoch: snapshot.owner_epoch,
                fenced: snapshot.fenced,
                data: snapshot.data,
                dedup: snapshot.dedup,
            },
        );
    }

    /// Drops one partition's state (after it moved away).
    pub fn remove(&mut self, partition: PartitionId) {
        self.partitions.remove(&partition);
    }

    /// Replaces everything with these snapshots (a rebuild or a checkpoint load).
    pub fn reset(&mut self, snapshots: Vec<PartitionSnapshot>) {
        self.partitions.clear();
        for snapshot in snapshots {
            self.install(snapshot);
        }
    }

    pub fn key_count(&self) -> usize {
        self.partitions.values().map(|state| state.data.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(lsn: u64, client: u32, seq: u64, op: Op) -> Entry {
        Entry { epoch: 1, lsn, partition: Some(3), kind: EntryKind::Write { op_id: OpId { client, seq }, op } }
    }

    fn own(lsn: u64) -> Entry {
        Entry { epoch: 1, lsn, partition: Some(3), kind: EntryKind::Own { owner_epoch: 1 } }
    }

    fn put(key: &str, value: &str) -> Op {
        Op::Put { key: key.into(), value: value.into() }
    }

    fn append(key: &str, value: &str) -> Op {
        Op::Append { key: key.into(), value: value.into() }
    }

    #[test]
    fn writes_to_a_partition_the_group_does_not_own_are_refused() {
        let mut machine = StateMachine::new(false);
        assert_eq!(machine.apply(&write(1, 1, 1, put("k", "a;"))), Some(WriteOutcome::Refused(Refusal::NotOwner)));
        machine.apply(&own(2));
        assert_eq!(
            machine.apply(&write(3, 1, 1, put("k", "a;"))),
            Some(WriteOutcome::Applied { result: OpResult::Done, owner_epoch: 1 })
        );
        assert_eq!(machine.read(3, "k"), Ok(Some("a;".into())));
        assert_eq!(machine.read(4, "k"), Err(Refusal::NotOwner));
    }

    #[test]
    fn a_retried_write_is_applied_once_and_answered_with_its_first_result() {
        let mut machine = StateMachine::new(false);
        machine.apply(&own(1));
        machine.apply(&write(2, 7, 1, append("k", "a;")));
        assert_eq!(
            machine.apply(&write(3, 7, 1, append("k", "a;"))),
            Some(WriteOutcome::Duplicate { result: OpResult::Done })
        );
        assert_eq!(machine.read(3, "k"), Ok(Some("a;".into())));
        machine.apply(&write(4, 7, 2, append("k", "b;")));
        assert_eq!(machine.apply(&write(5, 7, 1, append("k", "a;"))), Some(WriteOutcome::Refused(Refusal::Stale)));
        assert_eq!(machine.read(3, "k"), Ok(Some("a;b;".into())));
    }

    #[test]
    fn skip_dedup_applies_a_retry_twice() {
        let mut machine = StateMachine::new(true);
        machine.apply(&own(1));
        machine.apply(&write(2, 7, 1, append("k", "a;")));
        machine.apply(&write(3, 7, 1, append("k", "a;")));
        assert_eq!(machine.read(3, "k"), Ok(Some("a;a;".into())));
    }

    #[test]
    fn cas_compares_with_the_current_value() {
        let mut machine = StateMachine::new(false);
        machine.apply(&own(1));
        let cas = |expected: Option<&str>, new: &str| Op::Cas {
            key: "k".into(),
            expected: expected.map(str::to_string),
            new: new.into(),
        };
        assert_eq!(
            machine.apply(&write(2, 1, 1, cas(None, "a;"))),
            Some(WriteOutcome::Applied { result: OpResult::Cas(true), owner_epoch: 1 })
        );
        assert_eq!(
            machine.apply(&write(3, 1, 2, cas(None, "b;"))),
            Some(WriteOutcome::Applied { result: OpResult::Cas(false), owner_epoch: 1 })
        );
        assert_eq!(
            machine.apply(&write(4, 1, 3, cas(Some("a;"), "c;"))),
            Some(WriteOutcome::Applied { result: OpResult::Cas(true), owner_epoch: 1 })
        );
        assert_eq!(machine.read(3, "k"), Ok(Some("c;".into())));
    }

    #[test]
    fn a_fence_stops_writes_but_not_reads_until_unfenced() {
        let mut machine = StateMachine::new(false);
        machine.apply(&own(1));
        machine.apply(&write(2, 1, 1, put("k", "a;")));
        machine.apply(&Entry { epoch: 1, lsn: 3, partition: Some(3), kind: EntryKind::Fence });
        assert_eq!(machine.apply(&write(4, 1, 2, put("k", "b;"))), Some(WriteOutcome::Refused(Refusal::Fenced)));
        assert_eq!(machine.read(3, "k"), Ok(Some("a;".into())));
        machine.apply(&Entry { epoch: 1, lsn: 5, partition: Some(3), kind: EntryKind::Unfence });
        assert!(matches!(machine.apply(&write(6, 1, 2, put("k", "b;"))), Some(WriteOutcome::Applied { .. })));
    }

    fn cancel(lsn: u64, client: u32, seq: u64) -> Entry {
        Entry { epoch: 1, lsn, partition: Some(3), kind: EntryKind::Cancel { op_id: OpId { client, seq } } }
    }

    #[test]
    fn a_cancelled_operation_is_refused_to_every_later_copy() {
        let mut machine = StateMachine::new(false);
        machine.apply(&own(1));
        assert_eq!(machine.apply(&cancel(2, 7, 1)), Some(WriteOutcome::Refused(Refusal::Cancelled)));
        // A copy of an attempt logged after the cancellation: refused, not applied.
        assert_eq!(machine.precheck(3, OpId { client: 7, seq: 1 }), Err(WriteOutcome::Refused(Refusal::Cancelled)));
        assert_eq!(machine.apply(&write(3, 7, 1, append("k", "a;"))), Some(WriteOutcome::Refused(Refusal::Cancelled)));
        assert_eq!(machine.read(3, "k"), Ok(None));
        // A second cancellation gets the same answer; the client's next op is unaffected.
        assert_eq!(machine.apply(&cancel(4, 7, 1)), Some(WriteOutcome::Refused(Refusal::Cancelled)));
        assert!(matches!(machine.apply(&write(5, 7, 2, append("k", "b;"))), Some(WriteOutcome::Applied { .. })));
        // After it, the cancelled op is stale: still never applied.
        assert_eq!(machine.apply(&write(6, 7, 1, append("k", "a;"))), Some(WriteOutcome::Refused(Refusal::Stale)));
        assert_eq!(machine.read(3, "k"), Ok(Some("b;".into())));
    }

    #[test]
    fn a_cancellation_after_the_write_applied_answers_its_result() {
        let mut machine = StateMachine::new(false);
        machine.apply(&own(1));
        machine.apply(&write(2, 7, 1, put("k", "a;")));
        assert_eq!(machine.apply(&cancel(3, 7, 1)), Some(WriteOutcome::Duplicate { result: OpResult::Done }));
        assert_eq!(machine.read(3, "k"), Ok(Some("a;".into())));
    }

    #[test]
    fn a_cancellation_passes_a_fence_and_travels_with_the_snapshot() {
        let mut source = StateMachine::new(false);
        source.apply(&own(1));
        source.apply(&Entry { epoch: 1, lsn: 2, partition: Some(3), kind: EntryKind::Fence });
        assert_eq!(source.apply(&cancel(3, 9, 4)), Some(WriteOutcome::Refused(Refusal::Cancelled)));
        let mut target = StateMachine::new(false);
        target.install(source.snapshot(3).expect("owned"));
        target.apply(&Entry { epoch: 1, lsn: 4, partition: Some(3), kind: EntryKind::Unfence });
        assert_eq!(target.apply(&write(5, 9, 4, put("k", "x;"))), Some(WriteOutcome::Refused(Refusal::Cancelled)));
        assert_eq!(target.read(3, "k"), Ok(None));
    }

    #[test]
    fn the_dedup_table_travels_with_the_partition_snapshot() {
        let mut source = StateMachine::new(false);
        source.apply(&own(1));
        source.apply(&write(2, 9, 4, put("k", "x;")));
        let snapshot = source.snapshot(3).expect("owned");
        let mut target = StateMachine::new(false);
        target.install(snapshot);
        assert_eq!(
            target.apply(&write(1, 9, 4, put("k", "x;"))),
            Some(WriteOutcome::Duplicate { result: OpResult::Done })
        );
        assert_eq!(target.read(3, "k"), Ok(Some("x;".into())));
    }
}
