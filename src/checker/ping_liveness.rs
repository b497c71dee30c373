//! `ping_liveness`: once every fault has healed, every node hears a fresh answer from every other
//! node before the run ends. "Fresh" means to a ping sent after the heal, so a reply that was
//! merely delayed through a partition does not count.

use std::collections::BTreeSet;

use super::Violation;
use crate::trace::{Event, EventKind};
use crate::vocabulary::NodeId;

pub fn ping_liveness(nodes: u32, events: &[Event]) -> Option<Violation> {
    let Some(heal_at_us) =
        events.iter().find(|event| matches!(event.kind, EventKind::HealAll)).map(|event| event.at_us)
    else {
        return Some(Violation {
            checker: "ping_liveness".into(),
            message: "the run never reached its liveness phase (no heal_all event)".into(),
        });
    };
    let mut heard: BTreeSet<(NodeId, NodeId)> = BTreeSet::new();
    for event in events {
        if let (EventKind::Pong { peer, ping_sent_at_us }, Some(node)) = (&event.kind, event.node) {
            if *ping_sent_at_us >= heal_at_us {
                heard.insert((node, *peer));
            }
        }
    }
    let missing: Vec<String> = (0..nodes)
        .flat_map(|node| (0..nodes).map(move |peer| (node, peer)))
        .filter(|(node, peer)| node != peer && !heard.contains(&(*node, *peer)))
        .map(|(node, peer)| format!("n{node} never heard n{peer}"))
        .collect();
    if missing.is_empty() {
        return None;
    }
    let shown: Vec<&str> = missing.iter().take(8).map(String::as_str).collect();
    Some(Violation {
        checker: "ping_liveness".into(),
        message: format!(
            "{} of {} node pairs never exchanged a ping and its pong after faults healed at {}: {}{}",
            missing.len(),
            nodes * nodes.saturating_sub(1),
            crate::units::format_us(heal_at_us),
            shown.join(", "),
            if missing.len() > shown.len() { ", ..." } else { "" }
        ),
    })
}
