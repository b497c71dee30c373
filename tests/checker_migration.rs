//! The four migration checkers (`single_owner`, `pause_budget`, `migration_liveness`, `cleanup`)
//! and the migration report, on hand-told histories. Each story is told once with a knob; the
//! failing setting must be blamed with the facts a reader needs to find it in `migsim repro`
//! output (migration, attempt, partition, phase, node, model time), and the passing setting must
//! pass: the checker blames that fact and nothing else.
//!
//! The cluster of every story: partition 7 moves in migration `move-7` from group 0 (replicas on
//! nodes 0, 1, 2) to group 3 (nodes 3, 4, 5); gateways are nodes 6 and 7, the master node 8, the
//! clients node 9. The budget is 50ms. Times are model microseconds.

use migsim::checker::registry::{self, CheckerKind};
use migsim::checker::{
    cleanup, migration_liveness, migration_reports, pause_budget, single_owner, AttemptWindow, Judgement,
    MigrationFacts, MoveOutcome, RunFacts,
};
use migsim::trace::{Event, EventKind, OpFunction, Outcome, WriteRefusal};
use migsim::vocabulary::{AbortReason, MigrationPhase, PartitionStatus, SystemKind};
use serde_json::Value;

const MIGRATION: &str = "move-7";
const PARTITION: u32 = 7;
const SOURCE: u32 = 0;
const TARGET: u32 = 3;
const SOURCE_NODES: [u32; 3] = [0, 1, 2];
const TARGET_NODES: [u32; 3] = [3, 4, 5];
const GATEWAY: u32 = 6;
const OTHER_GATEWAY: u32 = 7;
const MASTER: u32 = 8;
const CLIENTS: u32 = 9;
const BUDGET_US: u64 = 50_000;
const RUN_END_US: u64 = 10_000_000;
const HEAL_US: u64 = 8_000_000;

/// A run's events, told one at a time; `events()` orders them by time (stably: events told at
/// the same instant keep the order they were told in).
#[derive(Default)]
struct Story {
    events: Vec<(u64, Option<u32>, u32, EventKind)>,
    incarnations: std::collections::BTreeMap<u32, u32>,
    next_op: u64,
}

impl Story {
    fn new() -> Story {
        Story::default()
    }

    fn record(&mut self, at_us: u64, node: Option<u32>, kind: EventKind) -> &mut Story {
        let incarnation = node.map_or(0, |node| self.incarnations.get(&node).copied().unwrap_or(0));
        self.events.push((at_us, node, incarnation, kind));
        self
    }

    fn events(&self) -> Vec<Event> {
        let mut timed: Vec<&(u64, Option<u32>, u32, EventKind)> = self.events.iter().collect();
        timed.sort_by_key(|(at_us, ..)| *at_us);
        timed
            .into_iter()
            .enumerate()
            .map(|(seq, (at_us, node, incarnation, kind))| Event {
                seq: seq as u64,
                at_us: *at_us,
                node: *node,
                incarnation: *incarnation,
                kind: kind.clone(),
                summary: String::new(),
            })
            .collect()
    }

    // ---- the world ----

    fn boot(&mut self, at_us: u64, node: u32) -> &mut Story {
        self.record(at_us, Some(node), EventKind::NodeStart)
    }

    fn crash(&mut self, at_us: u64, node: u32) -> &mut Story {
        self.record(at_us, Some(node), EventKind::NodeCrash)
    }

    /// The machine is swapped: a crash, a new incarnation, a boot.
    fn replace(&mut self, at_us: u64, node: u32) -> &mut Story {
        self.crash(at_us, node);
        let incarnation = self.incarnations.entry(node).or_default();
        *incarnation += 1;
        let new_incarnation = *incarnation;
        self.record(at_us, Some(node), EventKind::PeerReplace { new_incarnation });
        self.boot(at_us, node)
    }

    fn heal(&mut self, at_us: u64) -> &mut Story {
        self.record(at_us, None, EventKind::HealAll)
    }

    // ---- the store ----

    /// The master's views of both groups, and every replica's boot report: group 0 owns
    /// partition 7 under owner epoch 1.
    fn cluster(&mut self) -> &mut Story {
        for node in SOURCE_NODES.iter().chain(&TARGET_NODES).chain(&[GATEWAY, OTHER_GATEWAY, MASTER, CLIENTS]) {
            self.boot(0, *node);
        }
        for node in SOURCE_NODES {
            self.state(1, node, SOURCE, PartitionStatus::Owned, 1);
        }
        self.view(2, SOURCE, &SOURCE_NODES);
        self.view(2, TARGET, &TARGET_NODES)
    }

    fn view(&mut self, at_us: u64, group: u32, members: &[u32]) -> &mut Story {
        let kind = EventKind::View { group, epoch: 1, primary: members[0], session: 1, members: members.to_vec() };
        self.record(at_us, Some(MASTER), kind)
    }

    fn accept(&mut self, at_us: u64, node: u32, group: u32, epoch: u64, lsn: u64) -> &mut Story {
        self.record(at_us, Some(node), EventKind::WriteAccepted { group, partition: PARTITION, epoch, lsn })
    }

    fn state(&mut self, at_us: u64, node: u32, group: u32, status: PartitionStatus, owner_epoch: u64) -> &mut Story {
        let keys = match status {
            PartitionStatus::Absent | PartitionStatus::Stub => 0,
            PartitionStatus::Owned | PartitionStatus::Fenced | PartitionStatus::Incoming => 12,
        };
        self.state_with_keys(at_us, node, group, status, owner_epoch, keys)
    }

    fn state_with_keys(
        &mut self,
        at_us: u64,
        node: u32,
        group: u32,
        status: PartitionStatus,
        owner_epoch: u64,
        keys: u32,
    ) -> &mut Story {
        let kind = EventKind::PartitionState { group, partition: PARTITION, status, owner_epoch, keys };
        self.record(at_us, Some(node), kind)
    }

    /// Every replica of `group` reports `status` at `at_us`.
    fn group_state(&mut self, at_us: u64, group: u32, status: PartitionStatus, owner_epoch: u64) -> &mut Story {
        let nodes = if group == SOURCE { SOURCE_NODES } else { TARGET_NODES };
        for node in nodes {
            self.state(at_us, node, group, status, owner_epoch);
        }
        self
    }

    // ---- the migration ----

    /// The master plans the operation (one move) and its move, as it records them.
    fn plan(&mut self, at_us: u64) -> &mut Story {
        let operation = EventKind::OperationPlan {
            migration: MIGRATION.into(),
            operation: "move".into(),
            moves: vec![(PARTITION, SOURCE, TARGET)],
            max_concurrent: 1,
        };
        self.record(at_us, Some(MASTER), operation);
        let kind = EventKind::MigrationPlan {
            migration: MIGRATION.into(),
            partition: PARTITION,
            source: SOURCE,
            target: TARGET,
            pause_budget_us: BUDGET_US,
        };
        self.record(at_us, Some(MASTER), kind)
    }

