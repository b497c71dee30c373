//! The host side of a run: each seed on a fresh OS thread with a fresh madsim runtime, seed
//! ranges on every core, and the turning of a panicked simulation into a verdict. Nothing here may
//! feed back into a simulation: threads, wall clocks and progress callbacks stay on this side.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Instant;

use super::simulation::simulate;
use super::{check, migration_reports, operation_reports, RunOptions, RunPlan, SeedOutcome, Verdict, Violation};
use crate::trace::{EventKind, SharedTrace, TraceLevel};
use crate::world::NetworkStats;

/// Where the simulation panicked, and what it said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PanicReport {
    pub message: String,
    /// `file:line:column` of the panic, when the panic hook saw it.
    pub location: String,
    /// Model time at the panic, when the panic hook saw it.
    pub at_us: Option<u64>,
}

impl std::fmt::Display for PanicReport {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.location.is_empty() {
            write!(formatter, "{}", self.message)
        } else {
            write!(formatter, "{} (at {})", self.message, self.location)
        }
    }
}

thread_local! {
    /// The last panic on this thread, as the hook saw it (with its location, which the payload lacks).
    static LAST_PANIC: std::cell::RefCell<Option<PanicReport>> = const { std::cell::RefCell::new(None) };
}

/// The name of every thread a seed runs on; the panic hook keeps quiet on them, since the
/// panic becomes the seed's verdict instead of a line on stderr.
const SEED_THREAD_PREFIX: &str = "seed-";

/// Installs, once per process, a panic hook that remembers each panic's message and location on
/// its thread, and prints it as usual unless the thread runs a seed.
fn install_panic_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = panic_message(info.payload());
            let location =
                info.location().map_or(String::new(), |at| format!("{}:{}:{}", at.file(), at.line(), at.column()));
            let at_us = crate::world::clock::try_now_us();
            LAST_PANIC.with(|last| *last.borrow_mut() = Some(PanicReport { message, location, at_us }));
            let on_seed_thread = std::thread::current().name().is_some_and(|name| name.starts_with(SEED_THREAD_PREFIX));
            if !on_seed_thread {
                previous(info);
            }
        }));
    });
}

/// Runs `body` inside a fresh madsim runtime seeded with `seed`, on a fresh OS thread (madsim and
/// some crates keep per-thread state that differs between runs on one thread). A panic inside the
/// simulation comes back as `Err` with its message and location.
pub fn in_fresh_runtime<Body, Fut, T>(seed: u64, body: Body) -> Result<T, PanicReport>
where
    Body: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    install_panic_hook();
    let thread =
        std::thread::Builder::new()
            .name(format!("{SEED_THREAD_PREFIX}{seed}"))
            // Deep async state machines of the system under test live on this thread's stack.
            .stack_size(64 << 20)
            .spawn(move || {
                let runtime = madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
                match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runtime.block_on(body()))) {
                    Ok(value) => Ok(value),
                    Err(payload) => Err(LAST_PANIC.with(|last| last.borrow_mut().take()).unwrap_or_else(|| {
                        PanicReport { message: panic_message(payload.as_ref()), location: String::new(), at_us: None }
                    })),
                }
            })
            .map_err(|error| PanicReport {
                message: format!("could not start a thread for seed {seed}: {error}"),
                location: String::new(),
                at_us: None,
            })?;
    thread.join().unwrap_or_else(|payload| {
        Err(PanicReport { message: panic_message(payload.as_ref()), location: String::new(), at_us: None })
    })
}

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "panic with a non-text payload".to_string()
    }
}

/// Runs one seed of a plan (twice when checking determinism).
pub fn run_seed(plan: &RunPlan, seed: u64, options: RunOptions) -> SeedOutcome {
    let first = run_once(plan, seed, options.trace);
    if !options.check_determinism {
        return first;
    }
    let second = run_once(plan, seed, options.trace);
    if first.trace_hash != second.trace_hash {
        return SeedOutcome {
            verdict: Verdict::Nondeterministic {
                first_hash: format!("{:016x}", first.trace_hash),
                second_hash: format!("{:016x}", second.trace_hash),
            },
            ..first
        };
    }
    first
}

fn run_once(plan: &RunPlan, seed: u64, trace: TraceLevel) -> SeedOutcome {
    let started = Instant::now();
    let owned = plan.clone();
    // The world's trace, kept here as well, so a panicked run still has its events and hash.
    let slot: Arc<Mutex<Option<SharedTrace>>> = Arc::new(Mutex::new(None));
    let world_slot = slot.clone();
    let result = in_fresh_runtime(seed, move || simulate(owned, seed, trace, world_slot));
    let wall = started.elapsed();
    match result {
        Ok(record) => {
            let judgement = check(plan, &record.events);
            let migrations = migration_reports(plan, &record.events);
            let operations = operation_reports(plan, &record.events);
            let verdict = if !judgement.violations.is_empty() {
                Verdict::Fail { violations: judgement.violations }
            } else if !judgement.inconclusive.is_empty() {
                Verdict::Inconclusive { reasons: judgement.inconclusive }
            } else {
                Verdict::Pass
            };
            SeedOutcome {
                seed,
                trace_hash: record.trace_hash,
                verdict,
                events_recorded: record.events_recorded,
                network: record.network,
                disks: record.disks,
                end_us: record.end_us,
                wall,
                events: record.events,
                migrations,
                operations,
            }
        }
        Err(panic) => {
            let mut outcome = panicked(seed, panic, &slot, wall);
            outcome.migrations = migration_reports(plan, &outcome.events);
            outcome.operations = operation_reports(plan, &outcome.events);
            outcome
        }
    }
}

