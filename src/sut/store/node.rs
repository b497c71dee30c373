//! The storage node's driver: the only code that carries a replica's effects into the world.
//!
//! At boot it recovers one replica per group the node hosts (from that group's disk, with a fresh
//! session), then runs two kinds of task: the main loop (messages, and a tick when some replica's
//! next timer is due, at most `TICK_US` apart, dispatched to the replica of the message's group),
//! and one writer per group that runs the group's disk jobs in order, merging consecutive appends
//! into one fsync, and sends each message the replica queued behind them
//! (`Effect::SendWhenDurable`) once they are done. A disk job that fails (`disk_full`, an fsync
//! error) restarts that replica from its disk with a new session: it cannot know what the failed
//! operation left behind, so it trusts only what recovery can read back.
//!
//! Everything lives in the node's tasks; a crash drops it all, and the next boot starts over from
//! the disks.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use super::local_clock::LocalClock;
use super::mailbox::{recv_or_timer, Queue};
use super::message::StoreMessage;
use super::migration::disk_move::{DiskMoveEffects, DiskMoveInput, DiskMoveStep, DiskMover};
use super::migration::messages::MigrationMessage;
use super::migration::messages::{DiskMoveReport, MigrationRef};
use super::replica::{DiskJob, Effect, JobDone, MigrationBugs, Replica, ReplicaConfig};
use super::storage::{self, GroupStorage};
use super::{Bug, GroupId, StoreConfig};
use crate::trace::EventKind;
use crate::vocabulary::{AbortReason, DiskMoveState};
use crate::world::{DiskError, NodeContext, NodeId, Program};

/// The longest the main loop sleeps between ticks of its replicas (heartbeats, timeouts, status
/// reports); it wakes earlier when a replica's next timer is due sooner.
pub const TICK_US: u64 = 5_000;

/// The program every storage node runs at each boot.
pub fn program(config: StoreConfig) -> Program<StoreMessage> {
    let config = Arc::new(config);
    Arc::new(move |context: NodeContext<StoreMessage>| -> Pin<Box<dyn Future<Output = ()>>> {
        Box::pin(run(context, config.clone()))
    })
}

/// What a group's writer does, in order: a disk job, or a message that may leave only once every
/// job before it is durable.
enum Work {
    Disk(DiskJob),
    Send(NodeId, StoreMessage),
    /// The group was retired: delete its files, tell the master, and end the writer.
    Retire,
    /// Steps of the group's disk move, in order (`migration::disk_move`).
    DiskMove(Vec<DiskMoveStep>),
}

/// Work tagged with the replica generation that asked for it: a restarted replica's writer drops
/// its predecessor's leftovers, messages included.
type Job = (u64, Work);

struct Hosted {
    replica: Replica,
    generation: u64,
    /// Set while the replica restarts after a failed disk job: it takes no input meanwhile.
    halted: bool,
    /// The master retired the group: the replica takes no input ever again.
    retired: bool,
    queue: Queue<Job>,
    /// The disk the replica runs from (a disk move changes it).
    disk: u32,
    /// The disk move under way, if any.
    mover: Option<DiskMover>,
    /// The disk move waits for the reopened replica to be brought up to date.
    learning: bool,
}

type Shared = Rc<RefCell<BTreeMap<GroupId, Hosted>>>;

fn replica_config(config: &StoreConfig, context: &NodeContext<StoreMessage>, group: GroupId) -> ReplicaConfig {
    ReplicaConfig {
        group,
        node: context.id(),
        members: config.replicas_of(group),
        master: config.layout().master(),
        timers: config.timers.clone(),
        ack_before_fsync: config.bugs.has(Bug::AckBeforeFsync),
        skip_dedup: config.bugs.has(Bug::SkipDedup),
        stale_local_read: config.bugs.has(Bug::StaleLocalRead),
        incarnation: context.incarnation(),
        gateways: (0..config.gateways).map(|index| config.layout().gateway(index)).collect(),
        group_members: (0..config.group_count()).map(|group| config.replicas_of(group)).collect(),
        groups: config.groups,
        migrations: config.migrations.clone(),
        bugs: MigrationBugs {
            no_source_fence: config.bugs.has(Bug::NoSourceFence),
            final_lsn_before_fence: config.bugs.has(Bug::FinalLsnBeforeFence),
            catchup_ignores_incarnation: config.bugs.has(Bug::CatchupIgnoresIncarnation),
            cleanup_before_commit: config.bugs.has(Bug::CleanupBeforeCommit),
            handoff_on_append: config.bugs.has(Bug::HandoffOnAppend),
            cleanup_any_holding: config.bugs.has(Bug::CleanupAnyHolding),
            stale_stream_applies: config.bugs.has(Bug::StaleStreamApplies),
            freeze_before_snapshot: config.bugs.has(Bug::FreezeBeforeSnapshot),
        },
    }
}

