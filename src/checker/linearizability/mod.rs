//! Linearizability checking of key-value, multi-register and mutex histories.
//!
//! Owns the public API (`check_kv`, `check_multi_register`, `check_mutex`), the split of a
//! key-value history into independent keys (P-compositionality), the preparation of each key
//! (the unique-value fast path, the impossible-observation test, the merging of writes nobody
//! observes), and the scheduling of the keys' searches. Must never import the simulated world,
//! the system under test or the workload: it is a pure library over histories, usable outside
//! the simulation. It may use OS threads (it runs outside the simulation), but its verdict and
//! report never depend on thread timing; only a wall-clock `time_limit`, when one is given, can
//! make them depend on the host.
//!
//! Two schedules: checking every key, each search runs to its end (on several threads for large
//! histories) and the first illegal key in key order is reported; with
//! `stop_at_first_violation`, the keys' searches advance in rounds of a fixed number of
//! iterations each (doubling every round), and checking stops after the first round in which a
//! key is proven illegal, reporting the lowest such key. The rounds count iterations, not time,
//! so which key is reported is a function of the history alone, and a cheap illegal key is found
//! after a bounded amount of work on the others, whatever their order.

pub mod explain;
mod fast_hash;
mod fast_path;
pub mod formats;
pub mod generate;
pub mod history;
mod impossible;
pub(crate) mod migsim_ops;
mod model;
mod search;
mod unobserved;
mod values;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use explain::{render_svg, ExplainedOperation, TimeUnit, Violation};
pub use history::{
    KvFunction, KvHistory, KvOperation, MultiRegisterHistory, MutexFunction, MutexHistory, MutexOperation, Observed,
    RegisterAccess, TransactionOperation,
};
use model::{describe_value, Model, MultiRegisterModel, MutexModel, RegisterModel};
use search::{Failure, GiveUpReason, Limits, Progress, Search, SearchOutcome, Timing};

/// Bounds and switches for one check.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// Wall-clock budget for the whole check; past it, unfinished keys are `Unknown`. A verdict
    /// reached under a time limit depends on the host's speed and load; leave it `None` where
    /// verdicts must be reproducible.
    pub time_limit: Option<Duration>,
    /// Most configurations the search may remember for one key (or one whole history).
    pub max_states_per_key: Option<u64>,
    /// Most bytes one key's check may hold: its memo, interned values and states, stacks and
    /// lists, all counted (an estimate from the structures' capacities, deterministic).
    pub max_memory_bytes_per_key: Option<u64>,
    /// Stop once a key is proven illegal; keys advance in deterministic rounds, so the reported
    /// key does not depend on threads or timing (see the module documentation).
    pub stop_at_first_violation: bool,
    /// Worker threads for keys; 0 means one per available core for histories of 5,000
    /// operations or more, and the calling thread for smaller ones.
    pub threads: usize,
    /// Try the unique-value construction before searching (on by default; off to measure).
    pub fast_path: bool,
    /// What the history's times count, for the report.
    pub time_unit: TimeUnit,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            time_limit: None,
            max_states_per_key: None,
            max_memory_bytes_per_key: Some(1 << 30),
            stop_at_first_violation: false,
            threads: 0,
            fast_path: true,
            time_unit: TimeUnit::Microseconds,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Illegal(Violation),
    /// A bound was hit before the checker could decide; `reason` names the bound and the key.
    Unknown {
        reason: String,
    },
}

impl fmt::Display for Verdict {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Ok => write!(formatter, "ok"),
            Verdict::Illegal(violation) => write!(formatter, "illegal\n{violation}"),
            Verdict::Unknown { reason } => write!(formatter, "unknown: {reason}"),
        }
    }
}

/// A verdict with counts of the work done to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckReport {
    pub verdict: Verdict,
    /// Independent parts checked: keys, or 1 for a history checked whole.
    pub keys: usize,
    pub operations: usize,
    /// Keys proven linearizable by the unique-value construction, without search.
    pub fast_path_keys: usize,
    /// Configurations the general search explored, summed over keys.
    pub states_explored: u64,
}

/// Checks a key-value history, each key an independent register.
pub fn check_kv(history: &KvHistory, options: &CheckOptions) -> Verdict {
    check_kv_report(history, options).verdict
}

