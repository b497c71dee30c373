//! Unit tests for parsing: defaults, fault resolution, and where errors point. The error text of
//! each bad file is pinned by the snapshots in `tests/scenario_errors.rs`.

use super::*;
use crate::nemesis::{FaultAction, NodeSet, Selector, Trigger};
use crate::runner::SystemPlan;
use crate::sut::store::{Bugs, StoreConfig, StoreTimers};
use crate::vocabulary::FaultKind;
use crate::workload::WorkloadConfig;

fn parse_ok(text: &str) -> Scenario {
    match parse("test.toml", text) {
        Ok(scenario) => scenario,
        Err(error) => panic!("{error}"),
    }
}

fn parse_error(text: &str) -> ScenarioError {
    match parse("test.toml", text) {
        Ok(scenario) => panic!("expected an error, parsed {scenario:?}"),
        Err(error) => error,
    }
}

#[test]
fn a_minimal_scenario_takes_every_default() {
    let scenario = parse_ok("name = \"minimal\"\nduration = \"3s\"\n");
    assert_eq!(
        scenario,
        Scenario {
            name: "minimal".to_string(),
            description: String::new(),
            seeds: SeedRange { start: 0, end: 100 },
            duration_us: 3_000_000,
            heal_us: 2_000_000,
            system: SystemKind::Ping,
            cluster: Cluster::default(),
            network: Network::default(),
            disk: DiskModel::default(),
            clock: ClockModel::default(),
            ping: Ping::default(),
            store: StoreTimers::default(),
            workload: None,
            migrations: Vec::new(),
            new_groups: Vec::new(),
            faults: Vec::new(),
            expect: Expect { checkers: vec![crate::checker::registry::find("ping_liveness").unwrap()] },
        }
    );
    assert_eq!(scenario.node_count(), 3);
}

#[test]
fn writing_the_defaults_out_gives_the_same_scenario() {
    let written = r#"
        name = "minimal"
        description = ""
        seeds = "0..100"
        duration = "3s"
        heal = "2s"
        system = "ping"

        [cluster]
        nodes = 3
        disks_per_node = 2
        groups = 1
        replicas = 3
        partitions = 16
        gateways = 1

        [network]
        latency = { min = "100us", max = "1ms" }
        bandwidth = "1GB"
        loss = 0
        duplicate = 0.0
        reorder = false

        [disk]
        capacity = "1GiB"
        write_latency = { min = "10us", max = "50us" }
        fsync_latency = { min = "500us", max = "2ms" }
        read_latency = { min = "10us", max = "50us" }

        [clock]
        skew_max = "0us"
        drift_ppm_max = 0

        [ping]
        interval = "1ms"
        payload = "64B"

        [expect]
        checkers = ["ping_liveness"]
    "#;
    assert_eq!(parse_ok(written), parse_ok("name = \"minimal\"\nduration = \"3s\"\n"));
}

#[test]
fn faults_resolve_to_world_faults() {
    let scenario = parse_ok(
        r#"
        name = "faults"
        duration = "2s"
        [cluster]
        nodes = 4
        [[faults]]
        fault = "net_partition"
        at = "1ms"
        nodes = [0, 1]
        [[faults]]
        fault = "net_clog"
        at = "2ms"
        nodes = [3]
        peers = [0]
        [[faults]]
        fault = "net_delay"
        at = "3ms"
        latency = { min = "1ms", max = "5ms" }
        [[faults]]
        fault = "disk_slow"
        at = "4ms"
        node = 2
        latency = { min = "1ms", max = "1ms" }
        [[faults]]
        fault = "clock_skew"
        at = "5ms"
        node = 1
        skew = "-2ms"
        drift_ppm = 50
        [[faults]]
        fault = "node_pause"
        at = "6ms"
        duration = "500ms"
        node = 3
        "#,
    );
    let actions: Vec<&FaultAction> = scenario.faults.iter().map(|spec| &spec.action).collect();
    let listed = |ids: &[u32]| NodeSet::Listed(ids.iter().map(|&id| Selector::Node(id)).collect());
    assert_eq!(
        actions,
        vec![
            &FaultAction::Partition { nodes: listed(&[0, 1]), peers: None },
            &FaultAction::Links {
                nodes: Some(listed(&[3])),
                peers: Some(listed(&[0])),
                both_ways: false,
                rate: 0.0,
                latency: None
            },
            &FaultAction::Links {
                nodes: None,
                peers: None,
                both_ways: true,
                rate: 0.0,
                latency: Some(LatencyRange { min_us: 1_000, max_us: 5_000 }),
            },
            &FaultAction::Disk {
                nodes: listed(&[2]),
                disk: None,
                rate: 0.0,
                latency: Some(LatencyRange { min_us: 1_000, max_us: 1_000 }),
            },
            &FaultAction::Clock { nodes: listed(&[1]), skew_us: -2_000, drift_ppm: 50 },
            &FaultAction::Node { nodes: listed(&[3]) },
        ]
    );
    let kinds: Vec<FaultKind> = scenario.faults.iter().map(|spec| spec.kind).collect();
    assert_eq!(
        kinds,
        vec![
            FaultKind::NetPartition,
            FaultKind::NetClog,
            FaultKind::NetDelay,
            FaultKind::DiskSlow,
            FaultKind::ClockSkew,
            FaultKind::NodePause
        ]
    );
    assert_eq!(scenario.faults[0].trigger, Trigger::At { at_us: 1_000 });
    assert_eq!(scenario.faults[0].duration_us, None);
    assert_eq!(scenario.faults[5].duration_us, Some(500_000));
    // The line of each entry's `fault = ...`, counted from the raw string's first (empty) line.
    assert_eq!(scenario.faults[0].line, 7);
}

