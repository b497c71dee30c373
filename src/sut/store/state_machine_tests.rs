//! The state machine's rules, entry by entry: ownership, deduplication, fences, the handoff and
//! the stub it leaves, and a target's incoming copy applying the source's entries to the same
//! state.

use super::*;
use crate::vocabulary::AbortReason;

const P: PartitionId = 3;

fn entry(lsn: u64, kind: EntryKind) -> Entry {
    Entry { epoch: 1, lsn, partition: Some(P), kind }
}

fn write(lsn: u64, client: u32, seq: u64, op: Op) -> Entry {
    entry(lsn, EntryKind::Write { op_id: OpId { client, seq }, op })
}

fn own(lsn: u64) -> Entry {
    entry(lsn, EntryKind::Own { owner_epoch: 1 })
}

fn put(key: &str, value: &str) -> Op {
    Op::Put { key: key.into(), value: value.into() }
}

fn append(key: &str, value: &str) -> Op {
    Op::Append { key: key.into(), value: value.into() }
}

const MOVE: MigrationRef = MigrationRef { id: 0, attempt: 1 };

fn cancel(lsn: u64, client: u32, seq: u64) -> Entry {
    entry(lsn, EntryKind::Cancel { op_id: OpId { client, seq } })
}

fn fence(lsn: u64) -> Entry {
    entry(lsn, EntryKind::Fence { migration: MOVE, lease_us: 10_000 })
}

#[test]
fn writes_to_a_partition_the_group_does_not_own_are_refused() {
    let mut machine = StateMachine::new(false);
    assert_eq!(machine.apply(&write(1, 1, 1, put("k", "a;"))), Some(WriteOutcome::Refused(Refusal::NotOwner)));
    machine.apply(&own(2));
    assert_eq!(
        machine.apply(&write(3, 1, 1, put("k", "a;"))),
        Some(WriteOutcome::Applied { result: OpResult::Done, owner_epoch: 1 })
    );
    assert_eq!(machine.read(P, "k"), Ok(Some("a;".into())));
    assert_eq!(machine.read(4, "k"), Err(Refusal::NotOwner));
}

#[test]
fn a_retried_write_is_applied_once_and_answered_with_its_first_result() {
    let mut machine = StateMachine::new(false);
    machine.apply(&own(1));
    machine.apply(&write(2, 7, 1, append("k", "a;")));
    assert_eq!(
        machine.apply(&write(3, 7, 1, append("k", "a;"))),
        Some(WriteOutcome::Duplicate { result: OpResult::Done })
    );
    assert_eq!(machine.read(P, "k"), Ok(Some("a;".into())));
    machine.apply(&write(4, 7, 2, append("k", "b;")));
    assert_eq!(machine.apply(&write(5, 7, 1, append("k", "a;"))), Some(WriteOutcome::Refused(Refusal::Stale)));
    assert_eq!(machine.read(P, "k"), Ok(Some("a;b;".into())));
}

#[test]
fn skip_dedup_applies_a_retry_twice() {
    let mut machine = StateMachine::new(true);
    machine.apply(&own(1));
    machine.apply(&write(2, 7, 1, append("k", "a;")));
    machine.apply(&write(3, 7, 1, append("k", "a;")));
    assert_eq!(machine.read(P, "k"), Ok(Some("a;a;".into())));
}

#[test]
fn cas_compares_with_the_current_value() {
    let mut machine = StateMachine::new(false);
    machine.apply(&own(1));
    let cas = |expected: Option<&str>, new: &str| Op::Cas {
        key: "k".into(),
        expected: expected.map(str::to_string),
        new: new.into(),
    };
    assert_eq!(
        machine.apply(&write(2, 1, 1, cas(None, "a;"))),
        Some(WriteOutcome::Applied { result: OpResult::Cas(true), owner_epoch: 1 })
    );
    assert_eq!(
        machine.apply(&write(3, 1, 2, cas(None, "b;"))),
        Some(WriteOutcome::Applied { result: OpResult::Cas(false), owner_epoch: 1 })
    );
    assert_eq!(
        machine.apply(&write(4, 1, 3, cas(Some("a;"), "c;"))),
        Some(WriteOutcome::Applied { result: OpResult::Cas(true), owner_epoch: 1 })
    );
    assert_eq!(machine.read(P, "k"), Ok(Some("c;".into())));
}

