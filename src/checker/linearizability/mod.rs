//! Linearizability checking of key-value, multi-register and mutex histories.
//!
//! Owns the public API (`check_kv`, `check_multi_register`, `check_mutex`), the split of a
//! key-value history into independent keys (P-compositionality), the parallel, deterministic
//! checking of those keys, and the choice between the unique-value fast path and the general
//! search. Must never import the simulated world, the system under test or the workload: it is
//! a pure library over histories, usable outside the simulation. It may use OS threads (it runs
//! outside the simulation), but its verdict and report never depend on thread timing, except
//! that a deadline may turn a verdict into `Unknown`.

pub mod explain;
mod fast_path;
pub mod formats;
pub mod generate;
pub mod history;
mod impossible;
pub(crate) mod migsim_ops;
mod model;
mod search;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use explain::{render_svg, ExplainedOperation, Violation};
pub use history::{
    KvFunction, KvHistory, KvOperation, MultiRegisterHistory, MutexFunction, MutexHistory, MutexOperation, Observed,
    RegisterAccess, TransactionOperation,
};
use model::{describe_value, Model, MultiRegisterModel, MutexModel, RegisterModel};
use search::{Failure, GiveUpReason, Limits, SearchOutcome, Timing};

/// Bounds and switches for one check.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// Wall-clock budget for the whole check; past it, unfinished keys are `Unknown`.
    pub time_limit: Option<Duration>,
    /// Most configurations the search may remember for one key (or one whole history).
    pub max_states_per_key: Option<u64>,
    /// Most bytes the search's memo table may hold for one key (an estimate, ±10 %).
    pub max_memory_bytes_per_key: Option<u64>,
    /// Stop once a violation is found; the reported key is still the first illegal key in key
    /// order, whatever the threads' timing.
    pub stop_at_first_violation: bool,
    /// Worker threads for keys; 0 means one per available core for histories of 5,000
    /// operations or more, and the calling thread for smaller ones.
    pub threads: usize,
    /// Try the unique-value construction before searching (on by default; off to measure).
    pub fast_path: bool,
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
    let deadline = options.time_limit.map(|limit| started + limit);
    let operation_count = history.operations.len();
    let results = run_in_parallel(keys.len(), operation_count, options, |index, first_violation| {
        let (key, operations) = &keys[index];
        let limits = Limits {
            deadline,
            max_states: options.max_states_per_key,
            max_memory_bytes: options.max_memory_bytes_per_key,
            cancel: options.stop_at_first_violation.then_some((first_violation, index)),
        };
        check_register_key(key, operations, history.initial_value.as_deref(), options.fast_path, &limits)
    });
    let names: Vec<&str> = keys.iter().map(|(key, _)| *key).collect();
    merge(&names, results, history.operations.len())
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
            operation.call_us,
            operation.return_us,
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
            operation.call_us,
            operation.return_us,
        )
    };
    let result = check_whole(&mut model, &timings, &limits, describe);
    merge(&["mutex"], vec![result], history.operations.len())
}

fn whole_history_limits(options: &CheckOptions, started: Instant) -> Limits<'static> {
    Limits {
        deadline: options.time_limit.map(|limit| started + limit),
        max_states: options.max_states_per_key,
        max_memory_bytes: options.max_memory_bytes_per_key,
        cancel: None,
    }
}

fn explained(
    id: u64,
    client: u64,
    call: String,
    result: String,
    call_us: u64,
    return_us: Option<u64>,
) -> ExplainedOperation {
    ExplainedOperation { id, client, call, result, call_us, return_us, in_prefix: false }
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
    /// Not checked: an earlier key was already illegal and the caller asked to stop.
    Skipped,
}

fn check_register_key(
    key: &str,
    operations: &[&KvOperation],
    initial_value: Option<&str>,
    use_fast_path: bool,
    limits: &Limits<'_>,
) -> PartResult {
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
    if use_fast_path && fast_path::linearizable_by_construction(&mut model, &timings) {
        return PartResult::Linearizable { by_fast_path: true, states: 0 };
    }
    let describe = |local: usize| describe_kv(included[local]);
    if let Some(impossible) = impossible::find(&model, &timings) {
        // The verdict is certain; a short search only looks for a readable prefix.
        let brief = Limits { max_states: Some(EXPLANATION_STATES), ..*limits };
        let (outcome, states) = search::search(&mut model, &timings, &brief);
        let failure = match outcome {
            SearchOutcome::NotLinearizable(failure) => failure,
            SearchOutcome::Linearizable => {
                debug_assert!(false, "linearizability: impossible observation in a linearizable history");
                return PartResult::Linearizable { by_fast_path: false, states };
            }
            SearchOutcome::GaveUp { .. } => Failure {
                longest_prefix: Vec::new(),
                state_after_prefix: model.initial_state(),
                stuck: Some(impossible.operation),
            },
        };
        let mut violation = explain_failure(&mut model, &timings, &failure, describe);
        violation.key = Some(key.to_owned());
        let impossible_operation = describe(impossible.operation);
        violation.note = Some(format!("op {} {}", impossible_operation.id, impossible.reason));
        return PartResult::Illegal { violation, states };
    }
    let (outcome, states) = search::search(&mut model, &timings, limits);
    match outcome {
        SearchOutcome::Linearizable => PartResult::Linearizable { by_fast_path: false, states },
        SearchOutcome::GaveUp { reason } => PartResult::Undecided { reason, states },
        SearchOutcome::NotLinearizable(failure) => {
            let mut violation = explain_failure(&mut model, &timings, &failure, describe);
            violation.key = Some(key.to_owned());
            PartResult::Illegal { violation, states }
        }
    }
}

