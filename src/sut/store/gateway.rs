//! A gateway: routes each client operation to the primary of the group that owns its partition,
//! by a routing table cached from the master, and retries until the client's time is up.
//!
//! Retries are safe because every attempt carries the client's op id: the state machine applies
//! a write at most once and answers a retry with the first result. What the gateway reports:
//! - `ok` with the result, from any attempt (or from its cancellation, which found it applied);
//! - `fail` for a write only once the primary answered its cancellation with `Refused(Cancelled)`
//!   (below); for a read, whenever no attempt was answered (a read changes nothing);
//! - `unknown` otherwise: some copy of some attempt may still be logged and applied.
//!
//! **The `fail` contract: "certainly not applied, now or ever".** A refusal (`NotPrimary`,
//! `Unavailable`, `NotOwner`, `Fenced`) speaks for one copy of one attempt at one moment. The
//! network may duplicate and delay a `Forward`: a copy refused by a primary that was not serving
//! yet can reach it again a millisecond later, once it serves, and be logged and applied after
//! the gateway gave up on refusals alone. (This happened: a gateway answered `fail` for a write
//! that then applied, caught by `store-duplicated-forwards`.) So no refusal is final, and neither
//! is a deadline: a stale copy can be logged at any later time, by any primary its route reaches.
//!
//! What is final is the partition's log. Before a write may be reported `fail`, the gateway
//! sends `Cancel` for its op id to the partition's serving primary, which logs a `Cancel` entry
//! (unless the op's fate is already in the dedup table) and answers once it applied. Applying
//! settles the op id in the partition's dedup table: `Applied(result)` if a copy of the write was
//! ordered first (the answer is `Done(result)` and the gateway reports `ok`), else `Cancelled`.
//! From then on every copy of every attempt, from this gateway run or any other (a client resend,
//! a gateway that restarted), meets that entry: the state machine refuses a write whose op id is
//! cancelled, and one whose client has settled a newer op is stale. The entry is committed (on a
//! majority, in the log order every later primary inherits), and the dedup table travels with the
//! partition's snapshot, into checkpoints, installed snapshots, and, later, a migration's target.
//! So `fail` holds wherever the partition goes, whatever clocks say. A migration's refusals
//! (fenced, moved) therefore mean "not here, not now" and may be retried elsewhere; a gateway that
//! gives up on such a write cancels it through the partition's current owner like any other.
//!
//! A write keeps the last part of its time (`retry` or a quarter of it, whichever is less) for
//! the cancellation; if no primary confirms it in time, the answer is `unknown`.
//!
//! **Migration holds.** A write to a partition frozen for a cut-over waits at the gateway, within
//! its own pause budget and the freeze's window, whichever ends first, and goes on when the freeze
//! is released (to the new owner, after a commit). A source that refuses it as fenced says what is
//! left of the attempt's window (`Answer::Frozen`), so a gateway that missed the freeze holds no
//! longer than one that saw it. A write whose budget runs out stops waiting and cancels itself.
//! A stub's `Moved` is a redirect, not a pause: the write goes to the new owner at once.
//!
//! A request the client resent is worked on once at a time (a duplicate of one under way is
//! dropped), and one already answered is answered again from memory rather than run again. The gateway refreshes its routing table from the master on a refusal that says the
//! route is wrong, on a timeout, and when a primary steps down. It never holds state a crash could
//! make it regret: a restarted gateway starts with an empty cache.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use super::entry::{Op, OpId};
use super::local_clock::LocalClock;
use super::mailbox::{Replies, Signal};
use super::message::{Answer, ClientOutcome, RoutingTable, StoreMessage};
use super::migration::design::REFERENCE;
use super::migration::holds::Holds;
use super::migration::messages::{MigrationMessage, MigrationRef};
use super::state_machine::Refusal;
use super::{partition_of, Bug, PartitionId, StoreConfig};
use crate::trace::{EventKind, WriteRefusal};
use crate::world::{NodeContext, NodeId, Program};

/// The program every gateway runs at each boot.
pub fn program(config: StoreConfig) -> Program<StoreMessage> {
    let config = Arc::new(config);
    Arc::new(move |context: NodeContext<StoreMessage>| -> Pin<Box<dyn Future<Output = ()>>> {
        Box::pin(run(context, config.clone()))
    })
}

