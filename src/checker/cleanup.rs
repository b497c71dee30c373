//! `cleanup`: a migration leaves nothing behind, judged on the run's final state. Each replica's
//! final state of a partition is its last `partition_state` for it after its node's last boot
//! (`node_start`: a replica's reports restart at each boot); a partition a replica has not reported
//! since that boot is `absent`. A group's replicas are the members of its `view`s and every node
//! that reported a partition state for it.
//!
//! For the latest move of each partition that ended:
//! - `done`: every replica of the source holds it `absent` (no data, no stub) and every replica
//!   of the target holds it `owned`;
//! - `aborted` (for good): no replica of the target holds it (its `incoming` copy dropped, no
//!   keys) and every replica of the source holds it `owned` (not `fenced`).
//!
//! And everywhere: no replica ends with a partition `stub` or `fenced`, and none ends with an
//! `incoming` copy unless a migration of that partition to its group is still running (which
//! `migration_liveness` then reports). An earlier move of a partition that moved again is judged
//! by the later one only: its source may own the partition again.
//!
//! A retired group (`group_state` `retired`) is gone: each of its members must delete the group's
//! files (`replica_retired`) by the run's end, and a replica that did holds nothing of the group
//! from then on, whatever it last reported.
//!
//! Owns these rules and their wording (one violation per move and group, naming each replica);
//! must never read anything but the trace.

use std::collections::{BTreeMap, BTreeSet};

use super::migration_trace::{attempts, node_name, At, MigrationTrace, Move};
use super::{Judgement, RunFacts, Violation};
use crate::trace::{Event, EventKind};
use crate::units::format_us;
use crate::vocabulary::{MigrationPhase, NodeId, PartitionStatus};

const CHECKER: &str = "cleanup";

/// A replica's last report of a partition since its node's last boot.
#[derive(Clone, Copy, Debug)]
struct Report {
    status: PartitionStatus,
    keys: u32,
    at: At,
}

/// What the trace says each replica holds at the end.
struct FinalStates {
    /// (group, partition, node) -> the replica's last report since its node's last boot.
    reports: BTreeMap<(u32, u32, NodeId), Report>,
    /// Each node's last boot.
    boots: BTreeMap<NodeId, At>,
    /// Each group's replicas.
    replicas: BTreeMap<u32, BTreeSet<NodeId>>,
}

/// One replica's final state of one partition.
#[derive(Clone, Copy, Debug)]
struct Final {
    node: NodeId,
    status: PartitionStatus,
    keys: u32,
    /// The report it comes from; `None`: not reported since the last boot, so `absent`.
    report: Option<Report>,
    boot: Option<At>,
}

impl Final {
    /// `n3#1 stub, 0 keys (since 5.1s)`, `n3#1 absent (not reported since its boot at 7s)`.
    fn describe(&self) -> String {
        match (self.report, self.boot) {
            (Some(report), _) => format!(
                "{} {}, {} keys (since {})",
                report.at.node_name(),
                self.status,
                self.keys,
                format_us(report.at.at_us)
            ),
            (None, Some(boot)) => {
                format!("{} absent (not reported since its boot at {})", boot.node_name(), format_us(boot.at_us))
            }
            (None, None) => format!("{} absent (never reported)", node_name(Some(self.node), 0)),
        }
    }
}

impl FinalStates {
    fn new(events: &[Event]) -> FinalStates {
        let mut states = FinalStates { reports: BTreeMap::new(), boots: BTreeMap::new(), replicas: BTreeMap::new() };
        for (index, event) in events.iter().enumerate() {
            let Some(node) = event.node else { continue };
            match &event.kind {
                EventKind::NodeStart => {
                    states.reports.retain(|&(_, _, reporter), _| reporter != node);
                    states.boots.insert(node, At::of(index, event));
                }
                EventKind::PartitionState { group, partition, status, keys, .. } => {
                    states.replicas.entry(*group).or_default().insert(node);
                    let report = Report { status: *status, keys: *keys, at: At::of(index, event) };
                    states.reports.insert((*group, *partition, node), report);
                }
                EventKind::View { group, members, .. } => {
                    states.replicas.entry(*group).or_default().extend(members.iter().copied());
                }
                EventKind::ReplicaRetired { group } => {
                    states.reports.retain(|&(held, _, reporter), _| !(held == *group && reporter == node));
                }
                _ => {}
            }
        }
        states
    }

    fn of(&self, group: u32, partition: u32, node: NodeId) -> Final {
        let report = self.reports.get(&(group, partition, node)).copied();
        Final {
            node,
            status: report.map_or(PartitionStatus::Absent, |report| report.status),
            keys: report.map_or(0, |report| report.keys),
            report,
            boot: self.boots.get(&node).copied(),
        }
    }

    fn replicas_of(&self, group: u32) -> Vec<NodeId> {
        self.replicas.get(&group).map_or(Vec::new(), |nodes| nodes.iter().copied().collect())
    }
}

