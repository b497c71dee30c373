//! `migsim run SCENARIO... [--seeds A..B] [--jobs N] [--bug NAME]...`: sweeps seeds on every core with a progress
//! bar, prints a verdict table, and saves a repro bundle (scenario, full trace, verdict, command)
//! for the first failing seeds.

use super::output::say;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::{bugs_of, exit_code_for, parse_bugs, plant_bugs, repro_command, EXIT_BAD_INPUT};
use crate::runner::{self, RunOptions, SeedOutcome, Verdict};
use crate::scenario::{self, Scenario};
use crate::trace::TraceLevel;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Scenario files (TOML).
    #[arg(required = true)]
    pub scenarios: Vec<PathBuf>,
    /// Seeds to run, as `A..B` (half-open); overrides each file's `seeds`.
    #[arg(long)]
    pub seeds: Option<String>,
    /// Host threads to run seeds on (default: every core).
    #[arg(long, short)]
    pub jobs: Option<usize>,
    /// Run every seed twice and compare trace hashes (exit 4 on a difference).
    #[arg(long)]
    pub check_determinism: bool,
    /// Where failing seeds' repro bundles go.
    #[arg(long, default_value = "repro")]
    pub repro_dir: PathBuf,
    /// How many failing seeds per scenario get a repro bundle.
    #[arg(long, default_value_t = 3)]
    pub bundles: usize,
    /// No progress bar (also off when stderr is not a terminal).
    #[arg(long)]
    pub no_progress: bool,
    /// Switch on a planted bug of the store (repeatable; `migsim list bugs` names them).
    #[arg(long = "bug", value_name = "NAME")]
    pub bugs: Vec<String>,
}

pub fn run(args: &RunArgs) -> i32 {
    // Read and check every input before running anything.
    let seed_override = match args.seeds.as_deref().map(scenario::parse_seed_range).transpose() {
        Ok(seeds) => seeds,
        Err(message) => {
            eprintln!("error: --seeds: {message}");
            return EXIT_BAD_INPUT;
        }
    };
    if args.jobs == Some(0) {
        eprintln!("error: --jobs: must be at least 1");
        return EXIT_BAD_INPUT;
    }
    let bugs = match parse_bugs(&args.bugs) {
        Ok(bugs) => bugs,
        Err(message) => {
            eprintln!("{message}");
            return EXIT_BAD_INPUT;
        }
    };
    let mut loaded: Vec<(PathBuf, Scenario, runner::RunPlan)> = Vec::new();
    for path in &args.scenarios {
        let scenario = match scenario::load(path) {
            Ok(scenario) => scenario,
            Err(error) => {
                eprintln!("{error}");
                return EXIT_BAD_INPUT;
            }
        };
        let mut plan = scenario.plan();
        if let Err(message) = plant_bugs(&mut plan, &bugs, path, scenario.system) {
            eprintln!("{message}");
            return EXIT_BAD_INPUT;
        }
        loaded.push((path.clone(), scenario, plan));
    }
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |cores| cores.get()));
    let options = RunOptions { trace: TraceLevel::History, check_determinism: args.check_determinism };
    let mut codes = Vec::new();
    let mut rows = Vec::new();
    let mut operation_rows = Vec::new();
    for (path, scenario, plan) in &loaded {
        let seeds = seed_override.unwrap_or(scenario.seeds);
        let bar = progress_bar(args, &scenario.name, seeds.end - seeds.start);
        let started = Instant::now();
        // Moves done and planned across the seeds so far, for the bar.
        let moves = std::sync::Mutex::new((0u64, 0u64));
        let outcomes = runner::run_seeds(plan, seeds.start..seeds.end, jobs, options, &|outcome: &SeedOutcome| {
            if let Some(bar) = &bar {
                bar.inc(1);
                if !outcome.operations.is_empty() {
                    let mut moves = moves.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    moves.0 += outcome.operations.iter().map(|report| u64::from(report.moved)).sum::<u64>();
                    moves.1 += outcome.operations.iter().map(|report| u64::from(report.total)).sum::<u64>();
                    bar.set_message(format!("moves {}/{} done", moves.0, moves.1));
                }
                if outcome.verdict != Verdict::Pass {
                    bar.println(format!("seed {}: {}", outcome.seed, outcome.verdict.name()));
                }
            }
        });
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let wall = started.elapsed();
        codes.extend(outcomes.iter().map(|outcome| outcome.verdict.exit_code()));
        report_failures(path, scenario, plan, &outcomes, args);
        rows.push(summary_row(scenario, seeds, &outcomes, wall));
        operation_rows.extend(operation_summary(scenario, &outcomes));
    }
    print_table(&rows);
    print_operations(&operation_rows);
    exit_code_for(codes)
}

