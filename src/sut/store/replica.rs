//! One replica of one partition group: the replication protocol's core. It does no I/O: every
//! input (`on_message`, `on_tick`, `on_job_done`) pushes effects (send a message, persist to
//! disk, record a trace event) that the storage node's driver carries out.
//!
//! The protocol, primary-backup with epochs handed out by the master under Raft's log rules:
//! - **Promises.** The master starts epoch `e` by asking every member to promise (`Prepare`): a
//!   replica persists `promised = e` before answering and from then on ignores every message of a
//!   lower epoch. The master makes the most up-to-date promiser the primary (`View`).
//! - **Log.** Entries are tagged `(epoch, lsn)`; a backup accepts entries only after `prev_lsn`
//!   matches (log matching) and replaces a conflicting suffix. A new primary first logs
//!   `EpochStart` and serves nothing until that entry commits.
//! - **Commit.** An entry of the primary's own epoch commits once it is fsynced on a majority
//!   (the primary counts its own fsync too); earlier entries commit with it.
//! - **Reads** wait for a read-index round: a heartbeat round begun after the read arrived and
//!   acknowledged by a majority still on this epoch; then the primary answers once it has applied
//!   through the commit point it saw at arrival. Nothing else answers a read.
//! - **Sessions.** Every boot is a new session, unverified: its disk may have lost what it
//!   acknowledged (a replaced machine, lost fsyncs). The master counts an unverified replica's
//!   promise toward a quorum only when every member answers. A primary verifies a session once it
//!   has brought the session's log up to the primary's last LSN as of first contact. A replica
//!   joins (answers a primary) only after syncing its promise with the master's reserved epoch by
//!   a view sent to this very session, since a replaced disk forgot what it promised.
//! - **Durable state** is the `meta` promise, a checkpoint and log segments (`storage.rs`); a
//!   checkpoint is taken every `checkpoint_entries` applied entries and the log behind it is
//!   deleted, unless a per-partition hold-back keeps it.
//!
//! The primary's own state and rules (replication, rounds, commit counting, waiting gateways)
//! live in `leader.rs` as methods on `Leader`; this file keeps what every replica does (promises,
//! views, the log, applying, checkpoints, a backup's side) and stays the one entry point: a
//! `Leader` is reached only through its `Replica`, which lends it the log and state machine.
//!
//! Assertions name the invariant they guard; expected conditions (a stale epoch, a gap) are
//! answered, not asserted.

use std::collections::BTreeMap;

use super::entry::{Entry, EntryKind, Op, OpId, OpResult, PartitionSnapshot};
use super::leader::{Ground, Leader};
use super::log::Log;
use super::message::{Answer, AppendAck, AppendEntries, GroupView, ReplicaStatus, StoreMessage};
use super::migration::MigrationSpec;
use super::state_machine::StateMachine;
use super::storage::{Checkpoint, LogRecord, Meta, Recovered};
use super::{Epoch, GroupId, Lsn, PartitionId, StoreTimers};
use crate::trace::EventKind;
use crate::world::NodeId;

/// What a replica needs to know that does not change while it runs.
#[derive(Clone, Debug)]
pub struct ReplicaConfig {
    pub group: GroupId,
    pub node: NodeId,
    /// Every replica of the group, this one included, in preference order.
    pub members: Vec<NodeId>,
    pub master: NodeId,
    pub timers: StoreTimers,
    /// Planted bug `ack_before_fsync`.
    pub ack_before_fsync: bool,
    /// Planted bug `skip_dedup`.
    pub skip_dedup: bool,
    /// Planted bug `stale_local_read`.
    pub stale_local_read: bool,
    /// This node's incarnation: a migration's stream is bound to it.
    pub incarnation: u32,
    /// The gateways, which a migration's source tells to hold and release writes.
    pub gateways: Vec<NodeId>,
    /// Every group's members, by group id (a migration's target is any of them).
    pub group_members: Vec<Vec<NodeId>>,
    /// The initial groups' count (partition `p` starts in group `p % groups`).
    pub groups: u32,
    pub migrations: Vec<MigrationSpec>,
    pub bugs: MigrationBugs,
}

/// The planted migration bugs a replica plays.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MigrationBugs {
    pub no_source_fence: bool,
    pub final_lsn_before_fence: bool,
    pub catchup_ignores_incarnation: bool,
    pub cleanup_before_commit: bool,
    pub handoff_on_append: bool,
    pub cleanup_any_holding: bool,
    pub stale_stream_applies: bool,
    pub freeze_before_snapshot: bool,
}

