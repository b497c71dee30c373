//! The primary's state (`Leader`) and the rules that are the primary's alone: what each backup
//! holds (`Progress`), replication and snapshots, rounds that confirm leadership for reads, the
//! commit point a majority's fsyncs allow, and the gateways waiting on logged writes.
//!
//! A `Leader` lives inside its `Replica` (`replica.rs`), which stays the one entry point: the
//! replica owns the log, the state machine and the commit and apply points, and lends them to the
//! leader as a read-only `Ground` for each decision. The leader never appends to the log or applies
//! an entry itself: it says what to log (`admit_write` returns the entry) and the replica does it.
//! Like the replica, it does no I/O; it pushes `Effect`s.

use std::collections::BTreeMap;

use super::entry::{Entry, EntryKind, Op, OpId};
use super::log::Log;
use super::message::{Answer, AppendAck, AppendEntries, StoreMessage};
use super::replica::{forward_reply, read_answer, Effect, ReplicaConfig};
use super::state_machine::{StateMachine, WriteOutcome};
use super::{Epoch, Lsn, PartitionId};
use crate::trace::EventKind;
use crate::world::NodeId;

/// The most entries one `Append` carries.
const MAX_ENTRIES_PER_APPEND: usize = 64;

/// The most reads a primary keeps waiting for a round; past it, reads are turned away.
const MAX_PENDING_READS: usize = 4096;

/// A snapshot unacknowledged for `retry` is sent again, then after twice as long, and so on up
/// to this many doublings: a backup whose disk is slow is not buried in installs it cannot finish.
const MAX_SNAPSHOT_BACKOFF_DOUBLINGS: u32 = 4;

/// What a leader reads of its replica to decide: lent for one decision, never kept.
pub struct Ground<'a> {
    pub config: &'a ReplicaConfig,
    pub log: &'a Log,
    pub machine: &'a StateMachine,
    pub epoch: Epoch,
    pub commit_lsn: Lsn,
    pub applied_lsn: Lsn,
    pub now_us: u64,
}

/// A gateway waiting for a logged write.
#[derive(Clone, Debug)]
struct Waiter {
    gateway: NodeId,
    request: u64,
}

/// A read waiting for its round and for the apply point.
#[derive(Clone, Debug)]
struct PendingRead {
    gateway: NodeId,
    request: u64,
    partition: PartitionId,
    key: String,
    round: u64,
    read_index: Lsn,
}

/// What a primary knows of one backup.
#[derive(Clone, Debug, Default)]
struct Progress {
    session: u64,
    /// How far the backup's log durably matches ours (this session).
    match_lsn: Lsn,
    /// The next LSN to send.
    next_lsn: Lsn,
    acked_round: u64,
    /// The LSN this session must reach to be verified, once we have seen it unverified.
    verify_target: Option<Lsn>,
    /// The snapshot this session is installing, if one was sent: at most one at a time.
    snapshot: Option<SnapshotFlight>,
}

/// A snapshot sent to a backup and not yet acknowledged as durable.
#[derive(Clone, Copy, Debug)]
struct SnapshotFlight {
    /// The base of the first snapshot of this flight: an acknowledgement at or past it says some
    /// install of the flight is durable (later resends have higher bases).
    base_lsn: Lsn,
    sent_at_us: u64,
    /// Resends so far, each after twice the wait of the one before.
    resends: u32,
}

/// The primary's state for one epoch: created by `Replica::become_primary`, dropped (answering
/// everyone still waiting) by `step_down`.
#[derive(Clone, Debug)]
pub struct Leader {
    progress: BTreeMap<NodeId, Progress>,
    epoch_start_lsn: Lsn,
    serving: bool,
    /// The latest round begun; rounds number heartbeats that confirm leadership for reads.
    round: u64,
    confirmed_round: u64,
    last_quorum_us: u64,
    last_heartbeat_us: u64,
    reads: Vec<PendingRead>,
    waiters: BTreeMap<Lsn, Vec<Waiter>>,
    in_flight: BTreeMap<OpId, Lsn>,
}

