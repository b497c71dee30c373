//! Register values with constant-time identities: every distinct string gets exactly one `u32`
//! id, so the search compares and hashes states in one instruction, and appending a piece to a
//! state costs O(1) whatever the state's length. Until the first append (or prefix question),
//! texts are found by a cheap hash alone; the polynomial hashes that appends need are computed
//! then, once, so keys without appends never pay for them.
//!
//! A value is either a text read from the history, or a state the search built by appending a
//! piece to another state; the latter is stored as the pair (prefix id, piece id), never as a
//! copy of the string. Identity comes from a polynomial hash modulo 2^61 - 1, which combines in
//! O(1) for a concatenation (`h(a + b) = h(a) * B^|b| + h(b)`), together with the length; two
//! values with the same hash and length are compared exactly before they share an id, so ids
//! are canonical (equal strings, equal ids; different strings, different ids) and no hash
//! collision can change a verdict. Two special ids: [`ValueTable::ABSENT`] (the key does not
//! exist) and [`ValueTable::POISON`] (a state that contains a written piece no operation ever
//! observes, so no read or compare can ever match it; see `unobserved.rs`).
//!
//! Owns interning, concatenation and the bytes they hold. Must never know about operations or
//! the search.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::fast_hash::{FastHasher, PassThroughHasher};

/// The Mersenne prime 2^61 - 1: products reduce with shifts and adds.
const MODULUS: u64 = (1 << 61) - 1;
/// The polynomial's base, a fixed odd number below the modulus.
const BASE: u64 = 0x1d8e_4e27_c47d_124f & MODULUS;

fn multiply(left: u64, right: u64) -> u64 {
    let product = u128::from(left) * u128::from(right);
    let low = (product as u64) & MODULUS;
    let high = (product >> 61) as u64;
    let sum = low + high;
    if sum >= MODULUS {
        sum - MODULUS
    } else {
        sum
    }
}

fn add(left: u64, right: u64) -> u64 {
    let sum = left + right;
    if sum >= MODULUS {
        sum - MODULUS
    } else {
        sum
    }
}

/// The hash of `bytes` and `BASE^len`. Each byte counts as `byte + 1`, so that no byte is a
/// neutral element.
pub(crate) fn polynomial_hash(bytes: &[u8]) -> (u64, u64) {
    let mut hash = 0;
    let mut power = 1;
    for byte in bytes {
        hash = add(multiply(hash, BASE), u64::from(*byte) + 1);
        power = multiply(power, BASE);
    }
    (hash, power)
}

/// Rolls a window of fixed length over a text: the hash of every substring of that length, in
/// O(1) per position. Used to find which written pieces occur inside observed values.
pub(crate) struct RollingHash {
    /// `BASE^(length - 1)`, to remove the byte leaving the window.
    leading_power: u64,
    length: usize,
}

impl RollingHash {
    pub(crate) fn new(length: usize) -> Self {
        let mut leading_power = 1;
        for _ in 1..length {
            leading_power = multiply(leading_power, BASE);
        }
        RollingHash { leading_power, length }
    }

    /// Calls `found(start, hash)` for every window of `text`.
    pub(crate) fn for_each_window(&self, text: &[u8], mut found: impl FnMut(usize, u64)) {
        if self.length == 0 || text.len() < self.length {
            return;
        }
        let (mut hash, _) = polynomial_hash(&text[..self.length]);
        found(0, hash);
        for start in 1..=text.len() - self.length {
            let leaving = multiply(u64::from(text[start - 1]) + 1, self.leading_power);
            hash = add(hash, MODULUS - leaving);
            hash = add(multiply(hash, BASE), u64::from(text[start + self.length - 1]) + 1);
            found(start, hash);
        }
    }
}

#[derive(Clone, Debug)]
enum Kind {
    Absent,
    Poison,
    /// A text from the history.
    Text(Box<str>),
    /// `prefix`'s text followed by `piece`'s text; both are non-empty.
    Appended {
        prefix: u32,
        piece: u32,
    },
}

