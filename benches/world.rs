//! World throughput: simulated messages per wall second (trace hashing on), madsim's own
//! `Endpoint` as a baseline measured in the same run, and seeds per second for the shipped
//! world-only scenario. Results are written up in results/world.md.
//!
//! `cargo bench --bench world`

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use migsim::runner::{in_fresh_runtime, run_seed, RunOptions, RunPlan, SystemPlan};
use migsim::sut::ping::PingConfig;
use migsim::world::{LatencyRange, NetworkConfig};

/// Eight nodes pinging as fast as the model allows for 200 ms of model time, no faults.
fn throughput_plan() -> RunPlan {
    RunPlan {
        name: "throughput".into(),
        system: SystemPlan::Ping(PingConfig { interval_us: 10, payload_bytes: 64 }),
        nodes: 8,
        network: NetworkConfig { latency: LatencyRange { min_us: 50, max_us: 500 }, ..NetworkConfig::default() },
        disk: migsim::world::DiskConfig::default(),
        disks_per_node: 2,
        clock_skew_max_us: 0,
        clock_drift_ppm_max: 0,
        faults: vec![],
        duration_us: 200_000,
        heal_us: 1_000,
        checkers: vec![migsim::checker::registry::find("ping_liveness").expect("a registered checker")],
    }
}

/// madsim alone: two nodes ping-pong `count` messages through `Endpoint`.
fn madsim_endpoint_round_trips(count: u64) {
    in_fresh_runtime(7, move || async move {
        let handle = madsim::runtime::Handle::current();
        let server = handle.create_node().name("server").ip("10.0.0.1".parse().unwrap()).build();
        let client = handle.create_node().name("client").ip("10.0.0.2".parse().unwrap()).build();
        server.spawn(async move {
            let endpoint = madsim::net::Endpoint::bind("10.0.0.1:1").await.unwrap();
            let mut buffer = [0u8; 64];
            loop {
                let (_, from) = endpoint.recv_from(1, &mut buffer).await.unwrap();
                endpoint.send_to(from, 2, &buffer).await.unwrap();
            }
        });
        let done = client.spawn(async move {
            let endpoint = madsim::net::Endpoint::bind("10.0.0.2:1").await.unwrap();
            let mut buffer = [0u8; 64];
            for _ in 0..count / 2 {
                endpoint.send_to("10.0.0.1:1", 1, &buffer).await.unwrap();
                endpoint.recv_from(2, &mut buffer).await.unwrap();
            }
        });
        done.await.unwrap();
    })
    .unwrap();
}

fn world(criterion: &mut Criterion) {
    let plan = throughput_plan();
    let probe = run_seed(&plan, 1, RunOptions::default());
    let messages = probe.network.delivered;
    let mut group = criterion.benchmark_group("world");
    group.sample_size(10).measurement_time(Duration::from_secs(6)).warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(messages));
    group.bench_function("migsim_messages", |bencher| bencher.iter(|| run_seed(&plan, 1, RunOptions::default())));
    group.throughput(Throughput::Elements(100_000));
    group.bench_function("madsim_endpoint_messages", |bencher| bencher.iter(|| madsim_endpoint_round_trips(100_000)));
    group.finish();

    let scenario =
        migsim::scenario::load(std::path::Path::new("scenarios/ping-faults.toml")).expect("the shipped scenario loads");
    let plan = scenario.plan();
    let mut group = criterion.benchmark_group("scenario");
    group.sample_size(10).measurement_time(Duration::from_secs(6)).warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(20));
    group.bench_function("ping_faults_seeds", |bencher| {
        bencher.iter(|| {
            for seed in 0..20 {
                run_seed(&plan, seed, RunOptions::default());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, world);
criterion_main!(benches);