pub fn cleanup(facts: &RunFacts, events: &[Event]) -> Judgement {
    let trace = MigrationTrace::new(facts, events);
    let states = FinalStates::new(events);
    let end_us = trace.run_end_us;
    let mut judgement = Judgement::default();
    // Replicas already blamed for a partition, so the rules everywhere do not blame them twice.
    let mut blamed: BTreeSet<(u32, u32, NodeId)> = BTreeSet::new();
    let mut partitions: Vec<u32> = trace.moves.iter().map(|found| found.partition).collect();
    partitions.sort_unstable();
    partitions.dedup();
    for partition in partitions {
        let Some(found) = trace.last_move_of(partition) else { continue };
        let Some(end) = found.end() else { continue };
        let Some(plan) = found.plan else {
            judgement.inconclusive.push(format!(
                "{CHECKER}: {} ended {}, but no migration_plan names its source and target groups",
                found.name(),
                end.outcome_name()
            ));
            continue;
        };
        let ended = format!(
            "{} ended {} after {} at {}",
            found.name(),
            end.outcome_name(),
            attempts(end.attempts),
            end.at.describe()
        );
        let (source_must, target_must) = match end.outcome {
            MigrationPhase::Done => (PartitionStatus::Absent, PartitionStatus::Owned),
            MigrationPhase::Aborted => (PartitionStatus::Owned, PartitionStatus::Absent),
            // Not an end at all: `migration_liveness` reports it; there is no final state to ask for.
            MigrationPhase::Planned
            | MigrationPhase::Snapshot
            | MigrationPhase::CatchUp
            | MigrationPhase::Freeze
            | MigrationPhase::Drain
            | MigrationPhase::Commit
            | MigrationPhase::Cleanup => continue,
        };
        for (role, group, must) in [("source", plan.source, source_must), ("target", plan.target, target_must)] {
            let replicas = states.replicas_of(group);
            if replicas.is_empty() && must != PartitionStatus::Absent {
                judgement.violations.push(Violation {
                    checker: CHECKER.into(),
                    message: format!(
                        "{ended}, so {role} group {group} must hold it {must}, but no replica of group {group} is known \
                         (no view or partition_state names the group)"
                    ),
                });
                continue;
            }
            let wrong: Vec<Final> = replicas
                .iter()
                .map(|&node| states.of(group, partition, node))
                .filter(|state| state.status != must || (must == PartitionStatus::Absent && state.keys > 0))
                .collect();
            if wrong.is_empty() {
                continue;
            }
            blamed.extend(wrong.iter().map(|state| (group, partition, state.node)));
            let described: Vec<String> = wrong.iter().map(Final::describe).collect();
            let must_words = match must {
                PartitionStatus::Absent => "absent, with no keys".to_owned(),
                other => other.name().to_owned(),
            };
            judgement.violations.push(Violation {
                checker: CHECKER.into(),
                message: format!(
                    "{ended}, but at the run's end ({}) {} of {role} group {group}'s {} replicas do not hold it \
                     {must_words}: {}",
                    format_us(end_us),
                    wrong.len(),
                    replicas.len(),
                    described.join("; ")
                ),
            });
        }
    }
    // Everywhere: no stub, no fence, and no incoming copy without a migration still running.
    let mut left: BTreeMap<(u32, u32, PartitionStatus), Vec<Final>> = BTreeMap::new();
    for &(group, partition, node) in states.reports.keys() {
        if blamed.contains(&(group, partition, node)) {
            continue;
        }
        let state = states.of(group, partition, node);
        let allowed = match state.status {
            PartitionStatus::Stub | PartitionStatus::Fenced => false,
            PartitionStatus::Incoming => still_moving_to(&trace, partition, group),
            PartitionStatus::Owned | PartitionStatus::Absent => true,
        };
        if !allowed {
            left.entry((group, partition, state.status)).or_default().push(state);
        }
    }
    for ((group, partition, status), finals) in left {
        let described: Vec<String> = finals.iter().map(Final::describe).collect();
        let context = match trace.last_move_of(partition) {
            Some(found) => format!("migration {} {}", found.migration, found.state_at(usize::MAX)),
            None => format!("no migration moved partition {partition}"),
        };
        let why = match status {
            PartitionStatus::Stub => "a forwarding stub must go once every gateway has the new routing",
            PartitionStatus::Fenced => "a fence must end in a handoff or an unfence",
            PartitionStatus::Incoming => "no migration of it to this group is still running",
            PartitionStatus::Owned | PartitionStatus::Absent => "",
        };
        judgement.violations.push(Violation {
            checker: CHECKER.into(),
            message: format!(
                "partition {partition} is left {status} on {} of group {group}'s replicas at the run's end ({}), and \
                 {why} ({context}): {}",
                finals.len(),
                format_us(end_us),
                described.join("; ")
            ),
        });
    }
    retired_groups(events, end_us, &mut judgement);
    disk_moves(events, end_us, &mut judgement);
    judgement
}

