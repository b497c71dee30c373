//! Every message of the store system, in one enum the world carries: client <-> gateway,
//! gateway <-> replica, gateway and replica <-> master, replica <-> replica.
//!
//! Plain data; the protocol rules live with the participants (`replica`, `master`, `gateway`,
//! `workload::client`). Sizes are estimates for the world's bandwidth model.

use super::entry::{Entry, Op, OpId, OpResult, PartitionSnapshot};
use super::migration::messages::{MigrationMessage, MigrationRef, PartitionReport};
use super::state_machine::Refusal;
use super::{Epoch, GroupId, Lsn, PartitionId};
use crate::world::{Message, NodeId};

/// How a client operation ended, as the gateway tells the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientOutcome {
    /// It happened, with this result.
    Ok(OpResult),
    /// It did not happen and never will: its cancellation is committed in the partition's log
    /// (or, for a read, it was simply not done).
    Fail(String),
    /// It may or may not have happened (an attempt timed out or was lost in a failover).
    Unknown(String),
}

/// A replica's answer to one forwarded operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Done (or done before, for a retry): this is its result.
    Done(OpResult),
    /// Not done by this attempt: the group does not own the partition or it is fenced (try again
    /// elsewhere or later), or the op id is settled otherwise: a newer op of the client was
    /// settled (`Stale`) or the op was cancelled (`Cancelled`).
    Refused(Refusal),
    /// This replica is not the primary (it names the one it knows, if any); nothing was logged.
    NotPrimary { hint: Option<NodeId> },
    /// This replica is the primary but not serving yet (its epoch has not committed); nothing was
    /// logged. Try again shortly.
    Unavailable,
    /// The write was logged, then the primary stepped down before it committed: it may yet commit
    /// under the next primary. Retrying under the same op id is safe.
    Lost,
    /// Not logged: the partition is fenced for `migration`'s cut-over. Hold the write for at most
    /// `hold_us` (what is left of the attempt's hold window), then try again.
    Frozen { migration: MigrationRef, hold_us: u64 },
}

/// What a replica reports about itself to the master, periodically and when it promises.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaStatus {
    pub group: GroupId,
    /// Drawn at every boot: a replica that restarted is a new session.
    pub session: u64,
    /// The highest epoch it durably promised.
    pub promised: Epoch,
    /// The epoch whose primary it follows (or leads).
    pub epoch: Epoch,
    pub is_primary: bool,
    /// A primary whose epoch has committed and which heard from a majority recently.
    pub serving: bool,
    pub last_epoch: Epoch,
    pub last_lsn: Lsn,
    pub commit_lsn: Lsn,
    /// Whether this session's log was brought up to date by a primary since the boot (or it leads).
    pub verified: bool,
    /// Whether this session has synced its promise with the master's reserved epoch.
    pub joined: bool,
    /// The partitions with migration state (a primary's reports, for the master's coordinator).
    pub partitions: Vec<PartitionReport>,
}

/// The master's view of one group, sent to its replicas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupView {
    pub group: GroupId,
    pub epoch: Epoch,
    pub primary: Option<NodeId>,
    /// The session of the primary that was elected: a primary that restarted since may not lead.
    pub primary_session: u64,
    /// The highest epoch the master has handed out for this group (above `epoch` while a view
    /// change is under way).
    pub reserved: Epoch,
    pub members: Vec<NodeId>,
    /// The partitions routing assigns to the group.
    pub partitions: Vec<PartitionId>,
    /// The session this view answers (a replica's status), or `None` when it is broadcast.
    /// Only an answer to its own session lets a booted replica join.
    pub to_session: Option<u64>,
}

/// One group as gateways see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupRoute {
    pub epoch: Epoch,
    pub primary: Option<NodeId>,
    pub members: Vec<NodeId>,
}

/// Partition -> group, and each group's members and primary, with a version that grows with
/// every change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutingTable {
    pub version: u64,
    /// Indexed by partition.
    pub partition_groups: Vec<GroupId>,
    /// Indexed by group.
    pub groups: Vec<GroupRoute>,
}

/// Entries after `prev_lsn` (whose epoch is `prev_epoch`), the primary's commit point, and its
/// latest read-index round. Empty entries make a heartbeat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendEntries {
    pub group: GroupId,
    pub epoch: Epoch,
    pub prev_lsn: Lsn,
    pub prev_epoch: Epoch,
    pub entries: Vec<Entry>,
    pub commit_lsn: Lsn,
    pub round: u64,
}

