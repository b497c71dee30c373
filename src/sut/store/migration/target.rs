//! The target side of migrations, at the target group's primary: it turns the source's stream
//! into entries of its own group's log (so every replica of the group holds the copy, and holds it
//! durably before the source hears of it), never appending past a gap, and reports what its group
//! has committed of each copy.
//!
//! Volatile: what this primary has appended beyond its commit point. A new primary starts from
//! what its state machine holds (it serves only once everything its log holds has committed), so
//! nothing here needs to survive it. Sans I/O: it returns entries to append and acknowledgements.

use std::collections::BTreeMap;

use super::messages::{MigrationRef, StreamItem, TargetPosition};
use crate::sut::store::entry::{EntryKind, Holding};
use crate::sut::store::state_machine::{chunk_checksum, StateMachine};
use crate::sut::store::{Lsn, PartitionId};
use crate::vocabulary::NodeId;

/// What this primary has appended of one copy (committed or not).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Appended {
    migration: MigrationRef,
    stream: u64,
    chunks: u32,
    chunks_total: u32,
    source_lsn: Lsn,
}

/// The copies this primary is receiving.
#[derive(Clone, Debug, Default)]
pub struct TargetCopies {
    appended: BTreeMap<PartitionId, Appended>,
    /// Where each copy's acknowledgements go: the node that last streamed it.
    reply_to: BTreeMap<PartitionId, NodeId>,
    /// The position last acknowledged, so that a commit that changes nothing sends nothing.
    acknowledged: BTreeMap<PartitionId, TargetPosition>,
    /// Copies this primary logged a drop of (attempts up to this one): nothing more is appended
    /// to them, even before the drop commits.
    dropped: BTreeMap<PartitionId, MigrationRef>,
}

impl TargetCopies {
    /// What this primary has appended of the partition's copy: the state machine's committed
    /// copy, advanced by what was appended since.
    fn appended(&mut self, machine: &StateMachine, partition: PartitionId) -> Option<Appended> {
        if let Some(appended) = self.appended.get(&partition) {
            return Some(*appended);
        }
        let incoming = machine.incoming(partition)?;
        if self
            .dropped
            .get(&partition)
            .is_some_and(|dropped| dropped.id == incoming.migration.id && dropped.attempt >= incoming.migration.attempt)
        {
            return None;
        }
        let appended = Appended {
            migration: incoming.migration,
            stream: incoming.stream,
            chunks: incoming.chunks_applied,
            chunks_total: incoming.chunks_total,
            source_lsn: incoming.source_lsn,
        };
        self.appended.insert(partition, appended);
        Some(appended)
    }

    /// One stream message from the source's primary `from`: the entries to append to this
    /// group's log, in order (possibly none: a duplicate, a stale stream, a gap).
    /// `stale_stream_applies` plants that bug: chunks and entries of any stream of the partition
    /// are taken into the copy being built, as if they were its own stream's.
    #[allow(clippy::too_many_arguments)]
    pub fn on_stream(
        &mut self,
        machine: &StateMachine,
        from: NodeId,
        migration: MigrationRef,
        partition: PartitionId,
        stream: u64,
        item: StreamItem,
        stale_stream_applies: bool,
    ) -> Vec<EntryKind> {
        let ours = |copy: &Appended| stale_stream_applies || (copy.migration, copy.stream) == (migration, stream);
        self.reply_to.insert(partition, from);
        let current = self.appended(machine, partition);
        let mut appends = Vec::new();
        match item {
            StreamItem::Begin { source_group, base_lsn, owner_epoch, chunks, dedup, handoff } => {
                let ours = current.is_some_and(|copy| (copy.migration, copy.stream) == (migration, stream));
                let newer = current.is_some_and(|copy| {
                    copy.migration.id == migration.id && copy.migration.attempt > migration.attempt
                });
                let receivable = match machine.holding(partition) {
                    None | Some(Holding::Retired) | Some(Holding::Stub { .. }) | Some(Holding::Incoming(_)) => true,
                    Some(Holding::Owned { .. }) => false,
                };
                if ours || newer || !receivable {
                    return appends;
                }
                if self
                    .dropped
                    .get(&partition)
                    .is_some_and(|dropped| dropped.id == migration.id && dropped.attempt >= migration.attempt)
                {
                    return appends;
                }
                self.appended.insert(
                    partition,
                    Appended { migration, stream, chunks: 0, chunks_total: chunks, source_lsn: base_lsn },
                );
                appends.push(EntryKind::IncomingBegin {
                    migration,
                    stream,
                    source_group,
                    base_lsn,
                    owner_epoch,
                    chunks,
                    dedup,
                    handoff,
                });
            }
            StreamItem::Chunk(chunk) => {
                let Some(mut copy) = current.filter(ours) else {
                    return appends;
                };
                let (migration, stream) = (copy.migration, copy.stream);
                // In order only, and only what the source sent: a chunk whose checksum fails was
                // damaged on its way and is left for the source to send again.
                if chunk.index != copy.chunks || chunk.checksum != chunk_checksum(&chunk.data) {
                    return appends;
                }
                copy.chunks += 1;
                self.appended.insert(partition, copy);
                appends.push(EntryKind::IncomingChunk { migration, stream, chunk });
            }
            StreamItem::Entries(entries) => {
                let Some(mut copy) = current.filter(ours) else {
                    return appends;
                };
                let (migration, stream) = (copy.migration, copy.stream);
                if copy.chunks < copy.chunks_total {
                    return appends;
                }
                for entry in entries {
                    if entry.source_lsn <= copy.source_lsn {
                        continue;
                    }
                    if entry.prev_source_lsn != copy.source_lsn {
                        // A gap: something before this entry has not arrived. Never append past it.
                        break;
                    }
                    copy.source_lsn = entry.source_lsn;
                    appends.push(EntryKind::IncomingEntry { migration, stream, entry });
                }
                self.appended.insert(partition, copy);
            }
        }
        appends
    }

