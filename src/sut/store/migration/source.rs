//! The source side of one migration attempt, at the source group's primary: it streams the
//! partition's snapshot and then its committed log entries to the target's primary, decides when
//! to cut over, freezes the gateways, asks its replica to log the fence, and, once the target
//! durably holds everything through the fence, the handoff; if the fence's lease runs out first,
//! the unfence instead.
//!
//! Sans I/O: every input (`on_ack`, `on_tick`, ...) takes the time by this primary's clock and a
//! view of the replica's log, and pushes effects: messages, entries to append to the group's log
//! (the replica appends them and reports their LSNs back), trace records, the truncation hold.
//! What must survive this primary (the fence, the handoff, the abort) is only ever an entry of the
//! group's log; everything here is volatile and rebuilt by the next primary from the log and the
//! target's reports.

use std::collections::BTreeSet;

use super::design::{LagEstimate, REFERENCE};
use super::messages::{
    HandoffSeal, MigrationMessage, MigrationRef, PeerIdentity, ShippedEntry, ShippedKind, SnapshotChunk, StreamItem,
    TargetPosition,
};
use crate::sut::store::entry::{DedupEntry, EntryKind, Holding};
use crate::sut::store::state_machine::chunks_of;
use crate::sut::store::{GroupId, Lsn, PartitionId};
use crate::trace::EventKind;
use crate::vocabulary::{AbortReason, MigrationPhase, NodeId};

/// The most snapshot chunks in flight (sent, not durable at the target).
const CHUNK_WINDOW: u32 = 4;
/// The most catch-up entries per message.
const ENTRIES_PER_MESSAGE_MAX: usize = 64;
/// The widest span of source LSNs in flight (shipped, not durable at the target).
const ENTRY_WINDOW_LSNS: u64 = 2048;

/// The log, as the stream reads it.
pub trait SourceLog {
    /// The partition's entries that its target copy applies (writes, fences, unfences, the
    /// handoff), with LSN in `(after, through]`, oldest first, at most `max`; and the LSN the scan
    /// reached. `None` when the log no longer holds the entry after `after` (compacted).
    fn shippable(
        &self,
        partition: PartitionId,
        after: Lsn,
        through: Lsn,
        max: usize,
    ) -> Option<(Vec<(Lsn, ShippedKind)>, Lsn)>;
    fn commit_lsn(&self) -> Lsn;
    /// The handoff this primary appended at `lsn`, committed or not (for the planted bug
    /// `handoff_on_append`, which ships it before it commits).
    fn appended_handoff(&self, lsn: Lsn) -> Option<ShippedKind> {
        let _ = lsn;
        None
    }
}

/// The knobs of one stream, from the migration's spec and the store's timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamParams {
    pub pause_budget_us: u64,
    pub lag_threshold: u64,
    pub chunk_bytes: usize,
    pub retry_us: u64,
}

/// The budget's split, as the design decides it (`design.rs`).
impl StreamParams {
    /// The fence's lease.
    pub fn lease_us(&self) -> u64 {
        REFERENCE.lease_us(self.pause_budget_us)
    }

    /// How long, from the freeze's start, gateways may hold the partition's writes for one
    /// attempt. Every notice and refusal tells a gateway what is left of it, so a gateway that
    /// hears late holds no later.
    pub fn hold_us(&self) -> u64 {
        REFERENCE.hold_us(self.pause_budget_us)
    }

    /// How long the freeze waits for gateways' acknowledgements before fencing anyway.
    pub fn freeze_wait_us(&self) -> u64 {
        REFERENCE.freeze_wait_us(self.pause_budget_us)
    }
}

/// What the stream asks of its replica and the world.
#[derive(Debug, Default)]
pub struct SourceEffects {
    pub sends: Vec<(NodeId, MigrationMessage)>,
    /// Entries to append to the group's log for the partition; the replica reports each one's
    /// LSN back with `on_appended`.
    pub append: Vec<EntryKind>,
    pub records: Vec<EventKind>,
}