fn new_session(context: &NodeContext<StoreMessage>) -> u64 {
    context.with_rng(|rng| rand::Rng::gen::<u64>(rng) | 1)
}

/// Recovers a group's replica from its disk, retrying while the disk refuses (it may be full).
async fn recover(
    context: &NodeContext<StoreMessage>,
    clock: &LocalClock,
    config: &StoreConfig,
    group: GroupId,
    disk_index: u32,
) -> (GroupStorage, Replica, Vec<Effect>) {
    let disk = context.disk(disk_index);
    loop {
        match GroupStorage::recover(&disk, group, config.timers.segment_bytes).await {
            Ok((storage, recovered)) => {
                let (replica, effects) = Replica::recover(
                    replica_config(config, context, group),
                    new_session(context),
                    recovered,
                    clock.now_us(context),
                );
                return (storage, replica, effects);
            }
            Err(error) => {
                context.record(EventKind::Note { text: format!("group {group}: recovery failed ({error}); retrying") });
                clock.sleep_us(context, config.timers.retry_us).await;
            }
        }
    }
}

async fn run(context: NodeContext<StoreMessage>, config: Arc<StoreConfig>) {
    let shared: Shared = Rc::new(RefCell::new(BTreeMap::new()));
    let clock = LocalClock::default();
    for group in config.groups_on(context.id()) {
        let (home, resume) = repair_disk_move(&context, &clock, &config, group).await;
        let disk = context.disk(home);
        if storage::is_retired(&disk, group).await {
            // Finish a deletion a crash interrupted; the group is hosted no more.
            until_done(&context, &clock, &config, &format!("group {group}: deleting retired files"), || {
                storage::retire(&disk, group)
            })
            .await;
            continue;
        }
        let (storage, replica, effects) = recover(&context, &clock, &config, group, home).await;
        let queue = Queue::default();
        let mut moved = DiskMoveEffects::default();
        let mover = resume.map(|mark| {
            let name = migration_name(&config, mark.migration);
            DiskMover::resume_learning(mark.migration, name, group, mark.from_disk, mark.to_disk, &mut moved)
        });
        let learning = mover.is_some();
        shared.borrow_mut().insert(
            group,
            Hosted {
                replica,
                generation: 0,
                halted: false,
                retired: false,
                queue: queue.clone(),
                disk: home,
                mover,
                learning,
            },
        );
        if let Some(mark) = resume {
            let steps = record_disk_move(&context, &config, group, mark.migration, moved);
            debug_assert_eq!(steps, vec![DiskMoveStep::AwaitLearn], "a resumed move waits to learn");
        }
        execute(&context, &shared, group, effects);
        let writer_context = context.clone();
        let writer_shared = shared.clone();
        let writer_config = config.clone();
        let writer_clock = clock.clone();
        madsim::task::spawn_local(async move {
            writer(writer_context, writer_clock, writer_shared, writer_config, group, storage, queue).await
        });
    }
    // One timer for the next tick, kept across messages: it is replaced only when it fires.
    let mut tick = Box::pin(clock.sleep_us(&context, 0));
    loop {
        let received = recv_or_timer(&context, tick.as_mut()).await;
        let now = clock.now_us(&context);
        match received {
            Some(envelope) => {
                let Some(group) = envelope.payload.group() else {
                    panic!("store: storage node {} got a message for no group: {:?}", context.id(), envelope.payload)
                };
                if let StoreMessage::Migration(MigrationMessage::Retire { .. }) = envelope.payload {
                    retire(&context, &shared, group, envelope.from);
                    continue;
                }
                if let StoreMessage::Migration(MigrationMessage::DiskMove { migration, to_disk, .. }) = envelope.payload
                {
                    start_disk_move(&context, &config, &shared, group, migration, to_disk, envelope.from);
                    continue;
                }
                let mut effects = Vec::new();
                {
                    let mut hosted = shared.borrow_mut();
                    let Some(entry) = hosted.get_mut(&group).filter(|entry| !entry.halted) else {
                        // A gateway with a stale route (it times out and asks the master), or a
                        // replica restarting from its disk.
                        continue;
                    };
                    entry.replica.on_message(now, envelope.from, envelope.payload, &mut effects);
                }
                execute(&context, &shared, group, effects);
                check_learned(&shared, group);
            }
            None => {
                let groups: Vec<GroupId> = shared.borrow().keys().copied().collect();
                for &group in &groups {
                    let mut effects = Vec::new();
                    if let Some(entry) = shared.borrow_mut().get_mut(&group).filter(|entry| !entry.halted) {
                        entry.replica.on_tick(now, &mut effects);
                    }
                    execute(&context, &shared, group, effects);
                    check_learned(&shared, group);
                }
                // Sleep until some replica has something to do, but never longer than a tick, so
                // a replica that restarts meanwhile is ticked soon.
                let next =
                    shared.borrow().values().map(|entry| entry.replica.next_tick_us()).min().unwrap_or(now + TICK_US);
                tick = Box::pin(clock.sleep_us(&context, next.clamp(now + 1, now + TICK_US) - now));
            }
        }
    }
}

