//! The clients: one task per client on the clients node, each issuing the generator's operations
//! through a gateway and recording each one's call and return on the model clock; then, in the
//! heal phase, the read-back of every key that any client wrote.
//!
//! Arrivals are open-loop (Poisson at `rate / clients` per client) but capped at one outstanding
//! operation per client: arrivals that find their client busy go out back to back when the
//! previous operation returns (those more than an op timeout late are dropped). An operation that gets no reply by `op_timeout` is recorded `info`
//! (indeterminate), and so is the gateway's `unknown`; the gateway's `fail` is recorded `fail`, always
//! (the gateway's module doc says why a write's `fail` binds every attempt). While it hears nothing, a client
//! resends its request to the same gateway a few times per op timeout (messages may be lost); a
//! client that times out moves to the next gateway for its next operation.
//!
//! The read-back, at `read_back_at`, reads every key any client wrote, with several readers at
//! once (client ids above the workload's), retrying each key until a read succeeds or the run
//! ends; each success is recorded as an ordinary get and as a `read_back` event, the key's final
//! state.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use super::generator::{key_name, Generator};
use super::WorkloadConfig;
use crate::sut::store::entry::{Op, OpResult};
use crate::sut::store::mailbox::Replies;
use crate::sut::store::message::{ClientOutcome, StoreMessage};
use crate::sut::store::{partition_of, Layout};
use crate::trace::{EventKind, Outcome};
use crate::world::clock;
use crate::world::{NodeContext, Program};

/// A client resends a request this many times per op timeout while it hears nothing.
const RESENDS_PER_TIMEOUT: u64 = 6;

/// Readers of the read-back per client, and at most this many in all.
const READERS_PER_CLIENT: u32 = 4;
const MAX_READERS: u32 = 256;

/// The program of the clients node.
pub fn program(workload: WorkloadConfig, layout: Layout, partitions: u32) -> Program<StoreMessage> {
    let workload = Arc::new(workload);
    Arc::new(move |context: NodeContext<StoreMessage>| -> Pin<Box<dyn Future<Output = ()>>> {
        Box::pin(run(context, workload.clone(), layout, partitions))
    })
}

/// What all clients on the node share.
struct Clients {
    context: NodeContext<StoreMessage>,
    workload: Arc<WorkloadConfig>,
    layout: Layout,
    partitions: u32,
    replies: Replies<(u32, u64), ClientOutcome>,
    /// History op ids, dense from 1 in invocation order.
    next_op: RefCell<u64>,
    /// Keys any client wrote (or tried to), for the read-back.
    written: RefCell<BTreeSet<u64>>,
}

async fn run(context: NodeContext<StoreMessage>, workload: Arc<WorkloadConfig>, layout: Layout, partitions: u32) {
    if context.incarnation() > 0 || context.now_us() > 0 {
        // The clients' history lives in this node's memory: a clients node that restarted would
        // re-use op ids and lose its outstanding operations. It stays quiet instead.
        return;
    }
    let clients = Rc::new(Clients {
        context: context.clone(),
        workload: workload.clone(),
        layout,
        partitions,
        replies: Replies::default(),
        next_op: RefCell::new(0),
        written: RefCell::new(BTreeSet::new()),
    });
    for client in 0..workload.workload.clients {
        let clients = clients.clone();
        madsim::task::spawn_local(async move { client_loop(&clients, client).await });
    }
    madsim::task::spawn_local(read_back(clients.clone()));
    loop {
        let envelope = context.recv().await;
        match envelope.payload {
            StoreMessage::Reply { client, seq, outcome } => {
                clients.replies.deliver(&(client, seq), outcome);
            }
            other @ (StoreMessage::Request { .. }
            | StoreMessage::Forward { .. }
            | StoreMessage::ForwardReply { .. }
            | StoreMessage::Cancel { .. }
            | StoreMessage::RoutingQuery
            | StoreMessage::Routing(_)
            | StoreMessage::Append(_)
            | StoreMessage::AppendReply(_)
            | StoreMessage::InstallSnapshot { .. }
            | StoreMessage::Verified { .. }
            | StoreMessage::Status(_)
            | StoreMessage::Prepare { .. }
            | StoreMessage::Promise(_)
            | StoreMessage::View(_)
            | StoreMessage::Migration(_)) => {
                panic!("store: the clients node got a message for another role: {other:?}")
            }
        }
    }
}