#[test]
fn errors_name_file_line_column_and_field() {
    let error =
        parse_error("name = \"x\"\nduration = \"2s\"\n[[faults]]\nfault = \"net_loss\"\nat = \"1s\"\nrate =   1.5\n");
    assert_eq!(
        error,
        ScenarioError {
            file: "test.toml".to_string(),
            line: 6,
            column: 10,
            field: "faults[0].rate".to_string(),
            message: "must be between 0 and 1, got 1.5".to_string(),
        }
    );
    assert_eq!(error.to_string(), "error: test.toml:6:10: faults[0].rate: must be between 0 and 1, got 1.5");
}

#[test]
fn type_errors_from_toml_name_the_field() {
    let error = parse_error("name = \"x\"\nduration = \"2s\"\n[[faults]]\nfault = \"node_crash\"\nat = \"1s\"\nnode = 0\n[[faults]]\nfault = \"node_crash\"\nat = true\n");
    assert_eq!((error.line, error.column, error.field.as_str()), (9, 6, "faults[1].at"));
}

#[test]
fn columns_count_characters_not_bytes() {
    let error = parse_error("name = \"é\"; duration = \"2s\"\n");
    assert_eq!(error.line, 1);
    assert_eq!(error.column, 11);
}

#[test]
fn seed_ranges_are_half_open() {
    assert_eq!(parse_seed_range("0..1000"), Ok(SeedRange { start: 0, end: 1000 }));
    assert_eq!(parse_seed_range("42"), Ok(SeedRange { start: 42, end: 43 }));
    assert_eq!(parse_seed_range("7..8").map(|range| range.len()), Ok(1));
    assert!(parse_seed_range("5..5").is_err());
    assert!(parse_seed_range("5..2").is_err());
    assert!(parse_seed_range("0..=9").is_err());
    assert!(parse_seed_range("a..9").is_err());
    assert!(parse_seed_range("-1..9").is_err());
}

#[test]
fn workload_is_validated_before_it_is_rejected_for_ping() {
    let error = parse_error(
        "name = \"x\"\nduration = \"2s\"\n[workload]\nclients = 1\nkeys = 1\nmix = { put = 1 }\ndistribution = \"zipfian\"\nrate = 10\nop_timeout = \"1s\"\n",
    );
    assert_eq!(error.field, "workload");
    assert!(error.message.starts_with("does not apply to the ping system"), "{error}");
}

/// A store scenario with every field that shapes the store written out, and one more line.
fn store_text(extra: &str) -> String {
    format!(
        r#"
        name = "store"
        duration = "3s"
        heal = "2s"
        system = "store"
        [cluster]
        nodes = 5
        disks_per_node = 2
        groups = 4
        replicas = 3
        partitions = 16
        gateways = 2
        [store]
        heartbeat = "10ms"
        failure_timeout = "50ms"
        retry = "30ms"
        checkpoint_entries = 100
        segment_size = "64KiB"
        [workload]
        clients = 8
        keys = 100
        mix = {{ get = 0.5, put = 0.5 }}
        distribution = "zipfian"
        rate = 300
        op_timeout = "500ms"
        {extra}
        "#
    )
}

#[test]
fn store_plan_lays_out_storage_master_gateways_and_clients() {
    let scenario = parse_ok(&store_text(""));
    assert_eq!(scenario.system, SystemKind::Store);
    let names: Vec<&str> = scenario.expect.checkers.iter().map(|checker| checker.name).collect();
    assert_eq!(
        names,
        vec![
            "linearizable",
            "no_lost_write",
            "progress",
            "single_owner",
            "pause_budget",
            "migration_liveness",
            "cleanup"
        ]
    );
    // 5 storage nodes, the master, 2 gateways and the clients' node.
    assert_eq!(scenario.node_count(), 9);
    let plan = scenario.plan();
    assert_eq!(plan.nodes, 9);
    assert_eq!(plan.disks_per_node, 2);
    assert_eq!(plan.checkers, scenario.expect.checkers);
    let SystemPlan::Store(store) = plan.system else { panic!("a store scenario planned {:?}", plan.system) };
    assert_eq!(
        store.store,
        StoreConfig {
            storage_nodes: 5,
            reserve_nodes: 0,
            disks_per_node: 2,
            groups: 4,
            replicas: 3,
            partitions: 16,
            gateways: 2,
            timers: StoreTimers {
                heartbeat_us: 10_000,
                failure_timeout_us: 50_000,
                retry_us: 30_000,
                checkpoint_entries: 100,
                segment_bytes: 64 * 1024,
                snapshot_chunk_bytes: StoreTimers::default().snapshot_chunk_bytes,
            },
            bugs: Bugs::default(),
            migrations: Vec::new(),
            new_groups: Vec::new(),
        }
    );
    let layout = store.store.layout();
    assert_eq!((layout.master(), layout.gateway(0), layout.gateway(1), layout.clients()), (5, 6, 7, 8));
    assert_eq!(layout.node_count(), plan.nodes);
    // The read-back starts halfway through the heal phase (3s + 2s / 2); clients stop one op
    // timeout and a tenth (550ms) before it.
    assert_eq!(
        store.workload,
        WorkloadConfig {
            workload: Workload {
                clients: 8,
                keys: 100,
                mix: OperationMix { get: 0.5, put: 0.5, cas: 0.0, append: 0.0 },
                distribution: KeyDistribution::Zipfian { exponent: 0.99 },
                rate: 300.0,
                op_timeout_us: 500_000,
            },
            stop_at_us: 3_450_000,
            read_back_at_us: 4_000_000,
        }
    );
}

#[test]
fn store_timers_default_without_a_store_table() {
    let scenario = parse_ok(
        "name = \"x\"\nduration = \"1s\"\nsystem = \"store\"\n[workload]\nclients = 1\nkeys = 1\nmix = { put = 1 }\nrate = 10\nop_timeout = \"1s\"\n",
    );
    assert_eq!(scenario.store, StoreTimers::default());
    assert_eq!(scenario.node_count(), 3 + 1 + 1 + 1);
    let SystemPlan::Store(store) = scenario.plan().system else { panic!("not a store plan") };
    assert_eq!(store.store.timers, StoreTimers::default());
    assert_eq!(store.workload.read_back_at_us, 1_000_000 + 1_000_000);
}

