//! `migsim repro SCENARIO --seed S [--trace FILE] [--bug NAME]...`: replays one seed twice (the second run proves
//! the replay is exact), prints its event trace and the checkers' explanation.

use super::output::{self, say};
use std::path::PathBuf;

use clap::Args;

use super::{parse_bugs, plant_bugs, repro_command, EXIT_BAD_INPUT, EXIT_NONDETERMINISM};
use crate::runner::{self, RunOptions, Verdict};
use crate::scenario;
use crate::trace::{EventKind, TraceLevel};

#[derive(Args, Debug)]
pub struct ReproArgs {
    /// The scenario file (TOML).
    pub scenario: PathBuf,
    /// The seed to replay.
    #[arg(long)]
    pub seed: u64,
    /// Write the full trace as JSON Lines to this file.
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// Print message events (send, deliver, drop) too; by default only the rest is printed.
    #[arg(long)]
    pub messages: bool,
    /// Print only events of these kinds (comma separated snake_case names, e.g. `fault_inject,node_crash`).
    #[arg(long, value_delimiter = ',')]
    pub kinds: Vec<String>,
    /// Print only events on this node.
    #[arg(long)]
    pub node: Option<u32>,
    /// Print no events, only the verdict.
    #[arg(long)]
    pub quiet: bool,
    /// Switch on a planted bug of the store (repeatable; `migsim list bugs` names them).
    #[arg(long = "bug", value_name = "NAME")]
    pub bugs: Vec<String>,
}

pub fn run(args: &ReproArgs) -> i32 {
    let bugs = match parse_bugs(&args.bugs) {
        Ok(bugs) => bugs,
        Err(message) => {
            eprintln!("{message}");
            return EXIT_BAD_INPUT;
        }
    };
    let scenario = match scenario::load(&args.scenario) {
        Ok(scenario) => scenario,
        Err(error) => {
            eprintln!("{error}");
            return EXIT_BAD_INPUT;
        }
    };
    let mut plan = scenario.plan();
    if let Err(message) = plant_bugs(&mut plan, &bugs, &args.scenario, scenario.system) {
        eprintln!("{message}");
        return EXIT_BAD_INPUT;
    }
    if let Some(unknown) = args.kinds.iter().find(|kind| !EventKind::NAMES.contains(&kind.as_str())) {
        eprintln!("error: --kinds: unknown event kind `{unknown}`; kinds: {}", EventKind::NAMES.join(", "));
        return EXIT_BAD_INPUT;
    }
    if let Some(node) = args.node.filter(|&node| node >= plan.nodes) {
        eprintln!("error: --node: node {node} does not exist; {} has nodes 0..{}", scenario.name, plan.nodes);
        return EXIT_BAD_INPUT;
    }
    // The trace file is opened before the replay, so a path that cannot be written is bad input
    // before anything runs; it is renamed into place only once it is whole.
    let trace_file = match &args.trace {
        Some(path) => match TraceFile::create(path) {
            Ok(file) => Some(file),
            Err(error) => {
                eprintln!("error: --trace: {}: {error}", path.display());
                return EXIT_BAD_INPUT;
            }
        },
        None => None,
    };
    let options = RunOptions { trace: TraceLevel::Full, check_determinism: false };
    let outcome = runner::run_seed(&plan, args.seed, options);
    let replay = runner::run_seed(&plan, args.seed, options);
    if !args.quiet {
        let shown = outcome.events.iter().filter(|event| {
            let kind_shown = if args.kinds.is_empty() {
                args.messages || !is_message(&event.kind)
            } else {
                args.kinds.iter().any(|kind| kind == event.kind.name())
            };
            kind_shown && (args.node.is_none() || event.node == args.node)
        });
        output::lines(shown.map(|event| event.describe()));
    }
    if let Some(file) = trace_file {
        let path = file.path.clone();
        if let Err(error) = file.write(&outcome.events) {
            eprintln!("error: {}: {error}", path.display());
            return EXIT_BAD_INPUT;
        }
        say!("trace: {} ({} events)", path.display(), outcome.events.len());
    }
    say!(
        "scenario {} seed {}: {} events, {} messages delivered, {} dropped, simulated {}, trace hash {:016x}",
        scenario.name,
        args.seed,
        outcome.events_recorded,
        outcome.network.delivered,
        outcome.network.dropped,
        crate::units::format_us(outcome.end_us),
        outcome.trace_hash
    );
    if replay.trace_hash != outcome.trace_hash {
        say!(
            "nondeterminism: the replay's trace hash {:016x} differs from the first run's {:016x}",
            replay.trace_hash,
            outcome.trace_hash
        );
        return EXIT_NONDETERMINISM;
    }
    match &outcome.verdict {
        Verdict::Pass => say!("verdict: pass"),
        Verdict::Fail { violations } => {
            say!("verdict: fail");
            for violation in violations {
                say!("  {}: {}", violation.checker, violation.message);
            }
            say!("replay: {}", repro_command(&args.scenario, args.seed, &bugs));
        }
        Verdict::Inconclusive { reasons } => {
            say!("verdict: inconclusive");
            for reason in reasons {
                say!("  {reason}");
            }
        }
        Verdict::Nondeterministic { .. } => say!("verdict: {}", super::run::headline(&outcome.verdict)),
    }
    if !outcome.operations.is_empty() {
        say!("operations:");
        for report in &outcome.operations {
            say!("  {}", report.describe());
        }
    }
    if !outcome.migrations.is_empty() {
        say!("migrations:");
        for report in &outcome.migrations {
            for line in report.describe() {
                say!("  {line}");
            }
        }
    }
    outcome.verdict.exit_code()
}

fn is_message(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::MessageSend { .. }
            | EventKind::MessageDeliver { .. }
            | EventKind::MessageDrop { .. }
            | EventKind::MessageDuplicate { .. }
    )
}

/// A trace file being written: created (as `NAME.partial`) before the replay, renamed into place
/// when whole, so a failed write leaves no partial file under the name asked for.
struct TraceFile {
    path: PathBuf,
    staging: PathBuf,
    file: std::fs::File,
}

impl TraceFile {
    fn create(path: &std::path::Path) -> std::io::Result<TraceFile> {
        let staging = path.with_extension("jsonl.partial");
        let file = std::fs::File::create(&staging)?;
        Ok(TraceFile { path: path.to_path_buf(), staging, file })
    }

    fn write(self, events: &[crate::trace::Event]) -> std::io::Result<()> {
        let written = crate::trace::write_jsonl(events, std::io::BufWriter::new(&self.file))
            .and_then(|()| std::fs::rename(&self.staging, &self.path));
        if written.is_err() {
            let _ = std::fs::remove_file(&self.staging);
        }
        written
    }
}
