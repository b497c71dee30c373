//! The master's side of migrations: the coordinator. It owns each migration's durable record
//! (which partition moves, which attempt runs, how it ended), starts attempts at the source's
//! primary, aborts an attempt that runs past its time, and finishes each attempt the source's log
//! decided: after a commit it changes the routing and, once every gateway knows the new route,
//! has the source drop the partition; after an abort it has the target drop its partial copy and
//! retries after a backoff, up to the migration's attempts.
//!
//! It decides nothing a source's log decides: whether an attempt committed or aborted is read from
//! the source's reports of its own state machine (the handoff or the abort entry), never assumed,
//! so a master that crashes, or asks for an abort while the source commits, never contradicts the
//! source. It does no I/O: its effects say what to persist (before anything is sent), what to send
//! and what to record.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::messages::{AttemptOutcome, MigrationRef, PartitionReport, SourceCommand, TargetCommand};
use super::spec::{MigrationId, MigrationSpec};
use crate::sut::store::{GroupId, PartitionId};
use crate::trace::EventKind;
use crate::vocabulary::{AbortReason, MigrationPhase, NodeId, PartitionStatus};

/// Where one migration stands, durably.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationRecord {
    pub id: MigrationId,
    /// Which of the spec's partitions is moving (or moves next).
    pub partition_index: u32,
    /// The current (or last) attempt for that partition, from 1.
    pub attempt: u32,
    /// The group the partition moves from, fixed when the partition's move is planned.
    pub source: Option<GroupId>,
    pub stage: Stage,
}

/// What the coordinator is doing for one migration's current partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    /// Before the migration's start time.
    Waiting,
    /// Attempt `attempt` runs at the source since `started_at_us` (master clock).
    Running { started_at_us: u64 },
    /// The master asked the source to abort the attempt (it ran out of time); the source's log
    /// says how it really ended.
    Aborting { reason: AbortReason },
    /// The attempt aborted at the source; the target drops its partial copy.
    Dropping { reason: AbortReason },
    /// Waiting before the next attempt.
    Backoff { until_us: u64, reason: AbortReason },
    /// The attempt committed: the routing names the target as of `routing_version`; gateways
    /// learn it, then the source drops the partition.
    CleaningUp { routing_version: u64 },
    /// Every partition moved.
    Done,
    /// The migration gave up.
    Aborted { reason: AbortReason },
}

/// What the coordinator knows of the cluster, from the master's state.
pub struct ClusterView<'a> {
    /// Each group's primary, if it has one.
    pub primaries: &'a [Option<NodeId>],
    pub gateways: &'a [NodeId],
}

/// The master's routing, which a commit changes.
pub struct Routing<'a> {
    pub partition_groups: &'a mut Vec<GroupId>,
    pub version: &'a mut u64,
}

/// What one step asks of the master's driver.
#[derive(Debug, Default)]
pub struct CoordinatorEffects {
    /// Persist the master's state (records and routing) before sending anything.
    pub persist: bool,
    pub sends: Vec<(NodeId, CoordinatorMessage)>,
    /// Push the routing table to these gateways.
    pub push_routing: Vec<NodeId>,
    pub records: Vec<EventKind>,
}

/// A message the coordinator sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoordinatorMessage {
    Source { group: GroupId, command: SourceCommand },
    Target { group: GroupId, command: TargetCommand },
}

/// The volatile part: what was sent when, what gateways acknowledged, what the groups reported.
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
    watches: Vec<Watch>,
    /// The highest routing version each gateway acknowledged (volatile: re-pushed after a restart).
    gateway_versions: BTreeMap<NodeId, u64>,
}

impl Coordinator {
    pub fn new(specs: Vec<MigrationSpec>, heartbeat_us: u64) -> Coordinator {
        let watches = specs.iter().map(|_| Watch::default()).collect();
        Coordinator { specs, heartbeat_us, watches, gateway_versions: BTreeMap::new() }
    }