/// Something the driver must do.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Send now: the message vouches for nothing that is not already on disk.
    Send {
        to: NodeId,
        message: StoreMessage,
    },
    /// Send once every `Persist` pushed before it has completed: for a message that vouches for
    /// state still on its way to disk (a promise, a backup's acknowledgement of new entries or
    /// of a snapshot). A job that fails drops it along with the replica, so nothing that was not
    /// made durable is ever vouched for.
    SendWhenDurable {
        to: NodeId,
        message: StoreMessage,
    },
    /// Run on the group's disk, in order, and report with `on_job_done`.
    Persist(DiskJob),
    Record(EventKind),
}

/// Durable work, run by the group's writer in the order given.
#[derive(Clone, Debug, PartialEq)]
pub enum DiskJob {
    /// Append (the first record may cut the log back) and fsync.
    Append(Vec<LogRecord>),
    Meta(Meta),
    /// Write the checkpoint, then delete log segments wholly at or below `truncate_to`.
    Checkpoint {
        checkpoint: Checkpoint,
        truncate_to: Lsn,
    },
    /// Install a primary's snapshot as the checkpoint; unless `keep_log`, empty the log.
    Install {
        checkpoint: Checkpoint,
        keep_log: bool,
    },
}

/// A job that completed successfully. (A failed job restarts the replica from its disk.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobDone {
    Appended { last_epoch: Epoch, last_lsn: Lsn },
    Meta { promised: Epoch },
    Checkpointed { lsn: Lsn, truncated_to: Lsn },
    Installed { lsn: Lsn },
}

#[derive(Clone, Debug)]
pub(super) enum Role {
    Backup,
    Primary(Box<Leader>),
}

/// The replica's state a leader reads for one decision, borrowed field by field so that the
/// leader (inside `self.role`) can be borrowed mutably at the same time.
macro_rules! ground {
    ($replica:expr) => {
        Ground {
            config: &$replica.config,
            log: &$replica.log,
            machine: &$replica.machine,
            epoch: $replica.epoch,
            commit_lsn: $replica.commit_lsn,
            applied_lsn: $replica.applied_lsn,
            now_us: $replica.now_us,
        }
    };
}

pub struct Replica {
    config: ReplicaConfig,
    session: u64,
    joined: bool,
    /// The highest epoch promised (requested); `durable_promised` is what the disk holds.
    promised: Epoch,
    durable_promised: Epoch,
    /// The epoch whose primary this replica follows or leads, and that primary.
    epoch: Epoch,
    primary: Option<NodeId>,
    role: Role,
    log: Log,
    /// Every entry at or below it is on disk as it is in `log`.
    durable_lsn: Lsn,
    /// How far `log` is known to match the current primary's.
    matched_lsn: Lsn,
    commit_lsn: Lsn,
    applied_lsn: Lsn,
    machine: StateMachine,
    verified: bool,
    /// The master's latest view (for the partitions this group should own).
    view: Option<GroupView>,
    /// A view that makes this replica primary, waiting for its promise to be durable.
    pending_view: Option<GroupView>,
    /// The latest round of this epoch's primary to echo.
    reply_round: u64,
    checkpoint_lsn: Lsn,
    checkpoint_in_flight: bool,
    holds: BTreeMap<PartitionId, Lsn>,
    last_status_us: Option<u64>,
    now_us: u64,
    /// A primary's migration state (source streams, incoming copies); volatile.
    migrations: migrations::Migrations,
}

impl Replica {
    /// A replica booting from what its disk holds, with a fresh session.
    pub fn recover(config: ReplicaConfig, session: u64, recovered: Recovered, now_us: u64) -> (Replica, Vec<Effect>) {
        let mut machine = StateMachine::new(config.skip_dedup)
            .with_purge_while_fenced(config.bugs.cleanup_before_commit)
            .with_purge_any_holding(config.bugs.cleanup_any_holding);
        machine.reset(recovered.checkpoint.partitions.clone());
        let promised = recovered.meta.map_or(0, |meta| meta.promised);
        let mut log =
            Log { base_lsn: recovered.checkpoint.lsn, base_epoch: recovered.checkpoint.epoch, entries: Vec::new() };
        for entry in recovered.entries {
            log.push(entry);
        }
        let durable_lsn = log.last_lsn();
        let base = log.base_lsn;
        let mut effects: Vec<Effect> = recovered
            .notes
            .iter()
            .map(|note| Effect::Record(EventKind::Note { text: format!("group {}: recovery: {note}", config.group) }))
            .collect();
        if recovered.meta.is_none() && (base > 0 || durable_lsn > 0) {
            effects.push(Effect::Record(EventKind::Note {
                text: format!("group {}: recovery: meta missing or damaged; waiting for the master", config.group),
            }));
        }
        let replica = Replica {
            config,
            session,
            joined: false,
            promised,
            durable_promised: promised,
            epoch: 0,
            primary: None,
            role: Role::Backup,
            log,
            durable_lsn,
            matched_lsn: base,
            commit_lsn: base,
            applied_lsn: base,
            machine,
            verified: false,
            view: None,
            pending_view: None,
            reply_round: 0,
            checkpoint_lsn: base,
            checkpoint_in_flight: false,
            holds: BTreeMap::new(),
            last_status_us: None,
            now_us,
            migrations: migrations::Migrations::default(),
        };
        // The holdings this boot starts from, so the trace always ends with each replica's last.
        for change in replica.machine.all_changes() {
            effects.push(Effect::Record(migrations::partition_state(replica.config.group, &change)));
        }
        (replica, effects)
    }

