//! The master's side of migrations: the coordinator. A migration is a cluster operation (`move`,
//! `scale_out`, `scale_in`, `rebalance`) made of partition moves. The coordinator owns each
//! operation's durable record: when it starts it plans the moves (the scenario's partitions, or
//! the planner's, from the routing table's partition counts), brings a reserve group into the
//! cluster for a scale-out, and then runs the moves at most `max_concurrent` at a time. For each
//! move it starts attempts at the source's primary, aborts an attempt that runs past its time,
//! and finishes each attempt the source's log decided: after a commit it changes the routing and,
//! once every gateway knows the new route, has the source drop the partition; after an abort it
//! has the target drop its partial copy and retries after a backoff, up to the migration's
//! attempts. A scale-in ends by retiring its drained group: removed from membership durably,
//! then each member deletes the group's files. An operator's cancellation aborts the moves not
//! yet committed and starts no more.
//!
//! It decides nothing a source's log decides: whether an attempt committed or aborted is read from
//! the source's reports of its own state machine (the handoff or the abort entry), never assumed,
//! so a master that crashes, or asks for an abort while the source commits, never contradicts the
//! source; a cancellation is an abort request like the attempt timeout's. It does no I/O: its
//! effects say what to persist (before anything is sent), what to send and what to record.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::messages::{AttemptOutcome, DiskMoveReport, MigrationRef, PartitionReport, SourceCommand, TargetCommand};
use super::spec::{MigrationId, MigrationSpec, OperationKind};
use crate::sut::store::{GroupId, PartitionId};
use crate::trace::EventKind;
use crate::vocabulary::{AbortReason, GroupStatus, MigrationPhase, NodeId, PartitionStatus};

/// Where one migration (a cluster operation) stands, durably.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationRecord {
    pub id: MigrationId,
    pub stage: OperationStage,
    /// The operation's moves, fixed when it starts (empty before).
    pub moves: Vec<MoveRecord>,
    /// An operator cancelled it: no move starts any more, running ones abort.
    pub cancelled: bool,
    /// A `disk_move` operation's one move (no partition changes group).
    #[serde(default)]
    pub disk: Option<DiskMoveRecord>,
}

/// A disk move, durably: its attempt and what the master does for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskMoveRecord {
    /// The current (or last) attempt, from 1.
    pub attempt: u32,
    pub stage: DiskStage,
}

/// What the master is doing for a disk move.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DiskStage {
    /// The node's replica is the group's primary: the master elects another (it asked at
    /// `asked_us`, master clock), and asks again if that election kept it.
    Demoting { asked_us: Option<u64> },
    /// The node runs the attempt; the master resends the command once a heartbeat until the
    /// node reports how it ended.
    Running,
    /// The attempt reverted; the next starts at `until_us`.
    Backoff { until_us: u64, reason: AbortReason },
    /// The replica runs from its new disk.
    Done,
    /// The move gave up after `max_attempts`.
    Aborted { reason: AbortReason },
}

/// Where one operation stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OperationStage {
    /// Before the operation's start time.
    Waiting,
    /// Its moves run (or wait for a slot).
    Moving,
    /// A scale-in moved every partition away; the group is retired and these members have
    /// not yet confirmed that they deleted its files.
    Retiring { group: GroupId, pending: Vec<NodeId> },
    /// Ended: `None` when every move finished, else the reason it gave up.
    Ended { reason: Option<AbortReason> },
}

/// One partition move of an operation, durably.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveRecord {
    pub partition: PartitionId,
    /// The group it moves from, fixed when the move starts (a planned move knows it from the plan).
    pub source: Option<GroupId>,
    pub target: GroupId,
    /// The current (or last) attempt, from 1; 0 before the first.
    pub attempt: u32,
    pub stage: Stage,
}

impl MoveRecord {
    /// A planned move waiting for its slot; `by_planner`: it keeps the planner's source, to
    /// check at its start that nobody moved the partition since.
    fn queued(planned: &PlannedMove, by_planner: bool) -> MoveRecord {
        MoveRecord {
            partition: planned.partition,
            source: by_planner.then_some(planned.source),
            target: planned.target,
            attempt: 0,
            stage: Stage::Queued,
        }
    }
}

/// What the coordinator is doing for one move.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    /// Waiting for a slot (`max_concurrent`) or for an earlier move of the same partition.
    Queued,
    /// Attempt `attempt` runs at the source since `started_at_us` (master clock).
    Running { started_at_us: u64 },
    /// The master asked the source to abort the attempt (it ran out of time, or was cancelled);
    /// the source's log says how it really ended.
    Aborting { reason: AbortReason },
    /// The attempt aborted at the source; the target drops its partial copy.
    Dropping { reason: AbortReason },
    /// Waiting before the next attempt.
    Backoff { until_us: u64, reason: AbortReason },
    /// The attempt committed: the routing names the target as of `routing_version`; gateways
    /// learn it, then the source drops the partition.
    CleaningUp { routing_version: u64 },
    /// The partition moved.
    Done,
    /// The move gave up (or never started: its operation gave up or was cancelled first).
    Aborted { reason: AbortReason },
}

impl Stage {
    /// Holds one of the operation's `max_concurrent` slots.
    fn active(&self) -> bool {
        !matches!(self, Stage::Queued | Stage::Done | Stage::Aborted { .. })
    }

    fn ended(&self) -> bool {
        matches!(self, Stage::Done | Stage::Aborted { .. })
    }
}

/// What the coordinator knows of the cluster, from the master's state.
pub struct ClusterView<'a> {
    /// Each group's primary, if it has one.
    pub primaries: &'a [Option<NodeId>],
    /// Each group's members.
    pub members: &'a [Vec<NodeId>],
    pub gateways: &'a [NodeId],
}

/// The master's routing and group membership, which operations change.
pub struct Routing<'a> {
    pub partition_groups: &'a mut Vec<GroupId>,
    pub version: &'a mut u64,
    /// Each group's place in the cluster.
    pub group_status: &'a mut Vec<GroupStatus>,
}

/// What one step asks of the master's driver.
#[derive(Debug, Default)]
pub struct CoordinatorEffects {
    /// Persist the master's state (records, routing and group status) before sending anything.
    pub persist: bool,
    pub sends: Vec<(NodeId, CoordinatorMessage)>,
    /// Push the routing table to these gateways.
    pub push_routing: Vec<NodeId>,
    pub records: Vec<EventKind>,
    /// Elect another primary for these groups, not this node (a disk move's replica).
    pub demote: Vec<(GroupId, NodeId)>,
}

/// A message the coordinator sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoordinatorMessage {
    Source {
        group: GroupId,
        command: SourceCommand,
    },
    Target {
        group: GroupId,
        command: TargetCommand,
    },
    /// Tell a member of a retired group to delete the group's files.
    Retire {
        group: GroupId,
    },
    /// Tell a storage node to move its replica of `group` to disk `to_disk`.
    DiskMove {
        group: GroupId,
        migration: MigrationRef,
        to_disk: u32,
    },
}

