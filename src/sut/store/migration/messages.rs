//! What migration participants tell each other: the master's commands to the source and target
//! primaries, the stream from source to target and its acknowledgements, the freeze and release
//! notices to gateways, and the reports primaries send the master. Plain data; the rules live
//! with the participants.

use serde::{Deserialize, Serialize};

use super::spec::MigrationId;
use crate::sut::store::entry::{DedupEntry, Op, OpId};
use crate::sut::store::{Epoch, GroupId, Lsn, PartitionId};
use crate::vocabulary::{AbortReason, MigrationPhase, NodeId, PartitionStatus};

/// One attempt of one migration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MigrationRef {
    pub id: MigrationId,
    pub attempt: u32,
}

/// How an attempt ended, as the source's log decided it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttemptOutcome {
    /// The handoff committed: the target owns the partition.
    Committed,
    Aborted(AbortReason),
}

/// The master's commands to the source group's primary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceCommand {
    /// Run attempt `migration` of moving `partition` to `target` (idempotent: resent until the
    /// primary reports the attempt).
    Start { migration: MigrationRef, partition: PartitionId, target: GroupId },
    /// End the attempt now, unless it has already ended: the source's log decides how.
    Abort { migration: MigrationRef, partition: PartitionId, reason: AbortReason },
    /// Every gateway routes the partition to its new owner: drop its data and its stub.
    Cleanup { migration: MigrationRef, partition: PartitionId },
}

/// The master's commands to the target group's primary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetCommand {
    /// The attempt (and any earlier one) aborted: drop the partial copy.
    Drop { migration: MigrationRef, partition: PartitionId },
}

/// What a group's primary reports to the master about one partition with migration state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionReport {
    pub partition: PartitionId,
    pub status: PartitionStatus,
    /// The attempt the status belongs to (the fence's, the incoming copy's, the stub's).
    pub migration: Option<MigrationRef>,
    /// How this group's log says its recent attempts as the source ended.
    pub outcomes: Vec<(MigrationRef, AttemptOutcome)>,
    /// The attempt this primary is streaming as the source, and its phase.
    pub stream: Option<(MigrationRef, MigrationPhase)>,
}

impl PartitionReport {
    pub fn absent(partition: PartitionId) -> PartitionReport {
        PartitionReport {
            partition,
            status: PartitionStatus::Absent,
            migration: None,
            outcomes: Vec::new(),
            stream: None,
        }
    }
}

/// Who a stream's peer is: a stream is bound to it, and a change means the peer may have lost
/// whatever it held that was not durable in its group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerIdentity {
    pub node: NodeId,
    pub incarnation: u32,
    pub epoch: Epoch,
    pub session: u64,
}

/// What makes a copy owned: the owner epoch and the digest the source's state had at the handoff.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffSeal {
    pub owner_epoch: u64,
    pub digest: u64,
}

/// One of the source's log entries of the partition, as shipped to the target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShippedKind {
    Write {
        op_id: OpId,
        op: Op,
    },
    /// The source fenced the partition; the copy is fenced too, so it refuses what the source
    /// refused.
    Fence,
    Unfence,
    /// A gateway's cancellation of a client operation (settled in the copy's dedup table too).
    Cancel {
        op_id: OpId,
    },
    /// The commit point: the target owns the partition under `owner_epoch`, with the digest the
    /// source's copy had at the handoff.
    Handoff {
        owner_epoch: u64,
        digest: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippedEntry {
    pub source_lsn: Lsn,
    /// The source LSN of the partition's previous entry (the snapshot's base for the first):
    /// the target appends an entry only right after that one.
    pub prev_source_lsn: Lsn,
    pub kind: ShippedKind,
}

/// A part of the partition's snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotChunk {
    pub index: u32,
    pub data: Vec<(String, String)>,
    /// Over the chunk's data: the target refuses a chunk that does not match.
    pub checksum: u64,
}

/// What the source streams to the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamItem {
    /// A new stream: the snapshot at `base_lsn` follows in `chunks` chunks.
    Begin {
        source_group: GroupId,
        base_lsn: Lsn,
        owner_epoch: u64,
        chunks: u32,
        dedup: Vec<(u32, DedupEntry)>,
        /// Set when the snapshot is of a partition already handed off (a source primary that
        /// took over after the handoff committed): the copy is owned once complete.
        handoff: Option<HandoffSeal>,
    },
    Chunk(SnapshotChunk),
    Entries(Vec<ShippedEntry>),
}