    // ---- accessors (reports and tests) ----

    pub fn group(&self) -> GroupId {
        self.config.group
    }

    pub fn is_primary(&self) -> bool {
        matches!(self.role, Role::Primary(_))
    }

    pub fn is_serving(&self) -> bool {
        match &self.role {
            Role::Primary(leader) => leader.is_serving(self.now_us, self.config.timers.failure_timeout_us),
            Role::Backup => false,
        }
    }

    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    pub fn promised(&self) -> Epoch {
        self.promised
    }

    pub fn commit_lsn(&self) -> Lsn {
        self.commit_lsn
    }

    pub fn last_lsn(&self) -> Lsn {
        self.log.last_lsn()
    }

    pub fn durable_lsn(&self) -> Lsn {
        self.durable_lsn
    }

    pub fn is_verified(&self) -> bool {
        self.verified
    }

    pub fn machine(&self) -> &StateMachine {
        &self.machine
    }

    pub fn status(&self) -> ReplicaStatus {
        ReplicaStatus {
            group: self.config.group,
            session: self.session,
            promised: self.durable_promised,
            epoch: self.epoch,
            is_primary: self.is_primary(),
            serving: self.is_serving(),
            last_epoch: self.log.last_epoch(),
            last_lsn: self.log.last_lsn(),
            commit_lsn: self.commit_lsn,
            verified: self.verified,
            joined: self.joined,
            partitions: self.migration_reports(),
        }
    }

    // ---- truncation hold-backs (for migrations) ----

    /// Keeps every log entry above `lsn` on disk until released, whatever checkpoints are taken.
    pub fn hold_truncation(&mut self, partition: PartitionId, lsn: Lsn) {
        self.holds.insert(partition, lsn);
    }

    pub fn release_truncation(&mut self, partition: PartitionId) {
        self.holds.remove(&partition);
    }

    fn truncation_point(&self, checkpoint_lsn: Lsn) -> Lsn {
        self.holds.values().copied().fold(checkpoint_lsn, Lsn::min)
    }

    // ---- inputs ----

    /// When `on_tick` next has something to do (a status report, a heartbeat, a read to expire).
    pub fn next_tick_us(&self) -> u64 {
        let heartbeat = self.config.timers.heartbeat_us;
        let status = self.last_status_us.map_or(self.now_us, |at| at + heartbeat);
        match &self.role {
            Role::Primary(leader) => leader.next_tick_us(status, heartbeat, self.config.timers.failure_timeout_us),
            Role::Backup => status,
        }
    }

    pub fn on_tick(&mut self, now_us: u64, out: &mut Vec<Effect>) {
        self.advance_time(now_us);
        let heartbeat = self.config.timers.heartbeat_us;
        if self.last_status_us.is_none_or(|at| now_us >= at + heartbeat) {
            self.last_status_us = Some(now_us);
            out.push(Effect::Send { to: self.config.master, message: StoreMessage::Status(self.status()) });
        }
        let due = match &self.role {
            Role::Primary(leader) => leader.heartbeat_due(now_us, heartbeat),
            Role::Backup => false,
        };
        if due {
            self.heartbeat(true, out);
        }
        if let Role::Primary(leader) = &mut self.role {
            leader.expire_reads(now_us, self.config.timers.failure_timeout_us, out);
        }
        if self.is_serving() {
            self.migration_tick(out);
        }
    }

