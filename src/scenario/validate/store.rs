//! The store system's tables: `[store]` (timers and sizes) and `[workload]` (its clients), and the
//! rule that the heal phase leaves the final read-back time to finish.

use toml::Spanned;

use super::{Checked, Validator, CHECKPOINT_ENTRIES_LIMIT, MIX_TOLERANCE, SEGMENT_BYTES_MAX, SEGMENT_BYTES_MIN};

/// Bounds of a migration's snapshot chunk: below 64B a chunk holds hardly a key; above 16MiB one
/// chunk would hog a link for a simulated second.
const SNAPSHOT_CHUNK_BYTES_MIN: u64 = 64;
const SNAPSHOT_CHUNK_BYTES_MAX: u64 = 16 << 20;
use crate::scenario::schema::{RawMix, RawStore, RawWorkload};
use crate::scenario::{KeyDistribution, OperationMix, Workload};
use crate::sut::store::StoreTimers;
use crate::units::format_us;

impl Validator<'_> {
    pub(super) fn store(&self, raw: &RawStore) -> Checked<StoreTimers> {
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
            snapshot_chunk_bytes: match &raw.snapshot_chunk {
                Some(size) => {
                    let bytes = self.bytes(size, "store.snapshot_chunk")?;
                    if !(SNAPSHOT_CHUNK_BYTES_MIN..=SNAPSHOT_CHUNK_BYTES_MAX).contains(&bytes) {
                        return Err(self.error(
                            size,
                            "store.snapshot_chunk",
                            format!("must be between 64B and 16MiB, got {bytes} bytes"),
                        ));
                    }
                    bytes
                }
                None => defaults.snapshot_chunk_bytes,
            },
        })
    }

    /// The store's final read-back starts halfway through the heal phase (`duration + heal/2`),
    /// and must have time for an attempt that times out and a retry before the run ends.
    pub(super) fn heal_covers_read_back(
        &self,
        raw: &Option<Spanned<String>>,
        heal_us: u64,
        workload: &Workload,
    ) -> Checked<()> {
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

    pub(super) fn workload(&self, raw: &Spanned<RawWorkload>) -> Checked<Workload> {
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

    pub(super) fn mix(&self, raw: &Spanned<RawMix>) -> Checked<OperationMix> {
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
}
