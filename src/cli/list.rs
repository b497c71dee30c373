//! `migsim list faults|checkers|bugs|scenarios`.

use super::output::say;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::{EXIT_BAD_INPUT, EXIT_PASS};
use crate::sut::store::Bug;
use crate::world::FaultKind;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ListWhat {
    Faults,
    Checkers,
    /// The store's planted bugs, for `--bug NAME`.
    Bugs,
    Scenarios,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    pub what: ListWhat,
    /// Where to look for scenarios.
    #[arg(long, default_value = "scenarios")]
    pub directory: PathBuf,
}

pub fn run(args: &ListArgs) -> i32 {
    match args.what {
        ListWhat::Faults => {
            for &kind in FaultKind::ALL {
                say!("{:<18} {}", kind.name(), kind.description());
            }
            EXIT_PASS
        }
        ListWhat::Checkers => {
            for checker in crate::checker::CHECKERS {
                let systems: Vec<&str> = checker.systems.iter().map(|system| system.name()).collect();
                say!(
                    "{:<20} {:<9} {:<6} {}",
                    checker.name,
                    checker.kind.name(),
                    systems.join(","),
                    checker.description
                );
            }
            EXIT_PASS
        }
        ListWhat::Bugs => {
            for bug in Bug::ALL {
                say!("{:<18} {}", bug.name(), bug.description());
            }
            EXIT_PASS
        }
        ListWhat::Scenarios => {
            let entries = match std::fs::read_dir(&args.directory) {
                Ok(entries) => entries,
                Err(error) => {
                    eprintln!("error: {}: {error}", args.directory.display());
                    return EXIT_BAD_INPUT;
                }
            };
            let mut paths: Vec<PathBuf> = entries
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|path| path.extension().is_some_and(|extension| extension == "toml"))
                .collect();
            paths.sort();
            let mut code = EXIT_PASS;
            for path in paths {
                match crate::scenario::load(&path) {
                    Ok(scenario) => say!("{:<40} {}", path.display(), scenario.description),
                    Err(error) => {
                        say!("{:<40} INVALID: {error}", path.display());
                        code = EXIT_BAD_INPUT;
                    }
                }
            }
            code
        }
    }
}