    pub fn on_message(&mut self, now_us: u64, from: NodeId, message: StoreMessage, out: &mut Vec<Effect>) {
        self.advance_time(now_us);
        match message {
            StoreMessage::Forward { request, op_id, partition, op, .. } => {
                self.on_forward(from, request, op_id, partition, op, out)
            }
            StoreMessage::Cancel { request, op_id, partition, .. } => {
                self.on_cancel(from, request, op_id, partition, out)
            }
            StoreMessage::Append(append) => self.on_append(from, append, out),
            StoreMessage::AppendReply(ack) => self.on_append_reply(from, ack, out),
            StoreMessage::InstallSnapshot { epoch, base_lsn, base_epoch, partitions, round, .. } => {
                self.on_install_snapshot(from, epoch, base_lsn, base_epoch, partitions, round, out)
            }
            StoreMessage::Verified { epoch, session, .. } => {
                if session == self.session && epoch == self.epoch && !self.verified {
                    self.verified = true;
                }
            }
            StoreMessage::Prepare { epoch, .. } => self.on_prepare(epoch, out),
            StoreMessage::View(view) => self.on_view(view, out),
            StoreMessage::Migration(message) => self.on_migration(from, message, out),
            StoreMessage::Request { .. }
            | StoreMessage::Reply { .. }
            | StoreMessage::ForwardReply { .. }
            | StoreMessage::RoutingQuery
            | StoreMessage::Routing(_)
            | StoreMessage::Status(_)
            | StoreMessage::Promise(_) => {
                panic!("store: replica of group {} got a message for another role: {message:?}", self.config.group)
            }
        }
    }

    pub fn on_job_done(&mut self, now_us: u64, done: JobDone, out: &mut Vec<Effect>) {
        self.advance_time(now_us);
        match done {
            JobDone::Appended { last_epoch, last_lsn } => {
                // Log matching: if the log still holds (last_epoch, last_lsn), everything up to it is
                // what the job wrote.
                if self.log.epoch_at(last_lsn) == Some(last_epoch) && last_lsn > self.durable_lsn {
                    self.durable_lsn = last_lsn;
                }
                match &self.role {
                    Role::Primary(_) => self.advance_commit(out),
                    // Its acknowledgement was queued behind this job (`SendWhenDurable`).
                    Role::Backup => {}
                }
            }
            JobDone::Meta { promised } => {
                self.durable_promised = self.durable_promised.max(promised);
                if let Some(view) = self.pending_view.take() {
                    self.on_view(view, out);
                }
            }
            JobDone::Checkpointed { lsn, truncated_to } => {
                self.checkpoint_in_flight = false;
                self.checkpoint_lsn = self.checkpoint_lsn.max(lsn);
                self.log.compact_to(truncated_to.min(self.applied_lsn));
            }
            JobDone::Installed { lsn } => {
                if lsn <= self.log.last_lsn() {
                    self.durable_lsn = self.durable_lsn.max(lsn);
                }
                // Its acknowledgement was queued behind this job (`SendWhenDurable`).
                self.checkpoint_lsn = self.checkpoint_lsn.max(lsn);
            }
        }
    }

    /// Takes the node's local time: timers assume it never runs backwards (the driver's
    /// `LocalClock` holds a step back), though it may run fast, slow, or jump ahead.
    fn advance_time(&mut self, now_us: u64) {
        assert!(
            now_us >= self.now_us,
            "clock_monotone: group {} replica on node {} read {now_us} after {}",
            self.config.group,
            self.config.node,
            self.now_us
        );
        self.now_us = now_us;
    }

    // ---- promises and views ----

    fn promise(&mut self, epoch: Epoch, out: &mut Vec<Effect>) {
        if epoch > self.promised {
            self.promised = epoch;
            out.push(Effect::Persist(DiskJob::Meta(Meta { promised: epoch })));
        }
        if epoch > self.epoch {
            self.step_down(out);
        }
    }

    /// Answers a prepare with this replica's promise (a stale prepare learns the newer one). The
    /// promise leaves only once the meta file holds it.
    fn on_prepare(&mut self, epoch: Epoch, out: &mut Vec<Effect>) {
        if epoch >= self.promised {
            self.promise(epoch, out);
        }
        let message = StoreMessage::Promise(ReplicaStatus { promised: self.promised, ..self.status() });
        let to = self.config.master;
        if self.durable_promised >= self.promised {
            out.push(Effect::Send { to, message });
        } else {
            out.push(Effect::SendWhenDurable { to, message });
        }
    }

    fn on_view(&mut self, view: GroupView, out: &mut Vec<Effect>) {
        self.promise(view.reserved, out);
        if self.durable_promised < view.reserved {
            self.pending_view = Some(view);
            return;
        }
        // Only a view the master sent this session, in answer to its status, joins it: a view or
        // prepare from before the boot (delayed in a clogged link) may name an epoch a stale
        // primary still leads, and an empty disk cannot tell.
        if view.to_session == Some(self.session) {
            self.joined = true;
        }
        let current = view.epoch == self.promised && view.epoch >= self.epoch && view.epoch > 0;
        self.view = Some(view.clone());
        if !current {
            return;
        }
        match view.primary {
            Some(primary) if primary == self.config.node => {
                let already = self.is_primary() && self.epoch == view.epoch;
                if !already && view.primary_session == self.session {
                    self.become_primary(view.epoch, out);
                }
            }
            Some(primary) => self.follow(view.epoch, Some(primary), out),
            None => {}
        }
    }