fn describe_kv(operation: &KvOperation) -> ExplainedOperation {
    let indeterminate = operation.return_us.is_none();
    let (call, result) = match &operation.function {
        KvFunction::Get { result } => {
            let result = match result {
                Observed::Value(value) => describe_value(value.as_deref()),
                Observed::Unknown => "?".to_owned(),
            };
            ("get".to_owned(), result)
        }
        KvFunction::Put { value } => (format!("put {value:?}"), "ok".to_owned()),
        KvFunction::Append { value } => (format!("append {value:?}"), "ok".to_owned()),
        KvFunction::Cas { expected, new, result } => {
            let result = match result {
                Observed::Value(swapped) => swapped.to_string(),
                Observed::Unknown => "?".to_owned(),
            };
            (format!("cas {} to {new:?}", describe_value(expected.as_deref())), result)
        }
    };
    let result = if indeterminate { "?".to_owned() } else { result };
    explained(operation.id, operation.client, call, result, operation.call_us, operation.return_us)
}

fn check_whole(
    model: &mut impl Model,
    timings: &[Timing],
    limits: &Limits<'_>,
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

/// How many configurations the search may use to find a prefix for an explanation when the
/// verdict is already known.
const EXPLANATION_STATES: u64 = 100_000;
/// Histories with fewer operations are checked on the calling thread.
const PARALLEL_OPERATIONS_MIN: usize = 5_000;
/// How many of the prefix's last operations a report shows.
const PREFIX_TAIL_LENGTH: usize = 6;
/// How many overlapping operations a report shows at most.
const CONCURRENT_SHOWN: usize = 24;

/// Turns a failure (indices into the part's operations) into a report a person can read.
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

/// Runs `check(index, first_violation)` for every part on worker threads; results come back in
/// part order. With `stop_at_first_violation`, parts after the first illegal one are skipped or
/// cancelled, but every part before it is finished, so the first illegal part is deterministic.
fn run_in_parallel<F>(parts: usize, operations: usize, options: &CheckOptions, check: F) -> Vec<PartResult>
where
    F: Fn(usize, &AtomicUsize) -> PartResult + Sync,
{
    let first_violation = AtomicUsize::new(usize::MAX);
    let next_part = AtomicUsize::new(0);
    // Starting a thread costs tens of microseconds (and asking the OS for the core count reads
    // cgroup files): more than checking a small history takes. Small histories stay on this one.
    // An explicit thread count is obeyed (tests use it to vary the timing).
    let threads = if parts < 2 {
        1
    } else if options.threads != 0 {
        options.threads
    } else if operations < PARALLEL_OPERATIONS_MIN {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |count| count.get())
    };
    let results: Mutex<Vec<Option<PartResult>>> = Mutex::new((0..parts).map(|_| None).collect());
    let worker = || loop {
        let index = next_part.fetch_add(1, Ordering::Relaxed);
        if index >= parts {
            break;
        }
        let result = if options.stop_at_first_violation && first_violation.load(Ordering::Relaxed) < index {
            PartResult::Skipped
        } else {
            check(index, &first_violation)
        };
        if let PartResult::Illegal { .. } = result {
            first_violation.fetch_min(index, Ordering::Relaxed);
        }
        if let Ok(mut slots) = results.lock() {
            slots[index] = Some(result);
        }
    };
    let workers = threads.clamp(1, parts.max(1));
    if workers == 1 {
        worker();
    } else {
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(worker);
            }
        });
    }
    let slots = results.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
    slots.into_iter().map(|slot| slot.unwrap_or(PartResult::Skipped)).collect()
}

fn describe_give_up(reason: &GiveUpReason, location: &str) -> String {
    match reason {
        GiveUpReason::Deadline => format!("time limit reached{location}"),
        GiveUpReason::StateLimit { states } => {
            format!("state limit reached ({states} configurations){location}")
        }
        GiveUpReason::MemoryLimit { bytes } => {
            format!("memory limit reached ({} MiB of memo table){location}", bytes / (1 << 20))
        }
        GiveUpReason::Cancelled => format!("cancelled{location}"),
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
                if reason != GiveUpReason::Cancelled {
                    undecided.push(describe_give_up(&reason, &format!(" on {name:?}")));
                }
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