/// The fence this primary logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fence {
    /// The fence entry's LSN.
    entry_lsn: Lsn,
    /// F, the final LSN: the last of the partition's entries the target must hold before the
    /// handoff, and where the drain stops shipping. The fence's own LSN, read after logging it.
    final_lsn: Lsn,
    lease_until_us: u64,
}

pub struct SourceStream {
    pub migration: MigrationRef,
    pub partition: PartitionId,
    pub target_group: GroupId,
    source_group: GroupId,
    target_members: Vec<NodeId>,
    gateways: Vec<NodeId>,
    /// Where stream messages go: the target's primary, as far as this primary knows.
    target_node: NodeId,
    params: StreamParams,
    phase: MigrationPhase,
    stream: u64,
    base_lsn: Lsn,
    owner_epoch: u64,
    dedup: Vec<(u32, DedupEntry)>,
    chunks: Vec<SnapshotChunk>,
    /// The target's identity this stream is bound to.
    target: Option<PeerIdentity>,
    /// What the bound target durably holds of this stream.
    acked: TargetPosition,
    /// How far the stream has sent: chunks, and the last shipped entry's source LSN.
    sent_chunks: u32,
    sent_lsn: Lsn,
    /// How far the log has been scanned for the partition's entries (at or past `sent_lsn`).
    scanned_lsn: Lsn,
    begin_sent: bool,
    last_progress_us: u64,
    last_send_us: u64,
    sent_at: std::collections::BTreeMap<(u8, u64), u64>,
    /// Round trip and per-entry apply time at the target, smoothed (the drain forecast).
    rtt_us: Option<u64>,
    entry_us: u64,
    /// When the round trip was last measured, and when an idle catch-up's probe left.
    rtt_sampled_us: u64,
    probe_sent_us: Option<u64>,
    freeze_started_us: Option<u64>,
    freeze_acks: BTreeSet<NodeId>,
    fence: Option<Fence>,
    /// The decisive entry this primary appended (`Handoff` or `Unfence`/`AttemptAbort`).
    decided: bool,
    handoff_lsn: Option<Lsn>,
    handoff_sent: bool,
    /// Planted bug `final_lsn_before_fence`: F is read when the freeze starts, before the fence.
    final_lsn_before_fence: bool,
    early_final_lsn: Lsn,
    /// Planted bug `catchup_ignores_incarnation`: a changed target keeps the old target's position.
    ignore_identity: bool,
    /// Planted bug `handoff_on_append`.
    handoff_on_append: bool,
    /// Planted bug `freeze_before_snapshot`.
    freeze_before_snapshot: bool,
    seal: Option<HandoffSeal>,
    /// The last message went to a node that named another: send there next, not to the next member.
    redirected: bool,
    /// Where the attempt's beginning was logged.
    begin_lsn: Option<Lsn>,
}

/// Everything a stream starts from.
pub struct StreamStart {
    pub migration: MigrationRef,
    pub partition: PartitionId,
    pub source_group: GroupId,
    pub target_group: GroupId,
    pub target_members: Vec<NodeId>,
    pub target_hint: Option<NodeId>,
    pub gateways: Vec<NodeId>,
    pub params: StreamParams,
    /// A fresh random id: a new stream replaces any copy an older stream left at the target.
    pub stream: u64,
    /// The partition's state at `base_lsn` (the primary's applied LSN).
    pub base_lsn: Lsn,
    pub snapshot: crate::sut::store::entry::PartitionSnapshot,
    pub final_lsn_before_fence: bool,
    pub catchup_ignores_incarnation: bool,
    /// Planted bug `handoff_on_append`: the handoff is shipped once appended, before it commits.
    pub handoff_on_append: bool,
    /// Planted bug `freeze_before_snapshot`: the cut-over may start once the target acknowledged
    /// the stream's beginning, its snapshot still arriving.
    pub freeze_before_snapshot: bool,
    /// Set for a partition already handed off whose target may lack the handoff (this primary
    /// took over after it committed): the snapshot is the stub's data, sealed.
    pub seal: Option<HandoffSeal>,
}