#[test]
fn store_faults_may_aim_at_every_role_but_no_further() {
    let fault = |node: u32| format!("[[faults]]\nfault = \"node_crash\"\nat = \"1s\"\nnode = {node}\n");
    // 7 is the second gateway; 8 is the clients' node, the last one.
    let scenario = parse_ok(&store_text(&fault(7)));
    assert_eq!(scenario.faults[0].action, FaultAction::Node { nodes: NodeSet::Listed(vec![Selector::Node(7)]) });
    let error = parse_error(&store_text(&fault(8)));
    assert_eq!(error.field, "faults[0].node");
    assert!(error.message.starts_with("node 8 runs the store's clients"), "{}", error.message);
    let error = parse_error(&store_text(&fault(9)));
    assert_eq!(error.field, "faults[0].node");
    assert_eq!(
        error.message,
        "node 9 does not exist; the store's nodes are 0..5 (storage), 5 (master), 6..8 (gateways), 8 (clients)"
    );
}

#[test]
fn store_faults_name_roles_and_node_sets() {
    let entry = |body: &str| format!("[[faults]]\nat = \"1s\"\n{body}\n");
    let action = |body: &str| parse_ok(&store_text(&entry(body))).faults[0].action.clone();
    assert_eq!(
        action("fault = \"node_crash\"\nnode = \"primary\"\ngroup = 2"),
        FaultAction::Node { nodes: NodeSet::Listed(vec![Selector::Primary { group: 2 }]) }
    );
    assert_eq!(action("fault = \"node_restart\"\nnodes = \"storage\""), FaultAction::Node { nodes: NodeSet::Storage });
    assert_eq!(
        action("fault = \"net_partition\"\nnodes = [\"secondary\", \"master\"]\ngroup = 0"),
        FaultAction::Partition {
            nodes: NodeSet::Listed(vec![Selector::Secondary { group: 0 }, Selector::Master]),
            peers: None
        }
    );
    assert_eq!(
        action("fault = \"disk_slow\"\nnodes = \"all\"\nlatency = { min = \"1ms\", max = \"2ms\" }"),
        FaultAction::Disk {
            nodes: NodeSet::All,
            disk: None,
            rate: 0.0,
            latency: Some(LatencyRange { min_us: 1_000, max_us: 2_000 })
        }
    );
    let error = |body: &str| {
        let error = parse_error(&store_text(&entry(body)));
        format!("{}: {}", error.field, error.message)
    };
    assert_eq!(
        error("fault = \"node_crash\"\nnode = \"primary\""),
        "faults[0].group: missing; `primary` is a role within a group; name it, e.g. `group = 0` (groups 0..4)"
    );
    assert_eq!(
        error("fault = \"node_crash\"\nnode = \"primary\"\ngroup = 4\n").split(':').next(),
        Some("faults[0].group")
    );
    assert_eq!(
        error("fault = \"node_crash\"\nnode = 1\ngroup = 0"),
        "faults[0].group: applies only to the roles `primary` and `secondary`, which this fault does not name"
    );
    assert_eq!(
        error("fault = \"node_crash\"\nnode = \"leader\""),
        "faults[0].node: unknown role `leader`; a node is an id or one of: primary, secondary, master, gateway, source_primary, source_secondary, target_primary, target_secondary"
    );
    assert_eq!(
        error("fault = \"node_crash\"\nnodes = \"everyone\""),
        "faults[0].nodes: unknown node set `everyone`; write a list such as `[0, 1]`, or one of: all, storage, gateways"
    );
    assert_eq!(
        error("fault = \"node_crash\"\nnode = 1\nnodes = [2]"),
        "faults[0].nodes: give `node` (one node) or `nodes` (several), not both"
    );
    assert!(error("fault = \"disk_lost_fsync\"\nnodes = \"all\"\nrate = 0.5")
        .contains("(`all` includes it; `storage` does not)"));
    assert!(error("fault = \"peer_replace\"\nnode = \"master\"").contains("is the store's config master"));
}

#[test]
fn ping_faults_have_no_roles() {
    let text = "name = \"x\"\nduration = \"2s\"\n[[faults]]\nfault = \"node_crash\"\nat = \"1s\"\nnode = \"primary\"\n";
    let error = parse_error(text);
    assert_eq!(error.field, "faults[0].node");
    assert!(error.message.contains("the ping system's nodes have no roles"), "{}", error.message);
    let text =
        "name = \"x\"\nduration = \"2s\"\n[[faults]]\nfault = \"node_crash\"\nat = \"1s\"\nnodes = \"storage\"\n";
    assert_eq!(parse_error(text).message, "the ping system has no `storage` nodes; sets it has: all");
}

#[test]
fn durations_are_bounded() {
    let error = parse_error("name = \"x\"\nduration = \"2000000s\"\n");
    assert_eq!(error.field, "duration");
    assert!(error.message.starts_with("must be at most 3600s of model time"), "{}", error.message);
}

#[test]
fn a_defaulted_heal_too_short_for_the_read_back_points_at_the_top() {
    let text = "name = \"x\"\nduration = \"1s\"\nsystem = \"store\"\n[workload]\nclients = 1\nkeys = 1\nmix = { put = 1 }\nrate = 10\nop_timeout = \"1500ms\"\n";
    let error = parse_error(text);
    assert_eq!((error.line, error.column, error.field.as_str()), (1, 1, "heal"));
    assert!(error.message.starts_with("is 2s (the default), but the store system needs"), "{error}");
    assert!(error.message.ends_with("set e.g. `heal = \"3s\"`"), "{error}");
}

#[test]
fn a_heartbeat_too_long_for_the_default_failure_timeout_names_the_heartbeat() {
    let error = parse_error(&store_text("").replace("failure_timeout = \"50ms\"", "").replace("\"10ms\"", "\"15ms\""));
    assert_eq!(error.field, "store.heartbeat");
    assert!(error.message.contains("the master must be able to miss a heartbeat"), "{error}");
}

