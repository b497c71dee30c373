//! The replica core driven by hand: messages are delivered when a test says so and disk jobs
//! finish when a test says so, so each rule of the protocol can be shown at the instant it acts.

use super::*;
use crate::sut::store::entry::Op;
use crate::sut::store::state_machine::Refusal;

const GROUP: GroupId = 0;
const MASTER: NodeId = 9;
const GATEWAY: NodeId = 8;

fn config(node: NodeId, ack_before_fsync: bool) -> ReplicaConfig {
    config_of(node, 3, ack_before_fsync)
}

fn config_of(node: NodeId, members: u32, ack_before_fsync: bool) -> ReplicaConfig {
    ReplicaConfig {
        group: GROUP,
        node,
        members: (0..members).collect(),
        master: MASTER,
        timers: StoreTimers::default(),
        ack_before_fsync,
        skip_dedup: false,
        stale_local_read: false,
        incarnation: 0,
        gateways: Vec::new(),
        group_members: vec![(0..members).collect()],
        groups: 1,
        migrations: Vec::new(),
        bugs: Default::default(),
    }
}

/// A replica's disk queue: jobs, and messages that leave once the jobs before them are done.
#[derive(Clone, Debug)]
enum Queued {
    Job(DiskJob),
    Send(NodeId, StoreMessage),
}

/// Replicas (three unless a test asks for more), the effects they produced and have not been delivered yet, and their disk jobs
/// waiting to finish.
struct Cluster {
    replicas: Vec<Replica>,
    /// (from, to, message), in send order.
    network: Vec<(NodeId, NodeId, StoreMessage)>,
    /// Per replica, jobs not yet finished, and messages waiting for them.
    disks: Vec<Vec<Queued>>,
    /// Messages to the master and gateways, for the test to read.
    outside: Vec<(NodeId, NodeId, StoreMessage)>,
    /// Every checkpoint asked for: (node, checkpoint LSN, truncate to).
    truncations: Vec<(usize, Lsn, Lsn)>,
    /// Snapshots sent between replicas.
    snapshots_sent: usize,
    now_us: u64,
}

impl Cluster {
    fn new(ack_before_fsync: bool) -> Cluster {
        Cluster::of(3, ack_before_fsync)
    }

    fn of(members: u32, ack_before_fsync: bool) -> Cluster {
        let replicas = (0..members)
            .map(|node| {
                let config = config_of(node, members, ack_before_fsync);
                Replica::recover(config, 100 + u64::from(node), Recovered::default(), 0).0
            })
            .collect();
        Cluster {
            replicas,
            network: Vec::new(),
            disks: vec![Vec::new(); members as usize],
            outside: Vec::new(),
            truncations: Vec::new(),
            snapshots_sent: 0,
            now_us: 0,
        }
    }