#[test]
fn a_fence_stops_writes_but_not_reads_until_its_attempt_aborts() {
    let mut machine = StateMachine::new(false);
    machine.apply(&own(1));
    machine.apply(&write(2, 1, 1, put("k", "a;")));
    machine.apply(&fence(3));
    assert_eq!(machine.apply(&write(4, 1, 2, put("k", "b;"))), Some(WriteOutcome::Refused(Refusal::Fenced(MOVE))));
    assert_eq!(machine.read(P, "k"), Ok(Some("a;".into())));
    // An unfence of another attempt changes nothing; the fence's own lifts it.
    machine.apply(&entry(
        5,
        EntryKind::Unfence { migration: MigrationRef { id: 0, attempt: 2 }, reason: AbortReason::DrainOverBudget },
    ));
    assert!(machine.is_fenced(P));
    machine.apply(&entry(6, EntryKind::Unfence { migration: MOVE, reason: AbortReason::DrainOverBudget }));
    assert!(matches!(machine.apply(&write(7, 1, 2, put("k", "b;"))), Some(WriteOutcome::Applied { .. })));
    assert_eq!(machine.outcomes(P), &[(MOVE, AttemptOutcome::Aborted(AbortReason::DrainOverBudget))]);
}

#[test]
fn a_handoff_leaves_a_stub_that_answers_moved_until_cleanup() {
    let mut machine = StateMachine::new(false);
    machine.apply(&own(1));
    machine.apply(&write(2, 1, 1, put("k", "a;")));
    machine.apply(&fence(3));
    let digest = machine.digest(P).unwrap();
    machine.apply(&entry(4, EntryKind::Handoff { migration: MOVE, to_group: 2, owner_epoch: 2, digest }));
    let moved = Refusal::Moved { to: 2, migration: MOVE };
    assert_eq!(machine.read(P, "k"), Err(moved));
    assert_eq!(machine.apply(&write(5, 1, 2, put("k", "b;"))), Some(WriteOutcome::Refused(moved)));
    // An unfence after the handoff is a loser of the race and changes nothing.
    machine.apply(&entry(6, EntryKind::Unfence { migration: MOVE, reason: AbortReason::DrainOverBudget }));
    assert_eq!(machine.outcomes(P), &[(MOVE, AttemptOutcome::Committed)]);
    machine.apply(&entry(7, EntryKind::Purge { migration: MOVE }));
    assert_eq!((machine.status(P), machine.key_count()), (PartitionStatus::Stub, 0));
    machine.apply(&entry(8, EntryKind::Unstub { migration: MOVE }));
    assert_eq!(machine.status(P), PartitionStatus::Absent);
    assert!(machine.ever_held(P), "a retired partition is never claimed again");
    assert_eq!(machine.read(P, "k"), Err(Refusal::NotOwner));
}

#[test]
#[should_panic(expected = "handoff_follows_its_fence")]
fn a_handoff_without_its_fence_is_a_bug() {
    let mut machine = StateMachine::new(false);
    machine.apply(&own(1));
    machine.apply(&entry(2, EntryKind::Handoff { migration: MOVE, to_group: 2, owner_epoch: 2, digest: 0 }));
}

/// A source with some history, and the entries it ships after its snapshot at LSN 3.
fn source_and_shipment() -> (StateMachine, PartitionSnapshot, Vec<ShippedEntry>) {
    let mut source = StateMachine::new(false);
    source.apply(&own(1));
    source.apply(&write(2, 1, 1, put("a", "1;")));
    source.apply(&write(3, 2, 1, append("b", "x;")));
    let snapshot = source.snapshot(P).unwrap();
    let later = [
        write(5, 1, 2, append("a", "2;")),
        write(6, 2, 1, append("b", "x;")), // a retry: a duplicate at the source, and so at the target
        cancel(7, 4, 1),                   // a gateway's cancellation: the op's fate travels with the partition
        fence(8),
        write(9, 3, 1, put("c", "late;")), // refused at the source by the fence, and so at the target
    ];
    let mut shipped = Vec::new();
    let mut prev = 3;
    for item in &later {
        source.apply(item);
        let kind = match &item.kind {
            EntryKind::Write { op_id, op } => ShippedKind::Write { op_id: *op_id, op: op.clone() },
            EntryKind::Fence { .. } => ShippedKind::Fence,
            EntryKind::Cancel { op_id } => ShippedKind::Cancel { op_id: *op_id },
            other => unreachable!("{other:?}"),
        };
        shipped.push(ShippedEntry { source_lsn: item.lsn, prev_source_lsn: prev, kind });
        prev = item.lsn;
    }
    let digest = source.digest(P).unwrap();
    source.apply(&entry(10, EntryKind::Handoff { migration: MOVE, to_group: 2, owner_epoch: 2, digest }));
    shipped.push(ShippedEntry {
        source_lsn: 10,
        prev_source_lsn: 9,
        kind: ShippedKind::Handoff { owner_epoch: 2, digest },
    });
    (source, snapshot, shipped)
}

