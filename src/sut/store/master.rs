//! The config master: owns each group's membership, epochs and primary, and the routing table
//! (partition -> group, with a version). Its core (`Master`) does no I/O; its driver persists the
//! state before any message that depends on it leaves, so a restarted master never contradicts
//! what it already told anyone.
//!
//! **Failure detection.** Every replica reports its status each heartbeat. The master starts a
//! view change for a group when its primary has not reported for `failure_timeout`, reports a new
//! session (it restarted, and a replica never leads an epoch it held before a restart), or reports
//! that it is not serving (it cannot reach a majority) for `failure_timeout`.
//!
//! **View change.** The master reserves the next epoch durably, asks every member to promise it
//! (`Prepare`), and elects the most up-to-date promiser (highest last `(epoch, lsn)`) once the
//! promises form a quorum: a majority of members of which a majority are *verified* sessions, or
//! every member. A session is verified when a primary has brought it up to date since it booted;
//! an unverified one (a replaced disk, a disk that lost fsyncs, or any fresh boot) may lack what it
//! once acknowledged, so it counts only when nobody is missing. Promises go to a majority's
//! intersection with every commit quorum, which is why the elected log holds every committed entry
//! (Raft's election argument, with the master choosing for the voters).
//!
//! **Failure model.** One master node with its state on its own disk. While it is down nothing
//! changes primaries: groups with a live primary keep serving, a group whose primary dies waits for
//! the master's return. Its disk may be slow, full or fail fsyncs (it retries and sends nothing
//! until the state is durable), but it must not lose or garble what it acknowledged: a master that
//! forgets an epoch it handed out could hand it out twice. Scenario validation therefore refuses
//! `disk_lost_fsync`, `disk_corruption` and `peer_replace` on the master's node. A replicated master (a Raft group of masters, or the configuration itself kept in a
//! replicated group, as in Kafka's KRaft) would remove the single point of failure without changing
//! this protocol: its decisions would be log entries of the master group instead of file writes,
//! and the reserved epoch would be committed there before any `Prepare` is sent.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::local_clock::LocalClock;
use super::mailbox::recv_or_timer;
use super::message::{GroupRoute, GroupView, ReplicaStatus, RoutingTable, StoreMessage};
use super::migration::coordinator::{
    ClusterView, Coordinator, CoordinatorBugs, CoordinatorEffects, CoordinatorMessage, MigrationRecord, Routing,
};
use super::migration::messages::MigrationMessage;
use super::{codec, Bug, Epoch, GroupId, StoreConfig};
use crate::trace::EventKind;
use crate::vocabulary::GroupStatus;
use crate::world::{NodeContext, NodeId, Program};

/// The master's state file on its first disk.
pub const STATE_FILE: &str = "master.state";

/// What the master keeps durably about one group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    pub members: Vec<NodeId>,
    pub epoch: Epoch,
    pub primary: Option<NodeId>,
    pub primary_session: u64,
    /// The highest epoch handed out (above `epoch` while a view change is under way).
    pub reserved: Epoch,
}

/// Everything the master keeps durably.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterState {
    pub groups: Vec<GroupRecord>,
    pub routing_version: u64,
    /// Indexed by partition.
    pub partition_groups: Vec<GroupId>,
    /// Each migration's durable record, by migration id.
    pub migrations: Vec<MigrationRecord>,
    /// Each group's place in the cluster: a group in reserve or retired has no elections, and
    /// its members' reports are not heard.
    pub group_status: Vec<GroupStatus>,
}

impl MasterState {
    /// The state before anything happened: no epochs, partitions dealt round-robin.
    pub fn initial(config: &StoreConfig) -> MasterState {
        MasterState {
            groups: (0..config.group_count())
                .map(|group| GroupRecord {
                    members: config.replicas_of(group),
                    epoch: 0,
                    primary: None,
                    primary_session: 0,
                    reserved: 0,
                })
                .collect(),
            routing_version: 1,
            partition_groups: (0..config.partitions).map(|partition| config.initial_group_of(partition)).collect(),
            migrations: Coordinator::initial_records(&config.migrations),
            group_status: Coordinator::initial_group_status(&config.migrations, config.group_count()),
        }
    }
}