fn progress_bar(args: &RunArgs, name: &str, seeds: u64) -> Option<ProgressBar> {
    if args.no_progress || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return None;
    }
    let bar = ProgressBar::new(seeds);
    let style = ProgressStyle::with_template("{prefix} [{bar:40}] {pos}/{len} seeds {per_sec} eta {eta} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(name.to_string());
    Some(bar)
}

struct Row {
    name: String,
    seeds: String,
    pass: usize,
    fail: usize,
    inconclusive: usize,
    nondeterministic: usize,
    messages: u64,
    seeds_per_second: f64,
    /// For scenarios with migrations.
    migrations: Option<MigrationColumns>,
}

/// Across a scenario's seeds: every held write's pause, and how many attempts aborted.
struct MigrationColumns {
    /// p50, p99 and max, when any write was held.
    pause_us: Option<(u64, u64, u64)>,
    aborts: u64,
}

fn migration_columns(outcomes: &[SeedOutcome]) -> Option<MigrationColumns> {
    let mut reports = outcomes.iter().flat_map(|outcome| &outcome.migrations).peekable();
    reports.peek()?;
    // Three significant figures: p50 and p99 within 0.1%; the max is kept exactly beside it.
    let mut histogram = hdrhistogram::Histogram::<u64>::new(3).expect("3 significant figures is a valid precision");
    let mut max_us = 0;
    let mut aborts = 0;
    for report in reports {
        for &pause_us in &report.write_pauses_us {
            // `new` resizes as values come (`saturating_record` would clamp to its current top
            // instead); recording fails only past what a u64 histogram can count.
            if histogram.record(pause_us).is_err() {
                histogram.saturating_record(pause_us);
            }
            max_us = max_us.max(pause_us);
        }
        aborts += u64::from(report.aborted_attempts);
    }
    let pause_us = (!histogram.is_empty())
        .then(|| (histogram.value_at_quantile(0.5), histogram.value_at_quantile(0.99).min(max_us), max_us));
    Some(MigrationColumns { pause_us, aborts })
}

fn summary_row(
    scenario: &Scenario,
    seeds: scenario::SeedRange,
    outcomes: &[SeedOutcome],
    wall: std::time::Duration,
) -> Row {
    let count = |name: &str| outcomes.iter().filter(|outcome| outcome.verdict.name() == name).count();
    Row {
        name: scenario.name.clone(),
        seeds: format!("{}..{}", seeds.start, seeds.end),
        pass: count("pass"),
        fail: count("fail"),
        inconclusive: count("inconclusive"),
        nondeterministic: count("nondeterministic"),
        messages: outcomes.iter().map(|outcome| outcome.network.delivered).sum(),
        seeds_per_second: outcomes.len() as f64 / wall.as_secs_f64().max(1e-9),
        migrations: migration_columns(outcomes),
    }
}

/// One cluster operation of one scenario, over its seeds.
struct OperationRow {
    scenario: String,
    migration: String,
    operation: String,
    seeds: usize,
    /// Seeds where it ended `done`.
    done: usize,
    /// Moves done and planned, summed over seeds.
    moved: u64,
    planned: u64,
    attempts: u64,
    aborted_attempts: u64,
    /// p50, p99 and max of its time from plan to end, over the seeds where it ended.
    finish_us: Option<(u64, u64, u64)>,
}

fn operation_summary(scenario: &Scenario, outcomes: &[SeedOutcome]) -> Vec<OperationRow> {
    let Some(first) = outcomes.first() else { return Vec::new() };
    // A scenario's single plain move is told by the migration columns already.
    if first.operations.iter().all(|report| report.operation.as_deref() == Some("move") && report.total <= 1) {
        return Vec::new();
    }
    first
        .operations
        .iter()
        .map(|template| {
            let reports: Vec<&crate::checker::OperationReport> = outcomes
                .iter()
                .flat_map(|outcome| outcome.operations.iter().filter(|report| report.migration == template.migration))
                .collect();
            let mut finishes: Vec<u64> = reports.iter().filter_map(|report| report.duration_us).collect();
            finishes.sort_unstable();
            let quantile = |q: f64| finishes[((finishes.len() - 1) as f64 * q).round() as usize];
            OperationRow {
                scenario: scenario.name.clone(),
                migration: template.migration.clone(),
                operation: reports.iter().find_map(|report| report.operation.clone()).unwrap_or_else(|| "-".into()),
                seeds: reports.len(),
                done: reports.iter().filter(|report| report.outcome.as_deref() == Some("done")).count(),
                moved: reports.iter().map(|report| u64::from(report.moved)).sum(),
                planned: reports.iter().map(|report| u64::from(report.total)).sum(),
                attempts: reports.iter().map(|report| u64::from(report.attempts)).sum(),
                aborted_attempts: reports.iter().map(|report| u64::from(report.aborted_attempts)).sum(),
                finish_us: (!finishes.is_empty()).then(|| (quantile(0.5), quantile(0.99), *finishes.last().unwrap())),
            }
        })
        .collect()
}

