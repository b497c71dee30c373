//! Synthetic key-value histories for tests and benchmarks: a sequential execution of random
//! operations, each stretched into a real-time interval around its linearization point, on
//! clients that issue one operation at a time. Such a history is linearizable by construction.
//!
//! Owns the generator and its small deterministic random source (one seed decides everything).
//! Must never be used to judge a real history: it only produces inputs.

use std::collections::HashMap;

use super::history::{KvFunction, KvHistory, KvOperation, Observed};

/// What to generate.
#[derive(Clone, Debug)]
pub struct GeneratorSettings {
    pub seed: u64,
    pub operations: usize,
    pub keys: usize,
    pub clients: usize,
    /// Share of operations that never return (their client then crashes and is replaced).
    pub indeterminate_fraction: f64,
    /// Every written value distinct (the workload's choice), or values drawn from a small set.
    pub unique_values: bool,
    /// Relative weights of get, put, cas and append.
    pub weights: [u32; 4],
    /// Longest stretch of an interval on each side of its linearization point, in microseconds.
    pub max_stretch_us: u64,
}

impl Default for GeneratorSettings {
    fn default() -> Self {
        GeneratorSettings {
            seed: 1,
            operations: 1000,
            keys: 10,
            clients: 8,
            indeterminate_fraction: 0.1,
            unique_values: true,
            weights: [50, 30, 20, 0],
            max_stretch_us: 40,
        }
    }
}

/// A small, fast, deterministic random source (splitmix64).
#[derive(Clone, Debug)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound.max(1))) >> 64) as u64
    }

    pub fn chance(&mut self, probability: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < probability
    }
}

/// Generates a linearizable history.
pub fn generate(settings: &GeneratorSettings) -> KvHistory {
    let mut random = SplitMix::new(settings.seed);
    let clients = settings.clients.max(1);
    let keys = settings.keys.max(1);
    // Per client slot: the id it uses now (replaced after a crash) and when it is free again.
    let mut client_ids: Vec<u64> = (0..clients as u64).collect();
    let mut next_client_id = clients as u64;
    let mut free_at: Vec<u64> = vec![0; clients];
    let mut state: HashMap<usize, String> = HashMap::new();
    let mut operations = Vec::with_capacity(settings.operations);
    let total_weight: u32 = settings.weights.iter().sum::<u32>().max(1);
    let mut point: u64 = 0;
    for sequence in 0..settings.operations {
        point += 1 + random.below(4);
        // A client free at the linearization point; if none, time moves on until one is.
        let slot = random.below(clients as u64) as usize;
        let slot = (0..clients).map(|offset| (slot + offset) % clients).find(|slot| free_at[*slot] < point);
        let slot = match slot {
            Some(slot) => slot,
            None => {
                let earliest = (0..clients).min_by_key(|slot| free_at[*slot]).unwrap_or(0);
                point = free_at[earliest] + 1;
                earliest
            }
        };
        let call = point - random.below(settings.max_stretch_us + 1).min(point - free_at[slot] - 1);
        let returned = point + random.below(settings.max_stretch_us + 1);
        let key = random.below(keys as u64) as usize;
        let client = client_ids[slot];
        let fresh = format!("c{client}-{sequence}");
        let value = if settings.unique_values { fresh } else { random.below(5).to_string() };
        let current = state.get(&key).cloned();
        let mut roll = random.below(u64::from(total_weight)) as u32;
        let mut kind = 0;
        while kind < 3 && roll >= settings.weights[kind] {
            roll -= settings.weights[kind];
            kind += 1;
        }
        let indeterminate = random.chance(settings.indeterminate_fraction);
        // An indeterminate operation takes effect half of the time.
        let takes_effect = !indeterminate || random.chance(0.5);
        let function = match kind {
            0 => KvFunction::Get { result: Observed::Value(current.clone()) },
            1 => {
                if takes_effect {
                    state.insert(key, value.clone());
                }
                KvFunction::Put { value }
            }
            2 => {
                let expected = if random.chance(0.7) {
                    current.clone()
                } else if settings.unique_values {
                    Some(format!("stale-{sequence}"))
                } else {
                    Some(random.below(5).to_string())
                };
                let swapped = expected == current;
                if swapped && takes_effect {
                    state.insert(key, value.clone());
                }
                KvFunction::Cas { expected, new: value, result: Observed::Value(swapped) }
            }
            _ => {
                let suffix = if settings.unique_values { format!("[{value}]") } else { value };
                if takes_effect {
                    let mut text = current.unwrap_or_default();
                    text.push_str(&suffix);
                    state.insert(key, text);
                }
                KvFunction::Append { value: suffix }
            }
        };
        if indeterminate {
            client_ids[slot] = next_client_id;
            next_client_id += 1;
            free_at[slot] = point;
        } else {
            free_at[slot] = returned;
        }
        operations.push(KvOperation {
            id: sequence as u64,
            client,
            key: format!("k{key}"),
            function,
            call_us: call,
            return_us: (!indeterminate).then_some(returned),
        });
    }
    KvHistory { initial_value: None, operations }
}