    fn follow(&mut self, epoch: Epoch, primary: Option<NodeId>, out: &mut Vec<Effect>) {
        assert!(
            !(self.is_primary() && epoch == self.epoch && primary.is_some_and(|node| node != self.config.node)),
            "one_primary_per_epoch: group {} epoch {epoch} has primaries {} and {primary:?}",
            self.config.group,
            self.config.node
        );
        if epoch > self.epoch {
            self.step_down(out);
            self.epoch = epoch;
            // Only the committed prefix is known to match a new primary's log.
            self.matched_lsn = self.commit_lsn;
            // Rounds are numbered per epoch: echoing an old primary's round to a new one would
            // confirm rounds it has not begun.
            self.reply_round = 0;
        }
        if epoch == self.epoch && primary.is_some() {
            self.primary = primary;
        }
    }

    fn step_down(&mut self, out: &mut Vec<Effect>) {
        let Role::Primary(leader) = std::mem::replace(&mut self.role, Role::Backup) else {
            return;
        };
        leader.step_down(out);
        self.drop_migrations();
        self.primary = None;
    }

    fn become_primary(&mut self, epoch: Epoch, out: &mut Vec<Effect>) {
        assert!(
            epoch >= self.epoch,
            "no_epoch_led_backwards: group {} leading {epoch} after {}",
            self.config.group,
            self.epoch
        );
        assert_eq!(
            self.durable_promised, epoch,
            "primary_promised: group {} leads {epoch} unpromised",
            self.config.group
        );
        self.step_down(out);
        self.epoch = epoch;
        self.primary = Some(self.config.node);
        // Elected from this session's promise of the master's newest epoch: in sync with it.
        self.joined = true;
        // The master elected this log as the most up to date of a quorum: it holds every committed
        // entry, so this session is as good as verified.
        self.verified = true;
        let next_lsn = self.log.last_lsn() + 1;
        let backups: Vec<NodeId> =
            self.config.members.iter().copied().filter(|&member| member != self.config.node).collect();
        // Writes (and cancellations) logged under earlier epochs and not yet committed may commit
        // under this one: a retry of one of them waits for its latest entry rather than logging
        // it again.
        let mut in_flight = BTreeMap::new();
        for lsn in self.commit_lsn + 1..=self.log.last_lsn() {
            if let Some(Entry { kind: EntryKind::Write { op_id, .. } | EntryKind::Cancel { op_id }, .. }) =
                self.log.get(lsn)
            {
                in_flight.insert(*op_id, lsn);
            }
        }
        let entry = Entry { epoch, lsn: next_lsn, partition: None, kind: EntryKind::EpochStart };
        self.role = Role::Primary(Box::new(Leader::new(backups, next_lsn, in_flight, self.now_us)));
        out.push(Effect::Record(EventKind::Note {
            text: format!("group {}: primary for epoch {epoch} from LSN {next_lsn}", self.config.group),
        }));
        self.append_local(vec![entry], out);
        self.heartbeat(true, out);
    }

    // ---- the primary ----

    fn on_forward(
        &mut self,
        gateway: NodeId,
        request: u64,
        op_id: OpId,
        partition: PartitionId,
        op: Op,
        out: &mut Vec<Effect>,
    ) {
        if self.config.stale_local_read && !op.is_write() {
            // Planted bug: answer from whatever this replica has applied, primary or not.
            out.push(forward_reply(gateway, request, read_answer(&self.machine, partition, op.key())));
            return;
        }
        let serving = self.is_serving();
        let Role::Primary(leader) = &mut self.role else {
            let hint = self.primary.filter(|&primary| primary != self.config.node);
            out.push(forward_reply(gateway, request, Answer::NotPrimary { hint }));
            return;
        };
        if !serving {
            out.push(forward_reply(gateway, request, Answer::Unavailable));
            return;
        }
        if !op.is_write() {
            let ground = ground!(self);
            if leader.admit_read(&ground, gateway, request, partition, op.key(), out) {
                self.heartbeat(false, out);
            }
            return;
        }
        if let Some(answer) = self.refuse_fenced_write(partition) {
            out.push(forward_reply(gateway, request, answer));
            return;
        }
        let Role::Primary(leader) = &mut self.role else { unreachable!("checked above") };
        let ground = ground!(self);
        if let Some(entry) = leader.admit_write(&ground, gateway, request, op_id, partition, op, out) {
            self.append_local(vec![entry], out);
            self.replicate(out);
        }
    }