    fn absorb(&mut self, node: NodeId, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Send { to, message } => self.send(node, to, message),
                Effect::SendWhenDurable { to, message } => self.disks[node as usize].push(Queued::Send(to, message)),
                Effect::Persist(job) => self.disks[node as usize].push(Queued::Job(job)),
                Effect::Record(_) => {}
            }
        }
    }

    fn send(&mut self, from: NodeId, to: NodeId, message: StoreMessage) {
        if (to as usize) < self.replicas.len() {
            if matches!(message, StoreMessage::InstallSnapshot { .. }) {
                self.snapshots_sent += 1;
            }
            self.network.push((from, to, message));
        } else {
            self.outside.push((from, to, message));
        }
    }

    fn input(&mut self, node: NodeId, from: NodeId, message: StoreMessage) {
        let mut effects = Vec::new();
        self.replicas[node as usize].on_message(self.now_us, from, message, &mut effects);
        self.absorb(node, effects);
    }

    /// Finishes every pending disk job of `node`, in order.
    fn sync(&mut self, node: NodeId) {
        let queued = std::mem::take(&mut self.disks[node as usize]);
        for item in queued {
            let job = match item {
                Queued::Job(job) => job,
                Queued::Send(to, message) => {
                    self.send(node, to, message);
                    continue;
                }
            };
            let done = match job {
                DiskJob::Append(records) => {
                    let last = &records.last().expect("appends are not empty").entry;
                    JobDone::Appended { last_epoch: last.epoch, last_lsn: last.lsn }
                }
                DiskJob::Meta(meta) => JobDone::Meta { promised: meta.promised },
                DiskJob::Checkpoint { checkpoint, truncate_to } => {
                    self.truncations.push((node as usize, checkpoint.lsn, truncate_to));
                    JobDone::Checkpointed { lsn: checkpoint.lsn, truncated_to: truncate_to }
                }
                DiskJob::Install { checkpoint, .. } => JobDone::Installed { lsn: checkpoint.lsn },
            };
            let mut effects = Vec::new();
            self.replicas[node as usize].on_job_done(self.now_us, done, &mut effects);
            self.absorb(node, effects);
        }
    }

    /// Delivers every message in flight between replicas (and what they cause), without finishing
    /// any disk job, until the network is quiet.
    fn deliver(&mut self, only_to: Option<NodeId>) {
        loop {
            let position = self.network.iter().position(|(_, to, _)| only_to.is_none_or(|node| node == *to));
            let Some(position) = position else { return };
            let (from, to, message) = self.network.remove(position);
            self.input(to, from, message);
        }
    }

    /// Runs until nothing is in flight and no disk job is pending.
    fn settle(&mut self) {
        for _ in 0..100 {
            self.deliver(None);
            for node in 0..self.replicas.len() as NodeId {
                self.sync(node);
            }
            if self.network.is_empty() && self.disks.iter().all(Vec::is_empty) {
                return;
            }
        }
        panic!("the cluster did not settle");
    }

    fn members(&self) -> Vec<NodeId> {
        (0..self.replicas.len() as NodeId).collect()
    }

    /// Elects `primary` for `epoch` the way the master does: prepare everyone, then send the view.
    fn elect(&mut self, primary: NodeId, epoch: Epoch) {
        for node in self.members() {
            self.input(node, MASTER, StoreMessage::Prepare { group: GROUP, epoch });
            self.sync(node);
        }
        let view = GroupView {
            group: GROUP,
            epoch,
            primary: Some(primary),
            primary_session: 100 + u64::from(primary),
            reserved: epoch,
            members: self.members(),
            partitions: vec![0],
            to_session: None,
        };
        for node in self.members() {
            // As the master answers each member's status: a view addressed to its session.
            let to_session = Some(100 + u64::from(node));
            self.input(node, MASTER, StoreMessage::View(GroupView { to_session, ..view.clone() }));
        }
        self.settle();
    }

    /// Advances time by a heartbeat and ticks `node`.
    fn tick(&mut self, node: NodeId) {
        self.now_us += StoreTimers::default().heartbeat_us;
        let mut effects = Vec::new();
        self.replicas[node as usize].on_tick(self.now_us, &mut effects);
        self.absorb(node, effects);
    }

    fn write(&mut self, primary: NodeId, request: u64, seq: u64, value: &str) {
        self.input(
            primary,
            GATEWAY,
            StoreMessage::Forward {
                group: GROUP,
                request,
                op_id: OpId { client: 1, seq },
                partition: 0,
                op: Op::Put { key: "k".into(), value: value.into() },
            },
        );
    }

    fn cancel(&mut self, primary: NodeId, request: u64, seq: u64) {
        self.input(
            primary,
            GATEWAY,
            StoreMessage::Cancel { group: GROUP, request, op_id: OpId { client: 1, seq }, partition: 0 },
        );
    }

    fn answers(&self) -> Vec<(u64, Answer)> {
        self.outside
            .iter()
            .filter_map(|(_, to, message)| match message {
                StoreMessage::ForwardReply { request, answer } if *to == GATEWAY => Some((*request, answer.clone())),
                _ => None,
            })
            .collect()
    }
}

/// A cluster whose node 0 leads epoch 1 and serves partition 0.
fn serving_cluster(ack_before_fsync: bool) -> Cluster {
    let mut cluster = Cluster::new(ack_before_fsync);
    cluster.elect(0, 1);
    assert!(cluster.replicas[0].is_serving(), "node 0 serves after its epoch committed");
    assert!(cluster.replicas[0].machine().owns(0), "its Own entry committed too");
    cluster
}

