//! Disk faults as the world holds them, one rule per test: each fault is held on its own, so
//! overlapping faults compose and healing one leaves the others acting; one-shot faults end with
//! `heal_all`; a replaced machine's new disk stays under the faults still in force on its slot.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use migsim::runner::in_fresh_runtime;
use migsim::trace::{Event, EventKind, TraceLevel};
use migsim::world::clock::sleep_until_us;
use migsim::world::disk::DiskError;
use migsim::world::fault::{DiskTarget, FaultKind};
use migsim::world::{DiskConfig, Fault, LatencyRange, Message, NetworkConfig, NodeContext, Program, Sim, WorldConfig};

#[derive(Clone, Debug)]
struct Nothing;

impl Message for Nothing {
    fn size_bytes(&self) -> u32 {
        0
    }
}

/// One disk operation the node's program did: creating its log (`latency_us` 0) or an fsync.
#[derive(Clone, Debug)]
struct Done {
    boot: u32,
    /// When it returned.
    at_us: u64,
    result: Result<(), DiskError>,
    latency_us: u64,
}

impl Done {
    fn is_fsync(&self) -> bool {
        self.latency_us > 0
    }

    fn started_us(&self) -> u64 {
        self.at_us - self.latency_us
    }
}

type Log = Arc<Mutex<Vec<Done>>>;

/// What the operator does, at a model time.
#[derive(Clone, Debug)]
enum Action {
    Inject(Fault),
    /// Heals the fault the `n`th `Inject` returned.
    Heal(usize),
    HealAll,
    Crash,
    Replace,
}

const TICK_US: u64 = 1_000;

fn fixed(latency_us: u64) -> LatencyRange {
    LatencyRange { min_us: latency_us, max_us: latency_us }
}

/// Every operation takes 10us, so each fsync lands well inside the millisecond it started in, and
/// every unsynced write survives a crash, so an armed torn write always has a write to tear.
fn fast_disk() -> DiskConfig {
    DiskConfig {
        read_latency: fixed(10),
        write_latency: fixed(10),
        fsync_latency: fixed(10),
        metadata_latency: fixed(10),
        unsynced_write_survival_probability: 1.0,
        ..DiskConfig::default()
    }
}

fn disk_one() -> DiskTarget {
    DiskTarget { node: 0, disk: Some(1) }
}

/// At each boot: create `log` on disk 1 if it is missing, then append and fsync once per
/// millisecond (at half past), recording each fsync's result and latency.
fn fsyncer(log: Log) -> Program<Nothing> {
    let boots = Arc::new(Mutex::new(0u32));
    Arc::new(move |context: NodeContext<Nothing>| -> Pin<Box<dyn Future<Output = ()>>> {
        let log = log.clone();
        let boot = {
            let mut boots = boots.lock().unwrap();
            *boots += 1;
            *boots
        };
        Box::pin(async move {
            let disk = context.disk(1);
            if disk.len("log").await.is_err() {
                let created = disk.create("log").await;
                log.lock().unwrap().push(Done { boot, at_us: context.now_us(), result: created, latency_us: 0 });
                if disk.fsync_dir().await.is_err() {
                    return;
                }
            }
            loop {
                let next = (context.now_us() / TICK_US + 1) * TICK_US + TICK_US / 2;
                sleep_until_us(next).await;
                let _ = disk.append("log", b"entry").await;
                let started = context.now_us();
                let result = disk.fsync("log").await;
                let now = context.now_us();
                log.lock().unwrap().push(Done { boot, at_us: now, result, latency_us: now - started });
            }
        })
    })
}

/// Runs node 0 (the fsyncer) under `actions`, until `until_us`, with a full trace.
fn run(seed: u64, actions: Vec<(u64, Action)>, until_us: u64) -> (Vec<Done>, Vec<Event>) {
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let shared = log.clone();
    let events = in_fresh_runtime(seed, move || async move {
        let config = WorldConfig {
            disk: fast_disk(),
            trace: TraceLevel::Full,
            ..WorldConfig::new(seed, NetworkConfig::default())
        };
        let sim: Sim<Nothing> = Sim::new(config);
        sim.add_node("n0", fsyncer(shared));
        let mut injected = Vec::new();
        for (at_us, action) in actions {
            sleep_until_us(at_us).await;
            match action {
                Action::Inject(fault) => injected.push(sim.inject(fault)),
                Action::Heal(index) => sim.heal(injected[index]),
                Action::HealAll => sim.heal_all(),
                Action::Crash => sim.crash(0),
                Action::Replace => sim.replace(0),
            }
        }
        sleep_until_us(until_us).await;
        sim.finish().events
    })
    .expect("simulation panicked");
    let done = log.lock().unwrap().clone();
    (done, events)
}

