//! The key-value state machine of one partition group: per partition, what the group holds of it
//! (owned, possibly fenced; an incoming copy; a forwarding stub; or retired), its data, its
//! client-op deduplication table and how recent migration attempts ended. It applies committed log
//! entries in order and answers reads; it is deterministic and knows nothing of replication, disks
//! or time.
//!
//! Deduplication is per partition and travels with the partition, so a retried write that lands
//! after the partition moved (or after a failover, or a rebuild from a checkpoint) is recognised
//! and answered with its first result instead of being applied again. The same table remembers
//! cancellations (`EntryKind::Cancel`): a client's op id is settled once, applied or cancelled, by
//! whichever entry the log orders first, and every later copy gets that answer.
//!
//! A migration's target applies the source's entries of the partition to its incoming copy with
//! the very rules the source applied them with, fence included, so after the same entries both
//! copies are equal; the handoff carries the source's digest and the target asserts it.

use std::collections::BTreeMap;

use super::entry::{DedupEntry, Entry, EntryKind, Fate, Holding, Incoming, Op, OpId, OpResult, PartitionSnapshot};
use super::migration::messages::{AttemptOutcome, HandoffSeal, MigrationRef, ShippedEntry, ShippedKind, SnapshotChunk};
use super::{GroupId, PartitionId};
use crate::vocabulary::PartitionStatus;

/// How many attempt outcomes a partition remembers: enough for the master to read the current
/// attempt's after any number of retries of the report.
const OUTCOMES_KEPT: usize = 8;

/// Why a write or read was not served by this group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Refusal {
    /// The group does not own the partition.
    NotOwner,
    /// The partition is fenced for a migration's cut-over.
    Fenced(MigrationRef),
    /// A newer operation of the same client was already settled in this partition: this one is a
    /// retry that arrived too late. It was not applied now and never will be (it may have been
    /// applied before).
    Stale,
    /// The operation was cancelled (its cancellation is committed in the partition's log): it was
    /// not applied and never will be.
    Cancelled,
    /// The partition moved to `to`: the group keeps a forwarding stub.
    Moved { to: GroupId, migration: MigrationRef },
    /// The group is receiving the partition and does not own it yet.
    Incoming(MigrationRef),
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

/// A partition whose holding changed, for the replica to report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionChange {
    pub partition: PartitionId,
    pub status: PartitionStatus,
    pub owner_epoch: u64,
    pub keys: u32,
    pub migration: Option<MigrationRef>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Partition {
    holding: Holding,
    data: BTreeMap<String, String>,
    dedup: BTreeMap<u32, DedupEntry>,
    outcomes: Vec<(MigrationRef, AttemptOutcome)>,
    begun: Option<MigrationRef>,
}

impl Partition {
    fn status(&self) -> PartitionStatus {
        self.holding.status()
    }
}

/// The state of every partition this group holds or held.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateMachine {
    partitions: BTreeMap<PartitionId, Partition>,
    /// Planted bug `skip_dedup`: apply every write, retries included.
    skip_dedup: bool,
    /// Planted bug `cleanup_before_commit`: a purge also empties a partition still owned (fenced).
    purge_while_fenced: bool,
    /// Planted bug `cleanup_any_holding`: a purge empties the partition whatever it holds.
    purge_any_holding: bool,
    /// Holdings changed by `apply` since the replica last took them.
    changes: Vec<PartitionChange>,
}

impl StateMachine {
    pub fn new(skip_dedup: bool) -> StateMachine {
        StateMachine {
            partitions: BTreeMap::new(),
            skip_dedup,
            purge_while_fenced: false,
            purge_any_holding: false,
            changes: Vec::new(),
        }
    }

    /// Plants `cleanup_before_commit`.
    pub fn with_purge_while_fenced(mut self, purge_while_fenced: bool) -> StateMachine {
        self.purge_while_fenced = purge_while_fenced;
        self
    }

