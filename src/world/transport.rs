//! The network's rules, as the world applies them: a send (recorded, then dropped by a partition,
//! held by a clog, lost or duplicated as the link's faults draw), queueing into the receiver's
//! inbox, delivery of what is due (a partition drops what is in flight), the drop of what reached
//! a node while it was down, and every link's fault settings recomputed from the faults in force.
//! It draws only from the network's stream. It never decides when a node reads its inbox
//! (`node_context` owns the `recv` future) and never touches disks or node lifecycles.

use rand::Rng;

use super::fault::{Effect, LinkChange, LinkSet, Links};
use super::net::{self, Envelope, Link, Message, Pending};
use super::state::World;
use super::NodeId;
use crate::trace::{DropReason, EventKind};

impl<M: Message> World<M> {
    pub(super) fn link_index(&self, from: NodeId, to: NodeId) -> usize {
        link_index(self.link_capacity, from, to)
    }

    pub(super) fn drop_message(&mut self, now_us: u64, from: NodeId, to: NodeId, message: u64, reason: DropReason) {
        self.stats.dropped += 1;
        self.record(now_us, Some(from), EventKind::MessageDrop { from, to, message, reason });
    }

    pub(super) fn send(&mut self, now_us: u64, from: NodeId, to: NodeId, payload: M) {
        assert!((to as usize) < self.nodes.len(), "network: node {from} sent to unknown node {to}");
        let id = self.next_message_id;
        self.next_message_id += 1;
        let bytes = payload.size_bytes();
        self.stats.sent += 1;
        self.stats.bytes_sent += u64::from(bytes);
        let from_incarnation = self.nodes[from as usize].incarnation;
        let mut trace = self.trace();
        let summary = if trace.keeps_everything() { payload.summary() } else { String::new() };
        trace.record_with_summary(
            now_us,
            Some(from),
            from_incarnation,
            EventKind::MessageSend { to, message: id, bytes },
            summary,
        );
        drop(trace);
        let envelope = Envelope { id, from, from_incarnation, to, sent_at_us: now_us, payload };
        let index = self.link_index(from, to);
        let link = &mut self.links[index];
        if link.blocked {
            self.drop_message(now_us, from, to, id, DropReason::Partition);
            return;
        }
        if link.clogged {
            link.held.push(envelope);
            self.stats.held += 1;
            return;
        }
        if link.loss > 0.0 && self.network_rng.gen_bool(link.loss.min(1.0)) {
            self.drop_message(now_us, from, to, id, DropReason::Loss);
            return;
        }
        let duplicate = link.duplicate > 0.0 && self.network_rng.gen_bool(link.duplicate.min(1.0));
        if duplicate {
            self.stats.duplicated += 1;
            self.record(now_us, Some(from), EventKind::MessageDuplicate { to, message: id });
            self.enqueue(now_us, index, envelope.clone());
        }
        self.enqueue(now_us, index, envelope);
    }

    /// Puts a message on its link and into the receiver's inbox, waking the receiver if the message
    /// is now the first due.
    pub(super) fn enqueue(&mut self, now_us: u64, link_index: usize, envelope: Envelope<M>) {
        let bytes = envelope.payload.size_bytes();
        let deliver_at_us = self.links[link_index].schedule(now_us, bytes, &self.config.network, &mut self.network_rng);
        let seq = self.next_inbox_seq;
        self.next_inbox_seq += 1;
        let slot = &mut self.nodes[envelope.to as usize];
        let first = slot.inbox.peek().is_none_or(|top| deliver_at_us < top.deliver_at_us);
        slot.inbox.push(Pending { deliver_at_us, seq, envelope });
        if first {
            if let Some(waker) = slot.waker.take() {
                waker.wake();
            }
        }
    }

    /// Messages that arrived while a node was down are lost: called when it boots.
    pub(super) fn purge_inbox(&mut self, node: NodeId, now_us: u64) {
        let mut lost = Vec::new();
        let inbox = &mut self.nodes[node as usize].inbox;
        while inbox.peek().is_some_and(|top| top.deliver_at_us <= now_us) {
            if let Some(pending) = inbox.pop() {
                lost.push(pending.envelope);
            }
        }
        for envelope in lost {
            self.drop_message(now_us, envelope.from, node, envelope.id, DropReason::NodeDown);
        }
    }

