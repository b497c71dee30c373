//! What each client asks for: which operation, on which key, with which value, and when.
//!
//! This module only draws; it sends nothing, records nothing and judges nothing. Every draw
//! comes from the `Rng` the caller passes in (a seeded `ChaCha8Rng`), so the operations of a run
//! are a pure function of its seed: no wall clock, no global state, no `HashMap` iteration.
//!
//! # The value contract
//!
//! Keys are named `k{index}` (`key_name`). Every value a client writes (a put's value, an
//! append's value, a cas's `new`) is a *token* `"{client}.{seq};"` (`token`): unique in the run,
//! because a client's `seq` never repeats and clients have distinct ids, and ending in `;` with no
//! other `;` in it. A key's value is therefore always a concatenation of whole tokens (a put or a
//! cas replaces it with one token, an append adds one), and the `no_lost_write` checker can split
//! a final value on `;` to learn exactly which writes it holds. Nothing else may ever write a `;`.
//!
//! # Keys
//!
//! `KeySampler` draws key indices uniformly or by a Zipf law in O(1) time and memory per draw,
//! whatever the number of keys (validation allows up to `i64::MAX`), with rejection-inversion
//! sampling. Under a Zipf law, indices above 2^53 are resolved only to `f64` precision; at that
//! depth of the tail no test could tell.
//!
//! # Operations and arrivals
//!
//! A `Generator` belongs to one client. `next_op` numbers the client's operations 1, 2, 3, ...
//! (the number is also the seq of the token the operation writes), draws the function by the
//! mix and the key by the sampler. A cas expects the value this client last *observed* for the
//! key, else absent. Observations are the client's to report: `observe` after a get returns, or
//! after one of its own writes whose resulting value the client knows (a put or cas that
//! succeeded: the value it wrote; an append that succeeded on a value it knew: the
//! concatenation; a cas that failed and told it the current value: that value). Issuing a write
//! forgets the key, so a write whose outcome stays unknown (a timeout, a lost connection) leaves
//! the key unknown without the client doing anything. The expectation is a guess that only
//! decides how often a cas succeeds, never what the checkers accept. At most
//! `OBSERVED_KEYS_MAX` keys are remembered; the least recently observed is forgotten first, so a
//! huge key space costs bounded memory.
//!
//! `next_gap_us` spaces arrivals as an open-loop Poisson process: each client's rate is
//! `rate / clients` per simulated second, whether or not its earlier operations have returned.

use std::collections::BTreeMap;

use rand::Rng;

use super::{KeyDistribution, Workload};
use crate::sut::store::entry::Op;
use crate::trace::OpFunction;

/// The name of the key with index `index` in `0..keys`.
pub fn key_name(index: u64) -> String {
    format!("k{index}")
}

/// The value written by operation `seq` of client `client`: unique in the run, ending in `;`
/// with no other `;` (see the module's value contract).
pub fn token(client: u32, seq: u64) -> String {
    format!("{client}.{seq};")
}

/// How many keys a generator remembers an observed value for.
pub const OBSERVED_KEYS_MAX: usize = 4096;

/// What one client asks for and when (see the module documentation).
#[derive(Clone, Debug)]
pub struct Generator {
    client: u32,
    /// The seq of the last operation drawn; 0 before the first.
    seq: u64,
    sampler: KeySampler,
    /// Each function's share of the mix, in a fixed order.
    shares: [(OpFunction, f64); 4],
    /// The sum of `shares`, 1 up to rounding.
    share_total: f64,
    /// The last function with a positive share: what a draw that rounding carried past every
    /// share falls back to, so that a function with share 0 is never drawn.
    share_fallback: OpFunction,
    /// The mean gap between this client's arrivals: `clients / rate` seconds.
    mean_gap_us: f64,
    /// Observed values by key, each with the stamp of its observation.
    observed: BTreeMap<String, (u64, String)>,
    /// The keys of `observed` by stamp, oldest first.
    observed_by_stamp: BTreeMap<u64, String>,
    /// The stamp of the latest observation.
    observed_stamp: u64,
}