#[test]
fn every_store_timer_refuses_zero_and_names_its_field() {
    let cases = [
        ("heartbeat = \"10ms\"", "heartbeat = \"0ms\"", "store.heartbeat", 14),
        ("retry = \"30ms\"", "retry = \"0ms\"", "store.retry", 16),
        ("checkpoint_entries = 100", "checkpoint_entries = 0", "store.checkpoint_entries", 17),
    ];
    for (good, bad, field, line) in cases {
        let error = parse_error(&store_text("").replace(good, bad));
        assert_eq!((error.field.as_str(), error.line), (field, line), "{error}");
    }
}

/// A store scenario (`store_text`: 5 storage nodes, 4 groups of 3 replicas, 16 partitions, a 3s
/// safety phase) with `[[migrations]]` and `[[faults]]` entries appended.
fn with_migrations(entries: &str) -> String {
    store_text(entries)
}

/// `field: message` of the error a store scenario with `entries` gives.
fn store_error(entries: &str) -> String {
    let error = parse_error(&with_migrations(entries));
    format!("{}: {}", error.field, error.message)
}

const MOVE_7: &str =
    "[[migrations]]\nname = \"move-7\"\nat = \"1s\"\npartitions = [7]\nto = 0\npause_budget = \"50ms\"\n";

#[test]
fn migrations_take_their_defaults_and_new_groups_their_ids_in_planned_order() {
    let scenario = parse_ok(&with_migrations(
        r#"
        [[migrations]]
        name = "grow-late"
        at = "2s"
        partitions = [1, 5]
        to = "new_group"
        nodes = [4, 0, 2]
        pause_budget = "20ms"
        lag_threshold = 0
        max_attempts = 100
        attempt_timeout = "500ms"
        expect = "aborted"
        reason = "drain_over_budget"
        [[migrations]]
        name = "move-7"
        at = "1s"
        partitions = [7]
        to = "new_group"
        nodes = [1, 2, 3]
        pause_budget = "50ms"
        [[migrations]]
        name = "into-the-new"
        at = "1500ms"
        partitions = [2]
        to = 4
        pause_budget = "1ms"
        "#,
    ));
    // `move-7` is planned first, so the first group created is its: 4, then 5 for `grow-late`;
    // `into-the-new` (planned at 1.5s) may move a partition into group 4, created at 1s.
    assert_eq!(scenario.new_groups, vec![vec![1, 2, 3], vec![4, 0, 2]]);
    assert_eq!(
        scenario.migrations,
        vec![
            MigrationSpec {
                kind: crate::sut::store::migration::spec::OperationKind::Move,
                max_concurrent: 1,
                cancel_at_us: None,
                id: 0,
                name: "grow-late".to_string(),
                at_us: 2_000_000,
                partitions: vec![1, 5],
                to: 5,
                pause_budget_us: 20_000,
                lag_threshold: 0,
                max_attempts: 100,
                attempt_timeout_us: 500_000,
                expect: Expectation::Aborted(crate::vocabulary::AbortReason::DrainOverBudget),
            },
            MigrationSpec {
                kind: crate::sut::store::migration::spec::OperationKind::Move,
                max_concurrent: 1,
                cancel_at_us: None,
                id: 1,
                name: "move-7".to_string(),
                at_us: 1_000_000,
                partitions: vec![7],
                to: 4,
                pause_budget_us: 50_000,
                lag_threshold: 64,
                max_attempts: 3,
                attempt_timeout_us: 2_000_000,
                expect: Expectation::Done,
            },
            MigrationSpec {
                kind: crate::sut::store::migration::spec::OperationKind::Move,
                max_concurrent: 1,
                cancel_at_us: None,
                id: 2,
                name: "into-the-new".to_string(),
                at_us: 1_500_000,
                partitions: vec![2],
                to: 4,
                pause_budget_us: 1_000,
                lag_threshold: 64,
                max_attempts: 3,
                attempt_timeout_us: 2_000_000,
                expect: Expectation::Done,
            },
        ]
    );
    assert_eq!(planned_order(&scenario.migrations), vec![1, 2, 0]);
    let sources: Vec<Vec<(u32, u32)>> = scenario
        .partition_sources()
        .iter()
        .map(|moves| moves.iter().map(|source| (source.partition, source.source)).collect())
        .collect();
    assert_eq!(sources, vec![vec![(1, 1), (5, 1)], vec![(7, 3)], vec![(2, 2)]]);
    // The plan carries them to the store as they are.
    let SystemPlan::Store(store) = scenario.plan().system else { panic!("not a store plan") };
    assert_eq!(store.store.migrations, scenario.migrations);
    assert_eq!(store.store.new_groups, scenario.new_groups);
}

#[test]
fn a_partition_is_where_the_last_migration_expected_to_finish_moved_it() {
    // Partition 7 starts in group 7 % 4 = 3.
    assert_eq!(
        store_error(&MOVE_7.replace("to = 0", "to = 3")),
        "migrations[0].to: partition 7 is already in group 3 when `move-7` is planned (partition p starts in group \
         p % cluster.groups, 7 % 4 = 3); a migration moves partitions to another group"
    );
    // Moved to 0 at 1s, it cannot move to 0 again at 2s, but may go back to 3.
    let back = |to: u32, expect: &str| {
        format!("{MOVE_7}{expect}[[migrations]]\nname = \"again\"\nat = \"2s\"\npartitions = [7]\nto = {to}\npause_budget = \"50ms\"\n")
    };
    assert_eq!(
        store_error(&back(0, "")),
        "migrations[1].to: partition 7 is already in group 0 when `again` is planned (migrations[0] `move-7` moves it \
         there at 1s); a migration moves partitions to another group"
    );
    assert_eq!(parse_ok(&with_migrations(&back(3, ""))).migrations[1].to, 3);
    // A migration expected to abort leaves the partition where it was.
    let aborted = "expect = \"aborted\"\nreason = \"target_lost\"\n";
    assert_eq!(parse_ok(&with_migrations(&back(0, aborted))).migrations[1].to, 0);
    assert!(store_error(&back(3, aborted)).starts_with("migrations[1].to: partition 7 is already in group 3"));
    // Order is by `at`, not by file: the same two entries, the second planned first.
    let reordered = format!(
        "[[migrations]]\nname = \"again\"\nat = \"2s\"\npartitions = [7]\nto = 0\npause_budget = \"50ms\"\n{MOVE_7}"
    );
    assert!(store_error(&reordered).starts_with("migrations[0].to: partition 7 is already in group 0"));
}