    fn plan_with_budget(&mut self, at_us: u64, pause_budget_us: u64) -> &mut Story {
        let kind = EventKind::MigrationPlan {
            migration: MIGRATION.into(),
            partition: PARTITION,
            source: SOURCE,
            target: TARGET,
            pause_budget_us,
        };
        self.record(at_us, Some(MASTER), kind)
    }

    fn phase(&mut self, at_us: u64, attempt: u32, from: MigrationPhase, to: MigrationPhase) -> &mut Story {
        let node = match (from, to) {
            (MigrationPhase::Planned, _) | (MigrationPhase::Commit, _) | (MigrationPhase::Cleanup, _) => MASTER,
            _ => SOURCE_NODES[0],
        };
        let kind =
            EventKind::Phase { migration: MIGRATION.into(), attempt, partition: PARTITION, from, to, reason: None };
        self.record(at_us, Some(node), kind)
    }

    fn abort(&mut self, at_us: u64, attempt: u32, from: MigrationPhase, reason: AbortReason) -> &mut Story {
        let kind = EventKind::Phase {
            migration: MIGRATION.into(),
            attempt,
            partition: PARTITION,
            from,
            to: MigrationPhase::Aborted,
            reason: Some(reason),
        };
        self.record(at_us, Some(SOURCE_NODES[0]), kind)
    }

    /// Attempt `attempt` from its start through `phases`, one phase change per step of
    /// `step_us`, from `start_us`. Returns the time of the last change.
    fn attempt(&mut self, start_us: u64, step_us: u64, attempt: u32, phases: &[MigrationPhase]) -> u64 {
        let mut at_us = start_us;
        let mut from = MigrationPhase::Planned;
        for &to in phases {
            self.phase(at_us, attempt, from, to);
            from = to;
            at_us += step_us;
        }
        at_us - step_us
    }

    /// The move ends, and with it the operation (one move), as the master records them.
    fn end(&mut self, at_us: u64, attempts: u32, outcome: MigrationPhase, reason: Option<AbortReason>) -> &mut Story {
        let kind =
            EventKind::MigrationEnd { migration: MIGRATION.into(), partition: PARTITION, attempts, outcome, reason };
        self.record(at_us, Some(MASTER), kind);
        let moved = u32::from(outcome == MigrationPhase::Done);
        let operation = EventKind::OperationEnd { migration: MIGRATION.into(), moved, total: 1, outcome, reason };
        self.record(at_us, Some(MASTER), operation)
    }

    // ---- gateways ----

    fn held(&mut self, at_us: u64, gateway: u32, attempt: u32, client: u32, seq: u64) -> &mut Story {
        let kind = EventKind::WriteHeld { migration: MIGRATION.into(), attempt, partition: PARTITION, client, seq };
        self.record(at_us, Some(gateway), kind)
    }

    fn released(&mut self, at_us: u64, gateway: u32, attempt: u32, client: u32, seq: u64) -> &mut Story {
        let kind = EventKind::WriteReleased { migration: MIGRATION.into(), attempt, partition: PARTITION, client, seq };
        self.record(at_us, Some(gateway), kind)
    }

    fn refused(&mut self, at_us: u64, gateway: u32, attempt: u32, client: u32, seq: u64) -> &mut Story {
        let kind = EventKind::WriteRefused {
            migration: MIGRATION.into(),
            attempt,
            partition: PARTITION,
            client,
            seq,
            reason: WriteRefusal::Fenced,
        };
        self.record(at_us, Some(gateway), kind)
    }

    /// Gateway `gateway` holds client `client`'s write `seq` from `from_us` to `to_us`.
    fn hold(&mut self, gateway: u32, attempt: u32, client: u32, seq: u64, from_us: u64, to_us: u64) -> &mut Story {
        self.held(from_us, gateway, attempt, client, seq);
        self.released(to_us, gateway, attempt, client, seq)
    }

    // ---- clients ----

    /// A get on partition 7, invoked at `called_us` and ending at `ended_us` with `outcome`.
    fn get(&mut self, called_us: u64, ended_us: u64, outcome: Outcome) -> &mut Story {
        let op = self.next_op;
        self.next_op += 1;
        let invoke = EventKind::OpInvoke {
            op,
            client: 1,
            key: "k7".into(),
            partition: PARTITION,
            f: OpFunction::Get,
            value: Value::Null,
        };
        self.record(called_us, Some(CLIENTS), invoke);
        let complete = EventKind::OpComplete {
            op,
            client: 1,
            key: "k7".into(),
            partition: PARTITION,
            f: OpFunction::Get,
            value: Value::Null,
            outcome,
            result: Value::Null,
        };
        self.record(ended_us, Some(CLIENTS), complete)
    }
}

use MigrationPhase::{Aborted, CatchUp, Cleanup, Commit, Done, Drain, Freeze, Snapshot};

/// The phases of an attempt that commits: snapshot through done.
const COMMITTING: [MigrationPhase; 7] = [Snapshot, CatchUp, Freeze, Drain, Commit, Cleanup, Done];

/// The scenario's facts: `move-7` moves partition 7 within 50ms, expected to end `expect`.
fn facts(expect: Option<AbortReason>) -> RunFacts {
    RunFacts {
        nodes: 10,
        migrations: vec![MigrationFacts {
            name: MIGRATION.into(),
            partitions: vec![PARTITION],
            pause_budget_us: BUDGET_US,
            expect_aborted: expect,
            cancellable: false,
        }],
        end_us: RUN_END_US,
    }
}

fn passes(judgement: &Judgement) -> bool {
    judgement.violations.is_empty() && judgement.inconclusive.is_empty()
}

fn assert_passes(judgement: &Judgement) {
    assert!(passes(judgement), "expected a pass: {judgement:#?}");
}

/// Every violation's message, each from `checker`, with nothing inconclusive.
fn violations(judgement: &Judgement, checker: &str) -> Vec<String> {
    assert!(judgement.inconclusive.is_empty(), "unexpected inconclusive: {:?}", judgement.inconclusive);
    assert!(judgement.violations.iter().all(|violation| violation.checker == checker), "{judgement:#?}");
    judgement.violations.iter().map(|violation| violation.message.clone()).collect()
}

/// The one violation's message.
fn violation(judgement: &Judgement, checker: &str) -> String {
    assert!(judgement.inconclusive.is_empty(), "unexpected inconclusive: {:?}", judgement.inconclusive);
    assert_eq!(judgement.violations.len(), 1, "expected one violation: {judgement:#?}");
    assert_eq!(judgement.violations[0].checker, checker);
    judgement.violations[0].message.clone()
}

