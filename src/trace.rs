//! The one event type from which traces, histories, checkers and plots all read.
//!
//! Every event the world or the system under test records goes through `TraceSink::record`, which
//! folds it into the run's 64-bit hash as it streams (a fixed binary encoding, never JSON) and keeps
//! it only when asked: events that checkers need (client ops, write ownership, migration phases) are
//! always kept; everything else is kept only when a full trace is requested (`--trace`, or a failing
//! seed replayed for its repro bundle). Two runs of one (scenario, seed) must produce equal hashes;
//! a difference is nondeterminism, exit code 4.
//!
//! This module must never read the clock or draw randomness: it records what it is given.

use serde::{Deserialize, Serialize};

use crate::world::{FaultKind, NodeId};

/// One thing that happened, at one model-time instant, on one node (or in the world itself, when
/// `node` is `None`: fault injection, healing).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    pub at_us: u64,
    pub node: Option<NodeId>,
    pub incarnation: u32,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Why the network dropped a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// `net_loss` or the network's base loss rate.
    Loss,
    /// A `net_partition` separates sender and receiver.
    Partition,
    /// The receiver was crashed when the message arrived.
    NodeDown,
}

/// A client operation's function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpFunction {
    Get,
    Put,
    Cas,
    Append,
}

/// How a client operation ended: `ok` (happened, with its result), `fail` (definitely not applied),
/// `info` (unknown: timed out or the client lost its connection).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Fail,
    Info,
}

/// Everything that can be recorded, with one snake_case name each (`"kind"` in JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    // ---- the world ----
    /// A node booted (first start, restart or after replacement).
    NodeStart,
    /// A node was killed; its disks resolved what was unsynced.
    NodeCrash,
    /// A node stalls for `duration_us` (stop-the-world).
    NodePause {
        duration_us: u64,
    },
    NodeResume,
    /// A node's machine was swapped: disks wiped, incarnation bumped.
    PeerReplace {
        new_incarnation: u32,
    },
    /// A disk resolved a crash: how many unsynced writes and directory operations survived.
    DiskCrash {
        disk: u32,
        writes_kept: u32,
        writes_lost: u32,
        names_kept: u32,
        names_lost: u32,
        torn_writes: u32,
    },
    /// A disk fault acted silently (a lost fsync, a flipped bit): the system under test was not told.
    DiskFault {
        disk: u32,
        fault: FaultKind,
        detail: String,
    },
    /// A disk operation failed with an expected error (`disk_full`, an fsync error).
    DiskError {
        disk: u32,
        operation: String,
        error: String,
    },
    FaultInject {
        fault: FaultKind,
        fault_id: u32,
        detail: String,
    },
    FaultHeal {
        fault: FaultKind,
        fault_id: u32,
    },
    /// The safety phase ended: every fault healed, crashed nodes restarted.
    HealAll,
    MessageSend {
        to: NodeId,
        message: u64,
        bytes: u32,
        /// What the message says, in a few words; filled only when the whole trace is kept
        /// (`repro`, `--trace`), and left out of the hash, which must not depend on the level.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        summary: String,
    },
    MessageDeliver {
        from: NodeId,
        message: u64,
    },
    MessageDrop {
        from: NodeId,
        to: NodeId,
        message: u64,
        reason: DropReason,
    },
    MessageDuplicate {
        to: NodeId,
        message: u64,
    },
    // ---- the system under test ----
    /// A free-form line from the system under test, for people reading a trace.
    Note {
        text: String,
    },
    OpInvoke {
        op: u64,
        client: u32,
        key: String,
        partition: u32,
        f: OpFunction,
        value: serde_json::Value,
    },
    OpComplete {
        op: u64,
        client: u32,
        key: String,
        partition: u32,
        f: OpFunction,
        value: serde_json::Value,
        outcome: Outcome,
        result: serde_json::Value,
    },
    /// The final read-back of the heal phase read `key` and saw `value` (`None`: absent). The
    /// same read is also the ordinary `op_invoke`/`op_complete` pair of op `op`; this event marks
    /// it as the key's final state for `no_lost_write`.
    ReadBack {
        op: u64,
        key: String,
        value: Option<String>,
    },
    /// A group's primary applied a committed write for `partition`, which the group owns under
    /// owner epoch `epoch` (bumped each time the partition changes owner). `single_owner` reads
    /// these.
    WriteAccepted {
        group: u32,
        partition: u32,
        epoch: u64,
    },
    /// A gateway holds a write because its partition is frozen for cut-over.
    WriteHeld {
        op: u64,
        partition: u32,
        migration: String,
    },
    WriteReleased {
        op: u64,
        partition: u32,
        migration: String,
    },
    WriteRefused {
        op: u64,
        partition: u32,
        migration: String,
        reason: String,
    },
    /// A migration changed phase.
    Phase {
        migration: String,
        attempt: u32,
        from: String,
        to: String,
    },
    /// The ping system: this node heard `peer` answer a ping it sent at `ping_sent_at_us`.
    Pong {
        peer: NodeId,
        ping_sent_at_us: u64,
    },
}

