//! Synthetic key-value histories for tests and benchmarks: a sequential execution of random
//! operations, each stretched into a real-time interval around its linearization point, on
//! clients that issue one operation at a time. Such a history is linearizable by construction,
//! unless a violation is planted: then exactly one key is not linearizable, by one stale read.
//!
//! [`GeneratorSettings::append_heavy`] gives the class that once made the checker slow or
//! inconclusive: many clients, few keys, mostly appends of long values, timed-out writes that
//! never took effect (so no read shows them), and optionally a violation late in one key.
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
    /// Share of indeterminate operations that take effect; the others never do, so when their
    /// values are unique no read ever shows them.
    pub indeterminate_effect_fraction: f64,
    /// Length every written value (and appended piece) is padded to, when unique; 0 keeps them
    /// short.
    pub value_length: usize,
    /// Plants one stale read: the first completed read on the last key (`k{keys - 1}`, last in
    /// key order) after this share of the history, whose value is made the one the key held
    /// before the last write that returned before the read was called. Needs unique values (so
    /// the stale value never comes back).
    pub violation_at: Option<f64>,
}

impl GeneratorSettings {
    /// `clients` clients on `keys` keys, 70 % appends of 24-character pieces, 20 % reads, 10 %
    /// puts; 5 % of operations time out, and a timed-out operation never takes effect. About
    /// `clients` operations overlap at any time.
    pub fn append_heavy(operations: usize, keys: usize, clients: usize, seed: u64) -> Self {
        GeneratorSettings {
            seed,
            operations,
            keys,
            clients,
            indeterminate_fraction: 0.05,
            unique_values: true,
            weights: [20, 10, 0, 70],
            max_stretch_us: 3 * clients as u64,
            indeterminate_effect_fraction: 0.0,
            value_length: 24,
            violation_at: None,
        }
    }
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
            indeterminate_effect_fraction: 0.5,
            value_length: 0,
            violation_at: None,
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
    // For each operation, `Some(value before)` when it changed its key's value.
    let mut changes: Vec<Option<Option<String>>> = Vec::with_capacity(settings.operations);
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
        let mut fresh = format!("c{client}-{sequence}");
        if fresh.len() < settings.value_length {
            // Padding from the sequence number keeps values distinct and unlike each other.
            let filler = (b'a' + (sequence % 26) as u8) as char;
            fresh.extend(std::iter::repeat(filler).take(settings.value_length - fresh.len()));
        }
        let value = if settings.unique_values { fresh } else { random.below(5).to_string() };
        let current = state.get(&key).cloned();
        let before = current.clone();
        let mut roll = random.below(u64::from(total_weight)) as u32;
        let mut kind = 0;
        while kind < 3 && roll >= settings.weights[kind] {
            roll -= settings.weights[kind];
            kind += 1;
        }
        let indeterminate = random.chance(settings.indeterminate_fraction);
        let takes_effect = !indeterminate || random.chance(settings.indeterminate_effect_fraction);
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
        let after = state.get(&key).cloned();
        changes.push((after != before).then_some(before));
        operations.push(KvOperation {
            id: sequence as u64,
            client,
            key: format!("k{key}"),
            function,
            call_us: call,
            return_us: (!indeterminate).then_some(returned),
        });
    }
    let mut history = KvHistory { initial_value: None, operations };
    if let Some(share) = settings.violation_at {
        plant_stale_read(&mut history, &format!("k{}", keys - 1), &changes, share);
    }
    history
}

/// Makes the first completed read of `key` at or after `share` of the history return the value
/// the key held before the last write that returned before the read was called (a write that
/// took effect and changed the value). With unique values that value never comes back, so the
/// key is no longer linearizable. `changes[i]` is `Some(value before)` when operation `i` changed
/// its key's value. Returns false when no such read exists (too short a history).
fn plant_stale_read(history: &mut KvHistory, key: &str, changes: &[Option<Option<String>>], share: f64) -> bool {
    let start = ((history.operations.len() as f64) * share.clamp(0.0, 1.0)) as usize;
    // (return time, value before) of every completed write of the key, in linearization order.
    let mut writes: Vec<(u64, Option<String>)> = Vec::new();
    for index in 0..history.operations.len() {
        let operation = &history.operations[index];
        if operation.key != key {
            continue;
        }
        let is_read = matches!(operation.function, KvFunction::Get { .. }) && operation.return_us.is_some();
        if is_read && index >= start {
            if let Some((_, before)) = writes.iter().filter(|(returned, _)| *returned < operation.call_us).last() {
                let stale = before.clone();
                history.operations[index].function = KvFunction::Get { result: Observed::Value(stale) };
                return true;
            }
        }
        if let (Some(before), Some(returned)) = (&changes[index], operation.return_us) {
            writes.push((returned, before.clone()));
        }
    }
    false
}