fn assert_mentions(message: &str, needles: &[&str]) {
    for needle in needles {
        assert!(message.contains(needle), "{needle:?} missing from:\n{message}");
    }
}

// ---- the registry ----

#[test]
fn the_four_migration_checkers_are_registered_for_the_store() {
    for (name, kind) in [
        ("single_owner", CheckerKind::Safety),
        ("pause_budget", CheckerKind::Bound),
        ("migration_liveness", CheckerKind::Liveness),
        ("cleanup", CheckerKind::Safety),
    ] {
        let checker = registry::find(name).unwrap_or_else(|| panic!("{name} is not registered"));
        assert_eq!(checker.kind, kind, "{name}");
        assert_eq!(checker.systems, &[SystemKind::Store], "{name}");
        assert!(registry::for_system(SystemKind::Store).contains(&checker), "{name}");
        assert!(!registry::for_system(SystemKind::Ping).contains(&checker), "{name}");
    }
}

#[test]
fn a_run_without_migrations_passes_every_migration_checker() {
    let mut story = Story::new();
    story.cluster().accept(100, 0, SOURCE, 1, 1).heal(HEAL_US).get(HEAL_US + 1, HEAL_US + 2, Outcome::Ok);
    let events = story.events();
    let no_migrations = RunFacts { nodes: 10, migrations: Vec::new(), end_us: RUN_END_US };
    for checker in registry::for_system(SystemKind::Store) {
        if ["single_owner", "pause_budget", "migration_liveness", "cleanup"].contains(&checker.name) {
            assert_passes(&(checker.check)(&no_migrations, &events));
        }
    }
}

// ---- single_owner ----

/// Group 0 accepts writes under owner epoch 1; the move commits at 1.5s and group 3 accepts
/// writes under `target_epoch` from 1.6s.
fn handoff(target_epoch: u64) -> Story {
    let mut story = Story::new();
    story.cluster().plan(1_000_000);
    story.attempt(1_100_000, 100_000, 1, &COMMITTING);
    story.accept(1_000_000, 0, SOURCE, 1, 40).accept(1_200_000, 0, SOURCE, 1, 41);
    story.group_state(1_550_000, TARGET, PartitionStatus::Owned, target_epoch);
    story.accept(1_600_000, 3, TARGET, target_epoch, 9).accept(1_650_000, 3, TARGET, target_epoch, 10);
    story
}

#[test]
fn single_owner_passes_a_handoff_to_a_new_owner_epoch() {
    assert_passes(&single_owner(&facts(None), &handoff(2).events()));
}

#[test]
fn single_owner_two_groups_accepting_under_one_owner_epoch_is_a_violation() {
    let judgement = single_owner(&facts(None), &handoff(1).events());
    let message = violation(&judgement, "single_owner");
    assert_mentions(
        &message,
        &[
            "partition 7 owner epoch 1 belongs to 2 groups",
            "group 0 reported it owned under it at 1us on n0#0 (no migration of partition 7 had begun)",
            "then group 3 reported it owned under it at 1.55s on n3#0 (migration move-7 attempt 1, phase commit)",
        ],
    );
    // Without the target's report, its first write is its claim.
    let mut events = handoff(1).events();
    events.retain(|event| !matches!(event.kind, EventKind::PartitionState { group: TARGET, .. }));
    let message = violation(&single_owner(&facts(None), &events), "single_owner");
    assert_mentions(
        &message,
        &["then group 3 accepted a write under it (lsn 9) at 1.6s on n3#0 (migration move-7 attempt 1, phase \
             cleanup)"],
    );
}

#[test]
fn single_owner_a_claim_without_writes_still_counts() {
    // The target reports the partition owned under the source's epoch, and accepts nothing.
    let story = |epoch: u64| {
        let mut story = Story::new();
        story.cluster().plan(1_000_000).accept(1_000_000, 0, SOURCE, 1, 40);
        story.attempt(1_100_000, 100_000, 1, &[Snapshot, CatchUp, Freeze, Drain, Commit]);
        story.state(1_550_000, 4, TARGET, PartitionStatus::Owned, epoch);
        story.events()
    };
    let message = violation(&single_owner(&facts(None), &story(1)), "single_owner");
    assert_mentions(
        &message,
        &[
            "partition 7 owner epoch 1 belongs to 2 groups",
            "group 3 reported it owned under it at 1.55s on n4#0 (migration move-7 attempt 1, phase commit)",
        ],
    );
    assert_passes(&single_owner(&facts(None), &story(2)));
}

/// After group 3 accepts under epoch 2 at 1.6s, a stale primary of group 0 on node 1 records an
/// accept under epoch 1 at `stale_at_us`, of log position `stale_lsn`.
fn stale_accept(stale_at_us: u64, stale_lsn: u64) -> Vec<Event> {
    let mut story = handoff(2);
    story.accept(stale_at_us, 1, SOURCE, 1, stale_lsn);
    story.events()
}

#[test]
fn single_owner_an_owner_epoch_going_back_is_a_violation() {
    let message = violation(&single_owner(&facts(None), &stale_accept(1_700_000, 42)), "single_owner");
    assert_mentions(
        &message,
        &[
            "partition 7: group 0 accepted a write under owner epoch 1 at 1.7s on n1#0 (lsn 42; migration move-7 \
             attempt 1, phase done)",
            "after group 3 had accepted one under the later owner epoch 2 at 1.6s on n3#0 (lsn 9; migration move-7 \
             attempt 1, phase cleanup)",
        ],
    );
    // The same write, accepted before the target's first: legal.
    assert_passes(&single_owner(&facts(None), &stale_accept(1_590_000, 42)));
}

#[test]
fn single_owner_a_re_recorded_accept_counts_from_its_first_record() {
    // A new primary of group 0 re-applies lsn 41, which its predecessor recorded at 1.2s, before
    // the handoff: not a write under an old epoch after a new one.
    assert_passes(&single_owner(&facts(None), &stale_accept(1_700_000, 41)));
    // A re-record that disagrees with the first is a committed entry that changed.
    let mut story = handoff(2);
    story.record(
        1_700_000,
        Some(1),
        EventKind::WriteAccepted { group: SOURCE, partition: PARTITION, epoch: 2, lsn: 41 },
    );
    let judgement = single_owner(&facts(None), &story.events());
    let messages: Vec<&str> = judgement.violations.iter().map(|violation| violation.message.as_str()).collect();
    assert!(
        messages.iter().any(|message| {
            message.contains(
            "group 0's log entry lsn 41 was accepted as partition 7 owner epoch 1 at 1.2s on n0#0, then recorded again \
             as partition 7 owner epoch 2 at 1.7s on n1#0"
        )
        }),
        "{judgement:#?}"
    );
}

// ---- pause_budget ----

