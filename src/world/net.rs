//! The world's own message layer (not madsim's `Endpoint`, whose every send costs >= 1 ms and whose
//! per-packet random latency reorders every link).
//!
//! Each node has an inbox: a heap of messages ordered by (deliver_at_us, seq), so one sort order
//! decides every delivery. A send draws the link's latency, queues behind earlier messages on the
//! link's bandwidth, and keeps the link FIFO unless reordering is on for it. Loss, duplication,
//! delay, reordering and one-way clogs are per link; partitions block links both ways. This module
//! holds the parts (messages, links, the inbox heap); `transport` applies the rules that use them,
//! and `node_context` owns the `recv` future that decides when a node reads its inbox.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::fault::LatencyRange;
use super::NodeId;

/// A payload the world can carry: it must say its size (for bandwidth) and be cloneable (for
/// duplication).
pub trait Message: Clone + Send + 'static {
    fn size_bytes(&self) -> u32;

    /// A few words on what the message says, for people reading a full trace.
    fn summary(&self) -> String {
        String::new()
    }
}

/// The network's base behaviour, before faults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkConfig {
    pub latency: LatencyRange,
    pub bandwidth_bytes_per_second: u64,
    pub loss: f64,
    pub duplicate: f64,
    pub reorder: bool,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            latency: LatencyRange { min_us: 100, max_us: 1_000 },
            bandwidth_bytes_per_second: 1_000_000_000,
            loss: 0.0,
            duplicate: 0.0,
            reorder: false,
        }
    }
}

/// A message on its way, with who sent it: the receiver checks the sender's incarnation itself.
#[derive(Clone, Debug)]
pub struct Envelope<M> {
    pub id: u64,
    pub from: NodeId,
    pub from_incarnation: u32,
    pub to: NodeId,
    pub sent_at_us: u64,
    pub payload: M,
}

pub(crate) struct Pending<M> {
    pub deliver_at_us: u64,
    pub seq: u64,
    pub envelope: Envelope<M>,
}

impl<M> PartialEq for Pending<M> {
    fn eq(&self, other: &Self) -> bool {
        (self.deliver_at_us, self.seq) == (other.deliver_at_us, other.seq)
    }
}
impl<M> Eq for Pending<M> {}
impl<M> PartialOrd for Pending<M> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<M> Ord for Pending<M> {
    // Reversed, so that `BinaryHeap` (a max-heap) pops the earliest (deliver_at_us, seq) first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.deliver_at_us, other.seq).cmp(&(self.deliver_at_us, self.seq))
    }
}

pub(crate) type Inbox<M> = BinaryHeap<Pending<M>>;

/// One direction between two nodes, with its queueing state and the faults in force on it.
#[derive(Debug)]
pub(crate) struct Link<M> {
    /// When the link finishes transmitting what was already sent (nanoseconds, for sub-us sizes).
    pub busy_until_ns: u64,
    /// The latest delivery time handed out, so a FIFO link never delivers out of order.
    pub last_deliver_us: u64,
    pub blocked: bool,
    pub clogged: bool,
    pub held: Vec<Envelope<M>>,
    pub loss: f64,
    pub duplicate: f64,
    pub reorder: bool,
    pub extra_latency: Option<LatencyRange>,
}

impl<M> Link<M> {
    pub fn new(config: &NetworkConfig) -> Link<M> {
        Link {
            busy_until_ns: 0,
            last_deliver_us: 0,
            blocked: false,
            clogged: false,
            held: Vec::new(),
            loss: config.loss,
            duplicate: config.duplicate,
            reorder: config.reorder,
            extra_latency: None,
        }
    }

    /// Resets the fault settings to the network's base behaviour; queueing state and held
    /// messages stay (healing a clog releases them separately).
    pub fn reset_faults(&mut self, config: &NetworkConfig) {
        self.blocked = false;
        self.clogged = false;
        self.loss = config.loss;
        self.duplicate = config.duplicate;
        self.reorder = config.reorder;
        self.extra_latency = None;
    }

    /// When a message of `bytes` sent at `now_us` arrives: bandwidth queueing, then latency, then
    /// (unless reordering) no earlier than anything sent before it on this link.
    pub fn schedule(&mut self, now_us: u64, bytes: u32, config: &NetworkConfig, rng: &mut impl Rng) -> u64 {
        let transmit_ns =
            (u128::from(bytes) * 1_000_000_000 / u128::from(config.bandwidth_bytes_per_second.max(1))) as u64;
        let start_ns = self.busy_until_ns.max(now_us * 1_000);
        self.busy_until_ns = start_ns + transmit_ns;
        let transmitted_us = self.busy_until_ns.div_ceil(1_000);
        let mut latency = draw(config.latency, rng);
        if let Some(extra) = self.extra_latency {
            latency += draw(extra, rng);
        }
        let mut deliver_at_us = transmitted_us + latency;
        if !self.reorder {
            deliver_at_us = deliver_at_us.max(self.last_deliver_us);
        }
        self.last_deliver_us = self.last_deliver_us.max(deliver_at_us);
        deliver_at_us
    }
}

/// A uniform draw from a latency range.
pub fn draw(range: LatencyRange, rng: &mut impl Rng) -> u64 {
    if range.max_us <= range.min_us {
        range.min_us
    } else {
        rng.gen_range(range.min_us..=range.max_us)
    }
}

/// Expands a link set to the (from, to) pairs it names among `node_count` nodes.
pub(crate) fn link_pairs(links: &super::fault::LinkSet, node_count: u32) -> Vec<(NodeId, NodeId)> {
    let all: Vec<NodeId> = (0..node_count).collect();
    let from = if links.from.is_empty() { &all } else { &links.from };
    let to = if links.to.is_empty() { &all } else { &links.to };
    let mut pairs = Vec::new();
    for &a in from {
        for &b in to {
            if a == b {
                continue;
            }
            pairs.push((a, b));
            if links.both_ways {
                pairs.push((b, a));
            }
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    pairs
}

/// Counters for reports and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkStats {
    pub sent: u64,
    pub delivered: u64,
    pub dropped: u64,
    pub duplicated: u64,
    pub held: u64,
    pub bytes_sent: u64,
}
