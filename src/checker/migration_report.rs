//! The migration report of one run: for each partition of each migration, its outcome, attempts,
//! time in each phase, writes held, worst write pause and worst attempt window, read from the
//! trace as the migration checkers read it (`migration_trace.rs`, `pauses.rs`). `migsim repro`
//! prints it after the verdict; `migsim run` folds every seed's into the verdict table.
//!
//! Time in a phase runs from the phase change that entered it to the next change of the move.
//! Before the first attempt, and between an aborted attempt and the next (the backoff), a move is
//! `planned`; it stops at `done`, at its `migration_end`, or at the run's end.
//!
//! Owns this summary and its wording; must never judge: the budget is shown, not enforced.

use serde::Serialize;

use super::migration_trace::{attempts, MigrationTrace, Move};
use super::pauses::Pauses;
use super::RunFacts;
use crate::trace::Event;
use crate::units::format_us;
use crate::vocabulary::{AbortReason, MigrationPhase};

/// How a partition's move ended, if it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum MoveOutcome {
    Done,
    Aborted {
        reason: Option<AbortReason>,
    },
    /// No `migration_end` by the run's end: the phase it was last in (`None`: never planned).
    Unfinished {
        phase: Option<MigrationPhase>,
    },
}

/// The longest pause window of one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct AttemptWindow {
    pub attempt: u32,
    pub window_us: u64,
}

/// One partition of one migration, summarised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MigrationReport {
    pub migration: String,
    pub partition: u32,
    /// From its `migration_plan`, when recorded.
    pub source: Option<u32>,
    pub target: Option<u32>,
    /// The scenario's budget, else the planned one.
    pub pause_budget_us: Option<u64>,
    pub outcome: MoveOutcome,
    /// Attempts started.
    pub attempts: u32,
    /// Attempts that ended `aborted` (the last one too, when the move gave up).
    pub aborted_attempts: u32,
    /// Time in each phase entered, in the order a successful attempt passes through them.
    pub phase_us: Vec<(MigrationPhase, u64)>,
    /// Every held write's pause (summed over its holds), shortest first; its length is the number
    /// of writes held.
    pub write_pauses_us: Vec<u64>,
    /// The longest attempt window, if any write was held.
    pub worst_window: Option<AttemptWindow>,
}

impl MigrationReport {
    pub fn worst_write_pause_us(&self) -> Option<u64> {
        self.write_pauses_us.last().copied()
    }

    /// A few lines for people, as `migsim repro` prints them.
    pub fn describe(&self) -> Vec<String> {
        let mut known = Vec::new();
        if let (Some(source), Some(target)) = (self.source, self.target) {
            known.push(format!("group {source} -> group {target}"));
        }
        if let Some(budget_us) = self.pause_budget_us {
            known.push(format!("budget {}", format_us(budget_us)));
        }
        let known = if known.is_empty() { String::new() } else { format!(" ({})", known.join(", ")) };
        let aborted = match self.aborted_attempts {
            0 => String::new(),
            count => format!(", {count} aborted"),
        };
        let tries = format!("after {}{aborted}", attempts(self.attempts));
        let outcome = match self.outcome {
            MoveOutcome::Done => format!("done {tries}"),
            MoveOutcome::Aborted { reason: Some(reason) } => format!("aborted ({reason}) {tries}"),
            MoveOutcome::Aborted { reason: None } => format!("aborted (no reason) {tries}"),
            MoveOutcome::Unfinished { phase: Some(phase) } => format!("unfinished, in phase {phase}, {tries}"),
            MoveOutcome::Unfinished { phase: None } => "never planned".to_owned(),
        };
        let phases: Vec<String> =
            self.phase_us.iter().map(|(phase, time_us)| format!("{phase} {}", format_us(*time_us))).collect();
        let pauses = match (self.worst_write_pause_us(), self.worst_window) {
            (Some(worst), Some(window)) => format!(
                "writes held {}, worst write pause {}, worst attempt window {} (attempt {})",
                self.write_pauses_us.len(),
                format_us(worst),
                format_us(window.window_us),
                window.attempt
            ),
            _ => "writes held 0".to_owned(),
        };
        vec![
            format!("{} partition {}{known}: {outcome}", self.migration, self.partition),
            format!("  phases: {}", if phases.is_empty() { "none entered".to_owned() } else { phases.join(", ") }),
            format!("  {pauses}"),
        ]
    }
}

