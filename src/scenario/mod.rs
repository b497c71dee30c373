//! Scenario files: the TOML schema, its validation, and the typed `Scenario` a run starts from.
//! This module only reads text and produces typed values (durations in model microseconds, sizes
//! in bytes, faults already resolved to `world::fault::Fault`). It must never touch the world's
//! runtime, start a simulation or read anything but the file it is given; every problem it finds
//! is a `ScenarioError` naming file, line, column and field, before anything runs.

mod error;
mod plan;
mod schema;
mod validate;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

/// The operation mix and key distribution are the workload's own types; scenario files only
/// spell them.
pub use crate::workload::{KeyDistribution, OperationMix, Workload};
pub use error::ScenarioError;

use crate::checker::Checker;

pub use crate::nemesis::FaultSpec;
pub use crate::sut::store::migration::{Expectation, MigrationId, MigrationSpec};
use crate::sut::store::{GroupId, Layout, PartitionId, StoreTimers};
use crate::vocabulary::NodeId;
use crate::world::fault::LatencyRange;

/// Reads, parses and validates a scenario file.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let file_name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| ScenarioError {
        file: file_name.clone(),
        line: 1,
        column: 1,
        field: "file".to_string(),
        message: format!("cannot be read: {error}"),
    })?;
    parse(&file_name, &text)
}

/// Parses and validates scenario text; `file_name` is only used in error messages. Returns the
/// first problem found, in document order within each table.
pub fn parse(file_name: &str, text: &str) -> Result<Scenario, ScenarioError> {
    validate::parse_and_validate(file_name, text)
}

/// Parses a half-open seed range: `"0..1000"` is seeds 0 to 999, and a single `"42"` is seed 42
/// alone. Shared by scenario files (`seeds`) and the command line (`--seeds`).
pub fn parse_seed_range(text: &str) -> Result<SeedRange, String> {
    let text = text.trim();
    let parse_seed = |part: &str| -> Result<u64, String> {
        part.trim().parse::<u64>().map_err(|_| {
            format!("`{part}` is not a seed (a non-negative integer) in `{text}`; write a range as `0..1000`")
        })
    };
    match text.split_once("..") {
        Some((start, end)) => {
            if end.starts_with('=') {
                return Err(format!("`{text}` is inclusive; seed ranges are half-open, as in `0..1000`"));
            }
            let start = parse_seed(start)?;
            let end = parse_seed(end)?;
            if start >= end {
                return Err(format!("`{text}` is empty; the end must be greater than the start, as in `0..1000`"));
            }
            Ok(SeedRange { start, end })
        }
        None => {
            let seed = parse_seed(text)?;
            let end =
                seed.checked_add(1).ok_or_else(|| format!("`{text}` is the largest seed; no range can hold it"))?;
            Ok(SeedRange { start: seed, end })
        }
    }
}

/// A validated scenario. Every duration is in model microseconds and every size in bytes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub seeds: SeedRange,
    /// The safety phase: faults are active.
    pub duration_us: u64,
    /// The liveness phase that follows, after every fault is healed.
    pub heal_us: u64,
    pub system: SystemKind,
    pub cluster: Cluster,
    pub network: Network,
    pub disk: DiskModel,
    pub clock: ClockModel,
    pub ping: Ping,
    /// The store system's timers and sizes (the defaults unless a `[store]` table sets them).
    pub store: StoreTimers,
    /// The clients; present exactly when the system has clients (`store`).
    pub workload: Option<Workload>,
    /// The store's `[[migrations]]`, in file order (a migration's id is its index), each `to`
    /// resolved to a group id.
    pub migrations: Vec<MigrationSpec>,
    /// The members (storage node ids, one per replica) of each group a migration creates
    /// (`to = "new_group"`): group `cluster.groups + i` is `new_groups[i]`, numbered in the
    /// order the migrations are planned.
    pub new_groups: Vec<Vec<NodeId>>,
    pub faults: Vec<FaultSpec>,
    pub expect: Expect,
}

impl Scenario {
    /// The number of world nodes this scenario's system runs on; fault node ids are below it.
    pub fn node_count(&self) -> u32 {
        self.system.node_count(&self.cluster)
    }

    /// Where each migration finds each of its partitions when it is planned, by migration id.
    pub fn partition_sources(&self) -> Vec<Vec<PartitionSource>> {
        partition_sources(self.cluster.groups, &self.migrations)
    }
}

/// Where a migration finds one of its partitions when the master plans it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionSource {
    pub partition: PartitionId,
    /// The group that holds it then: the migration's source.
    pub source: GroupId,
    /// The earlier migration that moved it there; `None`: it is still in its first group.
    pub moved_by: Option<MigrationId>,
}

/// Migration ids in the order the master plans them: by `at`, then in file order.
pub fn planned_order(migrations: &[MigrationSpec]) -> Vec<MigrationId> {
    let mut order: Vec<MigrationId> = migrations.iter().map(|migration| migration.id).collect();
    order.sort_by_key(|&id| (migrations[id as usize].at_us, id));
    order
}

