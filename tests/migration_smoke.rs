//! Temporary: one migration on store-steady, before scenario files can declare one.

use migsim::runner::{run_seed, RunOptions, SystemPlan};
use migsim::sut::store::migration::{Expectation, MigrationSpec};
use migsim::trace::{EventKind, TraceLevel};

#[test]
fn one_partition_moves() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/store-steady.toml");
    let mut plan = migsim::scenario::load(&path).unwrap().plan();
    let SystemPlan::Store(store) = &mut plan.system else { panic!() };
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
    for seed in 0..20 {
        let outcome = run_seed(&plan, seed, RunOptions::default());
        let ends: Vec<String> = outcome
            .events
            .iter()
            .filter_map(|event| match &event.kind {
                EventKind::MigrationEnd { outcome, .. } => Some(format!("{outcome} at {}", event.at_us)),
                _ => None,
            })
            .collect();
        let held = outcome.events.iter().filter(|event| matches!(event.kind, EventKind::WriteHeld { .. })).count();
        println!("seed {seed}: {:?} {ends:?} held {held}", outcome.verdict);
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
            | EventKind::Panic { .. } => true,
            EventKind::Note { text } => text.contains("group 3") || text.contains("group 0"),
            EventKind::MessageSend { .. } => {
                event.summary.starts_with("stream")
                    || event.summary.starts_with("source")
                    || event.summary.starts_with("freeze")
                    || event.summary.starts_with("release")
                    || event.summary.starts_with("target")
            }
            EventKind::WriteHeld { .. } | EventKind::WriteReleased { .. } | EventKind::WriteRefused { .. } => true,
            _ => false,
        };
        if show {
            out.push_str(&event.describe());
            out.push('\n');
        }
    }
    std::fs::write("/tmp/scratch/smoke.txt", out).unwrap();
    println!("verdict {:?}", outcome.verdict);
}
