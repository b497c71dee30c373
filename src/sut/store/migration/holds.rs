//! A gateway's holds: which partitions are frozen for a cut-over (and until when, by the gateway's
//! own clock), and where moved partitions went before the routing table says so. The gateway's
//! requests consult it before each attempt; every hold is bounded twice, by the freeze's own
//! window and by each write's remaining pause budget, so no source or master failure can stretch
//! a write's pause past its budget.
//!
//! Volatile: a gateway that restarts holds nothing, and its clients' writes go to the source,
//! which refuses them while fenced (a refusal starts a hold again).

use std::collections::BTreeMap;

use super::messages::MigrationRef;
use crate::sut::store::{GroupId, PartitionId};

/// One freeze of one partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Freeze {
    pub migration: MigrationRef,
    /// Holds end here whatever happens (gateway clock).
    pub until_us: u64,
    pub pause_budget_us: u64,
}

/// Whether `attempt` comes after `other` on one partition: a later attempt of the same migration,
/// or any attempt of another migration (migrations of one partition never overlap: the master
/// starts one only after the last ended, so the newer one is whichever is heard of now). Ids
/// are not ordered in time: a migration listed first may be planned last.
fn later(attempt: MigrationRef, other: MigrationRef) -> bool {
    attempt.id != other.id || attempt.attempt > other.attempt
}

#[derive(Clone, Debug, Default)]
pub struct Holds {
    frozen: BTreeMap<PartitionId, Freeze>,
    moved: BTreeMap<PartitionId, (GroupId, MigrationRef)>,
    /// The attempts already released here: a late freeze notice of one must not freeze again.
    released: BTreeMap<PartitionId, MigrationRef>,
    /// Each partition's latest attempt window, kept after its release: refusals of that attempt
    /// (a target still receiving the partition) hold writes only inside it.
    windows: BTreeMap<PartitionId, Freeze>,
    /// Planted bug `shared_hold_window`: one hold for every partition (Vitess's buffering once
    /// kept one window per keyspace, so overlapping cut-overs stalled all traffic to the longest).
    shared_window: bool,
}

impl Holds {
    pub fn with_shared_window(mut self, shared: bool) -> Holds {
        self.shared_window = shared;
        self
    }

    /// The source says: hold the partition's writes for at most `hold_us` from now.
    pub fn freeze(
        &mut self,
        partition: PartitionId,
        migration: MigrationRef,
        hold_us: u64,
        pause_budget_us: u64,
        now_us: u64,
    ) {
        if self.released.get(&partition).is_some_and(|released| !later(migration, *released)) {
            return;
        }
        let freeze = Freeze { migration, until_us: now_us + hold_us, pause_budget_us };
        if self.windows.get(&partition).is_none_or(|window| later(migration, window.migration)) {
            self.windows.insert(partition, freeze);
        }
        match self.frozen.get(&partition) {
            // A repeated notice (or a refusal) of the same attempt never extends its window.
            Some(current) if current.migration == migration => {}
            _ => {
                self.frozen.insert(partition, freeze);
            }
        }
    }

    /// The source says the attempt ended: committed (`moved_to`) or aborted.
    pub fn release(&mut self, partition: PartitionId, migration: MigrationRef, moved_to: Option<GroupId>) {
        if self.frozen.get(&partition).is_some_and(|freeze| !later(freeze.migration, migration)) {
            self.frozen.remove(&partition);
        }
        let newest = self.released.get(&partition).is_none_or(|released| later(migration, *released));
        if newest {
            self.released.insert(partition, migration);
        }
        if let Some(group) = moved_to {
            self.moved.insert(partition, (group, migration));
        }
    }

    /// The partition's freeze, if one holds now.
    pub fn frozen(&mut self, partition: PartitionId, now_us: u64) -> Option<Freeze> {
        if self.shared_window {
            // The bug: any open freeze holds every write, until the longest window ends.
            self.frozen.retain(|_, freeze| now_us < freeze.until_us);
            let longest = self.frozen.values().max_by_key(|freeze| freeze.until_us).copied();
            let own = self.frozen.get(&partition).copied();
            return own.map(|own| Freeze { until_us: longest.map_or(own.until_us, |l| l.until_us), ..own }).or(longest);
        }
        let freeze = *self.frozen.get(&partition)?;
        if now_us >= freeze.until_us {
            self.frozen.remove(&partition);
            return None;
        }
        Some(freeze)
    }