    /// The records a master starts with before its first boot.
    pub fn initial_records(specs: &[MigrationSpec]) -> Vec<MigrationRecord> {
        specs
            .iter()
            .map(|spec| MigrationRecord {
                id: spec.id,
                partition_index: 0,
                attempt: 0,
                source: None,
                stage: Stage::Waiting,
            })
            .collect()
    }

    fn spec(&self, id: MigrationId) -> &MigrationSpec {
        &self.specs[id as usize]
    }

    fn partition(&self, record: &MigrationRecord) -> PartitionId {
        self.spec(record.id).partitions[record.partition_index as usize]
    }

    /// A gateway installed routing version `version`.
    pub fn on_routing_ack(&mut self, gateway: NodeId, version: u64) {
        let known = self.gateway_versions.entry(gateway).or_default();
        *known = (*known).max(version);
    }

    /// A group's primary reported its partitions' migration state.
    pub fn on_report(&mut self, group: GroupId, reports: &[PartitionReport], records: &[MigrationRecord]) {
        for record in records {
            let Some(source) = record.source else { continue };
            let partition = self.partition(record);
            let target = self.spec(record.id).to;
            let report = reports.iter().find(|report| report.partition == partition).cloned();
            let watch = &mut self.watches[record.id as usize];
            if group == source {
                watch.source_report = Some(report.unwrap_or_else(|| PartitionReport::absent(partition)));
            } else if group == target {
                watch.target_report = Some(report.unwrap_or_else(|| PartitionReport::absent(partition)));
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
        for record in records.iter_mut() {
            // One stage may lead straight into the next (a commit reported, routing changed);
            // a bounded number of steps per tick keeps a bug from spinning.
            for _ in 0..4 {
                if !self.step(now_us, record, routing, cluster, out) {
                    break;
                }
            }
        }
    }

    /// One step of one migration; returns whether its stage changed.
    fn step(
        &mut self,
        now_us: u64,
        record: &mut MigrationRecord,
        routing: &mut Routing<'_>,
        cluster: &ClusterView<'_>,
        out: &mut CoordinatorEffects,
    ) -> bool {
        let spec = self.spec(record.id).clone();
        let partition = self.partition(record);
        let target = spec.to;
        let resend_due = {
            let watch = &self.watches[record.id as usize];
            watch.last_sent_us.is_none_or(|at| now_us >= at + self.heartbeat_us)
        };
        match record.stage.clone() {
            Stage::Done | Stage::Aborted { .. } => false,
            Stage::Waiting => {
                if now_us < spec.at_us {
                    return false;
                }
                let source = routing.partition_groups[partition as usize];
                assert_ne!(
                    source, target,
                    "migration_moves_somewhere: {} moves partition {partition} onto its owner",
                    spec.name
                );
                record.source = Some(source);
                record.attempt = 1;
                record.stage = Stage::Running { started_at_us: now_us };
                out.persist = true;
                out.records.push(EventKind::MigrationPlan {
                    migration: spec.name.clone(),
                    partition,
                    source,
                    target,
                    pause_budget_us: spec.pause_budget_us,
                });
                self.record_phase(record, MigrationPhase::Planned, MigrationPhase::Snapshot, None, out);
                self.watches[record.id as usize] = Watch::default();
                true
            }
            Stage::Running { started_at_us } => {
                if let Some(outcome) = self.source_outcome(record) {
                    return self.attempt_ended(now_us, record, outcome, routing, out);
                }
                let source = record.source.expect("a running migration has its source");
                if now_us >= started_at_us + spec.attempt_timeout_us {
                    let in_catch_up = self.watches[record.id as usize]
                        .source_report
                        .as_ref()
                        .and_then(|report| report.stream)
                        .is_some_and(|(migration, phase)| {
                            migration == self.reference(record) && phase == MigrationPhase::CatchUp
                        });
                    let reason = if in_catch_up { AbortReason::LagNotConverging } else { AbortReason::AttemptTimeout };
                    record.stage = Stage::Aborting { reason };
                    out.persist = true;
                    self.watches[record.id as usize].last_sent_us = None;
                    return true;
                }
                // Resent until the source's primary reports the attempt's stream (a new primary that
                // lacks it is told again).
                let streaming = self.watches[record.id as usize]
                    .source_report
                    .as_ref()
                    .and_then(|report| report.stream)
                    .is_some_and(|(migration, _)| migration == self.reference(record));
                if resend_due && !streaming {
                    self.send_source(
                        record,
                        source,
                        SourceCommand::Start { migration: self.reference(record), partition, target },
                        cluster,
                        now_us,
                        out,
                    );
                }
                false
            }
            Stage::Aborting { reason } => {
                if let Some(outcome) = self.source_outcome(record) {
                    return self.attempt_ended(now_us, record, outcome, routing, out);
                }
                if resend_due {
                    let source = record.source.expect("an aborting migration has its source");
                    self.send_source(
                        record,
                        source,
                        SourceCommand::Abort { migration: self.reference(record), partition, reason },
                        cluster,
                        now_us,
                        out,
                    );
                }
                false
            }
            Stage::Dropping { reason } => {
                let dropped = self.watches[record.id as usize].target_report.as_ref().is_some_and(|report| {
                    !matches!(report.status, PartitionStatus::Incoming)
                        || report.migration.is_none_or(|migration| migration.id != record.id)
                });
                if dropped {
                    if record.attempt >= spec.max_attempts {
                        record.stage = Stage::Aborted { reason };
                        out.persist = true;
                        self.record_end(record, MigrationPhase::Aborted, Some(reason), out);
                        // The migration gives up: its later partitions never move.
                        for later in record.partition_index + 1..spec.partitions.len() as u32 {
                            out.records.push(EventKind::MigrationEnd {
                                migration: spec.name.clone(),
                                partition: spec.partitions[later as usize],
                                attempts: 0,
                                outcome: MigrationPhase::Aborted,
                                reason: Some(reason),
                            });
                        }
                    } else {
                        let backoff = self.heartbeat_us * 4 * u64::from(record.attempt);
                        record.stage = Stage::Backoff { until_us: now_us + backoff, reason };
                        out.persist = true;
                    }
                    return true;
                }
                if resend_due {
                    self.send_target(
                        record,
                        target,
                        TargetCommand::Drop { migration: self.reference(record), partition },
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
                record.attempt += 1;
                record.stage = Stage::Running { started_at_us: now_us };
                out.persist = true;
                self.record_phase(record, MigrationPhase::Planned, MigrationPhase::Snapshot, None, out);
                self.watches[record.id as usize] = Watch::default();
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
                        self.watches[record.id as usize].last_sent_us = Some(now_us);
                        out.push_routing.extend(behind);
                    }
                    return false;
                }
                // The source drops its copy only once the target owns the partition: until then the
                // source's stub may have to deliver the handoff again.
                let target_owns = self.watches[record.id as usize]
                    .target_report
                    .as_ref()
                    .is_some_and(|report| report.status == PartitionStatus::Owned);
                if !target_owns {
                    return false;
                }
                let source = record.source.expect("a migration cleaning up has its source");
                let cleaned = self.watches[record.id as usize]
                    .source_report
                    .as_ref()
                    .is_some_and(|report| report.status == PartitionStatus::Absent);
                if !cleaned {
                    if resend_due {
                        self.send_source(
                            record,
                            source,
                            SourceCommand::Cleanup { migration: self.reference(record), partition },
                            cluster,
                            now_us,
                            out,
                        );
                    }
                    return false;
                }
                self.record_phase(record, MigrationPhase::Cleanup, MigrationPhase::Done, None, out);
                self.record_end(record, MigrationPhase::Done, None, out);
                out.persist = true;
                if record.partition_index + 1 < spec.partitions.len() as u32 {
                    record.partition_index += 1;
                    record.attempt = 0;
                    record.source = None;
                    record.stage = Stage::Waiting;
                } else {
                    record.stage = Stage::Done;
                }
                true
            }
        }
    }

    /// How the source's log says the current attempt ended, if it has.
    fn source_outcome(&self, record: &MigrationRecord) -> Option<AttemptOutcome> {
        let report = self.watches[record.id as usize].source_report.as_ref()?;
        report.outcomes.iter().find(|(migration, _)| *migration == self.reference(record)).map(|(_, outcome)| *outcome)
    }

    fn attempt_ended(
        &mut self,
        now_us: u64,
        record: &mut MigrationRecord,
        outcome: AttemptOutcome,
        routing: &mut Routing<'_>,
        out: &mut CoordinatorEffects,
    ) -> bool {
        let _ = now_us;
        let partition = self.partition(record);
        match outcome {
            AttemptOutcome::Committed => {
                let target = self.spec(record.id).to;
                routing.partition_groups[partition as usize] = target;
                *routing.version += 1;
                record.stage = Stage::CleaningUp { routing_version: *routing.version };
                out.persist = true;
                self.record_phase(record, MigrationPhase::Commit, MigrationPhase::Cleanup, None, out);
            }
            AttemptOutcome::Aborted(reason) => {
                let from = self.watches[record.id as usize]
                    .source_report
                    .as_ref()
                    .and_then(|report| report.stream)
                    .filter(|(migration, _)| *migration == self.reference(record))
                    .map_or(MigrationPhase::Planned, |(_, phase)| phase);
                self.record_phase(record, from, MigrationPhase::Aborted, Some(reason), out);
                record.stage = Stage::Dropping { reason };
                out.persist = true;
            }
        }
        self.watches[record.id as usize].last_sent_us = None;
        true
    }

    fn reference(&self, record: &MigrationRecord) -> MigrationRef {
        MigrationRef { id: record.id, attempt: record.attempt }
    }

    fn send_source(
        &mut self,
        record: &MigrationRecord,
        group: GroupId,
        command: SourceCommand,
        cluster: &ClusterView<'_>,
        now_us: u64,
        out: &mut CoordinatorEffects,
    ) {
        let Some(primary) = cluster.primaries.get(group as usize).copied().flatten() else { return };
        self.watches[record.id as usize].last_sent_us = Some(now_us);
        out.sends.push((primary, CoordinatorMessage::Source { group, command }));
    }

    fn send_target(
        &mut self,
        record: &MigrationRecord,
        group: GroupId,
        command: TargetCommand,
        cluster: &ClusterView<'_>,
        now_us: u64,
        out: &mut CoordinatorEffects,
    ) {
        let Some(primary) = cluster.primaries.get(group as usize).copied().flatten() else { return };
        self.watches[record.id as usize].last_sent_us = Some(now_us);
        out.sends.push((primary, CoordinatorMessage::Target { group, command }));
    }

    fn record_phase(
        &self,
        record: &MigrationRecord,
        from: MigrationPhase,
        to: MigrationPhase,
        reason: Option<AbortReason>,
        out: &mut CoordinatorEffects,
    ) {
        out.records.push(EventKind::Phase {
            migration: self.spec(record.id).name.clone(),
            attempt: record.attempt,
            partition: self.partition(record),
            from,
            to,
            reason,
        });
    }

    fn record_end(
        &self,
        record: &MigrationRecord,
        outcome: MigrationPhase,
        reason: Option<AbortReason>,
        out: &mut CoordinatorEffects,
    ) {
        out.records.push(EventKind::MigrationEnd {
            migration: self.spec(record.id).name.clone(),
            partition: self.partition(record),
            attempts: record.attempt,
            outcome,
            reason,
        });
    }
}