#[test]
fn a_write_commits_only_once_a_majority_has_fsynced_it() {
    let mut cluster = serving_cluster(false);
    let before = cluster.replicas[0].commit_lsn();
    cluster.write(0, 1, 1, "a;");
    // Backups receive the entry but their disks have not finished.
    cluster.deliver(Some(1));
    cluster.deliver(Some(2));
    cluster.deliver(Some(0));
    assert_eq!(cluster.replicas[0].commit_lsn(), before, "committed with no fsync anywhere");
    // The primary's own fsync is one of three.
    cluster.sync(0);
    assert_eq!(cluster.replicas[0].commit_lsn(), before, "committed on the primary's fsync alone");
    // One backup's fsync makes a majority.
    cluster.sync(1);
    cluster.deliver(Some(0));
    assert_eq!(cluster.replicas[0].commit_lsn(), before + 1);
    assert_eq!(cluster.answers(), vec![(1, Answer::Done(OpResult::Done))]);
}

#[test]
fn ack_before_fsync_commits_what_no_disk_holds() {
    let mut cluster = serving_cluster(true);
    let before = cluster.replicas[0].commit_lsn();
    cluster.write(0, 1, 1, "a;");
    cluster.deliver(Some(1));
    cluster.deliver(Some(0));
    assert_eq!(cluster.replicas[0].commit_lsn(), before + 1, "the planted bug acknowledges before fsync");
    assert_eq!(cluster.replicas[0].durable_lsn(), before + 1);
    assert!(!cluster.disks[0].is_empty() && !cluster.disks[1].is_empty(), "nothing was fsynced");
}

#[test]
fn a_promise_is_durable_before_it_is_sent() {
    let mut cluster = Cluster::new(false);
    cluster.input(1, MASTER, StoreMessage::Prepare { group: GROUP, epoch: 4 });
    assert!(
        !cluster.outside.iter().any(|(_, _, message)| matches!(message, StoreMessage::Promise(_))),
        "promised before the meta file was written"
    );
    cluster.sync(1);
    let promises: Vec<Epoch> = cluster
        .outside
        .iter()
        .filter_map(|(_, _, message)| match message {
            StoreMessage::Promise(status) => Some(status.promised),
            _ => None,
        })
        .collect();
    assert_eq!(promises, vec![4]);
}

#[test]
fn a_deposed_primary_steps_down_and_its_pending_write_is_reported_lost() {
    let mut cluster = serving_cluster(false);
    let before = cluster.replicas[0].commit_lsn();
    cluster.write(0, 7, 1, "a;");
    // Before the backups see the write, they promise epoch 2 to the master.
    for node in [1, 2] {
        cluster.input(node, MASTER, StoreMessage::Prepare { group: GROUP, epoch: 2 });
        cluster.sync(node);
    }
    cluster.deliver(Some(1));
    cluster.deliver(Some(2));
    cluster.deliver(Some(0));
    assert!(!cluster.replicas[0].is_primary(), "a primary whose backups promised a newer epoch must step down");
    assert_eq!(cluster.answers(), vec![(7, Answer::Lost)]);
    // The stale write commits nowhere.
    let commits: Vec<Lsn> = cluster.replicas.iter().map(Replica::commit_lsn).collect();
    assert!(commits.iter().all(|&commit| commit <= before), "commit points {commits:?}, write at {}", before + 1);
}

#[test]
fn a_restarted_backup_is_unverified_until_the_primary_has_caught_it_up() {
    let mut cluster = serving_cluster(false);
    for seq in 1..=3 {
        cluster.write(0, seq, seq, &format!("{seq};"));
    }
    cluster.settle();
    assert!(cluster.replicas[1].is_verified(), "a backup the primary caught up is verified");
    // Node 1 restarts with an empty disk (a replaced machine): a new session, unverified.
    let (replica, _) = Replica::recover(config(1, false), 555, Recovered::default(), 0);
    cluster.replicas[1] = replica;
    assert!(!cluster.replicas[1].is_verified());
    // It joins through the master's view, then the primary rebuilds it.
    let view = GroupView {
        group: GROUP,
        epoch: 1,
        primary: Some(0),
        primary_session: 100,
        reserved: 1,
        members: vec![0, 1, 2],
        partitions: vec![0],
        to_session: Some(555),
    };
    cluster.input(1, MASTER, StoreMessage::View(view));
    cluster.sync(1);
    cluster.tick(0);
    cluster.settle();
    assert_eq!(cluster.replicas[1].last_lsn(), cluster.replicas[0].last_lsn());
    assert!(cluster.replicas[1].is_verified(), "rebuilt, so verified");
    // The next heartbeat tells it the commit point, and it applies.
    cluster.tick(0);
    cluster.settle();
    assert_eq!(cluster.replicas[1].machine().read(0, "k"), Ok(Some("3;".into())));
}