#[derive(Clone, Debug)]
struct Election {
    epoch: Epoch,
    promises: BTreeMap<NodeId, ReplicaStatus>,
    last_sent_us: u64,
    /// A demotion: prefer any other member whose log is as up to date.
    avoid: Option<NodeId>,
}

#[derive(Clone, Debug, Default)]
struct GroupWatch {
    last_primary_status_us: u64,
    not_serving_since_us: Option<u64>,
    election: Option<Election>,
    /// When a view was last pushed to each member, to push it at most once a heartbeat.
    last_view_sent_us: BTreeMap<NodeId, u64>,
}

/// What one step asks of the driver: persist the state (when `persist`) before sending anything.
#[derive(Debug, Default)]
pub struct MasterEffects {
    pub persist: bool,
    pub sends: Vec<(NodeId, StoreMessage)>,
    pub records: Vec<EventKind>,
}

pub struct Master {
    config: StoreConfig,
    state: MasterState,
    watches: Vec<GroupWatch>,
    coordinator: Coordinator,
    /// The latest local time read: timers assume it never runs backwards.
    now_us: u64,
}

impl Master {
    /// A master booting from its state (`None`: first boot).
    pub fn boot(config: StoreConfig, state: Option<MasterState>, now_us: u64) -> (Master, MasterEffects) {
        let mut effects = MasterEffects::default();
        let state = match state {
            Some(state) => state,
            None => {
                effects.persist = true;
                MasterState::initial(&config)
            }
        };
        let watches = state
            .groups
            .iter()
            .map(|_| GroupWatch { last_primary_status_us: now_us, ..GroupWatch::default() })
            .collect();
        let coordinator =
            Coordinator::new(config.migrations.clone(), config.timers.heartbeat_us).with_bugs(CoordinatorBugs {
                retry_forever: config.bugs.has(Bug::RetryForever),
                retire_before_owned: config.bugs.has(Bug::RetireBeforeOwned),
                cancel_skips_source_log: config.bugs.has(Bug::CancelSkipsSourceLog),
                cleanup_before_owned: config.bugs.has(Bug::CleanupBeforeOwned),
            });
        (Master { config, state, watches, coordinator, now_us }, effects)
    }

    pub fn state(&self) -> &MasterState {
        &self.state
    }

    pub fn routing(&self) -> RoutingTable {
        RoutingTable {
            version: self.state.routing_version,
            partition_groups: self.state.partition_groups.clone(),
            groups: self
                .state
                .groups
                .iter()
                .enumerate()
                .map(|(group, record)| {
                    // A group in reserve or retired is in no route.
                    let live = self.is_live(group as GroupId);
                    GroupRoute {
                        epoch: record.epoch,
                        primary: record.primary.filter(|_| live),
                        members: if live { record.members.clone() } else { Vec::new() },
                    }
                })
                .collect(),
        }
    }

    fn view(&self, group: GroupId, to_session: Option<u64>) -> GroupView {
        let record = &self.state.groups[group as usize];
        GroupView {
            group,
            epoch: record.epoch,
            primary: record.primary,
            primary_session: record.primary_session,
            reserved: record.reserved,
            members: record.members.clone(),
            partitions: (0..self.state.partition_groups.len() as u32)
                .filter(|&partition| self.state.partition_groups[partition as usize] == group)
                .collect(),
            to_session,
        }
    }

    fn advance_time(&mut self, now_us: u64) {
        assert!(now_us >= self.now_us, "clock_monotone: the master read {now_us} after {}", self.now_us);
        self.now_us = now_us;
    }