/// [`check_kv`] with counts of the work done.
pub fn check_kv_report(history: &KvHistory, options: &CheckOptions) -> CheckReport {
    let started = Instant::now();
    if let Some(reason) = invalid_timing(
        history.operations.iter().map(|operation| (operation.id, operation.call_us, operation.return_us)),
    ) {
        return invalid_report(reason, history.operations.len());
    }
    let mut by_key: BTreeMap<&str, Vec<&KvOperation>> = BTreeMap::new();
    for operation in &history.operations {
        by_key.entry(operation.key.as_str()).or_default().push(operation);
    }
    let keys: Vec<(&str, Vec<&KvOperation>)> = by_key.into_iter().collect();
    let limits = Limits {
        deadline: options.time_limit.map(|limit| started + limit),
        max_states: options.max_states_per_key,
        max_memory_bytes: options.max_memory_bytes_per_key,
    };
    let threads = thread_count(keys.len(), history.operations.len(), options);
    let prepare = |index: usize| {
        let (key, operations) = &keys[index];
        KeyCheck::prepare(key, operations, history.initial_value.as_deref(), options, &limits)
    };
    let results = if options.stop_at_first_violation {
        run_in_rounds(keys.len(), threads, &prepare, &limits)
    } else {
        let mut results: Vec<Option<PartResult>> = Vec::new();
        results.resize_with(keys.len(), || None);
        let results = Mutex::new(results);
        for_each_in_parallel(keys.len(), threads, |index| {
            let mut check = prepare(index);
            let result = check.advance(&limits, None);
            let result = result.unwrap_or_else(|| unreachable!("linearizability: a search without budget finished"));
            if let Ok(mut slots) = results.lock() {
                slots[index] = Some(result);
            }
        });
        let slots = results.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
        slots.into_iter().map(|slot| slot.unwrap_or(PartResult::Skipped)).collect()
    };
    let names: Vec<&str> = keys.iter().map(|(key, _)| *key).collect();
    merge(&names, results, history.operations.len())
}

/// Iterations a key's search runs in the first round of a stop-at-first check; each later round
/// doubles it, so the work spent on keys that turn out legal is at most about twice, per key,
/// the work that proved the illegal one.
const FIRST_ROUND_ITERATIONS: u64 = 4_096;

/// Runs every key's check in rounds until one is proven illegal or all are done.
fn run_in_rounds<'a>(
    keys: usize,
    threads: usize,
    prepare: &(impl Fn(usize) -> KeyCheck<'a> + Sync),
    limits: &Limits,
) -> Vec<PartResult> {
    let checks: Vec<Mutex<Option<KeyCheck>>> = (0..keys).map(|_| Mutex::new(None)).collect();
    let results: Vec<Mutex<Option<PartResult>>> = (0..keys).map(|_| Mutex::new(None)).collect();
    let mut budget = FIRST_ROUND_ITERATIONS;
    let mut round = 0;
    loop {
        let pending: Vec<usize> =
            (0..keys).filter(|index| results[*index].lock().map_or(false, |result| result.is_none())).collect();
        if pending.is_empty() {
            break;
        }
        for_each_in_parallel(pending.len(), threads, |position| {
            let index = pending[position];
            let (Ok(mut check), Ok(mut result)) = (checks[index].lock(), results[index].lock()) else {
                return;
            };
            // The first round only prepares: a key the fast path or the impossible-observation
            // test decides costs no search at all.
            let slot = check.get_or_insert_with(|| prepare(index));
            let outcome = if round == 0 { slot.decided() } else { slot.advance(limits, Some(budget)) };
            if let Some(outcome) = outcome {
                *result = Some(outcome);
                *check = None;
            }
        });
        let any_illegal = results
            .iter()
            .any(|result| result.lock().is_ok_and(|result| matches!(*result, Some(PartResult::Illegal { .. }))));
        if any_illegal {
            break;
        }
        if round > 0 {
            budget = budget.saturating_mul(2);
        }
        round += 1;
    }
    results
        .into_iter()
        .map(|slot| slot.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner()).unwrap_or(PartResult::Skipped))
        .collect()
}

