//! (temporary stand-in until the generator branch lands)
use super::WorkloadConfig;
use crate::sut::store::entry::Op;
use rand::Rng;
pub fn key_name(index: u64) -> String {
    format!("k{index}")
}
pub fn token(client: u32, seq: u64) -> String {
    format!("{client}.{seq};")
}
pub struct Generator {
    client: u32,
    seq: u64,
    keys: u64,
    gap: f64,
    mix: super::OperationMix,
    seen: std::collections::BTreeMap<String, Option<String>>,
}
impl Generator {
    pub fn new(config: &WorkloadConfig, client: u32) -> Generator {
        Generator {
            client,
            seq: 0,
            keys: config.keys,
            gap: 1e6 * f64::from(config.clients) / config.rate,
            mix: config.mix.clone(),
            seen: Default::default(),
        }
    }
    pub fn next_op<R: Rng>(&mut self, rng: &mut R) -> (u64, Op) {
        self.seq += 1;
        let key = key_name(rng.gen_range(0..self.keys));
        let value = token(self.client, self.seq);
        let draw: f64 = rng.gen();
        let op = if draw < self.mix.get {
            Op::Get { key }
        } else if draw < self.mix.get + self.mix.put {
            Op::Put { key, value }
        } else if draw < self.mix.get + self.mix.put + self.mix.cas {
            let expected = self.seen.get(&key).cloned().flatten();
            Op::Cas { key, expected, new: value }
        } else {
            Op::Append { key, value }
        };
        (self.seq, op)
    }
    pub fn observe(&mut self, key: &str, value: Option<String>) {
        self.seen.insert(key.to_string(), value);
    }
    pub fn next_gap_us<R: Rng>(&mut self, rng: &mut R) -> u64 {
        let u: f64 = rng.gen_range(1e-12..1.0);
        ((-u.ln()) * self.gap).max(1.0) as u64
    }
}
