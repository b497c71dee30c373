//! The clients: one task per client on the clients node, each issuing the generator's operations
//! through a gateway and recording each one's call and return on the model clock; then, in the
//! heal phase, the read-back of every key that any client wrote.
//!
//! Arrivals are open-loop (Poisson at `rate / clients` per client) but capped at one outstanding
//! operation per client: an arrival that finds its client busy goes out when the previous
//! operation returns. An operation that gets no reply by `op_timeout` is recorded `info`
//! (indeterminate); the gateway's `fail` is recorded `fail`. A client that times out moves to the
//! next gateway.
//!
//! The read-back retries each key until it succeeds or the run ends; each success is recorded as
//! an ordinary get and as a `read_back` event, the key's final state.

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

/// Sequence numbers of read-back gets start here, far above any workload operation's, so the two
/// never share an op id.
const READ_BACK_SEQ_BASE: u64 = 1 << 48;

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
    for client in 0..workload.clients {
        let clients = clients.clone();
        madsim::task::spawn_local(async move { client_loop(&clients, client).await });
    }
    loop {
        let envelope = context.recv().await;
        match envelope.payload {
            StoreMessage::Reply { client, seq, outcome } => {
                clients.replies.deliver(&(client, seq), outcome);
            }
            other => panic!("store: the clients node got a message for another role: {other:?}"),
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
        let deadline_us = context.now_us() + self.workload.op_timeout_us;
        self.replies.expect((client, seq));
        context.send(self.layout.gateway(gateway), StoreMessage::Request { client, seq, op, deadline_us });
        // A little past the deadline, so the gateway's own verdict at the deadline can arrive.
        let patience_us = self.workload.op_timeout_us + self.workload.op_timeout_us / 10;
        let reply = self.replies.wait((client, seq), patience_us).await;
        let (outcome, result) = match &reply {
            Some(ClientOutcome::Ok(result)) => (Outcome::Ok, result.history_value()),
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
    let mut generator = Generator::new(workload, client);
    let mut gateway = client % clients.layout.gateways.max(1);
    let mut next_at = context.now_us().saturating_add(context.with_rng(|rng| generator.next_gap_us(rng)));
    while next_at < workload.stop_at_us {
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
        next_at = next_at.saturating_add(context.with_rng(|rng| generator.next_gap_us(rng))).max(context.now_us());
    }
    clock::sleep_until_us(workload.read_back_at_us).await;
    let keys: Vec<u64> = clients
        .written
        .borrow()
        .iter()
        .copied()
        .filter(|index| index % u64::from(workload.clients) == u64::from(client))
        .collect();
    let mut seq = READ_BACK_SEQ_BASE;
    for index in keys {
        let key = key_name(index);
        loop {
            seq += 1;
            let (op, reply) = clients.call(client, seq, Op::Get { key: key.clone() }, gateway).await;
            match reply {
                Some(ClientOutcome::Ok(OpResult::Value(value))) => {
                    context.record(EventKind::ReadBack { op, key: key.clone(), value });
                    break;
                }
                Some(_) | None => gateway = (gateway + 1) % clients.layout.gateways.max(1),
            }
        }
    }
}