impl StreamItem {
    pub fn size_bytes(&self) -> u32 {
        match self {
            StreamItem::Begin { dedup, .. } => 48 + 24 * dedup.len() as u32,
            StreamItem::Chunk(chunk) => {
                16 + chunk.data.iter().map(|(key, value)| (key.len() + value.len() + 8) as u32).sum::<u32>()
            }
            StreamItem::Entries(entries) => entries
                .iter()
                .map(|entry| {
                    24 + match &entry.kind {
                        ShippedKind::Write { op, .. } => 12 + op.size_bytes(),
                        ShippedKind::Cancel { .. } => 12,
                        ShippedKind::Fence | ShippedKind::Unfence | ShippedKind::Handoff { .. } => 16,
                    }
                })
                .sum(),
        }
    }
}

/// What the target durably holds of one attempt's stream: committed in its log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetPosition {
    /// The stream whose copy the target holds (0: none).
    pub stream: u64,
    /// Snapshot chunks committed.
    pub chunks: u32,
    /// Whether every chunk is committed (catch-up entries apply from then on).
    pub snapshot_complete: bool,
    /// The highest source LSN applied to the copy (the snapshot's base until entries arrive).
    pub source_lsn: Lsn,
    /// The handoff applied: the target owns the partition.
    pub owned: bool,
}

/// The migration messages of the store, carried by `StoreMessage::Migration`. Those for a
/// replica name its group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MigrationMessage {
    /// Source primary to target primary (`group`), from `source_group`.
    Stream {
        group: GroupId,
        source_group: GroupId,
        migration: MigrationRef,
        partition: PartitionId,
        stream: u64,
        item: StreamItem,
    },
    /// Target primary to source primary: what its group durably holds, and who it is.
    StreamAck {
        group: GroupId,
        migration: MigrationRef,
        partition: PartitionId,
        target: PeerIdentity,
        position: TargetPosition,
    },
    /// A target replica that is not its group's primary, to the source primary.
    StreamRedirect {
        group: GroupId,
        migration: MigrationRef,
        partition: PartitionId,
        hint: Option<NodeId>,
    },
    /// Source primary to every gateway: hold the partition's writes for at most `hold_us`.
    Freeze {
        source_group: GroupId,
        migration: MigrationRef,
        partition: PartitionId,
        hold_us: u64,
        pause_budget_us: u64,
    },
    FreezeAck {
        group: GroupId,
        migration: MigrationRef,
        partition: PartitionId,
    },
    /// Source primary to every gateway: stop holding; `moved_to` names the new owner after a
    /// commit, `None` after an abort. `hold_left_us` is what is left of the attempt's hold window
    /// (0 when the sender never froze): a gateway that missed the freeze learns the window from it.
    Release {
        migration: MigrationRef,
        partition: PartitionId,
        moved_to: Option<GroupId>,
        hold_left_us: u64,
    },
    Source {
        group: GroupId,
        command: SourceCommand,
    },
    Target {
        group: GroupId,
        command: TargetCommand,
    },
    /// A gateway installed this routing version.
    RoutingAck {
        version: u64,
    },
    /// Master to each member of a retired group: delete the group's files, host it no more.
    Retire {
        group: GroupId,
    },
    /// A storage node to the master: it deleted retired group `group` (durably: a restart
    /// will not bring it back).
    Retired {
        group: GroupId,
    },
    /// Master to a storage node: move your replica of `group` to disk `to_disk` (attempt
    /// `migration.attempt` of a `disk_move` operation).
    DiskMove {
        group: GroupId,
        migration: MigrationRef,
        to_disk: u32,
    },
    /// A storage node to the master: where its disk move of `group` stands.
    DiskMoveReport {
        group: GroupId,
        migration: MigrationRef,
        report: DiskMoveReport,
    },
}

/// What a storage node tells the master of a disk move.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DiskMoveReport {
    /// The move is under way, in this state.
    Running(crate::vocabulary::DiskMoveState),
    /// The replica is the group's primary: demote it first.
    Primary,
    /// The replica runs from the destination disk, up to date, the old copy deleted.
    Completed,
    /// The move went back to `idle`, the old copy intact.
    Reverted(crate::vocabulary::AbortReason),
}

