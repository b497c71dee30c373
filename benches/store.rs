//! The store under its steady-state scenario: wall time per seed (criterion), and what the
//! simulated clients saw over 40 seeds: operations per simulated second, outcomes, latency
//! percentiles in model time (HDR histograms), messages per seed. Results are written up in
//! results/store.md.
//!
//! `cargo bench --bench store`

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hdrhistogram::Histogram;
use migsim::runner::{run_seed, RunOptions, SystemPlan, Verdict};
use migsim::trace::{EventKind, OpFunction, Outcome};

const SCENARIO: &str = "scenarios/store-steady.toml";
const SEEDS: u64 = 40;

/// What the clients saw over many seeds.
#[derive(Default)]
struct Observed {
    ok: u64,
    fail: u64,
    info: u64,
    /// Ok operations completed during the safety phase (no faults here: all of it is steady).
    ok_in_safety_phase: u64,
    messages: u64,
    wall: Duration,
    latency: Vec<(OpFunction, Histogram<u64>)>,
}

fn observe() -> Observed {
    let scenario = migsim::scenario::load(std::path::Path::new(SCENARIO)).expect("the shipped scenario loads");
    let plan = scenario.plan();
    let SystemPlan::Store(store) = &plan.system else { panic!("{SCENARIO} is a store scenario") };
    let offered = store.workload.workload.rate;
    let mut observed = Observed {
        latency: [OpFunction::Get, OpFunction::Put, OpFunction::Cas, OpFunction::Append]
            .into_iter()
            .map(|function| (function, Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")))
            .collect(),
        ..Observed::default()
    };
    for seed in 0..SEEDS {
        let started = Instant::now();
        let outcome = run_seed(&plan, seed, RunOptions::default());
        observed.wall += started.elapsed();
        assert_eq!(outcome.verdict, Verdict::Pass, "{SCENARIO} seed {seed}");
        observed.messages += outcome.network.delivered;
        let mut called = std::collections::BTreeMap::new();
        for event in &outcome.events {
            match &event.kind {
                EventKind::OpInvoke { op, .. } => {
                    called.insert(*op, event.at_us);
                }
                EventKind::OpComplete { op, f, outcome, .. } => match outcome {
                    Outcome::Ok => {
                        observed.ok += 1;
                        if event.at_us < plan.duration_us {
                            observed.ok_in_safety_phase += 1;
                        }
                        let latency = event.at_us - called[op];
                        let histogram =
                            &mut observed.latency.iter_mut().find(|(function, _)| function == f).expect("a function").1;
                        histogram.record(latency.max(1)).expect("latency within the histogram's bounds");
                    }
                    Outcome::Fail => observed.fail += 1,
                    Outcome::Info => observed.info += 1,
                },
                _ => {}
            }
        }
    }
    let seconds = plan.duration_us as f64 / 1e6 * SEEDS as f64;
    println!();
    println!("{SCENARIO}, {SEEDS} seeds (offered {offered} ops per simulated second):");
    println!("| measure | value |");
    println!("| --- | --- |");
    println!(
        "| ok operations per simulated second (safety phase) | {:.0} |",
        observed.ok_in_safety_phase as f64 / seconds
    );
    println!("| outcomes over all seeds: ok / fail / info | {} / {} / {} |", observed.ok, observed.fail, observed.info);
    println!("| messages delivered per seed | {} |", observed.messages / SEEDS);
    println!(
        "| wall per seed, one core, checkers excluded | {:.1} ms |",
        observed.wall.as_secs_f64() * 1e3 / SEEDS as f64
    );
    for (function, histogram) in &observed.latency {
        println!(
            "| {} latency p50 / p99 / max (model time) | {} / {} / {} |",
            match function {
                OpFunction::Get => "get",
                OpFunction::Put => "put",
                OpFunction::Cas => "cas",
                OpFunction::Append => "append",
            },
            migsim::units::format_us(histogram.value_at_quantile(0.5)),
            migsim::units::format_us(histogram.value_at_quantile(0.99)),
            migsim::units::format_us(histogram.max()),
        );
    }
    println!();
    observed
}

fn store(criterion: &mut Criterion) {
    observe();
    let scenario = migsim::scenario::load(std::path::Path::new(SCENARIO)).expect("the shipped scenario loads");
    let plan = scenario.plan();
    let mut group = criterion.benchmark_group("store");
    group.sample_size(10).measurement_time(Duration::from_secs(8)).warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(4));
    // Simulation and checkers, as `migsim run` does per seed.
    group.bench_function("steady_seeds", |bencher| {
        bencher.iter(|| {
            for seed in 0..4 {
                run_seed(&plan, seed, RunOptions::default());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, store);
criterion_main!(benches);
