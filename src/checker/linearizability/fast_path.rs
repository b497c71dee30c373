//! The fast path for one register whose written values are unique (no value is written twice,
//! none equals the initial value): every read then names the one write it saw, so a candidate
//! linearization can be built in O(n log n) without searching, then verified.
//!
//! Construction, after Gibbons & Korach's "zones": a write and the reads of its value form a
//! cluster; a successful compare-and-set chains the cluster it read to the cluster it wrote.
//! Each chain of clusters is ordered by the earliest instant it must be the register's value
//! (its first return if some member was called after it, else its last call). Failed
//! compare-and-sets are then inserted where the register differs from their expected value.
//!
//! Owns that construction and the check of the result. Must never declare a history illegal:
//! a candidate that fails verification only means "search", and the general search decides.

use std::collections::HashMap;

use super::model::{Model, RegisterModel, RegisterStep};
use super::search::Timing;

/// True when the fast path found and verified a linearization of every required operation.
pub(crate) fn linearizable_by_construction(model: &mut RegisterModel, timings: &[Timing]) -> bool {
    match build_candidate(model, timings) {
        Some(order) => verify(model, timings, &order),
        None => false,
    }
}

/// A value's cluster: who wrote it, who read it, and which successful cas replaced it.
#[derive(Default)]
struct Cluster {
    writer: Option<usize>,
    readers: Vec<usize>,
    successor: Option<usize>,
}

fn build_candidate(model: &RegisterModel, timings: &[Timing]) -> Option<Vec<usize>> {
    let initial = model.initial_state();
    let steps = &model.steps;
    let mut clusters: HashMap<u32, Cluster> = HashMap::new();
    clusters.insert(initial, Cluster::default());
    let mut failed_cas: Vec<usize> = Vec::new();
    let mut observed: HashMap<u32, bool> = HashMap::new();
    // Which values somebody saw: only observed indeterminate writes need a place in the order.
    for step in steps {
        match *step {
            RegisterStep::Read { value } => {
                observed.insert(value, true);
            }
            RegisterStep::CasSucceeded { expected, .. } | RegisterStep::CasUnknown { expected, .. } => {
                observed.insert(expected, true);
            }
            RegisterStep::Write { .. } | RegisterStep::CasFailed { .. } | RegisterStep::Append { .. } => {}
        }
    }
    for (operation, step) in steps.iter().enumerate() {
        let required = timings[operation].returned.is_some();
        match *step {
            RegisterStep::Append { .. } => return None,
            RegisterStep::Write { value } => {
                if !required && !observed.contains_key(&value) {
                    continue;
                }
                let cluster = clusters.entry(value).or_default();
                if cluster.writer.is_some() || value == initial {
                    return None;
                }
                cluster.writer = Some(operation);
            }
            RegisterStep::CasSucceeded { expected, new } | RegisterStep::CasUnknown { expected, new } => {
                let is_unknown = matches!(step, RegisterStep::CasUnknown { .. });
                if is_unknown && !observed.contains_key(&new) {
                    continue;
                }
                let cluster = clusters.entry(new).or_default();
                if cluster.writer.is_some() || new == initial || new == expected {
                    return None;
                }
                cluster.writer = Some(operation);
                let previous = clusters.entry(expected).or_default();
                if previous.successor.is_some() {
                    return None;
                }
                previous.successor = Some(operation);
            }
            RegisterStep::Read { value } => clusters.entry(value).or_default().readers.push(operation),
            RegisterStep::CasFailed { .. } => failed_cas.push(operation),
        }
    }
    // Every cluster except the initial one needs its write; every chain link needs its target.
    let mut heads: Vec<(u64, u32)> = Vec::new();
    let mut chained_into: HashMap<u32, bool> = HashMap::new();
    for (value, cluster) in &clusters {
        if *value != initial && cluster.writer.is_none() {
            return None;
        }
        if let Some(cas) = cluster.successor {
            if let RegisterStep::CasSucceeded { new, .. } | RegisterStep::CasUnknown { new, .. } = steps[cas] {
                chained_into.insert(new, true);
            }
        }
    }
    for value in clusters.keys() {
        if !chained_into.contains_key(value) {
            heads.push((0, *value));
        }
    }
    // Order chains by the instant they must begin; the initial value's chain comes first.
    let mut chains: Vec<(u64, u64, Vec<u32>)> = Vec::new();
    let mut chained_values = 0usize;
    for (_, head) in heads {
        let mut values = vec![head];
        let mut current = head;
        while let Some(cas) = clusters.get(&current).and_then(|cluster| cluster.successor) {
            let (RegisterStep::CasSucceeded { new, .. } | RegisterStep::CasUnknown { new, .. }) = steps[cas] else {
                return None;
            };
            if values.len() > clusters.len() {
                return None;
            }
            values.push(new);
            current = new;
        }
        chained_values += values.len();
        let mut first_return = u64::MAX;
        let mut last_call = 0u64;
        for value in &values {
            let cluster = clusters.get(value)?;
            for operation in cluster.writer.iter().chain(cluster.readers.iter()) {
                let timing = timings[*operation];
                first_return = first_return.min(timing.returned.unwrap_or(u64::MAX));
                last_call = last_call.max(timing.call);
            }
        }
        let begins = if head == initial { 0 } else { first_return.min(last_call).saturating_add(1) };
        let tie = values.iter().map(|value| u64::from(*value)).min().unwrap_or(0);
        chains.push((begins, tie, values));
    }
    if chained_values != clusters.len() {
        // A cycle of compare-and-sets: no order can satisfy it.
        return None;
    }
    chains.sort_unstable();

    let mut order: Vec<usize> = Vec::with_capacity(steps.len());
    let mut states: Vec<u32> = Vec::with_capacity(steps.len());
    for (_, _, values) in &chains {
        for value in values {
            let cluster = clusters.get(value)?;
            if let Some(writer) = cluster.writer {
                order.push(writer);
                states.push(*value);
            }
            let mut readers = cluster.readers.clone();
            readers.sort_unstable_by_key(|operation| (timings[*operation].call, *operation));
            for reader in readers {
                order.push(reader);
                states.push(*value);
            }
        }
    }
    insert_failed_compares(steps, timings, &mut order, &states, initial, failed_cas);
    Some(order)
}

