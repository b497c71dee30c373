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
    // Each appended piece's earliest call, by its bytes, and the pieces' distinct lengths: a
    // value can come from an append only if it ends with a piece appended in time.
    let mut piece_calls: HashMap<&[u8], u64> = HashMap::new();
    let texts: Vec<(u64, std::borrow::Cow<'_, str>)> =
        appends.iter().filter_map(|(call, suffix)| model.values.text(*suffix).map(|text| (*call, text))).collect();
    for (call, text) in &texts {
        let earliest = piece_calls.entry(text.as_bytes()).or_insert(*call);
        *earliest = (*earliest).min(*call);
    }
    let mut lengths: Vec<usize> = texts.iter().map(|(_, text)| text.len()).collect();
    lengths.sort_unstable();
    lengths.dedup();
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
        let text = model.values.text(observed).unwrap_or_default();
        let bytes = text.as_bytes();
        let by_append = lengths
            .iter()
            .take_while(|length| **length <= bytes.len())
            .any(|length| piece_calls.get(&bytes[bytes.len() - length..]).is_some_and(|call| *call <= returned));
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
