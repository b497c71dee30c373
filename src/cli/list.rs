//! `migsim list faults|checkers|bugs|scenarios`.

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

/// Every checker, with the system it applies to.
pub const CHECKERS: [(&str, &str); 7] = [
    ("ping_liveness", "ping: once faults heal, every node hears a fresh pong from every other node"),
    ("linearizable", "store: every key's history is linearizable (ops that timed out are indeterminate)"),
    ("no_lost_write", "store: every acknowledged write is visible, or legitimately overwritten, at the end"),
    ("single_owner", "store: at no instant do two groups accept writes for one partition"),
    ("pause_budget", "store: each cut-over's client-visible write pause stays within its budget"),
    ("migration_liveness", "store: once faults heal, every migration completes or aborts with an expected reason"),
    ("cleanup", "store: after completion the source holds no data of the partition and no stub outlives its purpose"),
];

pub fn run(args: &ListArgs) -> i32 {
    match args.what {
        ListWhat::Faults => {
            for &kind in FaultKind::ALL {
                println!("{:<18} {}", kind.name(), kind.description());
            }
            EXIT_PASS
        }
        ListWhat::Checkers => {
            for (name, description) in CHECKERS {
                println!("{name:<20} {description}");
            }
            EXIT_PASS
        }
        ListWhat::Bugs => {
            for bug in Bug::ALL {
                println!("{:<18} {}", bug.name(), bug.description());
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
                    Ok(scenario) => println!("{:<40} {}", path.display(), scenario.description),
                    Err(error) => {
                        println!("{:<40} INVALID: {error}", path.display());
                        code = EXIT_BAD_INPUT;
                    }
                }
            }
            code
        }
    }
}
