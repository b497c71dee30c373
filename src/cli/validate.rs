//! `migsim validate FILE...`: checks scenario files alone, before anything runs. It only reads
//! and validates; it must never start a simulation.

use super::output::say;
use std::path::PathBuf;

use crate::scenario;
use crate::units::format_us;

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
/// 8 clients; 3 faults, seeds 0..500)`. A store scenario with migrations counts them on that line
/// (`8 clients; 1 migration, 3 faults, ...`) and adds one line for each, in the order they are
/// planned:
/// `  migration move-7 at 2s: partition 7 (from group 3) to new group 4 on nodes 0, 1, 2; pause
/// budget 50ms, lag threshold 64, at most 3 attempts of 2s; expect done`.
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
            let migrations = match scenario.migrations.len() {
                0 => String::new(),
                count_of => format!("{}, ", count(count_of as u64, "migration")),
            };
            let mut text = format!(
                "ok: {file} ({}, store: {}, {} x {}, {}, {}, {}; {migrations}{}, seeds {})",
                scenario.name,
                match cluster.reserve_nodes {
                    0 => count(u64::from(cluster.nodes), "storage node"),
                    reserve => format!("{} (+{reserve} in reserve)", count(u64::from(cluster.nodes), "storage node")),
                },
                count(u64::from(cluster.groups), "group"),
                count(u64::from(cluster.replicas), "replica"),
                count(u64::from(cluster.partitions), "partition"),
                count(u64::from(cluster.gateways), "gateway"),
                count(clients, "client"),
                count(scenario.faults.len() as u64, "fault"),
                scenario.seeds
            );
            let sources = scenario.partition_sources();
            for id in scenario::planned_order(&scenario.migrations) {
                let migration = &scenario.migrations[id as usize];
                text.push_str(&format!("\n  {}", migration_line(scenario, migration, &sources[id as usize])));
            }
            text
        }
    }
}

/// `migration move-7 at 2s: partitions 3 (from group 3), 7 (from group 3) to group 1; pause
/// budget 50ms, lag threshold 64, at most 3 attempts of 2s; expect aborted (drain_over_budget)`.
use crate::sut::store::migration::spec::OperationKind;

fn migration_line(
    scenario: &scenario::Scenario,
    migration: &scenario::MigrationSpec,
    sources: &[scenario::PartitionSource],
) -> String {
    let partitions: Vec<String> =
        sources.iter().map(|source| format!("{} (from group {})", source.partition, source.source)).collect();
    let noun = if partitions.len() == 1 { "partition" } else { "partitions" };
    let target = match migration.to.checked_sub(scenario.cluster.groups) {
        Some(index) => {
            let nodes: Vec<String> = scenario.new_groups[index as usize].iter().map(|node| node.to_string()).collect();
            format!("new group {} on nodes {}", migration.to, nodes.join(", "))
        }
        None => format!("group {}", migration.to),
    };
    let expect = match migration.expect {
        scenario::Expectation::Done => "done".to_string(),
        scenario::Expectation::DoneOrCancelled => "done, or aborted (cancelled)".to_string(),
        scenario::Expectation::Aborted(reason) => format!("aborted ({reason})"),
    };
    let what = match &migration.kind {
        OperationKind::Move => format!("{noun} {} to {target}", partitions.join(", ")),
        OperationKind::ScaleOut if partitions.is_empty() => {
            format!("scale-out: {target} joins and the planner moves it its even share")
        }
        OperationKind::ScaleOut => format!("scale-out: {target} joins and takes {noun} {}", partitions.join(", ")),
        OperationKind::ScaleIn { group, to } if to.is_empty() => {
            format!("scale-in: group {group} is drained to the least loaded other groups, then retired")
        }
        OperationKind::ScaleIn { group, to } => {
            let to: Vec<String> = to.iter().map(|group| group.to_string()).collect();
            format!("scale-in: group {group} is drained to groups {}, then retired", to.join(", "))
        }
        OperationKind::Rebalance => "rebalance: the planner evens out partition counts".to_owned(),
        OperationKind::DiskMove { node, group, to_disk } => {
            format!("disk move: node {node}'s replica of group {group} moves to its disk {to_disk}")
        }
    };
    let concurrency = match migration.max_concurrent {
        1 => String::new(),
        limit => format!(", {limit} moves at a time"),
    };
    let cancel = match migration.cancel_at_us {
        Some(at) => format!(", cancelled at {}", format_us(at)),
        None => String::new(),
    };
    if let OperationKind::DiskMove { .. } = migration.kind {
        // No cut-over: no budget, threshold or attempt time applies.
        return format!(
            "migration {} at {}: {what}; at most {}; expect {expect}",
            migration.name,
            format_us(migration.at_us),
            count(u64::from(migration.max_attempts), "attempt"),
        );
    }
    format!(
        "migration {} at {}: {what}{concurrency}{cancel}; pause budget {}, lag threshold {}, at most {} of {}; expect {expect}",
        migration.name,
        format_us(migration.at_us),
        format_us(migration.pause_budget_us),
        migration.lag_threshold,
        count(u64::from(migration.max_attempts), "attempt"),
        format_us(migration.attempt_timeout_us),
    )
}

/// `1 gateway`, `2 gateways`.
fn count(number: u64, noun: &str) -> String {
    if number == 1 {
        format!("{number} {noun}")
    } else {
        format!("{number} {noun}s")
    }
}
