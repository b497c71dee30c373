//! Turns a `RawScenario` into a typed `Scenario`, or the first problem found. Tables are checked in
//! a fixed order (top-level fields, cluster, network, disk, clock, ping, store, workload,
//! migrations, faults, expect) and fields in the order they are declared, so a file with several problems always
//! reports the same one first. Every error points at the offending value; a missing required field points at
//! the table that should hold it.

mod faults;
mod migrations;
mod store;
mod world;

use toml::Spanned;

use super::error::{ErrorContext, ScenarioError};
use super::schema::{RawExpect, RawLatency, RawScenario};
use super::{parse_seed_range, Expect, Ping, Scenario, SeedRange, SystemKind};
use crate::checker::{self, Checker};
use crate::sut::store::StoreTimers;
use crate::units::{format_us, parse_bytes, parse_duration_us};
use crate::world::fault::LatencyRange;

pub(super) type Checked<T> = Result<T, ScenarioError>;

/// The longest duration a scenario may name (model time): the safety and liveness phases, and
/// every timer, are bounded so that a run always ends and its arithmetic never overflows.
const DURATION_LIMIT_US: u64 = 3_600_000_000;

/// The largest clock drift a scenario may ask for: at a million ppm a clock would stop or run at
/// double speed, which is no longer a skewed clock but a broken one.
pub(super) const DRIFT_PPM_LIMIT: i64 = 999_999;

/// The largest clock drift a scenario with migrations may ask for (10%): a gateway holds a
/// partition's writes for four fifths of the pause budget by its own clock, which at this drift
/// is at most 0.8 / 0.9 = 0.89 of the budget in true time, leaving the rest for delivery.
pub(super) const MIGRATION_DRIFT_PPM_LIMIT: i64 = crate::sut::store::migration::design::CLOCK_DRIFT_MAX_PPM as i64;

/// The largest ping payload: pings measure reachability, not bandwidth.
pub(super) const PING_PAYLOAD_LIMIT_BYTES: u64 = 1 << 20;

/// The most entries a store replica may apply between checkpoints: beyond it a replica's log, and
/// the replay after a restart, outgrow any run.
pub(super) const CHECKPOINT_ENTRIES_LIMIT: i64 = 1_000_000;

/// Bounds of a store log segment: below 1KiB a segment holds a handful of entries and every write
/// rolls a file; above 64MiB a segment is never closed in a run of simulated seconds.
pub(super) const SEGMENT_BYTES_MIN: u64 = 1 << 10;
pub(super) const SEGMENT_BYTES_MAX: u64 = 64 << 20;

/// How far the operation mix may stray from 1 before it counts as a mistake rather than rounding.
pub(super) const MIX_TOLERANCE: f64 = 1e-9;

pub(crate) fn parse_and_validate(file: &str, text: &str) -> Checked<Scenario> {
    let context = ErrorContext { file, text };
    let raw: RawScenario = toml::from_str(text).map_err(|error| context.toml_error(&error))?;
    Validator { context }.scenario(raw)
}

pub(super) struct Validator<'text> {
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
        let reserve_field = raw.cluster.as_ref().and_then(|cluster| cluster.reserve_nodes.clone());
        let cluster = self.cluster(raw.cluster.unwrap_or_default())?;
        if let (Some(reserve), SystemKind::Ping) = (&reserve_field, system) {
            return Err(self.error(
                reserve,
                "cluster.reserve_nodes",
                "does not apply to the ping system; reserve nodes host the groups a store's `scale_out` brings in",
            ));
        }
        let network = self.network(raw.network.unwrap_or_default())?;
        let disk = self.disk(raw.disk.unwrap_or_default())?;
        let clock_drift_field = raw.clock.as_ref().and_then(|clock| clock.drift_ppm_max.clone());
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
        let migrations::Migrations { migrations, new_groups } =
            self.migrations(raw.migrations.as_deref().unwrap_or_default(), duration_us, system, &cluster)?;
        if let (Some(drift), false) = (&clock_drift_field, migrations.is_empty()) {
            if clock.drift_ppm_max > MIGRATION_DRIFT_PPM_LIMIT as u64 {
                return Err(self.error(
                    drift,
                    "clock.drift_ppm_max",
                    format!(
                        "{} is beyond the {MIGRATION_DRIFT_PPM_LIMIT} ppm a scenario with migrations allows: gateways and sources time holds and leases on their own clocks, and the write-pause bound covers drift up to that",
                        clock.drift_ppm_max
                    ),
                ));
            }
        }
        let mut faults = Vec::new();
        for (index, fault) in raw.faults.iter().flatten().enumerate() {
            faults.push(self.fault(fault, index as u32, duration_us, system, &cluster, &migrations)?);
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
            migrations,
            new_groups,
            faults,
            expect,
        })
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

    pub(super) fn error<T>(
        &self,
        value: &Spanned<T>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ScenarioError {
        self.context.spanned(value, field, message)
    }

    /// A required top-level field is missing: there is no value to point at, so point at the
    /// start of the file, where top-level fields belong.
    pub(super) fn missing_at_top(&self, field: &str, message: &str) -> ScenarioError {
        self.context.at(0, field, format!("missing; {message}"))
    }

    pub(super) fn duration(&self, value: &Spanned<String>, field: &str) -> Checked<u64> {
        let micros = parse_duration_us(value.get_ref()).map_err(|message| self.error(value, field, message))?;
        if micros > DURATION_LIMIT_US {
            return Err(self.error(
                value,
                field,
                format!(
                    "must be at most {} of model time, got {}; a run's phases and timers are bounded so that every run ends",
                    format_us(DURATION_LIMIT_US),
                    format_us(micros)
                ),
            ));
        }
        Ok(micros)
    }

    pub(super) fn positive_duration(&self, value: &Spanned<String>, field: &str) -> Checked<u64> {
        let micros = self.duration(value, field)?;
        if micros == 0 {
            return Err(self.error(value, field, "must be longer than 0"));
        }
        Ok(micros)
    }

    pub(super) fn bytes(&self, value: &Spanned<String>, field: &str) -> Checked<u64> {
        parse_bytes(value.get_ref()).map_err(|message| self.error(value, field, message))
    }

    pub(super) fn integer_in(&self, value: &Spanned<i64>, field: &str, min: i64, max: i64) -> Checked<i64> {
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
    pub(super) fn probability(&self, value: &Spanned<f64>, field: &str) -> Checked<f64> {
        let number = *value.get_ref();
        if !(0.0..=1.0).contains(&number) {
            return Err(self.error(value, field, format!("must be between 0 and 1, got {number}")));
        }
        Ok(number)
    }

    /// A probability in [0, 1): a network that drops or duplicates every message is not a
    /// network model, and a fault (`net_loss`) says so more plainly.
    pub(super) fn probability_below_one(&self, value: &Spanned<f64>, field: &str) -> Checked<f64> {
        let number = *value.get_ref();
        if !(0.0..1.0).contains(&number) {
            return Err(self.error(value, field, format!("must be at least 0 and below 1, got {number}")));
        }
        Ok(number)
    }

    pub(super) fn latency(&self, value: &Spanned<RawLatency>, field: &str) -> Checked<LatencyRange> {
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

pub(super) fn list<'name>(names: impl IntoIterator<Item = &'name str>) -> String {
    names.into_iter().collect::<Vec<_>>().join(", ")
}
