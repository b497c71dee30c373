//! The fault engine in a run: role selectors resolve when a fault fires, from the trace's typed
//! `view` and `migration_plan` events, and the trace records the node each one chose; a fault that
//! never fires is recorded as skipped, with why.

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

/// A migration the master plans 100us before the safety phase (2s) ends: no migration can reach
/// `done` that fast (its plan alone waits for an fsync of at least 500us), so a fault waiting for
/// it never fires, with or without the protocol.
const LATE_MIGRATION: &str =
    "[[migrations]]\nname = \"move-7\"\nat = \"1999900us\"\npartitions = [7]\nto = 0\npause_budget = \"50ms\"\n";

#[test]
fn a_phase_trigger_that_never_fires_is_recorded_once_as_skipped_before_the_heal() {
    let faults = format!(
        "{LATE_MIGRATION}[[faults]]\nfault = \"node_crash\"\nnode = \"source_primary\"\nwhen = {{ migration = \"move-7\", phase = \"done\", after = \"1ms\" }}\n"
    );
    let outcome = run(&faults, 1);
    let mut skipped = Vec::new();
    let mut heal_all_at = None;
    for event in &outcome.events {
        match &event.kind {
            EventKind::FaultSkip { entry, selector, reason, .. } => {
                assert!(heal_all_at.is_none(), "the skip is recorded before the heal phase starts");
                skipped.push((event.at_us, *entry, selector.clone(), reason.clone()));
            }
            EventKind::FaultInject { entry: Some(_), .. } => panic!("the fault fired: {event:?}"),
            EventKind::HealAll => heal_all_at = Some(event.at_us),
            _ => {}
        }
    }
    assert_eq!(
        skipped,
        vec![(
            2_000_000,
            0,
            "nodes = primary of the source of move-7".to_string(),
            "never triggered: migration move-7 never reached done".to_string()
        )]
    );
    assert_eq!(heal_all_at, Some(2_000_000));
    assert_eq!(outcome.verdict, Verdict::Pass);
}

#[test]
fn a_migration_role_before_its_migration_is_planned_is_recorded_as_skipped() {
    let faults = format!(
        "{LATE_MIGRATION}[[faults]]\nfault = \"node_pause\"\nat = \"500ms\"\nduration = \"10ms\"\nmigration = \"move-7\"\nnode = \"target_primary\"\n"
    );
    let outcome = run(&faults, 0);
    let skipped: Vec<(u64, &EventKind)> = outcome
        .events
        .iter()
        .filter(|event| matches!(event.kind, EventKind::FaultSkip { .. }))
        .map(|event| (event.at_us, &event.kind))
        .collect();
    assert!(
        matches!(
            &skipped[..],
            [(500_000, EventKind::FaultSkip { entry: 0, selector, reason, .. })]
                if selector == "nodes = primary of the target of move-7"
                    && reason == "migration move-7 has not been planned yet"
        ),
        "{skipped:?}"
    );
    assert_eq!(outcome.verdict, Verdict::Pass);
}
