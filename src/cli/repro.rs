//! `migsim repro SCENARIO --seed S [--trace FILE] [--bug NAME]...`: replays one seed twice (the second run proves
//! the replay is exact), prints its event trace and the checkers' explanation.

use std::io::Write;
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
    let options = RunOptions { trace: TraceLevel::Full, check_determinism: false };
    let outcome = runner::run_seed(&plan, args.seed, options);
    let replay = runner::run_seed(&plan, args.seed, options);
    if !args.quiet {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        for event in &outcome.events {
            if is_message(&event.kind) && !args.messages && args.kinds.is_empty() {
                continue;
            }
            if !args.kinds.is_empty() && !args.kinds.iter().any(|kind| kind == event.kind.name()) {
                continue;
            }
            if args.node.is_some() && event.node != args.node {
                continue;
            }
            // A closed pipe (`| head`) ends the listing quietly instead of panicking.
            if writeln!(out, "{}", event.describe()).is_err() {
                return outcome.verdict.exit_code();
            }
        }
        if out.flush().is_err() {
            return outcome.verdict.exit_code();
        }
    }
    if let Some(path) = &args.trace {
        if let Err(error) = write_trace(path, &outcome.events) {
            eprintln!("error: {}: {error}", path.display());
            return EXIT_BAD_INPUT;
        }
        println!("trace: {} ({} events)", path.display(), outcome.events.len());
    }
    println!(
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
        println!(
            "nondeterminism: the replay's trace hash {:016x} differs from the first run's {:016x}",
            replay.trace_hash, outcome.trace_hash
        );
        return EXIT_NONDETERMINISM;
    }
    match &outcome.verdict {
        Verdict::Pass => println!("verdict: pass"),
        Verdict::Fail { violations } => {
            println!("verdict: fail");
            for violation in violations {
                println!("  {}: {}", violation.checker, violation.message);
            }
            println!("replay: {}", repro_command(&args.scenario, args.seed, &bugs));
        }
        Verdict::Inconclusive { reasons } => {
            println!("verdict: inconclusive");
            for reason in reasons {
                println!("  {reason}");
            }
        }
        Verdict::Nondeterministic { .. } => println!("verdict: {}", super::run::headline(&outcome.verdict)),
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

fn write_trace(path: &std::path::Path, events: &[crate::trace::Event]) -> std::io::Result<()> {
    // Written beside the target and renamed, so a failed write leaves no partial file.
    let staging = path.with_extension("jsonl.partial");
    let file = std::io::BufWriter::new(std::fs::File::create(&staging)?);
    crate::trace::write_jsonl(events, file)?;
    std::fs::rename(&staging, path)
}
