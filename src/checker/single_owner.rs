//! `single_owner`: at no instant do two groups own one partition. The trace shows ownership in
//! two ways: a primary's `write_accepted` (it applied a write under owner epoch `epoch`) and a
//! replica's `partition_state` with status `owned` or `fenced` under `owner_epoch`. Two rules:
//!
//! - each owner epoch of a partition belongs to one group: no two groups accept writes, or report
//!   the partition owned or fenced, under the same owner epoch;
//! - owner epochs never go back: once a write of the partition was accepted under a later epoch,
//!   no write is accepted under an earlier one.
//!
//! A new primary may re-apply, and so re-record, an entry its predecessor already recorded, so
//! accepts are deduplicated by (group, lsn), keeping the earliest, and ordered by that earliest
//! acceptance. A re-record that disagrees with the first (another partition or owner epoch at the
//! same place in the group's log) means a committed entry changed: that is a violation too.
//!
//! Owns these rules and their wording (one violation per partition and rule, the first offence in
//! full); must never read anything but the trace.

use std::collections::BTreeMap;

use super::migration_trace::{At, MigrationTrace};
use super::{Judgement, RunFacts, Violation};
use crate::trace::{Event, EventKind};
use crate::vocabulary::PartitionStatus;

const CHECKER: &str = "single_owner";

/// One write accepted by a group's primary: the first record of its (group, lsn).
#[derive(Clone, Copy, Debug)]
struct Accept {
    group: u32,
    partition: u32,
    epoch: u64,
    lsn: u64,
    at: At,
}

/// A group's claim to own a partition under an owner epoch.
#[derive(Clone, Copy, Debug)]
enum Claim {
    Accepted(Accept),
    Reported { group: u32, status: PartitionStatus, at: At },
}

impl Claim {
    fn group(&self) -> u32 {
        match self {
            Claim::Accepted(accept) => accept.group,
            Claim::Reported { group, .. } => *group,
        }
    }

    fn at(&self) -> At {
        match self {
            Claim::Accepted(accept) => accept.at,
            Claim::Reported { at, .. } => *at,
        }
    }
}

pub fn single_owner(facts: &RunFacts, events: &[Event]) -> Judgement {
    let trace = MigrationTrace::new(facts, events);
    let context = |partition: u32, at: At| trace.context(partition, at.index);
    let mut violations: Vec<String> = Vec::new();
    let mut accepts: Vec<Accept> = Vec::new();
    let mut first_of_entry: BTreeMap<(u32, u64), usize> = BTreeMap::new();
    // Per (partition, owner epoch): the first claim of each group, in the order they were made.
    let mut claims: BTreeMap<(u32, u64), Vec<Claim>> = BTreeMap::new();
    let mut claim = |partition: u32, epoch: u64, new: Claim| {
        let list = claims.entry((partition, epoch)).or_default();
        if list.iter().all(|old| old.group() != new.group()) {
            list.push(new);
        }
    };
    // Per group: re-records that disagree with the first record of their entry.
    let mut changed: BTreeMap<u32, Vec<(Accept, Accept)>> = BTreeMap::new();
    for (index, event) in events.iter().enumerate() {
        match &event.kind {
            EventKind::WriteAccepted { group, partition, epoch, lsn } => {
                let accept =
                    Accept { group: *group, partition: *partition, epoch: *epoch, lsn: *lsn, at: At::of(index, event) };
                match first_of_entry.get(&(*group, *lsn)) {
                    Some(&first) => {
                        let original = accepts[first];
                        if (original.partition, original.epoch) != (accept.partition, accept.epoch) {
                            changed.entry(*group).or_default().push((original, accept));
                        }
                    }
                    None => {
                        first_of_entry.insert((*group, *lsn), accepts.len());
                        accepts.push(accept);
                        claim(*partition, *epoch, Claim::Accepted(accept));
                    }
                }
            }
            EventKind::PartitionState { group, partition, status, owner_epoch, .. } => match status {
                PartitionStatus::Owned | PartitionStatus::Fenced => {
                    let at = At::of(index, event);
                    claim(*partition, *owner_epoch, Claim::Reported { group: *group, status: *status, at });
                }
                // An incoming copy, a stub and an absent partition claim no ownership.
                PartitionStatus::Incoming | PartitionStatus::Stub | PartitionStatus::Absent => {}
            },
            _ => {}
        }
    }
    for ((partition, epoch), list) in &claims {
        if list.len() < 2 {
            continue;
        }
        let described: Vec<String> = list
            .iter()
            .map(|claim| {
                let what = match claim {
                    Claim::Accepted(accept) => format!("accepted a write under it (lsn {})", accept.lsn),
                    Claim::Reported { status, .. } => format!("reported it {status} under it"),
                };
                let at = claim.at();
                format!("group {} {what} at {} ({})", claim.group(), at.describe(), context(*partition, at))
            })
            .collect();
        violations.push(format!(
            "partition {partition} owner epoch {epoch} belongs to {} groups: {}",
            list.len(),
            described.join("; then ")
        ));
    }
    // Owner epochs never go back, in the order writes were first accepted.
    let mut highest: BTreeMap<u32, Accept> = BTreeMap::new();
    let mut backwards: BTreeMap<u32, Vec<(Accept, Accept)>> = BTreeMap::new();
    for accept in &accepts {
        match highest.get(&accept.partition) {
            Some(high) if accept.epoch < high.epoch => {
                backwards.entry(accept.partition).or_default().push((*accept, *high));
            }
            Some(high) if accept.epoch == high.epoch => {}
            Some(_) | None => {
                highest.insert(accept.partition, *accept);
            }
        }
    }
    for (partition, list) in &backwards {
        let (late, high) = list[0];
        let mut message = format!(
            "partition {partition}: group {} accepted a write under owner epoch {} at {} (lsn {}; {}), after group {} \
             had accepted one under the later owner epoch {} at {} (lsn {}; {})",
            late.group,
            late.epoch,
            late.at.describe(),
            late.lsn,
            context(*partition, late.at),
            high.group,
            high.epoch,
            high.at.describe(),
            high.lsn,
            context(*partition, high.at)
        );
        if list.len() > 1 {
            let last = list[list.len() - 1].0;
            message.push_str(&format!(
                "\n  {} more writes of partition {partition} were accepted under an earlier owner epoch after a later \
                 one, the last by group {} under owner epoch {} at {}",
                list.len() - 1,
                last.group,
                last.epoch,
                last.at.describe()
            ));
        }
        violations.push(message);
    }
    for (group, list) in &changed {
        let (original, rerecord) = list[0];
        let mut message = format!(
            "group {group}'s log entry lsn {} was accepted as partition {} owner epoch {} at {}, then recorded again as \
             partition {} owner epoch {} at {} ({}): a committed entry changed",
            original.lsn,
            original.partition,
            original.epoch,
            original.at.describe(),
            rerecord.partition,
            rerecord.epoch,
            rerecord.at.describe(),
            context(rerecord.partition, rerecord.at)
        );
        if list.len() > 1 {
            message.push_str(&format!(
                "\n  {} more of group {group}'s entries were recorded again with other facts",
                list.len() - 1
            ));
        }
        violations.push(message);
    }
    violations.into_iter().map(|message| Violation { checker: CHECKER.into(), message }).collect::<Vec<_>>().into()
}