/// How many fsyncs of `log` each 10ms window lost silently, from the trace's `disk_fault` events.
fn lost_fsyncs_per_window(events: &[Event], windows: usize) -> Vec<usize> {
    let mut lost = vec![0; windows];
    for event in events {
        if let EventKind::DiskFault { fault: FaultKind::DiskLostFsync, .. } = &event.kind {
            lost[(event.at_us / 10_000) as usize] += 1;
        }
    }
    lost
}

#[test]
fn overlapping_lost_fsync_faults_compose_and_heal_one_at_a_time() {
    // A: every fsync lost, from 10ms to 40ms. B: half of them, from 20ms to 30ms. While both act,
    // the rate is 1 - (1 - 1)(1 - 0.5) = 1; once B heals, A alone still loses every fsync.
    let a = Fault::DiskLostFsync { target: disk_one(), rate: 1.0 };
    let b = Fault::DiskLostFsync { target: disk_one(), rate: 0.5 };
    let actions = vec![
        (10_000, Action::Inject(a)),
        (20_000, Action::Inject(b)),
        (30_000, Action::Heal(1)),
        (40_000, Action::Heal(0)),
    ];
    let (done, events) = run(1, actions, 50_000);
    assert_eq!(done.len(), 50, "one create and an fsync every millisecond from 1.5ms on");
    assert_eq!(lost_fsyncs_per_window(&events, 5), vec![0, 10, 10, 10, 0]);
}

#[test]
fn overlapping_slow_disk_faults_add_their_latencies() {
    // A adds 100us to every operation from 10ms to 30ms, B adds 200us from 20ms to 40ms.
    let a = Fault::DiskSlow { target: disk_one(), latency: fixed(100) };
    let b = Fault::DiskSlow { target: disk_one(), latency: fixed(200) };
    let actions = vec![
        (10_000, Action::Inject(a)),
        (20_000, Action::Inject(b)),
        (30_000, Action::Heal(0)),
        (40_000, Action::Heal(1)),
    ];
    let (done, _) = run(2, actions, 50_000);
    // An fsync's latency is drawn when it starts, under the faults in force then.
    let latency_in_window = |window: u64| -> Vec<u64> {
        let fsyncs = done.iter().filter(|done| done.is_fsync() && done.started_us() / 10_000 == window);
        let mut latencies: Vec<u64> = fsyncs.map(|fsync| fsync.latency_us).collect();
        latencies.dedup();
        latencies
    };
    assert_eq!(latency_in_window(0), vec![10]);
    assert_eq!(latency_in_window(1), vec![110]);
    assert_eq!(latency_in_window(2), vec![310], "two slow faults at once add up");
    assert_eq!(latency_in_window(3), vec![210], "healing A left B acting");
    assert_eq!(latency_in_window(4), vec![10]);
}

#[test]
fn healing_one_disk_full_fault_leaves_another_in_force() {
    let full = Fault::DiskFull { target: disk_one() };
    let everything_full = Fault::DiskFull { target: DiskTarget { node: 0, disk: None } };
    let actions = vec![
        (10_000, Action::Inject(full)),
        (20_000, Action::Inject(everything_full)),
        (30_000, Action::Heal(0)),
        (40_000, Action::Heal(1)),
    ];
    let (_, events) = run(3, actions, 50_000);
    let full_appends: Vec<u64> = events
        .iter()
        .filter(|event| matches!(&event.kind, EventKind::DiskError { error, .. } if error == "disk full"))
        .map(|event| event.at_us / 10_000)
        .collect();
    assert_eq!(full_appends.len(), 30, "appends refused from 10ms to 40ms: {full_appends:?}");
    assert!(full_appends.iter().all(|window| (1..4).contains(window)));
}