#[test]
fn every_migration_rule_names_its_field() {
    let cases: &[(&str, &str, &str)] = &[
        ("partitions = [7]", "partitions = [16]", "migrations[0].partitions[0]: partition 16 does not exist; partitions are 0..16 (cluster.partitions = 16)"),
        ("partitions = [7]", "partitions = [7, 3, 7]", "migrations[0].partitions[2]: partition 7 is listed twice"),
        ("partitions = [7]", "partitions = []", "migrations[0].partitions: must list at least one partition, e.g. `partitions = [7]`"),
        ("pause_budget = \"50ms\"", "pause_budget = \"0ms\"", "migrations[0].pause_budget: must be longer than 0"),
        ("to = 0", "to = 4", "migrations[0].to: group 4 does not exist when `move-7` is planned; the cluster has groups 0..4 (cluster.groups = 4); write `to = \"new_group\"` with `nodes` to create one"),
        ("to = 0", "to = -1", "migrations[0].to: group -1 does not exist; group ids start at 0"),
        ("to = 0", "to = \"fresh\"", "migrations[0].to: unknown target `fresh`; write a group id (e.g. `to = 1`) or `\"new_group\"`"),
        ("to = 0", "to = \"new_group\"", "migrations[0].nodes: missing; a new group needs its members: `nodes` lists 3 distinct storage node ids (cluster.replicas = 3) from 0..5, e.g. `nodes = [0, 1, 2]`"),
        ("to = 0", "to = \"new_group\"\nnodes = [0, 1]", "migrations[0].nodes: lists 2 nodes, but every group has cluster.replicas = 3 replicas, each on its own storage node"),
        ("to = 0", "to = \"new_group\"\nnodes = [0, 1, 5]", "migrations[0].nodes[2]: node 5 is not a storage node; a group's replicas live on storage nodes 0..5 (cluster.nodes = 5)"),
        ("to = 0", "to = \"new_group\"\nnodes = [0, 1, 0]", "migrations[0].nodes[2]: node 0 is listed twice; each replica of a group lives on its own node"),
        ("to = 0", "to = 0\nnodes = [0, 1, 2]", "migrations[0].nodes: applies only to `to = \"new_group\"`: group 0's members are its own; to create a group for the migration, write `to = \"new_group\"`"),
        ("name = \"move-7\"", "name = \" \"", "migrations[0].name: must not be empty; faults and traces name a migration by it, e.g. `name = \"move-7\"`"),
        ("at = \"1s\"", "at = \"3s\"", "migrations[0].at: must be before the end of the safety phase (duration = 3s), got 3s"),
        ("at = \"1s\"", "", "migrations[0].at: missing; say when the master plans the migration, e.g. `at = \"2s\"`"),
        ("pause_budget = \"50ms\"", "", "migrations[0].pause_budget: missing; say how long a write may pause because of the migration, e.g. `pause_budget = \"50ms\"`"),
        ("to = 0", "to = 0\nmax_attempts = 0", "migrations[0].max_attempts: must be between 1 and 100, got 0"),
        ("to = 0", "to = 0\nmax_attempts = 101", "migrations[0].max_attempts: must be between 1 and 100, got 101"),
        ("to = 0", "to = 0\nlag_threshold = -1", "migrations[0].lag_threshold: must be at least 0, got -1"),
        ("to = 0", "to = 0\nattempt_timeout = \"0s\"", "migrations[0].attempt_timeout: must be longer than 0"),
        ("to = 0", "to = 0\nexpect = \"finished\"", "migrations[0].expect: unknown outcome `finished`; allowed: done, aborted"),
        ("to = 0", "to = 0\nreason = \"target_lost\"", "migrations[0].reason: applies only with `expect = \"aborted\"`: a migration expected to finish gives no abort reason"),
        ("to = 0", "to = 0\nexpect = \"aborted\"", "migrations[0].reason: missing; `expect = \"aborted\"` needs the reason the migration gives up with, one of: lag_not_converging, drain_over_budget, source_failover, target_lost, attempt_timeout, cancelled, disk_error, copy_corrupt, node_restart"),
        ("to = 0", "to = 0\nexpect = \"aborted\"\nreason = \"bad_luck\"", "migrations[0].reason: unknown abort reason `bad_luck`; allowed: lag_not_converging, drain_over_budget, source_failover, target_lost, attempt_timeout, cancelled, disk_error, copy_corrupt, node_restart"),
    ];
    for (good, bad, expected) in cases {
        let text = MOVE_7.replace(good, bad);
        assert_eq!(&store_error(&text), expected, "{bad}");
    }
}

#[test]
fn migration_names_are_unique_and_groups_exist_before_they_are_used() {
    let second = |name: &str, at: &str, to: &str| {
        format!(
            "[[migrations]]\nname = \"{name}\"\nat = \"{at}\"\npartitions = [2]\nto = {to}\npause_budget = \"5ms\"\n"
        )
    };
    assert_eq!(
        store_error(&format!("{MOVE_7}{}", second("move-7", "2s", "0"))),
        "migrations[1].name: `move-7` is already the name of migrations[0]; faults and traces name a migration by its \
         name, so each needs its own"
    );
    // Group 4 is created by `grow` at 2s: a migration at 1s cannot use it, one at 2s after it in
    // the file can.
    let grow = "[[migrations]]\nname = \"grow\"\nat = \"2s\"\npartitions = [3]\nto = \"new_group\"\nnodes = [0, 1, 2]\npause_budget = \"5ms\"\n";
    assert_eq!(
        store_error(&format!("{grow}{}", second("early", "1s", "4"))),
        "migrations[1].to: group 4 does not exist when `early` is planned; the cluster has groups 0..4 (cluster.groups \
         = 4); group 4 is created by migrations[0] `grow`, planned at 2s, after this one"
    );
    assert_eq!(parse_ok(&with_migrations(&format!("{grow}{}", second("same-time", "2s", "4")))).migrations[1].to, 4);
    assert_eq!(
        store_error(&format!("{grow}{}", second("later", "2500ms", "5"))),
        "migrations[1].to: group 5 does not exist when `later` is planned; the cluster has groups 0..4 (cluster.groups \
         = 4) and 4 (created by migrations[0]); write `to = \"new_group\"` with `nodes` to create one"
    );
}

