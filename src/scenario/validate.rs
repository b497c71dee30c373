//! Turns a `RawScenario` into a typed `Scenario`, or the first problem found. Tables are checked in
//! a fixed order (top-level fields, cluster, network, disk, clock, ping, store, workload, faults,
//! expect) and fields in the order they are declared, so a file with several problems always
//! reports the same one first. Every error points at the offending value; a missing required field points at
//! the table that should hold it.

use std::ops::Range;

use toml::Spanned;

use super::error::{line_and_column, ErrorContext, ScenarioError};
use super::schema::{
    RawClock, RawCluster, RawDisk, RawExpect, RawFault, RawLatency, RawMix, RawNetwork, RawNode, RawPing, RawScenario,
    RawStore, RawWorkload,
};
use super::{
    parse_seed_range, store_layout, ClockModel, Cluster, DiskModel, Expect, FaultSpec, KeyDistribution, Network,
    OperationMix, Ping, Scenario, SeedRange, SystemKind, Workload,
};
use crate::checker::{self, Checker};
use crate::sut::store::StoreTimers;
use crate::units::{format_us, parse_bytes, parse_duration_us};
use crate::world::fault::{DiskTarget, Fault, FaultKind, LatencyRange, LinkSet};
use crate::world::NodeId;

type Checked<T> = Result<T, ScenarioError>;

/// The largest clock drift a scenario may ask for: at a million ppm a clock would stop or run at
/// double speed, which is no longer a skewed clock but a broken one.
const DRIFT_PPM_LIMIT: i64 = 999_999;

/// The largest ping payload: pings measure reachability, not bandwidth.
const PING_PAYLOAD_LIMIT_BYTES: u64 = 1 << 20;

/// The most entries a store replica may apply between checkpoints: beyond it a replica's log, and
/// the replay after a restart, outgrow any run.
const CHECKPOINT_ENTRIES_LIMIT: i64 = 1_000_000;

/// Bounds of a store log segment: below 1KiB a segment holds a handful of entries and every write
/// rolls a file; above 64MiB a segment is never closed in a run of simulated seconds.
const SEGMENT_BYTES_MIN: u64 = 1 << 10;
const SEGMENT_BYTES_MAX: u64 = 64 << 20;

/// How far the operation mix may stray from 1 before it counts as a mistake rather than rounding.
const MIX_TOLERANCE: f64 = 1e-9;

pub(crate) fn parse_and_validate(file: &str, text: &str) -> Checked<Scenario> {
    let context = ErrorContext { file, text };
    let raw: RawScenario = toml::from_str(text).map_err(|error| context.toml_error(&error))?;
    Validator { context }.scenario(raw)
}

struct Validator<'text> {
    context: ErrorContext<'text>,
}