impl MigrationMessage {
    /// The replica group a message is for (`None`: for a gateway or the master).
    pub fn group(&self) -> Option<GroupId> {
        match self {
            MigrationMessage::Stream { group, .. }
            | MigrationMessage::StreamAck { group, .. }
            | MigrationMessage::StreamRedirect { group, .. }
            | MigrationMessage::FreezeAck { group, .. }
            | MigrationMessage::Source { group, .. }
            | MigrationMessage::Target { group, .. }
            | MigrationMessage::Retire { group }
            | MigrationMessage::DiskMove { group, .. } => Some(*group),
            MigrationMessage::Freeze { .. }
            | MigrationMessage::Release { .. }
            | MigrationMessage::RoutingAck { .. }
            | MigrationMessage::Retired { .. }
            | MigrationMessage::DiskMoveReport { .. } => None,
        }
    }

    /// A few words for traces.
    pub fn summary(&self) -> String {
        let at = |migration: &MigrationRef, partition: &PartitionId| {
            format!("m{}.{} p{partition}", migration.id, migration.attempt)
        };
        match self {
            MigrationMessage::Stream { group, migration, partition, stream, item, .. } => {
                let what = match item {
                    StreamItem::Begin { base_lsn, chunks, .. } => format!("begin at {base_lsn}, {chunks} chunks"),
                    StreamItem::Chunk(chunk) => format!("chunk {} ({} keys)", chunk.index, chunk.data.len()),
                    StreamItem::Entries(entries) => match (entries.first(), entries.last()) {
                        (Some(first), Some(last)) => format!(
                            "entries {}..={} after {}",
                            first.source_lsn, last.source_lsn, first.prev_source_lsn
                        ),
                        _ => "no entries".to_string(),
                    },
                };
                format!("stream g{group} {} #{stream:x} {what}", at(migration, partition))
            }
            MigrationMessage::StreamAck { group, migration, partition, target, position } => format!(
                "stream_ack g{group} {} from n{}#{} e{} holds #{:x} {} chunks{} through {}{}",
                at(migration, partition),
                target.node,
                target.incarnation,
                target.epoch,
                position.stream,
                position.chunks,
                if position.snapshot_complete { " (complete)" } else { "" },
                position.source_lsn,
                if position.owned { ", owned" } else { "" }
            ),
            MigrationMessage::StreamRedirect { group, migration, partition, hint } => {
                format!("stream_redirect g{group} {} to {hint:?}", at(migration, partition))
            }
            MigrationMessage::Freeze { source_group, migration, partition, hold_us, .. } => {
                format!("freeze g{source_group} {} for {}", at(migration, partition), crate::units::format_us(*hold_us))
            }
            MigrationMessage::FreezeAck { group, migration, partition } => {
                format!("freeze_ack g{group} {}", at(migration, partition))
            }
            MigrationMessage::Release { migration, partition, moved_to, hold_left_us } => {
                format!("release {} moved to {moved_to:?} window left {hold_left_us}us", at(migration, partition))
            }
            MigrationMessage::Source { group, command } => format!("source g{group} {command:?}"),
            MigrationMessage::Target { group, command } => format!("target g{group} {command:?}"),
            MigrationMessage::RoutingAck { version } => format!("routing_ack v{version}"),
            MigrationMessage::Retire { group } => format!("retire g{group}"),
            MigrationMessage::Retired { group } => format!("retired g{group}"),
            MigrationMessage::DiskMove { group, migration, to_disk } => {
                format!("disk_move g{group} #{}.{} to disk {to_disk}", migration.id, migration.attempt)
            }
            MigrationMessage::DiskMoveReport { group, migration, report } => {
                format!("disk_move_report g{group} #{}.{} {report:?}", migration.id, migration.attempt)
            }
        }
    }

    pub fn size_bytes(&self) -> u32 {
        match self {
            MigrationMessage::Stream { item, .. } => 32 + item.size_bytes(),
            MigrationMessage::StreamAck { .. } => 64,
            MigrationMessage::StreamRedirect { .. }
            | MigrationMessage::Freeze { .. }
            | MigrationMessage::FreezeAck { .. }
            | MigrationMessage::Release { .. }
            | MigrationMessage::Source { .. }
            | MigrationMessage::Target { .. }
            | MigrationMessage::RoutingAck { .. }
            | MigrationMessage::Retire { .. }
            | MigrationMessage::Retired { .. }
            | MigrationMessage::DiskMove { .. }
            | MigrationMessage::DiskMoveReport { .. } => 32,
        }
    }
}