#[test]
fn migrations_refuse_unknown_fields_and_other_systems() {
    let error = parse_error(&with_migrations(&MOVE_7.replace("to = 0", "to = 0\nbudget = \"5ms\"")));
    assert_eq!(error.field, "migrations[0].budget");
    assert!(error.message.starts_with("unknown field `budget`"), "{}", error.message);
    // A ping scenario checks the entries, then refuses them.
    let ping = format!("name = \"x\"\nduration = \"3s\"\n{MOVE_7}");
    let error = parse_error(&ping);
    assert_eq!((error.line, error.field.as_str()), (3, "migrations"));
    assert_eq!(
        error.message,
        "does not apply to the ping system; migrations move the partitions of the store system (`system = \"store\"`)"
    );
    assert_eq!(parse_error(&ping.replace("[7]", "[99]")).field, "migrations[0].partitions[0]");
}

#[test]
fn created_groups_are_bounded_like_the_cluster_s() {
    let mut entries = String::new();
    for index in 0..61 {
        entries.push_str(&format!(
            "[[migrations]]\nname = \"grow-{index}\"\nat = \"1s\"\npartitions = [{}]\nto = \"new_group\"\nnodes = [0, 1, 2]\npause_budget = \"5ms\"\n",
            index % 16
        ));
    }
    // 4 groups and 60 created make 64; the 61st would be group 64.
    assert_eq!(
        store_error(&entries),
        "migrations[60].to: would create group 64, but a cluster has at most 64 groups, counting those migrations create"
    );
}

#[test]
fn a_fault_starts_at_a_time_or_at_a_migration_s_phase() {
    let fault = |trigger: &str| {
        let scenario =
            parse_ok(&with_migrations(&format!("{MOVE_7}[[faults]]\nfault = \"node_crash\"\nnode = 1\n{trigger}\n")));
        (scenario.faults[0].trigger.clone(), scenario.faults[0].migration.clone())
    };
    assert_eq!(
        fault("when = { migration = \"move-7\", phase = \"catch_up\", after = \"20ms\", attempt = 3 }"),
        (
            Trigger::Phase {
                migration: "move-7".to_string(),
                phase: crate::vocabulary::MigrationPhase::CatchUp.into(),
                attempt: Some(3),
                after_us: 20_000
            },
            Some("move-7".to_string())
        )
    );
    assert_eq!(
        fault("when = { migration = \"move-7\", phase = \"freeze\" }"),
        (
            Trigger::Phase {
                migration: "move-7".to_string(),
                phase: crate::vocabulary::MigrationPhase::Freeze.into(),
                attempt: None,
                after_us: 0
            },
            Some("move-7".to_string())
        )
    );
    assert_eq!(fault("at = \"2s\""), (Trigger::At { at_us: 2_000_000 }, None));
}

#[test]
fn phase_triggers_name_a_migration_a_phase_and_an_attempt_it_makes() {
    let error =
        |trigger: &str| store_error(&format!("{MOVE_7}[[faults]]\nfault = \"node_crash\"\nnode = 1\n{trigger}\n"));
    let phases = "planned, snapshot, catch_up, freeze, drain, commit, cleanup, done, aborted";
    let cases = [
        (
            "at = \"1s\"\nwhen = { migration = \"move-7\", phase = \"drain\" }",
            "faults[0].when: give `at` (a time) or `when` (a migration's phase), not both".to_string(),
        ),
        (
            "",
            "faults[0].at: missing; say when the fault starts, e.g. `at = \"2s\"`, or at which phase of a migration, \
             e.g. `when = { migration = \"move-7\", phase = \"catch_up\" }`"
                .to_string(),
        ),
        (
            "when = { migration = \"move-8\", phase = \"drain\" }",
            "faults[0].when.migration: no migration is named `move-8`; migrations: move-7".to_string(),
        ),
        (
            "when = { phase = \"drain\" }",
            "faults[0].when.migration: missing; name the migration whose phase starts the fault, e.g. `migration = \
             \"move-7\"`; migrations: move-7"
                .to_string(),
        ),
        (
            "when = { migration = \"move-7\", phase = \"catchup\" }",
            format!("faults[0].when.phase: unknown phase `catchup`; allowed: {phases}"),
        ),
        (
            "when = { migration = \"move-7\" }",
            format!(
                "faults[0].when.phase: missing; name the phase of `move-7` that starts the fault, one of: {phases}"
            ),
        ),
        (
            "when = { migration = \"move-7\", phase = \"drain\", attempt = 4 }",
            "faults[0].when.attempt: must be between 1 and 3, got 4; migrations[0] `move-7` makes at most 3 attempts \
             (max_attempts)"
                .to_string(),
        ),
        (
            "when = { migration = \"move-7\", phase = \"drain\", attempt = 0 }",
            "faults[0].when.attempt: must be between 1 and 3, got 0; migrations[0] `move-7` makes at most 3 attempts \
             (max_attempts)"
                .to_string(),
        ),
        (
            "when = { migration = \"move-7\", phase = \"drain\", after = \"3s\" }",
            "faults[0].when.after: must be shorter than the safety phase (duration = 3s), got 3s; the fault could \
             never fire"
                .to_string(),
        ),
    ];
    for (trigger, expected) in cases {
        assert_eq!(error(trigger), expected, "{trigger}");
    }
    assert!(error("when = { migration = \"move-7\", phase = \"drain\", after = \"20\" }")
        .starts_with("faults[0].when.after: "));
    let error = parse_error(&with_migrations(&format!(
        "{MOVE_7}[[faults]]\nfault = \"node_crash\"\nnode = 1\nwhen = {{ migration = \"move-7\", phase = \"drain\", delay = \"1ms\" }}\n"
    )));
    assert_eq!(error.field, "faults[0].when.delay");
    // Without migrations, the error says so.
    assert_eq!(
        store_error(
            "[[faults]]\nfault = \"node_crash\"\nnode = 1\nwhen = { migration = \"move-7\", phase = \"drain\" }\n"
        ),
        "faults[0].when.migration: no migration is named `move-7`; this scenario has no `[[migrations]]`"
    );
}