struct Gateway {
    routing: Option<RoutingTable>,
    /// When the master was last asked, so a burst of failures asks once.
    routing_asked_at_us: Option<u64>,
    /// The last attempt id handed out.
    next_request: u64,
    /// Client requests being worked on, so a duplicated request is not run twice at once.
    working: BTreeSet<(u32, u64)>,
    /// Partitions frozen for a migration's cut-over, and where moved ones went.
    holds: Holds,
    /// The answers of the latest requests, so a request the client resent after its answer left
    /// is answered again rather than run again (a second run could pause a write that is done).
    answered: BTreeMap<(u32, u64), ClientOutcome>,
    answered_order: VecDeque<(u32, u64)>,
    /// Wakes held writes when a freeze is released, so a write's pause ends when its freeze does.
    released: Signal,
}

/// How many answers a gateway remembers for resent requests.
const ANSWERS_KEPT: usize = 4096;

type Shared = Rc<RefCell<Gateway>>;

async fn run(context: NodeContext<StoreMessage>, config: Arc<StoreConfig>) {
    let shared: Shared = Rc::new(RefCell::new(Gateway {
        routing: None,
        routing_asked_at_us: None,
        // Replies are matched to attempts by this id alone, and primaries answer attempts logged
        // long ago: a restarted gateway must not reuse its predecessor's ids, so each boot
        // counts from a random point.
        next_request: context.with_rng(|rng| rand::Rng::gen::<u64>(rng) >> 1),
        working: BTreeSet::new(),
        holds: Holds::default().with_shared_window(config.bugs.has(Bug::SharedHoldWindow)),
        answered: BTreeMap::new(),
        answered_order: VecDeque::new(),
        released: Signal::default(),
    }));
    let replies: Replies<u64, Answer> = Replies::default();
    let clock = LocalClock::default();
    ask_routing(&context, &clock, &config, &shared);
    loop {
        let envelope = context.recv().await;
        match envelope.payload {
            StoreMessage::Request { client, seq, op, timeout_us } => {
                let known = shared.borrow().answered.get(&(client, seq)).cloned();
                if let Some(outcome) = known {
                    context.send(envelope.from, StoreMessage::Reply { client, seq, outcome });
                    continue;
                }
                if !shared.borrow_mut().working.insert((client, seq)) {
                    continue;
                }
                let task_context = context.clone();
                let task_config = config.clone();
                let task_shared = shared.clone();
                let task_replies = replies.clone();
                let task_clock = clock.clone();
                let from = envelope.from;
                madsim::task::spawn_local(async move {
                    let request = ClientRequest { client, seq, op, timeout_us };
                    let outcome =
                        serve(&task_context, &task_clock, &task_config, &task_shared, &task_replies, request).await;
                    {
                        let mut gateway = task_shared.borrow_mut();
                        gateway.working.remove(&(client, seq));
                        gateway.answered.insert((client, seq), outcome.clone());
                        gateway.answered_order.push_back((client, seq));
                        if gateway.answered_order.len() > ANSWERS_KEPT {
                            if let Some(oldest) = gateway.answered_order.pop_front() {
                                gateway.answered.remove(&oldest);
                            }
                        }
                    }
                    task_context.send(from, StoreMessage::Reply { client, seq, outcome });
                });
            }
            StoreMessage::ForwardReply { request, answer } => {
                replies.deliver(&request, answer);
            }
            StoreMessage::Routing(table) => {
                let mut gateway = shared.borrow_mut();
                if gateway.routing.as_ref().is_none_or(|current| table.version > current.version) {
                    for (partition, &group) in table.partition_groups.iter().enumerate() {
                        gateway.holds.routed(partition as u32, group);
                    }
                    gateway.routing = Some(table);
                }
                // The master waits for every gateway to know a migration's new route before the
                // source drops its stub.
                let version = gateway.routing.as_ref().map_or(0, |current| current.version);
                context.send(envelope.from, StoreMessage::Migration(MigrationMessage::RoutingAck { version }));
            }
            StoreMessage::Migration(MigrationMessage::Freeze {
                source_group,
                migration,
                partition,
                hold_us,
                pause_budget_us,
            }) => {
                let now = clock.now_us(&context);
                let window = if config.bugs.has(Bug::UnboundedHold) { u64::MAX / 4 } else { hold_us };
                shared.borrow_mut().holds.freeze(partition, migration, window, pause_budget_us, now);
                context.send(
                    envelope.from,
                    StoreMessage::Migration(MigrationMessage::FreezeAck { group: source_group, migration, partition }),
                );
            }
            StoreMessage::Migration(MigrationMessage::Release { migration, partition, moved_to, hold_left_us }) => {
                let now = clock.now_us(&context);
                let mut gateway = shared.borrow_mut();
                gateway.holds.learn_window(partition, migration, hold_left_us, now);
                gateway.holds.release(partition, migration, moved_to);
                gateway.released.notify();
            }
            other @ (StoreMessage::Reply { .. }
            | StoreMessage::Forward { .. }
            | StoreMessage::Cancel { .. }
            | StoreMessage::RoutingQuery
            | StoreMessage::Append(_)
            | StoreMessage::AppendReply(_)
            | StoreMessage::InstallSnapshot { .. }
            | StoreMessage::Verified { .. }
            | StoreMessage::Status(_)
            | StoreMessage::Prepare { .. }
            | StoreMessage::Promise(_)
            | StoreMessage::View(_)
            | StoreMessage::Migration(_)) => panic!("store: a gateway got a message for another role: {other:?}"),
        }
    }
}

