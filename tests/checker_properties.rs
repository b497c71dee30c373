//! linearizability: properties of the checker on generated histories.
//!
//! - a sequential execution stretched into overlapping intervals is always linearizable;
//! - the same history with one read's value altered, where that provably cannot be linearized
//!   (a value never written, or only written after the read returned), is illegal;
//! - on small random histories the checker agrees with a brute-force enumeration of orders;
//! - the report does not depend on the number of threads.

use migsim::checker::linearizability::generate::{generate, GeneratorSettings};
use migsim::checker::linearizability::{check_kv, CheckOptions, KvFunction, KvHistory, KvOperation, Observed, Verdict};
use proptest::prelude::*;

fn settings() -> impl Strategy<Value = GeneratorSettings> {
    (
        any::<u64>(),
        1usize..120,
        1usize..4,
        1usize..7,
        0.0f64..0.3,
        any::<bool>(),
        prop_oneof![Just([50, 30, 20, 0]), Just([40, 20, 20, 20]), Just([50, 50, 0, 0]), Just([30, 0, 70, 0])],
        1u64..60,
    )
        .prop_map(
            |(seed, operations, keys, clients, indeterminate_fraction, unique_values, weights, max_stretch_us)| {
                GeneratorSettings {
                    seed,
                    operations,
                    keys,
                    clients,
                    indeterminate_fraction,
                    unique_values,
                    weights,
                    max_stretch_us,
                    ..GeneratorSettings::default()
                }
            },
        )
}

fn options(fast_path: bool, threads: usize) -> CheckOptions {
    CheckOptions { fast_path, threads, ..CheckOptions::default() }
}