    pub fn on_tick(&mut self, now_us: u64, out: &mut MasterEffects) {
        self.advance_time(now_us);
        let timers = self.config.timers.clone();
        for group in 0..self.state.groups.len() as GroupId {
            if !self.is_live(group) {
                continue;
            }
            let record = &self.state.groups[group as usize];
            let watch = &mut self.watches[group as usize];
            if let Some(election) = &mut watch.election {
                if now_us >= election.last_sent_us + timers.retry_us {
                    election.last_sent_us = now_us;
                    let epoch = election.epoch;
                    for &member in &record.members {
                        if !election.promises.contains_key(&member) {
                            out.sends.push((member, StoreMessage::Prepare { group, epoch }));
                        }
                    }
                }
                continue;
            }
            let reason = if record.primary.is_none() {
                Some("no primary".to_string())
            } else if record.reserved > record.epoch {
                Some(format!("epoch {} was reserved but never completed", record.reserved))
            } else if now_us > watch.last_primary_status_us + timers.failure_timeout_us {
                Some(format!(
                    "primary {} silent for {}",
                    record.primary.unwrap_or_default(),
                    crate::units::format_us(now_us - watch.last_primary_status_us)
                ))
            } else {
                watch
                    .not_serving_since_us
                    .filter(|&since| now_us > since + timers.failure_timeout_us)
                    .map(|since| format!("primary not serving since {}", crate::units::format_us(since)))
            };
            if let Some(reason) = reason {
                self.start_election(group, now_us, &reason, out);
            }
        }
        self.coordinate(now_us, out);
    }

    /// Moves the migrations on (see `migration::coordinator`).
    fn coordinate(&mut self, now_us: u64, out: &mut MasterEffects) {
        if self.state.migrations.is_empty() {
            return;
        }
        let primaries: Vec<Option<NodeId>> = self.state.groups.iter().map(|record| record.primary).collect();
        let members: Vec<Vec<NodeId>> = self.state.groups.iter().map(|record| record.members.clone()).collect();
        let layout = self.config.layout();
        let gateways: Vec<NodeId> = (0..layout.gateways).map(|index| layout.gateway(index)).collect();
        let mut effects = CoordinatorEffects::default();
        let MasterState { routing_version, partition_groups, migrations, group_status, .. } = &mut self.state;
        self.coordinator.on_tick(
            now_us,
            migrations,
            &mut Routing { partition_groups, version: routing_version, group_status },
            &ClusterView { primaries: &primaries, members: &members, gateways: &gateways },
            &mut effects,
        );
        out.persist |= effects.persist;
        out.records.extend(effects.records);
        for (to, message) in effects.sends {
            let message = match message {
                CoordinatorMessage::Source { group, command } => MigrationMessage::Source { group, command },
                CoordinatorMessage::Target { group, command } => MigrationMessage::Target { group, command },
                CoordinatorMessage::Retire { group } => MigrationMessage::Retire { group },
                CoordinatorMessage::DiskMove { group, migration, to_disk } => {
                    MigrationMessage::DiskMove { group, migration, to_disk }
                }
            };
            out.sends.push((to, StoreMessage::Migration(message)));
        }
        for (group, node) in effects.demote {
            if self.watches[group as usize].election.is_none() {
                let reason = format!("demoting primary {node} for a disk move");
                self.start_election(group, now_us, &reason, out);
                if let Some(election) = &mut self.watches[group as usize].election {
                    election.avoid = Some(node);
                }
            }
        }
        if !effects.push_routing.is_empty() {
            let table = self.routing();
            for gateway in effects.push_routing {
                out.sends.push((gateway, StoreMessage::Routing(table.clone())));
            }
        }
    }

    fn start_election(&mut self, group: GroupId, now_us: u64, reason: &str, out: &mut MasterEffects) {
        let record = &mut self.state.groups[group as usize];
        record.reserved = record.reserved.max(record.epoch) + 1;
        let epoch = record.reserved;
        out.persist = true;
        out.records
            .push(EventKind::Note { text: format!("master: group {group}: view change to epoch {epoch} ({reason})") });
        for &member in &record.members {
            out.sends.push((member, StoreMessage::Prepare { group, epoch }));
        }
        self.watches[group as usize].election =
            Some(Election { epoch, promises: BTreeMap::new(), last_sent_us: now_us, avoid: None });
    }

