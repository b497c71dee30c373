//! The seed runner: runs one (scenario, seed) on a fresh OS thread with a fresh madsim runtime,
//! and a range of seeds on every core. It owns the boundary between the simulation (single
//! threaded, deterministic) and the host (threads, wall clock, progress bars): nothing it does on
//! the host side may feed back into a simulation.

use std::future::Future;

/// Runs `body` inside a fresh madsim runtime seeded with `seed`, on a fresh OS thread (madsim and
/// some crates keep per-thread state that differs between runs on one thread). A panic inside the
/// simulation comes back as `Err` with its message.
pub fn in_fresh_runtime<Body, Fut, T>(seed: u64, body: Body) -> Result<T, String>
where
    Body: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let thread = std::thread::Builder::new()
        .name(format!("seed-{seed}"))
        // Deep async state machines of the system under test live on this thread's stack.
        .stack_size(64 << 20)
        .spawn(move || {
            let runtime = madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
            runtime.block_on(body())
        })
        .map_err(|error| format!("could not start a thread for seed {seed}: {error}"))?;
    thread.join().map_err(|payload| panic_message(payload.as_ref()))
}

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "panic with a non-text payload".to_string()
    }
}

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::sut::ping::{self, PingConfig, PingMessage};
use crate::sut::store::message::StoreMessage;
use crate::trace::{Event, TraceLevel};
use crate::world::clock::{now_us, sleep_us};
use crate::world::disk::DiskStats;
use crate::world::{DiskConfig, Fault, NetworkConfig, NetworkStats, Sim, WorldConfig};

/// A fault at a time, healed `duration_us` later if given (else at the end of the safety phase).
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduledFault {
    pub at_us: u64,
    pub duration_us: Option<u64>,
    pub fault: Fault,
}

/// Which system runs on the world.
#[derive(Clone, Debug, PartialEq)]
pub enum SystemPlan {
    Ping(PingConfig),
    Store(StorePlan),
}

/// The store system: its shape and timers (with any planted bugs) and its clients.
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
    pub faults: Vec<ScheduledFault>,
    pub duration_us: u64,
    pub heal_us: u64,
    pub checkers: Vec<&'static crate::checker::Checker>,
}

pub use crate::checker::{Judgement, Violation};

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
}

/// Runs one seed of a plan (twice when checking determinism).
pub fn run_seed(plan: &RunPlan, seed: u64, options: RunOptions) -> SeedOutcome {
    let first = run_once(plan, seed, options.trace);
    if !options.check_determinism {
        return first;
    }
    let second = run_once(plan, seed, options.trace);
    if first.trace_hash != second.trace_hash {
        return SeedOutcome {
            verdict: Verdict::Nondeterministic {
                first_hash: format!("{:016x}", first.trace_hash),
                second_hash: format!("{:016x}", second.trace_hash),
            },
            ..first
        };
    }
    first
}

fn run_once(plan: &RunPlan, seed: u64, trace: TraceLevel) -> SeedOutcome {
    let started = Instant::now();
    let owned = plan.clone();
    let result = in_fresh_runtime(seed, move || simulate(owned, seed, trace));
    let wall = started.elapsed();
    match result {
        Ok(record) => {
            let judgement = check(plan, &record.events);
            let verdict = if !judgement.violations.is_empty() {
                Verdict::Fail { violations: judgement.violations }
            } else if !judgement.inconclusive.is_empty() {
                Verdict::Inconclusive { reasons: judgement.inconclusive }
            } else {
                Verdict::Pass
            };
            SeedOutcome {
                seed,
                trace_hash: record.trace_hash,
                verdict,
                events_recorded: record.events_recorded,
                network: record.network,
                disks: record.disks,
                end_us: record.end_us,
                wall,
                events: record.events,
            }
        }
        Err(message) => SeedOutcome {
            seed,
            trace_hash: 0,
            verdict: Verdict::Fail {
                violations: vec![Violation {
                    checker: "panic".into(),
                    message: format!("the simulation panicked: {message}"),
                }],
            },
            events_recorded: 0,
            network: NetworkStats::default(),
            disks: Vec::new(),
            end_us: 0,
            wall,
            events: Vec::new(),
        },
    }
}

/// One run inside the runtime: build the world, start the system, play the fault schedule through
/// the safety phase, heal everything, run the liveness phase, close.
async fn simulate(plan: RunPlan, seed: u64, trace: TraceLevel) -> crate::world::WorldRecord {
    match &plan.system {
        SystemPlan::Ping(config) => {
            let config = *config;
            simulate_system::<PingMessage>(&plan, seed, trace, |sim| {
                for node in 0..plan.nodes {
                    sim.add_node(&format!("n{node}"), ping::program(config));
                }
            })
            .await
        }
        SystemPlan::Store(store) => {
            simulate_system::<StoreMessage>(&plan, seed, trace, |sim| add_store_nodes(sim, store)).await
        }
    }
}