    /// A gateway gives up on `op_id`: log its cancellation (unless its fate is known) and answer
    /// with its fate once that entry applies. Only a serving primary may: its log order is what
    /// decides whether a copy of the write or the cancellation came first.
    fn on_cancel(&mut self, gateway: NodeId, request: u64, op_id: OpId, partition: PartitionId, out: &mut Vec<Effect>) {
        let serving = self.is_serving();
        if !matches!(self.role, Role::Primary(_)) {
            let hint = self.primary.filter(|&primary| primary != self.config.node);
            out.push(forward_reply(gateway, request, Answer::NotPrimary { hint }));
            return;
        }
        if !serving {
            out.push(forward_reply(gateway, request, Answer::Unavailable));
            return;
        }
        // Fenced here: the cancellation waits for the attempt's decision, as a write does.
        if let Some(answer) = self.refuse_fenced_write(partition) {
            out.push(forward_reply(gateway, request, answer));
            return;
        }
        let Role::Primary(leader) = &mut self.role else { unreachable!("checked above") };
        let ground = ground!(self);
        if let Some(entry) = leader.admit_cancel(&ground, gateway, request, op_id, partition, out) {
            self.append_local(vec![entry], out);
            self.replicate(out);
        }
    }

    /// Pushes entries onto the log (the first follows its end) and returns them as the records to
    /// persist, each naming the epoch of the entry before it.
    fn push_entries(&mut self, entries: Vec<Entry>) -> Vec<LogRecord> {
        let mut records = Vec::with_capacity(entries.len());
        for entry in entries {
            let prev_epoch = self.log.last_epoch();
            self.log.push(entry.clone());
            records.push(LogRecord { prev_epoch, entry });
        }
        records
    }

    /// Appends entries to the primary's own log and persists them.
    fn append_local(&mut self, entries: Vec<Entry>, out: &mut Vec<Effect>) {
        let records = self.push_entries(entries);
        self.matched_lsn = self.log.last_lsn();
        out.push(Effect::Persist(DiskJob::Append(records)));
        if self.config.ack_before_fsync {
            // Planted bug: count this replica's copy before it is durable.
            self.durable_lsn = self.log.last_lsn();
            self.advance_commit(out);
        }
    }

    /// Sends every backup what it has not been sent yet.
    fn replicate(&mut self, out: &mut Vec<Effect>) {
        let ground = ground!(self);
        let Role::Primary(leader) = &mut self.role else { return };
        leader.replicate(&ground, out);
    }

    /// Starts a new round: every backup gets an append (entries it lacks, or a heartbeat).
    fn heartbeat(&mut self, periodic: bool, out: &mut Vec<Effect>) {
        let ground = ground!(self);
        let Role::Primary(leader) = &mut self.role else { return };
        leader.heartbeat(&ground, periodic, out);
        self.check_rounds(out);
    }

    fn on_append_reply(&mut self, from: NodeId, ack: AppendAck, out: &mut Vec<Effect>) {
        let AppendAck { epoch, promised, .. } = ack;
        if promised > self.epoch && self.is_primary() {
            // A backup promised a newer epoch: a view change is under way without us.
            out.push(Effect::Record(EventKind::Note {
                text: format!("group {}: stepping down, node {from} promised epoch {promised}", self.config.group),
            }));
            self.step_down(out);
            return;
        }
        if epoch != self.epoch {
            return;
        }
        let ground = ground!(self);
        let Role::Primary(leader) = &mut self.role else { return };
        if !leader.on_ack(&ground, from, ack, out) {
            return;
        }
        self.advance_commit(out);
        self.check_rounds(out);
    }

    /// Commits the highest LSN of this epoch that a majority holds durably.
    fn advance_commit(&mut self, out: &mut Vec<Effect>) {
        let Role::Primary(leader) = &self.role else { return };
        let majority = self.config.members.len() / 2 + 1;
        let candidate = leader.majority_durable_lsn(self.durable_lsn, majority);
        if candidate > self.commit_lsn && self.log.epoch_at(candidate) == Some(self.epoch) {
            self.commit_lsn = candidate;
            self.apply_committed(out);
        }
    }

    /// Confirms rounds acknowledged by a majority, and answers the reads they cover.
    fn check_rounds(&mut self, out: &mut Vec<Effect>) {
        let majority = self.config.members.len() / 2 + 1;
        let Role::Primary(leader) = &mut self.role else { return };
        leader.confirm_rounds(self.now_us, majority);
        self.answer_reads(out);
        let Role::Primary(leader) = &mut self.role else { return };
        if leader.needs_round() {
            self.heartbeat(false, out);
        }
    }

    fn answer_reads(&mut self, out: &mut Vec<Effect>) {
        let Role::Primary(leader) = &mut self.role else { return };
        leader.answer_reads(self.applied_lsn, &self.machine, out);
    }

