//! The world's tables: `[cluster]`, `[network]`, `[disk]`, `[clock]` and the ping system's `[ping]`.

use toml::Spanned;

use super::{Checked, Validator, DRIFT_PPM_LIMIT, PING_PAYLOAD_LIMIT_BYTES};
use crate::scenario::schema::{RawClock, RawCluster, RawDisk, RawLatency, RawNetwork, RawPing};
use crate::scenario::{ClockModel, Cluster, DiskModel, Network, Ping};
use crate::world::fault::LatencyRange;

impl Validator<'_> {
    pub(super) fn cluster(&self, raw: RawCluster) -> Checked<Cluster> {
        let defaults = Cluster::default();
        let count = |value: &Option<Spanned<i64>>, field: &str, min: i64, max: i64, default: u32| -> Checked<u32> {
            match value {
                Some(value) => Ok(self.integer_in(value, field, min, max)? as u32),
                None => Ok(default),
            }
        };
        let cluster = Cluster {
            nodes: count(&raw.nodes, "cluster.nodes", 1, 64, defaults.nodes)?,
            disks_per_node: count(&raw.disks_per_node, "cluster.disks_per_node", 1, 8, defaults.disks_per_node)?,
            groups: count(&raw.groups, "cluster.groups", 1, 64, defaults.groups)?,
            replicas: count(&raw.replicas, "cluster.replicas", 1, 7, defaults.replicas)?,
            partitions: count(&raw.partitions, "cluster.partitions", 1, 4096, defaults.partitions)?,
            gateways: count(&raw.gateways, "cluster.gateways", 1, 16, defaults.gateways)?,
            reserve_nodes: count(&raw.reserve_nodes, "cluster.reserve_nodes", 0, 64, defaults.reserve_nodes)?,
        };
        if let (Some(reserve), true) = (&raw.reserve_nodes, cluster.storage_nodes() > 64) {
            return Err(self.error(
                reserve,
                "cluster.reserve_nodes",
                format!(
                    "makes {} storage nodes with cluster.nodes = {}; a cluster has at most 64",
                    cluster.storage_nodes(),
                    cluster.nodes
                ),
            ));
        }
        if cluster.replicas > cluster.nodes {
            let message = format!(
                "{} replicas need at least {} nodes, but cluster.nodes is {}; each replica of a group lives on its own node",
                cluster.replicas, cluster.replicas, cluster.nodes
            );
            // Point at whichever of the two the file actually wrote; the defaults alone agree.
            return Err(match (&raw.replicas, &raw.nodes) {
                (Some(replicas), _) => self.error(replicas, "cluster.replicas", message),
                (None, Some(nodes)) => self.error(nodes, "cluster.nodes", message),
                (None, None) => self.context.at(0, "cluster.replicas", message),
            });
        }
        Ok(cluster)
    }

    pub(super) fn network(&self, raw: RawNetwork) -> Checked<Network> {
        let defaults = Network::default();
        Ok(Network {
            latency: match &raw.latency {
                Some(latency) => self.latency(latency, "network.latency")?,
                None => defaults.latency,
            },
            bandwidth_bytes_per_second: match &raw.bandwidth {
                Some(bandwidth) => {
                    let bytes = self.bytes(bandwidth, "network.bandwidth")?;
                    if bytes == 0 {
                        return Err(self.error(bandwidth, "network.bandwidth", "must be more than 0 bytes per second"));
                    }
                    bytes
                }
                None => defaults.bandwidth_bytes_per_second,
            },
            loss: match &raw.loss {
                Some(loss) => self.probability_below_one(loss, "network.loss")?,
                None => defaults.loss,
            },
            duplicate: match &raw.duplicate {
                Some(duplicate) => self.probability_below_one(duplicate, "network.duplicate")?,
                None => defaults.duplicate,
            },
            reorder: raw.reorder.map(Spanned::into_inner).unwrap_or(defaults.reorder),
        })
    }

    pub(super) fn disk(&self, raw: RawDisk) -> Checked<DiskModel> {
        let defaults = DiskModel::default();
        let latency = |value: &Option<Spanned<RawLatency>>, field: &str, default: LatencyRange| match value {
            Some(value) => self.latency(value, field),
            None => Ok(default),
        };
        Ok(DiskModel {
            capacity_bytes: match &raw.capacity {
                Some(capacity) => {
                    let bytes = self.bytes(capacity, "disk.capacity")?;
                    if bytes == 0 {
                        return Err(self.error(capacity, "disk.capacity", "must be more than 0 bytes"));
                    }
                    bytes
                }
                None => defaults.capacity_bytes,
            },
            write_latency: latency(&raw.write_latency, "disk.write_latency", defaults.write_latency)?,
            fsync_latency: latency(&raw.fsync_latency, "disk.fsync_latency", defaults.fsync_latency)?,
            read_latency: latency(&raw.read_latency, "disk.read_latency", defaults.read_latency)?,
        })
    }

    pub(super) fn clock(&self, raw: RawClock) -> Checked<ClockModel> {
        Ok(ClockModel {
            skew_max_us: match &raw.skew_max {
                Some(skew) => self.duration(skew, "clock.skew_max")?,
                None => 0,
            },
            drift_ppm_max: match &raw.drift_ppm_max {
                Some(drift) => self.integer_in(drift, "clock.drift_ppm_max", 0, DRIFT_PPM_LIMIT)? as u64,
                None => 0,
            },
        })
    }

    pub(super) fn ping(&self, raw: &RawPing) -> Checked<Ping> {
        let defaults = Ping::default();
        Ok(Ping {
            interval_us: match &raw.interval {
                Some(interval) => self.positive_duration(interval, "ping.interval")?,
                None => defaults.interval_us,
            },
            payload_bytes: match &raw.payload {
                Some(payload) => {
                    let bytes = self.bytes(payload, "ping.payload")?;
                    if bytes > PING_PAYLOAD_LIMIT_BYTES {
                        return Err(self.error(
                            payload,
                            "ping.payload",
                            format!("must be between 0B and 1MiB, got {bytes} bytes"),
                        ));
                    }
                    bytes
                }
                None => defaults.payload_bytes,
            },
        })
    }
}