    /// The source's release says what is left of `migration`'s window (`hold_left_us` from now):
    /// a gateway that missed the attempt's freeze learns the window from it. A window already
    /// known (from the freeze notice or a refusal) is kept: it was learned earlier, so it is the
    /// more exact.
    pub fn learn_window(&mut self, partition: PartitionId, migration: MigrationRef, hold_left_us: u64, now_us: u64) {
        if self.windows.get(&partition).is_none_or(|window| later(migration, window.migration)) {
            self.windows.insert(partition, Freeze { migration, until_us: now_us + hold_left_us, pause_budget_us: 0 });
        }
    }

    /// Whether `migration`'s window, as the source told this gateway (freeze notice, refusal or
    /// release), is still open here at `now_us`. Outside it (also for an attempt this gateway never
    /// heard the window of, which can only be one already committed: it learned the new owner
    /// from a stub or the routing table), a target still receiving the partition is an owner not
    /// yet serving, as after any failover, and writes wait for it without being held for the
    /// migration.
    pub fn window_open(&self, partition: PartitionId, migration: MigrationRef, now_us: u64) -> bool {
        self.windows.get(&partition).is_some_and(|window| window.migration == migration && now_us < window.until_us)
    }

    /// Where the partition went, when a source said so before the routing table did.
    pub fn moved_to(&self, partition: PartitionId) -> Option<GroupId> {
        self.moved.get(&partition).map(|(group, _)| *group)
    }

    /// The routing table now names the partition's owner: forget the forwarding note.
    pub fn routed(&mut self, partition: PartitionId, group: GroupId) {
        if self.moved.get(&partition).is_some_and(|(moved, _)| *moved == group) {
            self.moved.remove(&partition);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRST: MigrationRef = MigrationRef { id: 0, attempt: 1 };
    const SECOND: MigrationRef = MigrationRef { id: 0, attempt: 2 };

    #[test]
    fn a_freeze_holds_until_its_window_ends_or_its_release() {
        let mut holds = Holds::default();
        holds.freeze(3, FIRST, 40, 50, 100);
        assert_eq!(holds.frozen(3, 139).map(|freeze| freeze.until_us), Some(140));
        assert_eq!(holds.frozen(3, 140), None, "the window bounds the hold whatever the source does");
        holds.freeze(3, SECOND, 40, 50, 200);
        holds.freeze(3, SECOND, 40, 50, 230);
        assert_eq!(holds.frozen(3, 210).map(|freeze| freeze.until_us), Some(240), "a repeated notice never extends it");
        holds.release(3, SECOND, Some(7));
        assert_eq!(holds.frozen(3, 210), None);
        assert_eq!(holds.moved_to(3), Some(7));
    }

    #[test]
    fn an_attempt_s_window_is_the_source_s_never_one_opened_late() {
        let mut holds = Holds::default();
        assert!(!holds.window_open(3, FIRST, 100), "a window nobody told of is closed");
        holds.freeze(3, FIRST, 40, 50, 100);
        assert!(holds.window_open(3, FIRST, 139));
        assert!(!holds.window_open(3, FIRST, 140));
        holds.learn_window(3, FIRST, 1_000, 130);
        assert!(!holds.window_open(3, FIRST, 140), "a release never extends a window learned earlier");
        // A gateway that missed the second freeze learns its window from the release.
        holds.learn_window(3, SECOND, 6, 200);
        assert!(holds.window_open(3, SECOND, 205));
        assert!(!holds.window_open(3, SECOND, 206));
        assert!(!holds.window_open(3, FIRST, 120), "an earlier attempt's window is gone");
    }

    #[test]
    fn a_freeze_holds_only_its_own_partition() {
        let mut holds = Holds::default();
        holds.freeze(3, FIRST, 40, 50, 100);
        holds.freeze(5, MigrationRef { id: 1, attempt: 1 }, 40, 50, 120);
        assert_eq!(holds.frozen(4, 130), None, "a partition nobody froze is never held");
        assert_eq!(holds.frozen(3, 130).map(|freeze| freeze.until_us), Some(140), "another freeze never stretches it");
        let mut shared = Holds::default().with_shared_window(true);
        shared.freeze(3, FIRST, 40, 50, 100);
        shared.freeze(5, MigrationRef { id: 1, attempt: 1 }, 40, 50, 120);
        assert!(shared.frozen(4, 130).is_some(), "the planted bug holds every partition");
        assert_eq!(shared.frozen(3, 130).map(|freeze| freeze.until_us), Some(160), "to the longest window");
    }

    #[test]
    fn a_late_notice_of_a_released_attempt_freezes_nothing() {
        let mut holds = Holds::default();
        holds.release(3, FIRST, None);
        holds.freeze(3, FIRST, 40, 50, 100);
        assert_eq!(holds.frozen(3, 101), None);
        holds.freeze(3, SECOND, 40, 50, 100);
        assert!(holds.frozen(3, 101).is_some(), "a later attempt freezes again");
    }
}
