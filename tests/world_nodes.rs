//! Nodes and their disks as the world runs them: replacement wipes disks and bumps the
//! incarnation (also on disk), crashes resolve unsynced data by the disk model, disk faults
//! injected through the world reach the node's disk operations, and node clocks skew.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use migsim::runner::in_fresh_runtime;
use migsim::world::clock::sleep_us;
use migsim::world::disk::DiskError;
use migsim::world::fault::DiskTarget;
use migsim::world::{Fault, Message, NetworkConfig, NodeContext, Program, Sim, WorldConfig, INCARNATION_FILE};

#[derive(Clone, Debug)]
struct Nothing;

impl Message for Nothing {
    fn size_bytes(&self) -> u32 {
        0
    }
}

/// What a node saw at each boot: (incarnation from the context, incarnation file, files on disk 0,
/// content of `data` if any).
type Boots = Arc<Mutex<Vec<(u32, String, Vec<String>, Option<Vec<u8>>)>>>;

/// At each boot: record what the disk holds, then write `data` durably (synced) and `scratch`
/// unsynced, then idle.
fn recorder(boots: Boots) -> Program<Nothing> {
    Arc::new(move |context: NodeContext<Nothing>| -> Pin<Box<dyn Future<Output = ()>>> {
        let boots = boots.clone();
        Box::pin(async move {
            let disk = context.disk(0);
            let incarnation = String::from_utf8(disk.read_all(INCARNATION_FILE).await.unwrap_or_default()).unwrap();
            let files = disk.list().await;
            let data = disk.read_all("data").await.ok();
            boots.lock().unwrap().push((context.incarnation(), incarnation, files, data));
            if disk.create("data").await.is_ok() {
                disk.write_at("data", 0, b"durable").await.unwrap();
                disk.fsync("data").await.unwrap();
                disk.fsync_dir().await.unwrap();
            }
            let _ = disk.create("scratch").await;
            let _ = disk.write_at("scratch", 0, b"unsynced").await;
            std::future::pending::<()>().await;
        })
    })
}

#[test]
fn replacement_gives_an_empty_disk_and_a_new_incarnation() {
    let boots: Boots = Arc::new(Mutex::new(Vec::new()));
    let shared = boots.clone();
    in_fresh_runtime(1, move || async move {
        let sim: Sim<Nothing> = Sim::new(WorldConfig::new(1, NetworkConfig::default()));
        sim.add_node("n0", recorder(shared));
        sleep_us(50_000).await;
        sim.restart(0);
        sleep_us(50_000).await;
        sim.replace(0);
        sleep_us(50_000).await;
        sim.finish();
    })
    .unwrap();
    let boots = boots.lock().unwrap().clone();
    assert_eq!(boots.len(), 3);
    // First boot: only the world's incarnation file.
    assert_eq!(boots[0].0, 0);
    assert_eq!(boots[0].1, "0");
    assert_eq!(boots[0].2, vec![INCARNATION_FILE.to_string()]);
    // After a restart: synced data survived, same incarnation.
    assert_eq!(boots[1].0, 0);
    assert_eq!(boots[1].3.as_deref(), Some(&b"durable"[..]));
    // After replacement: empty disk but for the new incarnation file.
    assert_eq!(boots[2].0, 1);
    assert_eq!(boots[2].1, "1");
    assert_eq!(boots[2].2, vec![INCARNATION_FILE.to_string()], "a replaced node kept data");
    assert_eq!(boots[2].3, None);
}

#[test]
fn a_crash_loses_or_keeps_unsynced_data_as_each_seed_draws() {
    let mut kept = 0;
    let mut lost = 0;
    for seed in 0..40 {
        let boots: Boots = Arc::new(Mutex::new(Vec::new()));
        let shared = boots.clone();
        in_fresh_runtime(seed, move || async move {
            let sim: Sim<Nothing> = Sim::new(WorldConfig::new(seed, NetworkConfig::default()));
            sim.add_node("n0", recorder(shared));
            sleep_us(50_000).await;
            sim.restart(0);
            sleep_us(50_000).await;
            sim.finish();
        })
        .unwrap();
        let boots = boots.lock().unwrap().clone();
        assert_eq!(boots[1].3.as_deref(), Some(&b"durable"[..]), "seed {seed}: synced data lost");
        if boots[1].2.contains(&"scratch".to_string()) {
            kept += 1;
        } else {
            lost += 1;
        }
    }
    assert!(kept > 0 && lost > 0, "unsynced file creation always {}", if kept > 0 { "kept" } else { "lost" });
}