impl Leader {
    /// A primary whose `EpochStart` will be logged at `epoch_start_lsn`, with every backup to be
    /// probed from there, and the writes of earlier epochs its log holds uncommitted.
    pub fn new(backups: Vec<NodeId>, epoch_start_lsn: Lsn, in_flight: BTreeMap<OpId, Lsn>, now_us: u64) -> Leader {
        let progress = backups
            .into_iter()
            .map(|member| (member, Progress { next_lsn: epoch_start_lsn, ..Progress::default() }))
            .collect();
        Leader {
            progress,
            epoch_start_lsn,
            serving: false,
            round: 0,
            confirmed_round: 0,
            last_quorum_us: now_us,
            last_heartbeat_us: now_us,
            reads: Vec::new(),
            waiters: BTreeMap::new(),
            in_flight,
        }
    }

    /// Serving: the epoch committed, and a majority answered within the failure timeout.
    pub fn is_serving(&self, now_us: u64, failure_timeout_us: u64) -> bool {
        self.serving && now_us.saturating_sub(self.last_quorum_us) <= failure_timeout_us
    }

    /// The earlier of `status_due_us` and the primary's own next timer (a heartbeat, or reads
    /// to expire).
    pub fn next_tick_us(&self, status_due_us: u64, heartbeat_us: u64, failure_timeout_us: u64) -> u64 {
        let mut next = status_due_us.min(self.last_heartbeat_us + heartbeat_us);
        if !self.reads.is_empty() {
            next = next.min(self.last_quorum_us + failure_timeout_us + 1);
        }
        next
    }

    pub fn heartbeat_due(&self, now_us: u64, heartbeat_us: u64) -> bool {
        now_us >= self.last_heartbeat_us + heartbeat_us
    }

    /// Reads that waited past a failure timeout will not be answered by this primary.
    pub fn expire_reads(&mut self, now_us: u64, failure_timeout_us: u64, out: &mut Vec<Effect>) {
        if now_us.saturating_sub(self.last_quorum_us) > failure_timeout_us && !self.reads.is_empty() {
            for read in self.reads.drain(..) {
                out.push(forward_reply(read.gateway, read.request, Answer::Unavailable));
            }
        }
    }

    /// Leaves the role: every gateway still waiting is told (a logged write's fate is unknown, a
    /// read was not done).
    pub fn step_down(self, out: &mut Vec<Effect>) {
        for (_, waiters) in self.waiters {
            for waiter in waiters {
                out.push(forward_reply(waiter.gateway, waiter.request, Answer::Lost));
            }
        }
        for read in self.reads {
            out.push(forward_reply(read.gateway, read.request, Answer::NotPrimary { hint: None }));
        }
    }

    // ---- client operations ----

    /// Queues a read for the next round; returns whether a round must begin now (none is in
    /// flight). Answers it at once when it cannot be served.
    pub fn admit_read(
        &mut self,
        ground: &Ground,
        gateway: NodeId,
        request: u64,
        partition: PartitionId,
        key: &str,
        out: &mut Vec<Effect>,
    ) -> bool {
        if !ground.machine.owns(partition) {
            out.push(forward_reply(gateway, request, Answer::Refused(super::state_machine::Refusal::NotOwner)));
            return false;
        }
        if self.reads.len() >= MAX_PENDING_READS {
            out.push(forward_reply(gateway, request, Answer::Unavailable));
            return false;
        }
        let round = self.round + 1;
        self.reads.push(PendingRead {
            gateway,
            request,
            partition,
            key: key.to_string(),
            round,
            read_index: ground.commit_lsn,
        });
        // One round in flight at a time; a read arriving during one waits for the next.
        self.confirmed_round == self.round
    }