    pub fn on_message(&mut self, now_us: u64, from: NodeId, message: StoreMessage, out: &mut MasterEffects) {
        self.advance_time(now_us);
        match message {
            StoreMessage::RoutingQuery => out.sends.push((from, StoreMessage::Routing(self.routing()))),
            StoreMessage::Status(status) => self.on_status(now_us, from, status, out),
            StoreMessage::Promise(status) => self.on_promise(now_us, from, status, out),
            StoreMessage::Migration(MigrationMessage::RoutingAck { version }) => {
                self.coordinator.on_routing_ack(from, version);
                self.coordinate(now_us, out);
            }
            StoreMessage::Migration(MigrationMessage::DiskMoveReport { group, migration, report }) => {
                let records = &mut self.state.migrations;
                if self.coordinator.on_disk_report(from, group, migration, report, records, now_us) {
                    out.persist = true;
                    self.coordinate(now_us, out);
                }
            }
            StoreMessage::Migration(MigrationMessage::Retired { group }) => {
                if self.coordinator.on_retired(from, group, &mut self.state.migrations) {
                    out.persist = true;
                    self.coordinate(now_us, out);
                }
            }
            StoreMessage::Migration(other) => {
                panic!("store: the master got a migration message for another role: {other:?}")
            }
            StoreMessage::Request { .. }
            | StoreMessage::Reply { .. }
            | StoreMessage::Forward { .. }
            | StoreMessage::ForwardReply { .. }
            | StoreMessage::Cancel { .. }
            | StoreMessage::Routing(_)
            | StoreMessage::Append(_)
            | StoreMessage::AppendReply(_)
            | StoreMessage::InstallSnapshot { .. }
            | StoreMessage::Verified { .. }
            | StoreMessage::Prepare { .. }
            | StoreMessage::View(_) => panic!("store: the master got a message for another role: {message:?}"),
        }
    }

    /// Whether the master runs `group`: elections, failure detection, reports. A group in
    /// reserve joins when its scale-out starts; a retired one is gone.
    fn is_live(&self, group: GroupId) -> bool {
        matches!(self.state.group_status.get(group as usize), Some(GroupStatus::Active | GroupStatus::Draining))
    }

    fn is_member(&self, group: GroupId, node: NodeId) -> bool {
        self.is_live(group)
            && self.state.groups.get(group as usize).is_some_and(|record| record.members.contains(&node))
    }

    fn on_status(&mut self, now_us: u64, from: NodeId, status: ReplicaStatus, out: &mut MasterEffects) {
        let group = status.group;
        if !self.is_member(group, from) {
            return;
        }
        let heartbeat = self.config.timers.heartbeat_us;
        let record = &self.state.groups[group as usize];
        let watch = &mut self.watches[group as usize];
        if let Some(election) = &mut watch.election {
            // A promiser that rebooted since is no longer the log it described (nor verified): it
            // must promise again, from its new session.
            if election.promises.get(&from).is_some_and(|promise| promise.session != status.session) {
                election.promises.remove(&from);
            }
        }
        let is_elected = record.primary == Some(from);
        if is_elected && status.session == record.primary_session {
            if status.is_primary && status.epoch == record.epoch && status.serving {
                // Only a serving primary's word on migrations counts: it has applied everything
                // its log held when it was elected.
                self.coordinator.on_report(group, &status.partitions, &self.state.migrations);
            }
            let watch = &mut self.watches[group as usize];
            if status.is_primary && status.epoch == record.epoch {
                watch.last_primary_status_us = now_us;
                if status.serving {
                    watch.not_serving_since_us = None;
                } else if watch.not_serving_since_us.is_none() {
                    watch.not_serving_since_us = Some(now_us);
                }
            }
        } else if is_elected && watch.election.is_none() && record.reserved == record.epoch {
            let reason = format!("primary {from} restarted");
            self.start_election(group, now_us, &reason, out);
            return;
        }
        let behind = !status.joined
            || status.epoch != record.epoch
            || status.promised < record.reserved
            || (is_elected && !status.is_primary);
        let watch = &mut self.watches[group as usize];
        let recently = watch.last_view_sent_us.get(&from).is_some_and(|&at| now_us < at + heartbeat);
        if behind && !recently {
            watch.last_view_sent_us.insert(from, now_us);
            out.sends.push((from, StoreMessage::View(self.view(group, Some(status.session)))));
        }
    }