impl SourceStream {
    pub fn start(start: StreamStart, now_us: u64, out: &mut SourceEffects) -> SourceStream {
        let owner_epoch = match (start.snapshot.holding, start.seal) {
            (Holding::Owned { owner_epoch, fence: None }, None) => owner_epoch,
            (Holding::Stub { owner_epoch, .. }, Some(seal)) => {
                assert_eq!(owner_epoch, seal.owner_epoch, "seal_of_the_stub: partition {}", start.partition);
                owner_epoch - 1
            }
            (holding, seal) => {
                panic!("stream_from_owner: partition {} is {holding:?} (sealed: {seal:?})", start.partition)
            }
        };
        let target_node = start.target_hint.unwrap_or(start.target_members[0]);
        let mut stream = SourceStream {
            migration: start.migration,
            partition: start.partition,
            target_group: start.target_group,
            source_group: start.source_group,
            target_members: start.target_members,
            gateways: start.gateways,
            target_node,
            params: start.params,
            phase: MigrationPhase::Snapshot,
            stream: start.stream,
            base_lsn: start.base_lsn,
            owner_epoch,
            dedup: start.snapshot.dedup.iter().map(|(client, entry)| (*client, entry.clone())).collect(),
            chunks: chunks_of(&start.snapshot.data, start.params.chunk_bytes),
            target: None,
            acked: TargetPosition::default(),
            sent_chunks: 0,
            sent_lsn: start.base_lsn,
            scanned_lsn: start.base_lsn,
            begin_sent: false,
            last_progress_us: now_us,
            last_send_us: now_us,
            sent_at: std::collections::BTreeMap::new(),
            rtt_us: None,
            entry_us: 0,
            rtt_sampled_us: 0,
            probe_sent_us: None,
            freeze_started_us: None,
            freeze_acks: BTreeSet::new(),
            fence: None,
            decided: false,
            handoff_lsn: None,
            handoff_sent: false,
            final_lsn_before_fence: start.final_lsn_before_fence,
            early_final_lsn: 0,
            ignore_identity: start.catchup_ignores_incarnation,
            handoff_on_append: start.handoff_on_append,
            freeze_before_snapshot: start.freeze_before_snapshot,
            seal: start.seal,
            redirected: false,
            begin_lsn: None,
        };
        if stream.seal.is_some() {
            stream.phase = MigrationPhase::Commit;
            stream.decided = true;
        }
        stream.send_snapshot(now_us, out);
        stream
    }

    pub fn phase(&self) -> MigrationPhase {
        self.phase
    }

    /// The lowest LSN of the partition the target may still need: the log keeps everything after it.
    pub fn hold_lsn(&self) -> Lsn {
        if self.acked.stream == self.stream && self.acked.snapshot_complete {
            self.acked.source_lsn.max(self.base_lsn)
        } else {
            self.base_lsn
        }
    }

    /// Whether writes to the partition must be refused now: this primary logged the fence.
    pub fn fenced(&self) -> bool {
        self.fence.is_some()
    }

    /// What is left of the attempt's hold window at `now_us` (this primary's clock).
    pub fn hold_left_us(&self, now_us: u64) -> u64 {
        self.freeze_started_us.map_or(0, |started| (started + self.params.hold_us()).saturating_sub(now_us))
    }

    /// Whether the attempt ended here: its decisive entry committed, nothing more to stream.
    pub fn finished(&self) -> bool {
        matches!(self.phase, MigrationPhase::Aborted) || (self.phase == MigrationPhase::Commit && self.acked.owned)
    }