    /// Recomputes every link's fault settings from the base configuration and the active network
    /// faults (in injection order), then releases messages held by clogs that no longer hold.
    pub(super) fn recompute_links(&mut self, now_us: u64) {
        let node_count = self.nodes.len() as u32;
        let config = self.config.network.clone();
        for link in &mut self.links {
            link.reset_faults(&config);
        }
        let World { faults, links, link_capacity, .. } = self;
        for fault in faults.values() {
            let (targets, change) = match fault.effect() {
                Effect::Link { links, change } => (links, change),
                Effect::Node(_) | Effect::Disk { .. } | Effect::Clock { .. } => continue,
            };
            let pairs = match targets {
                Links::Set(set) => net::link_pairs(set, node_count),
                Links::Partition { side_a, side_b } => {
                    let side_b: Vec<NodeId> = if side_b.is_empty() {
                        (0..node_count).filter(|id| !side_a.contains(id)).collect()
                    } else {
                        side_b.to_vec()
                    };
                    net::link_pairs(&LinkSet { from: side_a.to_vec(), to: side_b, both_ways: true }, node_count)
                }
            };
            for (from, to) in pairs {
                let link = &mut links[link_index(*link_capacity, from, to)];
                match change {
                    LinkChange::Block => link.blocked = true,
                    LinkChange::Loss { rate } => link.loss = 1.0 - (1.0 - link.loss) * (1.0 - rate),
                    LinkChange::Delay { latency } => link.extra_latency = Some(latency),
                    LinkChange::Duplicate { rate } => link.duplicate = 1.0 - (1.0 - link.duplicate) * (1.0 - rate),
                    LinkChange::Reorder => link.reorder = true,
                    LinkChange::Clog => link.clogged = true,
                }
            }
        }
        let mut released = Vec::new();
        for (index, link) in self.links.iter_mut().enumerate() {
            if !link.clogged && !link.held.is_empty() {
                released.extend(link.held.drain(..).map(|envelope| (index, envelope)));
            }
        }
        for (index, envelope) in released {
            if self.links[index].blocked {
                self.drop_message(now_us, envelope.from, envelope.to, envelope.id, DropReason::Partition);
            } else {
                self.enqueue(now_us, index, envelope);
            }
        }
    }

    pub(super) fn grow_links(&mut self) {
        let needed = self.nodes.len();
        if needed <= self.link_capacity {
            return;
        }
        let capacity = needed.next_power_of_two().max(4);
        let mut links = Vec::with_capacity(capacity * capacity);
        for _ in 0..capacity * capacity {
            links.push(Link::new(&self.config.network));
        }
        for from in 0..self.link_capacity {
            for to in 0..self.link_capacity {
                std::mem::swap(&mut links[from * capacity + to], &mut self.links[from * self.link_capacity + to]);
            }
        }
        self.links = links;
        self.link_capacity = capacity;
    }

    /// Pops the first message due at `now_us` for `node`, dropping those whose link is now
    /// partitioned (a partition drops what is in flight, as a real one does).
    pub(super) fn pop_due(&mut self, node: NodeId, now_us: u64) -> Option<Envelope<M>> {
        loop {
            let slot = &mut self.nodes[node as usize];
            if slot.inbox.peek().is_none_or(|top| top.deliver_at_us > now_us) {
                return None;
            }
            let envelope = slot.inbox.pop()?.envelope;
            let index = self.link_index(envelope.from, node);
            if self.links[index].blocked {
                self.drop_message(now_us, envelope.from, node, envelope.id, DropReason::Partition);
                continue;
            }
            self.stats.delivered += 1;
            let incarnation = self.nodes[node as usize].incarnation;
            self.trace().record(
                now_us,
                Some(node),
                incarnation,
                EventKind::MessageDeliver { from: envelope.from, message: envelope.id },
            );
            return Some(envelope);
        }
    }
}

/// Where the link from `from` to `to` sits among links laid out `from * capacity + to`.
fn link_index(link_capacity: usize, from: NodeId, to: NodeId) -> usize {
    from as usize * link_capacity + to as usize
}