/// The report of every partition move in a run, in the scenario's order, then the trace's.
pub fn migration_reports(facts: &RunFacts, events: &[Event]) -> Vec<MigrationReport> {
    let trace = MigrationTrace::new(facts, events);
    let pauses = Pauses::new(events, trace.run_end_us);
    let writes = pauses.writes();
    let windows = pauses.windows();
    trace
        .moves
        .iter()
        .map(|found| {
            let mine = |migration: &str, partition: u32| migration == found.migration && partition == found.partition;
            let mut write_pauses_us: Vec<u64> = writes
                .iter()
                .filter(|write| mine(write.migration, write.partition))
                .map(|write| write.total_us)
                .collect();
            write_pauses_us.sort_unstable();
            let worst_window = windows
                .iter()
                .filter(|window| mine(window.migration, window.partition))
                .map(|window| AttemptWindow { attempt: window.attempt, window_us: window.duration_us() })
                .max_by_key(|window| (window.window_us, std::cmp::Reverse(window.attempt)));
            MigrationReport {
                migration: found.migration.to_owned(),
                partition: found.partition,
                source: found.plan.map(|plan| plan.source),
                target: found.plan.map(|plan| plan.target),
                pause_budget_us: found
                    .facts
                    .map(|facts| facts.pause_budget_us)
                    .or(found.plan.map(|plan| plan.pause_budget_us)),
                outcome: outcome(found),
                attempts: found.attempts_started(),
                aborted_attempts: aborted_attempts(found),
                phase_us: phase_times(found, trace.run_end_us),
                write_pauses_us,
                worst_window,
            }
        })
        .collect()
}

fn outcome(found: &Move) -> MoveOutcome {
    match found.end() {
        Some(end) => match end.outcome {
            MigrationPhase::Done => MoveOutcome::Done,
            MigrationPhase::Aborted => MoveOutcome::Aborted { reason: end.reason },
            // An end that names no end: report where the move stood, as for an unfinished one.
            phase @ (MigrationPhase::Planned
            | MigrationPhase::Snapshot
            | MigrationPhase::CatchUp
            | MigrationPhase::Freeze
            | MigrationPhase::Drain
            | MigrationPhase::Commit
            | MigrationPhase::Cleanup) => MoveOutcome::Unfinished { phase: Some(phase) },
        },
        None => match (found.phases.last(), found.plan) {
            (Some(change), _) => MoveOutcome::Unfinished { phase: Some(change.to) },
            (None, Some(_)) => MoveOutcome::Unfinished { phase: Some(MigrationPhase::Planned) },
            (None, None) => MoveOutcome::Unfinished { phase: None },
        },
    }
}

/// Attempts that ended `aborted`, each counted once however often its abort was recorded.
fn aborted_attempts(found: &Move) -> u32 {
    let mut aborted: Vec<u32> = found
        .phases
        .iter()
        .filter(|change| change.to == MigrationPhase::Aborted)
        .map(|change| change.attempt)
        .collect();
    aborted.sort_unstable();
    aborted.dedup();
    u32::try_from(aborted.len()).unwrap_or(u32::MAX)
}

/// Time in each phase, from the move's start to its end (or the run's end).
fn phase_times(found: &Move, run_end_us: u64) -> Vec<(MigrationPhase, u64)> {
    let mut spent = [0u64; MigrationPhase::ALL.len()];
    let mut entered = [false; MigrationPhase::ALL.len()];
    let slot = |phase: MigrationPhase| MigrationPhase::ALL.iter().position(|&other| other == phase).unwrap_or(0);
    let Some(began) = found.began() else { return Vec::new() };
    let stop_us = found.end().map_or(run_end_us, |end| end.at.at_us);
    // `None` once the move is done: no further time accrues.
    let mut current = Some((MigrationPhase::Planned, began.at_us));
    entered[slot(MigrationPhase::Planned)] = true;
    for change in found.phases.iter().filter(|change| change.at.at_us <= stop_us) {
        if let Some((phase, since_us)) = current {
            spent[slot(phase)] += change.at.at_us.saturating_sub(since_us);
        }
        current = match change.to {
            MigrationPhase::Done => None,
            // Between attempts the move waits, planned, for the next one.
            MigrationPhase::Aborted => Some((MigrationPhase::Planned, change.at.at_us)),
            phase @ (MigrationPhase::Planned
            | MigrationPhase::Snapshot
            | MigrationPhase::CatchUp
            | MigrationPhase::Freeze
            | MigrationPhase::Drain
            | MigrationPhase::Commit
            | MigrationPhase::Cleanup) => {
                entered[slot(phase)] = true;
                Some((phase, change.at.at_us))
            }
        };
    }
    if let Some((phase, since_us)) = current {
        spent[slot(phase)] += stop_us.saturating_sub(since_us);
    }
    MigrationPhase::ALL
        .iter()
        .enumerate()
        .filter(|&(index, _)| entered[index])
        .map(|(index, &phase)| (phase, spent[index]))
        .collect()
}

