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

use rand::Rng;

use super::KeyDistribution;

/// The name of the key with index `index` in `0..keys`.
pub fn key_name(index: u64) -> String {
    format!("k{index}")
}

/// The value written by operation `seq` of client `client`: unique in the run, ending in `;`
/// with no other `;` (see the module's value contract).
pub fn token(client: u32, seq: u64) -> String {
    format!("{client}.{seq};")
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
}
