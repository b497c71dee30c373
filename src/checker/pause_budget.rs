//! `pause_budget`: no write pauses longer than its migration's `pause_budget_us`, and no attempt's
//! pause window lasts longer, whatever fails (docs/migration.md: a write's pause is the sum of its
//! held intervals, over every attempt and gateway; an attempt's pause is the window from its first
//! held or refused write to its last release). A hold still open when its gateway crashes ends
//! there; one still open at the run's end ends there (`pauses.rs` reads the holds).
//!
//! The budget is the scenario's (`RunFacts.migrations`, matched by migration name); a migration
//! the facts do not name is judged by the budget its `migration_plan` recorded, and one with
//! neither is inconclusive. A pause equal to the budget is within it.
//!
//! A write held for a migration that never moved its partition is a violation too: a cut-over
//! holds its own partition's writes only, never the rest of the gateway's traffic.
//!
//! Reports per migration, partition and attempt: one violation for the writes whose pause passed
//! the budget during that attempt (the worst in full, the rest counted), one for the attempt's
//! window. Owns these rules and their wording; must never read anything but the trace and facts.

use std::collections::BTreeMap;

use super::migration_trace::{MigrationTrace, Move};
use super::pauses::{Closing, Hold, Opening, Pauses, WritePause};
use super::{Judgement, RunFacts, Violation};
use crate::trace::Event;
use crate::units::format_us;

const CHECKER: &str = "pause_budget";
/// Further writes past the budget named in one violation.
const MORE_WRITES_NAMED: usize = 5;

pub fn pause_budget(facts: &RunFacts, events: &[Event]) -> Judgement {
    let trace = MigrationTrace::new(facts, events);
    let pauses = Pauses::new(events, trace.run_end_us);
    let mut judgement = Judgement::default();
    let mut unknown_budget: Vec<&str> = Vec::new();
    let budget_of = |migration: &str, partition: u32| -> Option<u64> {
        let facts = facts.migrations.iter().find(|candidate| candidate.name == migration);
        facts.map(|facts| facts.pause_budget_us).or_else(|| {
            let planned = trace.get(migration, partition).and_then(|found| found.plan);
            planned.map(|plan| plan.pause_budget_us)
        })
    };
    // A cut-over holds its own partition's writes and no other's: a write held for a migration
    // that never moved its partition stalled for someone else's cut-over.
    let mut strays: BTreeMap<(&str, u32), Vec<&Hold>> = BTreeMap::new();
    for hold in &pauses.holds {
        if trace.get(hold.migration, hold.partition).is_none_or(|found| found.never_started()) {
            strays.entry((hold.migration, hold.partition)).or_default().push(hold);
        }
    }
    for ((migration, partition), holds) in &strays {
        let longest = holds.iter().map(|hold| hold.duration_us()).max().unwrap_or(0);
        judgement.violations.push(Violation {
            checker: CHECKER.into(),
            message: format!(
                "migration {migration} never moved partition {partition}, yet {} of its writes were held for it \
                 (the first, {} {}; the longest held {}): a cut-over holds only its own partition's writes",
                holds.len(),
                holds[0].write_name(),
                holds[0].describe(),
                format_us(longest),
            ),
        });
    }
    // Writes past the budget, by the attempt during which they passed it.
    let mut past: BTreeMap<(&str, u32, u32), Vec<(WritePause, u64)>> = BTreeMap::new();
    for write in pauses.writes() {
        let Some(budget_us) = budget_of(write.migration, write.partition) else {
            unknown_budget.push(write.migration);
            continue;
        };
        if let Some((hold, _)) = write.budget_passed(budget_us) {
            past.entry((write.migration, write.partition, hold.attempt)).or_default().push((write, budget_us));
        }
    }
    let windows = pauses.windows();
    let mut keys: Vec<(&str, u32, u32)> = past.keys().copied().collect();
    keys.extend(windows.iter().map(|window| (window.migration, window.partition, window.attempt)));
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        let (migration, partition, attempt) = key;
        let found = trace.get(migration, partition);
        if let Some(writes) = past.get_mut(&key) {
            writes.sort_by_key(|(write, _)| (std::cmp::Reverse(write.total_us), write.client, write.seq));
            judgement.violations.push(Violation { checker: CHECKER.into(), message: writes_past(found, key, writes) });
        }
        let window = windows.iter().find(|window| (window.migration, window.partition, window.attempt) == key);
        let Some(window) = window else { continue };
        let Some(budget_us) = budget_of(migration, partition) else { continue };
        if window.duration_us() <= budget_us {
            continue;
        }
        let worst = window.holds.iter().map(|hold| hold.duration_us()).max().unwrap_or(0);
        let message = format!(
            "migration {migration} partition {partition} attempt {attempt}: the attempt's pause window lasted {}, past \
             the {} budget: it opened at {} when {} ({}), the budget ran out at {} ({}), and it {}; \
             {} writes held in it, the longest hold {}",
            format_us(window.duration_us()),
            format_us(budget_us),
            format_us(window.first.opened.at_us),
            match window.first.opening {
                Opening::Held => format!("gateway {} held {}", window.first.gateway(), window.first.write_name()),
                Opening::Refused => {
                    format!("the source refused {} at gateway {}", window.first.write_name(), window.first.gateway())
                }
            },
            phase_at(found, attempt, window.first.opened.at_us),
            format_us(window.first.opened.at_us + budget_us),
            phase_at(found, attempt, window.first.opened.at_us + budget_us),
            closing(window.last, found),
            window.writes(),
            format_us(worst),
        );
        judgement.violations.push(Violation { checker: CHECKER.into(), message });
    }
    unknown_budget.sort_unstable();
    unknown_budget.dedup();
    for migration in unknown_budget {
        judgement.inconclusive.push(format!(
            "{CHECKER}: migration {migration} held writes, but its budget is unknown: the scenario does not name it \
             and the trace records no migration_plan for it"
        ));
    }
    judgement
}

