//! The general linearizability search: Wing & Gong's algorithm with Lowe's memoisation, laid
//! out as porcupine does (a doubly linked list of call and return entries, operations "lifted"
//! out of it as they are linearized), and changed in these ways:
//!
//! - the memo of failed configurations stores each one compactly: the state, the first
//!   required operation not yet placed (`r`, in call order; every earlier one is placed), the
//!   placed required operations among those called before `r` returned (a few words: only
//!   operations concurrent with `r` can be placed past it), and the id of an interned multiset
//!   of used indeterminate operations. A configuration costs tens of bytes whatever the
//!   history's length, where a bitset of every operation cost n/8 bytes;
//! - indeterminate operations with the same effect ([`Model::effect_key`]) form a class and are
//!   used in call order, the earliest unused first: which member of a class was used can never
//!   matter (the frontier of what may be placed only moves forward), so configurations differ
//!   only by how many of each class were used;
//! - the memo prunes by dominance, not only equality: with the same required operations placed
//!   and the same state, a configuration that has used more of each class can do nothing the
//!   other could not, so it fails too (without this, proving a history with k pending
//!   indeterminate operations illegal costs 2^k);
//! - an indeterminate write nobody can observe ([`Model::is_unobservable_write`]) is tried only
//!   when a failed compare-and-set is blocked by the current state: moving such a write later,
//!   to just before the first failed compare that needs it, or dropping it, never breaks a
//!   linearization, since no read or compare can see the states it creates;
//! - a configuration from which one of the next few operations that must be placed (the
//!   earliest pending returns) can no longer see its value is abandoned at once: when the state
//!   cannot be extended into that value ([`Model::may_reach`]) and every operation that could
//!   set a state leading to it ([`Model::may_lead_to`]) is already placed, or called too late.
//!   On append-heavy keys this stops the search from ordering appends that a read has already
//!   ruled out, instead of finding out only when that read becomes the next to return;
//! - a read-only operation that is legal in the current state is placed without trying
//!   alternatives (moving a legal read earlier never breaks a linearization);
//! - the stack is an explicit vector (deep histories cannot overflow the thread's stack), and
//!   the search can stop after a budget of iterations and resume exactly where it stopped, so
//!   a caller can interleave keys deterministically;
//! - the longest linearizable prefix, for the explanation, is kept incrementally (only the
//!   part of the stack that changed since the last record is copied), so recording it costs
//!   O(1) amortized per placement instead of a copy of the whole stack.
//!
//! Owns the search and its bounds (deadline, states, memory counted over everything the search
//! and its model hold). Must never know what the operations mean: legality comes from a
//! [`Model`], and the result speaks in operation indices that the caller translates into a
//! report.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::time::Instant;

use super::fast_hash::{FastHasher, PassThroughHasher};
use super::model::Model;

/// When an operation was called and, if it returned, when. Times only need a consistent order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Timing {
    pub(crate) call: u64,
    /// `None`: indeterminate, may take effect once at any time after `call`, or never.
    pub(crate) returned: Option<u64>,
}

/// Bounds on one search. Any bound hit ends the search with [`SearchOutcome::GaveUp`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Limits {
    pub(crate) deadline: Option<Instant>,
    pub(crate) max_states: Option<u64>,
    /// Bytes the search and its model may hold together (memo, values, stacks, lists).
    pub(crate) max_memory_bytes: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SearchOutcome {
    Linearizable,
    NotLinearizable(Failure),
    GaveUp { reason: GiveUpReason },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum GiveUpReason {
    Deadline,
    StateLimit { states: u64 },
    MemoryLimit { bytes: u64 },
}

/// Where [`Search::run`] stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Progress {
    Finished(SearchOutcome),
    /// The iteration budget ran out; `run` again to continue.
    Paused,
}

/// The deepest point the search reached before it proved the history not linearizable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Failure {
    /// Operations in the order of the longest linearizable prefix found.
    pub(crate) longest_prefix: Vec<usize>,
    pub(crate) state_after_prefix: u32,
    /// The operation whose return ended that prefix: it had to be placed next (everything
    /// after it in real time waits for it) and no order of the candidates made it legal.
    pub(crate) stuck: Option<usize>,
}

const NONE: u32 = u32::MAX;
const HEAD: u32 = 0;

#[derive(Clone, Copy, Debug)]
struct Entry {
    operation: u32,
    is_return: bool,
    /// For a call entry, the index of its return entry.
    partner: u32,
    previous: u32,
    next: u32,
}

/// The time-ordered list of call and return entries of the required operations, with O(1)
/// removal and restoration. Indeterminate operations are not in it: they wait in classes.
struct EntryList {
    entries: Vec<Entry>,
    /// The time each entry sorts by.
    times: Vec<u64>,
    /// A second list through the return entries alone, so the next few returns are found
    /// without walking past the calls between them. Index 0 is its head.
    return_next: Vec<u32>,
    return_previous: Vec<u32>,
}

