//! `migration_liveness`: once the heal phase starts (`heal_all`), every migration finishes. Each
//! partition of each migration (the scenario's, and any other the trace names) must reach a
//! `migration_end` by the run's end (`RunFacts.end_us`, the bound), with the outcome the scenario
//! expects (`MigrationFacts.expect_aborted`: `None` is `done`, `Some(reason)` is `aborted` with that
//! reason); a partition's move must not end twice with different outcomes. And clients complete
//! operations on the partition again: if any operation on it was invoked after its
//! `migration_end`, at least one of those completed `ok`.
//!
//! A migration the scenario does not name has no expected outcome: that it ended is judged, its
//! outcome is inconclusive. A run with migrations but no heal is a violation, as for `progress`.
//!
//! Owns these rules and their wording; reads only migration, heal and client operation events.

use std::collections::{BTreeMap, BTreeSet};

use super::migration_trace::{attempts, outcome_name, MigrationTrace, Move};
use super::{Judgement, RunFacts, Violation};
use crate::trace::{Event, EventKind, Outcome};
use crate::units::format_us;
use crate::vocabulary::{AbortReason, MigrationPhase};

const CHECKER: &str = "migration_liveness";

pub fn migration_liveness(facts: &RunFacts, events: &[Event]) -> Judgement {
    let trace = MigrationTrace::new(facts, events);
    if trace.moves.is_empty() && facts.migrations.is_empty() {
        return Judgement::default();
    }
    let Some(heal) = trace.heal else {
        return Judgement::violation(
            CHECKER,
            format!(
                "the run never reached its liveness phase (no heal_all event), so none of its {} migrating partitions \
                 can be shown to finish",
                trace.moves.len()
            ),
        );
    };
    let bound_us = if facts.end_us > 0 { facts.end_us } else { trace.run_end_us };
    let mut judgement = Judgement::default();
    let mut violation = |message: String| judgement.violations.push(Violation { checker: CHECKER.into(), message });
    let mut inconclusive = Vec::new();
    for found in &trace.moves {
        let expected = found.facts.map(|facts| facts.expect_aborted);
        let expected_name = |expected: Option<AbortReason>| match expected {
            None => "done".to_owned(),
            Some(reason) => format!("aborted ({reason})"),
        };
        let Some(end) = found.end() else {
            let expects = match expected {
                Some(expected) => format!("; the scenario expects it {}", expected_name(expected)),
                None => String::new(),
            };
            violation(format!(
                "{} did not end by the run's end at {} (faults healed at {}): {}{expects}",
                found.name(),
                format_us(bound_us),
                format_us(heal.at_us),
                where_it_stood(found)
            ));
            continue;
        };
        if end.at.at_us > bound_us {
            violation(format!(
                "{} ended {} only at {}, after the run's end at {}",
                found.name(),
                end.outcome_name(),
                end.at.describe(),
                format_us(bound_us)
            ));
        }
        if let Some(other) = found.ends.iter().find(|other| (other.outcome, other.reason) != (end.outcome, end.reason))
        {
            violation(format!(
                "{} ended twice with different outcomes: {} after {} at {}, then {} after {} at {}",
                found.name(),
                end.outcome_name(),
                attempts(end.attempts),
                end.at.describe(),
                other.outcome_name(),
                attempts(other.attempts),
                other.at.describe()
            ));
        }
        let ended = format!(
            "{} ended {} after {} at {} ({})",
            found.name(),
            end.outcome_name(),
            attempts(end.attempts),
            end.at.describe(),
            last_change_before(found, end.at.index)
        );
        match end.outcome {
            MigrationPhase::Done | MigrationPhase::Aborted => {}
            MigrationPhase::Planned
            | MigrationPhase::Snapshot
            | MigrationPhase::CatchUp
            | MigrationPhase::Freeze
            | MigrationPhase::Drain
            | MigrationPhase::Commit
            | MigrationPhase::Cleanup => {
                violation(format!("{ended}, an outcome that is neither done nor aborted"));
            }
        }
        match expected {
            Some(expected) => {
                let wanted = match expected {
                    None => (MigrationPhase::Done, None),
                    Some(reason) => (MigrationPhase::Aborted, Some(reason)),
                };
                let cancelled = found.facts.is_some_and(|facts| facts.cancellable)
                    && (end.outcome, end.reason) == (MigrationPhase::Aborted, Some(AbortReason::Cancelled));
                if (end.outcome, end.reason) != wanted && !cancelled {
                    violation(format!("{ended}, but the scenario expects it {}", expected_name(expected)));
                }
            }
            None => inconclusive.push(format!(
                "{CHECKER}: {} ended {}, but the scenario does not name migration {}, so no outcome is expected of it",
                found.name(),
                outcome_name(end.outcome, end.reason),
                found.migration
            )),
        }
        if let Some(message) = clients_after_end(found, events, end.at.index) {
            violation(format!("{ended}; {message}"));
        }
    }
    // Every operation ends too (a planner's operation may have planned no move at all). A
    // migration whose moves were already found wanting is not blamed twice.
    let mut operation_violations: Vec<(String, String)> = Vec::new();
    let mut violation = |name: &str, message: String| operation_violations.push((name.to_owned(), message));
    for migration in &facts.migrations {
        let mut violation = |message: String| violation(&migration.name, message);
        let ends: Vec<&Event> = events
            .iter()
            .filter(|event| matches!(&event.kind, EventKind::OperationEnd { migration: name, .. } if *name == migration.name))
            .collect();
        let planned = events.iter().any(
            |event| matches!(&event.kind, EventKind::OperationPlan { migration: name, .. } if *name == migration.name),
        );
        match ends.first().map(|event| (&event.kind, event.at_us)) {
            None if planned => violation(format!(
                "migration {} never ended as a whole (no operation_end) by the run's end at {}",
                migration.name,
                format_us(bound_us)
            )),
            // A planner's operation names no partitions in advance: only its plan says what it
            // moves, so it must at least be planned. (A listed move is judged move by move.)
            None if migration.partitions.is_empty() => violation(format!(
                "migration {} was never planned (no operation_plan) by the run's end at {}",
                migration.name,
                format_us(bound_us)
            )),
            None => {}
            Some((EventKind::OperationEnd { moved, total, outcome, reason, .. }, at_us)) => {
                let expected_ok = match migration.expect_aborted {
                    None => *outcome == MigrationPhase::Done,
                    Some(expected) => *outcome == MigrationPhase::Aborted && *reason == Some(expected),
                };
                let cancelled = migration.cancellable && *reason == Some(AbortReason::Cancelled);
                if !expected_ok && !cancelled {
                    violation(format!(
                        "migration {} ended {} at {} with {moved} of {total} moves done, but the scenario expects it {}",
                        migration.name,
                        outcome_name(*outcome, *reason),
                        format_us(at_us),
                        expected_name_of(migration.expect_aborted)
                    ));
                }
            }
            Some(_) => unreachable!("filtered to operation_end"),
        }
    }
    for (name, message) in operation_violations {
        let prefix = format!("migration {name} partition ");
        if !judgement.violations.iter().any(|found| found.message.starts_with(&prefix)) {
            judgement.violations.push(Violation { checker: CHECKER.into(), message });
        }
    }
    judgement.inconclusive.extend(inconclusive);
    judgement
}