/// The master retired `group`: its replica stops at once, and its writer deletes the group's
/// files after whatever it is doing, then confirms. A node that hosts nothing of the group (it
/// retired it before, or never had it) confirms at once.
fn retire(context: &NodeContext<StoreMessage>, shared: &Shared, group: GroupId, master: NodeId) {
    let mut hosted = shared.borrow_mut();
    match hosted.get_mut(&group) {
        Some(entry) if entry.retired => {}
        Some(entry) => {
            entry.retired = true;
            entry.halted = true;
            entry.generation += 1;
            entry.queue.push((entry.generation, Work::Retire));
        }
        None => context.send(master, StoreMessage::Migration(MigrationMessage::Retired { group })),
    }
}

/// Carries out a replica's effects: messages leave at once, disk jobs join the group's queue.
fn execute(context: &NodeContext<StoreMessage>, shared: &Shared, group: GroupId, effects: Vec<Effect>) {
    for effect in effects {
        match effect {
            Effect::Send { to, message } => context.send(to, message),
            Effect::Record(kind) => context.record(kind),
            Effect::Persist(job) => {
                let hosted = shared.borrow();
                let entry = hosted.get(&group).expect("a hosted group");
                entry.queue.push((entry.generation, Work::Disk(job)));
            }
            Effect::SendWhenDurable { to, message } => {
                let hosted = shared.borrow();
                let entry = hosted.get(&group).expect("a hosted group");
                entry.queue.push((entry.generation, Work::Send(to, message)));
            }
        }
    }
}