    /// Applies committed entries in order; a primary answers the writes' waiters.
    fn apply_committed(&mut self, out: &mut Vec<Effect>) {
        while self.applied_lsn < self.commit_lsn {
            let lsn = self.applied_lsn + 1;
            let entry = self.log.get(lsn).cloned().expect("apply_within_log: committed entries are in the log");
            let outcome = self.machine.apply(&entry);
            self.applied_lsn = lsn;
            let Role::Primary(leader) = &mut self.role else { continue };
            leader.on_entry_applied(lsn, &entry, outcome, self.config.group, out);
        }
        self.after_apply(out);
        self.on_applied(out);
    }

    /// After applying: a primary starts serving once its epoch committed; reads may be answered;
    /// a checkpoint may be due.
    fn on_applied(&mut self, out: &mut Vec<Effect>) {
        let commit = self.commit_lsn;
        let mut own = Vec::new();
        let mut started = false;
        if let Role::Primary(leader) = &mut self.role {
            if leader.start_serving(commit) {
                started = true;
                if let Some(view) = &self.view {
                    own = view
                        .partitions
                        .iter()
                        .copied()
                        .filter(|&partition| !self.machine.ever_held(partition))
                        .collect();
                }
            }
        }
        if !own.is_empty() {
            let mut lsn = self.log.last_lsn();
            let entries = own
                .into_iter()
                .map(|partition| {
                    lsn += 1;
                    Entry {
                        epoch: self.epoch,
                        lsn,
                        partition: Some(partition),
                        kind: EntryKind::Own { owner_epoch: 1 },
                    }
                })
                .collect();
            self.append_local(entries, out);
            self.replicate(out);
        }
        if started {
            self.resolve_orphaned_attempts(out);
            self.replicate(out);
        }
        self.answer_reads(out);
        self.maybe_checkpoint(out);
    }

    fn maybe_checkpoint(&mut self, out: &mut Vec<Effect>) {
        if self.checkpoint_in_flight || self.applied_lsn < self.checkpoint_lsn + self.config.timers.checkpoint_entries {
            return;
        }
        let lsn = self.applied_lsn;
        let epoch = self.log.epoch_at(lsn).expect("checkpoint_at_applied: the log knows its applied LSN");
        self.checkpoint_in_flight = true;
        out.push(Effect::Persist(DiskJob::Checkpoint {
            checkpoint: Checkpoint { lsn, epoch, partitions: self.machine.snapshot_all() },
            truncate_to: self.truncation_point(lsn),
        }));
    }

    // ---- a backup ----

    /// What this backup can vouch for: durable and matching the primary's log.
    fn acked_lsn(&self) -> Lsn {
        if self.config.ack_before_fsync {
            // Planted bug: acknowledge what is merely written.
            return self.matched_lsn;
        }
        self.durable_lsn.min(self.matched_lsn)
    }

    /// Answers the primary. The answer vouches for this replica's promise and, on success, for
    /// its log through `matched_lsn`: it leaves at once only if both are on disk already, and
    /// otherwise behind the disk jobs that put them there.
    fn reply_to_primary(&mut self, success: bool, matched_lsn: Lsn, out: &mut Vec<Effect>) {
        let Some(primary) = self.primary else { return };
        if primary == self.config.node {
            return;
        }
        let message = StoreMessage::AppendReply(AppendAck {
            group: self.config.group,
            epoch: self.epoch,
            promised: self.promised,
            session: self.session,
            verified: self.verified,
            success,
            matched_lsn,
            round: self.reply_round,
        });
        out.push(self.vouching(primary, message, if success { matched_lsn } else { 0 }));
    }

    /// A message that vouches for this replica's promise and its log through `vouched_lsn`: sent
    /// now if the disk already holds both, else once the queued jobs have made them durable.
    fn vouching(&self, to: NodeId, message: StoreMessage, vouched_lsn: Lsn) -> Effect {
        // Planted bug `ack_before_fsync`: vouch for what is merely written.
        let durable =
            self.config.ack_before_fsync || (self.durable_promised >= self.promised && vouched_lsn <= self.durable_lsn);
        if durable {
            Effect::Send { to, message }
        } else {
            Effect::SendWhenDurable { to, message }
        }
    }

    /// Accepts a message from the primary of `epoch` if it is current; returns false (having told
    /// the sender) if not.
    fn accept_primary(&mut self, from: NodeId, epoch: Epoch, out: &mut Vec<Effect>) -> bool {
        if !self.joined {
            return false;
        }
        if epoch < self.promised {
            let message = StoreMessage::AppendReply(AppendAck {
                group: self.config.group,
                epoch,
                promised: self.promised,
                session: self.session,
                verified: self.verified,
                success: false,
                matched_lsn: 0,
                round: 0,
            });
            out.push(self.vouching(from, message, 0));
            return false;
        }
        // A primary of a newer epoch than we promised was elected without us: promise it too.
        self.promise(epoch, out);
        self.follow(epoch, Some(from), out);
        true
    }