impl EntryList {
    fn new(timings: &[Timing]) -> Self {
        // (time, kind, operation): calls sort before returns at the same time, so operations
        // that touch at one instant count as concurrent, the charitable reading.
        let mut events: Vec<(u64, u8, u32)> = Vec::with_capacity(timings.len() * 2);
        for (operation, timing) in timings.iter().enumerate() {
            if let Some(returned) = timing.returned {
                events.push((timing.call, 0, operation as u32));
                events.push((returned.max(timing.call), 1, operation as u32));
            }
        }
        events.sort_unstable();
        let mut entries = Vec::with_capacity(events.len() + 1);
        let mut times = Vec::with_capacity(events.len() + 1);
        entries.push(Entry { operation: NONE, is_return: false, partner: NONE, previous: NONE, next: NONE });
        times.push(0);
        let mut call_entry = vec![NONE; timings.len()];
        let mut return_next = vec![NONE; events.len() + 1];
        let mut return_previous = vec![NONE; events.len() + 1];
        let mut last_return = HEAD;
        for (position, (time, kind, operation)) in events.iter().enumerate() {
            let index = position as u32 + 1;
            let is_return = *kind == 1;
            entries.push(Entry { operation: *operation, is_return, partner: NONE, previous: index - 1, next: NONE });
            times.push(*time);
            entries[index as usize - 1].next = index;
            if is_return {
                let call = call_entry[*operation as usize];
                entries[call as usize].partner = index;
                return_next[last_return as usize] = index;
                return_previous[index as usize] = last_return;
                last_return = index;
            } else {
                call_entry[*operation as usize] = index;
            }
        }
        EntryList { entries, times, return_next, return_previous }
    }

    fn first(&self) -> u32 {
        self.entries[HEAD as usize].next
    }

    fn next(&self, index: u32) -> u32 {
        self.entries[index as usize].next
    }

    fn unlink(&mut self, index: u32) {
        let Entry { previous, next, .. } = self.entries[index as usize];
        self.entries[previous as usize].next = next;
        if next != NONE {
            self.entries[next as usize].previous = previous;
        }
    }

    fn relink(&mut self, index: u32) {
        let Entry { previous, next, .. } = self.entries[index as usize];
        self.entries[previous as usize].next = index;
        if next != NONE {
            self.entries[next as usize].previous = index;
        }
    }

    /// Removes an operation (its call and its return) from the list.
    fn lift(&mut self, call: u32) {
        self.unlink(call);
        let partner = self.entries[call as usize].partner;
        self.unlink(partner);
        let (previous, next) = (self.return_previous[partner as usize], self.return_next[partner as usize]);
        self.return_next[previous as usize] = next;
        if next != NONE {
            self.return_previous[next as usize] = previous;
        }
    }

    /// Undoes the matching [`EntryList::lift`]; lifts must be undone in reverse order.
    fn unlift(&mut self, call: u32) {
        let partner = self.entries[call as usize].partner;
        let (previous, next) = (self.return_previous[partner as usize], self.return_next[partner as usize]);
        self.return_next[previous as usize] = partner;
        if next != NONE {
            self.return_previous[next as usize] = partner;
        }
        self.relink(partner);
        self.relink(call);
    }

    /// The first return entry still in the list (the window of candidates ends there), or
    /// `NONE`.
    fn first_return(&self) -> u32 {
        self.return_next[HEAD as usize]
    }

    /// The return entry after `entry` in the list of returns.
    fn next_return(&self, entry: u32) -> u32 {
        self.return_next[entry as usize]
    }

    fn memory_bytes(&self) -> u64 {
        (self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.times.capacity() * 8
            + (self.return_next.capacity() + self.return_previous.capacity()) * 4) as u64
    }
}

