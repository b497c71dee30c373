//! A replica's part in migrations. Every replica applies the migration entries of its log (the
//! state machine's business) and reports each partition whose holding changed. A primary also
//! hosts the source streams of the partitions its group is moving away (`migration::source`), the
//! incoming copies its group is receiving (`migration::target`), and resolves a fence its
//! predecessor left open. What it keeps for that is volatile and dropped with the role: whatever
//! must survive is an entry of the group's log, appended here and applied like any other.

use std::collections::BTreeMap;

use super::{Effect, Replica};
use crate::sut::store::entry::{Entry, EntryKind, Holding};
use crate::sut::store::log::Log;
use crate::sut::store::message::{Answer, StoreMessage};
use crate::sut::store::migration::messages::{
    AttemptOutcome, HandoffSeal, MigrationMessage, MigrationRef, PartitionReport, PeerIdentity, ShippedKind,
    SourceCommand, TargetCommand, TargetPosition,
};
use crate::sut::store::migration::source::{SourceEffects, SourceLog, SourceStream, StreamParams, StreamStart};
use crate::sut::store::migration::target::TargetCopies;
use crate::sut::store::state_machine::PartitionChange;
use crate::sut::store::{GroupId, Lsn, PartitionId};
use crate::trace::EventKind;
use crate::vocabulary::{AbortReason, MigrationPhase, NodeId};

/// A primary's migration state.
#[derive(Default)]
pub(super) struct Migrations {
    sources: BTreeMap<PartitionId, SourceStream>,
    targets: TargetCopies,
    /// Attempts whose end this primary announced to the gateways without a stream of its own.
    released: std::collections::BTreeSet<MigrationRef>,
    /// The source group each incoming stream last came from, where its acknowledgements and
    /// redirects go.
    stream_sources: BTreeMap<PartitionId, GroupId>,
}

/// The log as a source stream reads it: committed entries only.
struct LogView<'a> {
    log: &'a Log,
    commit_lsn: Lsn,
}

impl SourceLog for LogView<'_> {
    fn shippable(
        &self,
        partition: PartitionId,
        after: Lsn,
        through: Lsn,
        max: usize,
    ) -> Option<(Vec<(Lsn, ShippedKind)>, Lsn)> {
        if after < self.log.base_lsn {
            return None;
        }
        let through = through.min(self.log.last_lsn()).min(self.commit_lsn);
        let mut found = Vec::new();
        let mut lsn = after;
        while lsn < through && found.len() < max {
            lsn += 1;
            let entry = self.log.get(lsn).expect("shippable_within_log: LSNs between base and last are held");
            if entry.partition != Some(partition) {
                continue;
            }
            let kind = match &entry.kind {
                EntryKind::Write { op_id, op } => ShippedKind::Write { op_id: *op_id, op: op.clone() },
                EntryKind::Cancel { op_id } => ShippedKind::Cancel { op_id: *op_id },
                EntryKind::Fence { .. } => ShippedKind::Fence,
                EntryKind::Unfence { .. } => ShippedKind::Unfence,
                EntryKind::Handoff { owner_epoch, digest, .. } => {
                    ShippedKind::Handoff { owner_epoch: *owner_epoch, digest: *digest }
                }
                EntryKind::EpochStart
                | EntryKind::Own { .. }
                | EntryKind::AttemptBegin { .. }
                | EntryKind::AttemptAbort { .. }
                | EntryKind::Purge { .. }
                | EntryKind::Unstub { .. }
                | EntryKind::IncomingBegin { .. }
                | EntryKind::IncomingChunk { .. }
                | EntryKind::IncomingEntry { .. }
                | EntryKind::IncomingDrop { .. } => continue,
            };
            found.push((lsn, kind));
        }
        Some((found, lsn.max(after)))
    }

    fn commit_lsn(&self) -> Lsn {
        self.commit_lsn
    }

    fn appended_handoff(&self, lsn: Lsn) -> Option<ShippedKind> {
        match self.log.get(lsn).map(|entry| &entry.kind) {
            Some(EntryKind::Handoff { owner_epoch, digest, .. }) => {
                Some(ShippedKind::Handoff { owner_epoch: *owner_epoch, digest: *digest })
            }
            _ => None,
        }
    }
}