/// Asks the master for the routing table, at most once per heartbeat.
fn ask_routing(context: &NodeContext<StoreMessage>, clock: &LocalClock, config: &StoreConfig, shared: &Shared) {
    let now = clock.now_us(context);
    let mut gateway = shared.borrow_mut();
    if gateway.routing_asked_at_us.is_some_and(|at| now < at + config.timers.heartbeat_us) {
        return;
    }
    gateway.routing_asked_at_us = Some(now);
    context.send(config.layout().master(), StoreMessage::RoutingQuery);
}

/// One client request as the gateway works on it.
struct ClientRequest {
    client: u32,
    seq: u64,
    op: Op,
    timeout_us: u64,
}

/// What a request's attempts have learnt so far: where to aim next and what went wrong last.
struct Aim {
    target_override: Option<NodeId>,
    attempt: usize,
    last_problem: String,
}

/// What one phase of a request asks its primary: to do the operation, or to cancel it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ask {
    Do,
    Cancel,
}

/// How long one request has been paused by migrations: its holds so far, summed.
struct Pause {
    paused_us: u64,
    /// The hold under way: its attempt and when it began.
    holding: Option<(MigrationRef, u64)>,
    /// The attempt the request was last held for.
    last_held_for: Option<MigrationRef>,
    /// Planted bug `abort_pause_not_counted`: a hold for a later attempt forgets earlier ones.
    forget_on_retry: bool,
}

impl Pause {
    /// Starts holding the request for `migration` (recorded), unless it already is.
    fn hold(
        &mut self,
        context: &NodeContext<StoreMessage>,
        clock: &LocalClock,
        config: &StoreConfig,
        migration: MigrationRef,
        partition: PartitionId,
        op_id: OpId,
    ) {
        if self.holding.is_some() {
            return;
        }
        if self.forget_on_retry && self.last_held_for.is_some_and(|earlier| earlier != migration) {
            // Planted bug: the aborted attempt's pause is forgotten; the retry pauses afresh.
            self.paused_us = 0;
        }
        self.last_held_for = Some(migration);
        self.holding = Some((migration, clock.now_us(context)));
        context.record(EventKind::WriteHeld {
            migration: migration_name(config, migration),
            attempt: migration.attempt,
            partition,
            client: op_id.client,
            seq: op_id.seq,
        });
    }

    /// Ends the hold under way (recorded), adding its length to the request's pause.
    fn release(
        &mut self,
        context: &NodeContext<StoreMessage>,
        clock: &LocalClock,
        config: &StoreConfig,
        partition: PartitionId,
        op_id: OpId,
    ) {
        let Some((migration, since)) = self.holding.take() else { return };
        self.paused_us += clock.now_us(context).saturating_sub(since);
        context.record(EventKind::WriteReleased {
            migration: migration_name(config, migration),
            attempt: migration.attempt,
            partition,
            client: op_id.client,
            seq: op_id.seq,
        });
    }