/// The move's attempt 1 freezes at 1.2s, drains from 1.25s, commits at 1.3s.
fn frozen() -> Story {
    let mut story = Story::new();
    story.cluster().plan(1_000_000);
    story.phase(1_100_000, 1, MigrationPhase::Planned, Snapshot);
    story.phase(1_150_000, 1, Snapshot, CatchUp);
    story.phase(1_200_000, 1, CatchUp, Freeze);
    story.phase(1_250_000, 1, Freeze, Drain);
    story.phase(1_300_000, 1, Drain, Commit);
    story
}

#[test]
fn pause_budget_a_write_held_past_the_budget_is_a_violation() {
    let story = |held_us: u64| {
        let mut story = frozen();
        story.hold(GATEWAY, 1, 3, 17, 1_200_000, 1_200_000 + held_us);
        story.events()
    };
    // One write is the whole window, so the window passes the budget with it.
    let messages = violations(&pause_budget(&facts(None), &story(60_000)), "pause_budget");
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert_mentions(
        &messages[0],
        &[
            "migration move-7 partition 7 attempt 1: client 3's write 17 paused 60ms, past the 50ms budget",
            "the budget ran out at 1.25s (phase drain), while gateway n6#0 held it",
            "held on gateway n6#0 from 1.2s to 1.26s (released), attempt 1",
        ],
    );
    assert_mentions(&messages[1], &["attempt 1: the attempt's pause window lasted 60ms"]);
    // Exactly the budget is within it.
    assert_passes(&pause_budget(&facts(None), &story(50_000)));
}

#[test]
fn pause_budget_a_write_held_for_another_partition_s_cut_over_is_a_violation() {
    // Vitess once held every write while any shard cut over: a hold of partition 9's write for
    // move-7, which moves partition 7 only, stalled traffic nobody was moving.
    let story = |partition: u32| {
        let mut story = frozen();
        let held = EventKind::WriteHeld { migration: MIGRATION.into(), attempt: 1, partition, client: 3, seq: 17 };
        let released =
            EventKind::WriteReleased { migration: MIGRATION.into(), attempt: 1, partition, client: 3, seq: 17 };
        story.record(1_200_000, Some(GATEWAY), held).record(1_210_000, Some(GATEWAY), released);
        story.events()
    };
    let message = violation(&pause_budget(&facts(None), &story(9)), "pause_budget");
    assert_mentions(
        &message,
        &[
            "migration move-7 never moved partition 9, yet 1 of its writes were held for it",
            "client 3's write 17 held on gateway n6#0 from 1.2s to 1.21s (released), attempt 1",
            "a cut-over holds only its own partition's writes",
        ],
    );
    assert_passes(&pause_budget(&facts(None), &story(PARTITION)));
}

#[test]
fn pause_budget_a_write_pause_sums_its_holds_over_attempts() {
    let story = |second_hold_us: u64| {
        let mut story = Story::new();
        story.cluster().plan(1_000_000);
        story.attempt(1_100_000, 50_000, 1, &[Snapshot, CatchUp, Freeze]);
        story.hold(GATEWAY, 1, 3, 17, 1_200_000, 1_230_000);
        story.abort(1_240_000, 1, Freeze, AbortReason::DrainOverBudget);
        story.attempt(2_000_000, 10_000, 2, &[Snapshot, CatchUp, Freeze, Drain]);
        story.hold(OTHER_GATEWAY, 2, 3, 17, 2_020_000, 2_020_000 + second_hold_us);
        story.events()
    };
    let message = violation(&pause_budget(&facts(None), &story(30_000)), "pause_budget");
    assert_mentions(
        &message,
        &[
            "migration move-7 partition 7 attempt 2: client 3's write 17 paused 60ms",
            "the budget ran out at 2.04s (phase drain), while gateway n7#0 held it",
            "held on gateway n6#0 from 1.2s to 1.23s (released), attempt 1; held on gateway n7#0 from 2.02s to 2.05s",
        ],
    );
    assert_passes(&pause_budget(&facts(None), &story(20_000)));
}

#[test]
fn pause_budget_an_attempt_window_past_the_budget_is_a_violation_though_each_write_is_within() {
    // Two writes, each held 40ms; the window runs from the first hold to the last release.
    let story = |second_from_us: u64| {
        let mut story = frozen();
        story.hold(GATEWAY, 1, 3, 17, 1_200_000, 1_240_000);
        story.hold(OTHER_GATEWAY, 1, 4, 2, second_from_us, second_from_us + 40_000);
        story.events()
    };
    let message = violation(&pause_budget(&facts(None), &story(1_230_000)), "pause_budget");
    assert_mentions(
        &message,
        &[
            "migration move-7 partition 7 attempt 1: the attempt's pause window lasted 70ms, past the 50ms budget",
            "it opened at 1.2s when gateway n6#0 held client 3's write 17 (phase freeze)",
            "the budget ran out at 1.25s (phase drain)",
            "it closed at 1.27s when gateway n7#0 released client 4's write 2 (phase drain)",
            "2 writes held in it, the longest hold 40ms",
        ],
    );
    assert_passes(&pause_budget(&facts(None), &story(1_210_000)));
}

#[test]
fn pause_budget_a_hold_ends_at_its_gateways_crash_or_at_the_runs_end() {
    // Gateway 6 holds the write from 1.2s and crashes at `crash_at_us`, or never.
    let story = |crash_at_us: Option<u64>| {
        let mut story = frozen();
        story.held(1_200_000, GATEWAY, 1, 3, 17);
        if let Some(at_us) = crash_at_us {
            story.crash(at_us, GATEWAY).boot(at_us + 1_000, GATEWAY);
        }
        // The other gateway's crash closes nothing of gateway 6's.
        story.crash(1_210_000, OTHER_GATEWAY);
        story.events()
    };
    assert_passes(&pause_budget(&facts(None), &story(Some(1_240_000))));
    let judgement = pause_budget(&facts(None), &story(Some(1_280_000)));
    assert_eq!(judgement.violations.len(), 2, "the write and the window: {judgement:#?}");
    assert_mentions(
        &judgement.violations[0].message,
        &["client 3's write 17 paused 80ms", "held on gateway n6#0 from 1.2s to 1.28s (the gateway crashed)"],
    );
    assert_mentions(
        &judgement.violations[1].message,
        &["it closed at 1.28s when gateway n6#0 crashed holding client 3's write 17"],
    );
    let judgement = pause_budget(&facts(None), &story(None));
    assert_eq!(judgement.violations.len(), 2, "{judgement:#?}");
    assert_mentions(
        &judgement.violations[0].message,
        &["paused 8.8s", "from 1.2s to 10s (still held at the run's end)"],
    );
    assert_mentions(
        &judgement.violations[1].message,
        &["was still open at the run's end, 10s: gateway n6#0 still held client 3's write 17"],
    );
}