/// Cluster operations, after the verdict table: how each ended over the seeds, moves done of
/// planned, attempts, aborts, and time from plan to end.
fn print_operations(rows: &[OperationRow]) {
    if rows.is_empty() {
        return;
    }
    let width = rows.iter().map(|row| row.scenario.len() + row.migration.len() + 1).max().unwrap_or(9).max(9);
    say!("");
    say!(
        "{:<width$}  {:<9}  {:>10}  {:>13}  {:>8}  {:>6}  {:>10}  {:>10}  {:>10}",
        "operation",
        "kind",
        "done",
        "moves done",
        "attempts",
        "aborts",
        "finish p50",
        "p99",
        "max"
    );
    for row in rows {
        let [p50, p99, max] = match row.finish_us {
            Some((p50, p99, max)) => [p50, p99, max].map(crate::units::format_us),
            None => ["-", "-", "-"].map(String::from),
        };
        say!(
            "{:<width$}  {:<9}  {:>10}  {:>13}  {:>8}  {:>6}  {:>10}  {:>10}  {:>10}",
            format!("{}/{}", row.scenario, row.migration),
            row.operation,
            format!("{}/{}", row.done, row.seeds),
            format!("{}/{}", row.moved, row.planned),
            row.attempts,
            row.aborted_attempts,
            p50,
            p99,
            max
        );
    }
}

fn print_table(rows: &[Row]) {
    let width = rows.iter().map(|row| row.name.len()).max().unwrap_or(8).max(8);
    // Write pause and aborts only when some scenario migrates.
    let migrating = rows.iter().any(|row| row.migrations.is_some());
    let migration_header = if migrating {
        format!("  {:>9}  {:>9}  {:>9}  {:>6}", "pause p50", "p99", "max", "aborts")
    } else {
        String::new()
    };
    say!(
        "{:<width$}  {:>12}  {:>6}  {:>6}  {:>12}  {:>16}  {:>12}  {:>9}{migration_header}",
        "scenario",
        "seeds",
        "pass",
        "fail",
        "inconclusive",
        "nondeterministic",
        "messages",
        "seeds/s"
    );
    for row in rows {
        let migration_cells = match (&row.migrations, migrating) {
            (_, false) => String::new(),
            (None, true) => format!("  {:>9}  {:>9}  {:>9}  {:>6}", "-", "-", "-", "-"),
            (Some(columns), true) => {
                let [p50, p99, max] = match columns.pause_us {
                    Some((p50, p99, max)) => [p50, p99, max].map(crate::units::format_us),
                    None => ["-", "-", "-"].map(String::from),
                };
                format!("  {p50:>9}  {p99:>9}  {max:>9}  {:>6}", columns.aborts)
            }
        };
        say!(
            "{:<width$}  {:>12}  {:>6}  {:>6}  {:>12}  {:>16}  {:>12}  {:>9.1}{migration_cells}",
            row.name,
            row.seeds,
            row.pass,
            row.fail,
            row.inconclusive,
            row.nondeterministic,
            row.messages,
            row.seeds_per_second
        );
    }
}

fn report_failures(path: &Path, scenario: &Scenario, plan: &runner::RunPlan, outcomes: &[SeedOutcome], args: &RunArgs) {
    let failing: Vec<&SeedOutcome> = outcomes.iter().filter(|outcome| outcome.verdict != Verdict::Pass).collect();
    if failing.is_empty() {
        return;
    }
    say!("{}: {} of {} seeds did not pass", scenario.name, failing.len(), outcomes.len());
    let bugs = bugs_of(plan);
    for outcome in failing.iter().take(10) {
        say!("  seed {}: {}", outcome.seed, headline(&outcome.verdict));
        say!("    replay: {}", repro_command(path, outcome.seed, &bugs));
    }
    if failing.len() > 10 {
        say!("  ... and {} more", failing.len() - 10);
    }
    for outcome in failing.iter().take(args.bundles) {
        match write_bundle(path, scenario, plan, outcome.seed, &args.repro_dir) {
            Ok(directory) => say!("  repro bundle for seed {}: {}", outcome.seed, directory.display()),
            Err(message) => eprintln!("warning: could not save the repro bundle for seed {}: {message}", outcome.seed),
        }
    }
}

