//! How the store's durable state looks as bytes: checksummed records.
//!
//! A record is `length (u32 LE) | checksum (u64 LE) | payload`, where the payload is JSON and the
//! checksum covers the length and the payload. Log segments are sequences of records; the `meta`
//! and checkpoint files hold one record each. A torn write, a zero-filled gap left by a lost write,
//! or a flipped bit all fail the checksum, so a reader stops at the first bad record and trusts
//! nothing after it. This module only encodes and decodes; it never touches a disk.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::trace::TraceHasher;

const HEADER_BYTES: usize = 12;

/// The largest payload a record may claim; a larger length is damage, not data.
pub const MAX_RECORD_BYTES: usize = 64 << 20;

fn checksum(payload: &[u8]) -> u64 {
    let mut hasher = TraceHasher::default();
    hasher.word(payload.len() as u64);
    for chunk in payload.chunks(8) {
        let mut bytes = [0u8; 8];
        bytes[..chunk.len()].copy_from_slice(chunk);
        hasher.word(u64::from_le_bytes(bytes));
    }
    // Never zero, so an all-zero header (a gap) can never pass as a record of length 0.
    hasher.finish() | 1
}

/// Appends one record holding `value` to `out`.
pub fn encode_into<T: Serialize>(value: &T, out: &mut Vec<u8>) {
    let payload = serde_json::to_vec(value).expect("store: every durable value serializes");
    assert!(payload.len() <= MAX_RECORD_BYTES, "codec: a record of {} bytes is over the limit", payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&checksum(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(value, &mut out);
    out
}

/// The records of a buffer, in order, up to the first damaged or incomplete one.
#[derive(Debug)]
pub struct Decoded<T> {
    pub values: Vec<T>,
    /// Where each value's record ends in the buffer.
    pub ends: Vec<usize>,
    /// Bytes of valid records; everything after is damage (or nothing).
    pub valid_bytes: usize,
    /// Whether anything followed the last valid record.
    pub damaged: bool,
}

pub fn decode_all<T: DeserializeOwned>(bytes: &[u8]) -> Decoded<T> {
    let mut values = Vec::new();
    let mut ends = Vec::new();
    let mut offset = 0;
    while let Some((value, length)) = decode_one(&bytes[offset..]) {
        values.push(value);
        offset += length;
        ends.push(offset);
    }
    Decoded { values, ends, valid_bytes: offset, damaged: offset < bytes.len() }
}

/// The single record a file must hold, or `None` if it is missing, damaged or followed by junk.
pub fn decode_single<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    let (value, length) = decode_one(bytes)?;
    (length == bytes.len()).then_some(value)
}

fn decode_one<T: DeserializeOwned>(bytes: &[u8]) -> Option<(T, usize)> {
    let header = bytes.get(..HEADER_BYTES)?;
    let length = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    let sum = u64::from_le_bytes(header[4..12].try_into().ok()?);
    if length > MAX_RECORD_BYTES {
        return None;
    }
    let payload = bytes.get(HEADER_BYTES..HEADER_BYTES + length)?;
    if checksum(payload) != sum {
        return None;
    }
    let value = serde_json::from_slice(payload).ok()?;
    Some((value, HEADER_BYTES + length))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_stop_at_damage() {
        let mut bytes = Vec::new();
        for value in ["one", "two", "three"] {
            encode_into(&value.to_string(), &mut bytes);
        }
        let decoded: Decoded<String> = decode_all(&bytes);
        assert_eq!(decoded.values, ["one", "two", "three"]);
        assert!(!decoded.damaged);

        // A torn last record: the first two survive.
        let torn: Decoded<String> = decode_all(&bytes[..bytes.len() - 3]);
        assert_eq!(torn.values, ["one", "two"]);
        assert!(torn.damaged);

        // A flipped bit in the second record: only the first survives, the third is not trusted.
        let mut flipped = bytes.clone();
        let second = decode_all::<String>(&bytes[..]).valid_bytes / 3 + 14;
        flipped[second] ^= 0x04;
        assert_eq!(decode_all::<String>(&flipped).values, ["one"]);

        // A zero-filled gap (a lost write before a surviving one) is never a record.
        let mut gap = vec![0u8; 40];
        encode_into(&"after".to_string(), &mut gap);
        assert!(decode_all::<String>(&gap).values.is_empty());
    }

    #[test]
    fn a_single_record_file_must_be_exactly_one_record() {
        let bytes = encode(&42u64);
        assert_eq!(decode_single::<u64>(&bytes), Some(42));
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode_single::<u64>(&longer), None);
        assert_eq!(decode_single::<u64>(&bytes[..bytes.len() - 1]), None);
    }
}
