//! Writes that no observation can tell apart. A written value (a put's value, a compare-and-set's
//! new value, an appended piece) that occurs in no value any operation compares against (no
//! read's result, no compare-and-set's expected value, not even inside one) can never be seen:
//! once it is in the register, every state up to the next overwrite contains it, so no read and
//! no compare matches until then. All such states behave alike for every operation (reads and
//! successful compares fail, failed compares pass, appends keep them unobservable), so each of
//! these writes is compiled to one write of the single state [`ValueTable::POISON`].
//!
//! This is what keeps indeterminate writes nobody read from blowing up the search: they all
//! become one interchangeable kind of operation, and the search tries one only where it can
//! matter (to let a failed compare pass). A required append nobody observes becomes a write of
//! the poisoned state too, so the search no longer orders such appends.
//!
//! Finding which pieces occur inside observed values rolls a polynomial hash over every distinct
//! observed text once per distinct piece length, and confirms each hit by comparing bytes, so the
//! answer is exact. Past [`MAX_PIECE_LENGTHS`] distinct lengths the remaining pieces are simply
//! taken as observed (the search is then only slower, never wrong).
//!
//! Owns that analysis and the rewrite of steps. Must never change which histories are
//! linearizable: it only merges states no operation can distinguish.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::BuildHasherDefault;

use super::fast_hash::PassThroughHasher;
use super::model::{RegisterModel, RegisterStep, ValueTable};
use super::values::{polynomial_hash, RollingHash};

/// How many distinct piece lengths are searched for; longer tails of rare lengths count as
/// observed.
const MAX_PIECE_LENGTHS: usize = 64;

/// Rewrites every write of an unobserved value into a write of the poisoned state; returns how
/// many operations were rewritten.
pub(crate) fn poison_unobserved_writes(model: &mut RegisterModel) -> usize {
    let observed = observed_pieces(model);
    let mut rewritten = 0;
    for step in &mut model.steps {
        let unobserved = |value: u32| !observed.contains(&value);
        let replacement = match *step {
            RegisterStep::Write { value } if value != ValueTable::POISON && unobserved(value) => {
                RegisterStep::Write { value: ValueTable::POISON }
            }
            // The state after it contains the piece, whatever it was before.
            RegisterStep::Append { suffix } if unobserved(suffix) => RegisterStep::Write { value: ValueTable::POISON },
            RegisterStep::CasSucceeded { expected, new } if new != ValueTable::POISON && unobserved(new) => {
                RegisterStep::CasSucceeded { expected, new: ValueTable::POISON }
            }
            RegisterStep::CasUnknown { expected, new } if new != ValueTable::POISON && unobserved(new) => {
                RegisterStep::CasUnknown { expected, new: ValueTable::POISON }
            }
            RegisterStep::Write { .. }
            | RegisterStep::Append { .. }
            | RegisterStep::CasSucceeded { .. }
            | RegisterStep::CasUnknown { .. }
            | RegisterStep::Read { .. }
            | RegisterStep::CasFailed { .. } => continue,
        };
        *step = replacement;
        rewritten += 1;
    }
    rewritten
}