    /// Decides a write: waits on an entry already logged for it, answers it from the state
    /// machine, or returns the entry the replica must log (the gateway then waits on it).
    pub fn admit_write(
        &mut self,
        ground: &Ground,
        gateway: NodeId,
        request: u64,
        op_id: OpId,
        partition: PartitionId,
        op: Op,
        out: &mut Vec<Effect>,
    ) -> Option<Entry> {
        if let Some(&lsn) = self.in_flight.get(&op_id) {
            self.waiters.entry(lsn).or_default().push(Waiter { gateway, request });
            return None;
        }
        match ground.machine.precheck(partition, op_id) {
            Ok(()) => {}
            Err(WriteOutcome::Duplicate { result }) => {
                out.push(forward_reply(gateway, request, Answer::Done(result)));
                return None;
            }
            Err(WriteOutcome::Refused(refusal)) => {
                out.push(forward_reply(gateway, request, Answer::Refused(refusal)));
                return None;
            }
            Err(WriteOutcome::Applied { .. }) => unreachable!("precheck never applies"),
        }
        let lsn = ground.log.last_lsn() + 1;
        self.in_flight.insert(op_id, lsn);
        self.waiters.entry(lsn).or_default().push(Waiter { gateway, request });
        Some(Entry { epoch: ground.epoch, lsn, partition: Some(partition), kind: EntryKind::Write { op_id, op } })
    }

    /// Decides a cancellation: answers it from the state machine if the op's fate is known, waits
    /// on a cancellation already logged, or returns the `Cancel` entry the replica must log. A
    /// write of the op still in flight is not waited on: the cancellation is logged after it, so
    /// whichever applies first decides, and the answer is that decision.
    pub fn admit_cancel(
        &mut self,
        ground: &Ground,
        gateway: NodeId,
        request: u64,
        op_id: OpId,
        partition: PartitionId,
        out: &mut Vec<Effect>,
    ) -> Option<Entry> {
        if let Some(&lsn) = self.in_flight.get(&op_id) {
            if matches!(ground.log.get(lsn), Some(Entry { kind: EntryKind::Cancel { .. }, .. })) {
                self.waiters.entry(lsn).or_default().push(Waiter { gateway, request });
                return None;
            }
        }
        match ground.machine.precheck_cancel(partition, op_id) {
            Ok(()) => {}
            Err(WriteOutcome::Duplicate { result }) => {
                out.push(forward_reply(gateway, request, Answer::Done(result)));
                return None;
            }
            Err(WriteOutcome::Refused(refusal)) => {
                out.push(forward_reply(gateway, request, Answer::Refused(refusal)));
                return None;
            }
            Err(WriteOutcome::Applied { .. }) => unreachable!("precheck never applies"),
        }
        let lsn = ground.log.last_lsn() + 1;
        self.in_flight.insert(op_id, lsn);
        self.waiters.entry(lsn).or_default().push(Waiter { gateway, request });
        Some(Entry { epoch: ground.epoch, lsn, partition: Some(partition), kind: EntryKind::Cancel { op_id } })
    }

    /// After the replica applied the entry at `lsn`: records an accepted write and answers the
    /// gateways waiting on it.
    pub fn on_entry_applied(
        &mut self,
        lsn: Lsn,
        entry: &Entry,
        outcome: Option<WriteOutcome>,
        group: super::GroupId,
        out: &mut Vec<Effect>,
    ) {
        if let EntryKind::Write { op_id, .. } | EntryKind::Cancel { op_id } = &entry.kind {
            // A later entry of the same op (a cancellation after a write) stays in flight.
            if self.in_flight.get(op_id) == Some(&lsn) {
                self.in_flight.remove(op_id);
            }
        }
        let answer = match outcome {
            Some(WriteOutcome::Applied { result, owner_epoch }) => {
                out.push(Effect::Record(EventKind::WriteAccepted {
                    group,
                    partition: entry.partition.expect("a write carries its partition"),
                    epoch: owner_epoch,
                    lsn,
                }));
                Some(Answer::Done(result))
            }
            Some(WriteOutcome::Duplicate { result }) => Some(Answer::Done(result)),
            Some(WriteOutcome::Refused(refusal)) => Some(Answer::Refused(refusal)),
            None => None,
        };
        if let Some(waiters) = self.waiters.remove(&lsn) {
            for waiter in waiters {
                let answer = answer.clone().unwrap_or(Answer::Lost);
                out.push(forward_reply(waiter.gateway, waiter.request, answer));
            }
        }
    }

