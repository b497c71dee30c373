//! `migsim validate FILE...`: checks scenario files alone, before anything runs. It only reads
//! and validates; it must never start a simulation.

use std::path::PathBuf;

use crate::scenario;

/// Exit code when every file is valid.
const EXIT_OK: i32 = 0;
/// Exit code for bad input, as for every command.
const EXIT_BAD_INPUT: i32 = 2;

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Scenario files to check.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Validates every file, printing `ok: ...` to stdout for a good one and its error to stderr for
/// a bad one. Returns 0 when all are good and 2 when any is bad; every file is checked either way,
/// so one run reports every broken file.
pub fn run(args: &ValidateArgs) -> i32 {
    let mut exit_code = EXIT_OK;
    for file in &args.files {
        match scenario::load(file) {
            Ok(scenario) => println!("{}", summary(&file.display().to_string(), &scenario)),
            Err(error) => {
                eprintln!("{error}");
                exit_code = EXIT_BAD_INPUT;
            }
        }
    }
    exit_code
}

/// One line about a valid scenario: `ok: FILE (name, N nodes, M faults, seeds A..B)`.
pub fn summary(file: &str, scenario: &scenario::Scenario) -> String {
    format!(
        "ok: {file} ({}, {} nodes, {} faults, seeds {})",
        scenario.name,
        scenario.node_count(),
        scenario.faults.len(),
        scenario.seeds
    )
}