impl Validator<'_> {
    fn scenario(&self, raw: RawScenario) -> Checked<Scenario> {
        let name = match &raw.name {
            Some(name) if name.get_ref().trim().is_empty() => {
                return Err(self.error(
                    name,
                    "name",
                    "must not be empty; name the scenario, e.g. `name = \"peer-replace\"`",
                ))
            }
            Some(name) => name.get_ref().clone(),
            None => {
                return Err(self.missing_at_top("name", "every scenario needs a name, e.g. `name = \"peer-replace\"`"))
            }
        };
        let description = raw.description.map(|description| description.into_inner()).unwrap_or_default();
        let seeds = match &raw.seeds {
            Some(seeds) => parse_seed_range(seeds.get_ref()).map_err(|message| self.error(seeds, "seeds", message))?,
            None => SeedRange { start: 0, end: 100 },
        };
        let duration_us = match &raw.duration {
            Some(duration) => self.positive_duration(duration, "duration")?,
            None => {
                return Err(self.missing_at_top(
                    "duration",
                    "every scenario needs the length of its safety phase, e.g. `duration = \"10s\"`",
                ))
            }
        };
        let heal_us = match &raw.heal {
            Some(heal) => self.positive_duration(heal, "heal")?,
            None => 2_000_000,
        };
        let system = match &raw.system {
            Some(system) => SystemKind::from_name(system.get_ref()).ok_or_else(|| {
                self.error(
                    system,
                    "system",
                    format!(
                        "unknown system `{}`; allowed: {}",
                        system.get_ref(),
                        list(SystemKind::ALL.iter().map(|system| system.name()))
                    ),
                )
            })?,
            None => SystemKind::Ping,
        };
        let cluster = self.cluster(raw.cluster.unwrap_or_default())?;
        let network = self.network(raw.network.unwrap_or_default())?;
        let disk = self.disk(raw.disk.unwrap_or_default())?;
        let clock = self.clock(raw.clock.unwrap_or_default())?;
        // A table that does not apply to the system is checked first, then rejected, so that the
        // error does not change when the file's `system` does.
        let ping = match &raw.ping {
            Some(ping) => {
                let checked = self.ping(ping.get_ref())?;
                if system != SystemKind::Ping {
                    return Err(self.error(
                        ping,
                        "ping",
                        format!("does not apply to the {system} system; `[ping]` sets the ping system's knobs"),
                    ));
                }
                checked
            }
            None => Ping::default(),
        };
        let store = match &raw.store {
            Some(store) => {
                let checked = self.store(store.get_ref())?;
                if system != SystemKind::Store {
                    return Err(self.error(
                        store,
                        "store",
                        format!(
                            "does not apply to the {system} system; `[store]` sets the timers of the store system (`system = \"store\"`)"
                        ),
                    ));
                }
                checked
            }
            None => StoreTimers::default(),
        };
        let workload = match &raw.workload {
            Some(workload) => {
                let checked = self.workload(workload)?;
                if !system.has_clients() {
                    return Err(self.error(
                        workload,
                        "workload",
                        format!(
                            "does not apply to the {system} system, which has no clients; a workload drives the store system (`system = \"store\"`)"
                        ),
                    ));
                }
                Some(checked)
            }
            None if system.has_clients() => {
                return Err(self.missing_at_top(
                    "workload",
                    &format!(
                        "the {system} system needs a `[workload]` table for its clients, with `clients`, `keys`, `mix`, `rate` and `op_timeout`"
                    ),
                ))
            }
            None => None,
        };
        if let (SystemKind::Store, Some(workload)) = (system, &workload) {
            self.heal_covers_read_back(&raw.heal, heal_us, workload)?;
        }
        let mut faults = Vec::new();
        for (index, fault) in raw.faults.iter().flatten().enumerate() {
            let field = format!("faults[{index}]");
            faults.push(self.fault(fault, &field, duration_us, system, &cluster)?);
        }
        let expect = self.expect(raw.expect.unwrap_or_default(), system)?;
        Ok(Scenario {
            name,
            description,
            seeds,
            duration_us,
            heal_us,
            system,
            cluster,
            network,
            disk,
            clock,
            ping,
            store,
            workload,
            faults,
            expect,
        })
    }

    fn cluster(&self, raw: RawCluster) -> Checked<Cluster> {
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
        };
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

    fn network(&self, raw: RawNetwork) -> Checked<Network> {
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

    fn disk(&self, raw: RawDisk) -> Checked<DiskModel> {
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

    fn clock(&self, raw: RawClock) -> Checked<ClockModel> {
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

    fn ping(&self, raw: &RawPing) -> Checked<Ping> {
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

    fn store(&self, raw: &RawStore) -> Checked<StoreTimers> {
        let defaults = StoreTimers::default();
        let heartbeat_us = match &raw.heartbeat {
            Some(heartbeat) => self.positive_duration(heartbeat, "store.heartbeat")?,
            None => defaults.heartbeat_us,
        };
        let failure_timeout_us = match &raw.failure_timeout {
            Some(timeout) => self.duration(timeout, "store.failure_timeout")?,
            None => defaults.failure_timeout_us,
        };
        if failure_timeout_us <= 2 * heartbeat_us {
            let why = "the master must be able to miss a heartbeat before it declares a primary dead";
            // Point at whichever of the two the file wrote; the defaults alone agree.
            return Err(match (&raw.failure_timeout, &raw.heartbeat) {
                (Some(timeout), _) => self.error(
                    timeout,
                    "store.failure_timeout",
                    format!(
                        "must be more than twice store.heartbeat ({}), got {}; {why}",
                        format_us(heartbeat_us),
                        format_us(failure_timeout_us)
                    ),
                ),
                (None, Some(heartbeat)) => self.error(
                    heartbeat,
                    "store.heartbeat",
                    format!(
                        "must be less than half of store.failure_timeout ({}, the default), got {}; {why}",
                        format_us(failure_timeout_us),
                        format_us(heartbeat_us)
                    ),
                ),
                (None, None) => unreachable!("the default store timers let the master miss a heartbeat"),
            });
        }
        Ok(StoreTimers {
            heartbeat_us,
            failure_timeout_us,
            retry_us: match &raw.retry {
                Some(retry) => self.positive_duration(retry, "store.retry")?,
                None => defaults.retry_us,
            },
            checkpoint_entries: match &raw.checkpoint_entries {
                Some(entries) => {
                    self.integer_in(entries, "store.checkpoint_entries", 1, CHECKPOINT_ENTRIES_LIMIT)? as u64
                }
                None => defaults.checkpoint_entries,
            },
            segment_bytes: match &raw.segment_size {
                Some(size) => {
                    let bytes = self.bytes(size, "store.segment_size")?;
                    if !(SEGMENT_BYTES_MIN..=SEGMENT_BYTES_MAX).contains(&bytes) {
                        return Err(self.error(
                            size,
                            "store.segment_size",
                            format!("must be between 1KiB and 64MiB, got {bytes} bytes"),
                        ));
                    }
                    bytes
                }
                None => defaults.segment_bytes,
            },
        })
    }

    /// The store's final read-back starts halfway through the heal phase (`duration + heal/2`),
    /// and must have time for an attempt that times out and a retry before the run ends.
    fn heal_covers_read_back(&self, raw: &Option<Spanned<String>>, heal_us: u64, workload: &Workload) -> Checked<()> {
        let needed_us = workload.op_timeout_us.saturating_mul(2);
        if heal_us >= needed_us {
            return Ok(());
        }
        let rule = format!(
            "the store system needs at least twice workload.op_timeout (2 x {} = {})",
            format_us(workload.op_timeout_us),
            format_us(needed_us)
        );
        let why =
            "the final read-back starts at duration + heal/2 and needs time for an attempt that times out and a retry";
        Err(match raw {
            Some(heal) => self.error(heal, "heal", format!("is {}, but {rule}; {why}", format_us(heal_us))),
            None => self.context.at(
                0,
                "heal",
                format!(
                    "is {} (the default), but {rule}; {why}; set e.g. `heal = \"{}\"`",
                    format_us(heal_us),
                    format_us(needed_us)
                ),
            ),
        })
    }

    fn workload(&self, raw: &Spanned<RawWorkload>) -> Checked<Workload> {
        let table = raw.get_ref();
        let required = |field: &str, example: &str| {
            self.context.at(
                raw.span().start,
                format!("workload.{field}"),
                format!("missing; a workload needs `{field}`, e.g. `{field} = {example}`"),
            )
        };
        let clients = match &table.clients {
            Some(clients) => self.integer_in(clients, "workload.clients", 1, 100_000)? as u32,
            None => return Err(required("clients", "8")),
        };
        let keys = match &table.keys {
            Some(keys) => self.integer_in(keys, "workload.keys", 1, i64::MAX)? as u64,
            None => return Err(required("keys", "1000")),
        };
        let mix = match &table.mix {
            Some(mix) => self.mix(mix)?,
            None => return Err(required("mix", "{ get = 0.4, put = 0.4, cas = 0.1, append = 0.1 }")),
        };
        let distribution = match table.distribution.as_ref().map(|name| (name, name.get_ref().as_str())) {
            None | Some((_, "uniform")) => {
                if let Some(exponent) = &table.zipf_exponent {
                    return Err(self.error(
                        exponent,
                        "workload.zipf_exponent",
                        "applies only to `distribution = \"zipfian\"`; the distribution here is uniform",
                    ));
                }
                KeyDistribution::Uniform
            }
            Some((_, "zipfian")) => {
                let exponent = match &table.zipf_exponent {
                    Some(exponent) => {
                        let value = *exponent.get_ref();
                        if !(value.is_finite() && value > 0.0) {
                            return Err(self.error(
                                exponent,
                                "workload.zipf_exponent",
                                format!("must be greater than 0, got {value}"),
                            ));
                        }
                        value
                    }
                    None => 0.99,
                };
                KeyDistribution::Zipfian { exponent }
            }
            Some((name, other)) => {
                return Err(self.error(
                    name,
                    "workload.distribution",
                    format!("unknown distribution `{other}`; allowed: uniform, zipfian"),
                ))
            }
        };
        let rate = match &table.rate {
            Some(rate) => {
                let value = *rate.get_ref();
                if !(value.is_finite() && value > 0.0) {
                    return Err(self.error(
                        rate,
                        "workload.rate",
                        format!("must be more than 0 operations per simulated second, got {value}"),
                    ));
                }
                value
            }
            None => return Err(required("rate", "300")),
        };
        let op_timeout_us = match &table.op_timeout {
            Some(timeout) => self.positive_duration(timeout, "workload.op_timeout")?,
            None => return Err(required("op_timeout", "\"500ms\"")),
        };
        Ok(Workload { clients, keys, mix, distribution, rate, op_timeout_us })
    }

    fn mix(&self, raw: &Spanned<RawMix>) -> Checked<OperationMix> {
        let table = raw.get_ref();
        let share = |value: &Option<Spanned<f64>>, field: &str| match value {
            Some(value) => self.probability(value, field),
            None => Ok(0.0),
        };
        let mix = OperationMix {
            get: share(&table.get, "workload.mix.get")?,
            put: share(&table.put, "workload.mix.put")?,
            cas: share(&table.cas, "workload.mix.cas")?,
            append: share(&table.append, "workload.mix.append")?,
        };
        let sum = mix.get + mix.put + mix.cas + mix.append;
        if (sum - 1.0).abs() > MIX_TOLERANCE {
            // Rounded so that 0.1 + 0.2 prints as 0.3, not as its binary neighbour.
            let shown = (sum * 1e9).round() / 1e9;
            return Err(self.error(
                raw,
                "workload.mix",
                format!(
                    "the shares must sum to 1, got {shown} (get {} + put {} + cas {} + append {})",
                    mix.get, mix.put, mix.cas, mix.append
                ),
            ));
        }
        Ok(mix)
    }

    fn fault(
        &self,
        raw: &Spanned<RawFault>,
        field: &str,
        scenario_duration_us: u64,
        system: SystemKind,
        cluster: &Cluster,
    ) -> Checked<FaultSpec> {
        let table = raw.get_ref();
        let name = table.fault.as_ref().ok_or_else(|| {
            self.context.at(
                raw.span().start,
                format!("{field}.fault"),
                format!("missing; name the fault, one of: {}", list(FaultKind::ALL.iter().map(|kind| kind.name()))),
            )
        })?;
        let kind = FaultKind::from_name(name.get_ref()).ok_or_else(|| {
            self.error(
                name,
                format!("{field}.fault"),
                format!(
                    "unknown fault `{}`; allowed: {}",
                    name.get_ref(),
                    list(FaultKind::ALL.iter().map(|kind| kind.name()))
                ),
            )
        })?;
        let allowed = fields_of(kind);
        for (parameter, span) in present_parameters(table) {
            if !allowed.contains(&parameter) {
                return Err(self.context.at(
                    span.start,
                    format!("{field}.{parameter}"),
                    format!("`{parameter}` does not apply to {kind}; {kind} takes: fault, at, {}", allowed.join(", ")),
                ));
            }
        }
        let at_us = match &table.at {
            Some(at) => {
                let at_us = self.duration(at, &format!("{field}.at"))?;
                if at_us >= scenario_duration_us {
                    return Err(self.error(
                        at,
                        format!("{field}.at"),
                        format!(
                            "must be before the end of the safety phase (duration = {}), got {}",
                            format_us(scenario_duration_us),
                            format_us(at_us)
                        ),
                    ));
                }
                at_us
            }
            None => {
                return Err(self.context.at(
                    raw.span().start,
                    format!("{field}.at"),
                    "missing; say when the fault starts, e.g. `at = \"2s\"`",
                ))
            }
        };
        let duration_us = match &table.duration {
            Some(duration) => Some(self.positive_duration(duration, &format!("{field}.duration"))?),
            None => None,
        };
        let targets = Targets { validator: self, raw, field, node_count: system.node_count(cluster), system, cluster };
        let fault = match kind {
            FaultKind::NodeCrash => Fault::NodeCrash { node: targets.node()? },
            FaultKind::NodeRestart => Fault::NodeRestart { node: targets.node()? },
            FaultKind::NodePause => {
                let node = targets.node()?;
                let duration_us = duration_us.ok_or_else(|| {
                    self.context.at(
                        raw.span().start,
                        format!("{field}.duration"),
                        "missing; node_pause needs how long the node stalls, e.g. `duration = \"500ms\"`",
                    )
                })?;
                Fault::NodePause { node, duration_us }
            }
            FaultKind::PeerReplace => Fault::PeerReplace { node: targets.node()? },
            FaultKind::NetPartition => {
                let links = targets.links(kind, true)?;
                Fault::NetPartition { side_a: links.from, side_b: links.to }
            }
            FaultKind::NetLoss => Fault::NetLoss { links: targets.links(kind, false)?, rate: targets.rate(kind)? },
            FaultKind::NetDelay => {
                Fault::NetDelay { links: targets.links(kind, false)?, latency: targets.latency(kind)? }
            }
            FaultKind::NetDuplicate => {
                Fault::NetDuplicate { links: targets.links(kind, false)?, rate: targets.rate(kind)? }
            }
            FaultKind::NetReorder => Fault::NetReorder { links: targets.links(kind, false)? },
            FaultKind::NetClog => Fault::NetClog { links: targets.links(kind, true)? },
            FaultKind::DiskLostFsync => Fault::DiskLostFsync { target: targets.disk()?, rate: targets.rate(kind)? },
            FaultKind::DiskTornWrite => Fault::DiskTornWrite { target: targets.disk()? },
            FaultKind::DiskCorruption => Fault::DiskCorruption { target: targets.disk()?, rate: targets.rate(kind)? },
            FaultKind::DiskFsyncError => Fault::DiskFsyncError { target: targets.disk()? },
            FaultKind::DiskFull => Fault::DiskFull { target: targets.disk()? },
            FaultKind::DiskSlow => Fault::DiskSlow { target: targets.disk()?, latency: targets.latency(kind)? },
            FaultKind::ClockSkew => {
                let node = targets.node()?;
                let (skew_us, drift_ppm) = targets.clock()?;
                Fault::ClockSkew { node, skew_us, drift_ppm }
            }
        };
        if system == SystemKind::Store {
            self.master_disk_stays_honest(table, field, kind, &fault, cluster)?;
        }
        let (line, _) = line_and_column(self.context.text, name.span().start);
        Ok(FaultSpec { at_us, duration_us, fault, line })
    }

    /// The store's config master is one node whose state on disk is the cluster's configuration
    /// (its failure model, in `sut/store/master.rs`): it survives crashes, restarts, stalls, full
    /// or slow disks and failed fsyncs, but not a disk that forgets what it acknowledged or
    /// garbles it. Faults that make its disk lie are refused rather than run into a verdict
    /// nobody could act on.
    fn master_disk_stays_honest(
        &self,
        table: &RawFault,
        field: &str,
        kind: FaultKind,
        fault: &Fault,
        cluster: &Cluster,
    ) -> Checked<()> {
        let master = crate::sut::store::Layout { storage_nodes: cluster.nodes, gateways: cluster.gateways }.master();
        let target = match fault {
            Fault::DiskLostFsync { target, .. } | Fault::DiskCorruption { target, .. } => target.node,
            Fault::PeerReplace { node } => *node,
            _ => return Ok(()),
        };
        if target != master {
            return Ok(());
        }
        let Some(node) = &table.node else { return Ok(()) };
        Err(self.error(
            node,
            format!("{field}.node"),
            format!(
                "node {master} is the store's config master, a single node whose disk must not lose or garble what it \
                 wrote (its failure model); {kind} cannot target it. Crash, restart, pause or partition it instead"
            ),
        ))
    }

    fn expect(&self, raw: RawExpect, system: SystemKind) -> Checked<Expect> {
        let applicable = checker::registry::for_system(system);
        let applicable_names = || list(applicable.iter().map(|checker| checker.name));
        let Some(names) = &raw.checkers else {
            return Ok(Expect { checkers: applicable });
        };
        if names.get_ref().is_empty() {
            return Err(self.error(
                names,
                "expect.checkers",
                format!("must name at least one checker; for the {system} system: {}", applicable_names()),
            ));
        }
        let mut checkers: Vec<&'static Checker> = Vec::new();
        for (index, name) in names.get_ref().iter().enumerate() {
            let field = format!("expect.checkers[{index}]");
            let checker = checker::registry::find(name.get_ref()).ok_or_else(|| {
                self.error(
                    name,
                    &field,
                    format!(
                        "unknown checker `{}`; allowed: {}",
                        name.get_ref(),
                        list(checker::CHECKERS.iter().map(|checker| checker.name))
                    ),
                )
            })?;
            if !checker.applies_to(system) {
                return Err(self.error(
                    name,
                    &field,
                    format!(
                        "`{checker}` does not apply to the {system} system; it can be checked by: {}",
                        applicable_names()
                    ),
                ));
            }
            if checkers.contains(&checker) {
                return Err(self.error(name, &field, format!("`{checker}` is listed twice")));
            }
            checkers.push(checker);
        }
        Ok(Expect { checkers })
    }

    fn error<T>(&self, value: &Spanned<T>, field: impl Into<String>, message: impl Into<String>) -> ScenarioError {
        self.context.spanned(value, field, message)
    }

    /// A required top-level field is missing: there is no value to point at, so point at the
    /// start of the file, where top-level fields belong.
    fn missing_at_top(&self, field: &str, message: &str) -> ScenarioError {
        self.context.at(0, field, format!("missing; {message}"))
    }

    fn duration(&self, value: &Spanned<String>, field: &str) -> Checked<u64> {
        parse_duration_us(value.get_ref()).map_err(|message| self.error(value, field, message))
    }

    fn positive_duration(&self, value: &Spanned<String>, field: &str) -> Checked<u64> {
        let micros = self.duration(value, field)?;
        if micros == 0 {
            return Err(self.error(value, field, "must be longer than 0"));
        }
        Ok(micros)
    }

    fn bytes(&self, value: &Spanned<String>, field: &str) -> Checked<u64> {
        parse_bytes(value.get_ref()).map_err(|message| self.error(value, field, message))
    }

    fn integer_in(&self, value: &Spanned<i64>, field: &str, min: i64, max: i64) -> Checked<i64> {
        let number = *value.get_ref();
        if number < min || number > max {
            let message = if max == i64::MAX {
                format!("must be at least {min}, got {number}")
            } else {
                format!("must be between {min} and {max}, got {number}")
            };
            return Err(self.error(value, field, message));
        }
        Ok(number)
    }

    /// A probability in [0, 1].
    fn probability(&self, value: &Spanned<f64>, field: &str) -> Checked<f64> {
        let number = *value.get_ref();
        if !(0.0..=1.0).contains(&number) {
            return Err(self.error(value, field, format!("must be between 0 and 1, got {number}")));
        }
        Ok(number)
    }

    /// A probability in [0, 1): a network that drops or duplicates every message is not a
    /// network model, and a fault (`net_loss`) says so more plainly.
    fn probability_below_one(&self, value: &Spanned<f64>, field: &str) -> Checked<f64> {
        let number = *value.get_ref();
        if !(0.0..1.0).contains(&number) {
            return Err(self.error(value, field, format!("must be at least 0 and below 1, got {number}")));
        }
        Ok(number)
    }

    fn latency(&self, value: &Spanned<RawLatency>, field: &str) -> Checked<LatencyRange> {
        let table = value.get_ref();
        let bound = |bound: &Option<Spanned<String>>, name: &str| match bound {
            Some(bound) => self.duration(bound, &format!("{field}.{name}")),
            None => Err(self.context.at(
                value.span().start,
                format!("{field}.{name}"),
                "missing; a latency range needs both bounds, e.g. `{ min = \"1ms\", max = \"5ms\" }`",
            )),
        };
        let min_us = bound(&table.min, "min")?;
        let max_us = bound(&table.max, "max")?;
        if min_us > max_us {
            return Err(self.error(
                value,
                field,
                format!("min ({}) must not be greater than max ({})", format_us(min_us), format_us(max_us)),
            ));
        }
        Ok(LatencyRange { min_us, max_us })
    }
}

/// Resolves one fault's targets and parameters. Field applicability has been checked already, so
/// each method only asks for the fields its fault takes.
struct Targets<'validator, 'text> {
    validator: &'validator Validator<'text>,
    raw: &'validator Spanned<RawFault>,
    field: &'validator str,
    node_count: u32,
    system: SystemKind,
    cluster: &'validator Cluster,
}

impl Targets<'_, '_> {
    fn table(&self) -> &RawFault {
        self.raw.get_ref()
    }

    fn missing(&self, parameter: &str, message: String) -> ScenarioError {
        self.validator.context.at(
            self.raw.span().start,
            format!("{}.{parameter}", self.field),
            format!("missing; {message}"),
        )
    }

    fn node(&self) -> Checked<NodeId> {
        match &self.table().node {
            Some(node) => self.node_id(node, &format!("{}.node", self.field)),
            None => Err(self.missing("node", format!("say which node, e.g. `node = 0` (ids 0..{})", self.node_count))),
        }
    }

    fn node_id(&self, node: &Spanned<RawNode>, field: &str) -> Checked<NodeId> {
        match node.get_ref() {
            RawNode::Id(id) if (0..i64::from(self.node_count)).contains(id) => Ok(*id as NodeId),
            RawNode::Id(id) => Err(self.validator.error(node, field, self.no_such_node(*id))),
            RawNode::Role(role) => Err(self.validator.error(
                node,
                field,
                format!("`{role}` is not a node id; role selectors arrive with migrations"),
            )),
        }
    }

    fn no_such_node(&self, id: i64) -> String {
        match self.system {
            SystemKind::Ping => {
                format!(
                    "node {id} does not exist; node ids are 0..{} (cluster.nodes = {})",
                    self.node_count, self.cluster.nodes
                )
            }
            SystemKind::Store => {
                let layout = store_layout(self.cluster);
                let ids = |start: u32, end: u32| {
                    if end - start == 1 {
                        start.to_string()
                    } else {
                        format!("{start}..{end}")
                    }
                };
                format!(
                    "node {id} does not exist; the store's nodes are {} (storage), {} (master), {} (gateways), {} (clients)",
                    ids(0, layout.storage_nodes),
                    layout.master(),
                    ids(layout.gateway(0), layout.gateway(0) + layout.gateways),
                    layout.clients()
                )
            }
        }
    }

    fn node_list(&self, nodes: &Spanned<Vec<Spanned<RawNode>>>, parameter: &str) -> Checked<Vec<NodeId>> {
        let field = format!("{}.{parameter}", self.field);
        if nodes.get_ref().is_empty() {
            return Err(self.validator.error(nodes, &field, "must list at least one node id"));
        }
        let mut ids = Vec::new();
        for (index, node) in nodes.get_ref().iter().enumerate() {
            let id = self.node_id(node, &format!("{field}[{index}]"))?;
            if ids.contains(&id) {
                return Err(self.validator.error(
                    node,
                    format!("{field}[{index}]"),
                    format!("node {id} is listed twice"),
                ));
            }
            ids.push(id);
        }
        Ok(ids)
    }

    /// The links of a network fault: from `nodes` to `peers`, where omitted `peers` means every
    /// node not in `nodes`. Faults that cut a set of nodes off (`net_partition`, `net_clog`) need
    /// `nodes`; the others default to every link in the network.
    fn links(&self, kind: FaultKind, nodes_required: bool) -> Checked<LinkSet> {
        let table = self.table();
        let both_ways_default = kind != FaultKind::NetClog;
        let both_ways = table.both_ways.as_ref().map(|both_ways| *both_ways.get_ref()).unwrap_or(both_ways_default);
        let Some(nodes) = &table.nodes else {
            if let Some(peers) = &table.peers {
                return Err(self.validator.error(
                    peers,
                    format!("{}.peers", self.field),
                    "needs `nodes` too: the fault touches links from `nodes` to `peers`",
                ));
            }
            if nodes_required {
                return Err(self.missing("nodes", format!("{kind} needs the nodes it cuts off, e.g. `nodes = [0]`")));
            }
            // Empty sets mean every node: the fault touches every link.
            return Ok(LinkSet { from: Vec::new(), to: Vec::new(), both_ways });
        };
        let from = self.node_list(nodes, "nodes")?;
        let to = match &table.peers {
            Some(peers) => {
                let to = self.node_list(peers, "peers")?;
                if let Some(shared) = to.iter().find(|id| from.contains(id)) {
                    return Err(self.validator.error(
                        peers,
                        format!("{}.peers", self.field),
                        format!("node {shared} is in both `nodes` and `peers`; the two sides must not overlap"),
                    ));
                }
                to
            }
            None => {
                let rest: Vec<NodeId> = (0..self.node_count).filter(|id| !from.contains(id)).collect();
                if rest.is_empty() {
                    return Err(self.validator.error(
                        nodes,
                        format!("{}.nodes", self.field),
                        "lists every node, so no peers are left on the other side; leave a node out or name `peers`",
                    ));
                }
                rest
            }
        };
        Ok(LinkSet { from, to, both_ways })
    }

    fn disk(&self) -> Checked<DiskTarget> {
        let node = self.node()?;
        let disk = match &self.table().disk {
            Some(disk) => {
                let disks = i64::from(self.cluster.disks_per_node);
                let index = *disk.get_ref();
                if !(0..disks).contains(&index) {
                    return Err(self.validator.error(
                        disk,
                        format!("{}.disk", self.field),
                        format!(
                            "disk {index} does not exist; disk ids are 0..{disks} (cluster.disks_per_node = {disks})"
                        ),
                    ));
                }
                Some(index as u32)
            }
            None => None,
        };
        Ok(DiskTarget { node, disk })
    }

    fn rate(&self, kind: FaultKind) -> Checked<f64> {
        match &self.table().rate {
            Some(rate) => self.validator.probability(rate, &format!("{}.rate", self.field)),
            None => Err(self.missing("rate", format!("{kind} needs a probability, e.g. `rate = 0.1`"))),
        }
    }

    fn latency(&self, kind: FaultKind) -> Checked<LatencyRange> {
        match &self.table().latency {
            Some(latency) => self.validator.latency(latency, &format!("{}.latency", self.field)),
            None => Err(self.missing(
                "latency",
                format!("{kind} needs a range, e.g. `latency = {{ min = \"1ms\", max = \"5ms\" }}`"),
            )),
        }
    }

    fn clock(&self) -> Checked<(i64, i64)> {
        let table = self.table();
        if table.skew.is_none() && table.drift_ppm.is_none() {
            return Err(self.missing(
                "skew",
                "clock_skew needs `skew` (e.g. `skew = \"-2ms\"`), `drift_ppm` (e.g. `drift_ppm = 50`) or both"
                    .to_string(),
            ));
        }
        let skew_us = match &table.skew {
            Some(skew) => {
                let field = format!("{}.skew", self.field);
                let text = skew.get_ref().trim();
                let (negative, magnitude) = match text.strip_prefix('-') {
                    Some(rest) => (true, rest),
                    None => (false, text),
                };
                let micros =
                    parse_duration_us(magnitude).map_err(|message| self.validator.error(skew, &field, message))?;
                let micros = i64::try_from(micros)
                    .map_err(|_| self.validator.error(skew, &field, format!("`{text}` is too large")))?;
                if negative {
                    -micros
                } else {
                    micros
                }
            }
            None => 0,
        };
        let drift_ppm = match &table.drift_ppm {
            Some(drift) => self.validator.integer_in(
                drift,
                &format!("{}.drift_ppm", self.field),
                -DRIFT_PPM_LIMIT,
                DRIFT_PPM_LIMIT,
            )?,
            None => 0,
        };
        Ok((skew_us, drift_ppm))
    }
}

/// The optional fields each fault takes, besides `fault` and `at` which every fault has.
fn fields_of(kind: FaultKind) -> &'static [&'static str] {
    match kind {
        FaultKind::NodeCrash => &["node", "duration"],
        // Restarting and replacing happen at an instant: there is nothing to heal later.
        FaultKind::NodeRestart | FaultKind::PeerReplace => &["node"],
        FaultKind::NodePause => &["node", "duration"],
        FaultKind::NetPartition => &["nodes", "peers", "duration"],
        FaultKind::NetLoss | FaultKind::NetDuplicate => &["nodes", "peers", "both_ways", "rate", "duration"],
        FaultKind::NetDelay => &["nodes", "peers", "both_ways", "latency", "duration"],
        FaultKind::NetReorder | FaultKind::NetClog => &["nodes", "peers", "both_ways", "duration"],
        FaultKind::DiskLostFsync | FaultKind::DiskCorruption => &["node", "disk", "rate", "duration"],
        FaultKind::DiskTornWrite | FaultKind::DiskFsyncError | FaultKind::DiskFull => &["node", "disk", "duration"],
        FaultKind::DiskSlow => &["node", "disk", "latency", "duration"],
        FaultKind::ClockSkew => &["node", "skew", "drift_ppm", "duration"],
    }
}

/// The optional fields a fault entry wrote, with where each value starts, in declaration order.
fn present_parameters(fault: &RawFault) -> Vec<(&'static str, Range<usize>)> {
    let spans = [
        ("duration", fault.duration.as_ref().map(Spanned::span)),
        ("node", fault.node.as_ref().map(Spanned::span)),
        ("disk", fault.disk.as_ref().map(Spanned::span)),
        ("nodes", fault.nodes.as_ref().map(Spanned::span)),
        ("peers", fault.peers.as_ref().map(Spanned::span)),
        ("both_ways", fault.both_ways.as_ref().map(Spanned::span)),
        ("rate", fault.rate.as_ref().map(Spanned::span)),
        ("latency", fault.latency.as_ref().map(Spanned::span)),
        ("skew", fault.skew.as_ref().map(Spanned::span)),
        ("drift_ppm", fault.drift_ppm.as_ref().map(Spanned::span)),
    ];
    spans.into_iter().filter_map(|(name, span)| span.map(|span| (name, span))).collect()
}

fn list<'name>(names: impl IntoIterator<Item = &'name str>) -> String {
    names.into_iter().collect::<Vec<_>>().join(", ")
}
