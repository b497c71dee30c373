//! Scenario files, judged: every file in `tests/bad_scenarios/` must fail with the error in its
//! snapshot, and every file in `scenarios/` must load.

use std::path::{Path, PathBuf};

use migsim::scenario;

fn toml_files(directory: &str) -> Vec<PathBuf> {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join(directory);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&directory)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", directory.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "toml"))
        .collect();
    // Sorted so that the test reports files in the same order on every machine.
    files.sort();
    files
}

#[test]
fn every_bad_scenario_fails_with_its_snapshot_error() {
    let files = toml_files("tests/bad_scenarios");
    assert!(files.len() >= 12, "expected at least 12 bad scenarios, found {}", files.len());
    for path in files {
        let stem = path.file_stem().and_then(|stem| stem.to_str()).expect("file stem").to_string();
        let text = std::fs::read_to_string(&path).expect("readable test file");
        // The file name in the error is the one a user would type, not this machine's path.
        let file_name = format!("tests/bad_scenarios/{stem}.toml");
        match scenario::parse(&file_name, &text) {
            Ok(_) => panic!("{file_name} should be rejected but parsed"),
            Err(error) => insta::assert_snapshot!(stem, error.to_string()),
        }
    }
}

#[test]
fn every_shipped_scenario_loads() {
    let files = toml_files("scenarios");
    assert!(!files.is_empty(), "scenarios/ holds no scenario");
    for path in files {
        if let Err(error) = scenario::load(&path) {
            panic!("{error}");
        }
    }
}

/// The examples in the format documentation must stay valid scenarios: the first (`ping`), the
/// second (`store`) and the third (`store` with a migration and phase-triggered faults) ```toml
/// block.
#[test]
fn the_documented_examples_are_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/scenario-format.md");
    let document = std::fs::read_to_string(&path).expect("docs/scenario-format.md");
    let blocks: Vec<&str> =
        document.split("```toml\n").skip(1).map(|rest| &rest[..rest.find("```").expect("the block's end")]).collect();
    let expected = [
        "ok: example.toml (ping-faults, 5 nodes, 6 faults, seeds 0..200)",
        "ok: example.toml (store-crash, store: 5 storage nodes, 4 groups x 3 replicas, 16 partitions, 2 gateways, 8 clients; 3 faults, seeds 0..500)",
        "ok: example.toml (move-7-under-faults, store: 5 storage nodes, 4 groups x 3 replicas, 16 partitions, 2 gateways, 8 clients; 1 migration, 3 faults, seeds 0..500)\n  \
         migration move-7 at 1s: partition 7 (from group 3) to new group 4 on nodes 0, 1, 2; pause budget 50ms, lag threshold 64, at most 3 attempts of 2s; expect done",
    ];
    assert_eq!(blocks.len(), expected.len(), "docs/scenario-format.md has {} ```toml blocks", blocks.len());
    for (block, expected) in blocks.iter().zip(expected) {
        match scenario::parse("docs/scenario-format.md", block) {
            Ok(parsed) => assert_eq!(migsim::cli::validate::summary("example.toml", &parsed), expected),
            Err(error) => panic!("{error}"),
        }
    }
}

/// `migsim validate` prints each migration, in the order the master plans them, with where each
/// partition comes from and how the migration is expected to end.
#[test]
fn the_validate_summary_lists_migrations_in_planned_order() {
    let text = format!(
        "{}\n{}",
        include_str!("../scenarios/store-steady.toml"),
        r#"
[[migrations]]
name = "back"
at = "1500ms"
partitions = [2, 6]
to = 3
pause_budget = "10ms"
lag_threshold = 8
max_attempts = 1
attempt_timeout = "300ms"
expect = "aborted"
reason = "drain_over_budget"

[[migrations]]
name = "out"
at = "500ms"
partitions = [6]
to = 1
pause_budget = "50ms"
"#
    );
    let parsed = scenario::parse("steady.toml", &text).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(
        migsim::cli::validate::summary("steady.toml", &parsed),
        "ok: steady.toml (store-steady, store: 5 storage nodes, 4 groups x 3 replicas, 16 partitions, 2 gateways, 8 clients; 2 migrations, 0 faults, seeds 0..500)\n  \
         migration out at 500ms: partition 6 (from group 2) to group 1; pause budget 50ms, lag threshold 64, at most 3 attempts of 2s; expect done\n  \
         migration back at 1.5s: partitions 2 (from group 2), 6 (from group 1) to group 3; pause budget 10ms, lag threshold 8, at most 1 attempt of 300ms; expect aborted (drain_over_budget)"
    );
}