fn begin(target: &mut StateMachine, snapshot: &PartitionSnapshot, chunk_bytes: usize) -> Vec<SnapshotChunk> {
    let chunks = chunks_of(&snapshot.data, chunk_bytes);
    target.apply(&entry(
        1,
        EntryKind::IncomingBegin {
            migration: MOVE,
            stream: 9,
            source_group: 1,
            base_lsn: 3,
            owner_epoch: 1,
            chunks: chunks.len() as u32,
            dedup: snapshot.dedup.iter().map(|(client, entry)| (*client, entry.clone())).collect(),
            handoff: None,
        },
    ));
    chunks
}

#[test]
fn the_target_copy_applies_the_source_entries_to_the_same_state() {
    let (source, snapshot, shipped) = source_and_shipment();
    let mut target = StateMachine::new(false);
    let chunks = begin(&mut target, &snapshot, 1);
    assert_eq!(chunks.len(), 2, "one key per chunk at a one-byte chunk size");
    assert_eq!(target.status(P), PartitionStatus::Incoming);
    assert!(matches!(
        target.apply(&write(2, 5, 1, put("a", "no;"))),
        Some(WriteOutcome::Refused(Refusal::Incoming(MOVE)))
    ));
    for (index, chunk) in chunks.into_iter().enumerate() {
        target.apply(&entry(2 + index as u64, EntryKind::IncomingChunk { migration: MOVE, stream: 9, chunk }));
    }
    for (index, item) in shipped.into_iter().enumerate() {
        target.apply(&entry(10 + index as u64, EntryKind::IncomingEntry { migration: MOVE, stream: 9, entry: item }));
    }
    assert_eq!(target.owner_epoch(P), Some(2));
    assert_eq!(target.read(P, "a"), Ok(Some("1;2;".into())));
    assert_eq!(target.read(P, "b"), Ok(Some("x;".into())));
    assert_eq!(target.read(P, "c"), Ok(None));
    assert_eq!(target.digest(P), source.digest(P));
    assert!(matches!(
        target.apply(&write(20, 5, 1, put("a", "3;"))),
        Some(WriteOutcome::Applied { owner_epoch: 2, .. })
    ));
    // The op cancelled at the source stays cancelled at the new owner.
    assert_eq!(target.apply(&write(21, 4, 1, put("d", "no;"))), Some(WriteOutcome::Refused(Refusal::Cancelled)));
    assert_eq!(target.read(P, "d"), Ok(None));
}

#[test]
#[should_panic(expected = "target_never_appends_past_a_gap")]
fn the_target_copy_never_applies_past_a_gap() {
    let (_, snapshot, shipped) = source_and_shipment();
    let mut target = StateMachine::new(false);
    for (index, chunk) in begin(&mut target, &snapshot, 1 << 20).into_iter().enumerate() {
        target.apply(&entry(2 + index as u64, EntryKind::IncomingChunk { migration: MOVE, stream: 9, chunk }));
    }
    target.apply(&entry(10, EntryKind::IncomingEntry { migration: MOVE, stream: 9, entry: shipped[1].clone() }));
}

#[test]
#[should_panic(expected = "target_copy_matches_source")]
fn a_handoff_onto_a_copy_that_differs_is_a_bug() {
    let (_, snapshot, shipped) = source_and_shipment();
    let mut target = StateMachine::new(false);
    for (index, chunk) in begin(&mut target, &snapshot, 1 << 20).into_iter().enumerate() {
        target.apply(&entry(2 + index as u64, EntryKind::IncomingChunk { migration: MOVE, stream: 9, chunk }));
    }
    // The copy misses the write at source LSN 5 (its entry rewritten to carry nothing).
    let mut shipped = shipped;
    shipped[0].kind = ShippedKind::Unfence;
    for (index, item) in shipped.into_iter().enumerate() {
        target.apply(&entry(10 + index as u64, EntryKind::IncomingEntry { migration: MOVE, stream: 9, entry: item }));
    }
}

