//! The `migsim` command line. For now only `check`; the full CLI replaces this file.

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "migsim",
    about = "Deterministic simulation testbed for online shard migration"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check history files for linearizability.
    Check(migsim::cli::check::CheckArgs),
}

fn main() {
    let cli = Cli::parse();
    let code = match &cli.command {
        Command::Check(arguments) => migsim::cli::check::run(arguments),
    };
    std::process::exit(code);
}