#[test]
fn migration_roles_name_the_fault_s_migration() {
    let parse = |body: &str| {
        let scenario = parse_ok(&with_migrations(&format!("{MOVE_7}[[faults]]\n{body}\n")));
        scenario.faults[0].clone()
    };
    let source_primary =
        Selector::Migration { side: crate::nemesis::Side::Source, member: crate::nemesis::Member::Primary };
    let target_secondary =
        Selector::Migration { side: crate::nemesis::Side::Target, member: crate::nemesis::Member::Secondary };
    let spec = parse(
        "fault = \"peer_replace\"\nnode = \"source_primary\"\nwhen = { migration = \"move-7\", phase = \"catch_up\" }",
    );
    assert_eq!(spec.action, FaultAction::Node { nodes: NodeSet::Listed(vec![source_primary]) });
    assert_eq!(spec.migration.as_deref(), Some("move-7"));
    assert_eq!(spec.selector(), "nodes = primary of the source of move-7");
    let spec = parse(
        "fault = \"net_partition\"\nat = \"2s\"\nmigration = \"move-7\"\nnodes = [\"target_secondary\", \"target_secondary\", \"master\"]",
    );
    assert_eq!(
        spec.action,
        FaultAction::Partition {
            nodes: NodeSet::Listed(vec![target_secondary, target_secondary, Selector::Master]),
            peers: None
        }
    );
    assert_eq!(spec.trigger, Trigger::At { at_us: 2_000_000 });
    assert_eq!(spec.migration.as_deref(), Some("move-7"));

    let error = |body: &str| store_error(&format!("{MOVE_7}[[faults]]\n{body}\n"));
    assert_eq!(
        error("fault = \"node_crash\"\nat = \"2s\"\nnode = \"target_primary\""),
        "faults[0].migration: missing; `target_primary` is a role within a migration; name it, e.g. `migration = \
         \"move-7\"`, or start the fault at one of its phases, e.g. `when = { migration = \"move-7\", phase = \
         \"catch_up\" }`; migrations: move-7"
    );
    assert_eq!(
        error("fault = \"node_crash\"\nat = \"2s\"\nmigration = \"move-9\"\nnode = \"target_primary\""),
        "faults[0].migration: no migration is named `move-9`; migrations: move-7"
    );
    assert_eq!(
        error("fault = \"node_crash\"\nwhen = { migration = \"move-7\", phase = \"drain\" }\nmigration = \"move-7\"\nnode = \"target_primary\""),
        "faults[0].migration: is not needed: the fault's migration is its trigger's (`when.migration = \"move-7\"`); \
         `migration` names one for faults triggered by `at`"
    );
    assert_eq!(
        error("fault = \"node_crash\"\nat = \"2s\"\nmigration = \"move-7\"\nnode = \"primary\"\ngroup = 0"),
        "faults[0].migration: applies only to the roles `source_primary`, `source_secondary`, `target_primary`, \
         `target_secondary`, which this fault does not name"
    );
    assert_eq!(
        error("fault = \"node_crash\"\nat = \"2s\"\nmigration = \"move-7\"\nnodes = [\"source_primary\", \"source_primary\"]"),
        "faults[0].nodes[1]: primary of the source is listed twice"
    );
    assert_eq!(
        error("fault = \"node_restart\"\nat = \"2s\"\nmigration = \"move-7\"\nnodes = \"source_primary\""),
        "faults[0].nodes: `source_primary` names one node; write `nodes = [\"source_primary\"]`, or `node = \
         \"source_primary\"` for faults that take one"
    );
    // `migration` is a field of the faults that take nodes, as `group` is.
    assert!(error("fault = \"net_loss\"\nat = \"2s\"\nrate = 0.1\nmigration = \"move-7\"")
        .starts_with("faults[0].migration: applies only to the roles"));
}

#[test]
fn cluster_operations_parse_with_their_kinds_and_defaults() {
    use crate::sut::store::migration::spec::OperationKind;
    let scenario = parse_ok(&with_migrations(
        r#"
        [[migrations]]
        name = "drain-3"
        kind = "scale_in"
        at = "1s"
        group = 3
        to = [0, 1]
        max_concurrent = 2
        pause_budget = "50ms"

        [[migrations]]
        name = "even-out"
        kind = "rebalance"
        at = "2s"
        cancel_at = "2100ms"
        pause_budget = "50ms"
        "#,
    ));
    let [drain, even] = &scenario.migrations[..] else { panic!("{:?}", scenario.migrations) };
    assert_eq!(drain.kind, OperationKind::ScaleIn { group: 3, to: vec![0, 1] });
    assert_eq!((drain.max_concurrent, drain.partitions.len()), (2, 0));
    assert_eq!(even.kind, OperationKind::Rebalance);
    assert_eq!(even.cancel_at_us, Some(2_100_000));
    assert_eq!(even.expect, Expectation::DoneOrCancelled, "a cancelled migration may end either way");
}