    fn set_phase(
        &mut self,
        to: MigrationPhase,
        reason: Option<AbortReason>,
        migration_name: &str,
        out: &mut SourceEffects,
    ) {
        if self.phase == to {
            return;
        }
        out.records.push(EventKind::Phase {
            migration: migration_name.to_string(),
            attempt: self.migration.attempt,
            partition: self.partition,
            from: self.phase,
            to,
            reason,
        });
        self.phase = to;
    }

    fn sample_rtt(&mut self, rtt: u64, now_us: u64) {
        self.rtt_us = Some(self.rtt_us.map_or(rtt, |old| (old * 3 + rtt) / 4));
        self.rtt_sampled_us = now_us;
    }

    /// An idle catch-up (everything sent is acknowledged) measures its round trip afresh once a
    /// retry period: an empty entries message, which the target answers at once with its
    /// position. Without it a round trip measured while the target was busy (a new group's first
    /// writes, several streams into one group) stays the drain forecast's for as long as the
    /// partition takes no writes, and the cut-over waits for a write to measure it again
    /// (`operation-scale-double` found moves idle in catch-up for 400ms, and some until their
    /// attempt timed out). A probe that gets no answer is sent again after a retry period.
    fn maybe_probe(&mut self, now_us: u64, out: &mut SourceEffects) {
        let idle =
            self.acked.stream == self.stream && self.acked.snapshot_complete && self.sent_lsn <= self.acked.source_lsn;
        let retry_us = self.params.retry_us;
        let probing = self.probe_sent_us.is_some_and(|sent| now_us < sent + retry_us);
        if !idle || probing || now_us < self.rtt_sampled_us + retry_us {
            return;
        }
        self.probe_sent_us = Some(now_us);
        out.sends.push((self.target_node, self.stream_message(StreamItem::Entries(Vec::new()))));
    }

    /// `item` as this stream's message to its target.
    fn stream_message(&self, item: StreamItem) -> MigrationMessage {
        MigrationMessage::Stream {
            group: self.target_group,
            source_group: self.source_group,
            migration: self.migration,
            partition: self.partition,
            stream: self.stream,
            item,
        }
    }

    fn send(&mut self, item: StreamItem, now_us: u64, out: &mut SourceEffects) {
        self.last_send_us = now_us;
        // When each item left, keyed by the position its acknowledgement will report, so a
        // round trip is measured from the item acknowledged, not from the last send.
        let key = match &item {
            StreamItem::Begin { .. } => (0, 0),
            StreamItem::Chunk(chunk) => (0, u64::from(chunk.index) + 1),
            StreamItem::Entries(entries) => (1, entries.last().map_or(0, |entry| entry.source_lsn)),
        };
        // The first send counts: a resend's acknowledgement may answer the first.
        self.sent_at.entry(key).or_insert(now_us);
        out.sends.push((self.target_node, self.stream_message(item)));
    }

    fn send_snapshot(&mut self, now_us: u64, out: &mut SourceEffects) {
        if !self.begin_sent {
            self.begin_sent = true;
            let item = StreamItem::Begin {
                source_group: self.source_group,
                base_lsn: self.base_lsn,
                owner_epoch: self.owner_epoch,
                chunks: self.chunks.len() as u32,
                dedup: self.dedup.clone(),
                handoff: self.seal,
            };
            self.send(item, now_us, out);
        }
        let acked_chunks = if self.acked.stream == self.stream { self.acked.chunks } else { 0 };
        while self.sent_chunks < self.chunks.len() as u32 && self.sent_chunks < acked_chunks + CHUNK_WINDOW {
            let chunk = self.chunks[self.sent_chunks as usize].clone();
            self.sent_chunks += 1;
            self.send(StreamItem::Chunk(chunk), now_us, out);
        }
    }