/// The volatile part of one move: what was sent when, what the groups reported.
#[derive(Clone, Debug, Default)]
struct Watch {
    last_sent_us: Option<u64>,
    /// The latest reports of the source's and the target's primaries about the partition.
    source_report: Option<PartitionReport>,
    target_report: Option<PartitionReport>,
}

pub struct Coordinator {
    specs: Vec<MigrationSpec>,
    /// How long to wait between resends, and the base of the backoff between attempts.
    heartbeat_us: u64,
    /// Per move, by (migration, partition).
    watches: BTreeMap<(MigrationId, PartitionId), Watch>,
    /// When each operation last asked its retiring group's members to delete it.
    retire_sent_us: BTreeMap<MigrationId, u64>,
    /// The highest routing version each gateway acknowledged (volatile: re-pushed after a restart).
    gateway_versions: BTreeMap<NodeId, u64>,
    /// When each disk move's command was last sent (volatile).
    disk_sent_us: BTreeMap<MigrationId, u64>,
    bugs: CoordinatorBugs,
}

/// The planted bugs the coordinator plays.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoordinatorBugs {
    /// `retry_forever`: attempts are retried with no limit (Valkey).
    pub retry_forever: bool,
    /// `retire_before_owned`: a scale-in's move counts as done once committed, so its group is
    /// retired before each target owns what it received (IoTDB).
    pub retire_before_owned: bool,
    /// `cancel_skips_source_log`: a cancellation drops running moves' target copies at once,
    /// without the source's log deciding the attempt (Kafka).
    pub cancel_skips_source_log: bool,
    /// `cleanup_before_owned`: the source is asked to clean up once the commit is known, without
    /// waiting for the target to own the partition (TiKV).
    pub cleanup_before_owned: bool,
}

/// A move as the planner proposes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlannedMove {
    pub partition: PartitionId,
    pub source: GroupId,
    pub target: GroupId,
}

/// The planner: which partitions an operation moves where, from the routing at its start. Pure;
/// counts partitions per group (every partition weighs the same: the master knows no sizes).
/// `busy` partitions (another operation is moving them) are left alone.
pub fn plan_moves(
    spec: &MigrationSpec,
    partition_groups: &[GroupId],
    group_status: &[GroupStatus],
    busy: &BTreeSet<PartitionId>,
) -> Vec<PlannedMove> {
    let active: Vec<GroupId> = (0..group_status.len() as GroupId)
        .filter(|&group| group_status[group as usize] == GroupStatus::Active)
        .collect();
    let mut owner: Vec<GroupId> = partition_groups.to_vec();
    let count = |owner: &[GroupId], group: GroupId| owner.iter().filter(|&&owned| owned == group).count();
    // The highest-numbered partition `group` owns that is free to move.
    let movable = |owner: &[GroupId], group: GroupId, taken: &[PlannedMove]| {
        (0..owner.len() as PartitionId).rev().find(|&partition| {
            owner[partition as usize] == group
                && !busy.contains(&partition)
                && !taken.iter().any(|planned| planned.partition == partition)
        })
    };
    let mut moves: Vec<PlannedMove> = Vec::new();
    match &spec.kind {
        OperationKind::DiskMove { .. } => {}
        OperationKind::Move => {
            for &partition in &spec.partitions {
                moves.push(PlannedMove { partition, source: owner[partition as usize], target: spec.to });
            }
        }
        OperationKind::ScaleOut if !spec.partitions.is_empty() => {
            for &partition in &spec.partitions {
                moves.push(PlannedMove { partition, source: owner[partition as usize], target: spec.to });
            }
        }
        OperationKind::ScaleOut => {
            // The even share of the cluster the reserve is joining: groups still in reserve are
            // brought in by scale-outs of their own, so they count.
            let reserve = group_status.iter().filter(|&&status| status == GroupStatus::Reserve).count();
            let share = owner.len() / (active.len() + reserve).max(1);
            while count(&owner, spec.to) < share {
                // The most loaded other group (lowest id on ties) gives its highest partition.
                let donors = active.iter().copied().filter(|&group| group != spec.to);
                let Some(donor) = donors
                    .filter(|&group| movable(&owner, group, &moves).is_some())
                    .max_by_key(|&group| (count(&owner, group), std::cmp::Reverse(group)))
                else {
                    break;
                };
                let partition = movable(&owner, donor, &moves).expect("filtered above");
                moves.push(PlannedMove { partition, source: donor, target: spec.to });
                owner[partition as usize] = spec.to;
            }
        }
        OperationKind::ScaleIn { group, to } => {
            let targets: Vec<GroupId> = if to.is_empty() {
                active.iter().copied().filter(|candidate| candidate != group).collect()
            } else {
                to.clone()
            };
            let drained: Vec<PartitionId> = (0..owner.len() as PartitionId)
                .filter(|&partition| owner[partition as usize] == *group && !busy.contains(&partition))
                .collect();
            for partition in drained {
                let Some(target) =
                    targets.iter().copied().min_by_key(|&candidate| (count(&owner, candidate), candidate))
                else {
                    break;
                };
                moves.push(PlannedMove { partition, source: *group, target });
                owner[partition as usize] = target;
            }
        }
        OperationKind::Rebalance => loop {
            let Some(&most) = active
                .iter()
                .filter(|&&group| movable(&owner, group, &moves).is_some())
                .max_by_key(|&&group| (count(&owner, group), std::cmp::Reverse(group)))
            else {
                break;
            };
            let least = *active
                .iter()
                .min_by_key(|&&group| (count(&owner, group), group))
                .expect("a group with a movable partition is active");
            if count(&owner, most) <= count(&owner, least) + 1 {
                break;
            }
            let partition = movable(&owner, most, &moves).expect("filtered above");
            moves.push(PlannedMove { partition, source: most, target: least });
            owner[partition as usize] = least;
        },
    }
    if spec.kind.planned_by_master(&spec.partitions) {
        for planned in &moves {
            assert!(
                planned.source == partition_groups[planned.partition as usize]
                    && planned.source != planned.target
                    && !busy.contains(&planned.partition),
                "planner_moves_a_free_partition_from_its_owner: {} planned {planned:?}, but the partition is in group {}{}",
                spec.name,
                partition_groups[planned.partition as usize],
                if busy.contains(&planned.partition) { " and another operation moves it" } else { "" }
            );
        }
    }
    moves
}

impl Coordinator {
    pub fn new(specs: Vec<MigrationSpec>, heartbeat_us: u64) -> Coordinator {
        Coordinator {
            specs,
            heartbeat_us,
            watches: BTreeMap::new(),
            retire_sent_us: BTreeMap::new(),
            gateway_versions: BTreeMap::new(),
            disk_sent_us: BTreeMap::new(),
            bugs: CoordinatorBugs::default(),
        }
    }

    /// Plants the coordinator's bugs.
    pub fn with_bugs(mut self, bugs: CoordinatorBugs) -> Coordinator {
        self.bugs = bugs;
        self
    }