/// Runs a group's disk jobs in order, and sends each queued message once the jobs before it are
/// done. Consecutive appends share one write and one fsync; messages queued between them leave
/// after it.
async fn writer(
    context: NodeContext<StoreMessage>,
    clock: LocalClock,
    shared: Shared,
    config: Arc<StoreConfig>,
    group: GroupId,
    mut storage: GroupStorage,
    queue: Queue<Job>,
) {
    loop {
        let jobs = queue.take_all().await;
        let current = shared.borrow().get(&group).map_or(0, |hosted| hosted.generation);
        let mut jobs = jobs.into_iter().filter(|(generation, _)| *generation == current).map(|(_, job)| job).peekable();
        while let Some(work) = jobs.next() {
            let job = match work {
                Work::Disk(job) => job,
                Work::Send(to, message) => {
                    context.send(to, message);
                    continue;
                }
                Work::DiskMove(steps) => {
                    run_disk_steps(&context, &clock, &config, &shared, group, &mut storage, steps).await;
                    // A close or a reopen changed the generation: what is left was queued before.
                    break;
                }
                Work::Retire => {
                    let disk_index = shared.borrow().get(&group).map_or(config.disk_of(group), |hosted| hosted.disk);
                    let disk = context.disk(disk_index);
                    until_done(&context, &clock, &config, &format!("group {group}: deleting retired files"), || {
                        storage::retire(&disk, group)
                    })
                    .await;
                    shared.borrow_mut().remove(&group);
                    context.record(EventKind::ReplicaRetired { group });
                    let master = config.layout().master();
                    context.send(master, StoreMessage::Migration(MigrationMessage::Retired { group }));
                    return;
                }
            };
            let disk_index = shared.borrow().get(&group).map_or(config.disk_of(group), |hosted| hosted.disk);
            let disk = context.disk(disk_index);
            // Messages that wait for a merged append, in queue order.
            let mut after: Vec<(NodeId, StoreMessage)> = Vec::new();
            let result: Result<JobDone, DiskError> = match job {
                DiskJob::Append(mut records) => {
                    while let Some(Work::Disk(DiskJob::Append(_)) | Work::Send(..)) = jobs.peek() {
                        match jobs.next() {
                            Some(Work::Disk(DiskJob::Append(more))) => records.extend(more),
                            Some(Work::Send(to, message)) => after.push((to, message)),
                            Some(Work::Disk(_) | Work::Retire | Work::DiskMove(_)) | None => {
                                unreachable!("peeked an append or a message")
                            }
                        }
                    }
                    let last = records.last().map(|record| (record.entry.epoch, record.entry.lsn));
                    storage.append(&disk, &records).await.map(|()| {
                        let (last_epoch, last_lsn) = last.expect("appends are never empty");
                        JobDone::Appended { last_epoch, last_lsn }
                    })
                }
                DiskJob::Meta(meta) => {
                    storage.write_meta(&disk, meta).await.map(|()| JobDone::Meta { promised: meta.promised })
                }
                DiskJob::Checkpoint { checkpoint, truncate_to } => storage
                    .checkpoint(&disk, &checkpoint, truncate_to)
                    .await
                    .map(|()| JobDone::Checkpointed { lsn: checkpoint.lsn, truncated_to: truncate_to }),
                DiskJob::Install { checkpoint, keep_log } => storage
                    .install(&disk, &checkpoint, keep_log)
                    .await
                    .map(|()| JobDone::Installed { lsn: checkpoint.lsn }),
            };
            match result {
                Ok(done) => {
                    let mut effects = Vec::new();
                    if let Some(hosted) = shared.borrow_mut().get_mut(&group) {
                        if hosted.generation != current {
                            break;
                        }
                        hosted.replica.on_job_done(clock.now_us(&context), done, &mut effects);
                    }
                    for (to, message) in after {
                        context.send(to, message);
                    }
                    execute(&context, &shared, group, effects);
                }
                Err(error) => {
                    context.record(EventKind::Note {
                        text: format!("group {group}: disk job failed ({error}); restarting the replica from its disk"),
                    });
                    storage = reopen(&context, &clock, &config, &shared, group, disk_index).await;
                    break;
                }
            }
        }
    }
}

/// The name of migration `migration.id`, for trace records.
fn migration_name(config: &StoreConfig, migration: MigrationRef) -> String {
    config.migrations.get(migration.id as usize).map_or_else(|| format!("#{}", migration.id), |spec| spec.name.clone())
}

/// Records a disk move's trace records and sends its reports to the master; returns its other
/// steps, in order.
fn record_disk_move(
    context: &NodeContext<StoreMessage>,
    config: &StoreConfig,
    group: GroupId,
    migration: MigrationRef,
    out: DiskMoveEffects,
) -> Vec<DiskMoveStep> {
    for record in out.records {
        context.record(record);
    }
    let master = config.layout().master();
    let mut steps = Vec::new();
    for step in out.steps {
        match step {
            DiskMoveStep::Report(report) => context
                .send(master, StoreMessage::Migration(MigrationMessage::DiskMoveReport { group, migration, report })),
            step => steps.push(step),
        }
    }
    steps
}

/// Records where the replica of `group` runs from, and how many of its files lie elsewhere.
async fn record_replica_disk(context: &NodeContext<StoreMessage>, config: &StoreConfig, group: GroupId, home: u32) {
    let mut stray = 0;
    for disk in (0..config.disks_per_node).filter(|&disk| disk != home) {
        stray += storage::group_files(&context.disk(disk), group).await.len() as u32;
    }
    context.record(EventKind::ReplicaDisk { group, disk: home, stray_files: stray });
}