#[test]
fn pause_budget_a_refused_write_is_paused_from_its_refusal() {
    // The source refuses the write at 1.2s; the gateway records holding it at `held_at_us`.
    let story = |refused: bool| {
        let mut story = frozen();
        if refused {
            story.refused(1_200_000, GATEWAY, 1, 3, 17);
        }
        story.hold(GATEWAY, 1, 3, 17, 1_230_000, 1_260_000);
        story.events()
    };
    let judgement = pause_budget(&facts(None), &story(true));
    assert_eq!(judgement.violations.len(), 2, "{judgement:#?}");
    assert_mentions(
        &judgement.violations[0].message,
        &["client 3's write 17 paused 60ms", "refused, then held, on gateway n6#0 from 1.2s to 1.26s (released)"],
    );
    assert_mentions(
        &judgement.violations[1].message,
        &["it opened at 1.2s when the source refused client 3's write 17 at gateway n6#0"],
    );
    assert_passes(&pause_budget(&facts(None), &story(false)));
}

#[test]
fn pause_budget_the_scenarios_budget_wins_over_the_planned_one() {
    let story = |plan_budget_us: u64| {
        let mut story = Story::new();
        story.cluster().plan_with_budget(1_000_000, plan_budget_us);
        story.attempt(1_100_000, 50_000, 1, &[Snapshot, CatchUp, Freeze, Drain]);
        story.hold(GATEWAY, 1, 3, 17, 1_200_000, 1_300_000);
        story.events()
    };
    // The master planned a generous budget; the scenario's 50ms judges.
    let judgement = pause_budget(&facts(None), &story(500_000));
    assert_eq!(judgement.violations.len(), 2, "{judgement:#?}");
    assert_mentions(&judgement.violations[0].message, &["paused 100ms, past the 50ms budget"]);
    // A migration the scenario does not name is judged by its planned budget.
    let unnamed = RunFacts { nodes: 10, migrations: Vec::new(), end_us: RUN_END_US };
    assert_passes(&pause_budget(&unnamed, &story(500_000)));
    assert_eq!(pause_budget(&unnamed, &story(80_000)).violations.len(), 2);
    // With neither, the pause cannot be judged.
    let mut story = frozen();
    story.events.retain(|(_, _, _, kind)| !matches!(kind, EventKind::MigrationPlan { .. }));
    story.hold(GATEWAY, 1, 3, 17, 1_200_000, 1_300_000);
    let judgement = pause_budget(&unnamed, &story.events());
    assert!(judgement.violations.is_empty(), "{judgement:#?}");
    assert_mentions(&judgement.inconclusive.join("\n"), &["migration move-7 held writes, but its budget is unknown"]);
}

// ---- migration_liveness ----

/// The move commits in one attempt and ends `done` at 2s (or never, or otherwise); faults heal
/// at 8s; clients then get partition 7 with `after_end`.
fn finished(end: Option<(MigrationPhase, Option<AbortReason>)>, after_end: &[Outcome]) -> Vec<Event> {
    let mut story = Story::new();
    story.cluster().plan(1_000_000);
    match end {
        Some((Done, None)) => {
            story.attempt(1_100_000, 100_000, 1, &COMMITTING);
            story.end(2_000_000, 1, Done, None);
        }
        Some((outcome, reason)) => {
            story.attempt(1_100_000, 100_000, 1, &[Snapshot, CatchUp]);
            story.abort(1_500_000, 1, CatchUp, reason.unwrap_or(AbortReason::AttemptTimeout));
            story.end(2_000_000, 1, outcome, reason);
        }
        None => {
            story.attempt(1_100_000, 100_000, 1, &[Snapshot, CatchUp, Freeze, Drain]);
        }
    }
    story.get(500_000, 600_000, Outcome::Ok);
    story.heal(HEAL_US);
    for (index, &outcome) in after_end.iter().enumerate() {
        let called_us = HEAL_US + 100_000 * (index as u64 + 1);
        story.get(called_us, called_us + 50_000, outcome);
    }
    story.events()
}

#[test]
fn migration_liveness_passes_a_move_that_ends_as_expected_with_clients_served_after() {
    assert_passes(&migration_liveness(&facts(None), &finished(Some((Done, None)), &[Outcome::Info, Outcome::Ok])));
    let reason = AbortReason::LagNotConverging;
    let expected = facts(Some(reason));
    assert_passes(&migration_liveness(&expected, &finished(Some((Aborted, Some(reason))), &[Outcome::Ok])));
    // No operation on the partition after the end: nothing to judge of the clients.
    assert_passes(&migration_liveness(&facts(None), &finished(Some((Done, None)), &[])));
}

#[test]
fn migration_liveness_a_move_that_never_ends_is_a_violation() {
    let message = violation(&migration_liveness(&facts(None), &finished(None, &[Outcome::Ok])), "migration_liveness");
    assert_mentions(
        &message,
        &[
            "migration move-7 partition 7 did not end by the run's end at 10s (faults healed at 8s)",
            "its last attempt, 1, entered phase drain at 1.4s on n0#0",
            "the scenario expects it done",
        ],
    );
}

#[test]
fn migration_liveness_the_outcome_must_be_the_expected_one() {
    let events = finished(Some((Aborted, Some(AbortReason::TargetLost))), &[Outcome::Ok]);
    let message =
        violation(&migration_liveness(&facts(Some(AbortReason::LagNotConverging)), &events), "migration_liveness");
    assert_mentions(
        &message,
        &[
            "migration move-7 partition 7 ended aborted (target_lost) after 1 attempt at 2s on n8#0",
            "its last phase change: attempt 1 catch_up -> aborted (target_lost) at 1.5s on n0#0",
            "but the scenario expects it aborted (lag_not_converging)",
        ],
    );
    let message = violation(&migration_liveness(&facts(None), &events), "migration_liveness");
    assert_mentions(&message, &["ended aborted (target_lost)", "but the scenario expects it done"]);
    let done = finished(Some((Done, None)), &[Outcome::Ok]);
    let message = violation(&migration_liveness(&facts(Some(AbortReason::TargetLost)), &done), "migration_liveness");
    assert_mentions(&message, &["ended done after 1 attempt", "but the scenario expects it aborted (target_lost)"]);
    assert_passes(&migration_liveness(&facts(Some(AbortReason::TargetLost)), &events));
}

#[test]
fn migration_liveness_clients_must_complete_an_operation_on_the_partition_after_its_end() {
    let events = finished(Some((Done, None)), &[Outcome::Info, Outcome::Fail]);
    let message = violation(&migration_liveness(&facts(None), &events), "migration_liveness");
    assert_mentions(
        &message,
        &[
            "migration move-7 partition 7 ended done after 1 attempt at 2s on n8#0",
            "clients invoked 2 operations on partition 7 after that, the first at 8.1s, and none completed ok \
             (their endings: fail, info)",
        ],
    );
    // The ok before the end (at 0.6s) does not count; one ok after it does.
    assert_passes(&migration_liveness(&facts(None), &finished(Some((Done, None)), &[Outcome::Info, Outcome::Ok])));
}