/// Checks a multi-register history whole: transactions span registers, so it cannot be split.
pub fn check_multi_register(history: &MultiRegisterHistory, options: &CheckOptions) -> CheckReport {
    let started = Instant::now();
    if let Some(reason) = invalid_timing(
        history.operations.iter().map(|operation| (operation.id, operation.call_us, operation.return_us)),
    ) {
        return invalid_report(reason, history.operations.len());
    }
    let mut model = MultiRegisterModel::new(
        history.initial_value,
        history.operations.iter().map(|operation| operation.accesses.as_slice()),
    );
    let timings: Vec<Timing> = history
        .operations
        .iter()
        .map(|operation| Timing { call: operation.call_us, returned: operation.return_us })
        .collect();
    let limits = whole_history_limits(options, started);
    let describe = |local: usize| {
        let operation = &history.operations[local];
        let render = |accesses: &[RegisterAccess], with_read_values: bool| {
            let parts: Vec<String> = accesses
                .iter()
                .map(|access| match access {
                    RegisterAccess::Read { register, value: Some(value) } if with_read_values => {
                        format!("read {register} {value}")
                    }
                    RegisterAccess::Read { register, .. } => format!("read {register}"),
                    RegisterAccess::Write { register, value } => {
                        format!("write {register} {value}")
                    }
                })
                .collect();
            format!("[{}]", parts.join(", "))
        };
        let result = if operation.return_us.is_some() { render(&operation.accesses, true) } else { "?".to_owned() };
        explained(
            operation.id,
            operation.client,
            render(&operation.accesses, false),
            result,
            (operation.call_us, operation.return_us),
            options.time_unit,
        )
    };
    let result = check_whole(&mut model, &timings, &limits, describe);
    merge(&["transactions"], vec![result], history.operations.len())
}

/// Checks a mutex history whole (one lock, initially released).
pub fn check_mutex(history: &MutexHistory, options: &CheckOptions) -> CheckReport {
    let started = Instant::now();
    if let Some(reason) = invalid_timing(
        history.operations.iter().map(|operation| (operation.id, operation.call_us, operation.return_us)),
    ) {
        return invalid_report(reason, history.operations.len());
    }
    let mut model = MutexModel { functions: history.operations.iter().map(|operation| operation.function).collect() };
    let timings: Vec<Timing> = history
        .operations
        .iter()
        .map(|operation| Timing { call: operation.call_us, returned: operation.return_us })
        .collect();
    let limits = whole_history_limits(options, started);
    let describe = |local: usize| {
        let operation = &history.operations[local];
        let call = match operation.function {
            MutexFunction::Acquire => "acquire",
            MutexFunction::Release => "release",
        };
        let result = if operation.return_us.is_some() { "ok" } else { "?" };
        explained(
            operation.id,
            operation.client,
            call.to_owned(),
            result.to_owned(),
            (operation.call_us, operation.return_us),
            options.time_unit,
        )
    };
    let result = check_whole(&mut model, &timings, &limits, describe);
    merge(&["mutex"], vec![result], history.operations.len())
}

fn whole_history_limits(options: &CheckOptions, started: Instant) -> Limits {
    Limits {
        deadline: options.time_limit.map(|limit| started + limit),
        max_states: options.max_states_per_key,
        max_memory_bytes: options.max_memory_bytes_per_key,
    }
}

fn explained(
    id: u64,
    client: u64,
    call: String,
    result: String,
    (call_us, return_us): (u64, Option<u64>),
    time_unit: TimeUnit,
) -> ExplainedOperation {
    ExplainedOperation { id, client, call, result, call_us, return_us, in_prefix: false, time_unit }
}

/// An operation returning before it is called makes the real-time order meaningless.
fn invalid_timing(operations: impl Iterator<Item = (u64, u64, Option<u64>)>) -> Option<String> {
    for (id, call_us, return_us) in operations {
        if let Some(returned) = return_us {
            if returned < call_us {
                return Some(format!("invalid history: op {id} returns at {returned}, before its call at {call_us}"));
            }
        }
    }
    None
}

fn invalid_report(reason: String, operations: usize) -> CheckReport {
    CheckReport { verdict: Verdict::Unknown { reason }, keys: 0, operations, fast_path_keys: 0, states_explored: 0 }
}

