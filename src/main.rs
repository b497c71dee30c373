//! The `migsim` binary. A minimal entry point so that `migsim validate` works; the full command
//! set replaces it.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "migsim",
    about = "Deterministic simulation testbed for online shard migration"
)]
struct Arguments {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check scenario files alone, before anything runs.
    Validate(migsim::cli::validate::ValidateArgs),
}

fn main() {
    let arguments = Arguments::parse();
    let exit_code = match &arguments.command {
        Command::Validate(validate) => migsim::cli::validate::run(validate),
    };
    std::process::exit(exit_code);
}