#[test]
fn migration_liveness_a_run_without_a_heal_or_a_plan_is_a_violation() {
    let mut events = finished(Some((Done, None)), &[Outcome::Ok]);
    events.retain(|event| !matches!(event.kind, EventKind::HealAll));
    let message = violation(&migration_liveness(&facts(None), &events), "migration_liveness");
    assert_mentions(&message, &["never reached its liveness phase (no heal_all event)"]);
    // The scenario names the migration; the store never planned it.
    let mut story = Story::new();
    story.cluster().heal(HEAL_US);
    let message = violation(&migration_liveness(&facts(None), &story.events()), "migration_liveness");
    assert_mentions(&message, &["migration move-7 partition 7 did not end", "it was never planned"]);
}

#[test]
fn migration_liveness_a_move_must_not_end_twice_or_after_the_run() {
    let mut story = Story::new();
    story.cluster().plan(1_000_000);
    story.attempt(1_100_000, 100_000, 1, &COMMITTING);
    story.end(2_000_000, 1, Done, None).end(3_000_000, 1, Aborted, Some(AbortReason::AttemptTimeout));
    story.heal(HEAL_US);
    let message = violation(&migration_liveness(&facts(None), &story.events()), "migration_liveness");
    assert_mentions(
        &message,
        &["ended twice with different outcomes: done after 1 attempt at 2s on n8#0, then aborted (attempt_timeout)"],
    );
    let early_end = RunFacts { end_us: 1_500_000, ..facts(None) };
    let events = finished(Some((Done, None)), &[]);
    let judgement = migration_liveness(&early_end, &events);
    assert_mentions(&judgement.violations[0].message, &["ended done only at 2s on n8#0, after the run's end at 1.5s"]);
}

#[test]
fn migration_liveness_a_migration_the_scenario_does_not_name_is_inconclusive_about_its_outcome() {
    let unnamed = RunFacts { nodes: 10, migrations: Vec::new(), end_us: RUN_END_US };
    let judgement = migration_liveness(&unnamed, &finished(Some((Done, None)), &[Outcome::Ok]));
    assert!(judgement.violations.is_empty(), "{judgement:#?}");
    assert_mentions(&judgement.inconclusive.join("\n"), &["the scenario does not name migration move-7"]);
    // That it ends is still judged.
    violation(&migration_liveness(&unnamed, &finished(None, &[])), "migration_liveness");
}

// ---- cleanup ----

/// The move ends `done` at 2s; the source's replicas drop the partition (a stub first, then
/// absent), the target's own it under epoch 2. Then `after` changes the final state.
fn cleaned_up(after: impl FnOnce(&mut Story)) -> Vec<Event> {
    let mut story = Story::new();
    story.cluster().plan(1_000_000);
    story.group_state(1_150_000, TARGET, PartitionStatus::Incoming, 1);
    story.attempt(1_100_000, 100_000, 1, &COMMITTING);
    story.group_state(1_500_000, TARGET, PartitionStatus::Owned, 2);
    story.group_state(1_500_000, SOURCE, PartitionStatus::Stub, 1);
    story.group_state(1_700_000, SOURCE, PartitionStatus::Absent, 1);
    story.end(2_000_000, 1, Done, None);
    after(&mut story);
    story.heal(HEAL_US);
    story.events()
}

#[test]
fn cleanup_passes_a_done_move_that_left_the_source_empty() {
    assert_passes(&cleanup(&facts(None), &cleaned_up(|_| {})));
    // A source replica that restarted and reported nothing holds the partition absent.
    assert_passes(&cleanup(
        &facts(None),
        &cleaned_up(|story| {
            story.replace(3_000_000, 1);
        }),
    ));
}

#[test]
fn cleanup_a_stub_left_at_the_end_is_a_violation() {
    let message = violation(
        &cleanup(
            &facts(None),
            &cleaned_up(|story| {
                story.state(1_900_000, 2, SOURCE, PartitionStatus::Stub, 1);
            }),
        ),
        "cleanup",
    );
    assert_mentions(
        &message,
        &[
            "migration move-7 partition 7 ended done after 1 attempt at 2s on n8#0",
            "at the run's end (10s) 1 of source group 0's 3 replicas do not hold it absent, with no keys",
            "n2#0 stub, 0 keys (since 1.9s)",
        ],
    );
    // Source data left behind under an absent status is data too.
    let message = violation(
        &cleanup(
            &facts(None),
            &cleaned_up(|story| {
                story.state_with_keys(1_900_000, 0, SOURCE, PartitionStatus::Absent, 1, 5);
            }),
        ),
        "cleanup",
    );
    assert_mentions(&message, &["n0#0 absent, 5 keys (since 1.9s)"]);
}

#[test]
fn cleanup_a_target_replica_whose_last_boot_never_reported_the_partition_does_not_own_it() {
    let restarted = |reports_again: bool| {
        cleaned_up(|story| {
            story.crash(3_000_000, 4).boot(3_100_000, 4);
            if reports_again {
                story.state(3_100_000, 4, TARGET, PartitionStatus::Owned, 2);
            }
        })
    };
    let message = violation(&cleanup(&facts(None), &restarted(false)), "cleanup");
    assert_mentions(
        &message,
        &["1 of target group 3's 3 replicas do not hold it owned", "n4#0 absent (not reported since its boot at 3.1s)"],
    );
    assert_passes(&cleanup(&facts(None), &restarted(true)));
}

/// The move aborts for good at 2s; the target's replicas then report `target_final`, the
/// source's report `source_final`.
fn aborted_with(target_final: PartitionStatus, source_final: PartitionStatus) -> Vec<Event> {
    let mut story = Story::new();
    story.cluster().plan(1_000_000);
    story.group_state(1_150_000, TARGET, PartitionStatus::Incoming, 1);
    story.attempt(1_100_000, 100_000, 1, &[Snapshot, CatchUp, Freeze]);
    story.group_state(1_300_000, SOURCE, PartitionStatus::Fenced, 1);
    story.abort(1_400_000, 1, Freeze, AbortReason::DrainOverBudget);
    story.end(2_000_000, 1, Aborted, Some(AbortReason::DrainOverBudget));
    story.state(2_100_000, 5, TARGET, target_final, 1);
    story.group_state(2_200_000, SOURCE, PartitionStatus::Owned, 1);
    story.state(2_300_000, 0, SOURCE, source_final, 1);
    story.heal(HEAL_US);
    story.events()
}