impl EventKind {
    /// The snake_case name, as in JSON traces and reports.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::NodeStart => "node_start",
            EventKind::NodeCrash => "node_crash",
            EventKind::NodePause { .. } => "node_pause",
            EventKind::NodeResume => "node_resume",
            EventKind::PeerReplace { .. } => "peer_replace",
            EventKind::DiskCrash { .. } => "disk_crash",
            EventKind::DiskError { .. } => "disk_error",
            EventKind::DiskFault { .. } => "disk_fault",
            EventKind::FaultInject { .. } => "fault_inject",
            EventKind::FaultHeal { .. } => "fault_heal",
            EventKind::HealAll => "heal_all",
            EventKind::MessageSend { .. } => "message_send",
            EventKind::MessageDeliver { .. } => "message_deliver",
            EventKind::MessageDrop { .. } => "message_drop",
            EventKind::MessageDuplicate { .. } => "message_duplicate",
            EventKind::Note { .. } => "note",
            EventKind::OpInvoke { .. } => "op_invoke",
            EventKind::OpComplete { .. } => "op_complete",
            EventKind::ReadBack { .. } => "read_back",
            EventKind::WriteAccepted { .. } => "write_accepted",
            EventKind::WriteHeld { .. } => "write_held",
            EventKind::WriteReleased { .. } => "write_released",
            EventKind::WriteRefused { .. } => "write_refused",
            EventKind::Phase { .. } => "phase",
            EventKind::Pong { .. } => "pong",
        }
    }

    /// Whether checkers read this kind; such events are kept even when no full trace is asked for.
    pub fn is_history(&self) -> bool {
        match self {
            EventKind::OpInvoke { .. }
            | EventKind::OpComplete { .. }
            | EventKind::ReadBack { .. }
            | EventKind::WriteAccepted { .. }
            | EventKind::WriteHeld { .. }
            | EventKind::WriteReleased { .. }
            | EventKind::WriteRefused { .. }
            | EventKind::Phase { .. }
            | EventKind::Pong { .. }
            | EventKind::FaultInject { .. }
            | EventKind::FaultHeal { .. }
            | EventKind::HealAll
            | EventKind::NodeStart
            | EventKind::NodeCrash
            | EventKind::PeerReplace { .. } => true,
            EventKind::NodePause { .. }
            | EventKind::NodeResume
            | EventKind::DiskCrash { .. }
            | EventKind::DiskError { .. }
            | EventKind::DiskFault { .. }
            | EventKind::MessageSend { .. }
            | EventKind::MessageDeliver { .. }
            | EventKind::MessageDrop { .. }
            | EventKind::MessageDuplicate { .. }
            | EventKind::Note { .. } => false,
        }
    }

    fn tag(&self) -> u64 {
        match self {
            EventKind::NodeStart => 1,
            EventKind::NodeCrash => 2,
            EventKind::NodePause { .. } => 3,
            EventKind::NodeResume => 4,
            EventKind::PeerReplace { .. } => 5,
            EventKind::DiskCrash { .. } => 6,
            EventKind::DiskError { .. } => 7,
            EventKind::FaultInject { .. } => 8,
            EventKind::FaultHeal { .. } => 9,
            EventKind::HealAll => 10,
            EventKind::MessageSend { .. } => 11,
            EventKind::MessageDeliver { .. } => 12,
            EventKind::MessageDrop { .. } => 13,
            EventKind::MessageDuplicate { .. } => 14,
            EventKind::Note { .. } => 15,
            EventKind::OpInvoke { .. } => 16,
            EventKind::OpComplete { .. } => 17,
            EventKind::WriteAccepted { .. } => 18,
            EventKind::WriteHeld { .. } => 19,
            EventKind::WriteReleased { .. } => 20,
            EventKind::WriteRefused { .. } => 21,
            EventKind::Phase { .. } => 22,
            EventKind::Pong { .. } => 23,
            EventKind::DiskFault { .. } => 24,
            EventKind::ReadBack { .. } => 25,
        }
    }

    /// Feeds the event's fields into the hash in a fixed binary encoding.
    fn hash_into(&self, hasher: &mut TraceHasher) {
        hasher.word(self.tag());
        match self {
            EventKind::NodeStart | EventKind::NodeCrash | EventKind::NodeResume | EventKind::HealAll => {}
            EventKind::NodePause { duration_us } => hasher.word(*duration_us),
            EventKind::PeerReplace { new_incarnation } => hasher.word(u64::from(*new_incarnation)),
            EventKind::DiskCrash { disk, writes_kept, writes_lost, names_kept, names_lost, torn_writes } => {
                hasher.word(u64::from(*disk) << 32 | u64::from(*torn_writes));
                hasher.word(u64::from(*writes_kept) << 32 | u64::from(*writes_lost));
                hasher.word(u64::from(*names_kept) << 32 | u64::from(*names_lost));
            }
            EventKind::DiskError { disk, operation, error } => {
                hasher.word(u64::from(*disk));
                hasher.text(operation);
                hasher.text(error);
            }
            EventKind::DiskFault { disk, fault, detail } => {
                hasher.word(u64::from(*disk));
                hasher.word(*fault as u64);
                hasher.text(detail);
            }
            EventKind::FaultInject { fault, fault_id, detail } => {
                hasher.word(*fault as u64);
                hasher.word(u64::from(*fault_id));
                hasher.text(detail);
            }
            EventKind::FaultHeal { fault, fault_id } => {
                hasher.word(*fault as u64);
                hasher.word(u64::from(*fault_id));
            }
            EventKind::MessageSend { to, message, bytes, summary: _ } => {
                hasher.word(u64::from(*to) << 32 | u64::from(*bytes));
                hasher.word(*message);
            }
            EventKind::MessageDeliver { from, message } => {
                hasher.word(u64::from(*from));
                hasher.word(*message);
            }
            EventKind::MessageDrop { from, to, message, reason } => {
                hasher.word(u64::from(*from) << 32 | u64::from(*to));
                hasher.word(*message);
                hasher.word(*reason as u64);
            }
            EventKind::MessageDuplicate { to, message } => {
                hasher.word(u64::from(*to));
                hasher.word(*message);
            }
            EventKind::Note { text } => hasher.text(text),
            EventKind::OpInvoke { op, client, key, partition, f, value } => {
                hasher.word(*op);
                hasher.word(u64::from(*client) << 32 | u64::from(*partition));
                hasher.text(key);
                hasher.word(*f as u64);
                hasher.json(value);
            }
            EventKind::OpComplete { op, client, key, partition, f, value, outcome, result } => {
                hasher.word(*op);
                hasher.word(u64::from(*client) << 32 | u64::from(*partition));
                hasher.text(key);
                hasher.word(*f as u64);
                hasher.json(value);
                hasher.word(*outcome as u64);
                hasher.json(result);
            }
            EventKind::ReadBack { op, key, value } => {
                hasher.word(*op);
                hasher.text(key);
                match value {
                    Some(value) => {
                        hasher.word(1);
                        hasher.text(value);
                    }
                    None => hasher.word(0),
                }
            }
            EventKind::WriteAccepted { group, partition, epoch } => {
                hasher.word(u64::from(*group) << 32 | u64::from(*partition));
                hasher.word(*epoch);
            }
            EventKind::WriteHeld { op, partition, migration }
            | EventKind::WriteReleased { op, partition, migration } => {
                hasher.word(*op);
                hasher.word(u64::from(*partition));
                hasher.text(migration);
            }
            EventKind::WriteRefused { op, partition, migration, reason } => {
                hasher.word(*op);
                hasher.word(u64::from(*partition));
                hasher.text(migration);
                hasher.text(reason);
            }
            EventKind::Phase { migration, attempt, from, to } => {
                hasher.text(migration);
                hasher.word(u64::from(*attempt));
                hasher.text(from);
                hasher.text(to);
            }
            EventKind::Pong { peer, ping_sent_at_us } => {
                hasher.word(u64::from(*peer));
                hasher.word(*ping_sent_at_us);
            }
        }
    }
}