/// What checking one key (or one whole history) found.
enum PartResult {
    Linearizable {
        by_fast_path: bool,
        states: u64,
    },
    Illegal {
        violation: Violation,
        states: u64,
    },
    Undecided {
        reason: GiveUpReason,
        states: u64,
    },
    /// Not checked to the end: another key was already illegal and the caller asked to stop.
    Skipped,
}

/// One key's check: decided while preparing, or a search in progress.
enum KeyCheck<'a> {
    Decided(PartResult),
    Searching(Box<KeySearch<'a>>),
}

/// A key's compiled register, its operations and its search, kept between rounds.
struct KeySearch<'a> {
    key: String,
    model: RegisterModel,
    timings: Vec<Timing>,
    /// The operation each model step came from, for the report.
    included: Vec<&'a KvOperation>,
    search: Search,
    time_unit: TimeUnit,
}

impl<'a> KeyCheck<'a> {
    /// Compiles the key, then tries what needs no search: the unique-value construction and
    /// the impossible-observation test. Otherwise merges the writes nobody can observe and
    /// sets up the search.
    fn prepare(
        key: &str,
        operations: &[&'a KvOperation],
        initial_value: Option<&str>,
        options: &CheckOptions,
        limits: &Limits,
    ) -> KeyCheck<'a> {
        let mut model = RegisterModel::new(initial_value);
        let mut included: Vec<&KvOperation> = Vec::with_capacity(operations.len());
        let mut timings: Vec<Timing> = Vec::with_capacity(operations.len());
        for operation in operations {
            let indeterminate = operation.return_us.is_none();
            if let Some(step) = model.compile(&operation.function, indeterminate) {
                model.push(step);
                included.push(operation);
                timings.push(Timing { call: operation.call_us, returned: operation.return_us });
            }
        }
        let time_unit = options.time_unit;
        if options.fast_path && fast_path::linearizable_by_construction(&mut model, &timings) {
            return KeyCheck::Decided(PartResult::Linearizable { by_fast_path: true, states: 0 });
        }
        if let Some(impossible) = impossible::find(&model, &timings) {
            let describe = |local: usize| describe_kv(included[local], time_unit);
            return KeyCheck::Decided(explain_impossible(key, model, &timings, describe, impossible, limits));
        }
        model.merge_dead_states(MAX_LIVE_PREFIXES);
        unobserved::poison_unobserved_writes(&mut model);
        let search = Search::new(&mut model, &timings);
        KeyCheck::Searching(Box::new(KeySearch { key: key.to_owned(), model, timings, included, search, time_unit }))
    }

    /// The result if preparing already decided it.
    fn decided(&mut self) -> Option<PartResult> {
        match std::mem::replace(self, KeyCheck::Decided(PartResult::Skipped)) {
            KeyCheck::Decided(result) => Some(result),
            searching @ KeyCheck::Searching(_) => {
                *self = searching;
                None
            }
        }
    }

    /// Runs the search for at most `budget` iterations; the result once it is decided.
    fn advance(&mut self, limits: &Limits, budget: Option<u64>) -> Option<PartResult> {
        let searching = match self {
            KeyCheck::Decided(_) => return self.decided(),
            KeyCheck::Searching(searching) => searching,
        };
        let KeySearch { key, model, timings, included, search, time_unit } = &mut **searching;
        let outcome = match search.run(model, limits, budget) {
            Progress::Paused => return None,
            Progress::Finished(outcome) => outcome,
        };
        let states = search.states();
        Some(match outcome {
            SearchOutcome::Linearizable => PartResult::Linearizable { by_fast_path: false, states },
            SearchOutcome::GaveUp { reason } => PartResult::Undecided { reason, states },
            SearchOutcome::NotLinearizable(failure) => {
                let failure = longer_prefix(model, timings, limits).unwrap_or(failure);
                let describe = |local: usize| describe_kv(included[local], *time_unit);
                let mut violation = explain_failure(model, timings, &failure, describe);
                violation.key = Some(key.clone());
                PartResult::Illegal { violation, states }
            }
        })
    }
}