/// The written values (by id) that occur inside some value an operation compares against.
fn observed_pieces(model: &RegisterModel) -> HashSet<u32> {
    let mut compared: Vec<u32> = Vec::new();
    let mut written: Vec<u32> = Vec::new();
    for step in &model.steps {
        match *step {
            RegisterStep::Read { value } => compared.push(value),
            RegisterStep::CasFailed { expected } => compared.push(expected),
            RegisterStep::CasSucceeded { expected, new } | RegisterStep::CasUnknown { expected, new } => {
                compared.push(expected);
                written.push(new);
            }
            RegisterStep::Write { value } => written.push(value),
            RegisterStep::Append { suffix } => written.push(suffix),
        }
    }
    compared.retain(|value| *value != ValueTable::ABSENT && *value != ValueTable::POISON);
    compared.sort_unstable();
    compared.dedup();
    written.retain(|value| *value != ValueTable::ABSENT && *value != ValueTable::POISON);
    written.sort_unstable();
    written.dedup();

    let mut observed: HashSet<u32> = HashSet::new();
    // A value that another compared value extends holds no substring the longer one lacks.
    let scanned: &[u32] = model.values.maximal_compared().unwrap_or(&compared);
    let texts: Vec<std::borrow::Cow<'_, str>> = scanned.iter().filter_map(|value| model.values.text(*value)).collect();
    let longest_text = texts.iter().map(|text| text.len()).max();
    // Pieces by length; the commonest lengths are searched first.
    let mut by_length: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
    for value in written {
        if compared.binary_search(&value).is_ok() {
            observed.insert(value);
            continue;
        }
        let length = model.values.length(value) as usize;
        match longest_text {
            // The empty string occurs in every present value.
            Some(_) if length == 0 => {
                observed.insert(value);
            }
            Some(longest) if length <= longest => by_length.entry(length).or_default().push(value),
            Some(_) | None => {}
        }
    }
    let mut lengths: Vec<(usize, Vec<u32>)> = by_length.into_iter().collect();
    lengths.sort_by_key(|(length, pieces)| (std::cmp::Reverse(pieces.len()), *length));
    for (rank, (length, pieces)) in lengths.into_iter().enumerate() {
        if rank >= MAX_PIECE_LENGTHS {
            for piece in pieces {
                observed.insert(piece);
            }
            continue;
        }
        find_pieces(model, &texts, length, &pieces, &mut observed);
    }
    observed
}

/// Marks which of `pieces` (all of byte length `length`) occur in some of `texts`.
fn find_pieces(
    model: &RegisterModel,
    texts: &[std::borrow::Cow<'_, str>],
    length: usize,
    pieces: &[u32],
    observed: &mut HashSet<u32>,
) {
    let mut by_hash: HashMap<u64, Vec<u32>, BuildHasherDefault<PassThroughHasher>> = HashMap::default();
    for piece in pieces {
        if let Some(text) = model.values.text(*piece) {
            by_hash.entry(polynomial_hash(text.as_bytes()).0).or_default().push(*piece);
        }
    }
    let mut remaining = pieces.len();
    let rolling = RollingHash::new(length);
    for text in texts {
        if remaining == 0 {
            return;
        }
        let bytes = text.as_bytes();
        rolling.for_each_window(bytes, |start, hash| {
            let Some(candidates) = by_hash.get_mut(&hash) else {
                return;
            };
            let window = &bytes[start..start + length];
            candidates.retain(|piece| {
                let matches = model.values.text(*piece).is_some_and(|text| text.as_bytes() == window);
                if matches {
                    observed.insert(*piece);
                    remaining -= 1;
                }
                !matches
            });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::linearizability::history::{KvFunction, Observed};

    fn compile(functions: &[KvFunction]) -> RegisterModel {
        let mut model = RegisterModel::new(None);
        for function in functions {
            let step = model.compile(function, false).expect("compiles");
            model.push(step);
        }
        model
    }

    #[test]
    fn unobserved_pieces_are_poisoned_and_observed_ones_kept() {
        let read = |value: &str| KvFunction::Get { result: Observed::Value(Some(value.to_owned())) };
        let append = |value: &str| KvFunction::Append { value: value.to_owned() };
        let put = |value: &str| KvFunction::Put { value: value.to_owned() };
        let mut model = compile(&[
            append("[a1]"),
            append("[b22]"),
            append("[never]"),
            put("x"),
            put("lost"),
            read("x[a1][b22]"),
            KvFunction::Cas { expected: Some("old".into()), new: "cas-new".into(), result: Observed::Value(false) },
            KvFunction::Cas { expected: Some("ol".into()), new: "l".into(), result: Observed::Value(true) },
        ]);
        let rewritten = poison_unobserved_writes(&mut model);
        let poisoned: Vec<bool> = model
            .steps
            .iter()
            .map(|step| {
                matches!(
                    step,
                    RegisterStep::Write { value: ValueTable::POISON }
                        | RegisterStep::CasSucceeded { new: ValueTable::POISON, .. }
                )
            })
            .collect();
        // "[never]" and "lost" occur in no compared value ("cas-new" is no write: its cas
        // failed); "l" occurs inside "old".
        assert_eq!(poisoned, vec![false, false, true, false, true, false, false, false]);
        assert_eq!(rewritten, 2);
    }
}