#[test]
fn every_cluster_operation_rule_names_its_field() {
    let op = |fields: &str| format!("[[migrations]]\nname = \"op\"\nat = \"1s\"\npause_budget = \"50ms\"\n{fields}\n");
    let cases = [
        (
            "kind = \"grow\"",
            "migrations[0].kind: unknown kind `grow`; allowed: move, scale_out, scale_in, rebalance, disk_move",
        ),
        (
            "kind = \"rebalance\"\npartitions = [1]",
            "migrations[0].partitions: does not apply to `kind = \"rebalance\"`",
        ),
        ("kind = \"rebalance\"\nto = 1", "migrations[0].to: does not apply to `kind = \"rebalance\"`"),
        ("kind = \"scale_in\"", "migrations[0].group: missing; say which group the scale-in drains"),
        ("kind = \"scale_in\"\ngroup = 9", "migrations[0].group: group 9 does not exist"),
        ("kind = \"scale_in\"\ngroup = 3\nto = [3]", "migrations[0].to[0]: group 3 is the group this scale-in drains"),
        ("kind = \"scale_in\"\ngroup = 3\nto = 1", "migrations[0].to: a scale-in's `to` lists the groups"),
        (
            "kind = \"scale_in\"\ngroup = 3\npartitions = [3]",
            "migrations[0].partitions: does not apply to `kind = \"scale_in\"`",
        ),
        ("kind = \"scale_out\"\nto = 1", "migrations[0].to: a scale-out brings a new group into the cluster"),
        ("partitions = [7]\nto = [0, 1]", "migrations[0].to: a list of groups applies only to `kind = \"scale_in\"`"),
        ("partitions = [7]\nto = 0\ngroup = 1", "migrations[0].group: does not apply to `kind = \"move\"`"),
        ("partitions = [7]\nto = 0\nmax_concurrent = 0", "migrations[0].max_concurrent: "),
        (
            "partitions = [7]\nto = 0\ncancel_at = \"500ms\"",
            "migrations[0].cancel_at: must be at or after the migration's `at` (1s)",
        ),
    ];
    for (fields, expected) in cases {
        let error = store_error(&op(fields));
        assert!(error.starts_with(expected), "{fields:?}:\n  got      {error}\n  expected {expected}");
    }
    // A listed partition after a planner's operation: where it is then is decided at run time.
    let listed_after = format!(
        "{}{}",
        op("kind = \"rebalance\""),
        MOVE_7.replace("name = \"move-7\"", "name = \"late\"").replace("at = \"1s\"", "at = \"2s\"")
    );
    assert!(
        store_error(&listed_after).starts_with("migrations[1].partitions: `late` lists its partitions but is planned after migrations[0] `op` (rebalance at 1s)"),
        "{}",
        store_error(&listed_after)
    );
    // Disk moves: one node's replica of one group, to another of its disks.
    let disk = |fields: &str| format!("[[migrations]]\nname = \"d\"\nat = \"1s\"\nkind = \"disk_move\"\n{fields}\n");
    let disk_cases = [
        ("node = 2\nto_disk = 0", "migrations[0].group: missing; say which group's replica moves"),
        ("group = 1\nto_disk = 0", "migrations[0].node: missing; say which storage node's replica moves"),
        ("group = 1\nnode = 2", "migrations[0].to_disk: missing; say which of the node's disks"),
        ("group = 9\nnode = 2\nto_disk = 0", "migrations[0].group: group 9 does not exist"),
        (
            "group = 1\nnode = 0\nto_disk = 0",
            "migrations[0].node: node 0 hosts no replica of group 1; its replicas are on nodes 1, 2, 3",
        ),
        ("group = 1\nnode = 2\nto_disk = 1", "migrations[0].to_disk: group 1's replicas are on disk 1 already"),
        ("group = 1\nnode = 2\nto_disk = 2", "migrations[0].to_disk: must be between 0 and 1, got 2"),
        (
            "group = 1\nnode = 2\nto_disk = 0\npause_budget = \"50ms\"",
            "migrations[0].pause_budget: does not apply to `kind = \"disk_move\"`",
        ),
        (
            "group = 1\nnode = 2\nto_disk = 0\npartitions = [1]",
            "migrations[0].partitions: does not apply to `kind = \"disk_move\"`",
        ),
        (
            "group = 1\nnode = 2\nto_disk = 0\ncancel_at = \"2s\"",
            "migrations[0].cancel_at: does not apply to `kind = \"disk_move\"`",
        ),
    ];
    for (fields, expected) in disk_cases {
        let error = store_error(&disk(fields));
        assert!(error.starts_with(expected), "{fields:?}:\n  got      {error}\n  expected {expected}");
    }
    let twice = format!(
        "{}{}",
        disk("group = 1\nnode = 2\nto_disk = 0"),
        disk("group = 1\nnode = 2\nto_disk = 0").replace("\"d\"", "\"e\"")
    );
    assert!(
        store_error(&twice)
            .starts_with("migrations[1].node: node 2's replica of group 1 is moved already by migrations[0] `d`"),
        "{}",
        store_error(&twice)
    );
    let node_on_a_move = op("partitions = [7]\nto = 0\nnode = 1");
    assert!(store_error(&node_on_a_move).starts_with("migrations[0].node: does not apply to `kind = \"move\"`"));
    // A disk move's phase triggers name its states.
    let crash = |phase: &str| {
        format!(
            "{}[[faults]]\nfault = \"node_crash\"\nnode = 2\nwhen = {{ migration = \"d\", phase = \"{phase}\" }}\n",
            disk("group = 1\nnode = 2\nto_disk = 0")
        )
    };
    let scenario = parse_ok(&with_migrations(&crash("learn")));
    assert_eq!(
        scenario.faults[0].trigger,
        Trigger::Phase {
            migration: "d".into(),
            phase: crate::nemesis::TriggerPhase::Disk(crate::vocabulary::DiskMoveState::Learn),
            attempt: None,
            after_us: 0
        }
    );
    assert!(store_error(&crash("drain")).starts_with("faults[0].when.phase: unknown state `drain` of disk move `d`; allowed: moving, moved, closed, learn, completed"), "{}", store_error(&crash("drain")));
    // Reserve nodes are the store's.
    let ping = "name = \"p\"\nduration = \"1s\"\n[cluster]\nreserve_nodes = 2\n";
    assert_eq!(parse_error(ping).field, "cluster.reserve_nodes");
}