/// For the explanation only, once the verdict is known: a bounded search that abandons no
/// configuration early, so its longest linearizable prefix runs up to the operation that really
/// cannot be placed. `None` when it did not finish within its bounds.
fn longer_prefix(model: &mut RegisterModel, timings: &[Timing], limits: &Limits) -> Option<Failure> {
    let brief = Limits { max_states: Some(EXPLANATION_STATES), deadline: None, ..*limits };
    // Real values read better than the merged unobservable state.
    model.values.set_merging(false);
    let mut search = Search::with_pruning(model, timings, false);
    let outcome = search.run(model, &brief, Some(EXPLANATION_ITERATIONS));
    model.values.set_merging(true);
    match outcome {
        Progress::Finished(SearchOutcome::NotLinearizable(failure)) => Some(failure),
        Progress::Finished(SearchOutcome::Linearizable) => {
            debug_assert!(false, "linearizability: a search without pruning linearized an illegal key");
            None
        }
        Progress::Finished(SearchOutcome::GaveUp { .. }) | Progress::Paused => None,
    }
}

/// How many configurations, and iterations, a search may use to find a readable prefix for an
/// explanation once the verdict is known: the explanation's cost is bounded, and no part of
/// the verdict.
const EXPLANATION_STATES: u64 = 5_000;
const EXPLANATION_ITERATIONS: u64 = 50_000;

/// The report for a key with an impossible observation: the verdict is certain, and a short,
/// bounded search only looks for the longest prefix to show.
fn explain_impossible(
    key: &str,
    mut model: RegisterModel,
    timings: &[Timing],
    describe: impl Fn(usize) -> ExplainedOperation,
    impossible: impossible::ImpossibleObservation,
    limits: &Limits,
) -> PartResult {
    let brief = Limits { max_states: Some(EXPLANATION_STATES), deadline: None, ..*limits };
    let mut search = Search::with_pruning(&mut model, timings, false);
    let failure = match search.run(&mut model, &brief, Some(EXPLANATION_ITERATIONS)) {
        Progress::Finished(SearchOutcome::NotLinearizable(failure)) => failure,
        Progress::Finished(SearchOutcome::Linearizable) => {
            debug_assert!(false, "linearizability: impossible observation in a linearizable history");
            return PartResult::Linearizable { by_fast_path: false, states: search.states() };
        }
        Progress::Finished(SearchOutcome::GaveUp { .. }) | Progress::Paused => Failure {
            longest_prefix: Vec::new(),
            state_after_prefix: model.initial_state(),
            stuck: Some(impossible.operation),
        },
    };
    let states = search.states();
    let impossible_operation = describe(impossible.operation);
    let mut violation = explain_failure(&mut model, timings, &failure, describe);
    violation.key = Some(key.to_owned());
    violation.note = Some(format!("op {} {}", impossible_operation.id, impossible.reason));
    PartResult::Illegal { violation, states }
}

fn describe_kv(operation: &KvOperation, time_unit: TimeUnit) -> ExplainedOperation {
    let indeterminate = operation.return_us.is_none();
    let shown = |value: &str| describe_value(Some(value));
    let (call, result) = match &operation.function {
        KvFunction::Get { result } => {
            let result = match result {
                Observed::Value(value) => describe_value(value.as_deref()),
                Observed::Unknown => "?".to_owned(),
            };
            ("get".to_owned(), result)
        }
        KvFunction::Put { value } => (format!("put {}", shown(value)), "ok".to_owned()),
        KvFunction::Append { value } => (format!("append {}", shown(value)), "ok".to_owned()),
        KvFunction::Cas { expected, new, result } => {
            let result = match result {
                Observed::Value(swapped) => swapped.to_string(),
                Observed::Unknown => "?".to_owned(),
            };
            (format!("cas {} to {}", describe_value(expected.as_deref()), shown(new)), result)
        }
    };
    let result = if indeterminate { "?".to_owned() } else { result };
    explained(operation.id, operation.client, call, result, (operation.call_us, operation.return_us), time_unit)
}

