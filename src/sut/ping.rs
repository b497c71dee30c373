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
    Arc::new(move |context: NodeContext<PingMessage>| -> Pin<Box<dyn Future<Output = ()>>> {
        Box::pin(run(context, config))
    })
}

/// The boot counter lives in this file on the first disk, written by the classic durable-replace
/// sequence (write a temporary file, fsync it, rename over the old one, fsync the directory), so
/// crashes, lost fsyncs and torn writes all get something to act on.
pub const BOOTS_FILE: &str = "ping-boots";

async fn run(context: NodeContext<PingMessage>, config: PingConfig) {
    count_boot(&context).await;
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

/// Reads the boot counter (with its checksum), increments it and writes it back durably. A missing,
/// torn or corrupted counter starts again from zero, noted in the trace: the ping system has no
/// replicas to recover from, and its property does not depend on the count.
async fn count_boot(context: &NodeContext<PingMessage>) {
    let disk = context.disk(0);
    let previous = match disk.read_all(BOOTS_FILE).await {
        Ok(bytes) => decode_counter(&bytes),
        Err(_) => None,
    };
    // Recorded at every trace level: what a run records is hashed, and the hash of a seed must be
    // the same whether it runs with a history trace (`run`) or a full one (`repro`).
    if previous.is_none() {
        context.record(EventKind::Note { text: format!("{BOOTS_FILE} missing or damaged; counting from zero") });
    }
    let boots = previous.unwrap_or(0) + 1;
    if let Err(error) = super::durable::replace_file(&disk, BOOTS_FILE, &encode_counter(boots)).await {
        context.record(EventKind::Note { text: format!("could not persist the boot counter: {error}") });
    }
}

/// Eight bytes of counter and eight of checksum, so that a torn or flipped record is detected.
fn encode_counter(value: u64) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&value.to_le_bytes());
    bytes[8..].copy_from_slice(&checksum(value).to_le_bytes());
    bytes
}

fn decode_counter(bytes: &[u8]) -> Option<u64> {
    let value = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let sum = u64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?);
    (bytes.len() == 16 && sum == checksum(value)).then_some(value)
}

fn checksum(value: u64) -> u64 {
    let mut hasher = crate::trace::TraceHasher::default();
    hasher.word(value);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_boot_counter_detects_damage() {
        let bytes = encode_counter(41);
        assert_eq!(decode_counter(&bytes), Some(41));
        let mut flipped = bytes;
        flipped[3] ^= 0x10;
        assert_eq!(decode_counter(&flipped), None);
        assert_eq!(decode_counter(&bytes[..12]), None);
    }
}