    /// How much longer the request may be held: its budget, as this gateway's clock may spend
    /// it (`Design::write_budget_us`), minus what it has been paused.
    fn left_us(&self, now_us: u64, budget_us: u64) -> u64 {
        let current = self.holding.map_or(0, |(_, since)| now_us.saturating_sub(since));
        REFERENCE.write_budget_us(budget_us).saturating_sub(self.paused_us + current)
    }
}

fn migration_name(config: &StoreConfig, migration: MigrationRef) -> String {
    config
        .migrations
        .get(migration.id as usize)
        .map_or_else(|| format!("migration {}", migration.id), |spec| spec.name.clone())
}

fn pause_budget_us(config: &StoreConfig, migration: MigrationRef) -> u64 {
    config.migrations.get(migration.id as usize).map_or(0, |spec| spec.pause_budget_us)
}

async fn serve(
    context: &NodeContext<StoreMessage>,
    clock: &LocalClock,
    config: &StoreConfig,
    shared: &Shared,
    replies: &Replies<u64, Answer>,
    request: ClientRequest,
) -> ClientOutcome {
    let ClientRequest { client, seq, op, timeout_us } = request;
    let op_id = OpId { client, seq };
    let partition = op_partition(config, &op);
    let write = op.is_write();
    // The client's time, measured from now by this node's clock.
    let deadline_us = clock.now_us(context).saturating_add(timeout_us);
    // Planted bug `fail_without_cancel`: trust refusals, never cancel.
    let trust_refusals = write && config.bugs.has(Bug::FailWithoutCancel);
    let unbounded_hold = config.bugs.has(Bug::UnboundedHold);
    // An attempt that timed out or was lost after logging: only a cancellation could settle it.
    let mut possibly_logged = false;
    // A write keeps the end of its time to cancel itself, should no attempt answer for it.
    let cancel_us = if write && !trust_refusals { config.timers.retry_us.min(timeout_us / 4) } else { 0 };
    let mut aim = Aim {
        target_override: None,
        attempt: 0,
        last_problem: String::from("no attempt was made before the deadline"),
    };
    let mut pause = Pause {
        paused_us: 0,
        holding: None,
        last_held_for: None,
        forget_on_retry: config.bugs.has(Bug::AbortPauseNotCounted),
    };
    let phases = [(Ask::Do, deadline_us - cancel_us), (Ask::Cancel, deadline_us)];
    for (ask, until_us) in phases {
        if ask == Ask::Cancel && !write {
            // A read that was not done changed nothing: it simply failed.
            return ClientOutcome::Fail(aim.last_problem);
        }
        if ask == Ask::Cancel && trust_refusals && aim.attempt > 0 && !possibly_logged {
            return ClientOutcome::Fail(aim.last_problem);
        }
        loop {
            let now = clock.now_us(context);
            if now >= until_us {
                break;
            }
            let remaining = until_us - now;
            // A write to a frozen partition waits here, within its own budget, until the freeze
            // is released or its window ends; it is never sent to a source that would refuse it.
            // (A cancellation is not held: it passes a fence.)
            let frozen = if write && ask == Ask::Do { shared.borrow_mut().holds.frozen(partition, now) } else { None };
            if let Some(freeze) = frozen {
                pause.hold(context, clock, config, freeze.migration, partition, op_id);
                let left = pause.left_us(now, freeze.pause_budget_us);
                if left == 0 && !unbounded_hold {
                    pause.release(context, clock, config, partition, op_id);
                    aim.last_problem = format!("partition {partition} stayed frozen past the write's pause budget");
                    break;
                }
                // Until the freeze is released (a notice wakes this), its window ends, or the
                // write's budget runs out.
                let window = freeze.until_us.saturating_sub(now);
                let wait = if unbounded_hold { window } else { left.min(window) };
                let released = shared.borrow().released.clone();
                released.wait(clock.sleep_us(context, wait.min(remaining).max(1))).await;
                continue;
            }
            pause.release(context, clock, config, partition, op_id);
            let moved = shared.borrow().holds.moved_to(partition);
            let route = shared.borrow().routing.as_ref().map(|table| {
                let group = moved.unwrap_or(table.partition_groups[partition as usize]);
                // A group in reserve or retired has no members in the table this gateway holds:
                // no route until a newer table names them.
                (group, table.groups.get(group as usize).filter(|route| !route.members.is_empty()).cloned())
            });
            let Some((group, Some(route))) = route else {
                ask_routing(context, clock, config, shared);
                clock.sleep_us(context, pause_us(config).min(remaining)).await;
                continue;
            };
            let target = if config.bugs.has(Bug::StaleLocalRead) && !write {
                // Planted bug: any replica will do for a read.
                route.members[(seq as usize + aim.attempt) % route.members.len()]
            } else {
                aim.target_override
                    .or(route.primary)
                    .unwrap_or_else(|| route.members[aim.attempt % route.members.len()])
            };
            aim.attempt += 1;
            let request = {
                let mut gateway = shared.borrow_mut();
                gateway.next_request += 1;
                gateway.next_request
            };
            let message = match ask {
                Ask::Do => StoreMessage::Forward { group, request, op_id, partition, op: op.clone() },
                Ask::Cancel => StoreMessage::Cancel { group, request, op_id, partition },
            };
            replies.expect(request);
            context.send(target, message);
            let wait_us = config.timers.retry_us.min(remaining).max(1);
            let answer = replies.wait(request, clock.sleep_us(context, wait_us)).await;
            let refused = |migration: MigrationRef, reason: WriteRefusal| {
                context.record(EventKind::WriteRefused {
                    migration: migration_name(config, migration),
                    attempt: migration.attempt,
                    partition,
                    client,
                    seq,
                    reason,
                });
            };
            match answer {
                Some(Answer::Done(result)) => return ClientOutcome::Ok(result),
                Some(Answer::Refused(Refusal::Cancelled)) => {
                    // Committed in the partition's log before any copy of the write applied:
                    // no attempt can ever apply it.
                    return ClientOutcome::Fail(format!("cancelled ({})", aim.last_problem));
                }
                Some(Answer::Refused(Refusal::Stale)) => {
                    // A newer operation of the client was settled: this one may have been applied
                    // before it, or never; either way no attempt can apply it now.
                    return ClientOutcome::Unknown("a newer operation of the client was settled first".to_string());
                }
                Some(Answer::Refused(Refusal::NotOwner)) => {
                    aim.last_problem = format!("group {group} does not own partition {partition}");
                    ask_routing(context, clock, config, shared);
                    aim.target_override = None;
                    wait_a_little(context, clock, config, until_us).await;
                }
                Some(Answer::Refused(Refusal::Moved { to, migration })) => {
                    // The source's stub: the partition went to `to`. A redirect, not a pause: go
                    // there now (a cancellation too: the op's fate travelled with the partition).
                    aim.last_problem = format!("partition {partition} moved to group {to}");
                    if ask == Ask::Do {
                        refused(migration, WriteRefusal::Moved);
                    }
                    shared.borrow_mut().holds.release(partition, migration, Some(to));
                    aim.target_override = None;
                    ask_routing(context, clock, config, shared);
                }
                Some(Answer::Frozen { .. } | Answer::Refused(Refusal::Fenced(_))) if ask == Ask::Cancel => {
                    // A fenced partition takes no cancellation either (nothing but the attempt's
                    // decision follows a fence): ask again shortly; the decision comes within
                    // the fence's lease. Not a write's pause: the write already stopped waiting.
                    aim.last_problem = format!("partition {partition} is fenced for a cut-over");
                    wait_a_little(context, clock, config, until_us).await;
                }
                Some(Answer::Frozen { migration, hold_us }) => {
                    // The source fenced the partition (this gateway missed the freeze, or the
                    // write was on its way): hold it, no longer than what is left of the
                    // attempt's window.
                    aim.last_problem = format!("partition {partition} is fenced for a cut-over");
                    refused(migration, WriteRefusal::Fenced);
                    let budget = pause_budget_us(config, migration);
                    let window = if unbounded_hold { u64::MAX / 4 } else { hold_us };
                    let now = clock.now_us(context);
                    shared.borrow_mut().holds.freeze(partition, migration, window, budget, now);
                    pause.hold(context, clock, config, migration, partition, op_id);
                    if pause.left_us(now, budget) == 0 && !unbounded_hold {
                        // Refused until its budget ran out (each refusal a short hold): it stops
                        // waiting and cancels itself.
                        pause.release(context, clock, config, partition, op_id);
                        aim.last_problem = format!("partition {partition} stayed fenced past the write's pause budget");
                        break;
                    }
                    if window == 0 {
                        wait_a_little(context, clock, config, until_us).await;
                    }
                }
                Some(Answer::Refused(Refusal::Fenced(migration))) => {
                    // Fenced in the state machine, with no stream here to say for how long (a
                    // new primary about to lift its predecessor's fence): a short wait, counted.
                    aim.last_problem = format!("partition {partition} is fenced for a cut-over");
                    refused(migration, WriteRefusal::Fenced);
                    pause.hold(context, clock, config, migration, partition, op_id);
                    let left = pause.left_us(clock.now_us(context), pause_budget_us(config, migration));
                    if left == 0 && !unbounded_hold {
                        pause.release(context, clock, config, partition, op_id);
                        break;
                    }
                    clock.sleep_us(context, pause_us(config).min(left.max(1))).await;
                }
                Some(Answer::Refused(Refusal::Incoming(migration))) => {
                    // The target does not own the partition yet: its handoff is on the way. A
                    // short wait, counted as the write's pause (a cancellation just waits).
                    aim.last_problem = format!("group {group} is still receiving partition {partition}");
                    aim.target_override = None;
                    ask_routing(context, clock, config, shared);
                    let now = clock.now_us(context);
                    let in_window = shared.borrow().holds.window_open(partition, migration, now);
                    if ask == Ask::Cancel || !in_window {
                        // A cancellation just waits; so does a write once the attempt's window is
                        // over (the target committed and is failing over: its availability, not
                        // a migration's hold).
                        wait_a_little(context, clock, config, until_us).await;
                        continue;
                    }
                    pause.hold(context, clock, config, migration, partition, op_id);
                    let left = pause.left_us(clock.now_us(context), pause_budget_us(config, migration));
                    if left == 0 && !unbounded_hold {
                        pause.release(context, clock, config, partition, op_id);
                        aim.last_problem =
                            format!("partition {partition} was not owned by anyone within the write's pause budget");
                        break;
                    }
                    clock.sleep_us(context, pause_us(config).min(left.max(1))).await;
                }
                Some(Answer::NotPrimary { hint }) => {
                    aim.last_problem = format!("node {target} is not the primary of group {group}");
                    aim.target_override = hint.filter(|&hinted| hinted != target);
                    if aim.target_override.is_none() {
                        ask_routing(context, clock, config, shared);
                        wait_a_little(context, clock, config, until_us).await;
                    }
                }
                Some(Answer::Unavailable) => {
                    aim.last_problem = format!("the primary of group {group} is not serving yet");
                    wait_a_little(context, clock, config, until_us).await;
                }
                Some(Answer::Lost) => {
                    possibly_logged = true;
                    aim.last_problem = format!("the primary of group {group} stepped down after logging it");
                    aim.target_override = None;
                    ask_routing(context, clock, config, shared);
                }
                None => {
                    possibly_logged = true;
                    aim.last_problem = format!("node {target} did not answer");
                    // Try the next member next time, in case the route's primary is gone.
                    let position = route.members.iter().position(|&member| member == target).unwrap_or(0);
                    aim.target_override = Some(route.members[(position + 1) % route.members.len()]);
                    ask_routing(context, clock, config, shared);
                }
            }
        }
        pause.release(context, clock, config, partition, op_id);
    }
    ClientOutcome::Unknown(format!("{}; its cancellation was not confirmed in time", aim.last_problem))
}

fn op_partition(config: &StoreConfig, op: &Op) -> PartitionId {
    partition_of(op.key(), config.partitions)
}

/// How long to wait before asking again after a refusal that may soon change.
fn pause_us(config: &StoreConfig) -> u64 {
    (config.timers.heartbeat_us / 2).max(1)
}

/// Waits a pause, but not past `until_us`.
async fn wait_a_little(context: &NodeContext<StoreMessage>, clock: &LocalClock, config: &StoreConfig, until_us: u64) {
    let left = until_us.saturating_sub(clock.now_us(context));
    clock.sleep_us(context, pause_us(config).min(left)).await;
}