fn check_whole(
    model: &mut impl Model,
    timings: &[Timing],
    limits: &Limits,
    describe: impl Fn(usize) -> ExplainedOperation,
) -> PartResult {
    let (outcome, states) = search::search(model, timings, limits);
    match outcome {
        SearchOutcome::Linearizable => PartResult::Linearizable { by_fast_path: false, states },
        SearchOutcome::GaveUp { reason } => PartResult::Undecided { reason, states },
        SearchOutcome::NotLinearizable(failure) => {
            PartResult::Illegal { violation: explain_failure(model, timings, &failure, describe), states }
        }
    }
}

/// How many distinct prefixes of observed values a key may track to merge the states no
/// observation can tell apart (16 bytes each at most); past it the key keeps them apart.
const MAX_LIVE_PREFIXES: usize = 4 << 20;
/// Histories with fewer operations are checked on the calling thread.
const PARALLEL_OPERATIONS_MIN: usize = 5_000;
/// How many of the prefix's last operations a report shows.
const PREFIX_TAIL_LENGTH: usize = 6;
/// How many overlapping operations a report shows at most.
const CONCURRENT_SHOWN: usize = 24;

/// Turns a failure (indices into the part's operations) into a report a person can read. Its
/// cost is linear in the part's operations, whatever the search did.
fn explain_failure(
    model: &mut impl Model,
    timings: &[Timing],
    failure: &Failure,
    describe: impl Fn(usize) -> ExplainedOperation,
) -> Violation {
    let mut in_prefix = vec![false; timings.len()];
    for operation in &failure.longest_prefix {
        in_prefix[*operation] = true;
    }
    let with_flag = |local: usize| ExplainedOperation { in_prefix: in_prefix[local], ..describe(local) };
    // The tail shows the last few placements plus the last one that changed the state, which
    // may lie much earlier when many reads followed it.
    let tail_start = failure.longest_prefix.len().saturating_sub(PREFIX_TAIL_LENGTH);
    let mut tail_positions: Vec<usize> = (tail_start..failure.longest_prefix.len()).collect();
    if let Some(position) = failure.longest_prefix.iter().rposition(|operation| !model.is_read_only(*operation)) {
        if position < tail_start {
            tail_positions.insert(0, position);
        }
    }
    let prefix_tail = tail_positions.iter().map(|position| with_flag(failure.longest_prefix[*position])).collect();
    let overlaps = |local: usize, call: u64, returned: Option<u64>| {
        let timing = timings[local];
        let starts_in_time = returned.map_or(true, |returned| timing.call <= returned);
        let still_running = timing.returned.map_or(true, |other_return| other_return >= call);
        starts_in_time && still_running
    };
    let mut concurrent: Vec<usize> = match failure.stuck {
        Some(stuck) => (0..timings.len())
            .filter(|local| *local != stuck && !in_prefix[*local])
            .filter(|local| overlaps(*local, timings[stuck].call, timings[stuck].returned))
            .collect(),
        None => (0..timings.len()).filter(|local| !in_prefix[*local]).collect(),
    };
    let anchor = failure.stuck.map_or(0, |stuck| timings[stuck].call);
    concurrent.sort_by_key(|local| (timings[*local].call.abs_diff(anchor), *local));
    concurrent.truncate(CONCURRENT_SHOWN);
    concurrent.sort_by_key(|local| (timings[*local].call, *local));
    Violation {
        key: None,
        operation_count: timings.len(),
        longest_prefix_length: failure.longest_prefix.len(),
        state_after_prefix: model.describe_state(failure.state_after_prefix),
        prefix_tail,
        stuck: failure.stuck.map(with_flag),
        concurrent: concurrent.into_iter().map(with_flag).collect(),
        other_illegal_keys: Vec::new(),
        note: None,
    }
}

/// Threads for `parts` parts: starting a thread costs tens of microseconds (and asking the OS
/// for the core count reads cgroup files), more than checking a small history takes, so small
/// histories stay on the calling thread. An explicit count is obeyed (tests vary it).
fn thread_count(parts: usize, operations: usize, options: &CheckOptions) -> usize {
    let threads = if parts < 2 {
        1
    } else if options.threads != 0 {
        options.threads
    } else if operations < PARALLEL_OPERATIONS_MIN {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |count| count.get())
    };
    threads.clamp(1, parts.max(1))
}