    /// Starts serving once the epoch's first entry committed; returns whether it just started.
    pub fn start_serving(&mut self, commit_lsn: Lsn) -> bool {
        if !self.serving && commit_lsn >= self.epoch_start_lsn {
            self.serving = true;
            return true;
        }
        false
    }

    // ---- replication ----

    /// Sends every backup what it has not been sent yet.
    pub fn replicate(&mut self, ground: &Ground, out: &mut Vec<Effect>) {
        let round = self.round;
        let members: Vec<NodeId> = self.progress.keys().copied().collect();
        for member in members {
            if self.progress[&member].next_lsn <= ground.log.last_lsn() {
                self.send_append(ground, member, round, out);
            }
        }
    }

    /// Begins a new round: every backup gets an append (entries it lacks, or a heartbeat).
    pub fn heartbeat(&mut self, ground: &Ground, periodic: bool, out: &mut Vec<Effect>) {
        self.round += 1;
        let round = self.round;
        if periodic {
            self.last_heartbeat_us = ground.now_us;
            // Resend whatever was not acknowledged: a lost append must not stall a backup. A
            // backup that has matched nothing yet is probed from the end of the log instead, and
            // its refusal says where to resume: rewinding it to the start would send a snapshot
            // to every backup after each failover.
            for progress in self.progress.values_mut().filter(|progress| progress.match_lsn > 0) {
                progress.next_lsn = progress.next_lsn.min(progress.match_lsn + 1);
            }
        }
        let members: Vec<NodeId> = self.progress.keys().copied().collect();
        for member in members {
            self.send_append(ground, member, round, out);
        }
    }

    fn send_append(&mut self, ground: &Ground, member: NodeId, round: u64, out: &mut Vec<Effect>) {
        let now = ground.now_us;
        let retry = ground.config.timers.retry_us;
        let group = ground.config.group;
        let epoch = ground.epoch;
        let log = ground.log;
        let progress = self.progress.get_mut(&member).expect("replication_to_members: a known member");
        if progress.next_lsn <= log.base_lsn {
            // The log no longer holds what this backup needs: send the whole state instead, one
            // snapshot at a time. Another goes only once the backup acknowledges this one as
            // durable (then `snapshot` is cleared), or, unanswered, after a growing wait.
            let base_lsn = ground.applied_lsn;
            match &mut progress.snapshot {
                Some(flight) => {
                    let wait = retry << flight.resends.min(MAX_SNAPSHOT_BACKOFF_DOUBLINGS);
                    if now < flight.sent_at_us + wait {
                        return;
                    }
                    flight.sent_at_us = now;
                    flight.resends += 1;
                }
                None => progress.snapshot = Some(SnapshotFlight { base_lsn, sent_at_us: now, resends: 0 }),
            }
            let base_epoch = log.epoch_at(base_lsn).expect("snapshot_at_applied: the log knows its applied LSN");
            out.push(Effect::Send {
                to: member,
                message: StoreMessage::InstallSnapshot {
                    group,
                    epoch,
                    base_lsn,
                    base_epoch,
                    partitions: ground.machine.snapshot_all(),
                    round,
                },
            });
            return;
        }
        let prev_lsn = progress.next_lsn - 1;
        let prev_epoch = log.epoch_at(prev_lsn).expect("append_prev_known: prev LSN within the log");
        let entries = log.slice(progress.next_lsn, MAX_ENTRIES_PER_APPEND);
        progress.next_lsn += entries.len() as Lsn;
        out.push(Effect::Send {
            to: member,
            message: StoreMessage::Append(AppendEntries {
                group,
                epoch,
                prev_lsn,
                prev_epoch,
                entries,
                commit_lsn: ground.commit_lsn,
                round,
            }),
        });
    }