impl Generator {
    /// The generator of client `client`; clients of one run must have distinct ids so that their
    /// tokens are distinct.
    pub fn new(config: &Workload, client: u32) -> Generator {
        assert!(config.clients >= 1, "generator: clients must be at least 1");
        assert!(
            config.rate.is_finite() && config.rate > 0.0,
            "generator: rate must be finite and above 0, got {}",
            config.rate
        );
        let mix = &config.mix;
        let shares = [
            (OpFunction::Get, mix.get),
            (OpFunction::Put, mix.put),
            (OpFunction::Cas, mix.cas),
            (OpFunction::Append, mix.append),
        ];
        for (function, share) in shares {
            assert!(share.is_finite() && share >= 0.0, "generator: mix share of {function:?} is {share}");
        }
        let share_total: f64 = shares.iter().map(|(_, share)| share).sum();
        assert!((share_total - 1.0).abs() < 1e-6, "generator: mix shares sum to {share_total}, not 1");
        let share_fallback = shares
            .iter()
            .rev()
            .find(|(_, share)| *share > 0.0)
            .map(|(function, _)| *function)
            .expect("shares summing to 1 include a positive one");
        Generator {
            client,
            seq: 0,
            sampler: KeySampler::new(config.keys, &config.distribution),
            shares,
            share_total,
            share_fallback,
            mean_gap_us: f64::from(config.clients) * 1e6 / config.rate,
            observed: BTreeMap::new(),
            observed_by_stamp: BTreeMap::new(),
            observed_stamp: 0,
        }
    }

    /// The client's next operation and its seq (1 for the first, then one more each call).
    pub fn next_op(&mut self, rng: &mut impl Rng) -> (u64, Op) {
        self.seq += 1;
        let seq = self.seq;
        let function = self.draw_function(rng);
        let key = key_name(self.sampler.sample(rng));
        let op = match function {
            OpFunction::Get => Op::Get { key },
            OpFunction::Put => {
                self.forget(&key);
                Op::Put { key, value: token(self.client, seq) }
            }
            OpFunction::Cas => {
                let expected = self.forget(&key);
                Op::Cas { key, expected, new: token(self.client, seq) }
            }
            OpFunction::Append => {
                self.forget(&key);
                Op::Append { key, value: token(self.client, seq) }
            }
        };
        (seq, op)
    }

    /// Tells the generator that `key` holds `value` (`None`: absent), as far as this client
    /// knows; the next cas on `key` expects it unless a write by this client comes first.
    pub fn observe(&mut self, key: &str, value: Option<String>) {
        self.forget(key);
        // An absent key and an unknown one are expected alike, as absent: nothing to remember.
        let Some(value) = value else { return };
        if self.observed.len() == OBSERVED_KEYS_MAX {
            let (_, oldest) = self.observed_by_stamp.pop_first().expect("a full map has an oldest key");
            self.observed.remove(&oldest);
        }
        self.observed_stamp += 1;
        self.observed_by_stamp.insert(self.observed_stamp, key.to_owned());
        self.observed.insert(key.to_owned(), (self.observed_stamp, value));
        assert_eq!(self.observed.len(), self.observed_by_stamp.len(), "generator: observed maps out of step");
        assert!(self.observed.len() <= OBSERVED_KEYS_MAX, "generator: more than {OBSERVED_KEYS_MAX} observed keys");
    }

    /// The gap in model microseconds (at least 1) from this client's latest arrival to its next:
    /// exponential with mean `clients / rate` seconds. Saturates at `u64::MAX` for absurdly low
    /// rates, so add it with `saturating_add`.
    pub fn next_gap_us(&self, rng: &mut impl Rng) -> u64 {
        // `gen` is in [0, 1), so `1 - u` is in (0, 1] and its logarithm is finite.
        let u: f64 = rng.gen();
        let gap_us = -(1.0 - u).ln() * self.mean_gap_us;
        (gap_us.round() as u64).max(1)
    }

