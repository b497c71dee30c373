//! The seed runner: runs one (scenario, seed) on a fresh OS thread with a fresh madsim runtime,
//! and a range of seeds on every core. It owns the boundary between the simulation (single
//! threaded, deterministic) and the host (threads, wall clock, progress bars): nothing it does on
//! the host side may feed back into a simulation.
//!
//! `host` runs seeds and turns panics into verdicts; `simulation` sequences one run's phases
//! inside the runtime (world, system, fault engine, heal, liveness); `system` is the wiring, the
//! one place that names each system's programs. This file holds the plan and verdict types.

mod host;
mod simulation;
mod system;

pub use host::{in_fresh_runtime, panic_message, run_seed, run_seeds, PanicReport};

use std::time::Duration;

use serde::Serialize;

use crate::nemesis::FaultSpec;
use crate::sut::ping::PingConfig;
use crate::trace::{Event, TraceLevel};
use crate::world::disk::DiskStats;
use crate::world::{DiskConfig, NetworkConfig, NetworkStats};

/// Which system runs on the world.
#[derive(Clone, Debug, PartialEq)]
pub enum SystemPlan {
    Ping(PingConfig),
    Store(StorePlan),
}

/// The store system: its shape, timers, planted bugs and migrations (`store`), and its clients.
#[derive(Clone, Debug, PartialEq)]
pub struct StorePlan {
    pub store: crate::sut::store::StoreConfig,
    pub workload: crate::workload::WorkloadConfig,
}

/// Everything one run needs, resolved from a scenario: the runner never reads scenario files.
#[derive(Clone, Debug, PartialEq)]
pub struct RunPlan {
    pub name: String,
    pub system: SystemPlan,
    pub nodes: u32,
    pub network: NetworkConfig,
    pub disk: DiskConfig,
    pub disks_per_node: u32,
    /// Each node's clock gets a skew drawn in `-max..=max` and a drift likewise, per seed; this is
    /// the baseline clock model, not a fault, so healing leaves it in place.
    pub clock_skew_max_us: u64,
    pub clock_drift_ppm_max: u64,
    /// The scenario's `[[faults]]`, for the fault engine.
    pub faults: Vec<FaultSpec>,
    pub duration_us: u64,
    pub heal_us: u64,
    pub checkers: Vec<&'static crate::checker::Checker>,
}

pub use crate::checker::{Judgement, MigrationReport, Violation};

/// The verdict on one seed. Exit codes follow from it: 0 pass, 1 fail, 3 inconclusive, 4
/// nondeterministic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail { violations: Vec<Violation> },
    Inconclusive { reasons: Vec<String> },
    Nondeterministic { first_hash: String, second_hash: String },
}

impl Verdict {
    pub fn exit_code(&self) -> i32 {
        match self {
            Verdict::Pass => 0,
            Verdict::Fail { .. } => 1,
            Verdict::Inconclusive { .. } => 3,
            Verdict::Nondeterministic { .. } => 4,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail { .. } => "fail",
            Verdict::Inconclusive { .. } => "inconclusive",
            Verdict::Nondeterministic { .. } => "nondeterministic",
        }
    }
}

/// How to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunOptions {
    pub trace: TraceLevel,
    /// Run every seed twice and compare trace hashes.
    pub check_determinism: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { trace: TraceLevel::History, check_determinism: false }
    }
}

/// What one seed produced.
#[derive(Clone, Debug)]
pub struct SeedOutcome {
    pub seed: u64,
    pub trace_hash: u64,
    pub verdict: Verdict,
    pub events_recorded: u64,
    pub network: NetworkStats,
    /// Every disk's counters at the end of the run, by node then disk.
    pub disks: Vec<Vec<DiskStats>>,
    pub end_us: u64,
    pub wall: Duration,
    /// The kept events: history-level, or every event under `TraceLevel::Full`.
    pub events: Vec<Event>,
    /// Each migrating partition's outcome, phases and pauses, computed before the events may be
    /// dropped.
    pub migrations: Vec<MigrationReport>,
    /// Each cluster operation's moves done of planned, attempts, aborts and time to finish.
    pub operations: Vec<crate::checker::OperationReport>,
}

/// What checkers and the migration report may know about a run besides its events.
pub fn run_facts(plan: &RunPlan) -> crate::checker::RunFacts {
    let migrations = match &plan.system {
        SystemPlan::Store(store) => store
            .store
            .migrations
            .iter()
            .map(|spec| crate::checker::MigrationFacts {
                name: spec.name.clone(),
                partitions: spec.partitions.clone(),
                pause_budget_us: spec.pause_budget_us,
                expect_aborted: match spec.expect {
                    crate::sut::store::migration::Expectation::Done
                    | crate::sut::store::migration::Expectation::DoneOrCancelled => None,
                    crate::sut::store::migration::Expectation::Aborted(reason) => Some(reason),
                },
                cancellable: spec.expect == crate::sut::store::migration::Expectation::DoneOrCancelled,
            })
            .collect(),
        SystemPlan::Ping(_) => Vec::new(),
    };
    crate::checker::RunFacts { nodes: plan.nodes, migrations, end_us: plan.duration_us + plan.heal_us }
}

/// The migration report of a run's kept events.
pub fn migration_reports(plan: &RunPlan, events: &[Event]) -> Vec<MigrationReport> {
    crate::checker::migration_reports(&run_facts(plan), events)
}

/// Each cluster operation of a run (see `checker::operation_reports`).
pub fn operation_reports(plan: &RunPlan, events: &[Event]) -> Vec<crate::checker::OperationReport> {
    crate::checker::operation_reports(&run_facts(plan), events)
}

/// The checkers a plan asks for, over the kept events, in the registry's order of the plan's list.
pub fn check(plan: &RunPlan, events: &[Event]) -> Judgement {
    let facts = run_facts(plan);
    let mut judgement = Judgement::default();
    for checker in &plan.checkers {
        judgement.merge((checker.check)(&facts, events));
    }
    judgement
}
