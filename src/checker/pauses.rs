//! Write pauses as the trace tells them (docs/migration.md, "What the trace records"): every
//! interval a gateway held a write because of a migration, each write's pause (the sum of its
//! holds, over every attempt and gateway) and each attempt's pause window (from its first held or
//! refused write to the end of its last hold). `pause_budget` judges these; the migration report
//! summarises them.
//!
//! A hold opens at a gateway's `write_held`, or its `write_refused` other than `moved` (a moved
//! refusal is a redirect, not a pause), for a write it is not already holding (a refused write is
//! held from the refusal on: the gateway "then holds it"), and closes
//! at that gateway's `write_released` of the same write, at the gateway's `node_crash`, or at the
//! run's end, whichever comes first. A hold belongs to the attempt named by the event that opened
//! it. Releases of writes the gateway was not holding open nothing and close nothing.
//!
//! Owns this arithmetic and nothing else: it must never judge a pause against a budget.

use std::collections::BTreeMap;

use super::migration_trace::{node_name, At};
use crate::trace::{Event, EventKind, WriteRefusal};
use crate::units::format_us;
use crate::vocabulary::NodeId;

/// What opened a hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Opening {
    Held,
    Refused,
}

/// What closed a hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Closing {
    /// The gateway's `write_released`.
    Released,
    /// The gateway crashed while holding the write.
    GatewayCrash,
    /// Still held when the run ended.
    RunEnd,
}

/// One interval a gateway held one write.
#[derive(Clone, Debug)]
pub(crate) struct Hold<'a> {
    pub migration: &'a str,
    pub partition: u32,
    pub attempt: u32,
    pub client: u32,
    pub seq: u64,
    pub opening: Opening,
    /// The event that opened the hold (its node is the gateway).
    pub opened: At,
    pub closing: Closing,
    pub closed_us: u64,
}

impl Hold<'_> {
    pub fn duration_us(&self) -> u64 {
        self.closed_us.saturating_sub(self.opened.at_us)
    }

    pub fn gateway(&self) -> String {
        node_name(self.opened.node, self.opened.incarnation)
    }

    /// `client 3's write 17`.
    pub fn write_name(&self) -> String {
        format!("client {}'s write {}", self.client, self.seq)
    }

    /// `held on gateway n6#0 from 1.2s to 1.25s (released), attempt 2`.
    pub fn describe(&self) -> String {
        let verb = match self.opening {
            Opening::Held => "held",
            Opening::Refused => "refused, then held,",
        };
        let closing = match self.closing {
            Closing::Released => "released",
            Closing::GatewayCrash => "the gateway crashed",
            Closing::RunEnd => "still held at the run's end",
        };
        format!(
            "{verb} on gateway {} from {} to {} ({closing}), attempt {}",
            self.gateway(),
            format_us(self.opened.at_us),
            format_us(self.closed_us),
            self.attempt
        )
    }
}

/// One write's pause in one migration: its holds, in the order they opened.
#[derive(Debug)]
pub(crate) struct WritePause<'a, 'h> {
    pub migration: &'a str,
    pub partition: u32,
    pub client: u32,
    pub seq: u64,
    pub holds: Vec<&'h Hold<'a>>,
    pub total_us: u64,
}

impl WritePause<'_, '_> {
    /// The hold during which the write's summed pause passed `budget_us`, and when it did; `None`
    /// while the write stayed within it.
    pub fn budget_passed(&self, budget_us: u64) -> Option<(&Hold<'_>, u64)> {
        let mut before_us = 0u64;
        for hold in &self.holds {
            let after_us = before_us + hold.duration_us();
            if after_us > budget_us {
                return Some((hold, hold.opened.at_us + (budget_us - before_us)));
            }
            before_us = after_us;
        }
        None
    }
}

/// One attempt's pause window: from its first hold's opening to its last hold's closing.
#[derive(Debug)]
pub(crate) struct Window<'a, 'h> {
    pub migration: &'a str,
    pub partition: u32,
    pub attempt: u32,
    /// The hold that opened first (the window's start).
    pub first: &'h Hold<'a>,
    /// The hold that closed last (the window's end).
    pub last: &'h Hold<'a>,
    pub holds: Vec<&'h Hold<'a>>,
}

impl Window<'_, '_> {
    pub fn duration_us(&self) -> u64 {
        self.last.closed_us.saturating_sub(self.first.opened.at_us)
    }