    fn draw_function(&self, rng: &mut impl Rng) -> OpFunction {
        let mut remaining = rng.gen::<f64>() * self.share_total;
        for (function, share) in self.shares {
            if share > 0.0 && remaining < share {
                return function;
            }
            remaining -= share;
        }
        self.share_fallback
    }

    /// Forgets what this client knew of `key`, returning it.
    fn forget(&mut self, key: &str) -> Option<String> {
        let (stamp, value) = self.observed.remove(key)?;
        self.observed_by_stamp.remove(&stamp);
        Some(value)
    }
}

/// Draws key indices in `0..keys` by a `KeyDistribution`.
#[derive(Clone, Debug)]
pub struct KeySampler {
    keys: u64,
    zipfian: Option<Zipfian>,
}

impl KeySampler {
    pub fn new(keys: u64, distribution: &KeyDistribution) -> KeySampler {
        assert!(keys >= 1, "key_sampler: keys must be at least 1, got {keys}");
        let zipfian = match distribution {
            KeyDistribution::Uniform => None,
            KeyDistribution::Zipfian { exponent } => Some(Zipfian::new(keys, *exponent)),
        };
        KeySampler { keys, zipfian }
    }

    /// One key index in `0..keys`.
    pub fn sample(&self, rng: &mut impl Rng) -> u64 {
        let index = match &self.zipfian {
            None => rng.gen_range(0..self.keys),
            Some(zipfian) => zipfian.sample_rank(rng) - 1,
        };
        assert!(index < self.keys, "key_sampler: index {index} outside 0..{}", self.keys);
        index
    }
}

/// Ranks `1..=n` with probability proportional to `k^-exponent`, by rejection-inversion
/// (Hörmann and Derflinger, "Rejection-inversion to generate variates from monotone discrete
/// distributions", 1996), as in Apache Commons RNG's `RejectionInversionZipfSampler`.
///
/// The rank is drawn by inverting the integral `H` of the hat function `h(x) = x^-exponent`
/// (continuous, so no table over the ranks) and rejected only in a thin sliver where the hat
/// overshoots the discrete probabilities; the expected number of rounds is close to 1 for every
/// exponent. `H` and its inverse are written with `ln_1p` and `exp_m1` helpers so that they stay
/// exact at `exponent == 1` (where `H` is a logarithm) and near it (where the textbook form
/// `(x^(1 - exponent) - 1) / (1 - exponent)` cancels catastrophically).
#[derive(Clone, Debug)]
struct Zipfian {
    n: u64,
    exponent: f64,
    /// `H(1.5) - 1`: the lower end of the inversion interval (rank 1 owns `h(1) = 1` below `H(1.5)`).
    h_integral_x1: f64,
    /// `H(n + 0.5)`: the upper end of the inversion interval.
    h_integral_n: f64,
    /// Ranks within `s` above the inverted `x` are accepted without evaluating `H` again.
    s: f64,
}

impl Zipfian {
    fn new(n: u64, exponent: f64) -> Zipfian {
        assert!(n >= 1, "zipfian: n must be at least 1, got {n}");
        assert!(exponent.is_finite() && exponent > 0.0, "zipfian: exponent must be finite and above 0, got {exponent}");
        let h_integral_x1 = h_integral(1.5, exponent) - 1.0;
        let h_integral_n = h_integral(n as f64 + 0.5, exponent);
        let s = 2.0 - h_integral_inverse(h_integral(2.5, exponent) - h(2.0, exponent), exponent);
        Zipfian { n, exponent, h_integral_x1, h_integral_n, s }
    }

    fn sample_rank(&self, rng: &mut impl Rng) -> u64 {
        // Terminates with probability 1: each round accepts with probability well above 1/2.
        loop {
            // `gen` is in [0, 1), so `u` is in (H(1.5) - 1, H(n + 0.5)].
            let u = self.h_integral_n + rng.gen::<f64>() * (self.h_integral_x1 - self.h_integral_n);
            let x = h_integral_inverse(u, self.exponent);
            // `as` truncates like the paper's floor (x + 0.5 is positive) and saturates; the clamp
            // absorbs rounding at both ends.
            let k = ((x + 0.5) as u64).clamp(1, self.n);
            let k_f64 = k as f64;
            if k_f64 - x <= self.s || u >= h_integral(k_f64 + 0.5, self.exponent) - h(k_f64, self.exponent) {
                return k;
            }
        }
    }
}

