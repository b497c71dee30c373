//! A storage node's side of a disk move (Apache Pegasus's replica disk migration): moving its
//! replica of one group from one of its disks to another while the group keeps serving.
//!
//! The states are Pegasus's: `idle` -> `moving` (the replica's files are copied to the destination
//! disk under a temporary mark while the replica keeps running) -> `moved` (the copy is durable and
//! read back equal to its source) -> `closed` (the replica is closed; the old copy is marked
//! `.ori`, then the destination's temporary mark goes: that removal is the switch) -> `learn` (the
//! replica reopens from the destination, as a fresh session, and learns what it missed from its
//! primary) -> `completed` (it is up to date; the old copy is deleted) -> `idle`.
//!
//! **Any failure before the switch reverts to `idle` with the old copy intact**: the destination's
//! copy is deleted and, if the replica was closed, it reopens from the old copy. After the switch
//! the move only goes forward: the reopened replica acknowledges entries from its new disk, so
//! the old copy is stale the moment it reopens; a disk error after the switch is the store's to
//! handle (the replica restarts from its disk, as after any disk error), and the deletion of the
//! old copy is retried until done. A crash is repaired at the next boot from the marks alone
//! (`storage::repair_disk_move`): a temporary mark means the switch never happened.
//!
//! Sans I/O: the driver (`node.rs`) performs each `DiskMoveStep` and reports how it went with a
//! `DiskMoveInput`; this core decides the next steps, the trace records and the reports to the
//! master. The primary is never moved: the node refuses while its replica is primary, and the
//! master demotes it first.

use super::messages::{DiskMoveReport, MigrationRef};
use crate::sut::store::GroupId;
use crate::trace::EventKind;
use crate::vocabulary::{AbortReason, DiskMoveState};

/// What the driver must do next, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskMoveStep {
    /// Mark the destination's copy temporary (durably), copy every file of the group there,
    /// fsync each, and read each back to compare with its source.
    Copy,
    /// Close the replica: it takes no more input, and nothing it queued is written or sent.
    Close,
    /// Mark the old copy `.ori` (durably), then remove the destination's temporary mark (durably):
    /// the switch.
    Switch,
    /// Reopen the replica from `disk`, as a fresh session.
    Reopen { disk: u32 },
    /// Wait until the reopened replica's primary brought it up to date (its session is verified).
    AwaitLearn,
    /// Delete the old copy, its `.ori` mark last.
    DeleteOld,
    /// Delete the destination's copy, its temporary mark last.
    DeleteNew,
    /// Remove the old copy's `.ori` mark, if the switch got that far.
    RestoreOld,
    /// Tell the master.
    Report(DiskMoveReport),
}

/// How the last step went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskMoveInput {
    Copied,
    Closed,
    Switched,
    Learned,
    Deleted,
    /// A step before the switch failed.
    Failed(AbortReason),
}

/// What one input asks of the driver.
#[derive(Debug, Default)]
pub struct DiskMoveEffects {
    pub steps: Vec<DiskMoveStep>,
    pub records: Vec<EventKind>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskMover {
    pub migration: MigrationRef,
    /// The migration's name, for trace records.
    pub name: String,
    pub group: GroupId,
    pub from_disk: u32,
    pub to_disk: u32,
    state: DiskMoveState,
}

impl DiskMover {
    /// A move from `from_disk` to `to_disk` begins: copy first.
    pub fn start(
        migration: MigrationRef,
        name: String,
        group: GroupId,
        from_disk: u32,
        to_disk: u32,
        out: &mut DiskMoveEffects,
    ) -> DiskMover {
        assert_ne!(from_disk, to_disk, "disk_move_changes_disk: group {group} is on disk {from_disk} already");
        let mut mover = DiskMover { migration, name, group, from_disk, to_disk, state: DiskMoveState::Idle };
        mover.enter(DiskMoveState::Moving, None, out);
        out.steps.push(DiskMoveStep::Copy);
        mover
    }

