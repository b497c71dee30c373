//! The command line: `run`, `repro`, `validate`, `check`, `list`. Each subcommand parses its
//! arguments, reads its input completely (bad input is exit 2 before anything runs or is written),
//! then calls the library. Exit codes, for every command: 0 everything passed, 1 a checker found a
//! violation, 2 bad input, 3 inconclusive, 4 nondeterminism detected.

pub mod check;
pub mod list;
pub mod output;
pub mod repro;
pub mod run;
pub mod validate;

use clap::{Parser, Subcommand};

use crate::runner::{RunPlan, SystemPlan};
use crate::scenario::SystemKind;
use crate::sut::store::{Bug, Bugs};

pub const EXIT_PASS: i32 = 0;
pub const EXIT_VIOLATION: i32 = 1;
pub const EXIT_BAD_INPUT: i32 = 2;
pub const EXIT_INCONCLUSIVE: i32 = 3;
pub const EXIT_NONDETERMINISM: i32 = 4;

#[derive(Parser, Debug)]
#[command(name = "migsim", version, about = "Deterministic simulation testbed for online shard migration")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run scenario files over a range of seeds on every core and print a verdict table.
    Run(run::RunArgs),
    /// Replay one seed exactly; print its trace and the checkers' explanation.
    Repro(repro::ReproArgs),
    /// Check scenario files without running them.
    Validate(validate::ValidateArgs),
    /// Check histories (migsim's JSON Lines, Jepsen EDN, Porcupine logs) for linearizability.
    Check(check::CheckArgs),
    /// List faults, checkers, planted bugs or shipped scenarios.
    List(list::ListArgs),
}

/// Parses the process arguments and runs the command; returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() { EXIT_BAD_INPUT } else { EXIT_PASS };
        }
    };
    match &cli.command {
        Command::Run(args) => run::run(args),
        Command::Repro(args) => repro::run(args),
        Command::Validate(args) => validate::run(args),
        Command::Check(args) => check::run(args),
        Command::List(args) => list::run(args),
    }
}

/// The exit code for a set of verdicts: nondeterminism outranks a violation, which outranks an
/// inconclusive verdict.
pub fn exit_code_for(verdicts: impl IntoIterator<Item = i32>) -> i32 {
    let rank = |code: i32| match code {
        EXIT_NONDETERMINISM => 3,
        EXIT_VIOLATION => 2,
        EXIT_INCONCLUSIVE => 1,
        _ => 0,
    };
    verdicts.into_iter().max_by_key(|code| rank(*code)).unwrap_or(EXIT_PASS)
}

/// The command that replays one seed, as printed after every failure and written into every
/// repro bundle: it carries the planted bugs too, since a replay without them is another run.
pub fn repro_command(scenario: &std::path::Path, seed: u64, bugs: &Bugs) -> String {
    let mut command = format!("migsim repro {} --seed {seed}", scenario.display());
    for bug in &bugs.0 {
        command.push_str(&format!(" --bug {bug}"));
    }
    command
}

/// Resolves `--bug NAME` flags (in the order given, each once), or the error to print.
pub fn parse_bugs(names: &[String]) -> Result<Bugs, String> {
    let mut bugs = Vec::new();
    for name in names {
        let bug = Bug::from_name(name).ok_or_else(|| {
            let allowed: Vec<&str> = Bug::ALL.iter().map(|bug| bug.name()).collect();
            format!("error: --bug: unknown bug `{name}`; allowed: {}", allowed.join(", "))
        })?;
        if !bugs.contains(&bug) {
            bugs.push(bug);
        }
    }
    Ok(Bugs(bugs))
}

/// Switches the planted bugs on in `plan`, or returns the error to print when there are bugs and
/// the scenario's system is not the store (only the store has them).
pub fn plant_bugs(
    plan: &mut RunPlan,
    bugs: &Bugs,
    scenario: &std::path::Path,
    system: SystemKind,
) -> Result<(), String> {
    if bugs.0.is_empty() {
        return Ok(());
    }
    match &mut plan.system {
        SystemPlan::Store(store) => {
            store.store.bugs = bugs.clone();
            Ok(())
        }
        SystemPlan::Ping(_) => Err(format!(
            "error: --bug applies to the {} system; {} runs {system}",
            SystemKind::Store,
            scenario.display()
        )),
    }
}

/// The planted bugs a plan runs with (none for systems without any).
pub fn bugs_of(plan: &RunPlan) -> Bugs {
    match &plan.system {
        SystemPlan::Store(store) => store.store.bugs.clone(),
        SystemPlan::Ping(_) => Bugs::default(),
    }
}