    fn on_promise(&mut self, now_us: u64, from: NodeId, status: ReplicaStatus, out: &mut MasterEffects) {
        let group = status.group;
        if !self.is_member(group, from) {
            return;
        }
        let record = &self.state.groups[group as usize];
        let Some(election) = &mut self.watches[group as usize].election else { return };
        if status.promised != election.epoch {
            return;
        }
        election.promises.insert(from, status);
        let members = record.members.len();
        let majority = members / 2 + 1;
        let answered = election.promises.len();
        let verified = election.promises.values().filter(|status| status.verified).count();
        if answered < majority || (verified < majority && answered < members) {
            return;
        }
        // The most up-to-date log wins; ties go to a verified session, then to preference order.
        let rank = |node: &NodeId| record.members.iter().position(|member| member == node).unwrap_or(usize::MAX);
        let (&primary, chosen) = election
            .promises
            .iter()
            .max_by(|(left_node, left), (right_node, right)| {
                // A demotion (a disk move's replica) prefers any other member as up to date: the
                // election never trades the most up-to-date log for it.
                let kept = |node: &NodeId| election.avoid != Some(*node);
                (left.last_epoch, left.last_lsn)
                    .cmp(&(right.last_epoch, right.last_lsn))
                    .then_with(|| kept(left_node).cmp(&kept(right_node)))
                    .then_with(|| left.verified.cmp(&right.verified))
                    .then_with(|| rank(right_node).cmp(&rank(left_node)))
            })
            .expect("a quorum is not empty");
        let epoch = election.epoch;
        let session = chosen.session;
        let summary: Vec<String> = election
            .promises
            .iter()
            .map(|(node, status)| {
                format!(
                    "n{node}: last {}@{}{}",
                    status.last_lsn,
                    status.last_epoch,
                    if status.verified { "" } else { " unverified" }
                )
            })
            .collect();
        let record = &mut self.state.groups[group as usize];
        record.epoch = epoch;
        record.primary = Some(primary);
        record.primary_session = session;
        self.state.routing_version += 1;
        out.persist = true;
        out.records.push(EventKind::Note {
            text: format!("master: group {group}: epoch {epoch} primary {primary} ({})", summary.join(", ")),
        });
        out.records.push(EventKind::View {
            group,
            epoch,
            primary,
            session,
            members: self.state.groups[group as usize].members.clone(),
        });
        let watch = &mut self.watches[group as usize];
        watch.election = None;
        watch.last_primary_status_us = now_us;
        watch.not_serving_since_us = None;
        watch.last_view_sent_us.clear();
        let view = self.view(group, None);
        for &member in &view.members {
            out.sends.push((member, StoreMessage::View(view.clone())));
        }
    }
}

/// The program the master node runs at each boot.
pub fn program(config: StoreConfig) -> Program<StoreMessage> {
    let config = Arc::new(config);
    Arc::new(move |context: NodeContext<StoreMessage>| -> Pin<Box<dyn Future<Output = ()>>> {
        Box::pin(run(context, config.clone()))
    })
}