    /// Plants `cleanup_any_holding`.
    pub fn with_purge_any_holding(mut self, purge_any_holding: bool) -> StateMachine {
        self.purge_any_holding = purge_any_holding;
        self
    }

    /// Whether the group owns the partition (fenced or not).
    pub fn owns(&self, partition: PartitionId) -> bool {
        self.partitions.get(&partition).is_some_and(|state| matches!(state.holding, Holding::Owned { .. }))
    }

    /// Whether the group ever held the partition (a new primary claims ownership of its initial
    /// partitions only if not: a partition that moved away, or whose copy was dropped, is not
    /// claimed again).
    pub fn ever_held(&self, partition: PartitionId) -> bool {
        self.partitions.contains_key(&partition)
    }

    pub fn owned_partitions(&self) -> Vec<PartitionId> {
        self.partitions
            .iter()
            .filter(|(_, state)| matches!(state.holding, Holding::Owned { .. }))
            .map(|(&p, _)| p)
            .collect()
    }

    pub fn owner_epoch(&self, partition: PartitionId) -> Option<u64> {
        match self.partitions.get(&partition)?.holding {
            Holding::Owned { owner_epoch, .. } => Some(owner_epoch),
            Holding::Incoming(_) | Holding::Stub { .. } | Holding::Retired => None,
        }
    }

    /// The migration attempt fencing the partition, if any.
    pub fn fence(&self, partition: PartitionId) -> Option<MigrationRef> {
        match self.partitions.get(&partition)?.holding {
            Holding::Owned { fence, .. } => fence,
            Holding::Incoming(_) | Holding::Stub { .. } | Holding::Retired => None,
        }
    }

    pub fn is_fenced(&self, partition: PartitionId) -> bool {
        self.fence(partition).is_some()
    }

    pub fn holding(&self, partition: PartitionId) -> Option<&Holding> {
        self.partitions.get(&partition).map(|state| &state.holding)
    }

    pub fn incoming(&self, partition: PartitionId) -> Option<&Incoming> {
        match &self.partitions.get(&partition)?.holding {
            Holding::Incoming(incoming) => Some(incoming),
            Holding::Owned { .. } | Holding::Stub { .. } | Holding::Retired => None,
        }
    }

    /// The attempt begun here and not ended, if any.
    pub fn begun(&self, partition: PartitionId) -> Option<MigrationRef> {
        self.partitions.get(&partition).and_then(|state| state.begun)
    }

    /// How recent attempts to move the partition away from this group ended.
    pub fn outcomes(&self, partition: PartitionId) -> &[(MigrationRef, AttemptOutcome)] {
        self.partitions.get(&partition).map_or(&[], |state| &state.outcomes)
    }

    /// Every partition with migration state worth reporting to the master.
    pub fn migration_partitions(&self) -> Vec<PartitionId> {
        self.partitions
            .iter()
            .filter(|(_, state)| {
                !matches!(state.holding, Holding::Retired)
                    && (!state.outcomes.is_empty()
                        || state.begun.is_some()
                        || !matches!(state.holding, Holding::Owned { fence: None, .. }))
            })
            .map(|(&partition, _)| partition)
            .collect()
    }

    pub fn status(&self, partition: PartitionId) -> PartitionStatus {
        self.partitions.get(&partition).map_or(PartitionStatus::Absent, Partition::status)
    }

    /// Whether a write may be appended for `partition` now (the same rule `apply` enforces, checked
    /// early so a primary does not log writes it would refuse), or the answer it already has.
    pub fn precheck(&self, partition: PartitionId, op_id: OpId) -> Result<(), WriteOutcome> {
        let fence = self.holding_check(partition)?;
        Self::dedup_check(&self.partitions[&partition], op_id, self.skip_dedup)?;
        if let Some(migration) = fence {
            return Err(WriteOutcome::Refused(Refusal::Fenced(migration)));
        }
        Ok(())
    }