    /// Ships the partition's committed entries the target lacks, within the window.
    fn ship(&mut self, log: &dyn SourceLog, now_us: u64, out: &mut SourceEffects) -> Result<(), Compacted> {
        if !(self.acked.stream == self.stream && self.acked.snapshot_complete) {
            return Ok(());
        }
        // The drain ships through F and no further; the handoff follows F directly.
        let commit = match self.fence {
            Some(fence) => log.commit_lsn().min(fence.final_lsn),
            None => log.commit_lsn(),
        };
        while self.scanned_lsn < commit && self.sent_lsn < self.acked.source_lsn + ENTRY_WINDOW_LSNS {
            let Some((found, reached)) =
                log.shippable(self.partition, self.scanned_lsn, commit, ENTRIES_PER_MESSAGE_MAX)
            else {
                return Err(Compacted);
            };
            self.scanned_lsn = reached;
            if found.is_empty() {
                continue;
            }
            let mut entries = Vec::with_capacity(found.len());
            for (lsn, kind) in found {
                entries.push(ShippedEntry { source_lsn: lsn, prev_source_lsn: self.sent_lsn, kind });
                self.sent_lsn = lsn;
            }
            self.send(StreamItem::Entries(entries), now_us, out);
        }
        self.ship_handoff(log, now_us, out);
        Ok(())
    }

    /// Once the handoff commits and the target has been sent everything through F, the handoff
    /// itself, as the last entry.
    fn ship_handoff(&mut self, log: &dyn SourceLog, now_us: u64, out: &mut SourceEffects) {
        let (Some(fence), Some(handoff)) = (self.fence, self.handoff_lsn) else { return };
        let committed = log.commit_lsn() >= handoff || self.handoff_on_append;
        if self.handoff_sent || !committed || self.sent_lsn < fence.final_lsn {
            return;
        }
        let found = match log.appended_handoff(handoff) {
            Some(kind) if self.handoff_on_append => vec![(handoff, kind)],
            _ => match log.shippable(self.partition, fence.entry_lsn, handoff, usize::MAX) {
                Some((found, _)) => found,
                None => return,
            },
        };
        let [(lsn, kind @ ShippedKind::Handoff { .. })] = &found[..] else {
            panic!("nothing_between_fence_and_handoff: partition {} shipped {found:?} after its fence", self.partition)
        };
        let entry = ShippedEntry { source_lsn: *lsn, prev_source_lsn: self.sent_lsn, kind: kind.clone() };
        self.sent_lsn = *lsn;
        self.scanned_lsn = self.scanned_lsn.max(*lsn);
        self.handoff_sent = true;
        self.send(StreamItem::Entries(vec![entry]), now_us, out);
    }