/// A stable 64-bit streaming hash over 64-bit words. Not `std`'s `DefaultHasher`, whose output may
/// change between Rust releases: a trace hash printed today must match a replay next year.
#[derive(Clone, Debug)]
pub struct TraceHasher {
    state: u64,
}

impl Default for TraceHasher {
    fn default() -> Self {
        TraceHasher { state: 0x6d69_6773_696d_2e31 }
    }
}

impl TraceHasher {
    #[inline]
    pub fn word(&mut self, word: u64) {
        // One multiply-xorshift round per word (the wyhash/fxhash family): cheap on the hot path of
        // message events, and every input bit reaches every output bit after `finish`.
        self.state = (self.state ^ word).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29) ^ (self.state >> 17);
    }

    pub fn text(&mut self, text: &str) {
        self.word(text.len() as u64);
        for chunk in text.as_bytes().chunks(8) {
            let mut bytes = [0u8; 8];
            bytes[..chunk.len()].copy_from_slice(chunk);
            self.word(u64::from_le_bytes(bytes));
        }
    }

    fn json(&mut self, value: &serde_json::Value) {
        match value {
            serde_json::Value::Null => self.word(0),
            serde_json::Value::Bool(flag) => self.word(1 + u64::from(*flag)),
            serde_json::Value::Number(number) => {
                self.word(3);
                self.text(&number.to_string());
            }
            serde_json::Value::String(text) => {
                self.word(4);
                self.text(text);
            }
            serde_json::Value::Array(items) => {
                self.word(5);
                self.word(items.len() as u64);
                items.iter().for_each(|item| self.json(item));
            }
            serde_json::Value::Object(map) => {
                self.word(6);
                self.word(map.len() as u64);
                for (key, item) in map {
                    self.text(key);
                    self.json(item);
                }
            }
        }
    }

    /// The final avalanche (splitmix64's finalizer).
    pub fn finish(&self) -> u64 {
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// How much of the trace a run keeps in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceLevel {
    /// Hash everything, keep only the events checkers read.
    History,
    /// Hash and keep everything (repro, `--trace`).
    Full,
}

