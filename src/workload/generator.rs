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

/// The name of the key with index `index` in `0..keys`.
pub fn key_name(index: u64) -> String {
    format!("k{index}")
}

/// The value written by operation `seq` of client `client`: unique in the run, ending in `;`
/// with no other `;` (see the module's value contract).
pub fn token(client: u32, seq: u64) -> String {
    format!("{client}.{seq};")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_and_token_formats() {
        assert_eq!(key_name(0), "k0");
        assert_eq!(key_name(u64::MAX), format!("k{}", u64::MAX));
        assert_eq!(token(3, 17), "3.17;");
        assert_eq!(token(u32::MAX, u64::MAX).matches(';').count(), 1);
    }
}