    /// The records a master starts with before its first boot.
    pub fn initial_records(specs: &[MigrationSpec]) -> Vec<MigrationRecord> {
        specs
            .iter()
            .map(|spec| MigrationRecord {
                id: spec.id,
                stage: OperationStage::Waiting,
                moves: Vec::new(),
                cancelled: false,
                disk: None,
            })
            .collect()
    }

    /// Each group's status before the master's first boot: groups that a scale-out brings in
    /// wait in reserve; every other group is active.
    pub fn initial_group_status(specs: &[MigrationSpec], groups: u32) -> Vec<GroupStatus> {
        (0..groups)
            .map(|group| {
                let reserve = specs.iter().any(|spec| matches!(spec.kind, OperationKind::ScaleOut) && spec.to == group);
                if reserve {
                    GroupStatus::Reserve
                } else {
                    GroupStatus::Active
                }
            })
            .collect()
    }

    fn spec(&self, id: MigrationId) -> &MigrationSpec {
        &self.specs[id as usize]
    }

    fn watch(&mut self, id: MigrationId, partition: PartitionId) -> &mut Watch {
        self.watches.entry((id, partition)).or_default()
    }

    /// A gateway installed routing version `version`.
    pub fn on_routing_ack(&mut self, gateway: NodeId, version: u64) {
        let known = self.gateway_versions.entry(gateway).or_default();
        *known = (*known).max(version);
    }

    /// A member of a retired group deleted the group's files.
    pub fn on_retired(&mut self, node: NodeId, group: GroupId, records: &mut [MigrationRecord]) -> bool {
        let mut changed = false;
        for record in records.iter_mut() {
            if let OperationStage::Retiring { group: retiring, pending } = &mut record.stage {
                if *retiring == group && pending.contains(&node) {
                    pending.retain(|member| *member != node);
                    changed = true;
                }
            }
        }
        changed
    }

    /// A storage node reported where its disk move stands. Returns whether a record changed.
    pub fn on_disk_report(
        &mut self,
        node: NodeId,
        group: GroupId,
        migration: MigrationRef,
        report: DiskMoveReport,
        records: &mut [MigrationRecord],
        now_us: u64,
    ) -> bool {
        let Some(record) = records.get_mut(migration.id as usize) else { return false };
        let spec = &self.specs[migration.id as usize];
        let OperationKind::DiskMove { node: moving, group: of, .. } = spec.kind else { return false };
        let Some(disk) = record.disk.as_mut() else { return false };
        if (moving, of) != (node, group) || matches!(disk.stage, DiskStage::Done | DiskStage::Aborted { .. }) {
            return false;
        }
        let current = migration.attempt == disk.attempt && disk.stage == DiskStage::Running;
        match report {
            // The replica is on its new disk, whichever attempt put it there.
            DiskMoveReport::Completed => disk.stage = DiskStage::Done,
            DiskMoveReport::Reverted(reason) if current => {
                disk.stage = if disk.attempt >= spec.max_attempts && !self.bugs.retry_forever {
                    DiskStage::Aborted { reason }
                } else {
                    DiskStage::Backoff { until_us: now_us + self.heartbeat_us * 4 * u64::from(disk.attempt), reason }
                };
            }
            DiskMoveReport::Primary if current => disk.stage = DiskStage::Demoting { asked_us: None },
            DiskMoveReport::Reverted(_) | DiskMoveReport::Primary | DiskMoveReport::Running(_) => return false,
        }
        true
    }

    /// A disk move operation's step: demote the replica if it is primary, ask its node, retry,
    /// end.
    fn disk_operation(
        &mut self,
        now_us: u64,
        record: &mut MigrationRecord,
        cluster: &ClusterView<'_>,
        out: &mut CoordinatorEffects,
    ) {
        let spec = self.spec(record.id).clone();
        let OperationKind::DiskMove { node, group, to_disk } = spec.kind else { return };
        let disk = record.disk.get_or_insert_with(|| DiskMoveRecord { attempt: 1, stage: DiskStage::Running });
        let primary = cluster.primaries.get(group as usize).copied().flatten();
        let resend_due = self.disk_sent_us.get(&record.id).is_none_or(|&at| now_us >= at + self.heartbeat_us);
        match disk.stage.clone() {
            DiskStage::Running if primary == Some(node) => {
                disk.stage = DiskStage::Demoting { asked_us: None };
                out.persist = true;
            }
            DiskStage::Running => {
                if resend_due {
                    self.disk_sent_us.insert(record.id, now_us);
                    let migration = MigrationRef { id: record.id, attempt: disk.attempt };
                    out.sends.push((node, CoordinatorMessage::DiskMove { group, migration, to_disk }));
                }
            }
            DiskStage::Demoting { asked_us } => {
                if primary.is_some_and(|primary| primary != node) {
                    disk.stage = DiskStage::Running;
                    out.persist = true;
                } else if asked_us.is_none_or(|at| now_us >= at + 8 * self.heartbeat_us) {
                    disk.stage = DiskStage::Demoting { asked_us: Some(now_us) };
                    out.demote.push((group, node));
                }
            }
            DiskStage::Backoff { until_us, .. } => {
                if now_us >= until_us {
                    disk.attempt += 1;
                    disk.stage = DiskStage::Running;
                    self.disk_sent_us.remove(&record.id);
                    out.persist = true;
                }
            }
            DiskStage::Done => {
                record.stage = OperationStage::Ended { reason: None };
                self.end_operation(record, out);
            }
            DiskStage::Aborted { reason } => {
                record.stage = OperationStage::Ended { reason: Some(reason) };
                self.end_operation(record, out);
            }
        }
    }

    /// A group's primary reported its partitions' migration state.
    pub fn on_report(&mut self, group: GroupId, reports: &[PartitionReport], records: &[MigrationRecord]) {
        for record in records {
            for moving in &record.moves {
                let Some(source) = moving.source else { continue };
                if moving.stage.ended() || (group != source && group != moving.target) {
                    continue;
                }
                let partition = moving.partition;
                let report = reports
                    .iter()
                    .find(|report| report.partition == partition)
                    .cloned()
                    .unwrap_or_else(|| PartitionReport::absent(partition));
                let watch = self.watch(record.id, partition);
                if group == source {
                    watch.source_report = Some(report);
                } else {
                    watch.target_report = Some(report);
                }
            }
        }
    }

    /// Advances every migration; `now_us` is the master's clock.
    pub fn on_tick(
        &mut self,
        now_us: u64,
        records: &mut [MigrationRecord],
        routing: &mut Routing<'_>,
        cluster: &ClusterView<'_>,
        out: &mut CoordinatorEffects,
    ) {
        for index in 0..records.len() {
            self.operation(now_us, index, records, routing, cluster, out);
        }
    }