/// Disk moves leave one copy: each storage node's last `replica_disk` of a group since its last
/// boot names no file of the group on its other disks, and a disk move that ended `done` left
/// the replica on its destination disk, one that ended aborted on the disk it started from.
fn disk_moves(events: &[Event], end_us: u64, judgement: &mut Judgement) {
    // (node, group) -> (disk, stray files, when), since the node's last boot.
    let mut homes: BTreeMap<(NodeId, u32), (u32, u32, At)> = BTreeMap::new();
    // migration -> (node, group, from disk, to disk), from its `disk_move` events.
    let mut moves: BTreeMap<&str, (NodeId, u32, u32, u32)> = BTreeMap::new();
    let mut ends: BTreeMap<&str, MigrationPhase> = BTreeMap::new();
    for (index, event) in events.iter().enumerate() {
        match &event.kind {
            EventKind::NodeStart => {
                if let Some(node) = event.node {
                    homes.retain(|&(reporter, _), _| reporter != node);
                }
            }
            EventKind::ReplicaDisk { group, disk, stray_files } => {
                if let Some(node) = event.node {
                    homes.insert((node, *group), (*disk, *stray_files, At::of(index, event)));
                }
            }
            EventKind::DiskMove { migration, group, from_disk, to_disk, .. } => {
                if let Some(node) = event.node {
                    moves.entry(migration.as_str()).or_insert((node, *group, *from_disk, *to_disk));
                }
            }
            EventKind::ReplicaRetired { group } => {
                if let Some(node) = event.node {
                    homes.remove(&(node, *group));
                }
            }
            EventKind::OperationEnd { migration, outcome, .. } => {
                ends.insert(migration.as_str(), *outcome);
            }
            _ => {}
        }
    }
    for (&(_, group), &(disk, stray, at)) in &homes {
        if stray > 0 {
            judgement.violations.push(Violation {
                checker: CHECKER.into(),
                message: format!(
                    "{}'s replica of group {group} runs from disk {disk}, but at the run's end ({}) {stray} of the group's \
                     files lie on its other disks (a disk move's copy or old copy, never deleted; last told at {})",
                    at.node_name(),
                    format_us(end_us),
                    format_us(at.at_us)
                ),
            });
        }
    }
    for (migration, (node, group, from_disk, to_disk)) in moves {
        let Some(&outcome) = ends.get(migration) else { continue };
        let (wanted, what) = match outcome {
            MigrationPhase::Done => (to_disk, "ended done"),
            _ => (from_disk, "ended aborted"),
        };
        match homes.get(&(node, group)) {
            Some(&(disk, _, at)) if disk != wanted => judgement.violations.push(Violation {
                checker: CHECKER.into(),
                message: format!(
                    "disk move {migration} of {}'s replica of group {group} (disk {from_disk} -> {to_disk}) {what}, but \
                     the replica runs from disk {disk} (since {}), not disk {wanted}",
                    at.node_name(),
                    format_us(at.at_us)
                ),
            }),
            Some(_) => {}
            None => judgement.inconclusive.push(format!(
                "{CHECKER}: disk move {migration} of node {node}'s replica of group {group} {what}, but the node recorded \
                 no `replica_disk` for the group since its last boot"
            )),
        }
    }
}

/// Every member of a retired group deleted it (`replica_retired` after the `group_state`).
fn retired_groups(events: &[Event], end_us: u64, judgement: &mut Judgement) {
    for (index, event) in events.iter().enumerate() {
        let EventKind::GroupState { group, status: crate::vocabulary::GroupStatus::Retired, members } = &event.kind
        else {
            continue;
        };
        let deleted: BTreeSet<NodeId> = events[index..]
            .iter()
            .filter(|later| matches!(later.kind, EventKind::ReplicaRetired { group: retired } if retired == *group))
            .filter_map(|later| later.node)
            .collect();
        let kept: Vec<String> = members
            .iter()
            .filter(|member| !deleted.contains(member))
            .map(|member| node_name(Some(*member), 0).replace("#0", ""))
            .collect();
        if !kept.is_empty() {
            judgement.violations.push(Violation {
                checker: CHECKER.into(),
                message: format!(
                    "group {group} was retired at {}, but by the run's end ({}) {} of its {} members never deleted its files (no replica_retired): {}",
                    At::of(index, event).describe(),
                    format_us(end_us),
                    kept.len(),
                    members.len(),
                    kept.join(", ")
                ),
            });
        }
    }
}

/// Whether a migration of `partition` to `group` has begun and not ended.
fn still_moving_to(trace: &MigrationTrace, partition: u32, group: u32) -> bool {
    let running = |found: &&Move| found.partition == partition && found.end().is_none();
    trace.moves.iter().filter(running).any(|found| found.plan.is_some_and(|plan| plan.target == group))
}
