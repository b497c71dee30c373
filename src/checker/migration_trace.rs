//! What a run's trace says about migrations, indexed once for the four migration checkers and the
//! migration report: each partition move's plan, phase changes and end, when the heal began and
//! when the run ended, and the words that place a moment of the run inside a migration
//! ("migration move-7 attempt 2, phase drain") so a reader can find it in `migsim repro` output.
//!
//! A *move* is one partition of one migration: a migration moves its partitions one after
//! another, each with its own attempts, plan and end. Moves are listed in the scenario's order
//! (`RunFacts.migrations`, then each one's partitions), then any the trace names that the facts
//! do not, in the order they first appear.
//!
//! Owns no rule: it reads events and words their context, and must never judge a run.

use std::collections::BTreeMap;

use super::registry::{MigrationFacts, RunFacts};
use crate::trace::{Event, EventKind};
use crate::units::format_us;
use crate::vocabulary::{AbortReason, MigrationPhase, NodeId};

/// Where and when an event was recorded: its position in the run's events, its model time, and
/// the node (with its incarnation) that recorded it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct At {
    pub index: usize,
    pub at_us: u64,
    pub node: Option<NodeId>,
    pub incarnation: u32,
}

impl At {
    pub fn of(index: usize, event: &Event) -> At {
        At { index, at_us: event.at_us, node: event.node, incarnation: event.incarnation }
    }

    /// `n3#1`, as `migsim repro` prints nodes, or `world`.
    pub fn node_name(&self) -> String {
        node_name(self.node, self.incarnation)
    }

    /// `1.2s on n3#1`.
    pub fn describe(&self) -> String {
        format!("{} on {}", format_us(self.at_us), self.node_name())
    }
}

/// A node as `migsim repro` prints it: `n3#1` (node 3, incarnation 1), or `world`.
pub(crate) fn node_name(node: Option<NodeId>, incarnation: u32) -> String {
    match node {
        Some(node) => format!("n{node}#{incarnation}"),
        None => "world".to_owned(),
    }
}

/// `1 attempt`, `3 attempts`.
pub(crate) fn attempts(count: u32) -> String {
    match count {
        1 => "1 attempt".to_owned(),
        count => format!("{count} attempts"),
    }
}

/// A `migration_plan` event.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Planned {
    pub source: u32,
    pub target: u32,
    pub pause_budget_us: u64,
    pub at: At,
}

/// A `phase` event.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PhaseChange {
    pub attempt: u32,
    pub from: MigrationPhase,
    pub to: MigrationPhase,
    pub reason: Option<AbortReason>,
    pub at: At,
}

/// A `migration_end` event.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ended {
    pub attempts: u32,
    pub outcome: MigrationPhase,
    pub reason: Option<AbortReason>,
    pub at: At,
}

impl Ended {
    /// `done` or `aborted (drain_over_budget)`.
    pub fn outcome_name(&self) -> String {
        outcome_name(self.outcome, self.reason)
    }
}

/// `done`, `aborted (drain_over_budget)`, `aborted (no reason)`.
pub(crate) fn outcome_name(outcome: MigrationPhase, reason: Option<AbortReason>) -> String {
    match (outcome, reason) {
        (MigrationPhase::Aborted, Some(reason)) => format!("aborted ({reason})"),
        (MigrationPhase::Aborted, None) => "aborted (no reason)".to_owned(),
        (outcome, Some(reason)) => format!("{outcome} ({reason})"),
        (outcome, None) => outcome.name().to_owned(),
    }
}

/// One partition of one migration, as the trace tells it.
#[derive(Debug)]
pub(crate) struct Move<'a> {
    pub migration: &'a str,
    pub partition: u32,
    /// The scenario's facts about the migration, when it names it.
    pub facts: Option<&'a MigrationFacts>,
    /// The first `migration_plan` of this move (a master that restarts may record it again).
    pub plan: Option<Planned>,
    pub phases: Vec<PhaseChange>,
    /// Every `migration_end` (there should be one).
    pub ends: Vec<Ended>,
}