impl Replica {
    fn migration_name(&self, migration: MigrationRef) -> String {
        self.config
            .migrations
            .get(migration.id as usize)
            .map_or_else(|| format!("migration {}", migration.id), |spec| spec.name.clone())
    }

    /// The attempt fencing the partition at this primary, if its stream logged the fence (the
    /// state machine knows only once the fence commits; writes must stop from the moment it is
    /// logged).
    pub(super) fn fencing(&self, partition: PartitionId) -> Option<MigrationRef> {
        if self.config.bugs.no_source_fence {
            return None;
        }
        let stream = self.migrations.sources.get(&partition)?;
        stream.fenced().then_some(stream.migration)
    }

    /// Every partition with migration state, for the master (a primary's status only).
    pub(super) fn migration_reports(&self) -> Vec<PartitionReport> {
        if !self.is_primary() {
            return Vec::new();
        }
        // Every partition held, and any with migration state (the master reads a target's
        // `owned` as much as any migration state; a partition not listed is `absent`, which is
        // how it learns a source cleaned up). Planners pick partitions at run time, so no list
        // of a scenario's partitions would do.
        let mut partitions: Vec<PartitionId> = self.machine.migration_partitions();
        partitions.extend(self.machine.owned_partitions());
        partitions.extend(self.migrations.sources.keys().copied());
        partitions.sort_unstable();
        partitions.dedup();
        partitions
            .into_iter()
            .map(|partition| {
                let migration = match self.machine.holding(partition) {
                    Some(Holding::Owned { fence, .. }) => *fence,
                    Some(Holding::Incoming(incoming)) => Some(incoming.migration),
                    Some(Holding::Stub { migration, .. }) => Some(*migration),
                    Some(Holding::Retired) | None => None,
                };
                let mut outcomes = self.machine.outcomes(partition).to_vec();
                if let Some(stream) = self.migrations.sources.get(&partition) {
                    let known = outcomes.iter().any(|(known, _)| *known == stream.migration);
                    if self.config.bugs.handoff_on_append && stream.phase() == MigrationPhase::Commit && !known {
                        // Planted bug: an appended handoff is reported as committed.
                        outcomes.push((stream.migration, AttemptOutcome::Committed));
                    }
                }
                PartitionReport {
                    partition,
                    status: self.machine.status(partition),
                    migration,
                    outcomes,
                    stream: self.migrations.sources.get(&partition).map(|stream| (stream.migration, stream.phase())),
                }
            })
            .collect()
    }

