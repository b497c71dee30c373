//! Planted bugs, caught: each `--bug` breaks the store or its migration protocol on purpose, and
//! the checkers must catch it within a stated number of seeds of a shipped scenario, by the checker
//! that should, while the honest store passes the very seed that caught it. Without this, a passing
//! checker proves nothing. A named assertion firing is the `panic` verdict: the most precise report
//! there is, naming the invariant the bug broke. `results/bugs.md` has the counts over 1,000 seeds.

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

// The migration protocol's planted bugs (issue 9): each within 200 seeds of the scenario that
// shows it; the bounds below are what the seeds caught, with a margin.

#[test]
fn no_source_fence_lets_a_write_commit_at_the_source_after_the_final_lsn() {
    // The write logged between F and the handoff stalls the drain: the handoff cannot follow F.
    assert_caught("migration-basic.toml", Bug::NoSourceFence, 10, "migration_liveness");
}

#[test]
fn final_lsn_before_fence_leaves_the_target_short_of_the_source() {
    // Writes between the early F and the fence never reach the target; the digest check at the
    // handoff refuses the copy, so every attempt ends over budget.
    assert_caught("migration-basic.toml", Bug::FinalLsnBeforeFence, 20, "migration_liveness");
}

#[test]
fn cleanup_before_commit_empties_the_source_an_abort_then_returns_to() {
    assert_caught("migration-partition-target.toml", Bug::CleanupBeforeCommit, 10, "panic");
}

#[test]
fn unbounded_hold_holds_a_cut_off_gateway_s_writes_past_the_budget() {
    assert_caught("migration-gateway-cut-off.toml", Bug::UnboundedHold, 10, "pause_budget");
}

#[test]
fn abort_pause_not_counted_pauses_a_write_afresh_in_the_retried_cut_over() {
    assert_caught("migration-gateway-cut-off-retry.toml", Bug::AbortPauseNotCounted, 20, "pause_budget");
}

#[test]
fn catchup_ignores_incarnation_hands_over_a_copy_with_a_gap() {
    assert_caught("migration-target-cut-off-replaced.toml", Bug::CatchupIgnoresIncarnation, 60, "no_lost_write");
}
