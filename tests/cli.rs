//! The command line as users meet it: exit codes, replay commands, repro bundles, and no partial
//! output on bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn migsim(arguments: &[&str], directory: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_migsim")).args(arguments).current_dir(directory).output().expect("migsim runs")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn scratch(name: &str) -> PathBuf {
    let directory = std::env::temp_dir().join(format!("migsim-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).unwrap();
    directory
}

/// The shipped scenario with a liveness phase too short for anyone to hear a fresh pong.
fn failing_scenario(directory: &Path) -> PathBuf {
    let shipped = std::fs::read_to_string(root().join("scenarios/ping-faults.toml")).unwrap();
    let failing = shipped.replace("heal = \"1s\"", "heal = \"50us\"");
    assert_ne!(failing, shipped, "the shipped scenario no longer has `heal = \"1s\"`");
    let path = directory.join("too-short.toml");
    std::fs::write(&path, failing).unwrap();
    path
}

#[test]
fn run_passes_on_the_shipped_scenario() {
    let output = migsim(&["run", "scenarios/ping-faults.toml", "--seeds", "0..4", "--no-progress"], &root());
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(text(&output).contains("ping-faults"));
}

#[test]
fn a_failing_run_exits_1_prints_the_replay_command_and_saves_a_bundle() {
    let directory = scratch("failing");
    let scenario = failing_scenario(&directory);
    let output = migsim(
        &["run", scenario.to_str().unwrap(), "--seeds", "0..2", "--no-progress", "--repro-dir", "bundles"],
        &directory,
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let printed = text(&output);
    assert!(printed.contains("ping_liveness"), "{printed}");
    assert!(printed.contains(&format!("migsim repro {} --seed 0", scenario.display())), "{printed}");
    let bundle = directory.join("bundles/ping-faults/seed-0");
    for file in ["scenario.toml", "trace.jsonl", "verdict.json", "COMMAND"] {
        assert!(bundle.join(file).exists(), "bundle lacks {file}");
    }
    let trace = std::fs::read_to_string(bundle.join("trace.jsonl")).unwrap();
    assert!(
        trace.lines().any(|line| line.contains("\"kind\":\"message_send\"")),
        "the bundle's trace is not the full trace"
    );
}

#[test]
fn repro_replays_exactly_and_explains_the_failure() {
    let directory = scratch("repro");
    let scenario = failing_scenario(&directory);
    let arguments = ["repro", scenario.to_str().unwrap(), "--seed", "1", "--trace", "trace.jsonl"];
    let first = migsim(&arguments, &directory);
    let second = migsim(&arguments, &directory);
    assert_eq!(first.status.code(), Some(1), "{}", text(&first));
    let hash_line = |output: &Output| text(output).lines().find(|line| line.contains("trace hash")).map(str::to_string);
    assert!(hash_line(&first).is_some());
    assert_eq!(hash_line(&first), hash_line(&second), "two replays of one seed differ");
    assert!(text(&first).contains("ping_liveness:"));
    assert!(text(&first).contains("fault_inject"));
    assert!(directory.join("trace.jsonl").exists());
}

#[test]
fn bad_input_exits_2_and_writes_nothing() {
    let directory = scratch("bad");
    let bad = directory.join("bad.toml");
    std::fs::write(&bad, "name = \"x\"\nduration = \"2s\"\nspeed = 3\n").unwrap();
    let output = migsim(&["run", bad.to_str().unwrap(), "--no-progress", "--repro-dir", "bundles"], &directory);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("bad.toml:3:1"), "{}", text(&output));
    assert!(!directory.join("bundles").exists());

    let output = migsim(&["run", "scenarios/ping-faults.toml", "--seeds", "5..2"], &root());
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("--seeds"));

    let output = migsim(&["validate", bad.to_str().unwrap()], &directory);
    assert_eq!(output.status.code(), Some(2));

    let output = migsim(&["run"], &root());
    assert_eq!(output.status.code(), Some(2), "a missing argument is bad input");

    let output = migsim(&["repro", "scenarios/ping-faults.toml", "--seed", "x"], &root());
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn list_names_every_fault_once() {
    let output = migsim(&["list", "faults"], &root());
    assert_eq!(output.status.code(), Some(0));
    let names: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| line.split_whitespace().next().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 17);
    assert!(names.contains(&"peer_replace".to_string()) && names.contains(&"disk_torn_write".to_string()));
    let output = migsim(&["list", "scenarios"], &root());
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
}

