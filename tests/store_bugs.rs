//! Planted bugs, caught: each `--bug` breaks the store on purpose, and the checkers must catch it
//! within a stated number of seeds of a shipped scenario, by the checker that should, while the
//! honest store passes the very seed that caught it. Without this, a passing checker proves
//! nothing.

use std::path::Path;

use migsim::runner::{run_seed, RunOptions, RunPlan, SystemPlan, Verdict};
use migsim::sut::store::Bug;

fn plan(scenario: &str, bug: Option<Bug>) -> RunPlan {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios").join(scenario);
    let mut plan = migsim::scenario::load(&path).unwrap_or_else(|error| panic!("{error}")).plan();
    let SystemPlan::Store(store) = &mut plan.system else { panic!("{scenario} is not a store scenario") };
    store.store.bugs.0.extend(bug);
    plan
}

/// The first seed below `within` on which `bug` fails the run, and the checkers that failed it.
fn first_catch(scenario: &str, bug: Bug, within: u64) -> (u64, Vec<String>) {
    let buggy = plan(scenario, Some(bug));
    for seed in 0..within {
        if let Verdict::Fail { violations } = run_seed(&buggy, seed, RunOptions::default()).verdict {
            let checkers = violations.into_iter().map(|violation| violation.checker).collect();
            return (seed, checkers);
        }
    }
    panic!("{bug} went uncaught on {scenario} for {within} seeds");
}

fn assert_caught(scenario: &str, bug: Bug, within: u64, checker: &str) {
    let (seed, checkers) = first_catch(scenario, bug, within);
    assert!(
        checkers.iter().any(|name| name == checker),
        "{bug} on {scenario} seed {seed} was caught by {checkers:?}, not {checker}"
    );
    let honest = run_seed(&plan(scenario, None), seed, RunOptions::default());
    assert_eq!(honest.verdict, Verdict::Pass, "the honest store fails {scenario} seed {seed}");
}

#[test]
fn ack_before_fsync_loses_acknowledged_writes_at_a_power_loss() {
    assert_caught("store-power-loss.toml", Bug::AckBeforeFsync, 10, "linearizable");
}

#[test]
fn stale_local_read_serves_reads_a_lagging_backup_got_wrong() {
    assert_caught("store-steady.toml", Bug::StaleLocalRead, 3, "linearizable");
}

#[test]
fn skip_dedup_applies_a_retried_write_twice() {
    assert_caught("store-mixed-faults.toml", Bug::SkipDedup, 3, "linearizable");
}

#[test]
fn fail_without_cancel_reports_failed_a_write_a_duplicated_forward_applies() {
    assert_caught("store-duplicated-forwards.toml", Bug::FailWithoutCancel, 5, "linearizable");
}