/// The hat function `h(x) = x^-exponent`.
fn h(x: f64, exponent: f64) -> f64 {
    (-exponent * x.ln()).exp()
}

/// `H(x) = (x^(1 - exponent) - 1) / (1 - exponent)`, whose derivative is `h`; `ln x` at
/// `exponent == 1`.
fn h_integral(x: f64, exponent: f64) -> f64 {
    let log_x = x.ln();
    helper2((1.0 - exponent) * log_x) * log_x
}

/// The inverse of `H`.
fn h_integral_inverse(x: f64, exponent: f64) -> f64 {
    // `1 + t` is `x^(1 - exponent)` and cannot be negative; rounding can push `t` just below -1.
    let t = (x * (1.0 - exponent)).max(-1.0);
    (helper1(t) * x).exp()
}

/// `ln(1 + x) / x`, continued by its Taylor series to 1 at `x == 0`.
fn helper1(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// `(e^x - 1) / x`, continued by its Taylor series to 1 at `x == 0`.
fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::workload::OperationMix;

    #[test]
    fn key_and_token_formats() {
        assert_eq!(key_name(0), "k0");
        assert_eq!(key_name(u64::MAX), format!("k{}", u64::MAX));
        assert_eq!(token(3, 17), "3.17;");
        assert_eq!(token(u32::MAX, u64::MAX).matches(';').count(), 1);
    }

    /// How often each index in `0..keys` comes out of `draws` samples, as fractions.
    fn frequencies(keys: u64, distribution: &KeyDistribution, draws: u32, seed: u64) -> Vec<f64> {
        let sampler = KeySampler::new(keys, distribution);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut counts = vec![0u32; keys as usize];
        for _ in 0..draws {
            counts[sampler.sample(&mut rng) as usize] += 1;
        }
        counts.iter().map(|&count| f64::from(count) / f64::from(draws)).collect()
    }

    /// The exact Zipf probabilities of indices `0..keys`.
    fn zipf_probabilities(keys: u64, exponent: f64) -> Vec<f64> {
        let weights: Vec<f64> = (1..=keys).map(|rank| (rank as f64).powf(-exponent)).collect();
        let total: f64 = weights.iter().sum();
        weights.iter().map(|weight| weight / total).collect()
    }

    #[test]
    fn zipfian_frequencies_match_exact_probabilities() {
        // Exponents below, at, a hair above, and well above 1; the hair exercises the helpers'
        // series branches.
        for exponent in [0.5, 0.99, 1.0, 1.0 + 1e-12, 1.5, 3.0] {
            let draws = 200_000;
            let observed = frequencies(50, &KeyDistribution::Zipfian { exponent }, draws, 7);
            let expected = zipf_probabilities(50, exponent);
            for (index, (observed, expected)) in observed.iter().zip(&expected).enumerate() {
                // Five standard deviations of a frequency over `draws`, and never tighter than 3%
                // relative: the first ranks must be within a few percent.
                let sigma = (expected * (1.0 - expected) / f64::from(draws)).sqrt();
                let tolerance = (5.0 * sigma).max(0.03 * expected);
                assert!(
                    (observed - expected).abs() < tolerance,
                    "zipfian exponent {exponent}: index {index} drawn {observed:.5}, exact {expected:.5}"
                );
                if index < 5 && *expected > 0.02 {
                    assert!(
                        (observed - expected).abs() / expected < 0.05,
                        "zipfian exponent {exponent}: index {index} drawn {observed:.5}, exact {expected:.5}"
                    );
                }
            }
        }
    }

    #[test]
    fn zipfian_single_key_always_draws_it() {
        let sampler = KeySampler::new(1, &KeyDistribution::Zipfian { exponent: 0.99 });
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert!((0..1000).all(|_| sampler.sample(&mut rng) == 0));
    }

    #[test]
    fn zipfian_over_the_largest_key_space_stays_in_range_and_matches_the_head() {
        let keys = i64::MAX as u64;
        let sampler = KeySampler::new(keys, &KeyDistribution::Zipfian { exponent: 1.0 });
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let draws = 200_000;
        let mut first = 0u32;
        for _ in 0..draws {
            let index = sampler.sample(&mut rng);
            assert!(index < keys);
            first += u32::from(index == 0);
        }
        // P(rank 1) = 1 / H_n, and H_n = ln n + Euler's gamma + O(1/n).
        let expected = 1.0 / ((keys as f64).ln() + 0.577_215_664_901_532_9);
        let observed = f64::from(first) / f64::from(draws);
        assert!((observed - expected).abs() / expected < 0.05, "index 0 drawn {observed:.5}, exact {expected:.5}");
    }

    #[test]
    fn uniform_is_flat() {
        let draws = 200_000;
        let observed = frequencies(10, &KeyDistribution::Uniform, draws, 11);
        for (index, frequency) in observed.iter().enumerate() {
            assert!((frequency - 0.1).abs() / 0.1 < 0.03, "uniform: index {index} drawn {frequency:.5}, exact 0.1");
        }
    }

    fn config(mix: OperationMix, distribution: KeyDistribution) -> Workload {
        Workload { clients: 4, keys: 100, mix, distribution, rate: 200.0, op_timeout_us: 500_000 }
    }

    fn mixed() -> Workload {
        config(OperationMix { get: 0.4, put: 0.3, cas: 0.2, append: 0.1 }, KeyDistribution::Zipfian { exponent: 0.99 })
    }

    #[test]
    fn mix_shares_come_out_within_tolerance() {
        let mut generator = Generator::new(&mixed(), 0);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let draws = 100_000;
        let mut counts = BTreeMap::new();
        for _ in 0..draws {
            *counts.entry(generator.next_op(&mut rng).1.function()).or_insert(0u32) += 1;
        }
        for (function, share) in
            [(OpFunction::Get, 0.4), (OpFunction::Put, 0.3), (OpFunction::Cas, 0.2), (OpFunction::Append, 0.1)]
        {
            let observed = f64::from(counts[&function]) / f64::from(draws);
            assert!((observed - share).abs() < 0.01, "mix: {function:?} drawn {observed:.4}, share {share}");
        }
    }

    #[test]
    fn a_function_with_share_zero_is_never_drawn() {
        let only_puts_and_gets =
            config(OperationMix { get: 0.7, put: 0.3, cas: 0.0, append: 0.0 }, KeyDistribution::Uniform);
        let mut generator = Generator::new(&only_puts_and_gets, 0);
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        for _ in 0..10_000 {
            let (_, op) = generator.next_op(&mut rng);
            assert!(matches!(op, Op::Get { .. } | Op::Put { .. }), "drew {op:?}");
        }
    }

    #[test]
    fn seq_starts_at_one_and_tokens_are_unique_across_clients_and_seqs() {
        let all_writes = config(OperationMix { get: 0.0, put: 0.4, cas: 0.3, append: 0.3 }, KeyDistribution::Uniform);
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let mut tokens = std::collections::BTreeSet::new();
        // Client ids whose decimal forms could collide if the separator were missing (1.11 / 11.1).
        for client in [1, 11, 111] {
            let mut generator = Generator::new(&all_writes, client);
            for expected_seq in 1..=1000 {
                let (seq, op) = generator.next_op(&mut rng);
                assert_eq!(seq, expected_seq);
                let value = match op {
                    Op::Put { value, .. } | Op::Append { value, .. } | Op::Cas { new: value, .. } => value,
                    Op::Get { .. } => unreachable!("the mix has no gets"),
                };
                assert_eq!(value, token(client, seq));
                assert!(value.ends_with(';') && value.matches(';').count() == 1, "token {value}");
                assert!(tokens.insert(value.clone()), "token {value} written twice");
            }
        }
        assert_eq!(tokens.len(), 3000);
    }

    /// Draws until the generator issues a cas, returning it.
    fn next_cas(generator: &mut Generator, rng: &mut ChaCha8Rng) -> (String, Option<String>) {
        loop {
            if let (_, Op::Cas { key, expected, .. }) = generator.next_op(rng) {
                return (key, expected);
            }
        }
    }

    #[test]
    fn cas_expects_the_observed_value_until_a_write_forgets_it() {
        let one_key = Workload { keys: 1, ..mixed() };
        let mut generator = Generator::new(&one_key, 2);
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        assert_eq!(next_cas(&mut generator, &mut rng), ("k0".to_owned(), None), "nothing observed yet");

        generator.observe("k0", Some("0.5;".to_owned()));
        loop {
            match generator.next_op(&mut rng).1 {
                Op::Get { .. } => {}
                Op::Cas { expected, .. } => {
                    assert_eq!(expected.as_deref(), Some("0.5;"));
                    break;
                }
                // A put or append issued first forgets the key, so the next cas expects absent.
                Op::Put { .. } | Op::Append { .. } => {
                    assert_eq!(next_cas(&mut generator, &mut rng).1, None);
                    break;
                }
            }
        }
        // The cas itself is a write: its outcome is unknown until the client observes again.
        assert_eq!(next_cas(&mut generator, &mut rng).1, None);

        generator.observe("k0", Some("2.9;".to_owned()));
        generator.observe("k0", None);
        assert_eq!(next_cas(&mut generator, &mut rng).1, None, "observed absent");
    }

    #[test]
    fn observations_are_bounded_and_the_oldest_is_forgotten_first() {
        let mut generator = Generator::new(&mixed(), 0);
        let extra = 10;
        for index in 0..(OBSERVED_KEYS_MAX as u64 + extra) {
            generator.observe(&key_name(index), Some(token(1, index)));
        }
        assert_eq!(generator.observed.len(), OBSERVED_KEYS_MAX);
        assert_eq!(generator.observed_by_stamp.len(), OBSERVED_KEYS_MAX);
        for index in 0..extra {
            assert!(!generator.observed.contains_key(&key_name(index)), "k{index} should be evicted");
        }
        assert!(generator.observed.contains_key(&key_name(extra)));
        // Observing a key again makes it the newest.
        generator.observe(&key_name(extra), Some("1.0;".to_owned()));
        generator.observe(&key_name(0), Some("1.1;".to_owned()));
        assert!(generator.observed.contains_key(&key_name(extra)));
        assert!(!generator.observed.contains_key(&key_name(extra + 1)));
    }

    #[test]
    fn mean_gap_matches_clients_over_rate() {
        let generator = Generator::new(&mixed(), 0);
        let mut rng = ChaCha8Rng::seed_from_u64(10);
        let draws = 100_000u32;
        let mut total_us = 0u64;
        for _ in 0..draws {
            let gap_us = generator.next_gap_us(&mut rng);
            assert!(gap_us >= 1);
            total_us += gap_us;
        }
        // 4 clients sharing 200 operations per second: each client arrives every 20ms on average.
        let mean_us = total_us as f64 / f64::from(draws);
        assert!((mean_us - 20_000.0).abs() / 20_000.0 < 0.015, "mean gap {mean_us}us, expected 20000us");
    }

    #[test]
    fn the_same_seed_draws_the_same_operations_and_gaps() {
        let run = |seed: u64| {
            let mut generator = Generator::new(&mixed(), 3);
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..1000)
                .map(|_| {
                    let (seq, op) = generator.next_op(&mut rng);
                    if let Op::Get { key } = &op {
                        generator.observe(key, Some(token(0, seq)));
                    }
                    (seq, op, generator.next_gap_us(&mut rng))
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }
}