#[test]
fn a_backup_refuses_a_primary_of_an_epoch_below_its_promise() {
    let mut cluster = serving_cluster(false);
    let before = cluster.replicas[2].last_lsn();
    cluster.input(2, MASTER, StoreMessage::Prepare { group: GROUP, epoch: 5 });
    cluster.sync(2);
    cluster.write(0, 1, 1, "a;");
    cluster.deliver(Some(2));
    let refused = cluster.network.iter().any(|(from, to, message)| {
        matches!(message, StoreMessage::AppendReply(AppendAck { success: false, promised: 5, .. }))
            && *from == 2
            && *to == 0
    });
    assert!(refused, "node 2 answered the old primary with its promise");
    assert_eq!(cluster.replicas[2].last_lsn(), before, "node 2 took no entry of epoch 1 after promising 5");
}

#[test]
fn a_read_waits_for_a_round_that_a_majority_confirms() {
    let mut cluster = serving_cluster(false);
    cluster.write(0, 1, 1, "a;");
    cluster.settle();
    cluster.input(
        0,
        GATEWAY,
        StoreMessage::Forward {
            group: GROUP,
            request: 2,
            op_id: OpId { client: 2, seq: 1 },
            partition: 0,
            op: Op::Get { key: "k".into() },
        },
    );
    assert_eq!(cluster.answers().len(), 1, "a read was answered before any backup confirmed the round");
    cluster.deliver(Some(1));
    cluster.deliver(Some(0));
    assert_eq!(cluster.answers().last(), Some(&(2, Answer::Done(OpResult::Value(Some("a;".into()))))));
}

#[test]
fn a_hold_back_keeps_the_log_behind_a_checkpoint_on_disk() {
    let mut cluster = serving_cluster(false);
    for replica in &mut cluster.replicas {
        replica.config.timers.checkpoint_entries = 4;
    }
    cluster.replicas[1].hold_truncation(0, 2);
    for seq in 1..=6 {
        cluster.write(0, seq, seq, &format!("{seq};"));
        cluster.settle();
    }
    let truncations = |node: usize, cluster: &Cluster| -> Vec<(Lsn, Lsn)> {
        cluster.truncations.iter().filter(|(at, _, _)| *at == node).map(|&(_, lsn, to)| (lsn, to)).collect()
    };
    let free = truncations(0, &cluster);
    let held = truncations(1, &cluster);
    assert!(!free.is_empty() && !held.is_empty(), "no checkpoint was taken: {free:?} {held:?}");
    assert!(free.iter().all(|&(lsn, to)| to == lsn), "without a hold the log is cut at the checkpoint: {free:?}");
    assert!(held.iter().all(|&(lsn, to)| to == 2 && lsn > 2), "the hold at LSN 2 was not kept: {held:?}");
    cluster.replicas[1].release_truncation(0);
}

#[test]
fn a_new_primary_confirms_reads_only_with_rounds_of_its_own_epoch() {
    // Five replicas: node 0 leads epoch 1 for a while (its rounds climb), then node 1 leads epoch 2.
    let mut cluster = Cluster::of(5, false);
    cluster.elect(0, 1);
    for _ in 0..50 {
        cluster.tick(0);
        cluster.settle();
    }
    cluster.elect(1, 2);
    assert!(cluster.replicas[1].is_serving());
    // A read at the new primary, with every backup silent: no round of epoch 2 is confirmed.
    cluster.input(
        1,
        GATEWAY,
        StoreMessage::Forward {
            group: GROUP,
            request: 9,
            op_id: OpId { client: 2, seq: 1 },
            partition: 0,
            op: Op::Get { key: "k".into() },
        },
    );
    // One backup of four answers: a minority, which must not confirm the read's round.
    cluster.tick(1);
    cluster.deliver(Some(2));
    cluster.sync(2);
    cluster.deliver(Some(1));
    assert!(cluster.answers().iter().all(|(request, _)| *request != 9), "a read was confirmed by rounds of epoch 1");
    // A majority confirms it.
    for node in [3, 4] {
        cluster.deliver(Some(node));
        cluster.sync(node);
    }
    cluster.deliver(Some(1));
    assert!(cluster.answers().iter().any(|(request, _)| *request == 9), "the read was never answered");
}