    /// Where every partition will be once the moves other operations than `except` planned
    /// (and have not ended) are done, and which partitions those are: a planner plans from that
    /// projection and leaves those partitions alone, so operations planned at once never pick one
    /// partition twice and each sees the others' effect on the counts.
    fn projected(
        records: &[MigrationRecord],
        except: usize,
        partition_groups: &[GroupId],
    ) -> (Vec<GroupId>, BTreeSet<PartitionId>) {
        let mut owner = partition_groups.to_vec();
        let mut planned = BTreeSet::new();
        let others = records.iter().enumerate().filter(|(index, _)| *index != except);
        for moving in others.flat_map(|(_, record)| record.moves.iter()) {
            if moving.stage.ended() {
                continue;
            }
            if !matches!(moving.stage, Stage::Aborting { .. } | Stage::Dropping { .. }) {
                owner[moving.partition as usize] = moving.target;
            }
            planned.insert(moving.partition);
        }
        (owner, planned)
    }

    /// The partitions some operation other than `except` is moving (started and not ended).
    fn busy(records: &[MigrationRecord], except: usize) -> BTreeSet<PartitionId> {
        records
            .iter()
            .enumerate()
            .filter(|(index, _)| *index != except)
            .flat_map(|(_, record)| record.moves.iter())
            .filter(|moving| moving.stage.active())
            .map(|moving| moving.partition)
            .collect()
    }

    /// Advances one operation: its start, its moves, its end.
    fn operation(
        &mut self,
        now_us: u64,
        index: usize,
        records: &mut [MigrationRecord],
        routing: &mut Routing<'_>,
        cluster: &ClusterView<'_>,
        out: &mut CoordinatorEffects,
    ) {
        let spec = self.spec(records[index].id).clone();
        if let OperationStage::Ended { .. } = records[index].stage {
            return;
        }
        if !records[index].cancelled && spec.cancel_at_us.is_some_and(|at| now_us >= at) {
            self.cancel(&mut records[index], out);
        }
        if let OperationKind::DiskMove { .. } = spec.kind {
            if records[index].stage == OperationStage::Waiting {
                if now_us < spec.at_us {
                    return;
                }
                records[index].stage = OperationStage::Moving;
                out.persist = true;
                out.records.push(EventKind::OperationPlan {
                    migration: spec.name.clone(),
                    operation: spec.kind.name().to_owned(),
                    moves: Vec::new(),
                    max_concurrent: 1,
                });
            }
            self.disk_operation(now_us, &mut records[index], cluster, out);
            return;
        }
        if records[index].stage == OperationStage::Waiting {
            if records[index].cancelled {
                // Cancelled before it began: the partitions it names never move.
                for &partition in &spec.partitions {
                    out.records.push(EventKind::MigrationEnd {
                        migration: spec.name.clone(),
                        partition,
                        attempts: 0,
                        outcome: MigrationPhase::Aborted,
                        reason: Some(AbortReason::Cancelled),
                    });
                }
                self.end_operation(&mut records[index], out);
                return;
            }
            if now_us < spec.at_us {
                return;
            }
            self.start_operation(index, records, routing, cluster, out);
        }
        if let OperationStage::Retiring { group, pending } = records[index].stage.clone() {
            self.retire(now_us, records[index].id, group, &pending, out);
            if pending.is_empty() {
                records[index].stage = OperationStage::Ended { reason: None };
                out.persist = true;
                self.end_operation(&mut records[index], out);
            }
            return;
        }
        self.replan_scale_in(index, records, routing);
        // Start queued moves while slots are free, in plan order; a move waits while another
        // operation moves its partition.
        let busy = Self::busy(records, index);
        let record = &mut records[index];
        let mut running = record.moves.iter().filter(|moving| moving.stage.active()).count() as u32;
        for position in 0..record.moves.len() {
            if running >= spec.max_concurrent.max(1) || record.cancelled {
                break;
            }
            let moving = &record.moves[position];
            if moving.stage != Stage::Queued || busy.contains(&moving.partition) {
                continue;
            }
            self.start_move(now_us, record.id, &mut record.moves[position], routing, out);
            running += 1;
        }
        for position in 0..record.moves.len() {
            // One stage may lead straight into the next (a commit reported, routing changed); a
            // bounded number of steps per tick keeps a bug from spinning.
            for _ in 0..4 {
                let cancelled = record.cancelled;
                if !self.step(now_us, record.id, cancelled, &mut record.moves[position], routing, cluster, out) {
                    break;
                }
            }
            if let Stage::Aborted { reason } = record.moves[position].stage {
                if record.moves[position].attempt > 0 && !record.cancelled {
                    // A move that gave up ends its operation: the moves after it never start.
                    for later in record.moves.iter_mut().filter(|later| later.stage == Stage::Queued) {
                        later.stage = Stage::Aborted { reason };
                        out.records.push(EventKind::MigrationEnd {
                            migration: spec.name.clone(),
                            partition: later.partition,
                            attempts: 0,
                            outcome: MigrationPhase::Aborted,
                            reason: Some(reason),
                        });
                        out.persist = true;
                    }
                }
            }
        }
        if record.moves.iter().all(|moving| moving.stage.ended()) {
            let all_done = record.moves.iter().all(|moving| moving.stage == Stage::Done);
            match &spec.kind {
                OperationKind::ScaleIn { group, .. } if all_done && !record.cancelled => {
                    let drained = routing.partition_groups.iter().all(|owner| owner != group);
                    if !drained {
                        // Another operation moved a partition in meanwhile: the next tick drains
                        // it too (`replan_scale_in`).
                        return;
                    }
                    routing.group_status[*group as usize] = GroupStatus::Retired;
                    *routing.version += 1;
                    let members = cluster.members[*group as usize].clone();
                    out.records.push(EventKind::GroupState {
                        group: *group,
                        status: GroupStatus::Retired,
                        members: members.clone(),
                    });
                    record.stage = OperationStage::Retiring { group: *group, pending: members.clone() };
                    out.persist = true;
                    self.retire(now_us, record.id, *group, &members, out);
                }
                _ => {
                    let reason = record.moves.iter().find_map(|moving| match moving.stage {
                        Stage::Aborted { reason } => Some(reason),
                        _ => None,
                    });
                    let reason = if record.cancelled { Some(AbortReason::Cancelled) } else { reason };
                    record.stage = OperationStage::Ended { reason };
                    out.persist = true;
                    self.end_operation(record, out);
                }
            }
        }
    }

    /// A scale-in whose moves all ended while its group still owns partitions (another operation
    /// moved one in meanwhile) plans moves for those too.
    fn replan_scale_in(&self, index: usize, records: &mut [MigrationRecord], routing: &mut Routing<'_>) {
        let spec = self.spec(records[index].id);
        let OperationKind::ScaleIn { group, .. } = spec.kind else { return };
        let record = &records[index];
        if record.cancelled || !record.moves.iter().all(|moving| moving.stage == Stage::Done) {
            return;
        }
        if routing.partition_groups.iter().all(|&owner| owner != group) {
            return;
        }
        let (owner, planned) = Self::projected(records, index, routing.partition_groups);
        let more = plan_moves(spec, &owner, routing.group_status, &planned);
        records[index].moves.extend(more.iter().map(|planned| MoveRecord::queued(planned, true)));
    }