#[test]
fn validate_accepts_every_shipped_scenario() {
    let output = migsim(&["validate", "scenarios/ping-faults.toml"], &root());
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
}

/// A valid store scenario: 5 storage nodes, the master (5), 2 gateways (6, 7) and the clients (8).
/// The store cannot run yet, so tests only validate it or feed it bad flags.
fn store_scenario(directory: &Path) -> PathBuf {
    let path = directory.join("store.toml");
    let text = r#"
name = "store-ok"
seeds = "0..500"
duration = "3s"
heal = "2s"
system = "store"

[cluster]
nodes = 5
groups = 4
replicas = 3
partitions = 16
gateways = 2

[store]
heartbeat = "5ms"
failure_timeout = "30ms"

[workload]
clients = 8
keys = 1000
mix = { get = 0.4, put = 0.4, cas = 0.1, append = 0.1 }
rate = 300
op_timeout = "500ms"

[[faults]]
fault = "node_crash"
at = "1s"
node = 0

[[faults]]
fault = "net_partition"
at = "1500ms"
duration = "500ms"
nodes = [5]

[[faults]]
fault = "node_pause"
at = "2s"
duration = "100ms"
node = 6
"#;
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn validate_summarizes_a_store_scenario() {
    let directory = scratch("validate-store");
    let scenario = store_scenario(&directory);
    let output = migsim(&["validate", scenario.to_str().unwrap()], &directory);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim_end(),
        format!(
            "ok: {} (store-ok, store: 5 storage nodes, 4 groups x 3 replicas, 16 partitions, 2 gateways, 8 clients; 3 faults, seeds 0..500)",
            scenario.display()
        )
    );
}

#[test]
fn an_unknown_bug_exits_2_lists_the_bugs_and_writes_nothing() {
    let directory = scratch("unknown-bug");
    let scenario = store_scenario(&directory);
    let scenario = scenario.to_str().unwrap();
    for arguments in [
        vec!["run", scenario, "--bug", "no_such_bug", "--no-progress", "--repro-dir", "bundles"],
        vec!["repro", scenario, "--seed", "0", "--bug", "no_such_bug", "--trace", "trace.jsonl"],
    ] {
        let output = migsim(&arguments, &directory);
        assert_eq!(output.status.code(), Some(2), "{}", text(&output));
        let printed = text(&output);
        assert!(printed.contains("--bug: unknown bug `no_such_bug`; allowed: "), "{printed}");
        for bug in migsim::sut::store::Bug::ALL {
            assert!(printed.contains(bug.name()), "{printed} does not list {bug}");
        }
    }
    assert!(!directory.join("bundles").exists());
    assert!(!directory.join("trace.jsonl").exists());
}

#[test]
fn a_bug_on_a_ping_scenario_exits_2() {
    let directory = scratch("bug-on-ping");
    let ping = root().join("scenarios/ping-faults.toml");
    let ping = ping.to_str().unwrap();
    for arguments in [
        vec!["run", ping, "--bug", "ack_before_fsync", "--no-progress", "--repro-dir", "bundles"],
        vec!["repro", ping, "--seed", "0", "--bug", "ack_before_fsync", "--trace", "trace.jsonl"],
    ] {
        let output = migsim(&arguments, &directory);
        assert_eq!(output.status.code(), Some(2), "{}", text(&output));
        assert!(
            text(&output).contains(&format!("error: --bug applies to the store system; {ping} runs ping")),
            "{}",
            text(&output)
        );
    }
    assert!(!directory.join("bundles").exists());
    assert!(!directory.join("trace.jsonl").exists());
}

