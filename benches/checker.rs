//! Benchmarks of the linearizability checker.
//!
//! 1. Every corpus history (tests/histories, or `MIGSIM_HISTORIES`): criterion measures
//!    each file's check, and a table compares its median with Porcupine's time on the same
//!    file (TIMINGS.tsv), plus the whole corpus parsed and checked.
//! 2. Generated histories of 1k to 1M operations over 10 / 1,000 / 100,000 keys, 8 and 64
//!    clients, 10 % indeterminate operations, with unique written values (fast path) and with
//!    reused values (general search): criterion for the small ones, one timed run with peak
//!    heap (a counting allocator) for every size.
//! 3. Append-heavy histories (`GeneratorSettings::append_heavy`): 10 keys, 10 / 20 / 50 clients,
//!    70 % appends, timed-out writes never applied, with and without a stale read planted late in
//!    the last key; checking every key and stopping at the first illegal one.
//! 4. The memory bound: what a check stopped by it reports, against the heap it really used.
//!
//! Run: `cargo bench --bench checker` (a few minutes). `CHECKER_BENCH_MAX_OPS=100000` skips
//! the 1M runs; `CHECKER_BENCH_SKIP_CRITERION=1` prints only the tables;
//! `CHECKER_BENCH_ONLY=append-heavy|generated|memory` prints one table. For profiling,
//! `CHECKER_BENCH_PROFILE=ops,keys,clients,illegal,stop,repeats` (append-heavy) and
//! `CHECKER_BENCH_PROFILE_GENERATED=ops,keys,clients,unique,repeats` check one case repeatedly.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use migsim::checker::linearizability::formats::{read_file, Format, ParsedHistory};
use migsim::checker::linearizability::generate::{generate, GeneratorSettings};
use migsim::checker::linearizability::{check_kv_report, CheckOptions, KvHistory, Verdict};