/// A backup's answer to `AppendEntries` (or to a snapshot).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendAck {
    pub group: GroupId,
    /// The epoch the backup follows.
    pub epoch: Epoch,
    /// Tells a stale primary it was replaced.
    pub promised: Epoch,
    pub session: u64,
    /// Whether the backup's session is verified; a primary verifies it when it is not.
    pub verified: bool,
    pub success: bool,
    /// On success, how far the backup's log durably matches the primary's; on failure, a hint of
    /// where to resume.
    pub matched_lsn: Lsn,
    /// The latest round of this epoch the backup has seen.
    pub round: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreMessage {
    // ---- clients and gateways ----
    /// A client's operation, to be answered within `timeout_us` as the gateway's clock measures
    /// it (a duration, not an instant: nodes' clocks disagree). A client resends it, with what is
    /// left of its time, while it hears nothing.
    Request {
        client: u32,
        seq: u64,
        op: Op,
        timeout_us: u64,
    },
    Reply {
        client: u32,
        seq: u64,
        outcome: ClientOutcome,
    },
    // ---- gateways and replicas ----
    /// One attempt of a client operation; `request` identifies the attempt at its gateway.
    Forward {
        group: GroupId,
        request: u64,
        op_id: OpId,
        partition: PartitionId,
        op: Op,
    },
    ForwardReply {
        request: u64,
        answer: Answer,
    },
    /// The gateway gives up on `op_id`: the primary logs its cancellation unless the op is settled
    /// already, and answers (`ForwardReply`) with the op's fate: `Done` with its result if it was
    /// applied first, `Refused(Cancelled)` once the cancellation is committed.
    Cancel {
        group: GroupId,
        request: u64,
        op_id: OpId,
        partition: PartitionId,
    },
    // ---- routing ----
    RoutingQuery,
    Routing(RoutingTable),
    // ---- replication, primary <-> backups ----
    Append(AppendEntries),
    AppendReply(AppendAck),
    /// The group's whole state at `base_lsn`, for a backup the log can no longer catch up.
    InstallSnapshot {
        group: GroupId,
        epoch: Epoch,
        base_lsn: Lsn,
        base_epoch: Epoch,
        partitions: Vec<PartitionSnapshot>,
        round: u64,
    },
    /// The primary brought this session of the backup up to date: it may vote again.
    Verified {
        group: GroupId,
        epoch: Epoch,
        session: u64,
    },
    // ---- replicas and the master ----
    Status(ReplicaStatus),
    /// Promise never to accept an epoch below `epoch`, durably, and report your log.
    Prepare {
        group: GroupId,
        epoch: Epoch,
    },
    Promise(ReplicaStatus),
    View(GroupView),
    // ---- migrations ----
    Migration(MigrationMessage),
}

impl StoreMessage {
    /// The group a replica-bound message is for.
    pub fn group(&self) -> Option<GroupId> {
        match self {
            StoreMessage::Append(AppendEntries { group, .. }) | StoreMessage::AppendReply(AppendAck { group, .. }) => {
                Some(*group)
            }
            StoreMessage::Forward { group, .. }
            | StoreMessage::Cancel { group, .. }
            | StoreMessage::InstallSnapshot { group, .. }
            | StoreMessage::Verified { group, .. }
            | StoreMessage::Prepare { group, .. } => Some(*group),
            StoreMessage::View(view) => Some(view.group),
            StoreMessage::Migration(message) => message.group(),
            StoreMessage::Status(status) | StoreMessage::Promise(status) => Some(status.group),
            StoreMessage::Request { .. }
            | StoreMessage::Reply { .. }
            | StoreMessage::ForwardReply { .. }
            | StoreMessage::RoutingQuery
            | StoreMessage::Routing(_) => None,
        }
    }
}

fn result_size(result: &OpResult) -> u32 {
    match result {
        OpResult::Value(value) => 8 + value.as_ref().map_or(0, |value| value.len() as u32),
        OpResult::Cas(_) | OpResult::Done => 8,
    }
}

/// An op as a few words: `put k6 "3.17;"`.
fn describe_op(op: &Op) -> String {
    match op {
        Op::Get { key } => format!("get {key}"),
        Op::Put { key, value } => format!("put {key} {value:?}"),
        Op::Append { key, value } => format!("append {key} {value:?}"),
        Op::Cas { key, expected, new } => format!("cas {key} {expected:?} -> {new:?}"),
    }
}

fn describe_status(status: &ReplicaStatus) -> String {
    format!(
        "g{} session {:x} promised {} epoch {}{}{} last {}@{} commit {}{}{}",
        status.group,
        status.session,
        status.promised,
        status.epoch,
        if status.is_primary { " primary" } else { "" },
        if status.serving { " serving" } else { "" },
        status.last_lsn,
        status.last_epoch,
        status.commit_lsn,
        if status.verified { "" } else { " unverified" },
        if status.joined { "" } else { " unjoined" },
    )
}