/// One cluster operation (a `[[migrations]]` entry) of a run, summarised: how many of its moves
/// committed, in how many attempts, and how long it took from its plan to its end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OperationReport {
    pub migration: String,
    /// `move`, `scale_out`, `scale_in` or `rebalance`, from its `operation_plan`.
    pub operation: Option<String>,
    /// Moves planned, and moves done.
    pub total: u32,
    pub moved: u32,
    pub attempts: u32,
    pub aborted_attempts: u32,
    /// Model time from its plan to its end (`None`: unfinished, or never planned).
    pub duration_us: Option<u64>,
    /// `done` or `aborted (reason)`; `None` while unfinished.
    pub outcome: Option<String>,
}

impl OperationReport {
    /// One line for people: `scale-out (scale_out): 3 of 3 moves done in 136ms, 3 attempts, 0 aborted`.
    pub fn describe(&self) -> String {
        let kind = self.operation.as_deref().unwrap_or("not planned");
        let outcome = match (&self.outcome, self.duration_us) {
            (Some(outcome), Some(duration_us)) => format!("{outcome} after {}", format_us(duration_us)),
            _ => "unfinished".to_owned(),
        };
        format!(
            "{} ({kind}): {} of {} moves done, {}, {} aborted; {outcome}",
            self.migration,
            self.moved,
            self.total,
            attempts(self.attempts),
            self.aborted_attempts
        )
    }
}

/// Every operation the scenario names, then any other the trace plans, in that order.
pub fn operation_reports(facts: &RunFacts, events: &[Event]) -> Vec<OperationReport> {
    let trace = MigrationTrace::new(facts, events);
    let mut names: Vec<&str> = facts.migrations.iter().map(|migration| migration.name.as_str()).collect();
    for event in events {
        if let crate::trace::EventKind::OperationPlan { migration, .. } = &event.kind {
            if !names.contains(&migration.as_str()) {
                names.push(migration);
            }
        }
    }
    names
        .into_iter()
        .map(|name| {
            let plan = events.iter().find_map(|event| match &event.kind {
                crate::trace::EventKind::OperationPlan { migration, operation, moves, .. } if migration == name => {
                    Some((event.at_us, operation.clone(), moves.len() as u32))
                }
                _ => None,
            });
            let end = events.iter().find_map(|event| match &event.kind {
                crate::trace::EventKind::OperationEnd { migration, moved, outcome, reason, total }
                    if migration == name =>
                {
                    Some((event.at_us, *moved, super::migration_trace::outcome_name(*outcome, *reason), *total))
                }
                _ => None,
            });
            let moves: Vec<&Move> = trace.moves.iter().filter(|found| found.migration == name).collect();
            // A disk move's attempts and reverts are its `disk_move` events.
            let mut disk_attempts: Vec<u32> = Vec::new();
            let mut disk_reverts = 0;
            for event in events {
                if let crate::trace::EventKind::DiskMove { migration, attempt, to, reason, .. } = &event.kind {
                    if migration == name {
                        disk_attempts.push(*attempt);
                        disk_reverts += u32::from(*to == crate::vocabulary::DiskMoveState::Idle && reason.is_some());
                    }
                }
            }
            disk_attempts.sort_unstable();
            disk_attempts.dedup();
            let planned_total = plan.as_ref().map_or(moves.len() as u32, |(_, _, total)| *total);
            OperationReport {
                migration: name.to_owned(),
                operation: plan.as_ref().map(|(_, operation, _)| operation.clone()),
                total: end.as_ref().map_or(planned_total, |(_, _, _, total)| planned_total.max(*total)),
                moved: end.as_ref().map_or_else(
                    || moves.iter().filter(|found| outcome(found) == MoveOutcome::Done).count() as u32,
                    |(_, moved, _, _)| *moved,
                ),
                attempts: moves.iter().map(|found| found.attempts_started()).sum::<u32>() + disk_attempts.len() as u32,
                aborted_attempts: moves.iter().map(|found| aborted_attempts(found)).sum::<u32>() + disk_reverts,
                duration_us: match (&plan, &end) {
                    (Some((planned_us, _, _)), Some((ended_us, _, _, _))) => Some(ended_us.saturating_sub(*planned_us)),
                    _ => None,
                },
                outcome: end.map(|(_, _, outcome, _)| outcome),
            }
        })
        .collect()
}