    /// The target's primary reported what its group durably holds.
    pub fn on_ack(
        &mut self,
        name: &str,
        identity: PeerIdentity,
        position: TargetPosition,
        log: &dyn SourceLog,
        now_us: u64,
        out: &mut SourceEffects,
    ) {
        self.target_node = identity.node;
        if position.owned {
            self.acked.owned = true;
            return;
        }
        let changed = self.target.is_some_and(|bound| bound != identity);
        if changed && self.ignore_identity {
            // Planted bug: the new target's word is taken as an addition to the old one's.
            self.target = Some(identity);
            if position.stream == self.stream && position.source_lsn > self.acked.source_lsn {
                self.acked = position;
            }
        } else if changed {
            // Another target (after a failover or a replacement): whatever was sent to the old
            // one and not durable is gone. Trust only what the new one reports, and resume there.
            self.target = Some(identity);
            self.acked = position;
            self.rewind();
        } else {
            self.target = Some(identity);
            if let Some(sent) = self.probe_sent_us.take() {
                // Any answer on this stream after the probe left measures a round trip.
                if position.stream == self.stream {
                    self.sample_rtt(now_us.saturating_sub(sent), now_us);
                }
            }
            let progressed = position.stream == self.stream
                && (position.stream != self.acked.stream
                    || position.chunks > self.acked.chunks
                    || position.source_lsn > self.acked.source_lsn);
            if progressed {
                let entries = position.source_lsn.saturating_sub(self.acked.source_lsn.max(self.base_lsn));
                let acked_key =
                    if position.snapshot_complete { (1, position.source_lsn) } else { (0, u64::from(position.chunks)) };
                if let Some((_, &sent)) = self.sent_at.range(..=acked_key).next_back() {
                    self.sample_rtt(now_us.saturating_sub(sent), now_us);
                }
                // The entries' apply time counts from when the first of them left, not from the
                // last progress: an idle partition's quiet time is no cost per entry.
                let start = (1, self.acked.source_lsn + 1);
                let first_sent = (start <= acked_key)
                    .then(|| self.sent_at.range(start..=acked_key).next().map(|(_, &at)| at))
                    .flatten();
                self.sent_at = self.sent_at.split_off(&(acked_key.0, acked_key.1 + 1));
                if entries > 0 && self.acked.snapshot_complete {
                    let since = first_sent.map_or(self.last_progress_us, |at| at.max(self.last_progress_us));
                    let per_entry = now_us.saturating_sub(since) / entries;
                    self.entry_us = (self.entry_us * 3 + per_entry) / 4;
                }
                self.last_progress_us = now_us;
            }
            // An acknowledgement behind what was sent is normal (the rest is on its way, or not
            // committed yet); if nothing moves for a retry period, `on_tick` sends again.
            self.acked = position;
        }
        let complete = self.acked.stream == self.stream && self.acked.snapshot_complete;
        // Planted bug `freeze_before_snapshot`: a target that began receiving counts as caught up.
        let complete = complete || (self.freeze_before_snapshot && self.acked.stream == self.stream);
        match self.phase {
            MigrationPhase::Snapshot if complete => self.set_phase(MigrationPhase::CatchUp, None, name, out),
            MigrationPhase::CatchUp if !complete => self.set_phase(MigrationPhase::Snapshot, None, name, out),
            // Fenced, with a target that lost its copy: nothing can finish inside the lease, so
            // the writes held for it are let go now.
            MigrationPhase::Freeze | MigrationPhase::Drain if !complete => self.abort(AbortReason::TargetLost, out),
            _ => {}
        }
        self.progress(name, log, now_us, out);
    }

    /// Sends again from what the target durably holds.
    fn rewind(&mut self) {
        self.handoff_sent = false;
        if self.acked.stream == self.stream {
            self.sent_chunks = self.acked.chunks;
            if self.acked.snapshot_complete {
                self.sent_lsn = self.acked.source_lsn.max(self.base_lsn);
                self.scanned_lsn = self.sent_lsn;
            }
        } else {
            self.begin_sent = false;
            self.sent_chunks = 0;
            self.sent_lsn = self.base_lsn;
            self.scanned_lsn = self.base_lsn;
        }
    }

    /// The target's node answered that it is not the target's primary.
    pub fn on_redirect(&mut self, hint: Option<NodeId>, from: NodeId) {
        if from != self.target_node {
            return;
        }
        self.target_node = hint.filter(|&node| node != from).unwrap_or_else(|| self.next_member(from));
        // Send again at the next tick, to the node named.
        self.redirected = true;
        self.last_send_us = 0;
        self.last_progress_us = 0;
    }

    fn next_member(&self, after: NodeId) -> NodeId {
        let position = self.target_members.iter().position(|&member| member == after).unwrap_or(0);
        self.target_members[(position + 1) % self.target_members.len()]
    }

    pub fn on_freeze_ack(&mut self, gateway: NodeId) {
        self.freeze_acks.insert(gateway);
    }

    /// The replica appended `entry` (which this stream asked for) at `lsn`.
    pub fn on_appended(&mut self, entry: &EntryKind, lsn: Lsn, now_us: u64) {
        match entry {
            EntryKind::Fence { lease_us, .. } => {
                let final_lsn = if self.final_lsn_before_fence { self.early_final_lsn } else { lsn };
                self.fence = Some(Fence { entry_lsn: lsn, final_lsn, lease_until_us: now_us + lease_us });
            }
            EntryKind::Handoff { .. } => self.handoff_lsn = Some(lsn),
            EntryKind::AttemptBegin { .. } => self.begin_lsn = Some(lsn),
            _ => {}
        }
    }