/// Retries a cleanup step of a disk move until the disk takes it.
async fn until_done<F, Fut>(
    context: &NodeContext<StoreMessage>,
    clock: &LocalClock,
    config: &StoreConfig,
    what: &str,
    step: F,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), DiskError>>,
{
    while let Err(error) = step().await {
        context.record(EventKind::Note { text: format!("{what} failed ({error}); retrying") });
        clock.sleep_us(context, config.timers.retry_us).await;
    }
}

/// Restarts the replica of `group` from `disk` with a new session: after a failed disk job (it
/// trusts only what recovery reads back), and when a disk move reopens it. Whatever the old
/// replica queued is dropped; a group retired meanwhile stays halted (its writer deletes it next).
async fn reopen(
    context: &NodeContext<StoreMessage>,
    clock: &LocalClock,
    config: &StoreConfig,
    shared: &Shared,
    group: GroupId,
    disk: u32,
) -> GroupStorage {
    if let Some(hosted) = shared.borrow_mut().get_mut(&group) {
        hosted.halted = true;
        hosted.generation += 1;
    }
    let (storage, replica, effects) = recover(context, clock, config, group, disk).await;
    if let Some(hosted) = shared.borrow_mut().get_mut(&group) {
        hosted.replica = replica;
        hosted.disk = disk;
        hosted.halted = hosted.retired;
    }
    execute(context, shared, group, effects);
    storage
}

/// Deletes the copy a disk move made on `disk`, its temporary mark last.
async fn delete_new_copy(
    context: &NodeContext<StoreMessage>,
    clock: &LocalClock,
    config: &StoreConfig,
    disk: u32,
    group: GroupId,
) {
    let copy = context.disk(disk);
    let tmp = storage::disk_move_tmp_name(group);
    until_done(context, clock, config, &format!("group {group}: deleting a disk move's copy"), || {
        storage::delete_copy(&copy, group, &tmp)
    })
    .await;
}

/// Removes the `.ori` mark a disk move's unfinished switch left on `disk`.
async fn restore_old_copy(
    context: &NodeContext<StoreMessage>,
    clock: &LocalClock,
    config: &StoreConfig,
    disk: u32,
    group: GroupId,
) {
    let old = context.disk(disk);
    until_done(context, clock, config, &format!("group {group}: restoring a disk move's old copy"), || {
        storage::restore_replica(&old, group)
    })
    .await;
}

