//! `progress`: once every fault has healed, clients get work done. For every partition on which
//! clients invoked an operation at or after the heal (`heal_all`), at least one such operation
//! completed `ok` before the run ended; and if clients invoked anything before the heal, they
//! invoke something after it too. The bound is the liveness phase itself (the scenario's `heal`):
//! a store that converges, but only after the run, did not converge.
//!
//! Without it, a store that answers nothing passes every safety checker: with `op_timeout = 1ms`
//! no operation succeeds and every history is trivially linearizable and loses nothing.
//!
//! Owns the wording of its violation; reads only `heal_all`, `op_invoke` and `op_complete`.

use std::collections::{BTreeMap, BTreeSet};

use super::Judgement;
use crate::trace::{Event, EventKind, Outcome};
use crate::units::format_us;

const CHECKER: &str = "progress";
/// How many stalled partitions the message names.
const SHOWN: usize = 8;

pub fn progress(events: &[Event]) -> Judgement {
    let Some(heal_at_us) =
        events.iter().find(|event| matches!(event.kind, EventKind::HealAll)).map(|event| event.at_us)
    else {
        return Judgement::violation(CHECKER, "the run never reached its liveness phase (no heal_all event)");
    };
    let end_us = events.last().map_or(heal_at_us, |event| event.at_us);
    // Operations invoked after the heal, by id, with their partition.
    let mut after: BTreeMap<u64, u32> = BTreeMap::new();
    let mut invoked_before = 0usize;
    // Per partition: operations invoked after the heal, and the first `ok` completion among them.
    let mut tried: BTreeMap<u32, usize> = BTreeMap::new();
    let mut first_ok: BTreeMap<u32, u64> = BTreeMap::new();
    let mut outcomes: BTreeMap<u32, BTreeSet<&'static str>> = BTreeMap::new();
    for event in events {
        match &event.kind {
            EventKind::OpInvoke { op, partition, .. } if event.at_us >= heal_at_us => {
                after.insert(*op, *partition);
                *tried.entry(*partition).or_default() += 1;
            }
            EventKind::OpInvoke { .. } => invoked_before += 1,
            EventKind::OpComplete { op, outcome, .. } => {
                let Some(&partition) = after.get(op) else { continue };
                match outcome {
                    Outcome::Ok => {
                        first_ok.entry(partition).or_insert(event.at_us);
                    }
                    Outcome::Fail => {
                        outcomes.entry(partition).or_default().insert("fail");
                    }
                    Outcome::Info => {
                        outcomes.entry(partition).or_default().insert("info");
                    }
                }
            }
            _ => {}
        }
    }
    if tried.is_empty() {
        if invoked_before == 0 {
            return Judgement::default();
        }
        return Judgement::violation(
            CHECKER,
            format!(
                "clients invoked {invoked_before} operations before faults healed at {} and none after: \
                 the workload stopped, so nothing shows the store recovered",
                format_us(heal_at_us)
            ),
        );
    }
    let stalled: Vec<u32> = tried.keys().copied().filter(|partition| !first_ok.contains_key(partition)).collect();
    if stalled.is_empty() {
        return Judgement::default();
    }
    let shown: Vec<String> = stalled
        .iter()
        .take(SHOWN)
        .map(|partition| {
            let endings = outcomes
                .get(partition)
                .map_or("none returned".to_string(), |set| set.iter().copied().collect::<Vec<_>>().join(" or "));
            format!("partition {partition} ({} operations, each ended {endings})", tried[partition])
        })
        .collect();
    Judgement::violation(
        CHECKER,
        format!(
            "{} of {} partitions clients used after faults healed at {} completed no operation by the run's end at {}: {}{}",
            stalled.len(),
            tried.len(),
            format_us(heal_at_us),
            format_us(end_us),
            shown.join("; "),
            if stalled.len() > SHOWN { "; ..." } else { "" }
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::OpFunction;

    fn event(at_us: u64, kind: EventKind) -> Event {
        Event { seq: 0, at_us, node: Some(9), incarnation: 0, kind, summary: String::new() }
    }

    fn invoke(at_us: u64, op: u64, partition: u32) -> Event {
        let kind = EventKind::OpInvoke {
            op,
            client: 0,
            key: format!("k{partition}"),
            partition,
            f: OpFunction::Get,
            value: serde_json::Value::Null,
        };
        event(at_us, kind)
    }

    fn complete(at_us: u64, op: u64, partition: u32, outcome: Outcome) -> Event {
        let kind = EventKind::OpComplete {
            op,
            client: 0,
            key: format!("k{partition}"),
            partition,
            f: OpFunction::Get,
            value: serde_json::Value::Null,
            outcome,
            result: serde_json::Value::Null,
        };
        event(at_us, kind)
    }

    #[test]
    fn every_partition_used_after_the_heal_must_complete_an_operation() {
        let events = vec![
            invoke(10, 1, 0),
            complete(20, 1, 0, Outcome::Ok),
            event(100, EventKind::HealAll),
            invoke(110, 2, 0),
            complete(120, 2, 0, Outcome::Info),
            invoke(130, 3, 0),
            complete(140, 3, 0, Outcome::Ok),
            invoke(150, 4, 5),
            complete(160, 4, 5, Outcome::Info),
            invoke(170, 5, 5),
            complete(180, 5, 5, Outcome::Fail),
        ];
        let judgement = progress(&events);
        assert_eq!(judgement.violations.len(), 1, "{judgement:?}");
        let message = &judgement.violations[0].message;
        assert!(message.contains("1 of 2 partitions"), "{message}");
        assert!(message.contains("partition 5 (2 operations, each ended fail or info)"), "{message}");
        assert!(progress(&events[..7]).violations.is_empty(), "partition 0 recovered");
    }

    #[test]
    fn an_ok_from_before_the_heal_does_not_count() {
        let events = vec![invoke(90, 1, 3), event(100, EventKind::HealAll), complete(110, 1, 3, Outcome::Ok)];
        let judgement = progress(&events);
        assert!(judgement.violations[0].message.contains("none after"), "{judgement:?}");
        let events = vec![invoke(90, 1, 3), complete(95, 1, 3, Outcome::Ok), event(100, EventKind::HealAll)];
        let judgement = progress(&events);
        assert!(judgement.violations[0].message.contains("none after"), "{judgement:?}");
    }

    #[test]
    fn a_run_without_a_heal_is_a_violation() {
        assert_eq!(progress(&[invoke(1, 1, 0)]).violations.len(), 1);
    }
}