    fn on_append(&mut self, from: NodeId, append: AppendEntries, out: &mut Vec<Effect>) {
        let AppendEntries { epoch, prev_lsn, prev_epoch, entries, commit_lsn, round, .. } = append;
        if !self.accept_primary(from, epoch, out) {
            return;
        }
        self.reply_round = self.reply_round.max(round);
        if prev_lsn > self.log.last_lsn() {
            self.reply_to_primary(false, self.log.last_lsn(), out);
            return;
        }
        if prev_lsn >= self.log.base_lsn && self.log.epoch_at(prev_lsn) != Some(prev_epoch) {
            // Conflict at prev: everything from it back to our commit point is suspect.
            self.reply_to_primary(false, prev_lsn.saturating_sub(1).max(self.commit_lsn), out);
            return;
        }
        // Everything the primary sent, up to its last entry, matches once this append is done.
        let sent_through = prev_lsn + entries.len() as Lsn;
        let mut new_entries = Vec::new();
        for entry in entries {
            if entry.lsn <= self.log.base_lsn {
                continue;
            }
            if !new_entries.is_empty() {
                new_entries.push(entry);
                continue;
            }
            match self.log.epoch_at(entry.lsn) {
                Some(existing) if existing == entry.epoch => {}
                Some(_) => {
                    assert!(
                        entry.lsn > self.commit_lsn,
                        "committed_entries_never_replaced: group {} LSN {}",
                        self.config.group,
                        entry.lsn
                    );
                    self.log.truncate_from(entry.lsn);
                    self.durable_lsn = self.durable_lsn.min(entry.lsn - 1);
                    new_entries.push(entry);
                }
                None => new_entries.push(entry),
            }
        }
        let new_entries = self.push_entries(new_entries);
        self.matched_lsn = self.matched_lsn.max(sent_through.max(self.log.base_lsn));
        let commit = commit_lsn.min(self.matched_lsn);
        if commit > self.commit_lsn {
            self.commit_lsn = commit;
            self.apply_committed(out);
        }
        if new_entries.is_empty() {
            // Nothing new: vouch for what is durable already, at once, so rounds confirm fast.
            self.reply_to_primary(true, self.acked_lsn(), out);
        } else {
            out.push(Effect::Persist(DiskJob::Append(new_entries)));
            // Everything through `matched_lsn` is durable once the jobs queued so far are done.
            let matched = if self.config.ack_before_fsync { self.acked_lsn() } else { self.matched_lsn };
            self.reply_to_primary(true, matched, out);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_install_snapshot(
        &mut self,
        from: NodeId,
        epoch: Epoch,
        base_lsn: Lsn,
        base_epoch: Epoch,
        partitions: Vec<PartitionSnapshot>,
        round: u64,
        out: &mut Vec<Effect>,
    ) {
        if !self.accept_primary(from, epoch, out) {
            return;
        }
        self.reply_round = self.reply_round.max(round);
        if base_lsn <= self.commit_lsn {
            // We already hold that much; the primary will continue from our reply.
            self.matched_lsn = self.matched_lsn.max(base_lsn);
            self.reply_to_primary(true, self.acked_lsn(), out);
            return;
        }
        let keep_log = self.log.epoch_at(base_lsn) == Some(base_epoch);
        if keep_log {
            self.log.compact_to(base_lsn);
        } else {
            self.log = Log { base_lsn, base_epoch, entries: Vec::new() };
            self.durable_lsn = 0;
        }
        self.machine.reset(partitions.clone());
        for change in self.machine.all_changes() {
            out.push(Effect::Record(migrations::partition_state(self.config.group, &change)));
        }
        self.commit_lsn = base_lsn;
        self.applied_lsn = base_lsn;
        self.matched_lsn = self.matched_lsn.max(base_lsn);
        out.push(Effect::Persist(DiskJob::Install {
            checkpoint: Checkpoint { lsn: base_lsn, epoch: base_epoch, partitions },
            keep_log,
        }));
        let matched = self.matched_lsn;
        self.reply_to_primary(true, matched, out);
    }
}

/// A read's answer from the state machine as it stands.
pub(super) fn read_answer(machine: &StateMachine, partition: PartitionId, key: &str) -> Answer {
    match machine.read(partition, key) {
        Ok(value) => Answer::Done(OpResult::Value(value)),
        Err(refusal) => Answer::Refused(refusal),
    }
}

pub(super) fn forward_reply(gateway: NodeId, request: u64, answer: Answer) -> Effect {
    Effect::Send { to: gateway, message: StoreMessage::ForwardReply { request, answer } }
}

#[path = "replica_migration.rs"]
mod migrations;

#[cfg(test)]
#[path = "replica_tests.rs"]
mod tests;