/// Creates the store's nodes in layout order: storage nodes, the master, gateways, the clients.
fn add_store_nodes(sim: &Sim<StoreMessage>, plan: &StorePlan) {
    let layout = plan.store.layout();
    for node in 0..layout.node_count() {
        let program = if node < layout.storage_nodes {
            crate::sut::store::node::program(plan.store.clone())
        } else if node == layout.master() {
            crate::sut::store::master::program(plan.store.clone())
        } else if layout.gateway_index(node).is_some() {
            crate::sut::store::gateway::program(plan.store.clone())
        } else {
            crate::workload::client::program(plan.workload.clone(), layout, plan.store.partitions)
        };
        let id = sim.add_node(&layout.role(node), program);
        assert_eq!(id, node, "store: nodes are created in layout order");
    }
}

async fn simulate_system<M: crate::world::Message>(
    plan: &RunPlan,
    seed: u64,
    trace: TraceLevel,
    add_nodes: impl FnOnce(&Sim<M>),
) -> crate::world::WorldRecord {
    let sim: Sim<M> = Sim::new(WorldConfig {
        seed,
        network: plan.network.clone(),
        disk: plan.disk.clone(),
        disks_per_node: plan.disks_per_node,
        trace,
    });
    add_nodes(&sim);
    if plan.clock_skew_max_us > 0 || plan.clock_drift_ppm_max > 0 {
        let mut rng = crate::world::component_rng(seed, "clock", 0);
        for node in 0..plan.nodes {
            let skew = plan.clock_skew_max_us as i64;
            let drift = plan.clock_drift_ppm_max as i64;
            let clock = crate::world::clock::NodeClock {
                skew_us: rand::Rng::gen_range(&mut rng, -skew..=skew),
                drift_ppm: rand::Rng::gen_range(&mut rng, -drift..=drift),
            };
            sim.set_clock(node, clock);
        }
    }
    // Injections and timed heals, in time order; ties keep schedule order (injections first).
    let mut actions: Vec<(u64, usize, bool)> = Vec::new();
    for (index, scheduled) in plan.faults.iter().enumerate() {
        actions.push((scheduled.at_us, index, true));
        if let Some(duration) = scheduled.duration_us {
            actions.push((scheduled.at_us + duration, index, false));
        }
    }
    actions.sort_by_key(|&(at, index, inject)| (at, !inject, index));
    let mut fault_ids = vec![None; plan.faults.len()];
    for (at, index, inject) in actions {
        if at >= plan.duration_us {
            break;
        }
        sleep_us(at.saturating_sub(now_us())).await;
        if inject {
            fault_ids[index] = Some(sim.inject(plan.faults[index].fault.clone()));
        } else if let Some(id) = fault_ids[index] {
            sim.heal(id);
        }
    }
    sleep_us(plan.duration_us.saturating_sub(now_us())).await;
    sim.heal_all();
    sleep_us(plan.heal_us).await;
    sim.finish()
}

/// The checkers a plan asks for, over the kept events, in the registry's order of the plan's list.
pub fn check(plan: &RunPlan, events: &[Event]) -> Judgement {
    let facts = crate::checker::RunFacts { nodes: plan.nodes };
    let mut judgement = Judgement::default();
    for checker in &plan.checkers {
        judgement.merge((checker.check)(&facts, events));
    }
    judgement
}

/// Runs every seed in `seeds` on `jobs` host threads (each seed on its own fresh thread), calling
/// `progress` after each. Results come back ordered by seed, whatever the thread timing.
pub fn run_seeds(
    plan: &RunPlan,
    seeds: std::ops::Range<u64>,
    jobs: usize,
    options: RunOptions,
    progress: &(dyn Fn(&SeedOutcome) + Sync),
) -> Vec<SeedOutcome> {
    let next = AtomicU64::new(seeds.start);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= seeds.end {
                    break;
                }
                let mut outcome = run_seed(plan, seed, options);
                progress(&outcome);
                if options.trace == TraceLevel::History && outcome.verdict == Verdict::Pass {
                    // A passing seed's events are not needed after checking; keep memory flat.
                    outcome.events = Vec::new();
                }
                results.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(outcome);
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
    results.sort_by_key(|outcome| outcome.seed);
    results
}