#[test]
fn cleanup_after_an_abort_the_target_drops_its_copy_and_the_source_unfences() {
    // Nodes 3 and 4 never dropped theirs: only node 5 reports absent.
    let message =
        violation(&cleanup(&facts(None), &aborted_with(PartitionStatus::Absent, PartitionStatus::Owned)), "cleanup");
    assert_mentions(
        &message,
        &[
            "migration move-7 partition 7 ended aborted (drain_over_budget) after 1 attempt at 2s on n8#0",
            "2 of target group 3's 3 replicas do not hold it absent, with no keys",
            "n3#0 incoming, 12 keys (since 1.15s); n4#0 incoming, 12 keys (since 1.15s)",
        ],
    );
    let mut events = aborted_with(PartitionStatus::Absent, PartitionStatus::Fenced);
    let drop_all = |events: &mut Vec<Event>| {
        events.retain(|event| {
            !matches!(event.kind, EventKind::PartitionState { group: TARGET, status: PartitionStatus::Incoming, .. })
        })
    };
    drop_all(&mut events);
    let message = violation(&cleanup(&facts(None), &events), "cleanup");
    assert_mentions(
        &message,
        &["1 of source group 0's 3 replicas do not hold it owned", "n0#0 fenced, 12 keys (since 2.3s)"],
    );
    let mut events = aborted_with(PartitionStatus::Absent, PartitionStatus::Owned);
    drop_all(&mut events);
    assert_passes(&cleanup(&facts(None), &events));
}

#[test]
fn cleanup_an_incoming_copy_needs_a_migration_still_running() {
    // Node 3 holds an incoming copy for `group`; the move to group 3 runs (is planned) or not.
    let story = |plan: bool, group: u32| {
        let mut story = Story::new();
        story.cluster();
        if plan {
            story.plan(1_000_000);
            story.attempt(1_100_000, 100_000, 1, &[Snapshot, CatchUp]);
        }
        story.state(1_200_000, 3, group, PartitionStatus::Incoming, 1);
        story.heal(HEAL_US);
        story.events()
    };
    // No migration at all: an orphan.
    let message = violation(&cleanup(&facts(None), &story(false, TARGET)), "cleanup");
    assert_mentions(
        &message,
        &[
            "partition 7 is left incoming on 1 of group 3's replicas at the run's end (10s)",
            "no migration of it to this group is still running (no migration moved partition 7)",
            "n3#0 incoming, 12 keys (since 1.2s)",
        ],
    );
    // Still running at the end: migration_liveness's to report, not cleanup's.
    assert_passes(&cleanup(&facts(None), &story(true, TARGET)));
    // A running migration to group 3 explains no incoming copy on group 4.
    let message = violation(&cleanup(&facts(None), &story(true, 4)), "cleanup");
    assert_mentions(
        &message,
        &["partition 7 is left incoming on 1 of group 4's replicas", "(migration move-7 attempt 1, phase catch_up)"],
    );
}

#[test]
fn cleanup_a_fence_or_stub_anywhere_at_the_end_is_a_violation() {
    let story = |status: PartitionStatus| {
        let mut story = Story::new();
        story.cluster().state(5_000_000, 2, SOURCE, status, 1).heal(HEAL_US);
        story.events()
    };
    let message = violation(&cleanup(&facts(None), &story(PartitionStatus::Fenced)), "cleanup");
    assert_mentions(
        &message,
        &[
            "partition 7 is left fenced on 1 of group 0's replicas",
            "a fence must end in a handoff or an unfence",
            "n2#0 fenced, 12 keys (since 5s)",
        ],
    );
    let message = violation(&cleanup(&facts(None), &story(PartitionStatus::Stub)), "cleanup");
    assert_mentions(&message, &["partition 7 is left stub on 1 of group 0's replicas", "a forwarding stub must go"]);
    assert_passes(&cleanup(&facts(None), &story(PartitionStatus::Owned)));
}

// ---- the migration report ----

#[test]
fn the_migration_report_tells_outcome_attempts_phases_and_pauses() {
    let mut story = Story::new();
    story.cluster().plan(1_000_000);
    // Attempt 1: snapshot at 1.1s, catch-up at 1.2s, freeze at 1.3s, aborted at 1.35s.
    story.attempt(1_100_000, 100_000, 1, &[Snapshot, CatchUp, Freeze]);
    story.hold(GATEWAY, 1, 3, 17, 1_300_000, 1_340_000);
    story.abort(1_350_000, 1, Freeze, AbortReason::DrainOverBudget);
    // Attempt 2 from 2s, one phase every 10ms, done at 2.06s.
    story.attempt(2_000_000, 10_000, 2, &COMMITTING);
    story.hold(GATEWAY, 2, 3, 17, 2_020_000, 2_025_000);
    story.hold(OTHER_GATEWAY, 2, 4, 9, 2_021_000, 2_031_000);
    story.end(2_100_000, 2, Done, None);
    let reports = migration_reports(&facts(None), &story.events());
    assert_eq!(reports.len(), 1, "{reports:#?}");
    let report = &reports[0];
    assert_eq!(report.outcome, MoveOutcome::Done);
    assert_eq!((report.source, report.target, report.pause_budget_us), (Some(0), Some(3), Some(BUDGET_US)));
    assert_eq!((report.attempts, report.aborted_attempts), (2, 1));
    assert_eq!(report.write_pauses_us, vec![10_000, 45_000], "client 3's write held 40ms then 5ms");
    assert_eq!(report.worst_write_pause_us(), Some(45_000));
    assert_eq!(report.worst_window, Some(AttemptWindow { attempt: 1, window_us: 40_000 }));
    assert_eq!(
        report.phase_us,
        vec![
            (MigrationPhase::Planned, 100_000 + 650_000),
            (Snapshot, 100_000 + 10_000),
            (CatchUp, 100_000 + 10_000),
            (Freeze, 50_000 + 10_000),
            (Drain, 10_000),
            (Commit, 10_000),
            (Cleanup, 10_000),
        ]
    );
    assert_eq!(
        report.describe(),
        vec![
            "move-7 partition 7 (group 0 -> group 3, budget 50ms): done after 2 attempts, 1 aborted",
            "  phases: planned 750ms, snapshot 110ms, catch_up 110ms, freeze 60ms, drain 10ms, commit 10ms, cleanup 10ms",
            "  writes held 2, worst write pause 45ms, worst attempt window 40ms (attempt 1)",
        ]
    );
}

#[test]
fn the_migration_report_names_unfinished_and_unplanned_moves() {
    let mut story = Story::new();
    story.cluster().plan(1_000_000);
    story.attempt(1_100_000, 100_000, 1, &[Snapshot, CatchUp]);
    let reports = migration_reports(&facts(None), &story.events());
    assert_eq!(reports[0].outcome, MoveOutcome::Unfinished { phase: Some(CatchUp) });
    // The run ends at 10s: catch-up from 1.2s.
    assert_eq!(reports[0].phase_us.last(), Some(&(CatchUp, RUN_END_US - 1_200_000)));
    let mut story = Story::new();
    story.cluster();
    let reports = migration_reports(&facts(None), &story.events());
    assert_eq!(reports[0].outcome, MoveOutcome::Unfinished { phase: None });
    assert_eq!(reports[0].describe()[0], "move-7 partition 7 (budget 50ms): never planned");
}

