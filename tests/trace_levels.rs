//! A run is the same run at every trace level: `run` (history trace) and `repro` (full trace) of
//! one seed must record the same events and so give the same hash, or a replay would not be one.
//! Checked on every shipped scenario, so a program that records something only when the trace
//! keeps everything is caught wherever it runs.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use migsim::runner::{run_seed, RunOptions, RunPlan, SeedOutcome};
use migsim::trace::{Event, TraceLevel};

const SEEDS: [u64; 2] = [0, 1];

fn shipped_scenarios() -> Vec<PathBuf> {
    let directory = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&directory)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", directory.display()))
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "toml"))
        .collect();
    paths.sort();
    paths
}

fn run(plan: &RunPlan, seed: u64, trace: TraceLevel) -> SeedOutcome {
    run_seed(plan, seed, RunOptions { trace, check_determinism: false })
}

/// Runs one seed of one scenario at both trace levels; `Err` says how the two runs differ.
fn compare_levels(path: &Path, plan: &RunPlan, seed: u64) -> Result<(), String> {
    let history = run(plan, seed, TraceLevel::History);
    let full = run(plan, seed, TraceLevel::Full);
    let name = format!("{} seed {seed}", path.display());
    // A panicked run has hash 0 at both levels, which would prove nothing.
    assert!(history.events_recorded > 0 && full.events_recorded > 0, "{name}: the run recorded nothing");
    assert_eq!(full.events.len() as u64, full.events_recorded, "{name}: a full trace dropped events");
    let kept_at_history: Vec<&Event> = full.events.iter().filter(|event| event.kind.is_history()).collect();
    let same = history.trace_hash == full.trace_hash
        && history.events_recorded == full.events_recorded
        && history.events.iter().collect::<Vec<&Event>>() == kept_at_history
        && history.verdict == full.verdict;
    if same {
        return Ok(());
    }
    Err(format!(
        "{name}: history trace {:016x} ({} events, {}), full trace {:016x} ({} events, {})",
        history.trace_hash,
        history.events_recorded,
        history.verdict.name(),
        full.trace_hash,
        full.events_recorded,
        full.verdict.name(),
    ))
}

#[test]
fn every_shipped_scenario_hashes_the_same_at_every_trace_level() {
    let scenarios = shipped_scenarios();
    assert!(scenarios.len() >= 10, "expected the shipped scenarios, found {scenarios:?}");
    let mut jobs = Vec::new();
    for path in &scenarios {
        let scenario = migsim::scenario::load(path).unwrap_or_else(|error| panic!("{error}"));
        let plan = scenario.plan();
        for seed in SEEDS {
            jobs.push((path.clone(), plan.clone(), seed));
        }
    }
    // Seeds are independent runs, each on its own thread and runtime, so they may share the host's
    // cores; the comparison does not depend on which finishes first.
    let next = AtomicUsize::new(0);
    let differences = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(1, |count| count.get()).min(4);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some((path, plan, seed)) = jobs.get(index) else { return };
                if let Err(difference) = compare_levels(path, plan, *seed) {
                    differences.lock().unwrap().push((index, difference));
                }
            });
        }
    });
    let mut differences = differences.into_inner().unwrap();
    differences.sort();
    let lines: Vec<String> = differences.into_iter().map(|(_, difference)| difference).collect();
    assert!(lines.is_empty(), "runs differ by trace level:\n{}", lines.join("\n"));
}
