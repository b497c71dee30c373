//! `linearizable`: the client operations of a run, as a key-value history, are linearizable
//! against a register per key (keys start absent). Builds the history from the events
//! (`client_ops`) and runs the linearizability library on it, with bounds that suit a seed runner
//! which already keeps every core busy with seeds: one thread, a time limit per run, and a stop
//! at the first illegal key.
//!
//! Owns those bounds and the wording of the violation. Must never decide linearizability itself.

use std::time::Duration;

use super::client_ops::kv_history;
use super::linearizability::{self, check_kv_report, CheckOptions, Verdict};
use super::{Judgement, Violation};
use crate::trace::Event;

const CHECKER: &str = "linearizable";
/// Wall-clock time the check of one run may take before it is `unknown`.
const TIME_LIMIT: Duration = Duration::from_secs(60);
/// The search's memo table per key: several seeds run at once, each may hold this much.
const MEMORY_PER_KEY_BYTES: u64 = 256 << 20;
/// How many of the longest prefix's last operations the message shows.
const PREFIX_SHOWN: usize = 4;
/// How many operations overlapping the stuck one the message shows (the nearest in time).
const CONCURRENT_SHOWN: usize = 6;

/// The options `linearizable` checks with.
pub fn check_options() -> CheckOptions {
    CheckOptions {
        time_limit: Some(TIME_LIMIT),
        max_states_per_key: None,
        max_memory_bytes_per_key: Some(MEMORY_PER_KEY_BYTES),
        stop_at_first_violation: true,
        threads: 1,
        fast_path: true,
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
                "{CHECKER}: {reason} (bounds: {}s per run, {} MiB of memo table per key)",
                TIME_LIMIT.as_secs(),
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
    text.push_str("\n  (times are model microseconds)");
    text
}