/// The outcome of a seed whose simulation panicked: a failing verdict that names the panic, and
/// the trace up to it (with the panic as its last event), whose hash is as real as any run's.
fn panicked(
    seed: u64,
    panic: PanicReport,
    slot: &Mutex<Option<SharedTrace>>,
    wall: std::time::Duration,
) -> SeedOutcome {
    let shared = slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
    let (trace_hash, events_recorded, end_us, events) = match shared {
        Some(shared) => {
            let mut sink = shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            // The panic is the run's last event, at the model time it happened.
            let at_us = panic.at_us.unwrap_or(0).max(sink.last_at_us());
            let kind = EventKind::Panic { message: panic.message.clone(), location: panic.location.clone() };
            sink.record(at_us, None, 0, kind);
            (sink.hash(), sink.events_recorded(), at_us, sink.take_events())
        }
        None => (0, 0, 0, Vec::new()),
    };
    SeedOutcome {
        seed,
        trace_hash,
        verdict: Verdict::Fail {
            violations: vec![Violation {
                checker: "panic".into(),
                message: format!("the simulation panicked at {}: {panic}", crate::units::format_us(end_us)),
            }],
        },
        events_recorded,
        network: NetworkStats::default(),
        disks: Vec::new(),
        end_us,
        wall,
        events,
        migrations: Vec::new(),
        operations: Vec::new(),
    }
}

/// Runs every seed in `seeds` on `jobs` host threads (each seed on its own fresh thread), calling
/// `progress` after each. Results come back ordered by seed, whatever the thread timing.
pub fn run_seeds(
    plan: &RunPlan,
    seeds: std::ops::Range<u64>,
    jobs: usize,
    options: RunOptions,
    progress: &(dyn Fn(&SeedOutcome) + Sync),
) -> Vec<SeedOutcome> {
    let next = AtomicU64::new(seeds.start);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= seeds.end {
                    break;
                }
                let mut outcome = run_seed(plan, seed, options);
                progress(&outcome);
                if options.trace == TraceLevel::History && outcome.verdict == Verdict::Pass {
                    // A passing seed's events are not needed after checking; keep memory flat.
                    outcome.events = Vec::new();
                }
                results.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(outcome);
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
    results.sort_by_key(|outcome| outcome.seed);
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sut::ping::PingMessage;
    use crate::world::{NetworkConfig, NodeContext, Program, Sim, WorldConfig};

    /// A world whose one node records a note, waits, and fails an assertion.
    fn doomed(seed: u64) -> SeedOutcome {
        let slot: Arc<Mutex<Option<SharedTrace>>> = Arc::new(Mutex::new(None));
        let world_slot = slot.clone();
        let started = Instant::now();
        let result = in_fresh_runtime(seed, move || async move {
            let sim: Sim<PingMessage> = Sim::new(WorldConfig::new(seed, NetworkConfig::default()));
            *world_slot.lock().unwrap() = Some(sim.trace());
            let program: Program<PingMessage> = Arc::new(|context: NodeContext<PingMessage>| {
                Box::pin(async move {
                    let draw = context.with_rng(|rng| rand::Rng::gen::<u32>(rng));
                    context.record(EventKind::Note { text: format!("about to fail ({draw})") });
                    context.sleep_us(250).await;
                    let lsn = 7;
                    assert!(lsn < 5, "target_never_appends_past_a_gap: LSN {lsn}");
                })
            });
            sim.add_node("n0", program);
            crate::world::clock::sleep_us(1_000).await;
            sim.finish()
        });
        match result {
            Ok(_) => panic!("the assertion did not fire"),
            Err(panic) => panicked(seed, panic, &slot, started.elapsed()),
        }
    }

    #[test]
    fn a_panic_is_a_failing_verdict_with_the_trace_up_to_it() {
        let outcome = doomed(3);
        let Verdict::Fail { violations } = &outcome.verdict else { panic!("{:?}", outcome.verdict) };
        assert_eq!(violations[0].checker, "panic");
        let message = &violations[0].message;
        assert!(
            message.starts_with(
                "the simulation panicked at 250us: target_never_appends_past_a_gap: LSN 7 (at src/runner/host.rs:"
            ),
            "{message}"
        );
        let kinds: Vec<&str> = outcome.events.iter().map(|event| event.kind.name()).collect();
        assert_eq!(kinds, vec!["node_start", "panic"], "the history-level trace up to the panic, then the panic");
        assert_ne!(outcome.trace_hash, 0);
        assert_eq!(outcome.trace_hash, doomed(3).trace_hash, "a panicked run replays with the same hash");
        assert_ne!(outcome.trace_hash, doomed(4).trace_hash);
    }
}