impl Move<'_> {
    /// `migration move-7 partition 7`.
    pub fn name(&self) -> String {
        format!("migration {} partition {}", self.migration, self.partition)
    }

    /// When the move began: its plan, or its first phase change or end if the plan is missing.
    pub fn began(&self) -> Option<At> {
        let first_phase = self.phases.first().map(|change| change.at);
        let first_end = self.ends.first().map(|end| end.at);
        [self.plan.map(|plan| plan.at), first_phase, first_end].into_iter().flatten().min_by_key(|at| at.index)
    }

    /// A move its operation ended before it started (it gave up, or was cancelled, first): no
    /// plan, no phase, and an end after no attempt. Nothing of the partition moved.
    pub fn never_started(&self) -> bool {
        self.plan.is_none()
            && self.phases.is_empty()
            && self.ends.iter().all(|end| end.attempts == 0)
            && !self.ends.is_empty()
    }

    /// The move's end, if it ended.
    pub fn end(&self) -> Option<&Ended> {
        self.ends.first()
    }

    /// The highest attempt number the trace names for this move.
    pub fn attempts_started(&self) -> u32 {
        let from_phases = self.phases.iter().map(|change| change.attempt).max().unwrap_or(0);
        from_phases.max(self.end().map_or(0, |end| end.attempts))
    }

    /// The last phase change recorded at or before event `index`.
    pub fn last_change_by(&self, index: usize) -> Option<&PhaseChange> {
        self.phases.iter().take_while(|change| change.at.index <= index).last()
    }

    /// The phase `attempt` was in at model time `at_us` (`planned` before its first change), or
    /// `None` when the trace records no phase change of that attempt at all.
    pub fn attempt_phase_at(&self, attempt: u32, at_us: u64) -> Option<MigrationPhase> {
        let mut changes = self.phases.iter().filter(|change| change.attempt == attempt).peekable();
        changes.peek()?;
        Some(changes.take_while(|change| change.at.at_us <= at_us).last().map_or(MigrationPhase::Planned, |c| c.to))
    }

    /// Where the move stood at event `index`: `attempt 2, phase drain`, `planned, no attempt
    /// started`, or `ended done after 2 attempts`.
    pub fn state_at(&self, index: usize) -> String {
        if let Some(end) = self.end().filter(|end| end.at.index <= index) {
            return format!("ended {} after {}", end.outcome_name(), attempts(end.attempts));
        }
        match self.last_change_by(index) {
            Some(change) => format!("attempt {}, phase {}", change.attempt, change.to),
            None => "planned, no attempt started".to_owned(),
        }
    }
}

/// The moves of a run, with the heal and the run's end.
pub(crate) struct MigrationTrace<'a> {
    pub moves: Vec<Move<'a>>,
    by_key: BTreeMap<(&'a str, u32), usize>,
    /// The `heal_all` event: the start of the liveness phase.
    pub heal: Option<At>,
    /// The run's end: the later of the facts' `end_us` and the last event.
    pub run_end_us: u64,
}

impl<'a> MigrationTrace<'a> {
    pub fn new(facts: &'a RunFacts, events: &'a [Event]) -> MigrationTrace<'a> {
        let mut trace = MigrationTrace {
            moves: Vec::new(),
            by_key: BTreeMap::new(),
            heal: None,
            run_end_us: facts.end_us.max(events.last().map_or(0, |event| event.at_us)),
        };
        for migration in &facts.migrations {
            for &partition in &migration.partitions {
                trace.entry(facts, &migration.name, partition);
            }
        }
        for (index, event) in events.iter().enumerate() {
            let at = At::of(index, event);
            match &event.kind {
                EventKind::MigrationPlan { migration, partition, source, target, pause_budget_us } => {
                    let entry = trace.entry(facts, migration, *partition);
                    if entry.plan.is_none() {
                        entry.plan =
                            Some(Planned { source: *source, target: *target, pause_budget_us: *pause_budget_us, at });
                    }
                }
                EventKind::Phase { migration, attempt, partition, from, to, reason } => {
                    let change = PhaseChange { attempt: *attempt, from: *from, to: *to, reason: *reason, at };
                    trace.entry(facts, migration, *partition).phases.push(change);
                }
                EventKind::MigrationEnd { migration, partition, attempts, outcome, reason } => {
                    let end = Ended { attempts: *attempts, outcome: *outcome, reason: *reason, at };
                    trace.entry(facts, migration, *partition).ends.push(end);
                }
                EventKind::HealAll => {
                    trace.heal.get_or_insert(at);
                }
                _ => {}
            }
        }
        trace
    }

    fn entry(&mut self, facts: &'a RunFacts, migration: &'a str, partition: u32) -> &mut Move<'a> {
        let index = *self.by_key.entry((migration, partition)).or_insert_with(|| {
            self.moves.push(Move {
                migration,
                partition,
                facts: facts.migrations.iter().find(|candidate| candidate.name == migration),
                plan: None,
                phases: Vec::new(),
                ends: Vec::new(),
            });
            self.moves.len() - 1
        });
        &mut self.moves[index]
    }

    pub fn get(&self, migration: &str, partition: u32) -> Option<&Move<'a>> {
        self.by_key.get(&(migration, partition)).map(|&index| &self.moves[index])
    }

    /// The move of `partition` that began most recently at or before event `index`: the one a
    /// fact about the partition at that moment concerns.
    pub fn move_at(&self, partition: u32, index: usize) -> Option<&Move<'a>> {
        self.moves
            .iter()
            .filter(|candidate| candidate.partition == partition && !candidate.never_started())
            .filter_map(|candidate| {
                candidate.began().filter(|began| began.index <= index).map(|at| (at.index, candidate))
            })
            .max_by_key(|(began, _)| *began)
            .map(|(_, found)| found)
    }

    /// The latest move of `partition` in the whole run.
    pub fn last_move_of(&self, partition: u32) -> Option<&Move<'a>> {
        self.move_at(partition, usize::MAX)
    }

    /// Where `partition`'s migration stood at event `index`: `migration move-7 attempt 2, phase
    /// drain`, or `no migration of partition 7 had begun`.
    pub fn context(&self, partition: u32, index: usize) -> String {
        match self.move_at(partition, index) {
            Some(found) => format!("migration {} {}", found.migration, found.state_at(index)),
            None => format!("no migration of partition {partition} had begun"),
        }
    }
}