/// The violation for the writes whose pause passed the budget during one attempt, worst first.
fn writes_past(found: Option<&Move>, key: (&str, u32, u32), writes: &[(WritePause, u64)]) -> String {
    let (migration, partition, attempt) = key;
    let (worst, budget_us) = &writes[0];
    let (hold, passed_us) = worst.budget_passed(*budget_us).expect("only writes past the budget are listed");
    let holds: Vec<String> = worst.holds.iter().map(|hold| hold.describe()).collect();
    let mut message = format!(
        "migration {migration} partition {partition} attempt {attempt}: {} paused {}, past the {} budget; the budget \
         ran out at {} ({}), while gateway {} held it; {}",
        hold.write_name(),
        format_us(worst.total_us),
        format_us(*budget_us),
        format_us(passed_us),
        phase_at(found, attempt, passed_us),
        hold.gateway(),
        holds.join("; ")
    );
    let more = &writes[1..];
    if !more.is_empty() {
        let named: Vec<String> = more
            .iter()
            .take(MORE_WRITES_NAMED)
            .map(|(write, _)| format!("client {}'s write {} ({})", write.client, write.seq, format_us(write.total_us)))
            .collect();
        let ellipsis = if more.len() > named.len() { ", ..." } else { "" };
        message.push_str(&format!(
            "\n  {} more writes passed the budget in this attempt: {}{ellipsis}",
            more.len(),
            named.join(", ")
        ));
    }
    message
}

/// How a window's last hold closed: `closed at 1.28s when gateway n7#0 released client 4's write 2
/// (phase commit)`.
fn closing(last: &Hold, found: Option<&Move>) -> String {
    let how = match last.closing {
        Closing::Released => "released",
        Closing::GatewayCrash => "crashed holding",
        Closing::RunEnd => {
            return format!(
                "was still open at the run's end, {}: gateway {} still held {}",
                format_us(last.closed_us),
                last.gateway(),
                last.write_name()
            )
        }
    };
    format!(
        "closed at {} when gateway {} {how} {} ({})",
        format_us(last.closed_us),
        last.gateway(),
        last.write_name(),
        phase_at(found, last.attempt, last.closed_us)
    )
}

/// `phase drain`, or why the phase is unknown.
fn phase_at(found: Option<&Move>, attempt: u32, at_us: u64) -> String {
    match found.and_then(|found| found.attempt_phase_at(attempt, at_us)) {
        Some(phase) => format!("phase {phase}"),
        None => format!("no phase recorded for attempt {attempt}"),
    }
}
