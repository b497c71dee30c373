//! The general linearizability search: Wing & Gong's algorithm with Lowe's memoisation, laid
//! out as porcupine does (a doubly linked list of call and return entries, operations "lifted"
//! out of it as they are linearized) and improved in four ways:
//!
//! - the placed set is hashed incrementally (Zobrist: one xor per placement) and the cache of
//!   failed configurations stores each set once, in a flat arena, compared only on a hash match;
//! - the cache prunes by dominance, not only equality: with the same required operations placed
//!   and the same state, a configuration that has used up a superset of the indeterminate
//!   operations can do nothing the other could not, so it fails too. Without this, proving a
//!   history with k pending indeterminate operations illegal costs 2^k;
//! - the stack is an explicit vector, so deep histories cannot overflow the thread's stack;
//! - a read-only operation that is legal in the current state is placed without trying
//!   alternatives (moving a legal read earlier never breaks a linearization), which removes
//!   most branching from ordinary histories;
//! - indeterminate operations have no return entry: they are optional, tried only after every
//!   required candidate, and the search succeeds once every required operation is placed.
//!
//! Owns the search and its bounds (deadline, states, memory, cancellation). Must never know what
//! the operations mean: legality comes from a [`Model`], and the result speaks in operation
//! indices that the caller translates into a report.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

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
pub(crate) struct Limits<'a> {
    pub(crate) deadline: Option<Instant>,
    pub(crate) max_states: Option<u64>,
    pub(crate) max_memory_bytes: Option<u64>,
    /// `(first_violation, index)`: give up once another thread has found a violation in an
    /// earlier key than this one (`first_violation < index`), as the answer is then not needed.
    pub(crate) cancel: Option<(&'a AtomicUsize, usize)>,
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
    Cancelled,
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
    /// For a call entry, the index of its return entry (`NONE` if indeterminate).
    partner: u32,
    previous: u32,
    next: u32,
}

/// The time-ordered list of call and return entries, with O(1) removal and restoration.
struct EntryList {
    entries: Vec<Entry>,
}