#[test]
fn a_booted_replica_joins_only_on_a_view_sent_to_its_session() {
    let mut cluster = serving_cluster(false);
    // Node 2's machine is replaced: an empty disk, a new session, nothing promised.
    let (replica, _) = Replica::recover(config(2, false), 777, Recovered::default(), 0);
    cluster.replicas[2] = replica;
    // A view from before the boot (a broadcast, or one addressed to the old session) arrives.
    let stale = GroupView {
        group: GROUP,
        epoch: 1,
        primary: Some(0),
        primary_session: 100,
        reserved: 1,
        members: vec![0, 1, 2],
        partitions: vec![0],
        to_session: Some(102),
    };
    cluster.input(2, MASTER, StoreMessage::View(stale.clone()));
    cluster.sync(2);
    cluster.write(0, 1, 1, "a;");
    cluster.deliver(Some(2));
    assert_eq!(cluster.replicas[2].last_lsn(), 0, "an unjoined replica took entries from a primary");
    // The master's answer to its status joins it.
    cluster.input(2, MASTER, StoreMessage::View(GroupView { to_session: Some(777), ..stale }));
    cluster.sync(2);
    cluster.tick(0);
    cluster.settle();
    assert_eq!(cluster.replicas[2].last_lsn(), cluster.replicas[0].last_lsn());
}

#[test]
fn a_failover_sends_no_snapshot_to_backups_whose_logs_are_current() {
    let mut cluster = serving_cluster(false);
    for replica in &mut cluster.replicas {
        replica.config.timers.checkpoint_entries = 4;
    }
    for seq in 1..=12 {
        cluster.write(0, seq, seq, &format!("{seq};"));
        cluster.settle();
    }
    cluster.tick(0);
    cluster.settle();
    assert!(!cluster.truncations.is_empty(), "no checkpoint compacted the logs");
    let before = cluster.snapshots_sent;
    cluster.elect(1, 2);
    cluster.tick(1);
    cluster.settle();
    assert_eq!(cluster.snapshots_sent, before, "the new primary sent snapshots to backups that hold its log");
    assert!(cluster.replicas[1].is_serving());
}

#[test]
fn a_backup_acknowledges_new_entries_only_once_its_disk_holds_them() {
    let mut cluster = serving_cluster(false);
    cluster.write(0, 1, 1, "a;");
    cluster.deliver(Some(1));
    let acked = |cluster: &Cluster| {
        cluster.network.iter().any(|(from, _, message)| {
            *from == 1 && matches!(message, StoreMessage::AppendReply(AppendAck { success: true, .. }))
        })
    };
    assert!(!acked(&cluster), "node 1 acknowledged entries its disk does not hold yet");
    cluster.sync(1);
    assert!(acked(&cluster), "node 1's acknowledgement did not leave once its append was durable");
}

#[test]
fn a_copy_of_a_refused_forward_can_still_apply_and_its_cancellation_then_answers_its_result() {
    let mut cluster = Cluster::new(false);
    // Node 0 is elected for epoch 1, but its EpochStart is not durable yet: it does not serve.
    for node in cluster.members() {
        cluster.input(node, MASTER, StoreMessage::Prepare { group: GROUP, epoch: 1 });
        cluster.sync(node);
    }
    let view = GroupView {
        group: GROUP,
        epoch: 1,
        primary: Some(0),
        primary_session: 100,
        reserved: 1,
        members: cluster.members(),
        partitions: vec![0],
        to_session: None,
    };
    for node in cluster.members() {
        let to_session = Some(100 + u64::from(node));
        cluster.input(node, MASTER, StoreMessage::View(GroupView { to_session, ..view.clone() }));
    }
    let forward = StoreMessage::Forward {
        group: GROUP,
        request: 1,
        op_id: OpId { client: 1, seq: 1 },
        partition: 0,
        op: Op::Put { key: "k".into(), value: "a;".into() },
    };
    cluster.input(0, GATEWAY, forward.clone());
    assert_eq!(cluster.answers(), vec![(1, Answer::Unavailable)], "a primary not serving yet refuses");
    // It starts serving; then the network delivers its duplicate of the refused attempt.
    cluster.settle();
    assert!(cluster.replicas[0].is_serving());
    cluster.input(0, GATEWAY, forward);
    cluster.settle();
    assert_eq!(cluster.replicas[0].machine().read(0, "k"), Ok(Some("a;".into())), "the copy was applied");
    // A refusal was not the write's fate; its cancellation, ordered by the log, tells the truth.
    cluster.cancel(0, 2, 1);
    cluster.settle();
    assert_eq!(cluster.answers().last(), Some(&(2, Answer::Done(OpResult::Done))));
}