fn expected_name_of(expected: Option<AbortReason>) -> String {
    match expected {
        None => "done".to_owned(),
        Some(reason) => format!("aborted ({reason})"),
    }
}

/// `attempt 3 entered phase drain at 9.5s on n2#1`, `planned at 2s on n4#0, and no attempt
/// started`, or `it was never planned (no migration_plan event)`.
fn where_it_stood(found: &Move) -> String {
    if let Some(change) = found.phases.last() {
        return format!(
            "its last attempt, {}, entered phase {} at {}",
            change.attempt,
            change.to,
            change.at.describe()
        );
    }
    match found.plan {
        Some(plan) => format!("it was planned at {} and no attempt started", plan.at.describe()),
        None => "it was never planned (the trace has no migration_plan or phase event for it)".to_owned(),
    }
}

/// `its last phase change: attempt 3 drain -> aborted (drain_over_budget) at 9s on n1#0`.
fn last_change_before(found: &Move, index: usize) -> String {
    match found.last_change_by(index) {
        Some(change) => {
            let reason = change.reason.map_or(String::new(), |reason| format!(" ({reason})"));
            format!(
                "its last phase change: attempt {} {} -> {}{reason} at {}",
                change.attempt,
                change.from,
                change.to,
                change.at.describe()
            )
        }
        None => "no phase change was recorded before it".to_owned(),
    }
}

/// Why clients made no progress on the move's partition after its end, if they did not: some
/// operation on it was invoked after the end, and none of those completed `ok`.
fn clients_after_end(found: &Move, events: &[Event], end_index: usize) -> Option<String> {
    let mut invoked: BTreeMap<u64, u64> = BTreeMap::new();
    let mut endings: BTreeSet<&'static str> = BTreeSet::new();
    let mut returned = 0usize;
    for event in &events[end_index + 1..] {
        match &event.kind {
            EventKind::OpInvoke { op, partition, .. } if *partition == found.partition => {
                invoked.insert(*op, event.at_us);
            }
            EventKind::OpComplete { op, outcome, .. } if invoked.contains_key(op) => {
                returned += 1;
                match outcome {
                    Outcome::Ok => return None,
                    Outcome::Fail => endings.insert("fail"),
                    Outcome::Info => endings.insert("info"),
                };
            }
            _ => {}
        }
    }
    let first_us = *invoked.values().min()?;
    let mut endings: Vec<&str> = endings.into_iter().collect();
    if returned < invoked.len() {
        endings.push("never returned");
    }
    Some(format!(
        "clients invoked {} operations on partition {} after that, the first at {}, and none completed ok \
         (their endings: {})",
        invoked.len(),
        found.partition,
        format_us(first_us),
        endings.join(", ")
    ))
}
