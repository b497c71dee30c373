//! The store's clock on a node of the world: its timers read the node's skewed, drifting local
//! time, which never runs backwards, and whose shortest sleep always lets true time pass.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use migsim::runner::in_fresh_runtime;
use migsim::sut::store::local_clock::LocalClock;
use migsim::world::clock::{sleep_us, NodeClock};
use migsim::world::{Fault, Message, NetworkConfig, NodeContext, Program, Sim, WorldConfig};

#[derive(Clone, Debug)]
struct Nothing;

impl Message for Nothing {
    fn size_bytes(&self) -> u32 {
        0
    }
}

/// Runs `body` as node 0's program with `clock` as its baseline, for `run_us` of true time, while
/// `operator` acts on the world; returns what `body` recorded.
fn on_a_node(
    clock: NodeClock,
    run_us: u64,
    body: fn(NodeContext<Nothing>, Arc<Mutex<Vec<i64>>>) -> Pin<Box<dyn Future<Output = ()>>>,
    operator: fn(&Sim<Nothing>) -> Option<Fault>,
) -> Vec<i64> {
    let readings = Arc::new(Mutex::new(Vec::new()));
    let shared = readings.clone();
    in_fresh_runtime(7, move || async move {
        let sim: Sim<Nothing> = Sim::new(WorldConfig::new(7, NetworkConfig::default()));
        let program: Program<Nothing> = Arc::new(move |context: NodeContext<Nothing>| body(context, shared.clone()));
        sim.add_node("n0", program);
        sim.set_clock(0, clock);
        sleep_us(1_000).await;
        if let Some(fault) = operator(&sim) {
            sim.inject(fault);
        }
        sleep_us(run_us).await;
        sim.finish();
    })
    .unwrap();
    let readings = readings.lock().unwrap().clone();
    readings
}

#[test]
fn the_shortest_store_sleep_lets_true_time_pass_on_a_clock_twice_as_fast() {
    // A sleep of one local microsecond on a clock 999,999 ppm fast is half a true microsecond,
    // which the world rounds to none: a timer loop would spin without time passing.
    let readings = on_a_node(
        NodeClock { skew_us: 0, drift_ppm: 999_999 },
        5_000,
        |context, shared| {
            Box::pin(async move {
                let clock = LocalClock::default();
                let before = context.now_us();
                for _ in 0..100 {
                    clock.sleep_us(&context, 1).await;
                }
                shared.lock().unwrap().push((context.now_us() - before) as i64);
            })
        },
        |_| None,
    );
    assert!(readings[0] >= 100, "100 of the store's shortest sleeps took {} true microseconds", readings[0]);
}

#[test]
fn the_store_clock_holds_still_through_a_step_back_then_runs_again() {
    let readings = on_a_node(
        NodeClock::default(),
        30_000,
        |context, shared| {
            Box::pin(async move {
                let clock = LocalClock::default();
                for _ in 0..6 {
                    shared.lock().unwrap().push(clock.now_us(&context) as i64);
                    sleep_us(4_000).await;
                }
            })
        },
        // At 1ms of true time the node's clock steps 10ms back.
        |_| Some(Fault::ClockSkew { node: 0, skew_us: -10_000, drift_ppm: 0 }),
    );
    // Readings at true 0, 4, 8, 12, 16, 20ms: local time would be 0, -6, -2, 2, 6, 10ms.
    assert!(readings.windows(2).all(|pair| pair[0] <= pair[1]), "the store's clock ran backwards: {readings:?}");
    assert_eq!(readings[..4], [0, 0, 0, 2_000], "the step back was not held until local time caught up");
    assert_eq!(readings[5], 10_000);
}