    /// Plans the operation's moves from the routing as it stands, and brings a scale-out's
    /// reserve group into the cluster.
    fn start_operation(
        &mut self,
        index: usize,
        records: &mut [MigrationRecord],
        routing: &mut Routing<'_>,
        cluster: &ClusterView<'_>,
        out: &mut CoordinatorEffects,
    ) {
        let spec = self.spec(records[index].id).clone();
        let change = match spec.kind {
            OperationKind::ScaleOut if routing.group_status[spec.to as usize] == GroupStatus::Reserve => {
                Some((spec.to, GroupStatus::Active))
            }
            OperationKind::ScaleIn { group, .. } if routing.group_status[group as usize] == GroupStatus::Active => {
                Some((group, GroupStatus::Draining))
            }
            _ => None,
        };
        if let Some((group, status)) = change {
            routing.group_status[group as usize] = status;
            *routing.version += 1;
            out.records.push(EventKind::GroupState { group, status, members: cluster.members[group as usize].clone() });
        }
        let (owner, elsewhere) = Self::projected(records, index, routing.partition_groups);
        let planned = plan_moves(&spec, &owner, routing.group_status, &elsewhere);
        let record = &mut records[index];
        // An explicit move learns its source when it starts (an earlier move may still be taking
        // the partition elsewhere); the planner's moves know theirs.
        let by_planner = spec.kind.planned_by_master(&spec.partitions);
        record.moves = planned.iter().map(|planned| MoveRecord::queued(planned, by_planner)).collect();
        record.stage = OperationStage::Moving;
        out.persist = true;
        out.records.push(EventKind::OperationPlan {
            migration: spec.name.clone(),
            operation: spec.kind.name().to_owned(),
            moves: planned.iter().map(|planned| (planned.partition, planned.source, planned.target)).collect(),
            max_concurrent: spec.max_concurrent,
        });
    }

    /// An operator cancelled the operation: running moves are asked to abort, queued ones end.
    fn cancel(&mut self, record: &mut MigrationRecord, out: &mut CoordinatorEffects) {
        let spec = self.spec(record.id).clone();
        record.cancelled = true;
        out.persist = true;
        out.records.push(EventKind::OperationCancel { migration: spec.name.clone() });
        for moving in &mut record.moves {
            match moving.stage {
                Stage::Queued => {
                    moving.stage = Stage::Aborted { reason: AbortReason::Cancelled };
                    out.records.push(EventKind::MigrationEnd {
                        migration: spec.name.clone(),
                        partition: moving.partition,
                        attempts: 0,
                        outcome: MigrationPhase::Aborted,
                        reason: Some(AbortReason::Cancelled),
                    });
                }
                Stage::Running { .. } if self.bugs.cancel_skips_source_log => {
                    // Planted bug: the attempt counts as aborted now, whatever the source's log
                    // holds, and the target's copy goes.
                    self.record_phase(
                        &spec.name,
                        moving,
                        MigrationPhase::Planned,
                        MigrationPhase::Aborted,
                        Some(AbortReason::Cancelled),
                        out,
                    );
                    moving.stage = Stage::Dropping { reason: AbortReason::Cancelled };
                    self.watch(record.id, moving.partition).last_sent_us = None;
                }
                Stage::Running { .. } => {
                    moving.stage = Stage::Aborting { reason: AbortReason::Cancelled };
                    self.watch(record.id, moving.partition).last_sent_us = None;
                }
                Stage::Backoff { .. } => {
                    moving.stage = Stage::Aborted { reason: AbortReason::Cancelled };
                    self.record_end(&spec.name, moving, MigrationPhase::Aborted, Some(AbortReason::Cancelled), out);
                }
                // An abort under way, or a drop, ends the move without a retry (`step` reads
                // `cancelled`); a committed move finishes.
                Stage::Aborting { .. }
                | Stage::Dropping { .. }
                | Stage::CleaningUp { .. }
                | Stage::Done
                | Stage::Aborted { .. } => {}
            }
        }
    }

    fn end_operation(&self, record: &mut MigrationRecord, out: &mut CoordinatorEffects) {
        let spec = self.spec(record.id);
        let reason = match record.stage {
            OperationStage::Ended { reason } => reason,
            _ if record.cancelled => Some(AbortReason::Cancelled),
            _ => None,
        };
        record.stage = OperationStage::Ended { reason };
        out.persist = true;
        let (moved, total) = match &record.disk {
            Some(disk) => (u32::from(disk.stage == DiskStage::Done), 1),
            None => (
                record.moves.iter().filter(|moving| moving.stage == Stage::Done).count() as u32,
                record.moves.len() as u32,
            ),
        };
        out.records.push(EventKind::OperationEnd {
            migration: spec.name.clone(),
            moved,
            total,
            outcome: if reason.is_some() { MigrationPhase::Aborted } else { MigrationPhase::Done },
            reason,
        });
    }

    /// Asks the retiring group's members that have not confirmed to delete it, once a heartbeat.
    fn retire(
        &mut self,
        now_us: u64,
        id: MigrationId,
        group: GroupId,
        pending: &[NodeId],
        out: &mut CoordinatorEffects,
    ) {
        let due = self.retire_sent_us.get(&id).is_none_or(|&at| now_us >= at + self.heartbeat_us);
        if !due || pending.is_empty() {
            return;
        }
        self.retire_sent_us.insert(id, now_us);
        for &member in pending {
            out.sends.push((member, CoordinatorMessage::Retire { group }));
        }
    }

    fn start_move(
        &mut self,
        now_us: u64,
        id: MigrationId,
        moving: &mut MoveRecord,
        routing: &mut Routing<'_>,
        out: &mut CoordinatorEffects,
    ) {
        let spec = self.spec(id).clone();
        let partition = moving.partition;
        let source = routing.partition_groups[partition as usize];
        if moving.source.is_some_and(|planned| planned != source) || source == moving.target {
            // Another operation moved the partition since the plan (or a cancelled one left it
            // where this move was to take it): this move has nothing to do.
            moving.stage = Stage::Done;
            out.persist = true;
            out.records.push(EventKind::Note {
                text: format!(
                    "master: {}: partition {partition} is in group {source} now (its move to group {} was planned from {:?}); the move is void",
                    spec.name, moving.target, moving.source
                ),
            });
            self.record_end(&spec.name, moving, MigrationPhase::Done, None, out);
            return;
        }
        moving.source = Some(source);
        moving.attempt = 1;
        moving.stage = Stage::Running { started_at_us: now_us };
        out.persist = true;
        out.records.push(EventKind::MigrationPlan {
            migration: spec.name.clone(),
            partition,
            source,
            target: moving.target,
            pause_budget_us: spec.pause_budget_us,
        });
        self.record_phase(&spec.name, moving, MigrationPhase::Planned, MigrationPhase::Snapshot, None, out);
        self.watches.insert((id, partition), Watch::default());
    }