impl Message for StoreMessage {
    fn summary(&self) -> String {
        match self {
            StoreMessage::Request { client, seq, op, timeout_us } => {
                format!("request c{client}.{seq} {} within {}", describe_op(op), crate::units::format_us(*timeout_us))
            }
            StoreMessage::Reply { client, seq, outcome } => format!("reply c{client}.{seq} {outcome:?}"),
            StoreMessage::Forward { group, request, op_id, partition, op } => {
                format!("forward #{request} c{}.{} g{group} p{partition} {}", op_id.client, op_id.seq, describe_op(op))
            }
            StoreMessage::ForwardReply { request, answer } => format!("forward_reply #{request} {answer:?}"),
            StoreMessage::Cancel { group, request, op_id, partition } => {
                format!("cancel #{request} c{}.{} g{group} p{partition}", op_id.client, op_id.seq)
            }
            StoreMessage::RoutingQuery => "routing_query".to_string(),
            StoreMessage::Routing(table) => {
                let primaries: Vec<String> = table
                    .groups
                    .iter()
                    .enumerate()
                    .map(|(group, route)| match route.primary {
                        Some(primary) => format!("g{group}:n{primary}@{}", route.epoch),
                        None => format!("g{group}:none"),
                    })
                    .collect();
                format!("routing v{} {}", table.version, primaries.join(" "))
            }
            StoreMessage::Append(AppendEntries { group, epoch, prev_lsn, prev_epoch, entries, commit_lsn, round }) => {
                let range = match (entries.first(), entries.last()) {
                    (Some(first), Some(last)) => format!("{}..={}", first.lsn, last.lsn),
                    _ => "heartbeat".to_string(),
                };
                format!(
                    "append g{group} e{epoch} prev {prev_lsn}@{prev_epoch} {range} commit {commit_lsn} round {round}"
                )
            }
            StoreMessage::AppendReply(AppendAck {
                group,
                epoch,
                promised,
                session,
                verified,
                success,
                matched_lsn,
                round,
            }) => {
                format!(
                    "append_reply g{group} e{epoch} promised {promised} session {session:x} {} {matched_lsn} round {round}{}",
                    if *success { "matched" } else { "refused, hint" },
                    if *verified { "" } else { " unverified" }
                )
            }
            StoreMessage::InstallSnapshot { group, epoch, base_lsn, base_epoch, partitions, round } => format!(
                "install_snapshot g{group} e{epoch} at {base_lsn}@{base_epoch} ({} partitions) round {round}",
                partitions.len()
            ),
            StoreMessage::Verified { group, epoch, session } => {
                format!("verified g{group} e{epoch} session {session:x}")
            }
            StoreMessage::Status(status) => format!("status {}", describe_status(status)),
            StoreMessage::Prepare { group, epoch } => format!("prepare g{group} e{epoch}"),
            StoreMessage::Promise(status) => format!("promise {}", describe_status(status)),
            StoreMessage::View(view) => format!(
                "view g{} e{} primary {:?} session {:x} reserved {}",
                view.group, view.epoch, view.primary, view.primary_session, view.reserved
            ),
            StoreMessage::Migration(message) => message.summary(),
        }
    }

    fn size_bytes(&self) -> u32 {
        const HEADER: u32 = 32;
        HEADER
            + match self {
                StoreMessage::Request { op, .. } => 16 + op.size_bytes(),
                StoreMessage::Reply { outcome, .. } => match outcome {
                    ClientOutcome::Ok(result) => 16 + result_size(result),
                    ClientOutcome::Fail(reason) | ClientOutcome::Unknown(reason) => 16 + reason.len() as u32,
                },
                StoreMessage::Forward { op, .. } => 24 + op.size_bytes(),
                StoreMessage::Cancel { .. } => 24,
                StoreMessage::ForwardReply { answer, .. } => match answer {
                    Answer::Done(result) => 8 + result_size(result),
                    Answer::Refused(_) | Answer::NotPrimary { .. } | Answer::Unavailable | Answer::Lost => 12,
                    Answer::Frozen { .. } => 24,
                },
                StoreMessage::RoutingQuery => 0,
                StoreMessage::Routing(table) => {
                    8 + 4 * table.partition_groups.len() as u32 + 32 * table.groups.len() as u32
                }
                StoreMessage::Append(append) => 48 + append.entries.iter().map(Entry::size_bytes).sum::<u32>(),
                StoreMessage::AppendReply(_) => 48,
                StoreMessage::InstallSnapshot { partitions, .. } => {
                    32 + partitions.iter().map(PartitionSnapshot::size_bytes).sum::<u32>()
                }
                StoreMessage::Verified { .. } | StoreMessage::Prepare { .. } => 24,
                StoreMessage::Status(_) | StoreMessage::Promise(_) => 72,
                StoreMessage::View(view) => 48 + 4 * (view.members.len() + view.partitions.len()) as u32,
                StoreMessage::Migration(message) => message.size_bytes(),
            }
    }
}
