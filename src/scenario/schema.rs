//! The raw shape of a scenario file, exactly as TOML spells it. Every value that validation
//! judges is wrapped in `Spanned` so that its error can point at the value's line and column;
//! every field is optional here so that a missing field is reported by validation, with a
//! message that says what to write, rather than by serde. Nothing in this module interprets a
//! value: units, ranges and cross-field rules live in `validate`.

use serde::de::{Deserializer, Visitor};
use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScenario {
    pub name: Option<Spanned<String>>,
    pub description: Option<Spanned<String>>,
    pub seeds: Option<Spanned<String>>,
    pub duration: Option<Spanned<String>>,
    pub heal: Option<Spanned<String>>,
    pub system: Option<Spanned<String>>,
    pub cluster: Option<RawCluster>,
    pub network: Option<RawNetwork>,
    pub disk: Option<RawDisk>,
    pub clock: Option<RawClock>,
    pub ping: Option<Spanned<RawPing>>,
    pub store: Option<Spanned<RawStore>>,
    pub workload: Option<Spanned<RawWorkload>>,
    pub migrations: Option<Vec<Spanned<RawMigration>>>,
    pub faults: Option<Vec<Spanned<RawFault>>>,
    pub expect: Option<RawExpect>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCluster {
    pub nodes: Option<Spanned<i64>>,
    pub disks_per_node: Option<Spanned<i64>>,
    pub groups: Option<Spanned<i64>>,
    pub replicas: Option<Spanned<i64>>,
    pub partitions: Option<Spanned<i64>>,
    pub gateways: Option<Spanned<i64>>,
    pub reserve_nodes: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNetwork {
    pub latency: Option<Spanned<RawLatency>>,
    pub bandwidth: Option<Spanned<String>>,
    pub loss: Option<Spanned<f64>>,
    pub duplicate: Option<Spanned<f64>>,
    pub reorder: Option<Spanned<bool>>,
}

/// `{ min = "1ms", max = "5ms" }`, used by the network, the disk and two faults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLatency {
    pub min: Option<Spanned<String>>,
    pub max: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDisk {
    pub capacity: Option<Spanned<String>>,
    pub write_latency: Option<Spanned<RawLatency>>,
    pub fsync_latency: Option<Spanned<RawLatency>>,
    pub read_latency: Option<Spanned<RawLatency>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClock {
    pub skew_max: Option<Spanned<String>>,
    pub drift_ppm_max: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPing {
    pub interval: Option<Spanned<String>>,
    pub payload: Option<Spanned<String>>,
}

/// `[store]`: the store system's timers and sizes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStore {
    pub heartbeat: Option<Spanned<String>>,
    pub failure_timeout: Option<Spanned<String>>,
    pub retry: Option<Spanned<String>>,
    pub checkpoint_entries: Option<Spanned<i64>>,
    pub segment_size: Option<Spanned<String>>,
    pub snapshot_chunk: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWorkload {
    pub clients: Option<Spanned<i64>>,
    pub keys: Option<Spanned<i64>>,
    pub mix: Option<Spanned<RawMix>>,
    pub distribution: Option<Spanned<String>>,
    pub zipf_exponent: Option<Spanned<f64>>,
    pub rate: Option<Spanned<f64>>,
    pub op_timeout: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMix {
    pub get: Option<Spanned<f64>>,
    pub put: Option<Spanned<f64>>,
    pub cas: Option<Spanned<f64>>,
    pub append: Option<Spanned<f64>>,
}

/// One `[[migrations]]` entry: partitions the master moves to another group, and what the
/// scenario expects of it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMigration {
    pub name: Option<Spanned<String>>,
    pub at: Option<Spanned<String>>,
    pub partitions: Option<Spanned<Vec<Spanned<i64>>>>,
    pub to: Option<Spanned<RawGroup>>,
    pub nodes: Option<Spanned<Vec<Spanned<i64>>>>,
    pub pause_budget: Option<Spanned<String>>,
    pub lag_threshold: Option<Spanned<i64>>,
    pub max_attempts: Option<Spanned<i64>>,
    pub attempt_timeout: Option<Spanned<String>>,
    pub kind: Option<Spanned<String>>,
    pub group: Option<Spanned<i64>>,
    pub max_concurrent: Option<Spanned<i64>>,
    pub cancel_at: Option<Spanned<String>>,
    pub expect: Option<Spanned<String>>,
    pub reason: Option<Spanned<String>>,
    pub node: Option<Spanned<i64>>,
    pub to_disk: Option<Spanned<i64>>,
}

/// One `[[faults]]` entry. The fields a fault takes depend on its name, so all of them are
/// optional here and `validate` rejects the ones that do not apply.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFault {
    pub fault: Option<Spanned<String>>,
    pub at: Option<Spanned<String>>,
    pub when: Option<Spanned<RawWhen>>,
    pub migration: Option<Spanned<String>>,
    pub duration: Option<Spanned<String>>,
    pub node: Option<Spanned<RawNode>>,
    pub group: Option<Spanned<i64>>,
    pub disk: Option<Spanned<i64>>,
    pub nodes: Option<Spanned<RawNodeSet>>,
    pub peers: Option<Spanned<RawNodeSet>>,
    pub both_ways: Option<Spanned<bool>>,
    pub rate: Option<Spanned<f64>>,
    pub latency: Option<Spanned<RawLatency>>,
    pub skew: Option<Spanned<String>>,
    pub drift_ppm: Option<Spanned<i64>>,
}

/// A fault's phase trigger: `when = { migration = "move-7", phase = "catch_up", after = "20ms" }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWhen {
    pub migration: Option<Spanned<String>>,
    pub phase: Option<Spanned<String>>,
    pub after: Option<Spanned<String>>,
    pub attempt: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExpect {
    pub checkers: Option<Spanned<Vec<Spanned<String>>>>,
}

/// A node as a fault names it: a numeric id, or a role selector such as `primary` that only a
/// system with roles can resolve. Written by hand instead of `#[serde(untagged)]` because
/// an untagged enum loses the value's span and replaces the type error with an unhelpful one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RawNode {
    Id(i64),
    Role(String),
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NodeVisitor;

        impl Visitor<'_> for NodeVisitor {
            type Value = RawNode;

            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a node id (such as 0) or a role (such as \"primary\")")
            }

            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<RawNode, E> {
                Ok(RawNode::Id(value))
            }

            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<RawNode, E> {
                Ok(RawNode::Id(i64::try_from(value).unwrap_or(i64::MAX)))
            }

            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<RawNode, E> {
                Ok(RawNode::Role(value.to_string()))
            }
        }

        deserializer.deserialize_any(NodeVisitor)
    }
}