#[test]
fn the_migration_report_counts_each_aborted_attempt_once() {
    let mut story = Story::new();
    story.cluster().plan(1_000_000);
    story.attempt(1_100_000, 100_000, 1, &[Snapshot, CatchUp, Freeze]);
    // The source's old primary and its successor both record attempt 1's abort.
    story.abort(1_350_000, 1, Freeze, AbortReason::SourceFailover);
    story.abort(1_360_000, 1, Freeze, AbortReason::SourceFailover);
    story.attempt(2_000_000, 100_000, 2, &[Snapshot, CatchUp]);
    story.abort(2_300_000, 2, CatchUp, AbortReason::LagNotConverging);
    story.end(2_400_000, 2, Aborted, Some(AbortReason::LagNotConverging));
    let reports = migration_reports(&facts(None), &story.events());
    let report = &reports[0];
    assert_eq!(report.outcome, MoveOutcome::Aborted { reason: Some(AbortReason::LagNotConverging) });
    assert_eq!((report.attempts, report.aborted_attempts), (2, 2));
    assert_eq!(
        report.describe()[0],
        "move-7 partition 7 (group 0 -> group 3, budget 50ms): aborted (lag_not_converging) after 2 attempts, 2 aborted"
    );
    assert_eq!(report.describe()[2], "  writes held 0");
}

#[test]
fn cleanup_every_member_of_a_retired_group_deletes_it_and_then_holds_nothing() {
    // The source group is retired after the move; a stub one member still reported is gone with
    // its files once that member records `replica_retired`.
    let retired = |deleted_by: &[u32]| {
        let deleted_by = deleted_by.to_vec();
        cleaned_up(move |story| {
            story.state(1_800_000, 2, SOURCE, PartitionStatus::Stub, 3);
            let status = migsim::vocabulary::GroupStatus::Retired;
            story.record(
                2_100_000,
                Some(MASTER),
                EventKind::GroupState { group: SOURCE, status, members: SOURCE_NODES.to_vec() },
            );
            for &node in &deleted_by {
                story.record(2_200_000, Some(node), EventKind::ReplicaRetired { group: SOURCE });
            }
        })
    };
    assert_passes(&cleanup(&facts(None), &retired(&SOURCE_NODES)));
    // n2 never deleted the group: its stub is still there, and it is blamed for both.
    let messages = violations(&cleanup(&facts(None), &retired(&[0, 1])), "cleanup");
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert_mentions(&messages[0], &["n2#0 stub"]);
    assert_mentions(&messages[1], &["group 0 was retired at 2.1s", "1 of its 3 members never deleted its files", "n2"]);
}

#[test]
fn cleanup_a_disk_move_leaves_one_copy_on_the_disk_its_outcome_says() {
    use migsim::vocabulary::DiskMoveState;
    // Node 2's replica of group 1 moves from disk 1 to disk 0 (`disk-1`), and the operation ends
    // `outcome`; the node's last `replica_disk` says where the replica runs and what is left.
    let story = |outcome: MigrationPhase, disk: u32, stray_files: u32| {
        let mut story = Story::new();
        story.cluster();
        let moved = |from, to, reason| EventKind::DiskMove {
            migration: "disk-1".into(),
            attempt: 1,
            group: 1,
            from_disk: 1,
            to_disk: 0,
            from,
            to,
            reason,
        };
        story.record(2_000_000, Some(2), EventKind::ReplicaDisk { group: 1, disk: 1, stray_files: 0 });
        story.record(2_100_000, Some(2), moved(DiskMoveState::Idle, DiskMoveState::Moving, None));
        let reason = (outcome != MigrationPhase::Done).then_some(AbortReason::DiskError);
        story.record(2_150_000, Some(2), moved(DiskMoveState::Moving, DiskMoveState::Idle, reason));
        story.record(2_150_000, Some(2), EventKind::ReplicaDisk { group: 1, disk, stray_files });
        let end = EventKind::OperationEnd {
            migration: "disk-1".into(),
            moved: u32::from(outcome == MigrationPhase::Done),
            total: 1,
            outcome,
            reason,
        };
        story.record(2_200_000, Some(MASTER), end);
        story
    };
    let judged = |story: &mut Story| cleanup(&facts(None), &story.events());
    assert_passes(&judged(&mut story(MigrationPhase::Done, 0, 0)));
    assert_passes(&judged(&mut story(MigrationPhase::Aborted, 1, 0)));
    let message = violation(&judged(&mut story(MigrationPhase::Done, 0, 3)), "cleanup");
    assert_mentions(
        &message,
        &["n2#0's replica of group 1 runs from disk 0", "3 of the group's files lie on its other disks"],
    );
    let message = violation(&judged(&mut story(MigrationPhase::Done, 1, 0)), "cleanup");
    assert_mentions(
        &message,
        &["disk move disk-1 of n2#0's replica of group 1 (disk 1 -> 0) ended done", "runs from disk 1", "not disk 0"],
    );
    // A boot forgets what the node said before it: its next `replica_disk` counts.
    let mut rebooted = story(MigrationPhase::Done, 0, 3);
    rebooted.record(2_300_000, Some(2), EventKind::NodeStart);
    rebooted.record(2_300_000, Some(2), EventKind::ReplicaDisk { group: 1, disk: 0, stray_files: 0 });
    assert_passes(&judged(&mut rebooted));
}

#[test]
fn migration_liveness_a_planner_operation_must_be_planned_and_end() {
    let mut planner = facts(None);
    planner.migrations[0].partitions.clear();
    let mut story = Story::new();
    story.cluster().heal(HEAL_US);
    let message = violation(&migration_liveness(&planner, &story.events()), "migration_liveness");
    assert_mentions(&message, &["migration move-7 was never planned (no operation_plan)"]);
    // Planned with no move at all (nothing to even out) and ended: a pass.
    let mut story = Story::new();
    story.cluster();
    let plan = EventKind::OperationPlan {
        migration: MIGRATION.into(),
        operation: "rebalance".into(),
        moves: vec![],
        max_concurrent: 2,
    };
    story.record(1_000_000, Some(MASTER), plan);
    let end = EventKind::OperationEnd { migration: MIGRATION.into(), moved: 0, total: 0, outcome: Done, reason: None };
    story.record(1_000_000, Some(MASTER), end);
    story.heal(HEAL_US);
    assert_passes(&migration_liveness(&planner, &story.events()));
}
