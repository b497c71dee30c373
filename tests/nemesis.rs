//! The fault engine in a run: role selectors resolve when a fault fires, from the trace's typed
//! `view` events, and the trace records the node each one chose.

use migsim::runner::{run_seed, RunOptions, Verdict};
use migsim::trace::{EventKind, TraceLevel};

const STEADY: &str = include_str!("../scenarios/store-steady.toml");

/// `store-steady` with `faults` added.
fn run(faults: &str, seed: u64) -> migsim::runner::SeedOutcome {
    let text = format!("{STEADY}\n{faults}");
    let scenario =
        migsim::scenario::parse("store-steady (with faults)", &text).unwrap_or_else(|error| panic!("{error}"));
    run_seed(&scenario.plan(), seed, RunOptions { trace: TraceLevel::Full, check_determinism: false })
}

/// The node a `node_crash` fault's detail names (`NodeCrash { node: 3 }`).
fn crashed_node(detail: &str) -> u32 {
    let digits: String = detail.chars().filter(char::is_ascii_digit).collect();
    digits.parse().unwrap_or_else(|_| panic!("no node in {detail}"))
}

#[test]
fn a_crash_aimed_at_the_primary_hits_whichever_node_leads_at_each_moment() {
    let mut faults = String::new();
    for at in ["300ms", "800ms", "1300ms"] {
        faults.push_str(&format!(
            "[[faults]]\nfault = \"node_crash\"\nat = \"{at}\"\nduration = \"250ms\"\nnode = \"primary\"\ngroup = 0\n"
        ));
    }
    let mut hit = std::collections::BTreeSet::new();
    for seed in 0..3 {
        let outcome = run(&faults, seed);
        assert_eq!(outcome.verdict, Verdict::Pass, "seed {seed}");
        let mut primary = None;
        let mut injected = 0;
        for event in &outcome.events {
            match &event.kind {
                EventKind::View { group: 0, primary: node, .. } => primary = Some(*node),
                EventKind::FaultInject { entry: Some(_), detail, selector, .. } => {
                    assert_eq!(selector, "nodes = primary of group 0");
                    let node = crashed_node(detail);
                    assert_eq!(
                        Some(node),
                        primary,
                        "seed {seed}: crashed n{node} at {}, but the last view named {primary:?}",
                        event.at_us
                    );
                    hit.insert(node);
                    injected += 1;
                }
                _ => {}
            }
        }
        assert_eq!(injected, 3, "seed {seed}: every crash found a primary");
    }
    assert!(hit.len() >= 2, "three crashes of the primary kept hitting {hit:?}: the role never moved");
}

#[test]
fn a_fault_aimed_at_a_role_nobody_plays_is_recorded_as_skipped() {
    // At 1 us no election has been recorded yet.
    let outcome = run("[[faults]]\nfault = \"node_crash\"\nat = \"1us\"\nnode = \"primary\"\ngroup = 1\n", 0);
    let skipped: Vec<&EventKind> = outcome
        .events
        .iter()
        .map(|event| &event.kind)
        .filter(|kind| matches!(kind, EventKind::FaultSkip { .. }))
        .collect();
    assert!(
        matches!(skipped[..], [EventKind::FaultSkip { entry: 0, reason, .. }] if reason == "group 1 has had no primary yet"),
        "{skipped:?}"
    );
    assert_eq!(outcome.verdict, Verdict::Pass);
}

#[test]
fn a_power_loss_is_one_entry() {
    let outcome = run("[[faults]]\nfault = \"node_restart\"\nat = \"1s\"\nnodes = \"storage\"\n", 2);
    let restarted = outcome
        .events
        .iter()
        .filter(|event| matches!(&event.kind, EventKind::FaultInject { entry: Some(0), selector, .. } if selector == "nodes = storage"))
        .count();
    assert_eq!(restarted, 5, "one restart per storage node");
    assert_eq!(outcome.verdict, Verdict::Pass);
}