    /// One step of one move; returns whether its stage changed.
    #[allow(clippy::too_many_arguments)]
    fn step(
        &mut self,
        now_us: u64,
        id: MigrationId,
        cancelled: bool,
        moving: &mut MoveRecord,
        routing: &mut Routing<'_>,
        cluster: &ClusterView<'_>,
        out: &mut CoordinatorEffects,
    ) -> bool {
        let spec = self.spec(id).clone();
        let partition = moving.partition;
        let target = moving.target;
        let reference = MigrationRef { id, attempt: moving.attempt };
        let heartbeat_us = self.heartbeat_us;
        let resend_due = self.watch(id, partition).last_sent_us.is_none_or(|at| now_us >= at + heartbeat_us);
        match moving.stage.clone() {
            Stage::Queued | Stage::Done | Stage::Aborted { .. } => false,
            Stage::Running { started_at_us } => {
                if let Some(outcome) = self.source_outcome(id, moving) {
                    return self.attempt_ended(id, moving, outcome, routing, out);
                }
                let source = moving.source.expect("a running migration has its source");
                let stream = self.watch(id, partition).source_report.as_ref().and_then(|report| report.stream);
                if now_us >= started_at_us + spec.attempt_timeout_us {
                    let in_catch_up = stream
                        .is_some_and(|(migration, phase)| migration == reference && phase == MigrationPhase::CatchUp);
                    let reason = if in_catch_up { AbortReason::LagNotConverging } else { AbortReason::AttemptTimeout };
                    moving.stage = Stage::Aborting { reason };
                    out.persist = true;
                    self.watch(id, partition).last_sent_us = None;
                    return true;
                }
                // Resent until the source's primary reports the attempt's stream (a new primary that
                // lacks it is told again).
                let streaming = stream.is_some_and(|(migration, _)| migration == reference);
                if resend_due && !streaming {
                    self.send(
                        id,
                        partition,
                        CoordinatorMessage::Source {
                            group: source,
                            command: SourceCommand::Start { migration: reference, partition, target },
                        },
                        cluster,
                        now_us,
                        out,
                    );
                }
                false
            }
            Stage::Aborting { reason } => {
                if let Some(outcome) = self.source_outcome(id, moving) {
                    return self.attempt_ended(id, moving, outcome, routing, out);
                }
                if resend_due {
                    let source = moving.source.expect("an aborting migration has its source");
                    self.send(
                        id,
                        partition,
                        CoordinatorMessage::Source {
                            group: source,
                            command: SourceCommand::Abort { migration: reference, partition, reason },
                        },
                        cluster,
                        now_us,
                        out,
                    );
                }
                false
            }
            Stage::Dropping { reason } => {
                let dropped = self.watch(id, partition).target_report.as_ref().is_some_and(|report| {
                    !matches!(report.status, PartitionStatus::Incoming)
                        || report.migration.is_none_or(|migration| migration.id != id)
                });
                if dropped {
                    // A cancelled operation retries nothing.
                    let reason = if cancelled { AbortReason::Cancelled } else { reason };
                    let gave_up = moving.attempt >= spec.max_attempts && !self.bugs.retry_forever;
                    if gave_up || cancelled {
                        moving.stage = Stage::Aborted { reason };
                        out.persist = true;
                        self.record_end(&spec.name, moving, MigrationPhase::Aborted, Some(reason), out);
                    } else {
                        let backoff = self.heartbeat_us * 4 * u64::from(moving.attempt);
                        moving.stage = Stage::Backoff { until_us: now_us + backoff, reason };
                        out.persist = true;
                    }
                    return true;
                }
                if resend_due {
                    self.send(
                        id,
                        partition,
                        CoordinatorMessage::Target {
                            group: target,
                            command: TargetCommand::Drop { migration: reference, partition },
                        },
                        cluster,
                        now_us,
                        out,
                    );
                }
                false
            }
            Stage::Backoff { until_us, .. } => {
                if now_us < until_us {
                    return false;
                }
                moving.attempt += 1;
                moving.stage = Stage::Running { started_at_us: now_us };
                out.persist = true;
                self.record_phase(&spec.name, moving, MigrationPhase::Planned, MigrationPhase::Snapshot, None, out);
                self.watches.insert((id, partition), Watch::default());
                true
            }
            Stage::CleaningUp { .. }
                if self.bugs.retire_before_owned
                    && moving
                        .source
                        .is_some_and(|source| routing.group_status[source as usize] == GroupStatus::Draining) =>
            {
                // Planted bug: the draining group is retired anyway, so its moves are done at the commit.
                self.record_phase(&spec.name, moving, MigrationPhase::Cleanup, MigrationPhase::Done, None, out);
                self.record_end(&spec.name, moving, MigrationPhase::Done, None, out);
                out.persist = true;
                moving.stage = Stage::Done;
                true
            }
            Stage::CleaningUp { routing_version } => {
                let behind: Vec<NodeId> = cluster
                    .gateways
                    .iter()
                    .copied()
                    .filter(|gateway| {
                        self.gateway_versions.get(gateway).is_none_or(|&version| version < routing_version)
                    })
                    .collect();
                if !behind.is_empty() {
                    if resend_due {
                        self.watch(id, partition).last_sent_us = Some(now_us);
                        out.push_routing.extend(behind);
                    }
                    return false;
                }
                // The source drops its copy only once the target owns the partition: until then the
                // source's stub may have to deliver the handoff again.
                let cleanup_before_owned = self.bugs.cleanup_before_owned;
                let watch = self.watch(id, partition);
                let target_owns =
                    watch.target_report.as_ref().is_some_and(|report| report.status == PartitionStatus::Owned);
                // Planted bug `cleanup_before_owned`: the commit is taken as the install.
                if !target_owns && !cleanup_before_owned {
                    return false;
                }
                let cleaned =
                    watch.source_report.as_ref().is_some_and(|report| report.status == PartitionStatus::Absent);
                if !cleaned {
                    if resend_due {
                        let source = moving.source.expect("a migration cleaning up has its source");
                        self.send(
                            id,
                            partition,
                            CoordinatorMessage::Source {
                                group: source,
                                command: SourceCommand::Cleanup { migration: reference, partition },
                            },
                            cluster,
                            now_us,
                            out,
                        );
                    }
                    return false;
                }
                self.record_phase(&spec.name, moving, MigrationPhase::Cleanup, MigrationPhase::Done, None, out);
                self.record_end(&spec.name, moving, MigrationPhase::Done, None, out);
                out.persist = true;
                moving.stage = Stage::Done;
                true
            }
        }
    }

    /// How the source's log says the move's current attempt ended, if it has.
    fn source_outcome(&mut self, id: MigrationId, moving: &MoveRecord) -> Option<AttemptOutcome> {
        let reference = MigrationRef { id, attempt: moving.attempt };
        let report = self.watch(id, moving.partition).source_report.as_ref()?;
        report.outcomes.iter().find(|(migration, _)| *migration == reference).map(|(_, outcome)| *outcome)
    }

