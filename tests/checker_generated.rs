//! linearizability: generated histories of the classes that once made the checker slow or
//! inconclusive get the right verdict, and never `unknown`:
//!
//! - append-heavy keys with 10, 20 and 50 clients, timed-out writes that never took effect (so no
//!   read shows them), with and without a stale read planted late in the last key;
//! - the same under the seed runner's bounds (`checker::linearizable_check_options`: no clock,
//!   states and memory only), on store-shaped histories of 20,000 operations over a few hot keys
//!   with compare-and-sets and timed-out writes that did take effect;
//! - the verdict and report are the same whether every key is checked or the check stops at the
//!   first illegal key, and whatever the number of threads.
//!
//! Speed is measured in `benches/checker.rs` (`results/checker.md`), not here.

use migsim::checker::linearizability::generate::{generate, GeneratorSettings};
use migsim::checker::linearizability::{check_kv_report, CheckOptions, KvHistory, Verdict};

fn append_heavy(operations: usize, keys: usize, clients: usize, violation: bool) -> KvHistory {
    let mut settings = GeneratorSettings::append_heavy(operations, keys, clients, 7 + clients as u64);
    settings.violation_at = violation.then_some(0.9);
    generate(&settings)
}

/// Checks `history` with `options` and with stop-at-first on 1 and 2 threads; all must agree and
/// none may be `unknown`. Returns the verdict.
fn verdict_everywhere(history: &KvHistory, options: &CheckOptions) -> Verdict {
    let reference = check_kv_report(history, options).verdict;
    assert!(!matches!(reference, Verdict::Unknown { .. }), "generated history ended {reference}");
    for threads in [1, 2] {
        for stop_at_first_violation in [false, true] {
            let varied = CheckOptions { threads, stop_at_first_violation, ..options.clone() };
            let verdict = check_kv_report(history, &varied).verdict;
            assert_eq!(
                verdict.to_string(),
                reference.to_string(),
                "threads {threads}, stop at first {stop_at_first_violation}"
            );
        }
    }
    reference
}

fn assert_illegal_on(verdict: &Verdict, key: &str) {
    match verdict {
        Verdict::Illegal(violation) => assert_eq!(violation.key.as_deref(), Some(key), "{violation}"),
        other => panic!("expected key {key} illegal, got {other}"),
    }
}

#[test]
fn linearizability_append_heavy_keys_with_unread_timeouts_are_decided() {
    for clients in [10, 20, 50] {
        let legal = append_heavy(2_000, 10, clients, false);
        assert_eq!(verdict_everywhere(&legal, &CheckOptions::default()), Verdict::Ok, "{clients} clients");
        let illegal = append_heavy(2_000, 10, clients, true);
        assert_illegal_on(&verdict_everywhere(&illegal, &CheckOptions::default()), "k9");
    }
}

/// The JSON Lines case: 2,000 operations over 5 keys, 10 clients, about 5 % of the
/// appends timed out and never read.
#[test]
fn linearizability_five_keys_with_unread_timed_out_appends_are_ok() {
    let settings = GeneratorSettings { weights: [30, 10, 0, 60], ..GeneratorSettings::append_heavy(2_000, 5, 10, 3) };
    let history = generate(&settings);
    let unread_timeouts = history.operations.iter().filter(|operation| operation.return_us.is_none()).count();
    assert!(unread_timeouts >= 50, "the class needs timed-out writes, found {unread_timeouts}");
    assert_eq!(verdict_everywhere(&history, &CheckOptions::default()), Verdict::Ok);
}

/// The store's histories: unique short tokens, every operation kind, timed-out writes of which
/// half took effect (so reads see some of them), zipf-like heat concentrated on a few keys.
fn store_shaped(operations: usize, keys: usize, clients: usize, seed: u64, violation: bool) -> KvHistory {
    let settings = GeneratorSettings {
        seed,
        operations,
        keys,
        clients,
        indeterminate_fraction: 0.05,
        unique_values: true,
        weights: [25, 10, 5, 60],
        max_stretch_us: 3 * clients as u64,
        indeterminate_effect_fraction: 0.5,
        value_length: 0,
        violation_at: violation.then_some(0.9),
    };
    generate(&settings)
}

#[test]
fn linearizability_seed_run_bounds_decide_store_shaped_histories() {
    let options = migsim::checker::linearizable_check_options();
    assert!(options.time_limit.is_none(), "seed runs must not depend on the host's clock");
    assert!(options.max_states_per_key.is_some() && options.max_memory_bytes_per_key.is_some());
    // 20,000 operations on 6 hot keys: over 3,000 operations per key.
    let legal = store_shaped(20_000, 6, 16, 11, false);
    assert_eq!(check_kv_report(&legal, &options).verdict, Verdict::Ok);
    let illegal = store_shaped(3_200, 6, 50, 12, true);
    assert_illegal_on(&check_kv_report(&illegal, &options).verdict, "k5");
}
