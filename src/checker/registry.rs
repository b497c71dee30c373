//! The one list of checkers. Each is here once, with its name (the same in scenario files,
//! traces and reports), the systems it applies to, its kind, a description and its function;
//! `migsim list checkers`, scenario validation and the runner all read this list, and a checker
//! that is not built is not in it.
//!
//! It owns no checking logic: each entry points at a pure function of the run's facts and events.

use serde::Serialize;

use super::{Judgement, Violation};
use crate::trace::Event;
use crate::vocabulary::{AbortReason, SystemKind};

/// What kind of property a checker judges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckerKind {
    /// Must hold at every instant of the whole run, faults or not.
    Safety,
    /// Must come true once every fault has healed (in the liveness phase).
    Liveness,
    /// A quantity must stay within a stated bound.
    Bound,
}

impl CheckerKind {
    pub fn name(self) -> &'static str {
        match self {
            CheckerKind::Safety => "safety",
            CheckerKind::Liveness => "liveness",
            CheckerKind::Bound => "bound",
        }
    }
}

/// What a checker may know about a run besides its events: facts of the plan, never of the
/// simulation's internal state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunFacts {
    /// The world's node count.
    pub nodes: u32,
    /// The scenario's migrations, in `[[migrations]]` order.
    pub migrations: Vec<MigrationFacts>,
    /// When the run's liveness phase ends (model time): the bound of liveness checkers.
    pub end_us: u64,
}

/// One migration, as checkers need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationFacts {
    pub name: String,
    pub partitions: Vec<u32>,
    pub pause_budget_us: u64,
    /// `None`: the migration must end `done`; `Some(reason)`: it must end `aborted` with it.
    pub expect_aborted: Option<AbortReason>,
    /// An operator cancels it during the run: each move may also end `aborted (cancelled)`, and
    /// the operation too.
    pub cancellable: bool,
}

/// One checker.
pub struct Checker {
    pub name: &'static str,
    pub systems: &'static [SystemKind],
    pub kind: CheckerKind,
    pub description: &'static str,
    pub check: fn(&RunFacts, &[Event]) -> Judgement,
}

impl Checker {
    pub fn applies_to(&self, system: SystemKind) -> bool {
        self.systems.contains(&system)
    }
}

impl PartialEq for Checker {
    fn eq(&self, other: &Checker) -> bool {
        self.name == other.name
    }
}

impl Eq for Checker {}

impl std::fmt::Debug for Checker {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.name)
    }
}

impl std::fmt::Display for Checker {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.name)
    }
}

impl Serialize for Checker {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name)
    }
}

/// Every checker, in the order `migsim list checkers` prints them and a run applies them.
pub static CHECKERS: &[Checker] = &[
    Checker {
        name: "ping_liveness",
        systems: &[SystemKind::Ping],
        kind: CheckerKind::Liveness,
        description: "once faults heal, every node hears a fresh pong from every other node",
        check: |facts, events| super::ping_liveness(facts.nodes, events).into_iter().collect::<Vec<Violation>>().into(),
    },
    Checker {
        name: "linearizable",
        systems: &[SystemKind::Store],
        kind: CheckerKind::Safety,
        description: "every key's history is linearizable (operations that timed out are indeterminate)",
        check: |_, events| super::linearizable(events),
    },
    Checker {
        name: "no_lost_write",
        systems: &[SystemKind::Store],
        kind: CheckerKind::Safety,
        description: "every acknowledged write is visible, or legitimately overwritten, at the end",
        check: |_, events| super::no_lost_write(events),
    },
    Checker {
        name: "progress",
        systems: &[SystemKind::Store],
        kind: CheckerKind::Liveness,
        description: "once faults heal, clients complete operations on every partition they use, before the run ends",
        check: |_, events| super::progress(events),
    },
    Checker {
        name: "single_owner",
        systems: &[SystemKind::Store],
        kind: CheckerKind::Safety,
        description:
            "each owner epoch of a partition belongs to one group, and once a write is accepted under a later \
                      owner epoch, none is accepted under an earlier one",
        check: super::single_owner,
    },
    Checker {
        name: "pause_budget",
        systems: &[SystemKind::Store],
        kind: CheckerKind::Bound,
        description:
            "no write pauses, and no migration attempt's pause window lasts, longer than the migration's pause \
                      budget",
        check: super::pause_budget,
    },
    Checker {
        name: "migration_liveness",
        systems: &[SystemKind::Store],
        kind: CheckerKind::Liveness,
        description: "once faults heal, every migrating partition ends as the scenario expects (done, or aborted with \
                      its reason) before the run ends, and clients complete operations on it again",
        check: super::migration_liveness,
    },
    Checker {
        name: "cleanup",
        systems: &[SystemKind::Store],
        kind: CheckerKind::Safety,
        description: "at the end, a done move leaves its source absent and its target owning, an aborted one the \
                      reverse; no stub, fence or orphaned incoming copy anywhere",
        check: super::cleanup,
    },
];

/// The checker of this name.
pub fn find(name: &str) -> Option<&'static Checker> {
    CHECKERS.iter().find(|checker| checker.name == name)
}

/// The checkers that apply to `system`, which are also its default `expect.checkers`.
pub fn for_system(system: SystemKind) -> Vec<&'static Checker> {
    CHECKERS.iter().filter(|checker| checker.applies_to(system)).collect()
}

impl From<Vec<Violation>> for Judgement {
    fn from(violations: Vec<Violation>) -> Judgement {
        Judgement { violations, inconclusive: Vec::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case_and_every_system_has_a_checker() {
        for (index, checker) in CHECKERS.iter().enumerate() {
            assert!(checker.name.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{}", checker.name);
            assert!(CHECKERS[..index].iter().all(|other| other.name != checker.name), "{} twice", checker.name);
            assert!(!checker.systems.is_empty(), "{} applies to no system", checker.name);
        }
        for &system in SystemKind::ALL {
            assert!(!for_system(system).is_empty(), "{system} has no checker");
        }
    }
}