#[test]
fn heal_all_disarms_a_one_shot_fault_that_has_not_fired() {
    // A crash fault keeps the node from fsyncing while an fsync error and a torn write are armed
    // on disk 1; neither may fire after `heal_all`: not at the first fsync after the node comes
    // back, nor at a crash that finds an unsynced write (at 35.505ms, between append and fsync).
    let fsync_error = Fault::DiskFsyncError { target: disk_one() };
    let torn_write = Fault::DiskTornWrite { target: disk_one() };
    let actions = vec![
        (10_200, Action::Inject(Fault::NodeCrash { node: 0 })),
        (11_000, Action::Inject(fsync_error)),
        (12_000, Action::Inject(torn_write)),
        (20_000, Action::HealAll),
        (35_505, Action::Crash),
    ];
    let (done, events) = run(4, actions, 40_000);
    let failed: Vec<_> = done.iter().filter(|done| done.result.is_err()).collect();
    assert!(failed.is_empty(), "an fsync error outlived heal_all: {failed:?}");
    assert!(done.iter().any(|done| done.boot == 2 && done.is_fsync()), "the node fsynced after the heal");
    let torn: Vec<_> = events
        .iter()
        .filter(|event| matches!(event.kind, EventKind::DiskCrash { torn_writes, .. } if torn_writes > 0))
        .collect();
    assert!(torn.is_empty(), "a torn write outlived heal_all: {torn:?}");
}

#[test]
fn a_replaced_disk_stays_under_the_faults_still_in_force() {
    // disk_full is in force on every disk of node 0 when its machine is replaced: the new, empty
    // disks must be full too (once the world has written the incarnation file), so the first boot
    // after replacement cannot create its log.
    let actions = vec![
        (10_000, Action::Inject(Fault::DiskFull { target: DiskTarget { node: 0, disk: None } })),
        (20_000, Action::Replace),
        (30_000, Action::Heal(0)),
        (31_000, Action::Replace),
    ];
    let (done, _) = run(5, actions, 40_000);
    let creates: Vec<(u32, Result<(), DiskError>)> =
        done.iter().filter(|done| !done.is_fsync()).map(|done| (done.boot, done.result.clone())).collect();
    assert_eq!(creates, vec![(1, Ok(())), (2, Err(DiskError::Full)), (3, Ok(()))]);
}

#[test]
fn a_replaced_disk_keeps_a_one_shot_fault_that_has_not_fired() {
    // The node is down when an fsync error is armed on disk 1, then its machine is replaced: the
    // first fsync on the new disk fails, and only that one.
    let actions = vec![
        (5_000, Action::Inject(Fault::NodeCrash { node: 0 })),
        (6_000, Action::Inject(Fault::DiskFsyncError { target: disk_one() })),
        (7_000, Action::Replace),
    ];
    let (done, _) = run(6, actions, 15_000);
    let after_replacement: Vec<bool> =
        done.iter().filter(|done| done.boot == 2 && done.is_fsync()).map(|done| done.result.is_ok()).collect();
    assert_eq!(after_replacement.first(), Some(&false), "the armed fsync error was dropped by the wipe");
    assert!(after_replacement[1..].iter().all(|ok| *ok), "the fsync error fired more than once");
}

#[test]
fn two_fsync_error_faults_on_one_disk_each_fail_one_fsync() {
    let actions = vec![
        (10_000, Action::Inject(Fault::DiskFsyncError { target: disk_one() })),
        (10_100, Action::Inject(Fault::DiskFsyncError { target: disk_one() })),
    ];
    let (done, _) = run(7, actions, 20_000);
    let failed: Vec<u64> = done.iter().filter(|done| done.result.is_err()).map(|done| done.at_us).collect();
    assert_eq!(failed.len(), 2, "each armed fault fails one fsync: {failed:?}");
    assert!(failed.iter().all(|at_us| (10_000..12_000).contains(at_us)), "the next two fsyncs fail: {failed:?}");
}

#[test]
fn healing_an_armed_one_shot_fault_disarms_only_it() {
    // A is healed before it fires: no fsync fails at 10.5ms. Of B and C, only B is healed: the
    // fsync at 12.5ms fails, and no other.
    let actions = vec![
        (10_000, Action::Inject(Fault::DiskFsyncError { target: disk_one() })),
        (10_100, Action::Heal(0)),
        (12_000, Action::Inject(Fault::DiskFsyncError { target: disk_one() })),
        (12_100, Action::Inject(Fault::DiskFsyncError { target: disk_one() })),
        (12_200, Action::Heal(1)),
    ];
    let (done, _) = run(8, actions, 20_000);
    let failed: Vec<u64> = done.iter().filter(|done| done.result.is_err()).map(|done| done.at_us).collect();
    assert_eq!(failed, vec![12_520], "healed faults fired, or the one left in force did not");
}
