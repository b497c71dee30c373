//! The world's message layer, one rule per test: latency, bandwidth, FIFO links, and the effect of
//! each network fault; crashes and replacement as the network sees them.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use migsim::runner::in_fresh_runtime;
use migsim::world::clock::{now_us, sleep_us};
use migsim::world::{Fault, LatencyRange, LinkSet, Message, NetworkConfig, NodeContext, Program, Sim, WorldConfig};

#[derive(Clone, Debug)]
struct Numbered {
    number: u64,
    bytes: u32,
}

impl Message for Numbered {
    fn size_bytes(&self) -> u32 {
        self.bytes
    }
}

/// (receiver, sender, sender incarnation, number, sent_at, received_at)
type Log = Arc<Mutex<Vec<(u32, u32, u32, u64, u64, u64)>>>;

fn receiver(log: Log) -> Program<Numbered> {
    Arc::new(move |context: NodeContext<Numbered>| -> Pin<Box<dyn Future<Output = ()>>> {
        let log = log.clone();
        Box::pin(async move {
            loop {
                let envelope = context.recv().await;
                log.lock().unwrap().push((
                    context.id(),
                    envelope.from,
                    envelope.from_incarnation,
                    envelope.payload.number,
                    envelope.sent_at_us,
                    now_us(),
                ));
            }
        })
    })
}

fn idle() -> Program<Numbered> {
    Arc::new(|_context: NodeContext<Numbered>| -> Pin<Box<dyn Future<Output = ()>>> {
        Box::pin(std::future::pending())
    })
}

/// A sender that sends `count` messages of `bytes` to node 1, one every `gap_us`, after `start_us`.
fn sender(count: u64, bytes: u32, gap_us: u64, start_us: u64) -> Program<Numbered> {
    Arc::new(move |context: NodeContext<Numbered>| -> Pin<Box<dyn Future<Output = ()>>> {
        Box::pin(async move {
            sleep_us(start_us).await;
            for number in 0..count {
                context.send(1, Numbered { number, bytes });
                if gap_us > 0 {
                    sleep_us(gap_us).await;
                }
            }
            std::future::pending::<()>().await;
        })
    })
}

fn network(min_us: u64, max_us: u64) -> NetworkConfig {
    NetworkConfig { latency: LatencyRange { min_us, max_us }, ..NetworkConfig::default() }
}

/// Runs node 0 = `first`, node 1 = a receiver, applies `faults` at their times, runs `until_us`,
/// returns what node 1 received, in order.
fn run(
    seed: u64,
    config: NetworkConfig,
    first: Program<Numbered>,
    faults: Vec<(u64, Fault, Option<u64>)>,
    until_us: u64,
) -> Vec<(u32, u32, u32, u64, u64, u64)> {
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let shared = log.clone();
    in_fresh_runtime(seed, move || async move {
        let sim = Sim::new(WorldConfig::new(seed, config));
        sim.add_node("sender", first);
        sim.add_node("receiver", receiver(shared));
        for (at, fault, heal_after) in faults {
            sleep_us(at.saturating_sub(now_us())).await;
            let id = sim.inject(fault);
            if let Some(after) = heal_after {
                let healer = sim.clone();
                madsim::task::spawn(async move {
                    sleep_us(after).await;
                    healer.heal(id);
                });
            }
        }
        sleep_us(until_us.saturating_sub(now_us())).await;
        sim.finish();
    })
    .expect("simulation panicked");
    let received = log.lock().unwrap().clone();
    received
}

fn numbers(received: &[(u32, u32, u32, u64, u64, u64)]) -> Vec<u64> {
    received.iter().map(|entry| entry.3).collect()
}

fn all_links() -> LinkSet {
    LinkSet { from: vec![], to: vec![], both_ways: true }
}

#[test]
fn latency_stays_within_the_configured_range() {
    let received = run(1, network(200, 900), sender(200, 64, 10, 0), vec![], 100_000);
    assert_eq!(received.len(), 200);
    for (_, _, _, _, sent, got) in &received {
        let latency = got - sent;
        assert!((200..=901).contains(&latency), "latency {latency}us outside 200..=900 (+1us transmit)");
    }
}

#[test]
fn links_are_fifo_unless_reordering_is_on() {
    let received = run(2, network(10, 5_000), sender(300, 64, 1, 0), vec![], 100_000);
    assert_eq!(numbers(&received), (0..300).collect::<Vec<_>>(), "a FIFO link delivered out of order");
    let reordered = run(
        2,
        network(10, 5_000),
        sender(300, 64, 1, 0),
        vec![(0, Fault::NetReorder { links: all_links() }, None)],
        100_000,
    );
    assert_eq!(reordered.len(), 300);
    assert_ne!(numbers(&reordered), (0..300).collect::<Vec<_>>(), "net_reorder left the link in order");
}

#[test]
fn bandwidth_queues_large_messages_behind_each_other() {
    // 1 MB/s: a 10,000-byte message takes 10ms to transmit; ten sent at once arrive ~10ms apart.
    let config = NetworkConfig { bandwidth_bytes_per_second: 1_000_000, ..network(100, 100) };
    let received = run(3, config, sender(10, 10_000, 0, 0), vec![], 1_000_000);
    assert_eq!(received.len(), 10);
    for (index, (_, _, _, _, sent, got)) in received.iter().enumerate() {
        let expected = sent + (index as u64 + 1) * 10_000 + 100;
        assert_eq!(*got, expected, "message {index} did not queue behind the ones before it");
    }
}

