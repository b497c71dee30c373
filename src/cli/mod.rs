//! The command line: `run`, `repro`, `validate`, `check`, `list`. Each subcommand parses its
//! arguments, reads its input completely (bad input is exit 2 before anything runs or is written),
//! then calls the library. Exit codes, for every command: 0 everything passed, 1 a checker found a
//! violation, 2 bad input, 3 inconclusive, 4 nondeterminism detected.

pub mod check;
pub mod list;
pub mod repro;
pub mod run;
pub mod validate;

use clap::{Parser, Subcommand};

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
    /// List faults, checkers or shipped scenarios.
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

/// The command that replays one seed, as printed after every failure.
pub fn repro_command(scenario: &std::path::Path, seed: u64) -> String {
    format!("migsim repro {} --seed {seed}", scenario.display())
}