/// The first line of a verdict, for tables.
pub fn headline(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Pass => "pass".into(),
        Verdict::Fail { violations } => match violations.first() {
            Some(violation) => format!("{}: {}", violation.checker, violation.message),
            None => "fail".into(),
        },
        Verdict::Inconclusive { reasons } => format!("inconclusive: {}", reasons.join("; ")),
        Verdict::Nondeterministic { first_hash, second_hash } => {
            format!("nondeterminism: trace hash {first_hash} then {second_hash}")
        }
    }
}

/// Replays a failing seed with the full trace and writes it, the scenario, the verdict and the
/// replay command into `DIR/<scenario name>/seed-<seed>/`. Written to a temporary name and renamed,
/// so a bundle is either whole or absent.
pub fn write_bundle(
    path: &Path,
    scenario: &Scenario,
    plan: &runner::RunPlan,
    seed: u64,
    root: &Path,
) -> Result<PathBuf, String> {
    let outcome = runner::run_seed(plan, seed, RunOptions { trace: TraceLevel::Full, check_determinism: false });
    let directory = root.join(&scenario.name).join(format!("seed-{seed}"));
    let staging = root.join(&scenario.name).join(format!(".seed-{seed}.partial"));
    let write = || -> std::io::Result<()> {
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging)?;
        std::fs::copy(path, staging.join("scenario.toml"))?;
        let trace = std::io::BufWriter::new(std::fs::File::create(staging.join("trace.jsonl"))?);
        crate::trace::write_jsonl(&outcome.events, trace)?;
        let verdict = serde_json::json!({
            "scenario": scenario.name,
            "seed": seed,
            "trace_hash": format!("{:016x}", outcome.trace_hash),
            "verdict": outcome.verdict,
        });
        std::fs::write(staging.join("verdict.json"), serde_json::to_string_pretty(&verdict)? + "\n")?;
        std::fs::write(staging.join("COMMAND"), repro_command(path, seed, &bugs_of(plan)) + "\n")?;
        let _ = std::fs::remove_dir_all(&directory);
        std::fs::rename(&staging, &directory)
    };
    write().map_err(|error| error.to_string())?;
    Ok(directory)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::{MigrationReport, MoveOutcome};

    fn seed(seed: u64, write_pauses_us: Vec<u64>, aborted_attempts: u32) -> SeedOutcome {
        let report = MigrationReport {
            migration: "move-7".into(),
            partition: 7,
            source: Some(0),
            target: Some(3),
            pause_budget_us: Some(50_000),
            outcome: MoveOutcome::Done,
            attempts: aborted_attempts + 1,
            aborted_attempts,
            phase_us: Vec::new(),
            write_pauses_us,
            worst_window: None,
        };
        SeedOutcome {
            seed,
            trace_hash: 0,
            verdict: Verdict::Pass,
            events_recorded: 0,
            network: crate::world::NetworkStats::default(),
            disks: Vec::new(),
            end_us: 0,
            wall: std::time::Duration::ZERO,
            events: Vec::new(),
            migrations: vec![report],
            operations: Vec::new(),
        }
    }

    #[test]
    fn the_verdict_table_folds_every_seeds_write_pauses_and_aborts() {
        // 100 held writes over two seeds: 1ms..=99ms, and one of 400ms.
        let mut first: Vec<u64> = (1..=60).map(|ms| ms * 1_000).collect();
        first.sort_unstable();
        let second: Vec<u64> = (61..=99).map(|ms| ms * 1_000).chain([400_000]).collect();
        let columns = migration_columns(&[seed(0, first, 1), seed(1, second, 2)]).expect("migrations were reported");
        let (p50, p99, max) = columns.pause_us.expect("writes were held");
        assert!((49_900..=50_100).contains(&p50), "p50 {p50}");
        assert!((98_900..=99_100).contains(&p99), "p99 {p99}");
        assert_eq!(max, 400_000);
        assert_eq!(columns.aborts, 3);
        // Migrations but no held write: no pause to show; no migration at all: no columns.
        let columns = migration_columns(&[seed(0, Vec::new(), 0)]).expect("a migration was reported");
        assert_eq!(columns.pause_us, None);
        let mut quiet = seed(0, Vec::new(), 0);
        quiet.migrations.clear();
        assert!(migration_columns(&[quiet]).is_none());
    }
}