/// Counts live heap bytes and their peak, so a run's memory can be reported.
struct CountingAllocator;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);
static PEAK_BYTES: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let pointer = System.alloc(layout);
        if !pointer.is_null() {
            let live = LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK_BYTES.fetch_max(live, Ordering::Relaxed);
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        System.dealloc(pointer, layout);
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let moved = System.realloc(pointer, layout, new_size);
        if !moved.is_null() {
            if new_size >= layout.size() {
                let live = LIVE_BYTES.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size - layout.size();
                PEAK_BYTES.fetch_max(live, Ordering::Relaxed);
            } else {
                LIVE_BYTES.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn histories_directory() -> PathBuf {
    match std::env::var_os("MIGSIM_HISTORIES") {
        Some(directory) => PathBuf::from(directory),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/histories"),
    }
}

fn corpus(directory: &Path) -> Vec<(String, ParsedHistory)> {
    let table = std::fs::read_to_string(directory.join("EXPECTED.tsv"))
        .unwrap_or_else(|error| panic!("{}: {error}", directory.join("EXPECTED.tsv").display()));
    table
        .lines()
        .skip(1)
        .filter_map(|line| line.split('\t').next())
        .filter(|file| !file.is_empty())
        .map(|file| {
            let parsed = read_file(&directory.join(file), Format::Auto, None).unwrap_or_else(|error| panic!("{error}"));
            (file.to_owned(), parsed)
        })
        .collect()
}

/// Porcupine's fastest time per file (kv files have a partitioned and an unpartitioned row).
fn porcupine_seconds(directory: &Path) -> HashMap<String, f64> {
    let mut times: HashMap<String, f64> = HashMap::new();
    let table = std::fs::read_to_string(directory.join("TIMINGS.tsv")).unwrap_or_default();
    for line in table.lines().skip(1) {
        let columns: Vec<&str> = line.split('\t').collect();
        if let [file, seconds, ..] = columns.as_slice() {
            if let Ok(seconds) = seconds.parse::<f64>() {
                let entry = times.entry((*file).to_owned()).or_insert(f64::MAX);
                *entry = entry.min(seconds);
            }
        }
    }
    times
}

/// Median over batches of one call's time; batches last at least ~2 ms.
fn median_seconds(mut run: impl FnMut()) -> f64 {
    let started = Instant::now();
    run();
    let once = started.elapsed().as_secs_f64().max(1e-7);
    let per_batch = ((0.002 / once).ceil() as usize).clamp(1, 100_000);
    let mut samples: Vec<f64> = (0..15)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..per_batch {
                run();
            }
            started.elapsed().as_secs_f64() / per_batch as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn verdict_name(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::Ok => "ok",
        Verdict::Illegal(_) => "illegal",
        Verdict::Unknown { .. } => "unknown",
    }
}

fn corpus_table(directory: &Path, histories: &[(String, ParsedHistory)], options: &CheckOptions) {
    let porcupine = porcupine_seconds(directory);
    println!("\n## Shared corpus (check only; median)\n");
    println!("| file | ops | verdict | migsim µs | Porcupine µs | migsim / Porcupine |");
    println!("|---|---:|---|---:|---:|---:|");
    let mut total = 0.0;
    let mut slower = Vec::new();
    for (file, parsed) in histories {
        let verdict = parsed.history.check(options).verdict;
        let seconds = median_seconds(|| {
            std::hint::black_box(parsed.history.check(options));
        });
        total += seconds;
        let (reference, ratio) = match porcupine.get(file) {
            Some(reference) => (format!("{:.1}", reference * 1e6), format!("{:.2}", seconds / reference)),
            None => ("-".to_owned(), "-".to_owned()),
        };
        if porcupine.get(file).is_some_and(|reference| seconds > *reference) {
            slower.push(file.clone());
        }
        println!(
            "| {file} | {} | {} | {:.1} | {reference} | {ratio} |",
            parsed.history.operation_count(),
            verdict_name(&verdict),
            seconds * 1e6
        );
    }
    println!("\nSum of per-file medians (check only): {:.3} ms", total * 1e3);
    let whole = median_seconds(|| {
        for (file, _) in histories {
            let parsed = read_file(&directory.join(file), Format::Auto, None).unwrap_or_else(|error| panic!("{error}"));
            std::hint::black_box(parsed.history.check(options));
        }
    });
    println!("Whole corpus, read + parse + check, one thread of files: {:.3} ms", whole * 1e3);
    println!("Files slower than Porcupine: {}", if slower.is_empty() { "none".to_owned() } else { slower.join(", ") });
}

struct Case {
    operations: usize,
    keys: usize,
    clients: usize,
    unique_values: bool,
}

fn settings(case: &Case) -> GeneratorSettings {
    GeneratorSettings {
        seed: 42,
        operations: case.operations,
        keys: case.keys,
        clients: case.clients,
        indeterminate_fraction: 0.1,
        unique_values: case.unique_values,
        weights: [50, 30, 20, 0],
        // Intervals long enough that about `clients` operations overlap.
        max_stretch_us: 3 * case.clients as u64,
        ..GeneratorSettings::default()
    }
}

fn cases(max_operations: usize) -> Vec<Case> {
    let mut cases = Vec::new();
    for operations in [1_000, 10_000, 100_000, 1_000_000] {
        if operations > max_operations {
            continue;
        }
        for keys in [10, 1_000, 100_000] {
            for clients in [8, 64] {
                for unique_values in [true, false] {
                    cases.push(Case { operations, keys, clients, unique_values });
                }
            }
        }
    }
    cases
}

fn generated_table(max_operations: usize, options: &CheckOptions) {
    println!("\n## Generated histories (10 % indeterminate; one run each; peak = heap above the history)\n");
    println!("| ops | keys | clients | values | verdict | fast-path keys | states | seconds | peak MiB |");
    println!("|---:|---:|---:|---|---|---:|---:|---:|---:|");
    for case in cases(max_operations) {
        let history: KvHistory = generate(&settings(&case));
        let baseline = LIVE_BYTES.load(Ordering::Relaxed);
        PEAK_BYTES.store(baseline, Ordering::Relaxed);
        let started = Instant::now();
        let report = check_kv_report(&history, options);
        let seconds = started.elapsed().as_secs_f64();
        let peak = PEAK_BYTES.load(Ordering::Relaxed).saturating_sub(baseline);
        println!(
            "| {} | {} | {} | {} | {} | {} / {} | {} | {:.3} | {:.1} |",
            case.operations,
            case.keys,
            case.clients,
            if case.unique_values { "unique" } else { "reused" },
            verdict_name(&report.verdict),
            report.fast_path_keys,
            report.keys,
            report.states_explored,
            seconds,
            peak as f64 / f64::from(1 << 20)
        );
    }
}

/// One append-heavy case: `clients` clients, `keys` keys, and whether a stale read is planted
/// late in the last key (last in key order, the worst place for a check that goes key by key).
struct AppendCase {
    operations: usize,
    keys: usize,
    clients: usize,
    illegal: bool,
}

fn append_cases() -> Vec<AppendCase> {
    let mut cases = Vec::new();
    for operations in [2_000, 20_000] {
        for clients in [10, 20, 50] {
            for illegal in [false, true] {
                cases.push(AppendCase { operations, keys: 10, clients, illegal });
            }
        }
    }
    cases
}

fn append_history(case: &AppendCase) -> KvHistory {
    let mut settings = GeneratorSettings::append_heavy(case.operations, case.keys, case.clients, 7);
    settings.violation_at = case.illegal.then_some(0.9);
    generate(&settings)
}

/// The append-heavy class with and without a planted violation, checking every key and stopping
/// at the first illegal one. Each cell is the median of up to 5 runs.
fn append_table(options: &CheckOptions) {
    println!(
        "\n## Append-heavy histories (10 keys, 70 % appends of 24-byte pieces, 5 % timed out and never applied)\n"
    );
    println!(
        "| ops | keys | clients | planted violation | verdict | all keys: ms | states | peak MiB | stop at first: ms |"
    );
    println!("|---:|---:|---:|---|---|---:|---:|---:|---:|");
    for case in append_cases() {
        let history = append_history(&case);
        let stop = CheckOptions { stop_at_first_violation: true, ..options.clone() };
        let baseline = LIVE_BYTES.load(Ordering::Relaxed);
        PEAK_BYTES.store(baseline, Ordering::Relaxed);
        let report = check_kv_report(&history, options);
        let peak = PEAK_BYTES.load(Ordering::Relaxed).saturating_sub(baseline);
        let all_keys = median_of_runs(|| check_kv_report(&history, options));
        let stopping = median_of_runs(|| check_kv_report(&history, &stop));
        println!(
            "| {} | {} | {} | {} | {} | {:.2} | {} | {:.1} | {:.2} |",
            case.operations,
            case.keys,
            case.clients,
            if case.illegal { "late in k9" } else { "none" },
            verdict_name(&report.verdict),
            all_keys * 1e3,
            report.states_explored,
            peak as f64 / f64::from(1 << 20),
            stopping * 1e3,
        );
    }
}

/// Median wall time of up to five runs (fewer when one run takes over a second).
fn median_of_runs<T>(mut run: impl FnMut() -> T) -> f64 {
    let mut samples = Vec::new();
    let started = Instant::now();
    while samples.len() < 5 && (samples.is_empty() || started.elapsed() < Duration::from_secs(3)) {
        let one = Instant::now();
        std::hint::black_box(run());
        samples.push(one.elapsed().as_secs_f64());
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// The memory bound counts everything a key's check holds: a check stopped by a small bound
/// reports what it held, beside the heap the process really used above the history.
fn memory_table() {
    println!("\n## Memory bound: what a check reports holding when it stops, against the heap it used\n");
    println!("| history | bound MiB | verdict | reported MiB at the bound | peak heap MiB above the history |");
    println!("|---|---:|---|---:|---:|");
    let name = "1M ops, 10 keys, 64 clients, values reused";
    let history = generate(&settings(&Case { operations: 1_000_000, keys: 10, clients: 64, unique_values: false }));
    let cases = [(name, history)];
    for (name, history) in &cases {
        for bound_mib in [16u64, 64, 256] {
            let options =
                CheckOptions { max_memory_bytes_per_key: Some(bound_mib << 20), threads: 1, ..CheckOptions::default() };
            let baseline = LIVE_BYTES.load(Ordering::Relaxed);
            PEAK_BYTES.store(baseline, Ordering::Relaxed);
            let report = check_kv_report(history, &options);
            let peak = PEAK_BYTES.load(Ordering::Relaxed).saturating_sub(baseline);
            let reported = match &report.verdict {
                Verdict::Unknown { reason } => reason
                    .split("memory limit reached (")
                    .nth(1)
                    .and_then(|rest| rest.split(' ').next())
                    .unwrap_or("-")
                    .to_owned(),
                Verdict::Ok | Verdict::Illegal(_) => "-".to_owned(),
            };
            println!(
                "| {name} | {bound_mib} | {} | {reported} | {:.1} |",
                verdict_name(&report.verdict),
                peak as f64 / f64::from(1 << 20)
            );
        }
    }
}

fn criterion_benches(criterion: &mut Criterion, histories: &[(String, ParsedHistory)], options: &CheckOptions) {
    let mut group = criterion.benchmark_group("corpus");
    group.sample_size(10).warm_up_time(Duration::from_millis(100)).measurement_time(Duration::from_millis(300));
    for (file, parsed) in histories {
        group.bench_function(file.as_str(), |bencher| bencher.iter(|| parsed.history.check(options)));
    }
    group.finish();

    let mut group = criterion.benchmark_group("generated");
    group.sample_size(10).warm_up_time(Duration::from_millis(200)).measurement_time(Duration::from_secs(1));
    for case in cases(10_000) {
        if case.keys == 100_000 {
            continue;
        }
        let history = generate(&settings(&case));
        let name = format!(
            "{}ops-{}keys-{}clients-{}",
            case.operations,
            case.keys,
            case.clients,
            if case.unique_values { "unique" } else { "reused" }
        );
        group.bench_with_input(BenchmarkId::from_parameter(name), &history, |bencher, history| {
            bencher.iter(|| check_kv_report(history, options))
        });
    }
    group.finish();

    let mut group = criterion.benchmark_group("append-heavy");
    group.sample_size(10).warm_up_time(Duration::from_millis(200)).measurement_time(Duration::from_secs(1));
    for case in append_cases().into_iter().filter(|case| case.operations <= 2_000) {
        let history = append_history(&case);
        let name = format!(
            "{}ops-{}keys-{}clients-{}",
            case.operations,
            case.keys,
            case.clients,
            if case.illegal { "illegal" } else { "legal" }
        );
        group.bench_with_input(BenchmarkId::from_parameter(name), &history, |bencher, history| {
            bencher.iter(|| check_kv_report(history, options))
        });
    }
    group.finish();
}

/// `CHECKER_BENCH_PROFILE=ops,keys,clients,illegal,stop,repeats` checks one append-heavy case
/// `repeats` times and prints each time: a target for `perf record`. With
/// `CHECKER_BENCH_PER_KEY=1` it first checks each key alone, to find the key the time goes to.
fn profile(spec: &str) {
    let fields: Vec<u64> = spec.split(',').map(|field| field.trim().parse().unwrap_or(0)).collect();
    let [operations, keys, clients, illegal, stop, repeats] = fields[..] else {
        panic!("CHECKER_BENCH_PROFILE=ops,keys,clients,illegal(0/1),stop(0/1),repeats");
    };
    let case = AppendCase {
        operations: operations as usize,
        keys: keys as usize,
        clients: clients as usize,
        illegal: illegal == 1,
    };
    let history = append_history(&case);
    let options = CheckOptions { stop_at_first_violation: stop == 1, ..CheckOptions::default() };
    if std::env::var_os("CHECKER_BENCH_PER_KEY").is_some() {
        for key in 0..keys {
            let name = format!("k{key}");
            let operations = history.operations.iter().filter(|operation| operation.key == name).cloned().collect();
            let single = KvHistory { initial_value: None, operations };
            let started = Instant::now();
            let report = check_kv_report(&single, &options);
            println!(
                "{name}: {} ops, {} in {:.2} ms, {} states",
                single.operations.len(),
                verdict_name(&report.verdict),
                started.elapsed().as_secs_f64() * 1e3,
                report.states_explored
            );
        }
    }
    for _ in 0..repeats {
        let started = Instant::now();
        let report = check_kv_report(&history, &options);
        println!(
            "{} in {:.2} ms, {} states",
            verdict_name(&report.verdict),
            started.elapsed().as_secs_f64() * 1e3,
            report.states_explored
        );
    }
}

fn main() {
    if let Ok(spec) = std::env::var("CHECKER_BENCH_PROFILE_GENERATED") {
        let fields: Vec<usize> = spec.split(',').map(|field| field.trim().parse().unwrap_or(0)).collect();
        let case = Case { operations: fields[0], keys: fields[1], clients: fields[2], unique_values: fields[3] == 1 };
        let history = generate(&settings(&case));
        for _ in 0..fields[4] {
            let started = Instant::now();
            let report = check_kv_report(&history, &CheckOptions::default());
            println!(
                "{} in {:.2} ms, {} states",
                verdict_name(&report.verdict),
                started.elapsed().as_secs_f64() * 1e3,
                report.states_explored
            );
        }
        return;
    }
    if let Ok(spec) = std::env::var("CHECKER_BENCH_PROFILE") {
        profile(&spec);
        return;
    }
    let max_operations =
        std::env::var("CHECKER_BENCH_MAX_OPS").ok().and_then(|text| text.parse().ok()).unwrap_or(1_000_000);
    match std::env::var("CHECKER_BENCH_ONLY").as_deref() {
        Ok("append-heavy") => return append_table(&CheckOptions::default()),
        Ok("generated") => return generated_table(max_operations, &CheckOptions::default()),
        Ok("memory") => return memory_table(),
        Ok(other) => panic!("CHECKER_BENCH_ONLY={other}: expected append-heavy, generated or memory"),
        Err(_) => {}
    }
    let directory = histories_directory();
    let histories = corpus(&directory);
    let options = CheckOptions::default();
    if std::env::var_os("CHECKER_BENCH_SKIP_CRITERION").is_none() {
        let mut criterion = Criterion::default().configure_from_args();
        criterion_benches(&mut criterion, &histories, &options);
        criterion.final_summary();
    }
    corpus_table(&directory, &histories, &options);
    append_table(&options);
    generated_table(max_operations, &options);
    memory_table();
}