#[derive(Clone, Debug)]
struct Node {
    /// The polynomial hash, once [`ValueTable::polynomial`] is on (0 before, for texts).
    hash: u64,
    /// `BASE^length`.
    power: u64,
    length: u64,
    /// The next node with the same (hash, length) key, or `NONE`.
    next_same: u32,
    /// The next text with the same cheap hash, or `NONE`.
    next_text: u32,
    kind: Kind,
}

const NONE: u32 = u32::MAX;

/// Prefix hashes are kept every this many bytes.
const CHECKPOINT_BYTES: usize = 16;

/// The prefixes of the values reads and compares expect.
#[derive(Debug)]
struct LivePrefixes {
    /// Key of (hash, length) of each prefix -> a maximal compared value that has it.
    keys: HashMap<u64, u32, BuildHasherDefault<PassThroughHasher>>,
    maximal: Vec<u32>,
    /// Compared value -> a maximal compared value it is a prefix of (itself if maximal).
    maximal_of: HashMap<u32, u32, BuildHasherDefault<FastHasher>>,
}

/// A value's text with the hashes of its prefixes at every checkpoint.
#[derive(Debug)]
struct CheckpointedText {
    text: Box<str>,
    hashes: Vec<u64>,
}

/// Interns values; see the module documentation.
#[derive(Debug)]
pub(crate) struct ValueTable {
    nodes: Vec<Node>,
    /// Cheap hash of a text -> first text node with it (chained through `next_text`).
    by_text: HashMap<u64, u32, BuildHasherDefault<PassThroughHasher>>,
    /// Whether polynomial hashes are computed and `by_key` holds every node.
    polynomial: bool,
    /// Key of (hash, length) -> first node with that key.
    by_key: HashMap<u64, u32, BuildHasherDefault<PassThroughHasher>>,
    /// (state, piece) -> state after the append, so a revisited append costs one lookup.
    appended: HashMap<(u32, u32), u32, BuildHasherDefault<FastHasher>>,
    text_bytes: u64,
    /// Prefix hashes of the values reads and compares expect, built on first use.
    checkpoints: HashMap<u32, CheckpointedText, BuildHasherDefault<FastHasher>>,
    checkpoint_bytes: u64,
    /// Every prefix of every value reads and compares expect, once tracking starts.
    live_prefixes: Option<LivePrefixes>,
    /// Whether [`ValueTable::canonical`] merges dead states (explanations turn it off to show
    /// real values).
    merging: bool,
}

impl Default for ValueTable {
    fn default() -> Self {
        let special = |kind| Node { hash: 0, power: 1, length: 0, next_same: NONE, next_text: NONE, kind };
        ValueTable {
            nodes: vec![special(Kind::Absent), special(Kind::Poison)],
            by_text: HashMap::default(),
            polynomial: false,
            by_key: HashMap::default(),
            appended: HashMap::default(),
            text_bytes: 0,
            checkpoints: HashMap::default(),
            checkpoint_bytes: 0,
            live_prefixes: None,
            merging: true,
        }
    }
}

/// A cheap hash of a text for the table of texts (eight bytes at a time).
fn cheap_hash(bytes: &[u8]) -> u64 {
    let mut hasher = FastHasher::default();
    hasher.write(bytes);
    hasher.write_usize(bytes.len());
    hasher.finish()
}