/// Runs `work(index)` for every index in `0..count` on `threads` threads. Results go through
/// the caller's own slots, so their order never depends on the threads.
fn for_each_in_parallel(count: usize, threads: usize, work: impl Fn(usize) + Sync) {
    let next = AtomicUsize::new(0);
    let worker = || loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        if index >= count {
            break;
        }
        work(index);
    };
    if threads <= 1 || count <= 1 {
        worker();
    } else {
        std::thread::scope(|scope| {
            for _ in 0..threads.min(count) {
                scope.spawn(worker);
            }
        });
    }
}

fn describe_give_up(reason: &GiveUpReason, location: &str) -> String {
    match reason {
        GiveUpReason::Deadline => format!("time limit reached{location}"),
        GiveUpReason::StateLimit { states } => {
            format!("state limit reached ({states} configurations){location}")
        }
        GiveUpReason::MemoryLimit { bytes } => {
            format!(
                "memory limit reached ({} MiB held by the search: memo, values and states, lists){location}",
                bytes / (1 << 20)
            )
        }
    }
}

/// Combines part results, in part order, into one report.
fn merge(names: &[&str], results: Vec<PartResult>, operations: usize) -> CheckReport {
    let mut fast_path_keys = 0;
    let mut states_explored = 0;
    let mut first_violation: Option<Violation> = None;
    let mut other_illegal_keys = Vec::new();
    let mut undecided: Vec<String> = Vec::new();
    for (name, result) in names.iter().zip(results) {
        match result {
            PartResult::Linearizable { by_fast_path, states } => {
                fast_path_keys += usize::from(by_fast_path);
                states_explored += states;
            }
            PartResult::Illegal { violation, states } => {
                states_explored += states;
                if first_violation.is_none() {
                    first_violation = Some(violation);
                } else {
                    other_illegal_keys.push(format!("{name:?}"));
                }
            }
            PartResult::Undecided { reason, states } => {
                states_explored += states;
                undecided.push(describe_give_up(&reason, &format!(" on {name:?}")));
            }
            PartResult::Skipped => {}
        }
    }
    let verdict = match first_violation {
        Some(mut violation) => {
            violation.other_illegal_keys = other_illegal_keys;
            Verdict::Illegal(violation)
        }
        None if !undecided.is_empty() => {
            let more =
                if undecided.len() > 1 { format!(" (and {} more parts)", undecided.len() - 1) } else { String::new() };
            Verdict::Unknown { reason: format!("{}{more}", undecided[0]) }
        }
        None => Verdict::Ok,
    };
    CheckReport { verdict, keys: names.len(), operations, fast_path_keys, states_explored }
}

#[cfg(test)]
mod tests {
    use super::generate::{generate, GeneratorSettings};
    use super::*;

    fn operation(id: u64, function: KvFunction, call_us: u64, return_us: Option<u64>) -> KvOperation {
        KvOperation { id, client: id, key: "k".to_owned(), function, call_us, return_us }
    }

    fn get(value: &str) -> KvFunction {
        KvFunction::Get { result: Observed::Value(Some(value.to_owned())) }
    }

    fn put(value: &str) -> KvFunction {
        KvFunction::Put { value: value.to_owned() }
    }

    #[test]
    fn a_violation_names_the_stuck_read_and_its_prefix() {
        // Knossos's rethink-fail-minimal: 0 is written, then a read of 3 overlaps a write of 4.
        let history = KvHistory {
            initial_value: None,
            operations: vec![
                operation(1, put("0"), 0, Some(1)),
                operation(2, get("3"), 2, Some(4)),
                operation(3, put("4"), 3, Some(5)),
                operation(4, get("4"), 6, Some(7)),
            ],
        };
        let Verdict::Illegal(violation) = check_kv(&history, &CheckOptions::default()) else {
            panic!("expected a violation");
        };
        assert_eq!(violation.key.as_deref(), Some("k"));
        assert_eq!(violation.stuck.as_ref().map(|operation| operation.id), Some(2));
        assert_eq!(violation.longest_prefix_length, 2);
        let text = violation.to_string();
        assert!(text.contains("op 2 client 2: get -> \"3\""), "{text}");
        assert!(text.contains("longest linearizable prefix: 2 operations"), "{text}");
    }

