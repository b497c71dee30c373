//! `progress`: a store that answers nothing passes every safety checker, so a liveness checker
//! must fail it. Each case starves the clients of `store-steady` one way and expects `progress`
//! (and only liveness) to say so; the unstarved scenario passes the same seed.

use migsim::runner::{run_seed, RunOptions, Verdict};

const STEADY: &str = include_str!("../scenarios/store-steady.toml");

/// `store-steady`, shortened to keep the test fast, with `replace` applied to its text.
fn verdict(replace: &[(&str, &str)]) -> Verdict {
    let mut text =
        STEADY.replace("duration = \"2s\"", "duration = \"300ms\"").replace("heal = \"1s\"", "heal = \"700ms\"");
    for (from, to) in replace {
        assert!(text.contains(from), "store-steady no longer says {from}");
        text = text.replace(from, to);
    }
    let scenario = migsim::scenario::parse("store-steady (starved)", &text).unwrap_or_else(|error| panic!("{error}"));
    run_seed(&scenario.plan(), 1, RunOptions::default()).verdict
}

fn assert_no_progress(verdict: Verdict) {
    let Verdict::Fail { violations } = verdict else { panic!("a starved store passed: {verdict:?}") };
    let checkers: Vec<&str> = violations.iter().map(|violation| violation.checker.as_str()).collect();
    assert_eq!(checkers, vec!["progress"], "{violations:?}");
}

#[test]
fn a_store_that_answers_nothing_in_time_fails_progress() {
    assert_no_progress(verdict(&[("op_timeout = \"300ms\"", "op_timeout = \"1ms\"")]));
}

#[test]
fn a_network_of_one_byte_per_second_fails_progress() {
    assert_no_progress(verdict(&[("[network]\n", "[network]\nbandwidth = \"1B\"\n")]));
}

#[test]
fn the_unstarved_store_passes_progress() {
    assert_eq!(verdict(&[]), Verdict::Pass);
}