/// A set of nodes as a fault names it: a list of nodes (ids or role selectors), or the name of a
/// set (`"all"`, `"storage"`, `"gateways"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RawNodeSet {
    List(Vec<Spanned<RawNode>>),
    Named(String),
}

impl<'de> Deserialize<'de> for RawNodeSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SetVisitor;

        impl<'de> Visitor<'de> for SetVisitor {
            type Value = RawNodeSet;

            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a list of nodes (such as [0, 1]) or a set name (such as \"storage\")")
            }

            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<RawNodeSet, E> {
                Ok(RawNodeSet::Named(value.to_string()))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<RawNodeSet, A::Error> {
                let mut nodes = Vec::new();
                while let Some(node) = seq.next_element::<Spanned<RawNode>>()? {
                    nodes.push(node);
                }
                Ok(RawNodeSet::List(nodes))
            }
        }

        deserializer.deserialize_any(SetVisitor)
    }
}

/// A migration's target as written: a group id, or a name (`"new_group"`). Hand-written for the
/// same reason as `RawNode`: an untagged enum would lose the value's span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RawGroup {
    Id(i64),
    Named(String),
    /// A list of group ids (a scale-in's targets).
    List(Vec<i64>),
}

impl<'de> Deserialize<'de> for RawGroup {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct GroupVisitor;

        impl<'de> Visitor<'de> for GroupVisitor {
            type Value = RawGroup;

            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a group id (such as 1), \"new_group\", or a list of group ids")
            }

            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<RawGroup, E> {
                Ok(RawGroup::Id(value))
            }

            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<RawGroup, E> {
                Ok(RawGroup::Id(i64::try_from(value).unwrap_or(i64::MAX)))
            }

            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<RawGroup, E> {
                Ok(RawGroup::Named(value.to_string()))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<RawGroup, A::Error> {
                let mut groups = Vec::new();
                while let Some(group) = seq.next_element::<i64>()? {
                    groups.push(group);
                }
                Ok(RawGroup::List(groups))
            }
        }

        deserializer.deserialize_any(GroupVisitor)
    }
}