/// At boot, before the replica of `group` recovers: finishes or reverts a disk move a crash
/// interrupted, from its marks alone (`storage.rs`), and says which disk the replica runs from
/// and the move to resume at `learn`, if the crash came after its switch.
async fn repair_disk_move(
    context: &NodeContext<StoreMessage>,
    clock: &LocalClock,
    config: &StoreConfig,
    group: GroupId,
) -> (u32, Option<storage::DiskMoveMark>) {
    for disk in 0..config.disks_per_node {
        if storage::is_retired(&context.disk(disk), group).await {
            // Retired where it lived: the caller finishes the deletion there.
            return (disk, None);
        }
    }
    let mut holdings = Vec::new();
    for disk in 0..config.disks_per_node {
        holdings.push(storage::disk_holding(&context.disk(disk), group).await);
    }
    let mut reverted = None;
    // A copy still marked temporary never switched: it goes, with any `.ori` mark its switch left.
    for (disk, holding) in holdings.iter().enumerate() {
        let Some(mark) = holding.tmp else { continue };
        delete_new_copy(context, clock, config, disk as u32, group).await;
        if holdings.get(mark.from_disk as usize).is_some_and(|from| from.ori.is_some()) {
            restore_old_copy(context, clock, config, mark.from_disk, group).await;
        }
        reverted = Some(mark);
    }
    let mut resume = None;
    if let Some(mark) = reverted {
        let from =
            if holdings[mark.from_disk as usize].ori.is_some() { DiskMoveState::Closed } else { DiskMoveState::Moving };
        let name = migration_name(config, mark.migration);
        context.record(EventKind::DiskMove {
            migration: name,
            attempt: mark.migration.attempt,
            group,
            from_disk: mark.from_disk,
            to_disk: mark.to_disk,
            from,
            to: DiskMoveState::Idle,
            reason: Some(AbortReason::NodeRestart),
        });
        let report = DiskMoveReport::Reverted(AbortReason::NodeRestart);
        let message = MigrationMessage::DiskMoveReport { group, migration: mark.migration, report };
        context.send(config.layout().master(), StoreMessage::Migration(message));
    } else if let Some(mark) = holdings.iter().find_map(|holding| holding.ori) {
        // The switch happened: the replica lives on the destination; the old copy is deleted
        // once it learned what it missed.
        resume = Some(mark);
    }
    let home = match resume {
        Some(mark) => mark.to_disk,
        None => holdings
            .iter()
            .enumerate()
            .find(|(disk, holding)| holding.files > 0 && reverted.is_none_or(|mark| mark.to_disk != *disk as u32))
            .map_or(config.disk_of(group), |(disk, _)| disk as u32),
    };
    // Files of the group on another disk, unmarked, are a copy a crash interrupted before its
    // temporary mark was durable: nothing refers to them. (A resumed move's old copy stays until
    // the replica learned.)
    for disk in (0..config.disks_per_node).filter(|&disk| disk != home) {
        if resume.is_some_and(|mark| mark.from_disk == disk) {
            continue;
        }
        let stray = context.disk(disk);
        if !storage::group_files(&stray, group).await.is_empty() {
            let tmp = storage::disk_move_tmp_name(group);
            until_done(context, clock, config, &format!("group {group}: deleting an unmarked copy"), || {
                storage::delete_copy(&stray, group, &tmp)
            })
            .await;
        }
    }
    record_replica_disk(context, config, group, home).await;
    (home, resume)
}

/// The master asks for a disk move of the replica of `group`: start it, or say where it stands.
fn start_disk_move(
    context: &NodeContext<StoreMessage>,
    config: &StoreConfig,
    shared: &Shared,
    group: GroupId,
    migration: MigrationRef,
    to_disk: u32,
    master: NodeId,
) {
    let mut hosted = shared.borrow_mut();
    let Some(entry) = hosted.get_mut(&group).filter(|entry| !entry.retired && !entry.halted) else { return };
    let report = |report| StoreMessage::Migration(MigrationMessage::DiskMoveReport { group, migration, report });
    if let Some(mover) = &entry.mover {
        if mover.migration == migration {
            context.send(master, report(DiskMoveReport::Running(mover.state())));
        }
        return;
    }
    if entry.disk == to_disk {
        context.send(master, report(DiskMoveReport::Completed));
        return;
    }
    if entry.replica.is_primary() {
        // Pegasus moves secondaries only: the master demotes the primary first.
        context.send(master, report(DiskMoveReport::Primary));
        return;
    }
    let mut out = DiskMoveEffects::default();
    let mover = DiskMover::start(migration, migration_name(config, migration), group, entry.disk, to_disk, &mut out);
    entry.mover = Some(mover);
    let steps = record_disk_move(context, config, group, migration, out);
    entry.queue.push((entry.generation, Work::DiskMove(steps)));
}

/// A disk move waiting in `learn` goes on once the reopened replica is verified: its primary
/// brought it up to date.
fn check_learned(shared: &Shared, group: GroupId) {
    let mut hosted = shared.borrow_mut();
    let Some(entry) = hosted.get_mut(&group) else { return };
    if entry.learning && !entry.halted && entry.replica.is_verified() {
        entry.learning = false;
        entry.queue.push((entry.generation, Work::DiskMove(vec![DiskMoveStep::AwaitLearn])));
    }
}