#[test]
fn a_dropped_copy_is_gone_and_a_new_attempt_starts_over() {
    let (_, snapshot, _) = source_and_shipment();
    let mut target = StateMachine::new(false);
    begin(&mut target, &snapshot, 1 << 20);
    target.apply(&entry(5, EntryKind::IncomingDrop { migration: MOVE }));
    assert_eq!(target.status(P), PartitionStatus::Absent);
    begin(&mut target, &snapshot, 1 << 20);
    assert_eq!(target.status(P), PartitionStatus::Incoming);
    // A drop of an earlier attempt leaves a later attempt's copy alone.
    let later = MigrationRef { id: 0, attempt: 2 };
    target.apply(&entry(
        6,
        EntryKind::IncomingBegin {
            migration: later,
            stream: 10,
            source_group: 1,
            base_lsn: 3,
            owner_epoch: 1,
            chunks: 1,
            dedup: Vec::new(),
            handoff: None,
        },
    ));
    target.apply(&entry(7, EntryKind::IncomingDrop { migration: MOVE }));
    assert_eq!(target.incoming(P).map(|incoming| incoming.migration), Some(later));
}

#[test]
fn holdings_that_change_are_reported() {
    let mut machine = StateMachine::new(false);
    machine.apply(&own(1));
    machine.apply(&write(2, 1, 1, put("k", "a;")));
    machine.apply(&fence(3));
    let statuses: Vec<PartitionStatus> = machine.take_changes().iter().map(|change| change.status).collect();
    assert_eq!(statuses, vec![PartitionStatus::Owned, PartitionStatus::Fenced]);
    assert!(machine.take_changes().is_empty());
}

#[test]
fn a_cancelled_operation_is_refused_to_every_later_copy() {
    let mut machine = StateMachine::new(false);
    machine.apply(&own(1));
    assert_eq!(machine.apply(&cancel(2, 7, 1)), Some(WriteOutcome::Refused(Refusal::Cancelled)));
    // A copy of an attempt logged after the cancellation: refused, not applied.
    assert_eq!(machine.precheck(P, OpId { client: 7, seq: 1 }), Err(WriteOutcome::Refused(Refusal::Cancelled)));
    assert_eq!(machine.apply(&write(3, 7, 1, append("k", "a;"))), Some(WriteOutcome::Refused(Refusal::Cancelled)));
    assert_eq!(machine.read(P, "k"), Ok(None));
    // A second cancellation gets the same answer; the client's next op is unaffected.
    assert_eq!(machine.apply(&cancel(4, 7, 1)), Some(WriteOutcome::Refused(Refusal::Cancelled)));
    assert!(matches!(machine.apply(&write(5, 7, 2, append("k", "b;"))), Some(WriteOutcome::Applied { .. })));
    // After it, the cancelled op is stale: still never applied.
    assert_eq!(machine.apply(&write(6, 7, 1, append("k", "a;"))), Some(WriteOutcome::Refused(Refusal::Stale)));
    assert_eq!(machine.read(P, "k"), Ok(Some("b;".into())));
}

#[test]
fn a_cancellation_after_the_write_applied_answers_its_result() {
    let mut machine = StateMachine::new(false);
    machine.apply(&own(1));
    machine.apply(&write(2, 7, 1, put("k", "a;")));
    assert_eq!(machine.apply(&cancel(3, 7, 1)), Some(WriteOutcome::Duplicate { result: OpResult::Done }));
    assert_eq!(machine.read(P, "k"), Ok(Some("a;".into())));
}

#[test]
fn a_fence_stops_a_cancellation_and_a_moved_partition_sends_it_on() {
    let mut machine = StateMachine::new(false);
    machine.apply(&own(1));
    machine.apply(&cancel(2, 9, 3));
    machine.apply(&fence(3));
    assert_eq!(
        machine.apply(&cancel(4, 9, 4)),
        Some(WriteOutcome::Refused(Refusal::Fenced(MOVE))),
        "nothing but the decision follows a fence"
    );
    // A settled op's answer needs no log entry: it is given through the fence.
    assert_eq!(machine.precheck_cancel(P, OpId { client: 9, seq: 3 }), Err(WriteOutcome::Refused(Refusal::Cancelled)));
    let digest = machine.digest(P).unwrap();
    machine.apply(&entry(4, EntryKind::Handoff { migration: MOVE, to_group: 2, owner_epoch: 2, digest }));
    assert_eq!(
        machine.precheck_cancel(P, OpId { client: 9, seq: 5 }),
        Err(WriteOutcome::Refused(Refusal::Moved { to: 2, migration: MOVE }))
    );
}
