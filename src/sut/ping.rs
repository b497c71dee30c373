//! The ping system: every node pings every other node in turn and answers pings with pongs, and
//! keeps a boot counter on its first disk. It exercises the world (links, faults, crashes, disks)
//! with no protocol of its own; its one property, `ping_liveness`, is that once faults heal every
//! node hears a fresh answer from every other node.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::trace::EventKind;
use crate::world::{Message, NodeContext, Program};

/// The ping system's knobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PingConfig {
    pub interval_us: u64,
    pub payload_bytes: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PingMessage {
    Ping { sent_at_us: u64, payload_bytes: u32 },
    Pong { ping_sent_at_us: u64 },
}

impl Message for PingMessage {
    fn size_bytes(&self) -> u32 {
        match self {
            PingMessage::Ping { payload_bytes, .. } => 16 + payload_bytes,
            PingMessage::Pong { .. } => 16,
        }
    }
}

/// The program every ping node runs at each boot.
pub fn program(config: PingConfig) -> Program<PingMessage> {
    Arc::new(move |context: NodeContext<PingMessage>| -> Pin<Box<dyn Future<Output = ()>>> { Box::pin(run(context, config)) })
}

async fn run(context: NodeContext<PingMessage>, config: PingConfig) {
    let sender = context.clone();
    madsim::task::spawn_local(async move { send_pings(sender, config).await });
    loop {
        let envelope = context.recv().await;
        match envelope.payload {
            PingMessage::Ping { sent_at_us, .. } => {
                context.send(envelope.from, PingMessage::Pong { ping_sent_at_us: sent_at_us });
            }
            PingMessage::Pong { ping_sent_at_us } => {
                context.record(EventKind::Pong { peer: envelope.from, ping_sent_at_us });
            }
        }
    }
}

async fn send_pings(context: NodeContext<PingMessage>, config: PingConfig) {
    let node_count = context.node_count();
    if node_count < 2 {
        return;
    }
    // Start at a drawn peer so that nodes booted together do not all ping node 0 first.
    let mut peer = context.with_rng(|rng| rand::Rng::gen_range(rng, 0..node_count));
    loop {
        context.sleep_us(config.interval_us).await;
        peer = (peer + 1) % node_count;
        if peer == context.id() {
            peer = (peer + 1) % node_count;
        }
        context.send(peer, PingMessage::Ping { sent_at_us: context.now_us(), payload_bytes: config.payload_bytes });
    }
}