/// Carries out a disk move's steps in the group's writer (so no append or checkpoint runs
/// while it copies), feeding each outcome back to the mover, until it waits to learn or ends.
async fn run_disk_steps(
    context: &NodeContext<StoreMessage>,
    clock: &LocalClock,
    config: &Arc<StoreConfig>,
    shared: &Shared,
    group: GroupId,
    storage: &mut GroupStorage,
    steps: Vec<DiskMoveStep>,
) {
    let mut steps: std::collections::VecDeque<DiskMoveStep> = steps.into();
    while let Some(step) = steps.pop_front() {
        let Some((migration, from_disk, to_disk)) = shared
            .borrow()
            .get(&group)
            .and_then(|hosted| hosted.mover.as_ref())
            .map(|mover| (mover.migration, mover.from_disk, mover.to_disk))
        else {
            return;
        };
        let mark = storage::DiskMoveMark { migration, from_disk, to_disk };
        let (from, to) = (context.disk(from_disk), context.disk(to_disk));
        let input = match step {
            DiskMoveStep::Copy => match storage::copy_replica(&from, &to, group, mark).await {
                Ok(()) => Some(DiskMoveInput::Copied),
                Err(storage::CopyError::Corrupt { name }) => {
                    context.record(EventKind::Note {
                        text: format!("group {group}: disk move: {name} read back differs from its source"),
                    });
                    Some(DiskMoveInput::Failed(AbortReason::CopyCorrupt))
                }
                Err(storage::CopyError::Disk(error)) => {
                    context
                        .record(EventKind::Note { text: format!("group {group}: disk move: copy failed ({error})") });
                    Some(DiskMoveInput::Failed(AbortReason::DiskError))
                }
            },
            DiskMoveStep::Close => {
                if let Some(hosted) = shared.borrow_mut().get_mut(&group) {
                    hosted.halted = true;
                    hosted.generation += 1;
                }
                Some(DiskMoveInput::Closed)
            }
            DiskMoveStep::Switch => match storage::switch_replica(&from, &to, group, mark).await {
                Ok(()) => Some(DiskMoveInput::Switched),
                Err(error) => {
                    context
                        .record(EventKind::Note { text: format!("group {group}: disk move: switch failed ({error})") });
                    Some(DiskMoveInput::Failed(AbortReason::DiskError))
                }
            },
            DiskMoveStep::Reopen { disk } => {
                *storage = reopen(context, clock, config, shared, group, disk).await;
                None
            }
            DiskMoveStep::AwaitLearn => {
                let mut hosted = shared.borrow_mut();
                let Some(entry) = hosted.get_mut(&group) else { return };
                if !entry.replica.is_verified() {
                    // `check_learned` queues this step again once it is.
                    entry.learning = true;
                    return;
                }
                Some(DiskMoveInput::Learned)
            }
            DiskMoveStep::DeleteOld if config.bugs.has(Bug::DiskMoveKeepsOldCopy) => {
                // Planted bug: the mark goes, the files stay.
                until_done(context, clock, config, &format!("group {group}: unmarking a disk move's old copy"), || {
                    storage::restore_replica(&from, group)
                })
                .await;
                Some(DiskMoveInput::Deleted)
            }
            DiskMoveStep::DeleteOld => {
                let ori = storage::disk_move_ori_name(group);
                until_done(context, clock, config, &format!("group {group}: deleting a disk move's old copy"), || {
                    storage::delete_copy(&from, group, &ori)
                })
                .await;
                Some(DiskMoveInput::Deleted)
            }
            DiskMoveStep::DeleteNew => {
                delete_new_copy(context, clock, config, to_disk, group).await;
                None
            }
            DiskMoveStep::RestoreOld => {
                restore_old_copy(context, clock, config, from_disk, group).await;
                None
            }
            DiskMoveStep::Report(_) => unreachable!("reports are sent as they are decided"),
        };
        let Some(input) = input else { continue };
        let mut out = DiskMoveEffects::default();
        {
            let mut hosted = shared.borrow_mut();
            let Some(mover) = hosted.get_mut(&group).and_then(|hosted| hosted.mover.as_mut()) else { return };
            mover.on(input, &mut out);
        }
        steps.extend(record_disk_move(context, config, group, migration, out));
    }
    // Completed or reverted (its revert's steps above): the move is over.
    let ended = shared.borrow().get(&group).and_then(|hosted| hosted.mover.as_ref()).is_some_and(DiskMover::ended);
    if ended {
        let home = shared.borrow().get(&group).map_or(config.disk_of(group), |hosted| hosted.disk);
        record_replica_disk(context, config, group, home).await;
        if let Some(hosted) = shared.borrow_mut().get_mut(&group) {
            hosted.mover = None;
        }
    }
}