/// Where a run's events go: the streaming hash, counters, and the kept events.
#[derive(Debug)]
pub struct TraceSink {
    level: TraceLevel,
    next_seq: u64,
    hasher: TraceHasher,
    kept: Vec<Event>,
}

impl TraceSink {
    pub fn new(level: TraceLevel) -> TraceSink {
        TraceSink { level, next_seq: 0, hasher: TraceHasher::default(), kept: Vec::new() }
    }

    pub fn record(&mut self, at_us: u64, node: Option<NodeId>, incarnation: u32, kind: EventKind) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.hasher.word(at_us);
        self.hasher.word(node.map_or(u64::MAX, u64::from) ^ u64::from(incarnation) << 40);
        kind.hash_into(&mut self.hasher);
        if self.level == TraceLevel::Full || kind.is_history() {
            self.kept.push(Event { seq, at_us, node, incarnation, kind });
        }
    }

    /// Whether recording this kind would keep it; lets callers skip building costly events.
    pub fn keeps_everything(&self) -> bool {
        self.level == TraceLevel::Full
    }

    pub fn hash(&self) -> u64 {
        self.hasher.finish()
    }

    pub fn events_recorded(&self) -> u64 {
        self.next_seq
    }

    pub fn into_events(self) -> Vec<Event> {
        self.kept
    }

    pub fn events(&self) -> &[Event] {
        &self.kept
    }
}