    /// Whether a cancellation of `op_id` may be appended for `partition` now, or the answer the
    /// operation already has. A fence stops it as it stops a write: between the fence and the
    /// attempt's decision the partition's log takes nothing the target would lack (F is the
    /// fence's own LSN), so the gateway cancels once the attempt is decided: at the source again
    /// after an abort, or, after a handoff, at the new owner (a moved partition answers `Moved`),
    /// where the op's fate travelled.
    pub fn precheck_cancel(&self, partition: PartitionId, op_id: OpId) -> Result<(), WriteOutcome> {
        let fence = self.holding_check(partition)?;
        Self::dedup_check(&self.partitions[&partition], op_id, self.skip_dedup)?;
        if let Some(migration) = fence {
            return Err(WriteOutcome::Refused(Refusal::Fenced(migration)));
        }
        Ok(())
    }

    /// The partition's fence if the group owns it, or why the group does not serve it.
    fn holding_check(&self, partition: PartitionId) -> Result<Option<MigrationRef>, WriteOutcome> {
        let Some(state) = self.partitions.get(&partition) else {
            return Err(WriteOutcome::Refused(Refusal::NotOwner));
        };
        match state.holding {
            Holding::Owned { fence, .. } => Ok(fence),
            Holding::Incoming(incoming) => Err(WriteOutcome::Refused(Refusal::Incoming(incoming.migration))),
            Holding::Stub { to_group, migration, .. } => {
                Err(WriteOutcome::Refused(Refusal::Moved { to: to_group, migration }))
            }
            Holding::Retired => Err(WriteOutcome::Refused(Refusal::NotOwner)),
        }
    }