    pub fn writes(&self) -> usize {
        let mut writes: Vec<(u32, u64)> = self.holds.iter().map(|hold| (hold.client, hold.seq)).collect();
        writes.sort_unstable();
        writes.dedup();
        writes.len()
    }
}

/// Every hold of a run.
pub(crate) struct Pauses<'a> {
    pub holds: Vec<Hold<'a>>,
}

/// An open hold's key: the gateway, then the write.
type OpenKey<'a> = (Option<NodeId>, &'a str, u32, u32, u64);

impl<'a> Pauses<'a> {
    /// Reads every hold from `events`; holds still open at the end close at `run_end_us`.
    pub fn new(events: &'a [Event], run_end_us: u64) -> Pauses<'a> {
        let mut holds: Vec<Hold<'a>> = Vec::new();
        let mut open: BTreeMap<OpenKey<'a>, usize> = BTreeMap::new();
        for (index, event) in events.iter().enumerate() {
            let (migration, attempt, partition, client, seq, opening) = match &event.kind {
                EventKind::WriteHeld { migration, attempt, partition, client, seq } => {
                    (migration, attempt, partition, client, seq, Some(Opening::Held))
                }
                // A `moved` refusal is the forwarding stub redirecting a stale route after the
                // commit: one round trip to the new owner, not a pause.
                EventKind::WriteRefused { reason: WriteRefusal::Moved, .. } => continue,
                EventKind::WriteRefused {
                    migration,
                    attempt,
                    partition,
                    client,
                    seq,
                    reason: WriteRefusal::Fenced,
                } => (migration, attempt, partition, client, seq, Some(Opening::Refused)),
                EventKind::WriteReleased { migration, attempt, partition, client, seq } => {
                    (migration, attempt, partition, client, seq, None)
                }
                EventKind::NodeCrash => {
                    let crashed: Vec<OpenKey> = open.keys().filter(|key| key.0 == event.node).copied().collect();
                    for key in crashed {
                        let hold = &mut holds[open.remove(&key).expect("the key was just listed")];
                        hold.closing = Closing::GatewayCrash;
                        hold.closed_us = event.at_us;
                    }
                    continue;
                }
                _ => continue,
            };
            let key = (event.node, migration.as_str(), *partition, *client, *seq);
            match opening {
                Some(opening) => {
                    open.entry(key).or_insert_with(|| {
                        holds.push(Hold {
                            migration,
                            partition: *partition,
                            attempt: *attempt,
                            client: *client,
                            seq: *seq,
                            opening,
                            opened: At::of(index, event),
                            closing: Closing::RunEnd,
                            closed_us: run_end_us.max(event.at_us),
                        });
                        holds.len() - 1
                    });
                }
                None => {
                    if let Some(position) = open.remove(&key) {
                        holds[position].closing = Closing::Released;
                        holds[position].closed_us = event.at_us;
                    }
                }
            }
        }
        Pauses { holds }
    }

    /// Each write's pause, by migration, partition, client and seq.
    pub fn writes(&self) -> Vec<WritePause<'a, '_>> {
        let mut by_write: BTreeMap<(&str, u32, u32, u64), Vec<&Hold<'a>>> = BTreeMap::new();
        for hold in &self.holds {
            by_write.entry((hold.migration, hold.partition, hold.client, hold.seq)).or_default().push(hold);
        }
        by_write
            .into_iter()
            .map(|((migration, partition, client, seq), holds)| WritePause {
                migration,
                partition,
                client,
                seq,
                total_us: holds.iter().map(|hold| hold.duration_us()).sum(),
                holds,
            })
            .collect()
    }

    /// Each attempt's pause window, by migration, partition and attempt.
    pub fn windows(&self) -> Vec<Window<'a, '_>> {
        let mut by_attempt: BTreeMap<(&str, u32, u32), Vec<&Hold<'a>>> = BTreeMap::new();
        for hold in &self.holds {
            by_attempt.entry((hold.migration, hold.partition, hold.attempt)).or_default().push(hold);
        }
        by_attempt
            .into_iter()
            .map(|((migration, partition, attempt), holds)| {
                let first = holds.iter().copied().min_by_key(|hold| hold.opened.index).expect("holds is not empty");
                // The latest close; among equal closes, the hold opened last.
                let last =
                    holds.iter().copied().max_by_key(|hold| (hold.closed_us, hold.opened.index)).expect("not empty");
                Window { migration, partition, attempt, first, last, holds }
            })
            .collect()
    }
}
