//! Checkers: pure functions over a run's history and trace that return named violations. They
//! only watch; they never drive the simulation, and never read the world's state directly.

mod cleanup;
mod client_ops;
pub mod linearizability;
mod linearizable;
mod migration_liveness;
mod migration_report;
mod migration_trace;
mod no_lost_write;
mod pause_budget;
mod pauses;
mod ping_liveness;
mod progress;
pub mod registry;
mod single_owner;

pub use cleanup::cleanup;
pub use client_ops::kv_history;
pub use linearizable::{check_options as linearizable_check_options, linearizable};
pub use migration_liveness::migration_liveness;
pub use migration_report::{
    migration_reports, operation_reports, AttemptWindow, MigrationReport, MoveOutcome, OperationReport,
};
pub use no_lost_write::no_lost_write;
pub use pause_budget::pause_budget;
pub use ping_liveness::ping_liveness;
pub use progress::progress;
pub use registry::{Checker, CheckerKind, MigrationFacts, RunFacts, CHECKERS};
pub use single_owner::single_owner;

use serde::Serialize;

/// A named property that did not hold, with an explanation a person can act on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub checker: String,
    pub message: String,
}

/// What one checker concluded about one run: the violations it found, and the reasons it could
/// not decide (a bound hit, a fact it needs missing). A run with no violation but a reason is
/// inconclusive (exit code 3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Judgement {
    pub violations: Vec<Violation>,
    pub inconclusive: Vec<String>,
}

impl Judgement {
    /// A judgement of one violation.
    pub fn violation(checker: &str, message: impl Into<String>) -> Judgement {
        Judgement {
            violations: vec![Violation { checker: checker.to_string(), message: message.into() }],
            inconclusive: Vec::new(),
        }
    }

    pub fn merge(&mut self, other: Judgement) {
        self.violations.extend(other.violations);
        self.inconclusive.extend(other.inconclusive);
    }
}
