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
use super::migration::messages::MigrationMessage;
use super::replica::{DiskJob, Effect, JobDone, MigrationBugs, Replica, ReplicaConfig};
use super::storage::{self, GroupStorage};
use super::{Bug, GroupId, StoreConfig};
use crate::trace::EventKind;
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
) -> (GroupStorage, Replica, Vec<Effect>) {
    let disk = context.disk(config.disk_of(group));
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
        let disk = context.disk(config.disk_of(group));
        if storage::is_retired(&disk, group).await {
            // Finish a deletion a crash interrupted; the group is hosted no more.
            while let Err(error) = storage::retire(&disk, group).await {
                context.record(EventKind::Note {
                    text: format!("group {group}: deleting retired files failed ({error}); retrying"),
                });
                clock.sleep_us(&context, config.timers.retry_us).await;
            }
            continue;
        }
        let (storage, replica, effects) = recover(&context, &clock, &config, group).await;
        let queue = Queue::default();
        shared
            .borrow_mut()
            .insert(group, Hosted { replica, generation: 0, halted: false, retired: false, queue: queue.clone() });
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
            }
            None => {
                let groups: Vec<GroupId> = shared.borrow().keys().copied().collect();
                for &group in &groups {
                    let mut effects = Vec::new();
                    if let Some(entry) = shared.borrow_mut().get_mut(&group).filter(|entry| !entry.halted) {
                        entry.replica.on_tick(now, &mut effects);
                    }
                    execute(&context, &shared, group, effects);
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
    let disk_index = config.disk_of(group);
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
                Work::Retire => {
                    let disk = context.disk(disk_index);
                    while let Err(error) = storage::retire(&disk, group).await {
                        context.record(EventKind::Note {
                            text: format!("group {group}: deleting retired files failed ({error}); retrying"),
                        });
                        clock.sleep_us(&context, config.timers.retry_us).await;
                    }
                    shared.borrow_mut().remove(&group);
                    context.record(EventKind::ReplicaRetired { group });
                    let master = config.layout().master();
                    context.send(master, StoreMessage::Migration(MigrationMessage::Retired { group }));
                    return;
                }
            };
            let disk = context.disk(disk_index);
            // Messages that wait for a merged append, in queue order.
            let mut after: Vec<(NodeId, StoreMessage)> = Vec::new();
            let result: Result<JobDone, DiskError> = match job {
                DiskJob::Append(mut records) => {
                    while let Some(Work::Disk(DiskJob::Append(_)) | Work::Send(..)) = jobs.peek() {
                        match jobs.next() {
                            Some(Work::Disk(DiskJob::Append(more))) => records.extend(more),
                            Some(Work::Send(to, message)) => after.push((to, message)),
                            Some(Work::Disk(_) | Work::Retire) | None => unreachable!("peeked an append or a message"),
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
                    if let Some(hosted) = shared.borrow_mut().get_mut(&group) {
                        hosted.halted = true;
                        hosted.generation += 1;
                    }
                    let (recovered_storage, replica, effects) = recover(&context, &clock, &config, group).await;
                    storage = recovered_storage;
                    if let Some(hosted) = shared.borrow_mut().get_mut(&group) {
                        hosted.replica = replica;
                        // A group retired meanwhile stays halted: its writer deletes it next.
                        hosted.halted = hosted.retired;
                    }
                    execute(&context, &shared, group, effects);
                    break;
                }
            }
        }
    }
}