#[test]
fn a_committed_cancellation_refuses_every_later_copy_under_every_later_primary() {
    let mut cluster = serving_cluster(false);
    cluster.cancel(0, 1, 5);
    assert_eq!(cluster.answers(), vec![], "a cancellation was answered before it committed");
    cluster.settle();
    assert_eq!(cluster.answers(), vec![(1, Answer::Refused(Refusal::Cancelled))]);
    // A late copy of the write, at the same primary: refused, nothing logged.
    let last = cluster.replicas[0].last_lsn();
    cluster.write(0, 2, 5, "late;");
    assert_eq!(cluster.answers().last(), Some(&(2, Answer::Refused(Refusal::Cancelled))));
    assert_eq!(cluster.replicas[0].last_lsn(), last);
    // Another copy, at the next primary: the cancellation came with the log.
    cluster.elect(1, 2);
    cluster.write(1, 3, 5, "later;");
    cluster.settle();
    assert_eq!(cluster.answers().last(), Some(&(3, Answer::Refused(Refusal::Cancelled))));
    assert_eq!(cluster.replicas[1].machine().read(0, "k"), Ok(None));
}

#[test]
fn a_cancellation_logged_behind_the_write_answers_the_write_result() {
    let mut cluster = serving_cluster(false);
    cluster.write(0, 1, 5, "a;");
    // The gateway gave up before the write committed, and cancels: the log orders the write first.
    cluster.cancel(0, 2, 5);
    cluster.settle();
    assert_eq!(
        cluster.answers(),
        vec![(1, Answer::Done(OpResult::Done)), (2, Answer::Done(OpResult::Done))],
        "the cancellation must report the write that applied before it"
    );
}

#[test]
fn a_backup_installing_a_snapshot_is_sent_no_other_until_the_install_is_durable() {
    let mut cluster = serving_cluster(false);
    for replica in &mut cluster.replicas {
        replica.config.timers.checkpoint_entries = 4;
    }
    // Node 2 hears nothing while twelve writes commit and the primary's log is compacted.
    for seq in 1..=12 {
        cluster.write(0, seq, seq, &format!("{seq};"));
        for _ in 0..4 {
            cluster.deliver(Some(1));
            cluster.deliver(Some(0));
            cluster.sync(0);
            cluster.sync(1);
        }
    }
    cluster.network.retain(|(_, to, _)| *to != 2);
    cluster.tick(0);
    let snapshot = cluster
        .network
        .iter()
        .find(|(_, to, message)| *to == 2 && matches!(message, StoreMessage::InstallSnapshot { .. }))
        .cloned()
        .expect("the primary sends node 2 a snapshot once its log no longer holds what node 2 lacks");
    let sent = cluster.snapshots_sent;
    // The network delivers it twice; node 2's disk has not finished the install.
    cluster.network.push(snapshot);
    cluster.deliver(Some(2));
    cluster.deliver(Some(0));
    cluster.deliver(Some(2));
    cluster.deliver(Some(0));
    assert_eq!(cluster.snapshots_sent, sent, "an answer below the snapshot's base drew another snapshot");
    assert_eq!(cluster.replicas[2].durable_lsn(), 0, "the install was finished");
    // Once the install is durable, node 2 catches up.
    cluster.sync(2);
    cluster.settle();
    cluster.tick(0);
    cluster.settle();
    assert_eq!(cluster.replicas[2].machine().read(0, "k"), Ok(Some("12;".into())));
}