    /// The copy's drop is logged: nothing more is appended to it.
    pub fn dropped(&mut self, partition: PartitionId, migration: MigrationRef) {
        self.appended.remove(&partition);
        self.dropped.insert(partition, migration);
    }

    /// The copy's committed position, as the source must count it.
    pub fn position(
        machine: &StateMachine,
        partition: PartitionId,
        migration: MigrationRef,
        stream: u64,
    ) -> TargetPosition {
        match machine.holding(partition) {
            Some(Holding::Incoming(incoming)) => TargetPosition {
                stream: incoming.stream,
                chunks: incoming.chunks_applied,
                snapshot_complete: incoming.snapshot_complete(),
                source_lsn: incoming.source_lsn,
                owned: false,
            },
            // The target never owns a partition a migration moves to it before that migration's
            // handoff: owning it now means the handoff applied.
            Some(Holding::Owned { .. }) => {
                TargetPosition { stream, chunks: 0, snapshot_complete: true, source_lsn: Lsn::MAX, owned: true }
            }
            Some(Holding::Stub { .. }) | Some(Holding::Retired) | None => {
                let _ = migration;
                TargetPosition::default()
            }
        }
    }

    /// What this primary has logged of the partition's copy, committed or not (what a target that
    /// acknowledges on receipt would report; the planted bug `catchup_ignores_incarnation`).
    pub fn logged_position(&mut self, machine: &StateMachine, partition: PartitionId) -> Option<TargetPosition> {
        let copy = self.appended(machine, partition)?;
        Some(TargetPosition {
            stream: copy.stream,
            chunks: copy.chunks,
            snapshot_complete: copy.chunks == copy.chunks_total,
            source_lsn: copy.source_lsn,
            owned: false,
        })
    }

    /// The acknowledgements due after the state machine changed: each copy whose committed
    /// position moved, to the node that streams it.
    pub fn due_acks(
        &mut self,
        machine: &StateMachine,
    ) -> Vec<(NodeId, PartitionId, MigrationRef, u64, TargetPosition)> {
        let mut due = Vec::new();
        for (&partition, &node) in &self.reply_to {
            let Some(copy) = self.appended.get(&partition) else { continue };
            let position = Self::position(machine, partition, copy.migration, copy.stream);
            if self.acknowledged.get(&partition) != Some(&position) {
                due.push((node, partition, copy.migration, copy.stream, position));
            }
        }
        for (_, partition, _, _, position) in &due {
            self.acknowledged.insert(*partition, *position);
        }
        due
    }

    /// Notes an acknowledgement sent outside `due_acks` (an answer to a stream message).
    pub fn acknowledged(&mut self, partition: PartitionId, position: TargetPosition) {
        self.acknowledged.insert(partition, position);
    }
}