    /// The answer the partition's dedup table already holds for `op_id`, if any: its result, its
    /// cancellation, or staleness (a newer op of the client is settled).
    fn dedup_check(state: &Partition, op_id: OpId, skip_dedup: bool) -> Result<(), WriteOutcome> {
        if skip_dedup {
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
        let Some(partition) = entry.partition else {
            assert!(matches!(entry.kind, EntryKind::EpochStart), "entry_has_partition: {entry:?}");
            return None;
        };
        match &entry.kind {
            EntryKind::EpochStart => unreachable!("an epoch start carries no partition"),
            EntryKind::Write { op_id, op } => Some(self.apply_write(partition, *op_id, op)),
            EntryKind::Own { owner_epoch } => {
                let state = self.partitions.entry(partition).or_insert_with(|| Partition {
                    holding: Holding::Retired,
                    data: BTreeMap::new(),
                    dedup: BTreeMap::new(),
                    outcomes: Vec::new(),
                    begun: None,
                });
                assert!(
                    matches!(state.holding, Holding::Retired) && state.data.is_empty(),
                    "own_only_unheld_partitions: partition {partition} is {:?}",
                    state.holding
                );
                state.holding = Holding::Owned { owner_epoch: *owner_epoch, fence: None };
                self.changed(partition);
                None
            }
            EntryKind::Fence { migration, .. } => {
                let state = self.partitions.get_mut(&partition);
                let Some(Partition { holding: Holding::Owned { fence, .. }, .. }) = state else {
                    panic!("fence_on_owned_partition: partition {partition} is not owned at LSN {}", entry.lsn)
                };
                assert!(
                    fence.is_none(),
                    "one_fence_at_a_time: partition {partition} fenced by {fence:?} and {migration:?}"
                );
                *fence = Some(*migration);
                self.changed(partition);
                None
            }
            EntryKind::Unfence { migration, reason } => {
                let state = self.partitions.get_mut(&partition).expect("unfence_on_held_partition");
                if let Holding::Owned { fence, .. } = &mut state.holding {
                    if *fence == Some(*migration) {
                        *fence = None;
                        remember(&mut state.outcomes, &mut state.begun, *migration, AttemptOutcome::Aborted(*reason));
                        self.changed(partition);
                    }
                }
                None
            }
            EntryKind::AttemptBegin { migration } => {
                if let Some(state) = self.partitions.get_mut(&partition) {
                    if !state.outcomes.iter().any(|(known, _)| known == migration) {
                        state.begun = Some(*migration);
                    }
                }
                None
            }
            EntryKind::AttemptAbort { migration, reason } => {
                if let Some(state) = self.partitions.get_mut(&partition) {
                    remember(&mut state.outcomes, &mut state.begun, *migration, AttemptOutcome::Aborted(*reason));
                    self.changed(partition);
                }
                None
            }
            EntryKind::Handoff { migration, to_group, owner_epoch, .. } => {
                let state = self.partitions.get_mut(&partition).expect("handoff_on_held_partition");
                let Holding::Owned { fence, owner_epoch: current } = state.holding else {
                    panic!("handoff_from_owner: partition {partition} is {:?} at LSN {}", state.holding, entry.lsn)
                };
                assert_eq!(
                    fence,
                    Some(*migration),
                    "handoff_follows_its_fence: partition {partition} at LSN {}",
                    entry.lsn
                );
                assert!(
                    *owner_epoch > current,
                    "owner_epoch_grows: handoff of partition {partition} to {owner_epoch} from {current}"
                );
                state.holding = Holding::Stub { to_group: *to_group, migration: *migration, owner_epoch: *owner_epoch };
                remember(&mut state.outcomes, &mut state.begun, *migration, AttemptOutcome::Committed);
                self.changed(partition);
                None
            }
            EntryKind::Purge { migration } => {
                let purge_while_fenced = self.purge_while_fenced;
                let purge_any_holding = self.purge_any_holding;
                if let Some(state) = self.partitions.get_mut(&partition) {
                    let fenced_by_it =
                        matches!(state.holding, Holding::Owned { fence: Some(fence), .. } if fence == *migration);
                    if matches!(state.holding, Holding::Stub { migration: stub, .. } if stub == *migration)
                        || (purge_while_fenced && fenced_by_it)
                        || purge_any_holding
                    {
                        state.data.clear();
                        state.dedup.clear();
                        self.changed(partition);
                    }
                }
                None
            }
            EntryKind::Unstub { migration } => {
                if let Some(state) = self.partitions.get_mut(&partition) {
                    if matches!(state.holding, Holding::Stub { migration: stub, .. } if stub == *migration) {
                        *state = retired();
                        self.changed(partition);
                    }
                }
                None
            }
            EntryKind::IncomingBegin {
                migration,
                stream,
                source_group,
                base_lsn,
                owner_epoch,
                chunks,
                dedup,
                handoff,
            } => {
                let state = self.partitions.entry(partition).or_insert_with(retired);
                let replaceable = match &state.holding {
                    Holding::Retired | Holding::Stub { .. } => true,
                    Holding::Incoming(incoming) => (incoming.migration, incoming.stream) != (*migration, *stream),
                    Holding::Owned { .. } => false,
                };
                assert!(replaceable, "incoming_only_where_not_owned: partition {partition} is {:?}", state.holding);
                *state = Partition {
                    holding: Holding::Incoming(Incoming {
                        migration: *migration,
                        stream: *stream,
                        source_group: *source_group,
                        base_lsn: *base_lsn,
                        owner_epoch: *owner_epoch,
                        chunks_total: *chunks,
                        chunks_applied: 0,
                        source_lsn: *base_lsn,
                        fenced: false,
                        handoff: *handoff,
                    }),
                    data: BTreeMap::new(),
                    dedup: dedup.iter().cloned().collect(),
                    outcomes: Vec::new(),
                    begun: None,
                };
                self.changed(partition);
                None
            }
            EntryKind::IncomingChunk { migration, stream, chunk } => {
                // A chunk of a copy that was dropped, or replaced by a newer stream, while it was
                // on its way through the log is stale: nothing to apply it to.
                let Some(state) = self.partitions.get_mut(&partition) else { return None };
                let Holding::Incoming(incoming) = &mut state.holding else { return None };
                if (incoming.migration, incoming.stream) != (*migration, *stream) {
                    return None;
                }
                assert_eq!(chunk.index, incoming.chunks_applied, "chunks_in_order: partition {partition}");
                assert_eq!(
                    chunk.checksum,
                    chunk_checksum(&chunk.data),
                    "chunk_checksum_verified: partition {partition} chunk {}",
                    chunk.index
                );
                incoming.chunks_applied += 1;
                let complete = incoming.chunks_applied == incoming.chunks_total;
                let handoff = incoming.handoff;
                state.data.extend(chunk.data.iter().cloned());
                if complete {
                    if let Some(seal) = handoff {
                        Self::seal(partition, state, seal, incoming_base(state));
                    }
                    self.changed(partition);
                }
                None
            }
            EntryKind::IncomingEntry { migration, stream, entry: shipped } => {
                self.apply_shipped(partition, *migration, *stream, shipped);
                None
            }
            EntryKind::IncomingDrop { migration } => {
                if let Some(state) = self.partitions.get_mut(&partition) {
                    if let Holding::Incoming(incoming) = &state.holding {
                        if incoming.migration.id == migration.id && incoming.migration.attempt <= migration.attempt {
                            *state = retired();
                            self.changed(partition);
                        }
                    }
                }
                None
            }
            EntryKind::Cancel { op_id } => Some(self.apply_cancel(partition, *op_id)),
        }
    }

    /// A source entry on the incoming copy: applied exactly as the source applied it.
    fn apply_shipped(&mut self, partition: PartitionId, migration: MigrationRef, stream: u64, shipped: &ShippedEntry) {
        let skip_dedup = self.skip_dedup;
        // An entry of a copy dropped or replaced while it was on its way through the log is stale.
        let Some(state) = self.partitions.get_mut(&partition) else { return };
        let Holding::Incoming(incoming) = &mut state.holding else { return };
        if (incoming.migration, incoming.stream) != (migration, stream) {
            return;
        }
        assert_eq!(incoming.chunks_applied, incoming.chunks_total, "entries_after_the_snapshot: partition {partition}");
        assert_eq!(
            shipped.prev_source_lsn, incoming.source_lsn,
            "target_never_appends_past_a_gap: partition {partition} entry {} follows {}, the copy holds {}",
            shipped.source_lsn, shipped.prev_source_lsn, incoming.source_lsn
        );
        incoming.source_lsn = shipped.source_lsn;
        match &shipped.kind {
            ShippedKind::Write { op_id, op } => {
                let fenced = incoming.fenced;
                if Self::dedup_check(state, *op_id, skip_dedup).is_ok() && !fenced {
                    let result = write_data(&mut state.data, op);
                    state.dedup.insert(op_id.client, DedupEntry { seq: op_id.seq, fate: Fate::Applied(result) });
                }
            }
            ShippedKind::Cancel { op_id } => {
                // As the source: a cancellation passes a fence.
                if Self::dedup_check(state, *op_id, skip_dedup).is_ok() {
                    state.dedup.insert(op_id.client, DedupEntry { seq: op_id.seq, fate: Fate::Cancelled });
                }
            }
            ShippedKind::Fence => incoming.fenced = true,
            ShippedKind::Unfence => incoming.fenced = false,
            ShippedKind::Handoff { owner_epoch, digest } => {
                Self::seal(
                    partition,
                    state,
                    HandoffSeal { owner_epoch: *owner_epoch, digest: *digest },
                    shipped.source_lsn,
                );
                self.changed(partition);
            }
        }
    }

    /// The handoff reached the copy: it must equal the source's state, and becomes the owner.
    fn seal(partition: PartitionId, state: &mut Partition, seal: HandoffSeal, source_lsn: u64) {
        assert_eq!(
            digest_of(&state.data, &state.dedup),
            seal.digest,
            "target_copy_matches_source: partition {partition} at source LSN {source_lsn}"
        );
        state.holding = Holding::Owned { owner_epoch: seal.owner_epoch, fence: None };
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
        let Holding::Owned { owner_epoch, .. } = state.holding else {
            unreachable!("precheck: the partition is owned")
        };
        assert!(
            self.skip_dedup || !state.dedup.get(&op_id.client).is_some_and(|previous| previous.seq >= op_id.seq),
            "cancelled_never_applied: partition {partition} applying {op_id:?} over {:?}",
            state.dedup.get(&op_id.client)
        );
        let result = write_data(&mut state.data, op);
        state.dedup.insert(op_id.client, DedupEntry { seq: op_id.seq, fate: Fate::Applied(result.clone()) });
        WriteOutcome::Applied { result, owner_epoch }
    }

    /// A key's current value, if this group owns its partition. A fenced partition still serves
    /// reads: a fence stops writes only.
    pub fn read(&self, partition: PartitionId, key: &str) -> Result<Option<String>, Refusal> {
        let state = self.partitions.get(&partition).ok_or(Refusal::NotOwner)?;
        match state.holding {
            Holding::Owned { .. } => Ok(state.data.get(key).cloned()),
            Holding::Incoming(incoming) => Err(Refusal::Incoming(incoming.migration)),
            Holding::Stub { to_group, migration, .. } => Err(Refusal::Moved { to: to_group, migration }),
            Holding::Retired => Err(Refusal::NotOwner),
        }
    }

    /// A digest of an owned partition's data and deduplication table, as a handoff carries it.
    pub fn digest(&self, partition: PartitionId) -> Option<u64> {
        self.partitions.get(&partition).map(|state| digest_of(&state.data, &state.dedup))
    }

    pub fn snapshot(&self, partition: PartitionId) -> Option<PartitionSnapshot> {
        self.partitions.get(&partition).map(|state| PartitionSnapshot {
            partition,
            holding: state.holding,
            data: state.data.clone(),
            dedup: state.dedup.clone(),
            outcomes: state.outcomes.clone(),
            begun: state.begun,
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
                holding: snapshot.holding,
                data: snapshot.data,
                dedup: snapshot.dedup,
                outcomes: snapshot.outcomes,
                begun: snapshot.begun,
            },
        );
    }

    /// Replaces everything with these snapshots (a rebuild or a checkpoint load).
    pub fn reset(&mut self, snapshots: Vec<PartitionSnapshot>) {
        self.partitions.clear();
        for snapshot in snapshots {
            self.install(snapshot);
        }
    }

    /// How many keys the group holds of the partition.
    pub fn status_keys(&self, partition: PartitionId) -> usize {
        self.partitions.get(&partition).map_or(0, |state| state.data.len())
    }

    /// Every stub: partition, the attempt that moved it, where to, under which owner epoch.
    pub fn stubs(&self) -> Vec<(PartitionId, MigrationRef, GroupId, u64)> {
        self.partitions
            .iter()
            .filter_map(|(&partition, state)| match state.holding {
                Holding::Stub { to_group, migration, owner_epoch } => {
                    Some((partition, migration, to_group, owner_epoch))
                }
                Holding::Owned { .. } | Holding::Incoming(_) | Holding::Retired => None,
            })
            .collect()
    }

    pub fn key_count(&self) -> usize {
        self.partitions.values().map(|state| state.data.len()).sum()
    }

    /// Every partition's holding as it stands (a replica reports these at boot).
    pub fn all_changes(&self) -> Vec<PartitionChange> {
        self.partitions.keys().map(|&partition| self.change_of(partition)).collect()
    }

    /// The holdings `apply` changed since the last call.
    pub fn take_changes(&mut self) -> Vec<PartitionChange> {
        std::mem::take(&mut self.changes)
    }

    fn changed(&mut self, partition: PartitionId) {
        let change = self.change_of(partition);
        self.changes.push(change);
    }

    fn change_of(&self, partition: PartitionId) -> PartitionChange {
        let state = &self.partitions[&partition];
        let (owner_epoch, migration) = match state.holding {
            Holding::Owned { owner_epoch, fence } => (owner_epoch, fence),
            Holding::Incoming(incoming) => (incoming.owner_epoch, Some(incoming.migration)),
            Holding::Stub { owner_epoch, migration, .. } => (owner_epoch, Some(migration)),
            Holding::Retired => (0, None),
        };
        PartitionChange { partition, status: state.status(), owner_epoch, keys: state.data.len() as u32, migration }
    }
}

/// The source LSN an incoming copy's snapshot was taken at.
fn incoming_base(state: &Partition) -> u64 {
    match state.holding {
        Holding::Incoming(incoming) => incoming.base_lsn,
        Holding::Owned { .. } | Holding::Stub { .. } | Holding::Retired => 0,
    }
}

fn retired() -> Partition {
    Partition {
        holding: Holding::Retired,
        data: BTreeMap::new(),
        dedup: BTreeMap::new(),
        outcomes: Vec::new(),
        begun: None,
    }
}

fn remember(
    outcomes: &mut Vec<(MigrationRef, AttemptOutcome)>,
    begun: &mut Option<MigrationRef>,
    migration: MigrationRef,
    outcome: AttemptOutcome,
) {
    if *begun == Some(migration) {
        *begun = None;
    }
    if outcomes.iter().any(|(known, _)| *known == migration) {
        return;
    }
    outcomes.push((migration, outcome));
    if outcomes.len() > OUTCOMES_KEPT {
        outcomes.remove(0);
    }
}

/// Applies a write's effect to a partition's data.
fn write_data(data: &mut BTreeMap<String, String>, op: &Op) -> OpResult {
    match op {
        Op::Get { .. } => unreachable!("store: a get was logged; reads go through the read index"),
        Op::Put { key, value } => {
            data.insert(key.clone(), value.clone());
            OpResult::Done
        }
        Op::Append { key, value } => {
            data.entry(key.clone()).or_default().push_str(value);
            OpResult::Done
        }
        Op::Cas { key, expected, new } => {
            let matches = data.get(key) == expected.as_ref();
            if matches {
                data.insert(key.clone(), new.clone());
            }
            OpResult::Cas(matches)
        }
    }
}

/// The checksum a snapshot chunk carries: over its keys and values, in order.
pub fn chunk_checksum(data: &[(String, String)]) -> u64 {
    let mut hasher = crate::trace::TraceHasher::default();
    hasher.word(data.len() as u64);
    for (key, value) in data {
        hasher.text(key);
        hasher.text(value);
    }
    hasher.finish()
}

/// A digest of a partition's data and deduplication table.
fn digest_of(data: &BTreeMap<String, String>, dedup: &BTreeMap<u32, DedupEntry>) -> u64 {
    let mut hasher = crate::trace::TraceHasher::default();
    hasher.word(data.len() as u64);
    for (key, value) in data {
        hasher.text(key);
        hasher.text(value);
    }
    hasher.word(dedup.len() as u64);
    for (client, entry) in dedup {
        hasher.word(u64::from(*client));
        hasher.word(entry.seq);
        hasher.text(&format!("{:?}", entry.fate));
    }
    hasher.finish()
}

/// Splits a partition's data into chunks of at most `chunk_bytes` each (a key larger than that is
/// a chunk of its own), each with its checksum.
pub fn chunks_of(data: &BTreeMap<String, String>, chunk_bytes: usize) -> Vec<SnapshotChunk> {
    let mut chunks = Vec::new();
    let mut current: Vec<(String, String)> = Vec::new();
    let mut bytes = 0;
    for (key, value) in data {
        let size = key.len() + value.len() + 8;
        if !current.is_empty() && bytes + size > chunk_bytes {
            let data = std::mem::take(&mut current);
            chunks.push(SnapshotChunk { index: chunks.len() as u32, checksum: chunk_checksum(&data), data });
            bytes = 0;
        }
        current.push((key.clone(), value.clone()));
        bytes += size;
    }
    if !current.is_empty() || chunks.is_empty() {
        chunks.push(SnapshotChunk { index: chunks.len() as u32, checksum: chunk_checksum(&current), data: current });
    }
    chunks
}

#[cfg(test)]
#[path = "state_machine_tests.rs"]
mod tests;