    /// A backup's answer of this epoch: what it holds, which round it saw, whether its session
    /// needs verifying; resends what it lacks. Returns false for a node that is not a backup.
    pub fn on_ack(&mut self, ground: &Ground, from: NodeId, ack: AppendAck, out: &mut Vec<Effect>) -> bool {
        let AppendAck { session, verified, success, matched_lsn, round, .. } = ack;
        let last_lsn = ground.log.last_lsn();
        let Some(progress) = self.progress.get_mut(&from) else { return false };
        if session != progress.session {
            // A new session (the backup restarted, or first contact): trust only what it says now.
            *progress = Progress { session, next_lsn: progress.next_lsn, ..Progress::default() };
        }
        if !verified && progress.verify_target.is_none() {
            // Verify it once it holds everything this primary holds now. (Asked again after a
            // lost `Verified`, since the backup keeps saying it is unverified.)
            progress.verify_target = Some(last_lsn);
        }
        // A round not yet begun cannot have been acknowledged: such an echo is stale.
        if round <= self.round {
            progress.acked_round = progress.acked_round.max(round);
        }
        if success {
            progress.match_lsn = progress.match_lsn.max(matched_lsn);
            progress.next_lsn = progress.next_lsn.max(progress.match_lsn + 1);
            // Only an install made durable ends a snapshot's flight: an answer below its base
            // (a duplicate, a heartbeat's echo) says nothing about it.
            if progress.snapshot.is_some_and(|flight| matched_lsn >= flight.base_lsn) {
                progress.snapshot = None;
            }
        } else {
            // Resume where the backup's log can match ours.
            progress.next_lsn = (matched_lsn + 1).max(progress.match_lsn + 1).min(last_lsn + 1);
        }
        if let Some(target) = progress.verify_target {
            if progress.match_lsn >= target {
                progress.verify_target = None;
                out.push(Effect::Send {
                    to: from,
                    message: StoreMessage::Verified { group: ground.config.group, epoch: ground.epoch, session },
                });
            }
        }
        let behind = progress.next_lsn <= last_lsn;
        if !success || behind {
            let round = self.round;
            self.send_append(ground, from, round, out);
        }
        true
    }

    // ---- commit and reads ----

    /// The highest LSN that a majority (this primary's `durable_lsn` among them) holds durably.
    pub fn majority_durable_lsn(&self, durable_lsn: Lsn, majority: usize) -> Lsn {
        let mut matches: Vec<Lsn> = self.progress.values().map(|progress| progress.match_lsn).collect();
        matches.push(durable_lsn);
        matches.sort_unstable_by(|left, right| right.cmp(left));
        matches[majority - 1]
    }

    /// Confirms the rounds a majority acknowledged (this primary counts for its own).
    pub fn confirm_rounds(&mut self, now_us: u64, majority: usize) {
        let mut rounds: Vec<u64> = self.progress.values().map(|progress| progress.acked_round).collect();
        rounds.push(self.round);
        rounds.sort_unstable_by(|left, right| right.cmp(left));
        let confirmed = rounds[majority - 1];
        if confirmed > self.confirmed_round {
            self.confirmed_round = confirmed;
            self.last_quorum_us = now_us;
        }
    }

    /// Whether reads wait for a round not begun yet while none is in flight.
    pub fn needs_round(&self) -> bool {
        self.confirmed_round == self.round && self.reads.iter().any(|read| read.round > self.round)
    }

    /// Answers the reads whose round is confirmed and whose read index is applied.
    pub fn answer_reads(&mut self, applied_lsn: Lsn, machine: &StateMachine, out: &mut Vec<Effect>) {
        let confirmed = self.confirmed_round;
        self.reads.retain(|read| {
            if read.round > confirmed || read.read_index > applied_lsn {
                return true;
            }
            out.push(forward_reply(read.gateway, read.request, read_answer(machine, read.partition, &read.key)));
            false
        });
    }
}