    /// A migration message for this replica's group.
    pub(super) fn on_migration(&mut self, from: NodeId, message: MigrationMessage, out: &mut Vec<Effect>) {
        let serving = self.is_serving();
        match message {
            MigrationMessage::Stream { migration, partition, stream, item, source_group, .. } => {
                self.migrations.stream_sources.insert(partition, source_group);
                if !self.is_primary() {
                    let hint = self.primary.filter(|&primary| primary != self.config.node);
                    let group = source_group;
                    out.push(Effect::Send {
                        to: from,
                        message: StoreMessage::Migration(MigrationMessage::StreamRedirect {
                            group,
                            migration,
                            partition,
                            hint,
                        }),
                    });
                    return;
                }
                if !serving {
                    return;
                }
                let appends = self.migrations.targets.on_stream(
                    &self.machine,
                    from,
                    migration,
                    partition,
                    stream,
                    item,
                    self.config.bugs.stale_stream_applies,
                );
                if !appends.is_empty() {
                    self.append_for(partition, appends, out);
                    self.replicate(out);
                }
                // Answer with what the group holds committed, even when nothing was appended: a
                // source whose message was a duplicate or out of order learns where to resume.
                let mut position = TargetCopies::position(&self.machine, partition, migration, stream);
                if self.config.bugs.catchup_ignores_incarnation && !position.owned {
                    // Planted bug: acknowledge what this primary logged, before its group holds it
                    // (the source, which ignores a change of target, counts it for good).
                    if let Some(logged) = self.migrations.targets.logged_position(&self.machine, partition) {
                        position = logged;
                    }
                }
                self.migrations.targets.acknowledged(partition, position);
                self.send_ack(from, migration, partition, position, out);
            }
            MigrationMessage::StreamAck { migration, partition, target, position, .. } => {
                let log = LogView { log: &self.log, commit_lsn: self.commit_lsn };
                let name = self.migration_name(migration);
                let now = self.now_us;
                let Some(stream) =
                    self.migrations.sources.get_mut(&partition).filter(|stream| stream.migration == migration)
                else {
                    return;
                };
                let mut effects = SourceEffects::default();
                stream.on_ack(&name, target, position, &log, now, &mut effects);
                self.carry_source_effects(partition, effects, out);
            }
            MigrationMessage::StreamRedirect { migration, partition, hint, .. } => {
                if let Some(stream) =
                    self.migrations.sources.get_mut(&partition).filter(|stream| stream.migration == migration)
                {
                    stream.on_redirect(hint, from);
                }
            }
            MigrationMessage::FreezeAck { migration, partition, .. } => {
                if let Some(stream) =
                    self.migrations.sources.get_mut(&partition).filter(|stream| stream.migration == migration)
                {
                    stream.on_freeze_ack(from);
                }
            }
            MigrationMessage::Source { command, .. } => {
                if serving {
                    self.on_source_command(command, out);
                }
            }
            MigrationMessage::Target { command: TargetCommand::Drop { migration, partition }, .. } => {
                if !serving {
                    return;
                }
                let drop = self.machine.incoming(partition).is_some_and(|incoming| {
                    incoming.migration.id == migration.id && incoming.migration.attempt <= migration.attempt
                });
                if drop {
                    self.migrations.targets.dropped(partition, migration);
                    self.append_for(partition, vec![EntryKind::IncomingDrop { migration }], out);
                    self.replicate(out);
                }
            }
            MigrationMessage::Freeze { .. }
            | MigrationMessage::Release { .. }
            | MigrationMessage::RoutingAck { .. }
            | MigrationMessage::Retire { .. }
            | MigrationMessage::Retired { .. }
            | MigrationMessage::DiskMove { .. }
            | MigrationMessage::DiskMoveReport { .. } => {
                panic!(
                    "store: replica of group {} got a gateway's, the master's or its node's message: {message:?}",
                    self.config.group
                )
            }
        }
    }

    /// The source group of a migration's current move, as this replica knows it: the group the
    /// stream said it came from, or else the spec's partitions' first owners.
    fn source_group_of(&self, migration: MigrationRef) -> GroupId {
        self.config
            .migrations
            .get(migration.id as usize)
            .and_then(|spec| spec.partitions.first())
            .map_or(0, |&partition| partition % self.config.groups)
    }

    fn send_ack(
        &self,
        to: NodeId,
        migration: MigrationRef,
        partition: PartitionId,
        position: TargetPosition,
        out: &mut Vec<Effect>,
    ) {
        let group = match (self.migrations.stream_sources.get(&partition), self.machine.incoming(partition)) {
            (Some(&group), _) => group,
            (None, Some(incoming)) => incoming.source_group,
            (None, None) => self.source_group_of(migration),
        };
        let target = PeerIdentity {
            node: self.config.node,
            incarnation: self.config.incarnation,
            epoch: self.epoch,
            session: self.session,
        };
        out.push(Effect::Send {
            to,
            message: StoreMessage::Migration(MigrationMessage::StreamAck {
                group,
                migration,
                partition,
                target,
                position,
            }),
        });
    }

