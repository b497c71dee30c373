//! Temporary: one migration on store-steady, with the faults in $FAULTS (a TOML fragment),
//! before scenario files can declare migrations.

use migsim::runner::{run_seed, RunOptions, SystemPlan};
use migsim::sut::store::migration::{Expectation, MigrationSpec};
use migsim::trace::{EventKind, TraceLevel};

#[test]
fn one_partition_moves() {
    let steady = include_str!("../scenarios/store-steady.toml");
    let faults = std::env::var("FAULTS").ok().map(|path| std::fs::read_to_string(path).unwrap()).unwrap_or_default();
    let text = format!("{steady}\n{faults}");
    let mut plan = migsim::scenario::parse("smoke", &text).unwrap_or_else(|error| panic!("{error}")).plan();
    plan.checkers = migsim::checker::registry::for_system(migsim::vocabulary::SystemKind::Store);
    let SystemPlan::Store(store) = &mut plan.system else { panic!() };
    if let Ok(bugs) = std::env::var("BUGS") {
        store.store.bugs = migsim::cli::parse_bugs(&bugs.split(',').map(str::to_string).collect::<Vec<_>>()).unwrap();
    }
    store.store.migrations.push(MigrationSpec {
        id: 0,
        name: "move-7".into(),
        at_us: 500_000,
        partitions: vec![7],
        to: 0,
        pause_budget_us: 50_000,
        lag_threshold: 64,
        max_attempts: 3,
        attempt_timeout_us: 1_000_000,
        expect: Expectation::Done,
    });
    let seeds: u64 = std::env::var("SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    for seed in 0..seeds {
        let outcome = run_seed(&plan, seed, RunOptions::default());
        let ends: Vec<String> = outcome
            .events
            .iter()
            .filter_map(|event| match &event.kind {
                EventKind::MigrationEnd { outcome, attempts, reason, .. } => {
                    Some(format!("{outcome} after {attempts} {reason:?} at {}", event.at_us))
                }
                _ => None,
            })
            .collect();
        let held = outcome.events.iter().filter(|event| matches!(event.kind, EventKind::WriteHeld { .. })).count();
        let verdict = format!("{:?}", outcome.verdict);
        println!("seed {seed}: {} {ends:?} held {held}", &verdict[..verdict.len().min(1500)]);
    }
    let seed: u64 = std::env::var("SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let outcome = run_seed(&plan, seed, RunOptions { trace: TraceLevel::Full, check_determinism: false });
    let mut out = String::new();
    for event in &outcome.events {
        let show = match &event.kind {
            EventKind::Phase { .. }
            | EventKind::MigrationPlan { .. }
            | EventKind::MigrationEnd { .. }
            | EventKind::PartitionState { partition: 7, .. }
            | EventKind::Panic { .. }
            | EventKind::FaultInject { .. }
            | EventKind::FaultHeal { .. }
            | EventKind::NodeStart
            | EventKind::NodeCrash
            | EventKind::View { .. } => true,
            EventKind::Note { text } => text.contains("group 3") || text.contains("group 0"),
            EventKind::MessageSend { .. } => ["stream", "source", "freeze", "release", "target"]
                .iter()
                .any(|prefix| event.summary.starts_with(prefix)),
            EventKind::WriteHeld { .. } | EventKind::WriteReleased { .. } | EventKind::WriteRefused { .. } => true,
            _ => false,
        };
        if show {
            out.push_str(&event.describe());
            out.push('\n');
        }
    }
    std::fs::write("/tmp/scratch/smoke.txt", out).unwrap();
    let all: String = outcome.events.iter().map(|event| event.describe() + "\n").collect();
    std::fs::write("/tmp/scratch/full.txt", all).unwrap();
    println!("verdict {:?}", outcome.verdict);
}
