//! A cheap, sound test for the commonest violation: an operation that observed a value no
//! operation could have produced by the time it returned (a phantom or future read). For a
//! register the last operation before such a read must have been a write or successful cas of
//! that very value, or an append of one of its suffixes (or the value is the initial one).
//!
//! It matters because proving such a history illegal by search means exhausting every placement
//! of the pending indeterminate operations before the read, which is exponential; this finds
//! it in O(n log n). Owns only that test. Must never declare a history linearizable.

use std::collections::HashMap;

use super::model::{RegisterModel, RegisterStep};
use super::search::Timing;

/// An operation whose observation is impossible, and why.
pub(crate) struct ImpossibleObservation {
    pub(crate) operation: usize,
    pub(crate) reason: String,
}

/// Finds the earliest-returning required operation that observed an unproducible value.
pub(crate) fn find(model: &RegisterModel, timings: &[Timing]) -> Option<ImpossibleObservation> {
    let initial = model.initial_state_id();
    // Earliest call of an operation that sets the register to exactly this value.
    let mut first_writer: HashMap<u32, u64> = HashMap::new();
    let mut appends: Vec<(u64, u32)> = Vec::new();
    for (operation, step) in model.steps.iter().enumerate() {
        let call = timings[operation].call;
        match *step {
            RegisterStep::Write { value } => {
                let earliest = first_writer.entry(value).or_insert(call);
                *earliest = (*earliest).min(call);
            }
            RegisterStep::CasSucceeded { new, .. } | RegisterStep::CasUnknown { new, .. } => {
                let earliest = first_writer.entry(new).or_insert(call);
                *earliest = (*earliest).min(call);
            }
            RegisterStep::Append { suffix } => appends.push((call, suffix)),
            RegisterStep::Read { .. } | RegisterStep::CasFailed { .. } => {}
        }
    }
    appends.sort_unstable();
    let mut found: Option<(u64, usize, String)> = None;
    for (operation, step) in model.steps.iter().enumerate() {
        let Some(returned) = timings[operation].returned else {
            continue;
        };
        let (observed, what) = match *step {
            RegisterStep::Read { value } => (value, "read"),
            RegisterStep::CasSucceeded { expected, .. } => (expected, "compared successfully against"),
            RegisterStep::Write { .. }
            | RegisterStep::Append { .. }
            | RegisterStep::CasFailed { .. }
            | RegisterStep::CasUnknown { .. } => continue,
        };
        if observed == initial || first_writer.get(&observed).is_some_and(|call| *call <= returned) {
            continue;
        }
        let text = model.values.lookup(observed).unwrap_or("");
        let called_in_time = appends.partition_point(|(call, _)| *call <= returned);
        let by_append = appends[..called_in_time]
            .iter()
            .any(|(_, suffix)| text.ends_with(model.values.lookup(*suffix).unwrap_or("")));
        if by_append {
            continue;
        }
        if found.as_ref().map_or(true, |(earliest, _, _)| returned < *earliest) {
            let reason = format!(
                "{what} {}, but no operation invoked before it returned could have produced that value",
                model.describe_value_id(observed)
            );
            found = Some((returned, operation, reason));
        }
    }
    found.map(|(_, operation, reason)| ImpossibleObservation { operation, reason })
}