    fn on_source_command(&mut self, command: SourceCommand, out: &mut Vec<Effect>) {
        match command {
            SourceCommand::Start { migration, partition, target } => {
                let running =
                    self.migrations.sources.get(&partition).is_some_and(|stream| stream.migration == migration);
                let ended = self.machine.outcomes(partition).iter().any(|(known, _)| *known == migration);
                let owned_unfenced =
                    matches!(self.machine.holding(partition), Some(Holding::Owned { fence: None, .. }));
                // An attempt a predecessor began is never run a second time: it is aborted when
                // this primary starts serving (`resolve_orphaned_attempts`), and the master retries.
                let orphaned = self.machine.begun(partition).is_some() || self.log_holds_begin(partition);
                if running || ended || orphaned || !owned_unfenced || self.migrations.sources.contains_key(&partition) {
                    return;
                }
                self.open_stream(migration, partition, target, None, out);
            }
            SourceCommand::Abort { migration, partition, reason } => {
                if let Some(stream) =
                    self.migrations.sources.get_mut(&partition).filter(|stream| stream.migration == migration)
                {
                    let mut effects = SourceEffects::default();
                    stream.abort(reason, &mut effects);
                    self.carry_source_effects(partition, effects, out);
                    return;
                }
                // No stream of this attempt here (this primary never started it, or its
                // predecessor did): end it in the log so the master learns how it ended.
                let ended = self.machine.outcomes(partition).iter().any(|(known, _)| *known == migration);
                let pending = self.log_holds_decision(partition, migration);
                if ended || pending {
                    return;
                }
                let kind = if self.machine.fence(partition) == Some(migration) {
                    EntryKind::Unfence { migration, reason }
                } else {
                    EntryKind::AttemptAbort { migration, reason }
                };
                self.append_for(partition, vec![kind], out);
                self.replicate(out);
            }
            SourceCommand::Cleanup { migration, partition } => {
                let ours = matches!(self.machine.holding(partition), Some(Holding::Stub { migration: stub, .. }) if *stub == migration);
                // Planted bug `cleanup_any_holding`: whatever the group holds of the partition now.
                let ours = ours || self.config.bugs.cleanup_any_holding;
                if !ours || self.log_holds_decision(partition, migration) {
                    return;
                }
                self.append_for(partition, vec![EntryKind::Purge { migration }, EntryKind::Unstub { migration }], out);
                self.replicate(out);
            }
        }
    }

    /// Starts a source stream: for a running attempt, or (`seal`) to deliver a committed handoff.
    fn open_stream(
        &mut self,
        migration: MigrationRef,
        partition: PartitionId,
        target: GroupId,
        seal: Option<HandoffSeal>,
        out: &mut Vec<Effect>,
    ) {
        let spec = &self.config.migrations[migration.id as usize];
        let params = StreamParams {
            pause_budget_us: spec.pause_budget_us,
            lag_threshold: spec.lag_threshold,
            chunk_bytes: self.config.timers.snapshot_chunk_bytes as usize,
            retry_us: self.config.timers.retry_us,
        };
        let snapshot = self.machine.snapshot(partition).expect("a held partition has a snapshot");
        let stream_id = self.next_stream_id(migration, partition);
        let start = StreamStart {
            migration,
            partition,
            source_group: self.config.group,
            target_group: target,
            target_members: self.config.group_members[target as usize].clone(),
            target_hint: None,
            gateways: self.config.gateways.clone(),
            params,
            stream: stream_id,
            base_lsn: self.applied_lsn,
            snapshot,
            final_lsn_before_fence: self.config.bugs.final_lsn_before_fence,
            catchup_ignores_incarnation: self.config.bugs.catchup_ignores_incarnation,
            handoff_on_append: self.config.bugs.handoff_on_append,
            freeze_before_snapshot: self.config.bugs.freeze_before_snapshot,
            seal,
        };
        let mut effects = SourceEffects::default();
        if seal.is_none() {
            effects.append.push(EntryKind::AttemptBegin { migration });
        }
        let stream = SourceStream::start(start, self.now_us, &mut effects);
        self.migrations.sources.insert(partition, stream);
        self.carry_source_effects(partition, effects, out);
    }