#[test]
fn disk_full_injected_by_the_world_fails_writes_with_a_distinct_error() {
    let results = Arc::new(Mutex::new(Vec::new()));
    let shared = results.clone();
    in_fresh_runtime(3, move || async move {
        let sim: Sim<Nothing> = Sim::new(WorldConfig::new(3, NetworkConfig::default()));
        let program: Program<Nothing> =
            Arc::new(move |context: NodeContext<Nothing>| -> Pin<Box<dyn Future<Output = ()>>> {
                let shared = shared.clone();
                Box::pin(async move {
                    let disk = context.disk(1);
                    disk.create("log").await.unwrap();
                    // Appends at 5ms, 15ms and 25ms; the disk is full from 10ms to 20ms.
                    for at_us in [5_000, 15_000, 25_000] {
                        migsim::world::clock::sleep_until_us(at_us).await;
                        let result = disk.append("log", b"entry").await;
                        shared.lock().unwrap().push(result.map(|_| ()));
                    }
                })
            });
        sim.add_node("n0", program);
        sleep_us(10_000).await;
        let fault = sim.inject(Fault::DiskFull { target: DiskTarget { node: 0, disk: Some(1) } });
        sleep_us(10_000).await;
        sim.heal(fault);
        sleep_us(20_000).await;
        sim.finish();
    })
    .unwrap();
    let results = results.lock().unwrap().clone();
    assert_eq!(results, vec![Ok(()), Err(DiskError::Full), Ok(())]);
}

#[test]
fn clock_skew_shifts_a_nodes_local_time_until_healed() {
    let readings = Arc::new(Mutex::new(Vec::new()));
    let shared = readings.clone();
    in_fresh_runtime(4, move || async move {
        let sim: Sim<Nothing> = Sim::new(WorldConfig::new(4, NetworkConfig::default()));
        let program: Program<Nothing> =
            Arc::new(move |context: NodeContext<Nothing>| -> Pin<Box<dyn Future<Output = ()>>> {
                let shared = shared.clone();
                Box::pin(async move {
                    for _ in 0..3 {
                        sleep_us(10_000).await;
                        shared.lock().unwrap().push(context.local_time_us() as i64 - context.now_us() as i64);
                    }
                })
            });
        sim.add_node("n0", program);
        sleep_us(15_000).await;
        let fault = sim.inject(Fault::ClockSkew { node: 0, skew_us: -2_000, drift_ppm: 0 });
        sleep_us(10_000).await;
        sim.heal(fault);
        sleep_us(20_000).await;
        sim.finish();
    })
    .unwrap();
    assert_eq!(readings.lock().unwrap().clone(), vec![0, -2_000, 0]);
}

#[test]
fn a_crash_fault_with_a_duration_restarts_the_node_when_healed() {
    let boots: Boots = Arc::new(Mutex::new(Vec::new()));
    let shared = boots.clone();
    let states = in_fresh_runtime(2, move || async move {
        let sim: Sim<Nothing> = Sim::new(WorldConfig::new(2, NetworkConfig::default()));
        sim.add_node("n0", recorder(shared));
        sleep_us(10_000).await;
        let crash = sim.inject(Fault::NodeCrash { node: 0 });
        sleep_us(10_000).await;
        let down = sim.node_state(0);
        sim.heal(crash);
        sleep_us(10_000).await;
        let up = sim.node_state(0);
        sim.finish();
        (down, up)
    })
    .unwrap();
    assert_eq!(states, (migsim::world::NodeState::Down, migsim::world::NodeState::Up));
    assert_eq!(boots.lock().unwrap().len(), 2, "the node booted again when its crash healed");
}
