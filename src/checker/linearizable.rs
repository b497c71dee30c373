//! `linearizable`: the client operations of a run, as a key-value history, are linearizable
//! against a register per key (keys start absent). Builds the history from the events
//! (`client_ops`) and runs the linearizability library on it, with bounds that suit a seed runner
//! which already keeps every core busy with seeds: one thread, and a stop at the first key proven
//! illegal.
//!
//! The verdict is a function of the run's events alone, never of the host: the search is bounded
//! by the configurations it remembers and by the bytes it holds, both counted by the search
//! itself (the bytes from its structures' sizes, not from the allocator), so the same history hits
//! the same bound at the same step on any machine under any load; there is no wall-clock limit.
//! With stop-at-first, keys advance in rounds of a fixed number of search steps, so which key is
//! reported does not depend on timing either. The bounds are far above what the store's runs
//! need (`tests/checker_generated.rs` checks store-shaped histories of 20,000 operations on a
//! few hot keys against them), so an `inconclusive` from this checker means a history unlike any
//! the store produces, not a busy host.
//!
//! Owns those bounds and the wording of the violation. Must never decide linearizability itself.

use super::client_ops::kv_history;
use super::linearizability::{self, check_kv_report, CheckOptions, Verdict};
use super::{Judgement, Violation};
use crate::trace::Event;

const CHECKER: &str = "linearizable";
/// Configurations the search of one key may remember.
const MAX_STATES_PER_KEY: u64 = 20_000_000;
/// Bytes the check of one key may hold, everything counted (memo, values and states, lists):
/// several seeds run at once, each may hold this much.
const MEMORY_PER_KEY_BYTES: u64 = 512 << 20;
/// How many of the longest prefix's last operations the message shows.
const PREFIX_SHOWN: usize = 4;
/// How many operations overlapping the stuck one the message shows (the nearest in time).
const CONCURRENT_SHOWN: usize = 6;

/// The options `linearizable` checks with.
pub fn check_options() -> CheckOptions {
    CheckOptions {
        time_limit: None,
        max_states_per_key: Some(MAX_STATES_PER_KEY),
        max_memory_bytes_per_key: Some(MEMORY_PER_KEY_BYTES),
        stop_at_first_violation: true,
        threads: 1,
        fast_path: true,
        time_unit: linearizability::TimeUnit::Microseconds,
    }
}

pub fn linearizable(events: &[Event]) -> Judgement {
    let history = match kv_history(events) {
        Ok(history) => history,
        Err(message) => return Judgement::violation(CHECKER, format!("malformed history, cannot check it: {message}")),
    };
    match check_kv_report(&history, &check_options()).verdict {
        Verdict::Ok => Judgement::default(),
        Verdict::Illegal(violation) => Judgement {
            violations: vec![Violation { checker: CHECKER.into(), message: readable(violation) }],
            inconclusive: Vec::new(),
        },
        Verdict::Unknown { reason } => Judgement {
            violations: Vec::new(),
            inconclusive: vec![format!(
                "{CHECKER}: {reason} (bounds: {MAX_STATES_PER_KEY} configurations and {} MiB per key)",
                MEMORY_PER_KEY_BYTES >> 20
            )],
        },
    }
}

/// The library's explanation, cut to a few lines: the last operations of the longest prefix and
/// the overlapping operations nearest the one that cannot be placed.
fn readable(mut violation: linearizability::Violation) -> String {
    let hidden_prefix = violation.prefix_tail.len().saturating_sub(PREFIX_SHOWN);
    violation.prefix_tail.drain(..hidden_prefix);
    let hidden_concurrent = violation.concurrent.len().saturating_sub(CONCURRENT_SHOWN);
    if hidden_concurrent > 0 {
        let anchor = violation.stuck.as_ref().map_or(0, |stuck| stuck.call_us);
        violation.concurrent.sort_by_key(|operation| (operation.call_us.abs_diff(anchor), operation.id));
        violation.concurrent.truncate(CONCURRENT_SHOWN);
        violation.concurrent.sort_by_key(|operation| (operation.call_us, operation.id));
    }
    let mut text = violation.to_string().trim_end().to_owned();
    if hidden_concurrent > 0 {
        text.push_str(&format!("\n    ... {hidden_concurrent} more overlapping operations not shown"));
    }
    text
}