#[test]
fn replay_commands_carry_the_planted_bugs() {
    use migsim::sut::store::{Bug, Bugs};
    let scenario = Path::new("scenarios/store.toml");
    assert_eq!(migsim::cli::repro_command(scenario, 7, &Bugs::default()), "migsim repro scenarios/store.toml --seed 7");
    assert_eq!(
        migsim::cli::repro_command(scenario, 7, &Bugs(vec![Bug::AckBeforeFsync, Bug::SkipDedup])),
        "migsim repro scenarios/store.toml --seed 7 --bug ack_before_fsync --bug skip_dedup"
    );
    let names = ["ack_before_fsync".to_string(), "skip_dedup".to_string(), "ack_before_fsync".to_string()];
    assert_eq!(migsim::cli::parse_bugs(&names), Ok(Bugs(vec![Bug::AckBeforeFsync, Bug::SkipDedup])));
}

#[test]
fn list_bugs_names_and_describes_every_planted_bug() {
    let output = migsim(&["list", "bugs"], &root());
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(printed.contains("ack_before_fsync"), "{printed}");
    for bug in migsim::sut::store::Bug::ALL {
        let line = printed.lines().find(|line| line.split_whitespace().next() == Some(bug.name()));
        assert!(line.is_some_and(|line| line.contains(bug.description())), "{printed} lacks {bug}");
    }
}

#[test]
fn a_planted_bug_fails_a_store_run_and_its_replay_and_bundle_carry_the_bug() {
    let directory = scratch("store-bug");
    let scenario = root().join("scenarios/store-steady.toml");
    let output = migsim(
        &[
            "run",
            scenario.to_str().unwrap(),
            "--seeds",
            "0..2",
            "--bug",
            "stale_local_read",
            "--no-progress",
            "--repro-dir",
            "bundles",
            "--bundles",
            "1",
        ],
        &directory,
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let printed = text(&output);
    assert!(printed.contains("linearizable"), "{printed}");
    let replay = format!("replay: migsim repro {} --seed 0 --bug stale_local_read", scenario.display());
    assert!(printed.contains(&replay), "{printed}");
    let command = std::fs::read_to_string(directory.join("bundles/store-steady/seed-0/COMMAND")).unwrap();
    assert!(command.contains("--bug stale_local_read"), "{command}");
    // The honest store passes the same seeds.
    let output = migsim(&["run", scenario.to_str().unwrap(), "--seeds", "0..2", "--no-progress"], &directory);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
}

#[test]
fn repro_checks_its_flags_before_replaying() {
    let directory = scratch("repro-flags");
    let scenario = root().join("scenarios/ping-faults.toml");
    let scenario = scenario.to_str().unwrap();
    let cases: [(&[&str], &str); 3] = [
        (&["--kinds", "node_start,node_explode"], "--kinds: unknown event kind `node_explode`"),
        (&["--node", "5"], "--node: node 5 does not exist; ping-faults has nodes 0..5"),
        (&["--trace", "no/such/directory/trace.jsonl"], "--trace: no/such/directory/trace.jsonl:"),
    ];
    for (flags, expected) in cases {
        let mut arguments = vec!["repro", scenario, "--seed", "3"];
        arguments.extend_from_slice(flags);
        let output = migsim(&arguments, &directory);
        assert_eq!(output.status.code(), Some(2), "{flags:?}: {}", text(&output));
        assert!(text(&output).contains(expected), "{flags:?}: {}", text(&output));
        assert!(output.stdout.is_empty(), "{flags:?} replayed before refusing: {}", text(&output));
    }
    assert_eq!(std::fs::read_dir(&directory).unwrap().count(), 0, "a refused repro left files behind");
}

#[test]
fn repro_into_a_closed_pipe_does_not_panic() {
    // Closed at once (the summary lines meet a closed pipe), or after the first line of a listing
    // (`| head -1`).
    for (flags, read_first) in [(&["--quiet"][..], false), (&["--messages"][..], true)] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_migsim"))
            .args(["repro", "scenarios/ping-faults.toml", "--seed", "3"])
            .args(flags)
            .current_dir(root())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("migsim runs");
        let mut stdout = child.stdout.take().unwrap();
        if read_first {
            let mut first = [0u8; 64];
            assert!(std::io::Read::read(&mut stdout, &mut first).unwrap() > 0);
        }
        drop(stdout);
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{flags:?}: {stderr}");
        assert_eq!(output.status.code(), Some(0), "{flags:?}: {stderr}");
    }
}