#[test]
fn net_loss_drops_about_its_rate() {
    let fault = Fault::NetLoss { links: all_links(), rate: 0.3 };
    let received = run(4, network(10, 50), sender(2_000, 16, 2, 0), vec![(0, fault, None)], 100_000);
    let delivered = received.len() as f64 / 2_000.0;
    assert!((0.65..0.75).contains(&delivered), "delivered {delivered}, expected about 0.7");
}

#[test]
fn net_duplicate_delivers_some_messages_twice() {
    let fault = Fault::NetDuplicate { links: all_links(), rate: 0.5 };
    let received = run(5, network(10, 50), sender(1_000, 16, 2, 0), vec![(0, fault, None)], 100_000);
    let extra = received.len() as f64 / 1_000.0 - 1.0;
    assert!((0.4..0.6).contains(&extra), "duplicated {extra}, expected about 0.5");
    let mut unique = numbers(&received);
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 1_000, "duplication lost a message");
}

#[test]
fn net_delay_adds_latency_and_healing_removes_it() {
    let fault = Fault::NetDelay { links: all_links(), latency: LatencyRange { min_us: 5_000, max_us: 5_000 } };
    let received = run(6, network(100, 100), sender(100, 16, 100, 0), vec![(0, fault, Some(5_000))], 100_000);
    let first = received.iter().find(|entry| entry.3 == 0).unwrap();
    assert_eq!(first.5 - first.4, 5_101);
    let last = received.iter().find(|entry| entry.3 == 99).unwrap();
    assert_eq!(last.5 - last.4, 101, "healing net_delay left latency behind");
}

#[test]
fn net_partition_drops_both_ways_until_healed() {
    let fault = Fault::NetPartition { side_a: vec![0], side_b: vec![] };
    // Sends every 100us for 10ms; partitioned from 2ms to 6ms.
    let received = run(7, network(10, 10), sender(100, 16, 100, 0), vec![(2_000, fault, Some(4_000))], 100_000);
    let got = numbers(&received);
    assert!(got.contains(&0) && got.contains(&99));
    for number in 21..59 {
        assert!(!got.contains(&number), "message {number} crossed the partition");
    }
}

#[test]
fn net_clog_holds_one_way_and_releases_on_heal() {
    let fault = Fault::NetClog { links: LinkSet { from: vec![0], to: vec![1], both_ways: false } };
    let received = run(8, network(10, 10), sender(50, 16, 100, 0), vec![(1_000, fault, Some(3_000))], 100_000);
    assert_eq!(numbers(&received), (0..50).collect::<Vec<_>>(), "a clog lost or reordered messages");
    let held: Vec<_> = received.iter().filter(|entry| (1_000..4_000).contains(&entry.4)).collect();
    assert!(!held.is_empty());
    for entry in held {
        assert!(entry.5 >= 4_000, "message {} crossed a clogged link at {}", entry.3, entry.5);
    }
}

#[test]
fn messages_to_a_crashed_node_are_dropped() {
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let shared = log.clone();
    in_fresh_runtime(9, move || async move {
        let sim = Sim::new(WorldConfig::new(9, network(10, 10)));
        sim.add_node("sender", sender(100, 16, 100, 0));
        sim.add_node("receiver", receiver(shared));
        sleep_us(2_000).await;
        sim.crash(1);
        sleep_us(3_000).await;
        sim.restart(1);
        sleep_us(20_000).await;
        sim.finish();
    })
    .unwrap();
    let got = numbers(&log.lock().unwrap());
    assert!(got.contains(&0) && got.contains(&99));
    for number in 21..50 {
        assert!(!got.contains(&number), "message {number} reached a crashed node");
    }
}

#[test]
fn replacement_bumps_the_incarnation_that_peers_see() {
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let shared = log.clone();
    in_fresh_runtime(10, move || async move {
        let sim = Sim::new(WorldConfig::new(10, network(10, 10)));
        sim.add_node("sender", sender(100, 16, 100, 0));
        sim.add_node("receiver", receiver(shared));
        sleep_us(3_000).await;
        assert_eq!(sim.incarnation(0), 0);
        sim.replace(0);
        assert_eq!(sim.incarnation(0), 1);
        sleep_us(30_000).await;
        sim.finish();
    })
    .unwrap();
    let received = log.lock().unwrap().clone();
    assert!(received.iter().any(|entry| entry.2 == 0));
    let after: Vec<_> = received.iter().filter(|entry| entry.2 == 1).collect();
    assert!(!after.is_empty(), "the replaced node never spoke again");
    assert_eq!(after[0].3, 0, "the new incarnation restarts its program from scratch");
}

#[test]
fn a_paused_node_receives_nothing_until_it_resumes() {
    let fault = Fault::NodePause { node: 1, duration_us: 4_000 };
    let received = run(11, network(10, 10), sender(100, 16, 100, 0), vec![(2_000, fault, Some(4_000))], 100_000);
    assert_eq!(numbers(&received), (0..100).collect::<Vec<_>>(), "a pause lost messages");
    for entry in &received {
        assert!(!(2_001..6_000).contains(&entry.5), "message {} received at {} during the pause", entry.3, entry.5);
    }
}

#[test]
fn a_node_can_be_idle() {
    let received = run(12, network(10, 10), idle(), vec![], 1_000);
    assert!(received.is_empty());
}