    /// A move a crash interrupted after its switch: the node booted from the destination disk,
    /// so it resumes at `learn` (the old copy is still to delete).
    pub fn resume_learning(
        migration: MigrationRef,
        name: String,
        group: GroupId,
        from_disk: u32,
        to_disk: u32,
        out: &mut DiskMoveEffects,
    ) -> DiskMover {
        let mut mover = DiskMover { migration, name, group, from_disk, to_disk, state: DiskMoveState::Closed };
        mover.enter(DiskMoveState::Learn, None, out);
        out.steps.push(DiskMoveStep::AwaitLearn);
        mover
    }

    pub fn state(&self) -> DiskMoveState {
        self.state
    }

    /// Whether the replica runs from the destination disk now (the switch happened).
    pub fn switched(&self) -> bool {
        matches!(self.state, DiskMoveState::Learn | DiskMoveState::Completed)
    }

    fn enter(&mut self, to: DiskMoveState, reason: Option<AbortReason>, out: &mut DiskMoveEffects) {
        out.records.push(EventKind::DiskMove {
            migration: self.name.clone(),
            attempt: self.migration.attempt,
            group: self.group,
            from_disk: self.from_disk,
            to_disk: self.to_disk,
            from: self.state,
            to,
            reason,
        });
        self.state = to;
        let report = match (to, reason) {
            (DiskMoveState::Idle, Some(reason)) => DiskMoveReport::Reverted(reason),
            (DiskMoveState::Idle, None) => DiskMoveReport::Completed,
            (state, _) => DiskMoveReport::Running(state),
        };
        out.steps.push(DiskMoveStep::Report(report));
    }

    /// The last step's outcome: the next steps.
    pub fn on(&mut self, input: DiskMoveInput, out: &mut DiskMoveEffects) {
        use DiskMoveState::{Closed, Completed, Idle, Learn, Moved, Moving};
        match (self.state, input) {
            (Moving, DiskMoveInput::Copied) => {
                self.enter(Moved, None, out);
                out.steps.push(DiskMoveStep::Close);
            }
            (Moved, DiskMoveInput::Closed) => {
                self.enter(Closed, None, out);
                out.steps.push(DiskMoveStep::Switch);
            }
            (Closed, DiskMoveInput::Switched) => {
                self.enter(Learn, None, out);
                out.steps.push(DiskMoveStep::Reopen { disk: self.to_disk });
                out.steps.push(DiskMoveStep::AwaitLearn);
            }
            (Learn, DiskMoveInput::Learned) => {
                self.enter(Completed, None, out);
                out.steps.push(DiskMoveStep::DeleteOld);
            }
            (Completed, DiskMoveInput::Deleted) => self.enter(Idle, None, out),
            (state @ (Moving | Moved | Closed), DiskMoveInput::Failed(reason)) => {
                // Back to `idle` with the old copy intact: the new one goes, and a closed replica
                // reopens from the old one.
                out.steps.push(DiskMoveStep::DeleteNew);
                if state == Closed {
                    out.steps.push(DiskMoveStep::RestoreOld);
                }
                if matches!(state, Moved | Closed) {
                    out.steps.push(DiskMoveStep::Reopen { disk: self.from_disk });
                }
                self.enter(Idle, Some(reason), out);
            }
            (state, input) => {
                panic!("disk_move_steps_in_order: {} group {} got {input:?} in state {state}", self.name, self.group)
            }
        }
    }