fn key_of(hash: u64, length: u64) -> u64 {
    // Mixing the length in keeps equal hashes of different lengths apart in the table.
    hash ^ length.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl ValueTable {
    pub(crate) const ABSENT: u32 = 0;
    pub(crate) const POISON: u32 = 1;

    /// The id of `value` (`None`: absent).
    pub(crate) fn intern(&mut self, value: Option<&str>) -> u32 {
        let Some(text) = value else {
            return Self::ABSENT;
        };
        if !self.polynomial {
            // No appended state exists yet, so every value is a text: the cheap table finds it.
            let cheap = cheap_hash(text.as_bytes());
            let head = self.by_text.get(&cheap).copied().unwrap_or(NONE);
            let mut node = head;
            while node != NONE {
                if let Kind::Text(known) = &self.nodes[node as usize].kind {
                    if **known == *text {
                        return node;
                    }
                }
                node = self.nodes[node as usize].next_text;
            }
            self.text_bytes += text.len() as u64;
            let id = self.nodes.len() as u32;
            assert!(id < NONE, "values: more than 2^32 - 1 distinct values");
            self.nodes.push(Node {
                hash: 0,
                power: 1,
                length: text.len() as u64,
                next_same: NONE,
                next_text: head,
                kind: Kind::Text(text.into()),
            });
            self.by_text.insert(cheap, id);
            return id;
        }
        let (hash, power) = polynomial_hash(text.as_bytes());
        let length = text.len() as u64;
        let key = key_of(hash, length);
        let head = self.by_key.get(&key).copied().unwrap_or(NONE);
        let mut node = head;
        while node != NONE {
            if self.nodes[node as usize].hash == hash
                && self.nodes[node as usize].length == length
                && self.text(node).as_deref() == Some(text)
            {
                return node;
            }
            node = self.nodes[node as usize].next_same;
        }
        self.text_bytes += length;
        self.push(Node { hash, power, length, next_same: head, next_text: NONE, kind: Kind::Text(text.into()) }, key)
    }

    /// Computes the polynomial hash of every text so far and indexes all nodes by it: from
    /// now on appended states and texts share one table.
    fn use_polynomial(&mut self) {
        if self.polynomial {
            return;
        }
        self.polynomial = true;
        for id in 2..self.nodes.len() as u32 {
            let Kind::Text(text) = &self.nodes[id as usize].kind else {
                continue;
            };
            let (hash, power) = polynomial_hash(text.as_bytes());
            let key = key_of(hash, self.nodes[id as usize].length);
            let head = self.by_key.get(&key).copied().unwrap_or(NONE);
            let node = &mut self.nodes[id as usize];
            node.hash = hash;
            node.power = power;
            node.next_same = head;
            self.by_key.insert(key, id);
        }
    }

    fn push(&mut self, node: Node, key: u64) -> u32 {
        let id = self.nodes.len() as u32;
        assert!(id < NONE, "values: more than 2^32 - 1 distinct values");
        self.nodes.push(node);
        self.by_key.insert(key, id);
        id
    }

    /// The state after appending `piece` to `state` (absent counts as the empty string).
    pub(crate) fn append(&mut self, state: u32, piece: u32) -> u32 {
        if state == Self::POISON || piece == Self::POISON {
            return Self::POISON;
        }
        if let Some(next) = self.appended.get(&(state, piece)) {
            return *next;
        }
        self.use_polynomial();
        let next = self.concatenate(state, piece);
        self.appended.insert((state, piece), next);
        next
    }

    fn concatenate(&mut self, state: u32, piece: u32) -> u32 {
        let piece_length = self.nodes[piece as usize].length;
        if piece_length == 0 {
            // Appending nothing to an absent key creates it, empty.
            return if state == Self::ABSENT { self.intern(Some("")) } else { state };
        }
        if self.nodes[state as usize].length == 0 {
            return piece;
        }
        let (prefix_node, piece_node) = (&self.nodes[state as usize], &self.nodes[piece as usize]);
        let hash = add(multiply(prefix_node.hash, piece_node.power), piece_node.hash);
        let power = multiply(prefix_node.power, piece_node.power);
        let length = prefix_node.length + piece_node.length;
        let key = key_of(hash, length);
        let head = self.by_key.get(&key).copied().unwrap_or(NONE);
        let mut node = head;
        while node != NONE {
            let existing = &self.nodes[node as usize];
            if existing.hash == hash && existing.length == length && self.equals_concatenation(node, state, piece) {
                return node;
            }
            node = existing.next_same;
        }
        let kind = Kind::Appended { prefix: state, piece };
        self.push(Node { hash, power, length, next_same: head, next_text: NONE, kind }, key)
    }

    /// Whether `node`'s text is `prefix`'s text followed by `piece`'s (equal lengths assumed).
    fn equals_concatenation(&self, node: u32, prefix: u32, piece: u32) -> bool {
        if let Kind::Appended { prefix: known_prefix, piece: known_piece } = self.nodes[node as usize].kind {
            // Ids are canonical, so equal pieces mean equal texts exactly when the prefixes are
            // the same id, and different pieces of one length end the two texts differently.
            if known_piece == piece {
                return known_prefix == prefix;
            }
            if self.nodes[known_piece as usize].length == self.nodes[piece as usize].length {
                return false;
            }
        }
        let mut joined = self.materialize(prefix);
        joined.push_str(&self.materialize(piece));
        self.materialize(node) == joined
    }

    /// The text of a value: borrowed for texts from the history, built for appended states;
    /// `None` for absent and for the poisoned state, which has no one text.
    pub(crate) fn text(&self, id: u32) -> Option<Cow<'_, str>> {
        match &self.nodes[id as usize].kind {
            Kind::Absent | Kind::Poison => None,
            Kind::Text(text) => Some(Cow::Borrowed(text)),
            Kind::Appended { .. } => Some(Cow::Owned(self.materialize(id))),
        }
    }

    /// The text of `id`, built by walking its pieces (iteratively: chains can be long).
    fn materialize(&self, id: u32) -> String {
        let mut pieces = Vec::new();
        let mut current = id;
        loop {
            match &self.nodes[current as usize].kind {
                Kind::Appended { prefix, piece } => {
                    pieces.push(*piece);
                    current = *prefix;
                }
                Kind::Text(text) => {
                    let mut result = String::with_capacity(self.nodes[id as usize].length as usize);
                    result.push_str(text);
                    for piece in pieces.iter().rev() {
                        if let Kind::Text(piece_text) = &self.nodes[*piece as usize].kind {
                            result.push_str(piece_text);
                        }
                    }
                    return result;
                }
                Kind::Absent | Kind::Poison => return String::new(),
            }
        }
    }

    /// Starts treating every state that is no prefix of any of `compared` (the values reads and
    /// compares expect) as [`ValueTable::POISON`]: no read or compare can match such a state or
    /// anything appends make of it, so they all behave alike (see [`ValueTable::canonical`]).
    /// Also finds the maximal compared values (those no other compared value extends), which
    /// hold every substring any compared value holds. Gives up (keeping states as they are)
    /// past `max_prefixes` distinct prefixes.
    pub(crate) fn track_live_prefixes(&mut self, compared: &[u32], max_prefixes: usize) {
        self.use_polynomial();
        let mut texts: Vec<(u64, u32)> = compared
            .iter()
            .filter(|value| **value != Self::ABSENT && **value != Self::POISON)
            .map(|value| (self.nodes[*value as usize].length, *value))
            .collect();
        // Longest first: a value that is a prefix of one already added adds nothing new.
        texts.sort_unstable_by(|left, right| right.cmp(left));
        texts.dedup();
        let mut live: HashMap<u64, u32, BuildHasherDefault<PassThroughHasher>> = HashMap::default();
        let mut maximal = Vec::new();
        let mut maximal_of: HashMap<u32, u32, BuildHasherDefault<FastHasher>> = HashMap::default();
        for (length, value) in texts {
            let Some(text) = self.text(value) else {
                continue;
            };
            // Confirmed byte by byte: a collision must not hide this value's own prefixes.
            let known = live.get(&key_of(self.nodes[value as usize].hash, length)).copied();
            if let Some(longer) = known {
                if self.text(longer).is_some_and(|longer_text| longer_text.as_bytes().starts_with(text.as_bytes())) {
                    maximal_of.insert(value, longer);
                    continue;
                }
            }
            live.entry(key_of(0, 0)).or_insert(value);
            let mut hash = 0;
            for (index, byte) in text.as_bytes().iter().enumerate() {
                hash = add(multiply(hash, BASE), u64::from(*byte) + 1);
                live.entry(key_of(hash, index as u64 + 1)).or_insert(value);
            }
            maximal.push(value);
            maximal_of.insert(value, value);
            if live.len() > max_prefixes {
                return;
            }
        }
        self.live_prefixes = Some(LivePrefixes { keys: live, maximal, maximal_of });
    }

    /// The compared values no other compared value extends, when prefixes are tracked.
    pub(crate) fn maximal_compared(&self) -> Option<&[u32]> {
        self.live_prefixes.as_ref().map(|live| live.maximal.as_slice())
    }

    /// Turns the merging of dead states on or off.
    pub(crate) fn set_merging(&mut self, merging: bool) {
        self.merging = merging;
    }

    /// `state`, or [`ValueTable::POISON`] when prefixes are tracked and `state` is no prefix of
    /// any value a read or compare expects. A hash collision can only keep a dead state as it
    /// is (slower, never wrong), never poison a live one.
    pub(crate) fn canonical(&self, state: u32) -> u32 {
        let Some(live) = self.live_prefixes.as_ref().filter(|_| self.merging) else {
            return state;
        };
        if state == Self::ABSENT || state == Self::POISON {
            return state;
        }
        let node = &self.nodes[state as usize];
        if live.keys.contains_key(&key_of(node.hash, node.length)) {
            state
        } else {
            Self::POISON
        }
    }

    /// The polynomial hash of a value's text (0 for absent and poisoned).
    pub(crate) fn hash(&mut self, id: u32) -> u64 {
        self.use_polynomial();
        self.nodes[id as usize].hash
    }

    /// The length of a value's text in bytes (0 for absent and poisoned).
    pub(crate) fn length(&self, id: u32) -> u64 {
        self.nodes[id as usize].length
    }

    /// Whether `value`'s text may start with `prefix`'s: false only when it certainly does not
    /// (the hashes of `value`'s first bytes and of `prefix` differ), so a search may prune on a
    /// false answer and never on a collision. Absent and poisoned values start with nothing.
    pub(crate) fn may_start_with(&mut self, value: u32, prefix: u32) -> bool {
        if value == prefix {
            return true;
        }
        let special = |id: u32| id == Self::ABSENT || id == Self::POISON;
        if special(value) || special(prefix) {
            return false;
        }
        let length = self.nodes[prefix as usize].length;
        // Ids are canonical: two different values of one length differ.
        if length >= self.nodes[value as usize].length {
            return false;
        }
        self.use_polynomial();
        self.prefix_hash(value, length as usize) == self.nodes[prefix as usize].hash
    }

    /// The hash of `value`'s first `length` bytes, from checkpoints every
    /// [`CHECKPOINT_BYTES`] bytes computed once per value (half a byte of memory per byte of
    /// text) and at most `CHECKPOINT_BYTES - 1` bytes hashed past the last one.
    pub(crate) fn prefix_hash(&mut self, value: u32, length: usize) -> u64 {
        self.use_polynomial();
        // A prefix of a maximal compared value shares its checkpoints.
        let value = self.live_prefixes.as_ref().and_then(|live| live.maximal_of.get(&value).copied()).unwrap_or(value);
        if !self.checkpoints.contains_key(&value) {
            let text = self.materialize(value);
            let mut hashes = Vec::with_capacity(text.len() / CHECKPOINT_BYTES + 1);
            let mut hash = 0;
            hashes.push(0);
            for chunk in text.as_bytes().chunks(CHECKPOINT_BYTES) {
                for byte in chunk {
                    hash = add(multiply(hash, BASE), u64::from(*byte) + 1);
                }
                if chunk.len() == CHECKPOINT_BYTES {
                    hashes.push(hash);
                }
            }
            self.checkpoint_bytes += (hashes.capacity() * 8 + 48) as u64;
            self.checkpoints.insert(value, CheckpointedText { text: text.into_boxed_str(), hashes });
        }
        let Some(known) = self.checkpoints.get(&value) else {
            return 0;
        };
        let checkpoint = length / CHECKPOINT_BYTES;
        let mut hash = known.hashes[checkpoint];
        for byte in &known.text.as_bytes()[checkpoint * CHECKPOINT_BYTES..length] {
            hash = add(multiply(hash, BASE), u64::from(*byte) + 1);
        }
        hash
    }

    /// Bytes held: nodes, texts, and both tables' slots.
    pub(crate) fn memory_bytes(&self) -> u64 {
        let node = std::mem::size_of::<Node>() as u64;
        let key_slot = (std::mem::size_of::<(u64, u32)>() + 1) as u64;
        let append_slot = (std::mem::size_of::<((u32, u32), u32)>() + 1) as u64;
        self.nodes.capacity() as u64 * node
            + self.text_bytes
            + self.checkpoint_bytes
            + self.checkpoints.capacity() as u64 * 48
            + self.live_prefixes.as_ref().map_or(0, |live| {
                live.keys.capacity() as u64 * 13
                    + live.maximal.capacity() as u64 * 4
                    + live.maximal_of.capacity() as u64 * 9
            })
            + self.by_key.capacity() as u64 * key_slot
            + self.by_text.capacity() as u64 * key_slot
            + self.appended.capacity() as u64 * append_slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_equal_strings_share_one_id_however_they_were_built() {
        let mut values = ValueTable::default();
        let a = values.intern(Some("a"));
        let b = values.intern(Some("b"));
        let bc = values.intern(Some("bc"));
        let c = values.intern(Some("c"));
        let ab = values.append(a, b);
        let abc_by_pieces = values.append(ab, c);
        let abc_by_pair = values.append(a, bc);
        let abc_read = values.intern(Some("abc"));
        assert_eq!(abc_by_pieces, abc_read);
        assert_eq!(abc_by_pair, abc_read);
        assert_eq!(values.text(abc_by_pieces).as_deref(), Some("abc"));
        let ba = values.append(b, a);
        assert_ne!(ba, ab);
        assert_eq!(values.append(ValueTable::ABSENT, a), a);
        let empty = values.intern(Some(""));
        assert_eq!(values.append(ValueTable::ABSENT, empty), empty);
        assert_eq!(values.append(empty, a), a);
        assert_eq!(values.append(ValueTable::POISON, a), ValueTable::POISON);
        assert_eq!(values.length(abc_read), 3);
        assert!(values.may_start_with(abc_read, ab));
        assert!(values.may_start_with(abc_read, a));
        assert!(!values.may_start_with(abc_read, b));
        assert!(!values.may_start_with(ab, abc_read));
        assert!(!values.may_start_with(abc_read, ValueTable::POISON));
        // Once live prefixes are tracked, "ba" (no prefix of "abc") behaves as poison.
        values.track_live_prefixes(&[abc_read], 1_000);
        assert_eq!(values.canonical(ba), ValueTable::POISON);
        assert_eq!(values.canonical(ab), ab);
        assert_eq!(values.canonical(empty), empty);
        assert_eq!(values.canonical(ValueTable::ABSENT), ValueTable::ABSENT);
    }

    #[test]
    fn values_prefix_checks_agree_with_the_texts_across_checkpoints() {
        let mut values = ValueTable::default();
        let long: String = (0..100).map(|index| char::from(b'a' + (index * 7 % 26) as u8)).collect();
        let whole = values.intern(Some(&long));
        for length in 0..=long.len() {
            let prefix = values.intern(Some(&long[..length]));
            assert!(values.may_start_with(whole, prefix), "prefix of length {length}");
            let mut other = long[..length].to_owned();
            other.push('#');
            let not_prefix = values.intern(Some(&other));
            assert!(!values.may_start_with(whole, not_prefix), "'{other}' is no prefix");
        }
    }

    #[test]
    fn values_long_chains_keep_constant_size_nodes() {
        let mut values = ValueTable::default();
        let piece = values.intern(Some("[piece of twenty-four]"));
        let mut state = ValueTable::ABSENT;
        for _ in 0..10_000 {
            state = values.append(state, piece);
        }
        let bytes = values.memory_bytes();
        assert!(bytes < 2 << 20, "10,000 appends hold {bytes} bytes, not their 220 KB of text 10,000 times");
        assert_eq!(values.length(state), 22 * 10_000);
        let text = values.text(state).expect("a text").into_owned();
        assert_eq!(values.intern(Some(&text)), state);
    }

    #[test]
    fn values_rolling_hash_matches_the_hash_of_each_window() {
        let text = b"the quick brown fox";
        let rolling = RollingHash::new(5);
        let mut seen = Vec::new();
        rolling.for_each_window(text, |start, hash| seen.push((start, hash)));
        assert_eq!(seen.len(), text.len() - 4);
        for (start, hash) in seen {
            assert_eq!(hash, polynomial_hash(&text[start..start + 5]).0);
        }
    }
}