/// Where each migration (by id) finds each of its partitions: a partition starts in group
/// `partition % groups` (the store deals them round-robin) and is wherever the last migration
/// planned before this one, and expected to finish, moved it. A migration expected to end
/// `aborted` leaves its partitions where they were.
pub fn partition_sources(groups: u32, migrations: &[MigrationSpec]) -> Vec<Vec<PartitionSource>> {
    let mut owners: BTreeMap<PartitionId, (GroupId, Option<MigrationId>)> = BTreeMap::new();
    let mut sources: Vec<Vec<PartitionSource>> = vec![Vec::new(); migrations.len()];
    for id in planned_order(migrations) {
        let migration = &migrations[id as usize];
        for &partition in &migration.partitions {
            let (source, moved_by) = owners.get(&partition).copied().unwrap_or((partition % groups, None));
            sources[id as usize].push(PartitionSource { partition, source, moved_by });
        }
        match migration.expect {
            Expectation::Done | Expectation::DoneOrCancelled => {
                for &partition in &migration.partitions {
                    owners.insert(partition, (migration.to, Some(id)));
                }
            }
            Expectation::Aborted(_) => {}
        }
    }
    sources
}

/// Seeds `start..end`, half-open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SeedRange {
    pub start: u64,
    pub end: u64,
}

impl SeedRange {
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

impl std::fmt::Display for SeedRange {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}..{}", self.start, self.end)
    }
}

pub use crate::vocabulary::SystemKind;

impl SystemKind {
    /// Whether this system runs clients, and so whether a `[workload]` table applies to it.
    pub fn has_clients(self) -> bool {
        match self {
            SystemKind::Ping => false,
            SystemKind::Store => true,
        }
    }

    /// The world's node count when this system runs on `cluster`.
    pub fn node_count(self, cluster: &Cluster) -> u32 {
        match self {
            SystemKind::Ping => cluster.nodes,
            SystemKind::Store => store_layout(cluster).node_count(),
        }
    }
}

/// Which node plays which role when the store runs on `cluster`: storage nodes `0..nodes`, then
/// the master, then the gateways, then the one node that runs every client.
pub fn store_layout(cluster: &Cluster) -> Layout {
    Layout { storage_nodes: cluster.storage_nodes(), gateways: cluster.gateways }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Cluster {
    /// Storage nodes (for `ping`, every node of the world).
    pub nodes: u32,
    pub disks_per_node: u32,
    pub groups: u32,
    pub replicas: u32,
    pub partitions: u32,
    pub gateways: u32,
    /// Storage nodes held in reserve after the first `nodes` (store only): booted empty, hosting
    /// only groups a scale-out brings in.
    pub reserve_nodes: u32,
}

impl Cluster {
    /// Every storage node, the reserve included.
    pub fn storage_nodes(&self) -> u32 {
        self.nodes + self.reserve_nodes
    }
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster { nodes: 3, disks_per_node: 2, groups: 1, replicas: 3, partitions: 16, gateways: 1, reserve_nodes: 0 }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Network {
    pub latency: LatencyRange,
    pub bandwidth_bytes_per_second: u64,
    /// Probability that a message is dropped, in [0, 1).
    pub loss: f64,
    /// Probability that a message is delivered twice, in [0, 1).
    pub duplicate: f64,
    /// When false, every link is FIFO.
    pub reorder: bool,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            latency: LatencyRange { min_us: 100, max_us: 1_000 },
            bandwidth_bytes_per_second: 1_000_000_000,
            loss: 0.0,
            duplicate: 0.0,
            reorder: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DiskModel {
    pub capacity_bytes: u64,
    pub write_latency: LatencyRange,
    pub fsync_latency: LatencyRange,
    pub read_latency: LatencyRange,
}

impl Default for DiskModel {
    fn default() -> Self {
        DiskModel {
            capacity_bytes: 1 << 30,
            write_latency: LatencyRange { min_us: 10, max_us: 50 },
            fsync_latency: LatencyRange { min_us: 500, max_us: 2_000 },
            read_latency: LatencyRange { min_us: 10, max_us: 50 },
        }
    }
}

/// Bounds for the per-node clocks; each node draws its own skew and drift within them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ClockModel {
    pub skew_max_us: u64,
    pub drift_ppm_max: u64,
}

/// The ping system's knobs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ping {
    pub interval_us: u64,
    pub payload_bytes: u64,
}

impl Default for Ping {
    fn default() -> Self {
        Ping { interval_us: 1_000, payload_bytes: 64 }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Expect {
    /// Entries of the checker registry (`crate::checker::CHECKERS`) that apply to the system.
    pub checkers: Vec<&'static Checker>,
}

#[cfg(test)]
mod tests;
