//! From a validated `Scenario` to the runner's `RunPlan`: the one place where scenario vocabulary
//! (tables, defaults) becomes world and system configuration. It draws nothing and reads no files.

use super::{Scenario, SystemKind};
use crate::runner::{RunPlan, StorePlan, SystemPlan};
use crate::sut::ping::PingConfig;
use crate::sut::store::{Bugs, StoreConfig};
use crate::workload::WorkloadConfig;
use crate::world::{DiskConfig, NetworkConfig};

impl Scenario {
    pub fn plan(&self) -> RunPlan {
        let system = match self.system {
            SystemKind::Ping => SystemPlan::Ping(PingConfig {
                interval_us: self.ping.interval_us,
                payload_bytes: u32::try_from(self.ping.payload_bytes).unwrap_or(u32::MAX),
            }),
            SystemKind::Store => SystemPlan::Store(self.store_plan()),
        };
        let defaults = DiskConfig::default();
        RunPlan {
            name: self.name.clone(),
            system,
            nodes: self.node_count(),
            network: NetworkConfig {
                latency: self.network.latency,
                bandwidth_bytes_per_second: self.network.bandwidth_bytes_per_second,
                loss: self.network.loss,
                duplicate: self.network.duplicate,
                reorder: self.network.reorder,
            },
            disk: DiskConfig {
                capacity_bytes: self.disk.capacity_bytes,
                read_latency: self.disk.read_latency,
                write_latency: self.disk.write_latency,
                fsync_latency: self.disk.fsync_latency,
                ..defaults
            },
            disks_per_node: self.cluster.disks_per_node,
            clock_skew_max_us: self.clock.skew_max_us,
            clock_drift_ppm_max: self.clock.drift_ppm_max,
            faults: self.faults.clone(),
            duration_us: self.duration_us,
            heal_us: self.heal_us,
            checkers: self.expect.checkers.clone(),
        }
    }
}

impl Scenario {
    /// The store and its clients. Planted bugs are not part of a scenario: the command line adds
    /// them (`--bug`) to the plan this returns.
    fn store_plan(&self) -> StorePlan {
        let workload = self.workload.as_ref().expect("validation gives every store scenario a workload");
        // The final read-back starts halfway through the heal phase, so it sees the store after
        // it has converged and still has time to finish. Clients stop issuing operations one
        // patience (op_timeout plus a tenth) earlier, so that every operation has returned or
        // timed out before the read-back begins; the heal rule (heal >= 2 x op_timeout) keeps
        // that at or after the start of the heal phase unless op_timeout is most of it.
        let read_back_at_us = self.duration_us + self.heal_us / 2;
        let patience_us = workload.op_timeout_us + workload.op_timeout_us / 10;
        let stop_at_us = read_back_at_us.saturating_sub(patience_us).max(self.duration_us);
        StorePlan {
            store: StoreConfig {
                storage_nodes: self.cluster.storage_nodes(),
                reserve_nodes: self.cluster.reserve_nodes,
                disks_per_node: self.cluster.disks_per_node,
                groups: self.cluster.groups,
                replicas: self.cluster.replicas,
                partitions: self.cluster.partitions,
                gateways: self.cluster.gateways,
                timers: self.store.clone(),
                bugs: Bugs::default(),
                migrations: self.migrations.clone(),
                new_groups: self.new_groups.clone(),
            },
            workload: WorkloadConfig { workload: workload.clone(), stop_at_us, read_back_at_us },
        }
    }
}