    fn attempt_ended(
        &mut self,
        id: MigrationId,
        moving: &mut MoveRecord,
        outcome: AttemptOutcome,
        routing: &mut Routing<'_>,
        out: &mut CoordinatorEffects,
    ) -> bool {
        let name = self.spec(id).name.clone();
        let partition = moving.partition;
        let reference = MigrationRef { id, attempt: moving.attempt };
        match outcome {
            AttemptOutcome::Committed => {
                routing.partition_groups[partition as usize] = moving.target;
                *routing.version += 1;
                moving.stage = Stage::CleaningUp { routing_version: *routing.version };
                out.persist = true;
                self.record_phase(&name, moving, MigrationPhase::Commit, MigrationPhase::Cleanup, None, out);
            }
            AttemptOutcome::Aborted(reason) => {
                // A cancellation that lost the race to another abort still ends the move.
                let reason = if matches!(moving.stage, Stage::Aborting { reason: AbortReason::Cancelled }) {
                    AbortReason::Cancelled
                } else {
                    reason
                };
                let from = self
                    .watch(id, partition)
                    .source_report
                    .as_ref()
                    .and_then(|report| report.stream)
                    .filter(|(migration, _)| *migration == reference)
                    .map_or(MigrationPhase::Planned, |(_, phase)| phase);
                self.record_phase(&name, moving, from, MigrationPhase::Aborted, Some(reason), out);
                moving.stage = Stage::Dropping { reason };
                out.persist = true;
            }
        }
        self.watch(id, partition).last_sent_us = None;
        true
    }

    fn send(
        &mut self,
        id: MigrationId,
        partition: PartitionId,
        message: CoordinatorMessage,
        cluster: &ClusterView<'_>,
        now_us: u64,
        out: &mut CoordinatorEffects,
    ) {
        let group = match &message {
            CoordinatorMessage::Source { group, .. } | CoordinatorMessage::Target { group, .. } => *group,
            CoordinatorMessage::Retire { .. } | CoordinatorMessage::DiskMove { .. } => {
                unreachable!("retirements and disk moves go to nodes, not groups")
            }
        };
        let Some(primary) = cluster.primaries.get(group as usize).copied().flatten() else { return };
        self.watch(id, partition).last_sent_us = Some(now_us);
        out.sends.push((primary, message));
    }

    fn record_phase(
        &self,
        name: &str,
        moving: &MoveRecord,
        from: MigrationPhase,
        to: MigrationPhase,
        reason: Option<AbortReason>,
        out: &mut CoordinatorEffects,
    ) {
        out.records.push(EventKind::Phase {
            migration: name.to_owned(),
            attempt: moving.attempt,
            partition: moving.partition,
            from,
            to,
            reason,
        });
    }