    /// Whether the move ended (completed, or reverted).
    pub fn ended(&self) -> bool {
        self.state == DiskMoveState::Idle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIGRATION: MigrationRef = MigrationRef { id: 2, attempt: 1 };

    fn started() -> (DiskMover, DiskMoveEffects) {
        let mut out = DiskMoveEffects::default();
        let mover = DiskMover::start(MIGRATION, "disk-1".into(), 3, 1, 0, &mut out);
        (mover, out)
    }

    fn steps(out: &DiskMoveEffects) -> Vec<DiskMoveStep> {
        out.steps.iter().copied().filter(|step| !matches!(step, DiskMoveStep::Report(_))).collect()
    }

    fn reports(out: &DiskMoveEffects) -> Vec<DiskMoveReport> {
        out.steps
            .iter()
            .filter_map(|step| match step {
                DiskMoveStep::Report(report) => Some(*report),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_move_copies_closes_switches_reopens_learns_and_deletes_the_old_copy() {
        let (mut mover, out) = started();
        assert_eq!(steps(&out), vec![DiskMoveStep::Copy]);
        assert_eq!(reports(&out), vec![DiskMoveReport::Running(DiskMoveState::Moving)]);
        let mut walk = |input, expect: Vec<DiskMoveStep>, state| {
            let mut out = DiskMoveEffects::default();
            mover.on(input, &mut out);
            assert_eq!(steps(&out), expect, "after {input:?}");
            assert_eq!(mover.state(), state);
            out
        };
        walk(DiskMoveInput::Copied, vec![DiskMoveStep::Close], DiskMoveState::Moved);
        walk(DiskMoveInput::Closed, vec![DiskMoveStep::Switch], DiskMoveState::Closed);
        walk(
            DiskMoveInput::Switched,
            vec![DiskMoveStep::Reopen { disk: 0 }, DiskMoveStep::AwaitLearn],
            DiskMoveState::Learn,
        );
        walk(DiskMoveInput::Learned, vec![DiskMoveStep::DeleteOld], DiskMoveState::Completed);
        let out = walk(DiskMoveInput::Deleted, vec![], DiskMoveState::Idle);
        assert_eq!(reports(&out), vec![DiskMoveReport::Completed]);
        let EventKind::DiskMove { from, to, reason, .. } = &out.records[0] else { panic!("{:?}", out.records) };
        assert_eq!((*from, *to, *reason), (DiskMoveState::Completed, DiskMoveState::Idle, None));
        assert!(mover.ended());
    }

    #[test]
    fn any_failure_before_the_switch_reverts_to_idle_with_the_old_copy() {
        let reason = AbortReason::DiskError;
        // Failing in `moving`: the replica never closed, so only the new copy goes.
        let (mut mover, _) = started();
        let mut out = DiskMoveEffects::default();
        mover.on(DiskMoveInput::Failed(reason), &mut out);
        assert_eq!(steps(&out), vec![DiskMoveStep::DeleteNew]);
        assert_eq!(reports(&out), vec![DiskMoveReport::Reverted(reason)]);
        assert!(mover.ended());
        // Failing in `closed` (the switch): the `.ori` mark goes, the replica reopens from disk 1.
        let (mut mover, _) = started();
        for input in [DiskMoveInput::Copied, DiskMoveInput::Closed] {
            mover.on(input, &mut DiskMoveEffects::default());
        }
        let mut out = DiskMoveEffects::default();
        mover.on(DiskMoveInput::Failed(AbortReason::CopyCorrupt), &mut out);
        assert_eq!(
            steps(&out),
            vec![DiskMoveStep::DeleteNew, DiskMoveStep::RestoreOld, DiskMoveStep::Reopen { disk: 1 }]
        );
        let EventKind::DiskMove { from, to, reason, .. } = &out.records[0] else { panic!("{:?}", out.records) };
        assert_eq!((*from, *to, *reason), (DiskMoveState::Closed, DiskMoveState::Idle, Some(AbortReason::CopyCorrupt)));
    }

    #[test]
    #[should_panic(expected = "disk_move_steps_in_order")]
    fn nothing_reverts_after_the_switch() {
        let (mut mover, _) = started();
        for input in [DiskMoveInput::Copied, DiskMoveInput::Closed, DiskMoveInput::Switched] {
            mover.on(input, &mut DiskMoveEffects::default());
        }
        mover.on(DiskMoveInput::Failed(AbortReason::DiskError), &mut DiskMoveEffects::default());
    }

    #[test]
    fn a_move_resumed_after_a_crash_past_the_switch_learns_then_deletes() {
        let mut out = DiskMoveEffects::default();
        let mut mover = DiskMover::resume_learning(MIGRATION, "disk-1".into(), 3, 1, 0, &mut out);
        assert_eq!(steps(&out), vec![DiskMoveStep::AwaitLearn]);
        assert!(mover.switched());
        let mut out = DiskMoveEffects::default();
        mover.on(DiskMoveInput::Learned, &mut out);
        assert_eq!(steps(&out), vec![DiskMoveStep::DeleteOld]);
    }
}
