//! From a validated `Scenario` to the runner's `RunPlan`: the one place where scenario vocabulary
//! (tables, defaults) becomes world and system configuration. It draws nothing and reads no files.

use super::{Scenario, SystemKind};
use crate::runner::{RunPlan, ScheduledFault, SystemPlan};
use crate::sut::ping::PingConfig;
use crate::world::{DiskConfig, NetworkConfig};

impl Scenario {
    pub fn plan(&self) -> RunPlan {
        let system = match self.system {
            SystemKind::Ping => SystemPlan::Ping(PingConfig {
                interval_us: self.ping.interval_us,
                payload_bytes: u32::try_from(self.ping.payload_bytes).unwrap_or(u32::MAX),
            }),
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
            faults: self
                .faults
                .iter()
                .map(|spec| ScheduledFault {
                    at_us: spec.at_us,
                    duration_us: spec.duration_us,
                    fault: spec.fault.clone(),
                })
                .collect(),
            duration_us: self.duration_us,
            heal_us: self.heal_us,
            checkers: self.expect.checkers.iter().map(|checker| checker.name().to_string()).collect(),
        }
    }
}