    fn record_end(
        &self,
        name: &str,
        moving: &MoveRecord,
        outcome: MigrationPhase,
        reason: Option<AbortReason>,
        out: &mut CoordinatorEffects,
    ) {
        out.records.push(EventKind::MigrationEnd {
            migration: name.to_owned(),
            partition: moving.partition,
            attempts: moving.attempt,
            outcome,
            reason,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEARTBEAT_US: u64 = 5_000;

    fn spec(kind: OperationKind, partitions: Vec<PartitionId>, to: GroupId, max_concurrent: u32) -> MigrationSpec {
        MigrationSpec { kind, max_concurrent, ..MigrationSpec::moving(0, "op", 1_000, partitions, to) }
    }

    fn counts(owner: &[GroupId], groups: u32) -> Vec<usize> {
        (0..groups).map(|group| owner.iter().filter(|&&owned| owned == group).count()).collect()
    }

    fn apply(owner: &mut [GroupId], moves: &[PlannedMove]) {
        for planned in moves {
            assert_eq!(owner[planned.partition as usize], planned.source, "a move starts where the partition is");
            owner[planned.partition as usize] = planned.target;
        }
    }

    #[test]
    fn the_rebalance_planner_evens_counts_to_within_one_and_leaves_busy_partitions_alone() {
        let mut owner: Vec<GroupId> = vec![0, 0, 0, 0, 0, 0, 0, 1, 2, 2, 3, 0];
        let status = vec![GroupStatus::Active; 4];
        let busy: BTreeSet<PartitionId> = [11].into();
        let moves = plan_moves(&spec(OperationKind::Rebalance, vec![], 0, 3), &owner, &status, &busy);
        assert!(moves.iter().all(|planned| planned.partition != 11), "a busy partition was planned: {moves:?}");
        apply(&mut owner, &moves);
        let counts = counts(&owner, 4);
        assert!(counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1, "{counts:?} after {moves:?}");
        assert_eq!(moves.len(), 5, "no more moves than needed: {moves:?}");
    }

    #[test]
    fn the_scale_out_planner_fills_the_new_group_to_its_share_from_the_most_loaded() {
        let mut owner: Vec<GroupId> = (0..16).map(|partition| partition % 4).collect();
        let mut status = vec![GroupStatus::Active; 5];
        status[4] = GroupStatus::Active;
        let moves = plan_moves(&spec(OperationKind::ScaleOut, vec![], 4, 2), &owner, &status, &BTreeSet::new());
        apply(&mut owner, &moves);
        assert_eq!(counts(&owner, 5), vec![3, 3, 3, 4, 3], "{moves:?}");
        // A group in reserve or retired is never a planner's donor or target.
        status[3] = GroupStatus::Retired;
        let owner: Vec<GroupId> = (0..16).map(|partition| partition % 3).collect();
        let moves = plan_moves(&spec(OperationKind::Rebalance, vec![], 0, 2), &owner, &status, &BTreeSet::new());
        assert!(moves.iter().all(|planned| planned.target != 3), "{moves:?}");
    }

    #[test]
    fn the_scale_in_planner_drains_its_group_over_the_least_loaded_targets() {
        let mut owner: Vec<GroupId> = (0..16).map(|partition| partition % 4).collect();
        owner[0] = 1; // group 0 has 3, group 1 has 5
        let status = vec![GroupStatus::Active, GroupStatus::Active, GroupStatus::Active, GroupStatus::Draining];
        let drain = spec(OperationKind::ScaleIn { group: 3, to: vec![] }, vec![], 0, 2);
        let moves = plan_moves(&drain, &owner, &status, &BTreeSet::new());
        apply(&mut owner, &moves);
        assert_eq!(counts(&owner, 4), vec![6, 5, 5, 0], "least loaded first, lowest id on ties: {moves:?}");
        let mut owner: Vec<GroupId> = (0..16).map(|partition| partition % 4).collect();
        let only = spec(OperationKind::ScaleIn { group: 3, to: vec![2] }, vec![], 0, 2);
        let moves = plan_moves(&only, &owner, &status, &BTreeSet::new());
        apply(&mut owner, &moves);
        assert_eq!(counts(&owner, 4), vec![4, 4, 8, 0], "`to` names the only target: {moves:?}");
    }

    /// A coordinator with one operation and the master's state around it.
    struct Harness {
        coordinator: Coordinator,
        records: Vec<MigrationRecord>,
        owner: Vec<GroupId>,
        version: u64,
        status: Vec<GroupStatus>,
        primaries: Vec<Option<NodeId>>,
        members: Vec<Vec<NodeId>>,
    }

    impl Harness {
        fn new(spec: MigrationSpec, groups: u32, partitions: u32) -> Harness {
            let specs = vec![spec];
            Harness {
                records: Coordinator::initial_records(&specs),
                status: Coordinator::initial_group_status(&specs, groups),
                coordinator: Coordinator::new(specs, HEARTBEAT_US),
                owner: (0..partitions).map(|partition| partition % groups).collect(),
                version: 1,
                primaries: (0..groups).map(|group| Some(group * 10)).collect(),
                members: (0..groups).map(|group| vec![group * 10, group * 10 + 1, group * 10 + 2]).collect(),
            }
        }

        fn tick(&mut self, now_us: u64) -> CoordinatorEffects {
            let mut out = CoordinatorEffects::default();
            self.coordinator.on_tick(
                now_us,
                &mut self.records,
                &mut Routing {
                    partition_groups: &mut self.owner,
                    version: &mut self.version,
                    group_status: &mut self.status,
                },
                &ClusterView { primaries: &self.primaries, members: &self.members, gateways: &[100] },
                &mut out,
            );
            out
        }

        fn report(
            &mut self,
            group: GroupId,
            partition: PartitionId,
            status: PartitionStatus,
            outcome: Option<(u32, AttemptOutcome)>,
        ) {
            let report = PartitionReport {
                partition,
                status,
                migration: None,
                outcomes: outcome
                    .map(|(attempt, outcome)| (MigrationRef { id: 0, attempt }, outcome))
                    .into_iter()
                    .collect(),
                stream: None,
            };
            self.coordinator.on_report(group, &[report], &self.records);
        }

        /// Every move through commit and cleanup: source reports the handoff, gateways the new
        /// routing, the target ownership, the source that it dropped the partition.
        fn finish(&mut self, partition: PartitionId, now_us: u64) {
            let moving = self.records[0].moves.iter().find(|moving| moving.partition == partition).unwrap().clone();
            let (source, target) = (moving.source.unwrap(), moving.target);
            self.report(source, partition, PartitionStatus::Stub, Some((1, AttemptOutcome::Committed)));
            self.tick(now_us);
            self.coordinator.on_routing_ack(100, self.version);
            self.report(target, partition, PartitionStatus::Owned, None);
            self.report(source, partition, PartitionStatus::Absent, None);
            self.tick(now_us + 1);
        }

        fn starts(out: &CoordinatorEffects) -> Vec<PartitionId> {
            out.sends
                .iter()
                .filter_map(|(_, message)| match message {
                    CoordinatorMessage::Source { command: SourceCommand::Start { partition, .. }, .. } => {
                        Some(*partition)
                    }
                    _ => None,
                })
                .collect()
        }
    }

    #[test]
    fn at_most_max_concurrent_moves_run_and_the_next_starts_when_one_ends() {
        let mut harness = Harness::new(spec(OperationKind::Move, vec![1, 5, 9], 0, 2), 4, 16);
        assert!(harness.tick(500).sends.is_empty(), "started before its time");
        let out = harness.tick(1_000);
        assert!(out.persist, "the plan is durable before anything is sent");
        assert_eq!(Harness::starts(&out), vec![1, 5], "two moves at once, in plan order");
        assert!(matches!(out.records[0], EventKind::OperationPlan { ref moves, .. } if moves.len() == 3));
        harness.finish(1, 2_000);
        assert_eq!(harness.owner[1], 0, "the commit changed the routing");
        let out = harness.tick(3_000);
        assert_eq!(Harness::starts(&out), vec![9], "the third starts once a slot is free");
        harness.finish(5, 4_000);
        harness.finish(9, 5_000);
        let ended = harness.records[0].stage.clone();
        assert_eq!(ended, OperationStage::Ended { reason: None });
    }

    #[test]
    fn a_cancellation_aborts_running_moves_ends_queued_ones_and_retries_nothing() {
        let mut operation = spec(OperationKind::Move, vec![1, 5, 9], 0, 1);
        operation.cancel_at_us = Some(2_000);
        let mut harness = Harness::new(operation, 4, 16);
        harness.tick(1_000);
        let out = harness.tick(2_000);
        let aborts: Vec<AbortReason> = out
            .sends
            .iter()
            .filter_map(|(_, message)| match message {
                CoordinatorMessage::Source { command: SourceCommand::Abort { reason, .. }, .. } => Some(*reason),
                _ => None,
            })
            .collect();
        assert_eq!(aborts, vec![AbortReason::Cancelled], "the running move is asked to abort");
        // The source's log decides: here another abort won the race; the move still ends cancelled.
        harness.report(1, 1, PartitionStatus::Owned, Some((1, AttemptOutcome::Aborted(AbortReason::DrainOverBudget))));
        harness.tick(3_000);
        harness.report(0, 1, PartitionStatus::Absent, None);
        let out = harness.tick(4_000);
        assert!(Harness::starts(&out).is_empty(), "a cancelled operation started a move");
        let ends: Vec<(PartitionId, Option<AbortReason>)> = out
            .records
            .iter()
            .filter_map(|record| match record {
                EventKind::MigrationEnd { partition, reason, .. } => Some((*partition, *reason)),
                _ => None,
            })
            .collect();
        assert_eq!(ends, vec![(1, Some(AbortReason::Cancelled))]);
        assert_eq!(harness.records[0].stage, OperationStage::Ended { reason: Some(AbortReason::Cancelled) });
        assert!(harness.records[0]
            .moves
            .iter()
            .all(|moving| moving.stage == Stage::Aborted { reason: AbortReason::Cancelled }));
    }

    #[test]
    fn a_scale_in_retires_its_group_once_drained_and_every_member_deleted_it() {
        let mut harness = Harness::new(spec(OperationKind::ScaleIn { group: 3, to: vec![] }, vec![], 0, 4), 4, 8);
        let out = harness.tick(1_000);
        assert_eq!(harness.status[3], GroupStatus::Draining);
        assert_eq!(Harness::starts(&out), vec![3, 7]);
        harness.finish(3, 2_000);
        harness.finish(7, 3_000);
        assert_eq!(harness.status[3], GroupStatus::Retired, "drained, the group leaves the cluster durably");
        let out = harness.tick(3_001 + HEARTBEAT_US);
        let retires: Vec<NodeId> = out
            .sends
            .iter()
            .filter(|(_, message)| matches!(message, CoordinatorMessage::Retire { group: 3 }))
            .map(|(node, _)| *node)
            .collect();
        assert_eq!(retires, vec![30, 31, 32], "every member is told to delete it");
        for member in [30, 31] {
            assert!(harness.coordinator.on_retired(member, 3, &mut harness.records));
        }
        harness.tick(9_000 + HEARTBEAT_US);
        assert!(
            matches!(harness.records[0].stage, OperationStage::Retiring { ref pending, .. } if pending == &vec![32])
        );
        harness.coordinator.on_retired(32, 3, &mut harness.records);
        let out = harness.tick(20_000);
        assert_eq!(harness.records[0].stage, OperationStage::Ended { reason: None });
        assert!(out.records.iter().any(|record| matches!(record, EventKind::OperationEnd { moved: 2, total: 2, .. })));
    }
}