/// Deterministic pseudo-random 64-bit values (splitmix64).
fn zobrist(index: u64) -> u64 {
    let mut z = index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn state_hash(state: u32) -> u64 {
    zobrist(u64::from(state) ^ 0x5555_0000_0000_0000)
}

/// The placed required operations, as a bitset over their ranks (call order), with an
/// incremental hash and the first unplaced rank.
struct RequiredSet {
    words: Vec<u64>,
    hash: u64,
    first_unplaced: u32,
    total: u32,
}

impl RequiredSet {
    fn new(total: usize) -> Self {
        RequiredSet { words: vec![0; total.div_ceil(64).max(1)], hash: 0, first_unplaced: 0, total: total as u32 }
    }

    fn insert(&mut self, rank: u32) {
        self.words[rank as usize / 64] |= 1u64 << (rank % 64);
        self.hash ^= zobrist(u64::from(rank));
        if rank == self.first_unplaced {
            self.advance();
        }
    }

    fn remove(&mut self, rank: u32) {
        self.words[rank as usize / 64] &= !(1u64 << (rank % 64));
        self.hash ^= zobrist(u64::from(rank));
        self.first_unplaced = self.first_unplaced.min(rank);
    }

    /// Moves `first_unplaced` past the run of placed ranks that starts at it. The run lies
    /// within the window of the old first unplaced operation, so this costs a few words.
    fn advance(&mut self) {
        let mut rank = self.first_unplaced as usize;
        while rank < self.total as usize {
            let bit = rank % 64;
            let run = (!(self.words[rank / 64] >> bit)).trailing_zeros() as usize;
            rank += run.min(64 - bit);
            if run < 64 - bit {
                break;
            }
        }
        self.first_unplaced = rank.min(self.total as usize) as u32;
    }

    fn contains(&self, rank: u32) -> bool {
        self.words[rank as usize / 64] & (1u64 << (rank % 64)) != 0
    }

    /// Copies `length` bits starting at rank `start` into `out`, 64 to a word.
    fn extract(&self, start: usize, length: usize, out: &mut Vec<u64>) {
        out.clear();
        let mut position = start;
        let mut left = length;
        while left > 0 {
            let take = left.min(64);
            let (word, bit) = (position / 64, position % 64);
            let mut value = self.words[word] >> bit;
            if bit > 0 && word + 1 < self.words.len() {
                value |= self.words[word + 1] << (64 - bit);
            }
            if take < 64 {
                value &= (1u64 << take) - 1;
            }
            out.push(value);
            position += take;
            left -= take;
        }
    }
}

/// Indeterminate operations grouped by effect, each class's members in call order; the classes
/// not yet used up form a linked list ordered by their first member's call.
struct Classes {
    members: Vec<Vec<u32>>,
    first_call: Vec<u64>,
    used: Vec<u32>,
    /// Links of the list of classes with unused members; index `members.len()` is the head.
    next: Vec<u32>,
    previous: Vec<u32>,
}

impl Classes {
    fn new(model: &impl Model, timings: &[Timing], optional: &[bool]) -> Self {
        let mut by_key: HashMap<u128, u32, BuildHasherDefault<FastHasher>> = HashMap::default();
        let mut members: Vec<Vec<u32>> = Vec::new();
        let mut order: Vec<u32> = (0..timings.len() as u32).filter(|operation| optional[*operation as usize]).collect();
        order.sort_by_key(|operation| (timings[*operation as usize].call, *operation));
        for operation in order {
            let class = match model.effect_key(operation as usize) {
                Some(key) => *by_key.entry(key).or_insert_with(|| {
                    members.push(Vec::new());
                    members.len() as u32 - 1
                }),
                None => {
                    members.push(Vec::new());
                    members.len() as u32 - 1
                }
            };
            members[class as usize].push(operation);
        }
        // Classes were numbered by their first member's call: the list is in that order.
        let count = members.len();
        let first_call = members.iter().map(|list| timings[list[0] as usize].call).collect();
        let head = count as u32;
        let mut next = vec![NONE; count + 1];
        let mut previous = vec![NONE; count + 1];
        let mut last = head;
        for class in 0..count as u32 {
            next[last as usize] = class;
            previous[class as usize] = last;
            last = class;
        }
        next[last as usize] = NONE;
        Classes { used: vec![0; count], first_call, members, next, previous }
    }

    fn head(&self) -> u32 {
        self.members.len() as u32
    }

    fn first(&self) -> u32 {
        self.next[self.head() as usize]
    }

    fn unlink(&mut self, class: u32) {
        let (previous, next) = (self.previous[class as usize], self.next[class as usize]);
        self.next[previous as usize] = next;
        if next != NONE {
            self.previous[next as usize] = previous;
        }
    }

    fn relink(&mut self, class: u32) {
        let (previous, next) = (self.previous[class as usize], self.next[class as usize]);
        self.next[previous as usize] = class;
        if next != NONE {
            self.previous[next as usize] = class;
        }
    }

    fn memory_bytes(&self) -> u64 {
        let lists: usize = self.members.iter().map(|list| list.capacity() * 4 + 24).sum();
        (lists + self.first_call.capacity() * 8 + (self.used.capacity() + self.next.capacity() * 2) * 4) as u64
    }
}

/// Interned multisets of used classes: each distinct multiset is stored once, as its sorted
/// (class, count) pairs, and configurations refer to it by id. Id 0 is the empty multiset.
struct UsageSets {
    hashes: Vec<u64>,
    /// Bit `b` set when some class mapping to `b` is used: rejects most dominance candidates
    /// in one `and`.
    signatures: Vec<u64>,
    starts: Vec<u32>,
    lengths: Vec<u32>,
    pairs: Vec<(u32, u32)>,
    next_same: Vec<u32>,
    by_hash: HashMap<u64, u32, BuildHasherDefault<PassThroughHasher>>,
    /// (set, class) -> the set with one more use of the class.
    transitions: HashMap<(u32, u32), u32, BuildHasherDefault<FastHasher>>,
    scratch: Vec<(u32, u32)>,
}

fn usage_mix(class: u32, count: u32) -> u64 {
    if count == 0 {
        0
    } else {
        zobrist((u64::from(class) << 32 | u64::from(count)) ^ 0xA5A5_0000_0000_0000)
    }
}

fn signature_bit(class: u32) -> u64 {
    1u64 << (zobrist(u64::from(class) ^ 0x0F0F_0F0F) % 64)
}

impl UsageSets {
    fn new() -> Self {
        let mut by_hash = HashMap::default();
        by_hash.insert(0, 0);
        UsageSets {
            hashes: vec![0],
            signatures: vec![0],
            starts: vec![0],
            lengths: vec![0],
            pairs: Vec::new(),
            next_same: vec![NONE],
            by_hash,
            transitions: HashMap::default(),
            scratch: Vec::new(),
        }
    }

    fn pairs_of(&self, set: u32) -> &[(u32, u32)] {
        let start = self.starts[set as usize] as usize;
        &self.pairs[start..start + self.lengths[set as usize] as usize]
    }

    /// The set with one more use of `class`, whose count in `set` is `count`.
    fn with_one_more(&mut self, set: u32, class: u32, count: u32) -> u32 {
        if let Some(next) = self.transitions.get(&(set, class)) {
            return *next;
        }
        let mut pairs = std::mem::take(&mut self.scratch);
        pairs.clear();
        pairs.extend_from_slice(self.pairs_of(set));
        match pairs.binary_search_by_key(&class, |(known, _)| *known) {
            Ok(position) => pairs[position].1 += 1,
            Err(position) => pairs.insert(position, (class, 1)),
        }
        let hash = self.hashes[set as usize] ^ usage_mix(class, count) ^ usage_mix(class, count + 1);
        let head = self.by_hash.get(&hash).copied().unwrap_or(NONE);
        let mut known = head;
        while known != NONE {
            if self.pairs_of(known) == pairs.as_slice() {
                break;
            }
            known = self.next_same[known as usize];
        }
        if known == NONE {
            known = self.hashes.len() as u32;
            self.hashes.push(hash);
            self.signatures.push(self.signatures[set as usize] | signature_bit(class));
            self.starts.push(self.pairs.len() as u32);
            self.lengths.push(pairs.len() as u32);
            self.pairs.extend_from_slice(&pairs);
            self.next_same.push(head);
            self.by_hash.insert(hash, known);
        }
        self.scratch = pairs;
        self.transitions.insert((set, class), known);
        known
    }

    /// True when every class is used at most as often in `known` as `used` says.
    fn covered_by(&self, known: u32, signature: u64, used: &[u32]) -> bool {
        if self.signatures[known as usize] & !signature != 0 {
            return false;
        }
        self.pairs_of(known).iter().all(|(class, count)| used[*class as usize] >= *count)
    }

    fn memory_bytes(&self) -> u64 {
        let per_set = 8 + 8 + 4 + 4 + 4;
        let slot = 17;
        (self.hashes.capacity() * per_set
            + self.pairs.capacity() * 8
            + self.by_hash.capacity() * slot
            + self.transitions.capacity() * 13) as u64
    }
}

/// What the search needs to abandon configurations early (see the module documentation).
struct Pruning {
    /// Operation -> index of the value it observes (`NONE` if it observes none).
    observer: Vec<u32>,
    observed_values: Vec<u32>,
    /// Observed index -> indices of the written values that may lead to it.
    leads: Vec<Vec<u32>>,
    /// Written index -> ranks of the required operations that set it, in call order.
    setter_ranks: Vec<Vec<u32>>,
    /// Written index -> classes of indeterminate operations that set it.
    setter_classes: Vec<Vec<u32>>,
    /// Written index -> where in `setter_ranks` the last scan started.
    setter_cursors: Vec<u32>,
}

/// How many of the earliest pending returns of observing operations are checked after each
/// placement.
const OBSERVERS_CHECKED: usize = 3;

impl Pruning {
    fn new(model: &mut impl Model, timings: &[Timing], rank: &[u32], classes: &Classes) -> Option<Self> {
        let count = timings.len();
        let mut observed_values: Vec<u32> = Vec::new();
        let mut observed_index: HashMap<u32, u32, BuildHasherDefault<FastHasher>> = HashMap::default();
        let mut observer = vec![NONE; count];
        let mut written_values: Vec<u32> = Vec::new();
        let mut written_index: HashMap<u32, u32, BuildHasherDefault<FastHasher>> = HashMap::default();
        let mut index_of_written = |value: u32, written_values: &mut Vec<u32>| {
            *written_index.entry(value).or_insert_with(|| {
                written_values.push(value);
                written_values.len() as u32 - 1
            })
        };
        let mut setter_ranks: Vec<Vec<u32>> = Vec::new();
        let mut setter_classes: Vec<Vec<u32>> = Vec::new();
        let mut required_setters: Vec<(u32, u32)> = Vec::new();
        for operation in 0..count {
            if timings[operation].returned.is_none() {
                continue;
            }
            if let Some(value) = model.observed_value(operation) {
                observer[operation] = *observed_index.entry(value).or_insert_with(|| {
                    observed_values.push(value);
                    observed_values.len() as u32 - 1
                });
            }
            if let Some(value) = model.written_value(operation) {
                required_setters.push((index_of_written(value, &mut written_values), rank[operation]));
            }
        }
        let mut class_setters: Vec<(u32, u32)> = Vec::new();
        for (class, members) in classes.members.iter().enumerate() {
            if let Some(value) = model.written_value(members[0] as usize) {
                class_setters.push((index_of_written(value, &mut written_values), class as u32));
            }
        }
        setter_ranks.resize_with(written_values.len(), Vec::new);
        setter_classes.resize_with(written_values.len(), Vec::new);
        for (written, operation_rank) in required_setters {
            setter_ranks[written as usize].push(operation_rank);
        }
        for ranks in &mut setter_ranks {
            ranks.sort_unstable();
        }
        for (written, class) in class_setters {
            setter_classes[written as usize].push(class);
        }
        if observed_values.is_empty() {
            return None;
        }
        let leads = model.may_lead_to(&written_values, &observed_values)?;
        let setter_cursors = vec![0; setter_ranks.len()];
        Some(Pruning { observer, observed_values, leads, setter_ranks, setter_classes, setter_cursors })
    }

    fn memory_bytes(&self) -> u64 {
        let lists = |lists: &Vec<Vec<u32>>| lists.iter().map(|list| list.capacity() * 4 + 24).sum::<usize>();
        (self.observer.capacity() * 4
            + self.observed_values.capacity() * 4
            + lists(&self.leads)
            + lists(&self.setter_ranks)
            + lists(&self.setter_classes)
            + self.setter_cursors.capacity() * 4) as u64
    }
}

/// Configurations already explored: failed, or still being explored by an ancestor, which then
/// covers whatever a configuration it dominates could do.
struct Memo {
    /// Hash of (placed required operations, state) -> first record with that hash.
    heads: HashMap<u64, u32, BuildHasherDefault<PassThroughHasher>>,
    next: Vec<u32>,
    states: Vec<u32>,
    usage: Vec<u32>,
    /// Record `i`'s encoding of its required set starts at `words[offsets[i]]`: the first
    /// unplaced rank, then the window bits (their count follows from that rank).
    offsets: Vec<u64>,
    words: Vec<u64>,
}

impl Memo {
    fn new() -> Self {
        Memo {
            heads: HashMap::default(),
            next: Vec::new(),
            states: Vec::new(),
            usage: Vec::new(),
            offsets: Vec::new(),
            words: Vec::new(),
        }
    }

    /// Inserts the configuration; returns false if it, or one dominating it (same state, same
    /// required set, a use of indeterminate operations covered by this one's), was present.
    #[allow(clippy::too_many_arguments)]
    fn insert(
        &mut self,
        hash: u64,
        state: u32,
        first_unplaced: u32,
        window: &[u64],
        usage_set: u32,
        usage_sets: &UsageSets,
        used: &[u32],
    ) -> bool {
        let head = self.heads.get(&hash).copied().unwrap_or(NONE);
        let signature = usage_sets.signatures[usage_set as usize];
        let mut record = head;
        while record != NONE {
            let index = record as usize;
            if self.states[index] == state {
                let offset = self.offsets[index] as usize;
                let same_required = self.words[offset] == u64::from(first_unplaced)
                    && self.words[offset + 1..offset + 1 + window.len()] == *window;
                if same_required {
                    let known = self.usage[index];
                    if known == usage_set || usage_sets.covered_by(known, signature, used) {
                        return false;
                    }
                }
            }
            record = self.next[index];
        }
        self.next.push(head);
        self.states.push(state);
        self.usage.push(usage_set);
        self.offsets.push(self.words.len() as u64);
        self.words.push(u64::from(first_unplaced));
        self.words.extend_from_slice(window);
        self.heads.insert(hash, self.states.len() as u32 - 1);
        true
    }

    fn len(&self) -> u64 {
        self.states.len() as u64
    }

    fn memory_bytes(&self) -> u64 {
        let per_record = 4 + 4 + 4 + 8;
        let slot = 17;
        (self.states.capacity() * per_record + self.words.capacity() * 8 + self.heads.capacity() * slot) as u64
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Pass {
    /// Required read-only candidates, placed without alternatives when legal.
    ReadOnly,
    /// Required candidates that may change the state.
    Required,
    /// Indeterminate candidates (one per class), tried last because leaving them out is
    /// usually right.
    Optional,
}

#[derive(Clone, Copy, Debug)]
struct Frame {
    operation: u32,
    /// The call entry of a required operation, or the class of an indeterminate one.
    position: u32,
    state_before: u32,
    usage_before: u32,
    pass: Pass,
    /// A forced placement has no alternatives: backtracking continues past it.
    forced: bool,
    /// Whether a failed compare was blocked in the configuration before this placement.
    blocked_before: bool,
}

/// A resumable search for a linearization of operations `0..timings.len()`.
pub(crate) struct Search {
    timings: Vec<Timing>,
    read_only: Vec<bool>,
    /// Operation -> rank among required operations in call order (`NONE` if indeterminate).
    rank: Vec<u32>,
    /// Rank -> how many required operations were called before (or when) it returned.
    window_end: Vec<u32>,
    /// Rank -> call time.
    rank_call: Vec<u64>,
    required_total: usize,
    pruning: Option<Pruning>,

    list: EntryList,
    placed: RequiredSet,
    classes: Classes,
    usage_sets: UsageSets,
    usage_current: u32,
    memo: Memo,
    stack: Vec<Frame>,
    state: u32,
    required_left: usize,

    pass: Pass,
    entry: u32,
    class_cursor: u32,
    /// The time of the first return entry in the list: indeterminate operations called later
    /// cannot be placed yet.
    frontier: u64,
    /// The first return entry when the required passes ended.
    stuck_entry: u32,
    /// The observing operation whose value a rejected placement made unreachable, since the
    /// last placement: when the configuration dead-ends, it is why, more than `stuck_entry`.
    culprit: Option<usize>,
    /// Whether the read-only pass met a failed compare that the current state blocks.
    blocked_compare: bool,

    best: Option<(usize, usize)>,
    best_prefix: Vec<u32>,
    /// The stack's lowest height since `best_prefix` was recorded: below it they agree.
    low_water: usize,
    best_state: u32,
    best_stuck: Option<usize>,

    iterations: u64,
    scratch: Vec<u64>,
    finished: Option<SearchOutcome>,
}

impl Search {
    pub(crate) fn new(model: &mut impl Model, timings: &[Timing]) -> Self {
        Self::with_pruning(model, timings, true)
    }

    /// A search that never abandons configurations early (`prune` false) finds longer
    /// linearizable prefixes, which read better in an explanation.
    pub(crate) fn with_pruning(model: &mut impl Model, timings: &[Timing], prune: bool) -> Self {
        let count = timings.len();
        let read_only: Vec<bool> = (0..count).map(|operation| model.is_read_only(operation)).collect();
        // An indeterminate read-only operation can never matter, so it is never tried.
        let optional: Vec<bool> =
            (0..count).map(|operation| timings[operation].returned.is_none() && !read_only[operation]).collect();
        let mut required: Vec<u32> =
            (0..count as u32).filter(|operation| timings[*operation as usize].returned.is_some()).collect();
        required.sort_by_key(|operation| (timings[*operation as usize].call, *operation));
        let mut rank = vec![NONE; count];
        for (position, operation) in required.iter().enumerate() {
            rank[*operation as usize] = position as u32;
        }
        let calls: Vec<u64> = required.iter().map(|operation| timings[*operation as usize].call).collect();
        let window_end = required
            .iter()
            .map(|operation| {
                let timing = timings[*operation as usize];
                let returned = timing.returned.unwrap_or(u64::MAX).max(timing.call);
                calls.partition_point(|call| *call <= returned) as u32
            })
            .collect();
        let classes = Classes::new(model, timings, &optional);
        let pruning = if prune { Pruning::new(model, timings, &rank, &classes) } else { None };
        let list = EntryList::new(timings);
        let first = list.first();
        Search {
            timings: timings.to_vec(),
            read_only,
            rank,
            window_end,
            rank_call: calls,
            required_total: required.len(),
            pruning,
            list,
            placed: RequiredSet::new(required.len()),
            classes,
            usage_sets: UsageSets::new(),
            usage_current: 0,
            memo: Memo::new(),
            stack: Vec::new(),
            state: model.initial_state(),
            required_left: required.len(),
            pass: Pass::ReadOnly,
            entry: first,
            class_cursor: NONE,
            frontier: u64::MAX,
            stuck_entry: NONE,
            culprit: None,
            blocked_compare: false,
            best: None,
            best_prefix: Vec::new(),
            low_water: 0,
            best_state: model.initial_state(),
            best_stuck: None,
            iterations: 0,
            scratch: Vec::new(),
            finished: None,
        }
    }

    /// Configurations remembered so far.
    pub(crate) fn states(&self) -> u64 {
        self.memo.len()
    }

    /// Bytes the search holds (not counting its model).
    pub(crate) fn memory_bytes(&self) -> u64 {
        let fixed = self.timings.capacity() * std::mem::size_of::<Timing>()
            + self.read_only.capacity()
            + (self.rank.capacity() + self.window_end.capacity()) * 4
            + self.rank_call.capacity() * 8
            + self.placed.words.capacity() * 8
            + self.stack.capacity() * std::mem::size_of::<Frame>()
            + self.best_prefix.capacity() * 4
            + self.scratch.capacity() * 8;
        fixed as u64
            + self.list.memory_bytes()
            + self.classes.memory_bytes()
            + self.usage_sets.memory_bytes()
            + self.memo.memory_bytes()
            + self.pruning.as_ref().map_or(0, Pruning::memory_bytes)
    }

    /// Runs for at most `budget` iterations (`None`: until done or a bound is hit).
    pub(crate) fn run(&mut self, model: &mut impl Model, limits: &Limits, budget: Option<u64>) -> Progress {
        if let Some(outcome) = &self.finished {
            return Progress::Finished(outcome.clone());
        }
        let stop_at = budget.map_or(u64::MAX, |budget| self.iterations.saturating_add(budget));
        loop {
            let outcome = if self.required_left == 0 {
                Some(SearchOutcome::Linearizable)
            } else {
                self.iterations += 1;
                if self.iterations % 1024 == 0 {
                    if let Some(reason) = self.bound_hit(model, limits) {
                        return self.finish(SearchOutcome::GaveUp { reason });
                    }
                }
                if self.iterations > stop_at {
                    self.iterations -= 1;
                    return Progress::Paused;
                }
                match self.pass {
                    Pass::ReadOnly | Pass::Required => self.scan_entry(model),
                    Pass::Optional => self.scan_class(model),
                }
            };
            if let Some(outcome) = outcome {
                return self.finish(outcome);
            }
        }
    }

    fn finish(&mut self, outcome: SearchOutcome) -> Progress {
        self.finished = Some(outcome.clone());
        Progress::Finished(outcome)
    }

    /// Remembers the configuration with the current required set, `state` and `usage_set`;
    /// false when it (or one dominating it) is known.
    fn remember(&mut self, state: u32, usage_set: u32) -> bool {
        let first_unplaced = self.placed.first_unplaced;
        let window_length = if (first_unplaced as usize) < self.required_total {
            (self.window_end[first_unplaced as usize] as usize).saturating_sub(first_unplaced as usize + 1)
        } else {
            0
        };
        let mut window = std::mem::take(&mut self.scratch);
        self.placed.extract(first_unplaced as usize + 1, window_length, &mut window);
        let fresh = self.memo.insert(
            self.placed.hash ^ state_hash(state),
            state,
            first_unplaced,
            &window,
            usage_set,
            &self.usage_sets,
            &self.classes.used,
        );
        self.scratch = window;
        fresh
    }

    /// One step of the read-only or required pass over the entry list.
    fn scan_entry(&mut self, model: &mut impl Model) -> Option<SearchOutcome> {
        let entry = self.entry;
        let window_ended = entry == NONE || self.list.entries[entry as usize].is_return;
        if window_ended {
            if self.pass == Pass::ReadOnly {
                self.pass = Pass::Required;
                self.entry = self.list.first();
            } else {
                self.pass = Pass::Optional;
                self.stuck_entry = entry;
                self.frontier = if entry == NONE { u64::MAX } else { self.list.times[entry as usize] };
                self.class_cursor = self.classes.first();
            }
            return None;
        }
        let operation = self.list.entries[entry as usize].operation;
        let in_pass = self.read_only[operation as usize] == (self.pass == Pass::ReadOnly);
        if in_pass {
            match model.step(self.state, operation as usize) {
                Some(next) => {
                    let rank = self.rank[operation as usize];
                    self.placed.insert(rank);
                    self.list.lift(entry);
                    if self.viable(model, next) && self.remember(next, self.usage_current) {
                        let forced = self.pass == Pass::ReadOnly;
                        self.required_left -= 1;
                        self.push(operation, entry, next, forced);
                        return None;
                    }
                    self.list.unlift(entry);
                    self.placed.remove(rank);
                    if self.pass == Pass::ReadOnly {
                        // Placing this read is always safe, so the configuration after it is
                        // equivalent to this one, and that one is known to fail.
                        return self.backtrack();
                    }
                }
                None => {
                    if self.pass == Pass::ReadOnly && model.is_failed_compare(operation as usize) {
                        self.blocked_compare = true;
                    }
                }
            }
        }
        self.entry = self.list.next(entry);
        None
    }

    /// One step of the indeterminate pass over the classes.
    fn scan_class(&mut self, model: &mut impl Model) -> Option<SearchOutcome> {
        let class = self.class_cursor;
        if class == NONE || self.classes.first_call[class as usize] > self.frontier {
            // Classes are ordered by first call: none further can be placed either.
            return self.dead_end();
        }
        let used = self.classes.used[class as usize];
        let member = self.classes.members[class as usize][used as usize];
        let callable = self.timings[member as usize].call <= self.frontier;
        let useful = self.blocked_compare || !model.is_unobservable_write(member as usize);
        if callable && useful {
            if let Some(next) = model.step(self.state, member as usize) {
                let usage = self.usage_sets.with_one_more(self.usage_current, class, used);
                self.classes.used[class as usize] += 1;
                if self.viable(model, next) && self.remember(next, usage) {
                    self.push(member, class, next, false);
                    self.usage_current = usage;
                    if self.classes.used[class as usize] as usize == self.classes.members[class as usize].len() {
                        self.classes.unlink(class);
                    }
                    return None;
                }
                self.classes.used[class as usize] -= 1;
            }
        }
        self.class_cursor = self.classes.next[class as usize];
        None
    }

    /// False when, in `state` with the current placements, one of the next few observing
    /// operations to return can certainly never see its value.
    fn viable(&mut self, model: &mut impl Model, state: u32) -> bool {
        if self.pruning.is_none() {
            return true;
        }
        let mut entry = self.list.first_return();
        let mut checked = 0;
        while entry != NONE && checked < OBSERVERS_CHECKED {
            let operation = self.list.entries[entry as usize].operation;
            let Some(pruning) = &self.pruning else {
                return true;
            };
            let slot = pruning.observer[operation as usize];
            if slot != NONE {
                checked += 1;
                let target = pruning.observed_values[slot as usize];
                if !model.may_reach(state, target) && !self.may_be_set(slot, self.list.times[entry as usize]) {
                    self.culprit = Some(operation as usize);
                    return false;
                }
            }
            entry = self.list.next_return(entry);
        }
        true
    }

    /// Whether some operation not yet placed, called by `deadline`, sets a state that may lead
    /// to observed value `slot`.
    fn may_be_set(&mut self, slot: u32, deadline: u64) -> bool {
        let Some(pruning) = &mut self.pruning else {
            return true;
        };
        let first_unplaced = self.placed.first_unplaced;
        for written in &pruning.leads[slot as usize] {
            let ranks = &pruning.setter_ranks[*written as usize];
            // Every rank before the first unplaced one is placed, so the scan starts there; the
            // start moves little between calls, so it is kept and adjusted rather than searched.
            let cursor = &mut pruning.setter_cursors[*written as usize];
            let mut start = *cursor as usize;
            while start > 0 && ranks[start - 1] >= first_unplaced {
                start -= 1;
            }
            while start < ranks.len() && ranks[start] < first_unplaced {
                start += 1;
            }
            *cursor = start as u32;
            // Placed ranks past the first unplaced one lie in its window: a few at most.
            for rank in &ranks[start..] {
                if self.rank_call[*rank as usize] > deadline {
                    break;
                }
                if !self.placed.contains(*rank) {
                    return true;
                }
            }
            // A class's members are used in call order: the next unused one is the earliest.
            for class in &pruning.setter_classes[*written as usize] {
                let members = &self.classes.members[*class as usize];
                let used = self.classes.used[*class as usize] as usize;
                if used < members.len() && self.timings[members[used] as usize].call <= deadline {
                    return true;
                }
            }
        }
        false
    }

    /// Records a placement (already applied to the list or classes by the caller) and starts
    /// the next configuration's scan.
    fn push(&mut self, operation: u32, position: u32, next: u32, forced: bool) {
        self.stack.push(Frame {
            operation,
            position,
            state_before: self.state,
            usage_before: self.usage_current,
            pass: self.pass,
            forced,
            blocked_before: self.blocked_compare,
        });
        self.state = next;
        self.pass = Pass::ReadOnly;
        self.entry = self.list.first();
        self.blocked_compare = false;
        self.culprit = None;
    }

    /// Every candidate failed: remembers how far this attempt got, then undoes a placement.
    fn dead_end(&mut self) -> Option<SearchOutcome> {
        // Deepest = most required operations placed; among equals, the fewest indeterminate
        // ones, so the report does not drag in operations that changed nothing.
        let required_placed = self.required_total - self.required_left;
        let depth = self.stack.len();
        let deeper = self.best.map_or(true, |(best_required, best_depth)| {
            required_placed > best_required || (required_placed == best_required && depth < best_depth)
        });
        if deeper {
            self.best = Some((required_placed, depth));
            self.best_prefix.truncate(self.low_water);
            self.best_prefix.extend(self.stack[self.low_water..].iter().map(|frame| frame.operation));
            self.low_water = depth;
            self.best_state = self.state;
            self.best_stuck = self.culprit.or_else(|| {
                (self.stuck_entry != NONE).then(|| self.list.entries[self.stuck_entry as usize].operation as usize)
            });
        }
        self.backtrack()
    }

    /// Pops frames until one has alternatives left and resumes the scan after it; the history
    /// is not linearizable when the stack empties.
    fn backtrack(&mut self) -> Option<SearchOutcome> {
        while let Some(frame) = self.stack.pop() {
            self.low_water = self.low_water.min(self.stack.len());
            if frame.pass == Pass::Optional {
                let class = frame.position;
                if self.classes.used[class as usize] as usize == self.classes.members[class as usize].len() {
                    self.classes.relink(class);
                }
                self.classes.used[class as usize] -= 1;
                self.usage_current = frame.usage_before;
            } else {
                self.list.unlift(frame.position);
                self.placed.remove(self.rank[frame.operation as usize]);
                self.required_left += 1;
            }
            self.state = frame.state_before;
            self.blocked_compare = frame.blocked_before;
            if frame.forced {
                continue;
            }
            self.pass = frame.pass;
            if frame.pass == Pass::Optional {
                self.class_cursor = self.classes.next[frame.position as usize];
                self.stuck_entry = self.list.first_return();
                self.frontier =
                    if self.stuck_entry == NONE { u64::MAX } else { self.list.times[self.stuck_entry as usize] };
            } else {
                self.entry = self.list.next(frame.position);
            }
            return None;
        }
        Some(SearchOutcome::NotLinearizable(Failure {
            longest_prefix: self.best_prefix.iter().map(|operation| *operation as usize).collect(),
            state_after_prefix: self.best_state,
            stuck: self.best_stuck,
        }))
    }

    fn bound_hit(&self, model: &impl Model, limits: &Limits) -> Option<GiveUpReason> {
        if let Some(max_states) = limits.max_states {
            if self.memo.len() > max_states {
                return Some(GiveUpReason::StateLimit { states: self.memo.len() });
            }
        }
        if let Some(max_memory_bytes) = limits.max_memory_bytes {
            let bytes = self.memory_bytes() + model.memory_bytes();
            if bytes > max_memory_bytes {
                return Some(GiveUpReason::MemoryLimit { bytes });
            }
        }
        if let Some(deadline) = limits.deadline {
            if Instant::now() >= deadline {
                return Some(GiveUpReason::Deadline);
            }
        }
        None
    }
}

/// Searches to the end (or a bound); also returns how many configurations it remembered.
pub(crate) fn search(model: &mut impl Model, timings: &[Timing], limits: &Limits) -> (SearchOutcome, u64) {
    let mut search = Search::new(&mut *model, timings);
    match search.run(model, limits, None) {
        Progress::Finished(outcome) => (outcome, search.states()),
        Progress::Paused => unreachable!("search: no budget was given, so it cannot pause"),
    }
}