    /// Whether the log holds, uncommitted, an attempt's beginning.
    fn log_holds_begin(&self, partition: PartitionId) -> bool {
        (self.commit_lsn + 1..=self.log.last_lsn()).any(|lsn| {
            self.log.get(lsn).is_some_and(|entry| {
                entry.partition == Some(partition) && matches!(entry.kind, EntryKind::AttemptBegin { .. })
            })
        })
    }

    /// Whether the log already holds, uncommitted, an entry that ends or cleans up the attempt.
    fn log_holds_decision(&self, partition: PartitionId, migration: MigrationRef) -> bool {
        (self.commit_lsn + 1..=self.log.last_lsn()).any(|lsn| {
            self.log.get(lsn).is_some_and(|entry| {
                entry.partition == Some(partition)
                    && matches!(
                        &entry.kind,
                        EntryKind::Unfence { migration: m, .. }
                            | EntryKind::AttemptAbort { migration: m, .. }
                            | EntryKind::Handoff { migration: m, .. }
                            | EntryKind::Purge { migration: m }
                            | EntryKind::Unstub { migration: m }
                            if *m == migration
                    )
            })
        })
    }

    /// A stream id no earlier stream of this group used: the session, the migration and the LSN
    /// the snapshot is taken at.
    fn next_stream_id(&self, migration: MigrationRef, partition: PartitionId) -> u64 {
        let mut hasher = crate::trace::TraceHasher::default();
        hasher.word(self.session);
        hasher.word(u64::from(migration.id) << 32 | u64::from(migration.attempt));
        hasher.word(u64::from(partition));
        hasher.word(self.applied_lsn);
        hasher.finish() | 1
    }

    /// Appends migration entries for `partition` to this primary's log.
    fn append_for(&mut self, partition: PartitionId, kinds: Vec<EntryKind>, out: &mut Vec<Effect>) -> Vec<Lsn> {
        let mut lsns = Vec::with_capacity(kinds.len());
        let mut entries = Vec::with_capacity(kinds.len());
        let mut lsn = self.log.last_lsn();
        for kind in kinds {
            lsn += 1;
            lsns.push(lsn);
            entries.push(Entry { epoch: self.epoch, lsn, partition: Some(partition), kind });
        }
        self.append_local(entries, out);
        lsns
    }

    /// Carries out what a source stream asked: its messages, its log entries (the handoff's
    /// digest and owner epoch filled in from the state machine), its records, its hold.
    fn carry_source_effects(&mut self, partition: PartitionId, effects: SourceEffects, out: &mut Vec<Effect>) {
        let SourceEffects { sends, append, records } = effects;
        for (to, message) in sends {
            out.push(Effect::Send { to, message: StoreMessage::Migration(message) });
        }
        for record in records {
            out.push(Effect::Record(record));
        }
        for mut kind in append {
            if self.config.bugs.no_source_fence && matches!(kind, EntryKind::Fence { .. }) {
                // Planted bug: the gateways' hold is trusted to stop every write; no fence is
                // logged. The stream still takes this moment as its final LSN.
                let lsn = self.log.last_lsn();
                if let Some(stream) = self.migrations.sources.get_mut(&partition) {
                    stream.on_appended(&kind, lsn, self.now_us);
                }
                continue;
            }
            let fence_migration = match &kind {
                EntryKind::Fence { migration, .. } if self.config.bugs.cleanup_before_commit => Some(*migration),
                _ => None,
            };
            if let EntryKind::Handoff { owner_epoch, digest, .. } = &mut kind {
                *owner_epoch =
                    self.machine.owner_epoch(partition).expect("handoff_from_owner: the source owns the partition") + 1;
                *digest = self.machine.digest(partition).expect("handoff_from_owner: the source holds the partition");
            }
            let lsns = self.append_for(partition, vec![kind.clone()], out);
            if let Some(stream) = self.migrations.sources.get_mut(&partition) {
                stream.on_appended(&kind, lsns[0], self.now_us);
            }
            if self.config.bugs.handoff_on_append && matches!(kind, EntryKind::Handoff { .. }) {
                // Planted bug: the handoff counts as decided once appended here, before the
                // group commits it: gateways are released to the target, the target is sent
                // it, and the master is told (`migration_reports`).
                if let Some(migration) = self.migrations.sources.get(&partition).map(|stream| stream.migration) {
                    let name = self.migration_name(migration);
                    let mut effects = SourceEffects::default();
                    let stream = self.migrations.sources.get_mut(&partition).expect("just found");
                    stream.on_decided(&name, true, None, self.now_us, &mut effects);
                    self.carry_source_effects(partition, effects, out);
                }
            }
            if let Some(migration) = fence_migration {
                // Planted bug: the source's copy goes as soon as it fences, trusting the target's.
                self.append_for(partition, vec![EntryKind::Purge { migration }], out);
            }
            self.replicate(out);
        }
        if let Some(stream) = self.migrations.sources.get(&partition) {
            let hold = stream.hold_lsn();
            self.hold_truncation(partition, hold);
        }
    }