    #[test]
    fn bounds_give_unknown_with_the_bound_named() {
        let settings = GeneratorSettings {
            operations: 20_000,
            keys: 1,
            clients: 16,
            unique_values: false,
            max_stretch_us: 60,
            ..GeneratorSettings::default()
        };
        let history = generate(&settings);
        let options = CheckOptions { fast_path: false, max_states_per_key: Some(10), ..CheckOptions::default() };
        match check_kv(&history, &options) {
            Verdict::Unknown { reason } => assert!(reason.contains("state limit"), "{reason}"),
            other => panic!("expected unknown, got {other}"),
        }
        let options = CheckOptions { fast_path: false, time_limit: Some(Duration::ZERO), ..CheckOptions::default() };
        match check_kv(&history, &options) {
            Verdict::Unknown { reason } => assert!(reason.contains("time limit"), "{reason}"),
            other => panic!("expected unknown, got {other}"),
        }
        let options =
            CheckOptions { fast_path: false, max_memory_bytes_per_key: Some(1024), ..CheckOptions::default() };
        match check_kv(&history, &options) {
            Verdict::Unknown { reason } => assert!(reason.contains("memory limit"), "{reason}"),
            other => panic!("expected unknown, got {other}"),
        }
    }

    #[test]
    fn an_operation_returning_before_its_call_is_rejected() {
        let history = KvHistory { initial_value: None, operations: vec![operation(7, put("a"), 10, Some(5))] };
        match check_kv(&history, &CheckOptions::default()) {
            Verdict::Unknown { reason } => {
                assert!(reason.contains("op 7 returns at 5"), "{reason}")
            }
            other => panic!("expected unknown, got {other}"),
        }
    }

    #[test]
    fn indeterminate_operations_may_happen_or_not() {
        // A put that never returned may explain a later read, or be ignored by it.
        let seen = KvHistory {
            initial_value: None,
            operations: vec![operation(1, put("a"), 0, None), operation(2, get("a"), 5, Some(6))],
        };
        assert_eq!(check_kv(&seen, &CheckOptions::default()), Verdict::Ok);
        let ignored = KvHistory {
            initial_value: None,
            operations: vec![
                operation(1, put("a"), 0, None),
                operation(2, KvFunction::Get { result: Observed::Value(None) }, 5, Some(6)),
            ],
        };
        assert_eq!(check_kv(&ignored, &CheckOptions::default()), Verdict::Ok);
        // But it takes effect at most once: a, then b, then a again is impossible.
        let twice = KvHistory {
            initial_value: None,
            operations: vec![
                operation(1, put("a"), 0, None),
                operation(2, get("a"), 5, Some(6)),
                operation(3, put("b"), 7, Some(8)),
                operation(4, get("a"), 9, Some(10)),
            ],
        };
        assert!(matches!(check_kv(&twice, &CheckOptions::default()), Verdict::Illegal(_)));
    }

    #[test]
    fn mutex_and_transactions_are_checked_whole() {
        let mutex = MutexHistory {
            operations: vec![
                MutexOperation { id: 1, client: 1, function: MutexFunction::Acquire, call_us: 0, return_us: Some(1) },
                MutexOperation { id: 2, client: 2, function: MutexFunction::Acquire, call_us: 2, return_us: Some(3) },
            ],
        };
        assert!(matches!(check_mutex(&mutex, &CheckOptions::default()).verdict, Verdict::Illegal(_)));
        let read =
            |register: &str, value: i64| RegisterAccess::Read { register: register.to_owned(), value: Some(value) };
        let write = |register: &str, value: i64| RegisterAccess::Write { register: register.to_owned(), value };
        let transactions = MultiRegisterHistory {
            initial_value: 0,
            operations: vec![
                TransactionOperation {
                    id: 1,
                    client: 1,
                    accesses: vec![write("x", 1), write("y", 1)],
                    call_us: 0,
                    return_us: Some(1),
                },
                // Sees x's new value with y's old one: a torn read.
                TransactionOperation {
                    id: 2,
                    client: 2,
                    accesses: vec![read("x", 1), read("y", 0)],
                    call_us: 0,
                    return_us: Some(2),
                },
            ],
        };
        assert!(matches!(check_multi_register(&transactions, &CheckOptions::default()).verdict, Verdict::Illegal(_)));
    }
}
