//! A gateway: routes each client operation to the primary of the group that owns its partition,
//! by a routing table cached from the master, and retries until the client's deadline.
//!
//! Retries are safe because every attempt carries the client's op id: the state machine applies
//! a write at most once and answers a retry with the first result. What the gateway reports:
//! - `ok` with the result, from any attempt;
//! - `fail` only when every attempt was refused before it could be logged (not the owner, fenced,
//!   not the primary, not yet serving): the write certainly did not happen;
//! - `unknown` when some attempt may have been logged (it timed out, or its primary stepped down
//!   after logging it): a later commit of that attempt cannot be ruled out.
//!
//! A request the client resent is worked on once at a time (a duplicate of one under way is
//! dropped), and, if it is a write, never reported `fail`: an earlier attempt may exist.
//!
//! It refreshes its routing table from the master on a refusal that says the route is wrong, on a
//! timeout, and when a primary steps down. It never holds state a crash could make it regret: a
//! restarted gateway starts with an empty cache.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use super::entry::{Op, OpId};
use super::mailbox::{Replies, Signal};
use super::message::{Answer, ClientOutcome, RoutingTable, StoreMessage};
use super::migration::holds::Holds;
use super::migration::messages::{MigrationMessage, MigrationRef};
use super::state_machine::Refusal;
use super::{partition_of, Bug, PartitionId, StoreConfig};
use crate::trace::{EventKind, WriteRefusal};
use crate::world::clock;
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
        holds: Holds::default(),
        answered: BTreeMap::new(),
        answered_order: VecDeque::new(),
        released: Signal::default(),
    }));
    let replies: Replies<u64, Answer> = Replies::default();
    ask_routing(&context, &config, &shared);
    loop {
        let envelope = context.recv().await;
        match envelope.payload {
            StoreMessage::Request { client, seq, op, deadline_us, resent } => {
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
                let from = envelope.from;
                madsim::task::spawn_local(async move {
                    let request = ClientRequest { client, seq, op, deadline_us, resent };
                    let outcome = serve(&task_context, &task_config, &task_shared, &task_replies, request).await;
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
                let now = context.now_us();
                let window = if config.bugs.has(Bug::UnboundedHold) { u64::MAX / 4 } else { hold_us };
                shared.borrow_mut().holds.freeze(partition, migration, window, pause_budget_us, now);
                context.send(
                    envelope.from,
                    StoreMessage::Migration(MigrationMessage::FreezeAck { group: source_group, migration, partition }),
                );
            }
            StoreMessage::Migration(MigrationMessage::Release { migration, partition, moved_to }) => {
                let mut gateway = shared.borrow_mut();
                gateway.holds.release(partition, migration, moved_to);
                gateway.released.notify();
            }
            other => panic!("store: a gateway got a message for another role: {other:?}"),
        }
    }
}

/// Asks the master for the routing table, at most once per heartbeat.
fn ask_routing(context: &NodeContext<StoreMessage>, config: &StoreConfig, shared: &Shared) {
    let now = context.now_us();
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
    deadline_us: u64,
    resent: bool,
}

/// How long one request has been paused by migrations: its holds so far, summed.
struct Pause {
    paused_us: u64,
    /// The hold under way: its attempt and when it began.
    holding: Option<(MigrationRef, u64)>,
}

impl Pause {
    /// Starts holding the request for `migration` (recorded), unless it already is.
    fn hold(
        &mut self,
        context: &NodeContext<StoreMessage>,
        config: &StoreConfig,
        migration: MigrationRef,
        partition: PartitionId,
        op_id: OpId,
    ) {
        if self.holding.is_some() {
            return;
        }
        self.holding = Some((migration, context.now_us()));
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
        config: &StoreConfig,
        partition: PartitionId,
        op_id: OpId,
    ) {
        let Some((migration, since)) = self.holding.take() else { return };
        self.paused_us += context.now_us().saturating_sub(since);
        context.record(EventKind::WriteReleased {
            migration: migration_name(config, migration),
            attempt: migration.attempt,
            partition,
            client: op_id.client,
            seq: op_id.seq,
        });
    }

    /// How much longer the request may be held: its budget minus what it has been paused.
    fn left_us(&self, now_us: u64, budget_us: u64) -> u64 {
        let current = self.holding.map_or(0, |(_, since)| now_us.saturating_sub(since));
        budget_us.saturating_sub(self.paused_us + current)
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
    config: &StoreConfig,
    shared: &Shared,
    replies: &Replies<u64, Answer>,
    request: ClientRequest,
) -> ClientOutcome {
    let ClientRequest { client, seq, op, deadline_us, resent } = request;
    let op_id = OpId { client, seq };
    let partition = partition_of(op.key(), config.partitions);
    let write = op.is_write();
    let pause_us = (config.timers.heartbeat_us / 2).max(1);
    let unbounded_hold = config.bugs.has(Bug::UnboundedHold);
    // A resent write may have been logged by an attempt this gateway no longer knows of (it ran
    // before this gateway restarted, or its reply was lost): never report it failed.
    let mut possibly_applied = resent && write;
    let mut last_problem = String::from("no attempt was made before the deadline");
    let mut target_override: Option<NodeId> = None;
    let mut attempt: usize = 0;
    let mut pause = Pause { paused_us: 0, holding: None };
    loop {
        let now = context.now_us();
        if now >= deadline_us {
            break;
        }
        let remaining = deadline_us - now;
        // A write to a frozen partition waits here, within its own budget, until the freeze is
        // released or its window ends; it is never sent to a source that would refuse it.
        let frozen = if write { shared.borrow_mut().holds.frozen(partition, now) } else { None };
        if let Some(freeze) = frozen {
            pause.hold(context, config, freeze.migration, partition, op_id);
            let left = pause.left_us(now, freeze.pause_budget_us);
            if left == 0 && !unbounded_hold {
                pause.release(context, config, partition, op_id);
                last_problem = format!("partition {partition} stayed frozen past the write's pause budget");
                break;
            }
            // Until the freeze is released (a notice wakes this), its window ends, or the write's
            // budget runs out.
            let window = freeze.until_us.saturating_sub(now);
            let wait = if unbounded_hold { window } else { left.min(window) };
            let released = shared.borrow().released.clone();
            released.wait(wait.min(remaining).max(1)).await;
            continue;
        }
        pause.release(context, config, partition, op_id);
        let moved = shared.borrow().holds.moved_to(partition);
        let route = shared.borrow().routing.as_ref().map(|table| {
            let group = moved.unwrap_or(table.partition_groups[partition as usize]);
            (group, table.groups.get(group as usize).cloned())
        });
        let Some((group, Some(route))) = route else {
            ask_routing(context, config, shared);
            clock::sleep_us(pause_us.min(remaining)).await;
            continue;
        };
        let target = if config.bugs.has(Bug::StaleLocalRead) && !write {
            // Planted bug: any replica will do for a read.
            route.members[(seq as usize + attempt) % route.members.len()]
        } else {
            target_override.or(route.primary).unwrap_or_else(|| route.members[attempt % route.members.len()])
        };
        attempt += 1;
        let request = {
            let mut gateway = shared.borrow_mut();
            gateway.next_request += 1;
            gateway.next_request
        };
        replies.expect(request);
        context.send(target, StoreMessage::Forward { group, request, op_id, partition, op: op.clone() });
        let answer = replies.wait(request, config.timers.retry_us.min(remaining)).await;
        match answer {
            Some(Answer::Done(result)) => return ClientOutcome::Ok(result),
            Some(Answer::Refused(Refusal::NotOwner)) => {
                last_problem = format!("group {group} does not own partition {partition}");
                ask_routing(context, config, shared);
                target_override = None;
                clock::sleep_us(pause_us).await;
            }
            Some(Answer::Refused(Refusal::Moved { to, migration })) => {
                // The source's stub: the partition went to `to`. Go there now.
                last_problem = format!("partition {partition} moved to group {to}");
                context.record(EventKind::WriteRefused {
                    migration: migration_name(config, migration),
                    attempt: migration.attempt,
                    partition,
                    client,
                    seq,
                    reason: WriteRefusal::Moved,
                });
                shared.borrow_mut().holds.release(partition, migration, Some(to));
                // The stub redirects a stale route: the write goes to the new owner at once.
                target_override = None;
                ask_routing(context, config, shared);
            }
            Some(Answer::Frozen { migration, hold_us }) => {
                // The source fenced the partition (this gateway missed the freeze, or the write
                // was on its way): hold it, but no longer than what is left of the attempt's window.
                last_problem = format!("partition {partition} is fenced for a cut-over");
                context.record(EventKind::WriteRefused {
                    migration: migration_name(config, migration),
                    attempt: migration.attempt,
                    partition,
                    client,
                    seq,
                    reason: WriteRefusal::Fenced,
                });
                let budget = pause_budget_us(config, migration);
                let window = if unbounded_hold { u64::MAX / 4 } else { hold_us };
                shared.borrow_mut().holds.freeze(partition, migration, window, budget, context.now_us());
                pause.hold(context, config, migration, partition, op_id);
                if window == 0 {
                    clock::sleep_us(pause_us).await;
                }
            }
            Some(Answer::Refused(Refusal::Fenced(migration))) => {
                // Fenced in the state machine, with no stream here to say for how long (a new
                // primary about to lift its predecessor's fence): a short wait, counted.
                last_problem = format!("partition {partition} is fenced for a cut-over");
                context.record(EventKind::WriteRefused {
                    migration: migration_name(config, migration),
                    attempt: migration.attempt,
                    partition,
                    client,
                    seq,
                    reason: WriteRefusal::Fenced,
                });
                pause.hold(context, config, migration, partition, op_id);
                let left = pause.left_us(context.now_us(), pause_budget_us(config, migration));
                if left == 0 && !unbounded_hold {
                    pause.release(context, config, partition, op_id);
                    break;
                }
                clock::sleep_us(pause_us.min(left.max(1))).await;
            }
            Some(Answer::Refused(Refusal::Incoming(migration))) => {
                // The target does not own the partition yet: its handoff is on the way. A short
                // wait, counted as the write's pause.
                last_problem = format!("group {group} is still receiving partition {partition}");
                pause.hold(context, config, migration, partition, op_id);
                let left = pause.left_us(context.now_us(), pause_budget_us(config, migration));
                if left == 0 && !unbounded_hold {
                    pause.release(context, config, partition, op_id);
                    last_problem =
                        format!("partition {partition} was not owned by anyone within the write's pause budget");
                    break;
                }
                target_override = None;
                ask_routing(context, config, shared);
                clock::sleep_us(pause_us.min(left.max(1))).await;
            }
            Some(Answer::Refused(Refusal::Stale)) => {
                // A newer operation of the client was applied: this one may have been applied
                // before it, or never; either way no attempt can apply it now.
                last_problem = "a newer operation of the client was applied first".to_string();
                possibly_applied |= write;
                break;
            }
            Some(Answer::NotPrimary { hint }) => {
                last_problem = format!("node {target} is not the primary of group {group}");
                target_override = hint.filter(|&hinted| hinted != target);
                if target_override.is_none() {
                    ask_routing(context, config, shared);
                    clock::sleep_us(pause_us).await;
                }
            }
            Some(Answer::Unavailable) => {
                last_problem = format!("the primary of group {group} is not serving yet");
                clock::sleep_us(pause_us).await;
            }
            Some(Answer::Lost) => {
                last_problem = format!("the primary of group {group} stepped down after logging the write");
                possibly_applied |= write;
                target_override = None;
                ask_routing(context, config, shared);
            }
            None => {
                last_problem = format!("node {target} did not answer");
                possibly_applied |= write;
                // Try the next member next time, in case the route's primary is gone.
                let position = route.members.iter().position(|&member| member == target).unwrap_or(0);
                target_override = Some(route.members[(position + 1) % route.members.len()]);
                ask_routing(context, config, shared);
            }
        }
        if config.bugs.has(Bug::AbortPauseNotCounted)
            && pause.holding.is_none()
            && shared.borrow().holds.moved_to(partition).is_none()
        {
            // Planted bug: a pause that ended without a move (an aborted cut-over) is forgotten.
            pause.paused_us = 0;
        }
    }
    pause.release(context, config, partition, op_id);
    if possibly_applied {
        ClientOutcome::Unknown(last_problem)
    } else {
        ClientOutcome::Fail(last_problem)
    }
}