/// Puts each failed compare-and-set at the first position not before its call (estimated by
/// the running maximum of call times) where the register differs from its expected value.
fn insert_failed_compares(
    steps: &[RegisterStep],
    timings: &[Timing],
    order: &mut Vec<usize>,
    states: &[u32],
    initial: u32,
    mut failed_cas: Vec<usize>,
) {
    if failed_cas.is_empty() {
        return;
    }
    let mut running_call = Vec::with_capacity(order.len());
    let mut latest = 0u64;
    for operation in order.iter() {
        latest = latest.max(timings[*operation].call);
        running_call.push(latest);
    }
    failed_cas.sort_unstable_by_key(|operation| (timings[*operation].call, *operation));
    // insertions[i]: failed compares placed just after order[i - 1] (index 0: before all).
    let mut insertions: Vec<Vec<usize>> = vec![Vec::new(); order.len() + 1];
    for cas in failed_cas {
        let RegisterStep::CasFailed { expected } = steps[cas] else {
            continue;
        };
        let call = timings[cas].call;
        let mut position = running_call.partition_point(|time| *time <= call);
        loop {
            let state = if position == 0 { initial } else { states[position - 1] };
            if state != expected || position >= order.len() {
                break;
            }
            position += 1;
        }
        insertions[position].push(cas);
    }
    let mut merged = Vec::with_capacity(order.len() + insertions.iter().map(Vec::len).sum::<usize>());
    for (position, operation) in order.iter().enumerate() {
        merged.extend_from_slice(&insertions[position]);
        merged.push(*operation);
    }
    merged.extend_from_slice(&insertions[order.len()]);
    *order = merged;
}

/// Checks that `order` contains every required operation once, respects real time, and is
/// legal step by step.
fn verify(model: &mut RegisterModel, timings: &[Timing], order: &[usize]) -> bool {
    let mut seen = vec![false; timings.len()];
    for operation in order {
        if std::mem::replace(&mut seen[*operation], true) {
            return false;
        }
    }
    if timings.iter().zip(&seen).any(|(timing, seen)| timing.returned.is_some() && !seen) {
        return false;
    }
    // Real time: no later operation may have returned before an earlier one was called.
    let mut earliest_later_return = u64::MAX;
    for operation in order.iter().rev() {
        let timing = timings[*operation];
        if earliest_later_return < timing.call {
            return false;
        }
        earliest_later_return = earliest_later_return.min(timing.returned.unwrap_or(u64::MAX));
    }
    let mut state = model.initial_state();
    for operation in order {
        match model.step(state, *operation) {
            Some(next) => state = next,
            None => return false,
        }
    }
    true
}