impl EntryList {
    fn new(timings: &[Timing]) -> Self {
        // (time, kind, operation): calls sort before returns at the same time, so operations
        // that touch at one instant count as concurrent, the charitable reading.
        let mut events: Vec<(u64, u8, u32)> = Vec::with_capacity(timings.len() * 2);
        for (operation, timing) in timings.iter().enumerate() {
            events.push((timing.call, 0, operation as u32));
            if let Some(returned) = timing.returned {
                events.push((returned.max(timing.call), 1, operation as u32));
            }
        }
        events.sort_unstable();
        let mut entries = Vec::with_capacity(events.len() + 1);
        entries.push(Entry { operation: NONE, is_return: false, partner: NONE, previous: NONE, next: NONE });
        let mut call_entry = vec![NONE; timings.len()];
        for (position, (_, kind, operation)) in events.iter().enumerate() {
            let index = position as u32 + 1;
            let is_return = *kind == 1;
            entries.push(Entry { operation: *operation, is_return, partner: NONE, previous: index - 1, next: NONE });
            entries[index as usize - 1].next = index;
            if is_return {
                let call = call_entry[*operation as usize];
                entries[call as usize].partner = index;
            } else {
                call_entry[*operation as usize] = index;
            }
        }
        EntryList { entries }
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

    /// Removes an operation (its call and, if any, its return) from the list.
    fn lift(&mut self, call: u32) {
        self.unlink(call);
        let partner = self.entries[call as usize].partner;
        if partner != NONE {
            self.unlink(partner);
        }
    }

    /// Undoes the matching [`EntryList::lift`]; lifts must be undone in reverse order.
    fn unlift(&mut self, call: u32) {
        let partner = self.entries[call as usize].partner;
        if partner != NONE {
            self.relink(partner);
        }
        self.relink(call);
    }
}

/// The keys are already uniformly distributed hashes; hashing them again would waste time.
#[derive(Default)]
struct PassThroughHasher(u64);

impl Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// Deterministic pseudo-random 64-bit values (splitmix64), one per operation.
fn zobrist(index: u64) -> u64 {
    let mut z = index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn state_hash(state: u32) -> u64 {
    zobrist(u64::from(state) ^ 0x5555_0000_0000_0000)
}

/// Configurations (placed set, state) already explored: failed, or still being explored by an
/// ancestor, which then covers whatever a configuration it dominates could do.
struct FailedConfigurations {
    words: usize,
    /// The required (determinate) operations, as a set.
    required_mask: Vec<u64>,
    /// Hash of (required part of the placed set, state) -> index of the first record with that
    /// hash; records chain through `next`.
    heads: HashMap<u64, u32, BuildHasherDefault<PassThroughHasher>>,
    states: Vec<u32>,
    /// Each record's optional signature (see [`Placed`]).
    signatures: Vec<u64>,
    next: Vec<u32>,
    /// Record `i`'s placed set is `sets[i * words .. (i + 1) * words]`.
    sets: Vec<u64>,
}

impl FailedConfigurations {
    fn new(required: &[bool]) -> Self {
        let words = required.len().div_ceil(64).max(1);
        let mut required_mask = vec![0u64; words];
        for (operation, is_required) in required.iter().enumerate() {
            if *is_required {
                required_mask[operation / 64] |= 1u64 << (operation % 64);
            }
        }
        FailedConfigurations {
            words,
            required_mask,
            heads: HashMap::default(),
            states: Vec::new(),
            signatures: Vec::new(),
            next: Vec::new(),
            sets: Vec::new(),
        }
    }

    /// Inserts the configuration; returns false if it, or a configuration dominating it (same
    /// state, same required operations, a subset of the optional ones), was already present.
    fn insert(&mut self, hash: u64, state: u32, placed: &[u64], signature: u64) -> bool {
        let new_index = self.states.len() as u32;
        let head = *self.heads.entry(hash).or_insert(NONE);
        let mut record = head;
        while record != NONE {
            let start = record as usize * self.words;
            // A dominating record's optional operations are a subset of ours, so are its
            // signature bits.
            let maybe_subset = self.signatures[record as usize] & !signature == 0;
            if self.states[record as usize] == state && maybe_subset {
                let known = &self.sets[start..start + self.words];
                let dominated = known
                    .iter()
                    .zip(placed)
                    .zip(&self.required_mask)
                    .all(|((known, placed), required)| known & !placed == 0 && (known ^ placed) & required == 0);
                if dominated {
                    return false;
                }
            }
            record = self.next[record as usize];
        }
        self.states.push(state);
        self.signatures.push(signature);
        self.next.push(head);
        self.sets.extend_from_slice(placed);
        self.heads.insert(hash, new_index);
        true
    }

    fn len(&self) -> u64 {
        self.states.len() as u64
    }

    /// An estimate of the bytes held: records plus the hash table's slots.
    fn memory_bytes(&self) -> u64 {
        let per_record = 16 + 8 * self.words as u64;
        let per_slot = 16 + 1;
        self.len() * per_record + self.heads.capacity() as u64 * per_slot
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Pass {
    /// Required read-only candidates, placed without alternatives when legal.
    ReadOnly,
    /// Required candidates that may change the state.
    Required,
    /// Indeterminate candidates, tried last because leaving them out is usually right.
    Optional,
}

struct Frame {
    call: u32,
    state_before: u32,
    pass: Pass,
    /// A forced placement has no alternatives: backtracking continues past it.
    forced: bool,
}

/// Searches for a linearization of operations `0..timings.len()` under `model`.
/// Also returns how many configurations it explored.
pub(crate) fn search(model: &mut impl Model, timings: &[Timing], limits: &Limits<'_>) -> (SearchOutcome, u64) {
    let required: Vec<bool> = timings.iter().map(|timing| timing.returned.is_some()).collect();
    let mut cache = FailedConfigurations::new(&required);
    let outcome = search_with(model, timings, limits, &mut cache);
    (outcome, cache.len())
}

/// The placed set, with its incremental hash (required operations only) and a 64-bit summary
/// of the optional operations in it, which rejects most dominance candidates in one `and`.
struct Placed {
    words: Vec<u64>,
    required_hash: u64,
    /// Bit `b` is set when some placed optional operation maps to `b`.
    optional_signature: u64,
    signature_counts: [u32; 64],
}

impl Placed {
    fn new(words: usize) -> Self {
        Placed { words: vec![0; words], required_hash: 0, optional_signature: 0, signature_counts: [0; 64] }
    }

    fn insert(&mut self, operation: usize, required: bool) {
        self.words[operation / 64] |= 1u64 << (operation % 64);
        if required {
            self.required_hash ^= zobrist(operation as u64);
        } else {
            let bit = signature_bit(operation);
            self.signature_counts[bit] += 1;
            self.optional_signature |= 1u64 << bit;
        }
    }

    fn remove(&mut self, operation: usize, required: bool) {
        self.words[operation / 64] &= !(1u64 << (operation % 64));
        if required {
            self.required_hash ^= zobrist(operation as u64);
        } else {
            let bit = signature_bit(operation);
            self.signature_counts[bit] -= 1;
            if self.signature_counts[bit] == 0 {
                self.optional_signature &= !(1u64 << bit);
            }
        }
    }
}

fn signature_bit(operation: usize) -> usize {
    (zobrist(operation as u64 ^ 0xA5A5_A5A5) % 64) as usize
}

/// The search's mutable position: what is placed, in which order, and the current state.
struct Position {
    list: EntryList,
    placed: Placed,
    stack: Vec<Frame>,
    state: u32,
    required_left: usize,
}

impl Position {
    fn place(&mut self, entry: u32, next_state: u32, pass: Pass, forced: bool, required: bool) {
        let operation = self.list.entries[entry as usize].operation as usize;
        self.stack.push(Frame { call: entry, state_before: self.state, pass, forced });
        self.state = next_state;
        if required {
            self.required_left -= 1;
        }
        self.placed.insert(operation, required);
        self.list.lift(entry);
    }

    /// Pops frames until one has alternatives left and returns where the scan resumes (the
    /// entry after it, in its pass). `None` when the stack empties: no linearization exists.
    fn backtrack(&mut self, required: &[bool]) -> Option<(u32, Pass)> {
        while let Some(frame) = self.stack.pop() {
            let operation = self.list.entries[frame.call as usize].operation as usize;
            self.list.unlift(frame.call);
            self.placed.remove(operation, required[operation]);
            self.state = frame.state_before;
            if required[operation] {
                self.required_left += 1;
            }
            if !frame.forced {
                return Some((self.list.next(frame.call), frame.pass));
            }
        }
        None
    }
}

fn search_with(
    model: &mut impl Model,
    timings: &[Timing],
    limits: &Limits<'_>,
    cache: &mut FailedConfigurations,
) -> SearchOutcome {
    let operation_count = timings.len();
    let required: Vec<bool> = timings.iter().map(|timing| timing.returned.is_some()).collect();
    let read_only: Vec<bool> = (0..operation_count).map(|operation| model.is_read_only(operation)).collect();
    let in_pass = |operation: usize, pass: Pass| match pass {
        Pass::ReadOnly => required[operation] && read_only[operation],
        Pass::Required => required[operation] && !read_only[operation],
        // An indeterminate read-only operation can never matter, so it is never tried.
        Pass::Optional => !required[operation] && !read_only[operation],
    };
    let required_total = required.iter().filter(|is_required| **is_required).count();
    let mut position = Position {
        list: EntryList::new(timings),
        placed: Placed::new(cache.words),
        stack: Vec::new(),
        state: model.initial_state(),
        required_left: required_total,
    };
    let mut best: Option<(usize, usize)> = None;
    let mut failure: Option<Failure> = None;

    let mut pass = Pass::ReadOnly;
    let mut entry = position.list.first();
    let mut iterations: u64 = 0;
    loop {
        if position.required_left == 0 {
            return SearchOutcome::Linearizable;
        }
        iterations += 1;
        if iterations % 1024 == 0 {
            if let Some(reason) = bound_hit(limits, cache) {
                return SearchOutcome::GaveUp { reason };
            }
        }

        let window_ended = entry == NONE || position.list.entries[entry as usize].is_return;
        if !window_ended {
            let operation = position.list.entries[entry as usize].operation as usize;
            if in_pass(operation, pass) {
                if let Some(next_state) = model.step(position.state, operation) {
                    let is_required = required[operation];
                    position.placed.insert(operation, is_required);
                    let fresh = cache.insert(
                        position.placed.required_hash ^ state_hash(next_state),
                        next_state,
                        &position.placed.words,
                        position.placed.optional_signature,
                    );
                    position.placed.remove(operation, is_required);
                    let forced = pass == Pass::ReadOnly;
                    if fresh {
                        position.place(entry, next_state, pass, forced, is_required);
                        entry = position.list.first();
                        pass = Pass::ReadOnly;
                        continue;
                    }
                    if forced {
                        // Placing this read is always safe, so the configuration after it is
                        // equivalent to this one, and that one is known to fail.
                        match position.backtrack(&required) {
                            Some((resume, resume_pass)) => {
                                entry = resume;
                                pass = resume_pass;
                                continue;
                            }
                            None => return not_linearizable(failure, position.state),
                        }
                    }
                }
            }
            entry = position.list.next(entry);
            continue;
        }

        if pass != Pass::Optional {
            pass = if pass == Pass::ReadOnly { Pass::Required } else { Pass::Optional };
            entry = position.list.first();
            continue;
        }
        // Every candidate failed: remember how far this attempt got, then undo a placement.
        // Deepest = most required operations placed; among equals, the fewest optional ones,
        // so the report does not drag in indeterminate operations that changed nothing.
        let required_placed = required_total - position.required_left;
        let depth = position.stack.len();
        let deepest = best.map_or(true, |(best_required, best_length)| {
            required_placed > best_required || (required_placed == best_required && depth < best_length)
        });
        if deepest {
            best = Some((required_placed, depth));
            let list = &position.list;
            failure = Some(Failure {
                longest_prefix: position
                    .stack
                    .iter()
                    .map(|frame| list.entries[frame.call as usize].operation as usize)
                    .collect(),
                state_after_prefix: position.state,
                stuck: (entry != NONE).then(|| list.entries[entry as usize].operation as usize),
            });
        }
        match position.backtrack(&required) {
            Some((resume, resume_pass)) => {
                entry = resume;
                pass = resume_pass;
            }
            None => return not_linearizable(failure, position.state),
        }
    }
}

fn not_linearizable(failure: Option<Failure>, state: u32) -> SearchOutcome {
    SearchOutcome::NotLinearizable(failure.unwrap_or(Failure {
        longest_prefix: Vec::new(),
        state_after_prefix: state,
        stuck: None,
    }))
}

fn bound_hit(limits: &Limits<'_>, cache: &FailedConfigurations) -> Option<GiveUpReason> {
    if let Some((first_violation, index)) = limits.cancel {
        if first_violation.load(Ordering::Relaxed) < index {
            return Some(GiveUpReason::Cancelled);
        }
    }
    if let Some(max_states) = limits.max_states {
        if cache.len() > max_states {
            return Some(GiveUpReason::StateLimit { states: cache.len() });
        }
    }
    if let Some(max_memory_bytes) = limits.max_memory_bytes {
        let bytes = cache.memory_bytes();
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