async fn run(context: NodeContext<StoreMessage>, config: Arc<StoreConfig>) {
    let disk = context.disk(0);
    let state = match disk.read_all(STATE_FILE).await {
        Ok(bytes) => match codec::decode_single::<MasterState>(&bytes) {
            Some(state) => Some(state),
            None => panic!("store: the master's state file is damaged; the cluster's configuration is lost"),
        },
        Err(_) => None,
    };
    let clock = LocalClock::default();
    let (mut master, effects) = Master::boot((*config).clone(), state, clock.now_us(&context));
    carry_out(&context, &clock, &master, effects).await;
    // One timer for the next tick, kept across messages: it is replaced only when it fires.
    let tick_us = config.timers.heartbeat_us;
    let mut tick = Box::pin(clock.sleep_us(&context, 0));
    loop {
        let received = recv_or_timer(&context, tick.as_mut()).await;
        let now = clock.now_us(&context);
        let mut effects = MasterEffects::default();
        match received {
            Some(envelope) => master.on_message(now, envelope.from, envelope.payload, &mut effects),
            None => {
                tick = Box::pin(clock.sleep_us(&context, tick_us));
                master.on_tick(now, &mut effects);
            }
        }
        carry_out(&context, &clock, &master, effects).await;
    }
}

/// Persists the state if it changed, then records and sends. A failed write is retried: nothing
/// leaves until the state it depends on is durable, and the trace tells of a decision (a `view`)
/// only once it is.
async fn carry_out(context: &NodeContext<StoreMessage>, clock: &LocalClock, master: &Master, effects: MasterEffects) {
    if effects.persist {
        let bytes = codec::encode(master.state());
        while let Err(error) = crate::sut::durable::replace_file(&context.disk(0), STATE_FILE, &bytes).await {
            context
                .record(EventKind::Note { text: format!("master: could not persist its state ({error}); retrying") });
            clock.sleep_us(context, 1_000).await;
        }
    }
    for record in effects.records {
        context.record(record);
    }
    for (to, message) in effects.sends {
        context.send(to, message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sut::store::{Bugs, Lsn, StoreTimers};

    fn config() -> StoreConfig {
        StoreConfig {
            storage_nodes: 3,
            reserve_nodes: 0,
            disks_per_node: 1,
            groups: 1,
            replicas: 3,
            partitions: 4,
            gateways: 1,
            timers: StoreTimers::default(),
            bugs: Bugs::default(),
            migrations: Vec::new(),
            new_groups: Vec::new(),
        }
    }

    fn status(session: u64, last_lsn: Lsn, verified: bool, promised: Epoch) -> ReplicaStatus {
        ReplicaStatus {
            group: 0,
            session,
            promised,
            epoch: 0,
            is_primary: false,
            serving: false,
            last_epoch: 1,
            last_lsn,
            commit_lsn: 0,
            verified,
            joined: true,
            partitions: Vec::new(),
        }
    }

    /// A booted master that has started the first election (epoch 1).
    fn electing() -> Master {
        let (mut master, _) = Master::boot(config(), None, 0);
        let mut effects = MasterEffects::default();
        master.on_tick(1_000, &mut effects);
        assert!(effects.persist, "the reserved epoch is persisted with the prepares");
        let prepares =
            effects.sends.iter().filter(|(_, message)| matches!(message, StoreMessage::Prepare { epoch: 1, .. }));
        assert_eq!(prepares.count(), 3);
        master
    }

    fn promise(master: &mut Master, node: NodeId, status: ReplicaStatus) -> MasterEffects {
        let mut effects = MasterEffects::default();
        master.on_message(2_000, node, StoreMessage::Promise(status), &mut effects);
        effects
    }

    #[test]
    fn unverified_promises_count_only_when_every_member_answers() {
        let mut master = electing();
        promise(&mut master, 0, status(10, 5, false, 1));
        promise(&mut master, 1, status(11, 9, false, 1));
        assert_eq!(master.state().groups[0].primary, None, "two unverified sessions of three elected a primary");
        let effects = promise(&mut master, 2, status(12, 7, false, 1));
        assert!(effects.persist);
        let record = &master.state().groups[0];
        assert_eq!((record.epoch, record.primary, record.primary_session), (1, Some(1), 11), "the longest log wins");
    }

    #[test]
    fn a_verified_majority_elects_its_most_up_to_date_member() {
        let mut master = electing();
        promise(&mut master, 0, status(10, 5, true, 1));
        assert_eq!(master.state().groups[0].primary, None, "one promise is no quorum");
        let effects = promise(&mut master, 2, status(12, 8, true, 1));
        assert_eq!(master.state().groups[0].primary, Some(2));
        let views = effects.sends.iter().filter(|(_, message)| matches!(message, StoreMessage::View(_))).count();
        assert_eq!(views, 3, "every member hears the new view");
        let recorded = effects.records.iter().any(|record| {
            matches!(record, EventKind::View { group: 0, epoch: 1, primary: 2, session: 12, members } if members == &vec![0, 1, 2])
        });
        assert!(recorded, "the election is recorded as a typed view event: {:?}", effects.records);
    }

    #[test]
    fn a_promiser_that_rebooted_since_must_promise_again() {
        let mut master = electing();
        promise(&mut master, 0, status(10, 5, true, 1));
        let mut effects = MasterEffects::default();
        master.on_message(2_000, 0, StoreMessage::Status(status(77, 3, false, 1)), &mut effects);
        promise(&mut master, 1, status(11, 5, true, 1));
        assert_eq!(master.state().groups[0].primary, None, "node 0's promise from before its reboot counted");
        promise(&mut master, 0, status(77, 3, false, 1));
        promise(&mut master, 2, status(12, 4, false, 1));
        assert_eq!(master.state().groups[0].primary, Some(1), "every member answered: the longest log wins");
    }

    #[test]
    fn promises_for_another_epoch_do_not_count() {
        let mut master = electing();
        promise(&mut master, 0, status(10, 5, true, 7));
        promise(&mut master, 1, status(11, 5, true, 7));
        assert_eq!(master.state().groups[0].primary, None);
    }

    #[test]
    fn a_primary_that_restarted_is_replaced_and_its_epoch_never_reused() {
        let mut master = electing();
        promise(&mut master, 0, status(10, 5, true, 1));
        promise(&mut master, 1, status(11, 5, true, 1));
        assert_eq!(master.state().groups[0].primary, Some(0));
        // Node 0 reports from a new session: it rebooted, so it may not lead epoch 1.
        let mut effects = MasterEffects::default();
        master.on_message(3_000, 0, StoreMessage::Status(status(99, 5, false, 1)), &mut effects);
        assert!(effects.persist);
        assert_eq!(master.state().groups[0].reserved, 2);
        assert!(effects.sends.iter().any(|(_, message)| matches!(message, StoreMessage::Prepare { epoch: 2, .. })));
        // A master that restarts mid-election reserves a newer epoch rather than finishing the old.
        let state = master.state().clone();
        let (mut restarted, _) = Master::boot(config(), Some(state), 4_000);
        let mut effects = MasterEffects::default();
        restarted.on_tick(5_000, &mut effects);
        assert_eq!(restarted.state().groups[0].reserved, 3);
    }

    #[test]
    fn a_silent_primary_is_replaced_after_the_failure_timeout() {
        let mut master = electing();
        promise(&mut master, 0, status(10, 5, true, 1));
        promise(&mut master, 1, status(11, 5, true, 1));
        let timeout = StoreTimers::default().failure_timeout_us;
        let mut effects = MasterEffects::default();
        master.on_tick(2_000 + timeout, &mut effects);
        assert_eq!(master.state().groups[0].reserved, 1, "replaced before the timeout passed");
        master.on_tick(2_001 + timeout, &mut effects);
        assert_eq!(master.state().groups[0].reserved, 2);
    }
}