    /// After entries were applied: report the holdings that changed, and (a primary) tell the
    /// streams how their attempts ended, acknowledge copies, and move every stream on.
    pub(super) fn after_apply(&mut self, out: &mut Vec<Effect>) {
        let changes = self.machine.take_changes();
        for change in &changes {
            out.push(Effect::Record(partition_state(self.config.group, change)));
        }
        if !self.is_primary() {
            return;
        }
        for change in &changes {
            self.settle_stream(change, out);
        }
        for (to, partition, migration, _, position) in self.migrations.targets.due_acks(&self.machine) {
            if self.config.bugs.catchup_ignores_incarnation && !position.owned {
                // Planted bug: this target acknowledges on receipt only (see `on_migration`).
                continue;
            }
            self.send_ack(to, migration, partition, position, out);
        }
        self.migration_tick(out);
    }

    /// A stream whose attempt's decisive entry committed learns it. A decision this primary has
    /// no stream for (its predecessor's) still releases the gateways.
    fn settle_stream(&mut self, change: &PartitionChange, out: &mut Vec<Effect>) {
        let partition = change.partition;
        let Some(stream) = self.migrations.sources.get(&partition) else {
            if let Some(&(migration, outcome)) = self.machine.outcomes(partition).last() {
                if !self.migrations.released.insert(migration) {
                    return;
                }
                let moved_to = match (outcome, self.machine.holding(partition)) {
                    (AttemptOutcome::Committed, Some(Holding::Stub { to_group, .. })) => Some(*to_group),
                    _ => None,
                };
                for &gateway in &self.config.gateways {
                    out.push(Effect::Send {
                        to: gateway,
                        // A predecessor's attempt: no freeze start known here.
                        message: StoreMessage::Migration(MigrationMessage::Release {
                            migration,
                            partition,
                            moved_to,
                            hold_left_us: 0,
                        }),
                    });
                }
            }
            return;
        };
        let migration = stream.migration;
        let outcome =
            self.machine.outcomes(partition).iter().find(|(known, _)| *known == migration).map(|(_, outcome)| *outcome);
        let Some(outcome) = outcome else { return };
        let name = self.migration_name(migration);
        let mut effects = SourceEffects::default();
        let stream = self.migrations.sources.get_mut(&partition).expect("checked above");
        match outcome {
            AttemptOutcome::Committed => stream.on_decided(&name, true, None, self.now_us, &mut effects),
            AttemptOutcome::Aborted(reason) => stream.on_decided(&name, false, Some(reason), self.now_us, &mut effects),
        }
        self.carry_source_effects(partition, effects, out);
    }