/// Indices of completed gets that observed a value.
fn completed_reads(history: &KvHistory) -> Vec<usize> {
    (0..history.operations.len())
        .filter(|index| {
            let operation = &history.operations[*index];
            operation.return_us.is_some()
                && matches!(operation.function, KvFunction::Get { result: Observed::Value(_) })
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn sequential_executions_with_overlaps_are_linearizable(settings in settings()) {
        let history = generate(&settings);
        for fast_path in [true, false] {
            let verdict = check_kv(&history, &options(fast_path, 2));
            prop_assert!(verdict == Verdict::Ok, "fast path {}: {}", fast_path, verdict);
        }
    }

    #[test]
    fn a_read_of_a_value_never_written_is_illegal(settings in settings(), choice in any::<prop::sample::Index>()) {
        let mut history = generate(&settings);
        let reads = completed_reads(&history);
        prop_assume!(!reads.is_empty());
        let altered = reads[choice.index(reads.len())];
        // No written value or append contains '#', so no state can ever equal this.
        history.operations[altered].function = KvFunction::Get { result: Observed::Value(Some("#never".to_owned())) };
        let key = history.operations[altered].key.clone();
        for fast_path in [true, false] {
            match check_kv(&history, &options(fast_path, 2)) {
                Verdict::Illegal(violation) => prop_assert_eq!(violation.key.as_deref(), Some(key.as_str())),
                other => prop_assert!(false, "expected illegal, got {}", other),
            }
        }
    }

    #[test]
    fn a_read_of_a_value_written_only_later_is_illegal(settings in settings(), choice in any::<prop::sample::Index>()) {
        let mut history = generate(&settings);
        let reads = completed_reads(&history);
        prop_assume!(!reads.is_empty());
        let altered = reads[choice.index(reads.len())];
        let read = history.operations[altered].clone();
        let read_return = read.return_us.unwrap_or(u64::MAX);
        let same_key: Vec<&KvOperation> = history.operations.iter().filter(|operation| operation.key == read.key).collect();
        // Appends build values from pieces, so "who writes v" is not a simple question there.
        let has_append = same_key.iter().any(|operation| matches!(operation.function, KvFunction::Append { .. }));
        let written = |operation: &KvOperation| match &operation.function {
            KvFunction::Put { value } => Some(value.clone()),
            KvFunction::Cas { new, .. } => Some(new.clone()),
            KvFunction::Get { .. } | KvFunction::Append { .. } => None,
        };
        let candidate = same_key.iter().filter_map(|operation| written(operation)).find(|value| {
            same_key.iter().all(|operation| written(operation).as_ref() != Some(value) || operation.call_us > read_return)
        });
        if has_append || candidate.is_none() {
            return Ok(());
        }
        history.operations[altered].function = KvFunction::Get { result: Observed::Value(candidate) };
        for fast_path in [true, false] {
            let verdict = check_kv(&history, &options(fast_path, 2));
            prop_assert!(matches!(verdict, Verdict::Illegal(_)), "expected illegal, got {}", verdict);
        }
    }

    #[test]
    fn a_read_of_an_overwritten_value_is_illegal(settings in settings(), choice in any::<prop::sample::Index>()) {
        // Needs the search: the stale value was written in time, so no shortcut applies.
        let settings = GeneratorSettings { unique_values: true, operations: settings.operations.min(60), ..settings };
        let mut history = generate(&settings);
        let reads = completed_reads(&history);
        prop_assume!(!reads.is_empty());
        let altered = reads[choice.index(reads.len())];
        let read = history.operations[altered].clone();
        let same_key: Vec<&KvOperation> = history.operations.iter().filter(|operation| operation.key == read.key).collect();
        if same_key.iter().any(|operation| matches!(operation.function, KvFunction::Append { .. })) {
            return Ok(());
        }
        let writes_of = |value: &str| {
            same_key
                .iter()
                .filter(|operation| match &operation.function {
                    KvFunction::Put { value: written } | KvFunction::Cas { new: written, .. } => written == value,
                    KvFunction::Get { .. } | KvFunction::Append { .. } => false,
                })
                .count()
        };
        // A completed put of v, then a completed put of another value strictly between it and
        // the read: with v written once, the read cannot see v.
        let before = |first: &KvOperation, second: &KvOperation| first.return_us.is_some_and(|returned| returned < second.call_us);
        let stale = same_key.iter().find_map(|first| {
            let KvFunction::Put { value } = &first.function else { return None };
            let overwritten = same_key.iter().any(|second| {
                matches!(&second.function, KvFunction::Put { value: other } if other != value)
                    && before(first, second)
                    && before(second, &read)
            });
            (overwritten && writes_of(value) == 1).then(|| value.clone())
        });
        let Some(stale) = stale else { return Ok(()) };
        history.operations[altered].function = KvFunction::Get { result: Observed::Value(Some(stale)) };
        for fast_path in [true, false] {
            let verdict = check_kv(&history, &options(fast_path, 2));
            prop_assert!(matches!(verdict, Verdict::Illegal(_)), "expected illegal, got {}", verdict);
        }
    }

    #[test]
    fn reports_do_not_depend_on_threads(settings in settings(), choice in any::<prop::sample::Index>()) {
        let mut history = generate(&settings);
        let reads = completed_reads(&history);
        if !reads.is_empty() {
            let altered = reads[choice.index(reads.len())];
            history.operations[altered].function = KvFunction::Get { result: Observed::Value(Some("#never".to_owned())) };
        }
        let single = check_kv(&history, &options(true, 1)).to_string();
        let several = check_kv(&history, &options(true, 4)).to_string();
        prop_assert_eq!(single, several);
    }
}

/// A small random history on one key: operations with random intervals and results, so that
/// some are linearizable and some are not. `unobserved` adds written values that no read or
/// compare shows ("c", "dd"), which the checker merges into one unobservable state, and more
/// indeterminate operations, which it groups into interchangeable classes.
fn small_history(unobserved: bool) -> impl Strategy<Value = KvHistory> {
    let value =
        prop_oneof![Just(None), Just(Some("a".to_owned())), Just(Some("b".to_owned())), Just(Some("ab".to_owned()))];
    let written = if unobserved {
        prop_oneof![Just("a".to_owned()), Just("b".to_owned()), Just("c".to_owned()), Just("dd".to_owned())].boxed()
    } else {
        prop_oneof![Just("a".to_owned()), Just("b".to_owned())].boxed()
    };
    let function = prop_oneof![
        value.clone().prop_map(|value| KvFunction::Get { result: Observed::Value(value) }),
        written.clone().prop_map(|value| KvFunction::Put { value }),
        written.clone().prop_map(|value| KvFunction::Append { value }),
        (value, written, any::<bool>()).prop_map(|(expected, new, swapped)| KvFunction::Cas {
            expected,
            new,
            result: Observed::Value(swapped)
        }),
    ];
    let indeterminate = if unobserved { 0.35 } else { 0.2 };
    let operation = (function, 0u64..12, 0u64..6, prop::bool::weighted(indeterminate));
    prop::collection::vec(operation, 0..8).prop_map(|operations| KvHistory {
        initial_value: None,
        operations: operations
            .into_iter()
            .enumerate()
            .map(|(index, (function, call_us, length, indeterminate))| KvOperation {
                id: index as u64,
                client: index as u64,
                key: "k".to_owned(),
                function,
                call_us,
                return_us: (!indeterminate).then_some(call_us + length),
            })
            .collect(),
    })
}

fn agrees_with_brute_force(history: &KvHistory) -> Result<(), TestCaseError> {
    let expected = brute_force(&history.operations, &mut vec![false; history.operations.len()], &None);
    for fast_path in [true, false] {
        for stop_at_first_violation in [false, true] {
            let options = CheckOptions { stop_at_first_violation, ..options(fast_path, 1) };
            let verdict = check_kv(history, &options);
            prop_assert!(matches!(verdict, Verdict::Ok | Verdict::Illegal(_)), "{}", verdict);
            prop_assert_eq!(verdict == Verdict::Ok, expected, "fast path {}: {} for {:?}", fast_path, verdict, history);
        }
    }
    Ok(())
}

/// The register's specification, written independently of the checker's model.
fn apply(state: &Option<String>, operation: &KvOperation) -> Option<Option<String>> {
    let indeterminate = operation.return_us.is_none();
    match &operation.function {
        KvFunction::Get { result: Observed::Value(value) } if !indeterminate => (value == state).then(|| state.clone()),
        KvFunction::Get { .. } => Some(state.clone()),
        KvFunction::Put { value } => Some(Some(value.clone())),
        KvFunction::Append { value } => Some(Some(format!("{}{value}", state.clone().unwrap_or_default()))),
        KvFunction::Cas { expected, new, result } => {
            let matches = expected == state;
            match result {
                Observed::Value(true) if !indeterminate => matches.then(|| Some(new.clone())),
                Observed::Value(false) if !indeterminate => (!matches).then(|| state.clone()),
                Observed::Value(_) | Observed::Unknown => Some(if matches { Some(new.clone()) } else { state.clone() }),
            }
        }
    }
}

/// Tries every order: an operation may go next if no other unplaced operation returned before
/// it was called; indeterminate operations may also never happen.
fn brute_force(operations: &[KvOperation], placed: &mut Vec<bool>, state: &Option<String>) -> bool {
    let all_required_placed =
        operations.iter().zip(placed.iter()).all(|(operation, placed)| *placed || operation.return_us.is_none());
    if all_required_placed {
        return true;
    }
    for index in 0..operations.len() {
        if placed[index] {
            continue;
        }
        let call = operations[index].call_us;
        let blocked = operations.iter().enumerate().any(|(other, operation)| {
            !placed[other] && other != index && operation.return_us.is_some_and(|returned| returned < call)
        });
        if blocked {
            continue;
        }
        if let Some(next) = apply(state, &operations[index]) {
            placed[index] = true;
            let found = brute_force(operations, placed, &next);
            placed[index] = false;
            if found {
                return true;
            }
        }
    }
    false
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn small_histories_agree_with_brute_force(history in small_history(false)) {
        agrees_with_brute_force(&history)?;
    }

    #[test]
    fn small_histories_with_unobserved_writes_agree_with_brute_force(history in small_history(true)) {
        agrees_with_brute_force(&history)?;
    }
}