impl Clients {
    /// Sends one operation through gateway `gateway` and records it; returns the history op id
    /// and the outcome (`None` when it timed out).
    async fn call(&self, client: u32, seq: u64, op: Op, gateway: u32) -> (u64, Option<ClientOutcome>) {
        let context = &self.context;
        let op_number = {
            let mut next = self.next_op.borrow_mut();
            *next += 1;
            *next
        };
        let key = op.key().to_string();
        let partition = partition_of(&key, self.partitions);
        let function = op.function();
        let value = op.history_value();
        context.record(EventKind::OpInvoke {
            op: op_number,
            client,
            key: key.clone(),
            partition,
            f: function,
            value: value.clone(),
        });
        let timeout_us = self.workload.workload.op_timeout_us;
        let deadline_us = context.now_us() + timeout_us;
        // A little past the deadline, so the gateway's own verdict at the deadline can arrive.
        let give_up_at = deadline_us + self.workload.workload.op_timeout_us / 10;
        // Requests and replies may be lost: resend to the same gateway, which runs one attempt
        // chain per request at a time, until a reply comes or the client gives up.
        let resend_us = (self.workload.workload.op_timeout_us / RESENDS_PER_TIMEOUT).max(1);
        let gateway_node = self.layout.gateway(gateway);
        let reply = loop {
            self.replies.expect((client, seq));
            // What is left of the op's time goes with each send: the gateway measures it on its own
            // clock, which need not agree with this one.
            let left_us = deadline_us.saturating_sub(context.now_us());
            context.send(gateway_node, StoreMessage::Request { client, seq, op: op.clone(), timeout_us: left_us });
            let now = context.now_us();
            let wait = resend_us.min(give_up_at.saturating_sub(now));
            if let Some(reply) = self.replies.wait((client, seq), clock::sleep_us(wait.max(1))).await {
                break Some(reply);
            }
            if context.now_us() >= give_up_at {
                break None;
            }
        };
        let (outcome, result) = match &reply {
            Some(ClientOutcome::Ok(result)) => (Outcome::Ok, result.history_value()),
            // The gateway's `fail` is recorded as it is said: for a write it rests on a committed
            // cancellation that binds every copy of every attempt, from any gateway run, so the
            // checkers may hold the store to it.
            Some(ClientOutcome::Fail(_)) => (Outcome::Fail, serde_json::Value::Null),
            Some(ClientOutcome::Unknown(_)) | None => (Outcome::Info, serde_json::Value::Null),
        };
        context.record(EventKind::OpComplete {
            op: op_number,
            client,
            key,
            partition,
            f: function,
            value,
            outcome,
            result,
        });
        (op_number, reply)
    }
}

async fn client_loop(clients: &Clients, client: u32) {
    let context = &clients.context;
    let workload = &clients.workload;
    let mut generator = Generator::new(&workload.workload, client);
    let mut gateway = client % clients.layout.gateways.max(1);
    let mut next_at = context.now_us().saturating_add(context.with_rng(|rng| generator.next_gap_us(rng)));
    while next_at < workload.stop_at_us && context.now_us() < workload.stop_at_us {
        clock::sleep_until_us(next_at).await;
        let (seq, op) = context.with_rng(|rng| generator.next_op(rng));
        let key = op.key().to_string();
        if op.is_write() {
            if let Some(index) = key.strip_prefix('k').and_then(|index| index.parse::<u64>().ok()) {
                clients.written.borrow_mut().insert(index);
            }
        }
        let written_value = match &op {
            Op::Put { value, .. } => Some(value.clone()),
            Op::Cas { new, .. } => Some(new.clone()),
            Op::Get { .. } | Op::Append { .. } => None,
        };
        let (_, reply) = clients.call(client, seq, op, gateway).await;
        match reply {
            Some(ClientOutcome::Ok(OpResult::Value(value))) => generator.observe(&key, value),
            Some(ClientOutcome::Ok(OpResult::Cas(true))) | Some(ClientOutcome::Ok(OpResult::Done)) => {
                // A put or a successful cas leaves the key at the written value; an append leaves it
                // at something this client does not know.
                generator.observe(&key, written_value);
            }
            Some(ClientOutcome::Ok(OpResult::Cas(false))) | Some(ClientOutcome::Fail(_)) => {}
            Some(ClientOutcome::Unknown(_)) | None => {
                generator.observe(&key, None);
                gateway = (gateway + 1) % clients.layout.gateways.max(1);
            }
        }
        // The schedule does not wait for the store (open loop): arrivals that fell due while the
        // client was busy go out back to back, except those more than an op timeout late, which
        // are dropped so a long outage does not end in an unbounded burst.
        next_at = next_at.saturating_add(context.with_rng(|rng| generator.next_gap_us(rng)));
        let now = context.now_us();
        let backlog_limit_us = workload.workload.op_timeout_us;
        if now > next_at.saturating_add(backlog_limit_us) {
            next_at = now;
        }
    }
}

/// The read-back: readers (ids above every client's, so each has one operation outstanding at
/// a time like any client) take keys from one queue and read each until a read succeeds. Several
/// readers run at once, so a read that times out delays one key, not a client's whole share.
async fn read_back(clients: Rc<Clients>) {
    let workload = clients.workload.clone();
    clock::sleep_until_us(workload.read_back_at_us).await;
    let queue: Rc<RefCell<std::collections::VecDeque<u64>>> =
        Rc::new(RefCell::new(clients.written.borrow().iter().copied().collect()));
    let readers = (workload.workload.clients * READERS_PER_CLIENT).min(MAX_READERS);
    for reader in 0..readers {
        let clients = clients.clone();
        let queue = queue.clone();
        madsim::task::spawn_local(async move {
            let client = clients.workload.workload.clients + reader;
            let mut gateway = reader % clients.layout.gateways.max(1);
            let mut seq = 0;
            loop {
                let Some(index) = queue.borrow_mut().pop_front() else { return };
                let key = key_name(index);
                loop {
                    seq += 1;
                    let (op, reply) = clients.call(client, seq, Op::Get { key: key.clone() }, gateway).await;
                    match reply {
                        Some(ClientOutcome::Ok(OpResult::Value(value))) => {
                            clients.context.record(EventKind::ReadBack { op, key: key.clone(), value });
                            break;
                        }
                        Some(_) | None => gateway = (gateway + 1) % clients.layout.gateways.max(1),
                    }
                }
            }
        });
    }
}