    /// Moves every source stream on (ships what committed, decides, resends); drops those done.
    pub(super) fn migration_tick(&mut self, out: &mut Vec<Effect>) {
        self.resume_handoffs(out);
        let partitions: Vec<PartitionId> = self.migrations.sources.keys().copied().collect();
        for partition in partitions {
            let log = LogView { log: &self.log, commit_lsn: self.commit_lsn };
            let stream = self.migrations.sources.get_mut(&partition).expect("listed above");
            let name = self
                .config
                .migrations
                .get(stream.migration.id as usize)
                .map_or_else(String::new, |spec| spec.name.clone());
            let mut effects = SourceEffects::default();
            stream.on_tick(&name, &log, self.now_us, &mut effects);
            let finished = stream.finished();
            let finished_migration = stream.migration;
            self.carry_source_effects(partition, effects, out);
            if finished {
                self.migrations.sources.remove(&partition);
                self.release_truncation(partition);
                // The target owns the partition: the source's copy goes (the stub stays until
                // every gateway routes to the target).
                let stub = matches!(self.machine.holding(partition), Some(Holding::Stub { migration, .. }) if *migration == finished_migration);
                if stub
                    && self.machine.status_keys(partition) > 0
                    && !self.log_holds_decision(partition, finished_migration)
                {
                    self.append_for(partition, vec![EntryKind::Purge { migration: finished_migration }], out);
                    self.replicate(out);
                }
            }
        }
    }

    /// A stub that still holds its data, with no stream here: its target may lack the handoff
    /// (a predecessor committed it and failed before delivering it). Deliver it, sealed.
    fn resume_handoffs(&mut self, out: &mut Vec<Effect>) {
        let pending: Vec<(PartitionId, MigrationRef, GroupId, u64)> = self
            .machine
            .stubs()
            .into_iter()
            .filter(|(partition, migration, _, _)| {
                !self.migrations.sources.contains_key(partition)
                    && self.machine.status_keys(*partition) > 0
                    && !self.log_holds_decision(*partition, *migration)
            })
            .collect();
        for (partition, migration, to_group, owner_epoch) in pending {
            let digest = self.machine.digest(partition).expect("a stub holds its data until purged");
            self.open_stream(migration, partition, to_group, Some(HandoffSeal { owner_epoch, digest }), out);
        }
    }

    /// A new primary, once its epoch committed (everything its log held has committed by now): an
    /// attempt a predecessor began and did not end is aborted at once, with its fence lifted if it
    /// fenced. Running it again here could pause writes twice for one attempt.
    pub(super) fn resolve_orphaned_attempts(&mut self, out: &mut Vec<Effect>) {
        let orphaned: Vec<(PartitionId, EntryKind)> = self
            .machine
            .owned_partitions()
            .into_iter()
            .filter(|partition| !self.migrations.sources.contains_key(partition))
            .filter_map(|partition| {
                let reason = AbortReason::SourceFailover;
                match (self.machine.fence(partition), self.machine.begun(partition)) {
                    (Some(migration), _) => Some((partition, EntryKind::Unfence { migration, reason })),
                    (None, Some(migration)) => Some((partition, EntryKind::AttemptAbort { migration, reason })),
                    (None, None) => None,
                }
            })
            .collect();
        for (partition, kind) in orphaned {
            self.append_for(partition, vec![kind], out);
        }
    }

    /// A write (or a cancellation) for a partition this primary has fenced is refused before it
    /// is logged, with what is left of the attempt's hold window.
    pub(super) fn refuse_fenced_write(&self, partition: PartitionId) -> Option<Answer> {
        let migration = self.fencing(partition)?;
        let hold_us = self.migrations.sources.get(&partition).map_or(0, |stream| stream.hold_left_us(self.now_us));
        Some(Answer::Frozen { migration, hold_us })
    }

    /// Drops the primary's migration state (the role ends).
    pub(super) fn drop_migrations(&mut self) {
        for partition in self.migrations.sources.keys().copied().collect::<Vec<_>>() {
            self.release_truncation(partition);
        }
        self.migrations = Migrations::default();
    }
}

/// The `partition_state` event for one change.
pub(super) fn partition_state(group: GroupId, change: &PartitionChange) -> EventKind {
    EventKind::PartitionState {
        group,
        partition: change.partition,
        status: change.status,
        owner_epoch: change.owner_epoch,
        keys: change.keys,
    }
}