impl Event {
    /// One line for people: time, node, event name and its fields as `key=value`.
    pub fn describe(&self) -> String {
        let node = match self.node {
            Some(node) => format!("n{node}#{}", self.incarnation),
            None => "world".to_string(),
        };
        let mut fields = String::new();
        if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(&self.kind) {
            for (key, value) in map {
                if key == "kind" {
                    continue;
                }
                let text = match value {
                    serde_json::Value::String(text) => text,
                    other => other.to_string(),
                };
                fields.push(' ');
                fields.push_str(&key);
                fields.push('=');
                fields.push_str(&text);
            }
        }
        format!("{:>12}  {:<8} {}{}", crate::units::format_us(self.at_us), node, self.kind.name(), fields)
    }
}

/// Writes events as JSON Lines (the trace format, and migsim's history format when filtered to ops).
pub fn write_jsonl(events: &[Event], mut out: impl std::io::Write) -> std::io::Result<()> {
    for event in events {
        serde_json::to_writer(&mut out, event)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_events_serialize_in_the_history_format() {
        let event = Event {
            seq: 12,
            at_us: 1500,
            node: Some(7),
            incarnation: 0,
            kind: EventKind::OpInvoke {
                op: 3,
                client: 1,
                key: "k12".into(),
                partition: 4,
                f: OpFunction::Put,
                value: serde_json::json!("c1-3"),
            },
        };
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"seq":12,"at_us":1500,"node":7,"incarnation":0,"kind":"op_invoke","op":3,"client":1,"key":"k12","partition":4,"f":"put","value":"c1-3"}"#
        );
        let back: Event = serde_json::from_str(&serde_json::to_string(&event).unwrap()).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn hash_depends_on_every_field_and_on_order() {
        let hash_of = |events: &[(u64, EventKind)]| {
            let mut sink = TraceSink::new(TraceLevel::History);
            for (at, kind) in events {
                sink.record(*at, Some(1), 0, kind.clone());
            }
            sink.hash()
        };
        let send = |message| EventKind::MessageSend { to: 2, message, bytes: 64, summary: String::new() };
        let base = hash_of(&[(5, send(1)), (6, send(2))]);
        assert_eq!(base, hash_of(&[(5, send(1)), (6, send(2))]));
        assert_ne!(base, hash_of(&[(6, send(2)), (5, send(1))]));
        assert_ne!(base, hash_of(&[(5, send(1)), (7, send(2))]));
        assert_ne!(base, hash_of(&[(5, send(1)), (6, send(3))]));
    }

    #[test]
    fn history_level_keeps_only_what_checkers_read() {
        let mut sink = TraceSink::new(TraceLevel::History);
        sink.record(1, Some(1), 0, EventKind::MessageSend { to: 2, message: 1, bytes: 8, summary: String::new() });
        sink.record(2, Some(1), 0, EventKind::WriteAccepted { group: 1, partition: 3, epoch: 2 });
        assert_eq!(sink.events().len(), 1);
        assert_eq!(sink.events_recorded(), 2);
    }
}