    /// The group's log committed more (or time passed): ship, decide, resend.
    pub fn on_tick(&mut self, name: &str, log: &dyn SourceLog, now_us: u64, out: &mut SourceEffects) {
        // Silence for a retry period, or twice the measured round trip if that is longer (a slow
        // link is not a lost message).
        let patience_us = self.params.retry_us.max(2 * self.rtt_us.unwrap_or(0));
        // With everything sent acknowledged there is nothing to send again, and a quiet target
        // is no lost one: an idle partition's stream stays where it is (it once wandered to a
        // secondary and back every patience period).
        let outstanding = !(self.acked.stream == self.stream
            && self.acked.snapshot_complete
            && self.sent_lsn <= self.acked.source_lsn
            && self.seal.is_none());
        if outstanding && now_us >= self.last_send_us + patience_us && now_us >= self.last_progress_us + patience_us {
            // Nothing moved for a retry period: the target may not have received what was sent,
            // or this primary's idea of where it is may be wrong. Send again from what it holds.
            self.rewind();
            if !self.redirected {
                // Nobody answered: try the target group's next member.
                self.target_node = self.next_member(self.target_node);
            }
            self.redirected = false;
            self.last_send_us = now_us;
        }
        self.progress(name, log, now_us, out);
    }

    fn progress(&mut self, name: &str, log: &dyn SourceLog, now_us: u64, out: &mut SourceEffects) {
        if matches!(self.phase, MigrationPhase::Aborted) || self.acked.owned {
            return;
        }
        if self.decided {
            // The attempt's end is logged; only the handoff (or a sealed snapshot) may still
            // need sending.
            if self.seal.is_some() {
                self.send_snapshot(now_us, out);
            } else {
                let _ = self.ship(log, now_us, out);
            }
            return;
        }
        let snapshot_acked = self.acked.stream == self.stream && self.acked.snapshot_complete;
        if self.phase == MigrationPhase::Snapshot || (self.freeze_before_snapshot && !snapshot_acked) {
            self.send_snapshot(now_us, out);
        }
        if self.ship(log, now_us, out).is_err() {
            // The log no longer holds what the target lacks: start the copy over.
            self.stream = self.stream.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17) | 1;
            self.acked = TargetPosition::default();
            self.rewind();
            self.set_phase(MigrationPhase::Snapshot, None, name, out);
            return;
        }
        match self.phase {
            MigrationPhase::CatchUp => {
                self.maybe_probe(now_us, out);
                self.maybe_freeze(name, log, now_us, out)
            }
            MigrationPhase::Freeze => self.maybe_fence(name, log, now_us, out),
            MigrationPhase::Drain => self.maybe_hand_off(name, now_us, out),
            MigrationPhase::Planned
            | MigrationPhase::Snapshot
            | MigrationPhase::Commit
            | MigrationPhase::Cleanup
            | MigrationPhase::Done
            | MigrationPhase::Aborted => {}
        }
    }

    /// The target's lag behind the source's committed log, in the partition's entries: shipped
    /// and not yet durable there, plus committed and not yet shipped.
    fn lag(&self, log: &dyn SourceLog) -> u64 {
        let shipped_not_durable = self.sent_lsn > self.acked.source_lsn;
        let unshipped = log
            .shippable(self.partition, self.scanned_lsn, log.commit_lsn(), usize::MAX)
            .map_or(u64::MAX / 2, |(found, _)| found.len() as u64);
        let in_flight = match log.shippable(self.partition, self.acked.source_lsn, self.sent_lsn, usize::MAX) {
            Some((found, _)) if shipped_not_durable => found.len() as u64,
            _ => 0,
        };
        unshipped + in_flight
    }

    fn maybe_freeze(&mut self, name: &str, log: &dyn SourceLog, now_us: u64, out: &mut SourceEffects) {
        // Not before the attempt's beginning is durable: a successor must know of it.
        if self.begin_lsn.is_none_or(|lsn| log.commit_lsn() < lsn) {
            return;
        }
        let lag = LagEstimate { lag_entries: self.lag(log), rtt_us: self.rtt_us, entry_us: self.entry_us };
        if !REFERENCE.ready_to_freeze(lag, self.params.lag_threshold, self.params.pause_budget_us) {
            return;
        }
        self.freeze_started_us = Some(now_us);
        self.freeze_acks.clear();
        self.early_final_lsn = self.sent_lsn.max(self.scanned_lsn.min(log.commit_lsn()));
        for &gateway in &self.gateways {
            out.sends.push((
                gateway,
                MigrationMessage::Freeze {
                    source_group: self.source_group,
                    migration: self.migration,
                    partition: self.partition,
                    hold_us: self.params.hold_us(),
                    pause_budget_us: self.params.pause_budget_us,
                },
            ));
        }
        self.set_phase(MigrationPhase::Freeze, None, name, out);
    }

    fn maybe_fence(&mut self, name: &str, _log: &dyn SourceLog, now_us: u64, out: &mut SourceEffects) {
        let started = self.freeze_started_us.expect("a freeze has its start");
        let everyone = self.gateways.iter().all(|gateway| self.freeze_acks.contains(gateway));
        if !everyone && now_us < started + self.params.freeze_wait_us() {
            return;
        }
        out.append.push(EntryKind::Fence { migration: self.migration, lease_us: self.params.lease_us() });
        self.set_phase(MigrationPhase::Drain, None, name, out);
    }

    fn maybe_hand_off(&mut self, name: &str, now_us: u64, out: &mut SourceEffects) {
        let _ = name;
        if self.decided {
            return;
        }
        let Some(fence) = self.fence else { return };
        if now_us >= fence.lease_until_us {
            self.decided = true;
            out.append.push(EntryKind::Unfence { migration: self.migration, reason: AbortReason::DrainOverBudget });
            return;
        }
        let durable_through_fence = self.acked.stream == self.stream && self.acked.source_lsn >= fence.final_lsn;
        if durable_through_fence {
            self.decided = true;
            // The replica fills in the digest and owner epoch from its state machine.
            out.append.push(EntryKind::Handoff {
                migration: self.migration,
                to_group: self.target_group,
                owner_epoch: self.owner_epoch + 1,
                digest: 0,
            });
        }
    }

    /// The master asked to end the attempt: log its end, unless this primary already decided.
    pub fn abort(&mut self, reason: AbortReason, out: &mut SourceEffects) {
        if self.decided {
            return;
        }
        self.decided = true;
        if self.fence.is_some() || self.phase == MigrationPhase::Drain {
            out.append.push(EntryKind::Unfence { migration: self.migration, reason });
        } else {
            out.append.push(EntryKind::AttemptAbort { migration: self.migration, reason });
        }
    }

    /// The attempt's decisive entry committed: the handoff (`committed`) or an abort.
    pub fn on_decided(
        &mut self,
        name: &str,
        committed: bool,
        reason: Option<AbortReason>,
        now_us: u64,
        out: &mut SourceEffects,
    ) {
        let moved_to = committed.then_some(self.target_group);
        let hold_left_us = self.hold_left_us(now_us);
        for &gateway in &self.gateways {
            out.sends.push((
                gateway,
                MigrationMessage::Release {
                    migration: self.migration,
                    partition: self.partition,
                    moved_to,
                    hold_left_us,
                },
            ));
        }
        if committed {
            self.set_phase(MigrationPhase::Commit, None, name, out);
        } else {
            // The master records the abort, once, with its reason: it learns every attempt's end,
            // also those whose source primary had no stream left to tell.
            let _ = reason;
            self.phase = MigrationPhase::Aborted;
        }
        self.decided = true;
    }
}

/// The log no longer holds what the target needs.
#[derive(Debug)]
struct Compacted;
