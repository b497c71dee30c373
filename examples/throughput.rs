use migsim::runner::{run_seed, RunOptions, RunPlan, SystemPlan};
use migsim::sut::ping::PingConfig;
use migsim::world::{LatencyRange, NetworkConfig};
fn main() {
    let plan = RunPlan {
        name: "throughput".into(),
        system: SystemPlan::Ping(PingConfig { interval_us: 10, payload_bytes: 64 }),
        nodes: 8,
        network: NetworkConfig { latency: LatencyRange { min_us: 50, max_us: 500 }, ..NetworkConfig::default() },
        faults: vec![],
        duration_us: 200_000,
        heal_us: 1_000,
        checkers: vec![],
    };
    let started = std::time::Instant::now();
    let outcome = run_seed(&plan, 1, RunOptions::default());
    let wall = started.elapsed().as_secs_f64();
    println!("sent {} delivered {} events {} wall {:.3}s => {:.0} msgs/s", outcome.network.sent, outcome.network.delivered, outcome.events_recorded, wall, outcome.network.delivered as f64 / wall);
}
