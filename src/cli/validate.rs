//! `migsim validate FILE...`: checks scenario files alone, before anything runs. It only reads
//! and validates; it must never start a simulation.

use super::output::say;
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
            Ok(scenario) => say!("{}", summary(&file.display().to_string(), &scenario)),
            Err(error) => {
                eprintln!("{error}");
                exit_code = EXIT_BAD_INPUT;
            }
        }
    }
    exit_code
}

/// One line about a valid scenario: `ok: FILE (name, N nodes, M faults, seeds A..B)` for ping;
/// for the store, its shape instead of a node count:
/// `ok: FILE (name, store: 5 storage nodes, 4 groups x 3 replicas, 16 partitions, 2 gateways,
/// 8 clients; 3 faults, seeds 0..500)`.
pub fn summary(file: &str, scenario: &scenario::Scenario) -> String {
    match scenario.system {
        scenario::SystemKind::Ping => format!(
            "ok: {file} ({}, {} nodes, {} faults, seeds {})",
            scenario.name,
            scenario.node_count(),
            scenario.faults.len(),
            scenario.seeds
        ),
        scenario::SystemKind::Store => {
            let cluster = &scenario.cluster;
            let clients = scenario.workload.as_ref().map_or(0, |workload| u64::from(workload.clients));
            format!(
                "ok: {file} ({}, store: {}, {} x {}, {}, {}, {}; {}, seeds {})",
                scenario.name,
                count(u64::from(cluster.nodes), "storage node"),
                count(u64::from(cluster.groups), "group"),
                count(u64::from(cluster.replicas), "replica"),
                count(u64::from(cluster.partitions), "partition"),
                count(u64::from(cluster.gateways), "gateway"),
                count(clients, "client"),
                count(scenario.faults.len() as u64, "fault"),
                scenario.seeds
            )
        }
    }
}

/// `1 gateway`, `2 gateways`.
fn count(number: u64, noun: &str) -> String {
    if number == 1 {
        format!("{number} {noun}")
    } else {
        format!("{number} {noun}s")
    }
}
