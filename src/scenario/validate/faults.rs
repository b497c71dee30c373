//! `[[faults]]` entries: the fault's name, its trigger (a time, `at`, or a migration's phase,
//! `when`), which fields apply to it, its targets (node ids, role selectors such as `primary` of a
//! `group` or `source_primary` of a migration, or node sets such as `"storage"`) and its
//! parameters, into a `nemesis::FaultSpec`. Targets that name a role are checked here only for
//! whether the system has that role; the engine resolves them when the fault fires.

use std::ops::Range;

use toml::Spanned;

use super::{list, Checked, Validator, DRIFT_PPM_LIMIT, MIGRATION_DRIFT_PPM_LIMIT};
use crate::nemesis::{FaultAction, FaultSpec, NodeSet, Selector, Trigger, TriggerPhase};
use crate::scenario::error::line_and_column;
use crate::scenario::schema::{RawFault, RawNode, RawNodeSet, RawWhen};
use crate::scenario::{store_layout, Cluster, MigrationSpec, SystemKind};
use crate::sut::store::migration::spec::OperationKind;
use crate::units::{format_us, parse_duration_us};
use crate::vocabulary::{DiskMoveState, FaultKind, MigrationPhase, NodeId};
use crate::world::fault::LatencyRange;

/// The error for a fault with neither `at` nor `when`.
const MISSING_TRIGGER: &str =
    "missing; say when the fault starts, e.g. `at = \"2s\"`, or at which phase of a migration, \
                               e.g. `when = { migration = \"move-7\", phase = \"catch_up\" }`";

impl Validator<'_> {
    pub(super) fn fault(
        &self,
        raw: &Spanned<RawFault>,
        entry: u32,
        scenario_duration_us: u64,
        system: SystemKind,
        cluster: &Cluster,
        migrations: &[MigrationSpec],
    ) -> Checked<FaultSpec> {
        let field = format!("faults[{entry}]");
        let table = raw.get_ref();
        let all_faults = || list(FaultKind::ALL.iter().map(|kind| kind.name()));
        let name = table.fault.as_ref().ok_or_else(|| {
            self.context.at(
                raw.span().start,
                format!("{field}.fault"),
                format!("missing; name the fault, one of: {}", all_faults()),
            )
        })?;
        let kind = FaultKind::from_name(name.get_ref()).ok_or_else(|| {
            self.error(
                name,
                format!("{field}.fault"),
                format!("unknown fault `{}`; allowed: {}", name.get_ref(), all_faults()),
            )
        })?;
        let allowed = fields_of(kind);
        for (parameter, span) in present_parameters(table) {
            if !allowed.contains(&parameter) {
                return Err(self.context.at(
                    span.start,
                    format!("{field}.{parameter}"),
                    format!(
                        "`{parameter}` does not apply to {kind}; {kind} takes: fault, at or when, {}",
                        allowed.join(", ")
                    ),
                ));
            }
        }
        let trigger = match (&table.at, &table.when) {
            (Some(_), Some(when)) => {
                return Err(self.error(
                    when,
                    format!("{field}.when"),
                    "give `at` (a time) or `when` (a migration's phase), not both",
                ))
            }
            (Some(at), None) => {
                let at_us = self.duration(at, &format!("{field}.at"))?;
                if at_us >= scenario_duration_us {
                    return Err(self.error(
                        at,
                        format!("{field}.at"),
                        format!(
                            "must be before the end of the safety phase (duration = {}), got {}",
                            format_us(scenario_duration_us),
                            format_us(at_us)
                        ),
                    ));
                }
                Trigger::At { at_us }
            }
            (None, Some(when)) => self.phase_trigger(when, &field, scenario_duration_us, migrations)?,
            (None, None) => return Err(self.context.at(raw.span().start, format!("{field}.at"), MISSING_TRIGGER)),
        };
        // The migration whose roles the fault's selectors name: its trigger's, or its own field's.
        let migration = match (&trigger, &table.migration) {
            (Trigger::Phase { migration, .. }, Some(written)) => {
                return Err(self.error(
                    written,
                    format!("{field}.migration"),
                    format!(
                        "is not needed: the fault's migration is its trigger's (`when.migration = \"{migration}\"`); \
                         `migration` names one for faults triggered by `at`"
                    ),
                ))
            }
            (Trigger::Phase { migration, .. }, None) => Some(migration.clone()),
            (Trigger::At { .. }, Some(written)) => {
                Some(self.migration_name(written, &format!("{field}.migration"), migrations)?.name.clone())
            }
            (Trigger::At { .. }, None) => None,
        };
        let duration_us = match &table.duration {
            Some(duration) => Some(self.positive_duration(duration, &format!("{field}.duration"))?),
            None => None,
        };
        let targets = Targets {
            validator: self,
            raw,
            field: &field,
            kind,
            system,
            cluster,
            migration: migration.as_deref(),
            migrations,
        };
        let action = match kind {
            FaultKind::NodeCrash | FaultKind::NodeRestart | FaultKind::PeerReplace => {
                FaultAction::Node { nodes: targets.subject()? }
            }
            FaultKind::NodePause => {
                let nodes = targets.subject()?;
                if duration_us.is_none() {
                    return Err(targets.missing(
                        "duration",
                        "node_pause needs how long the node stalls, e.g. `duration = \"500ms\"`".to_string(),
                    ));
                }
                FaultAction::Node { nodes }
            }
            FaultKind::NetPartition => {
                let nodes = targets.set_field("nodes")?.ok_or_else(|| {
                    targets.missing("nodes", format!("{kind} needs the nodes it cuts off, e.g. `nodes = [0]`"))
                })?;
                FaultAction::Partition { nodes, peers: targets.peers()? }
            }
            FaultKind::NetLoss
            | FaultKind::NetDelay
            | FaultKind::NetDuplicate
            | FaultKind::NetReorder
            | FaultKind::NetClog => {
                let nodes = targets.set_field("nodes")?;
                if nodes.is_none() && kind == FaultKind::NetClog {
                    return Err(targets.missing(
                        "nodes",
                        format!("{kind} needs the nodes it holds messages from, e.g. `nodes = [0]`"),
                    ));
                }
                let peers = targets.peers()?;
                let both_ways_default = kind != FaultKind::NetClog;
                let both_ways = table.both_ways.as_ref().map_or(both_ways_default, |value| *value.get_ref());
                let rate = match kind {
                    FaultKind::NetLoss | FaultKind::NetDuplicate => targets.rate()?,
                    _ => 0.0,
                };
                let latency = match kind {
                    FaultKind::NetDelay => Some(targets.latency()?),
                    _ => None,
                };
                FaultAction::Links { nodes, peers, both_ways, rate, latency }
            }
            FaultKind::DiskLostFsync
            | FaultKind::DiskTornWrite
            | FaultKind::DiskCorruption
            | FaultKind::DiskFsyncError
            | FaultKind::DiskFull
            | FaultKind::DiskSlow => {
                let nodes = targets.subject()?;
                let disk = targets.disk()?;
                let rate = match kind {
                    FaultKind::DiskLostFsync | FaultKind::DiskCorruption => targets.rate()?,
                    _ => 0.0,
                };
                let latency = match kind {
                    FaultKind::DiskSlow => Some(targets.latency()?),
                    _ => None,
                };
                FaultAction::Disk { nodes, disk, rate, latency }
            }
            FaultKind::ClockSkew => {
                let nodes = targets.subject()?;
                let (skew_us, drift_ppm) = targets.clock()?;
                if !migrations.is_empty() {
                    targets.clock_within_the_pause_model(skew_us, drift_ppm)?;
                }
                FaultAction::Clock { nodes, skew_us, drift_ppm }
            }
        };
        targets.group_is_used(&action)?;
        let spec = FaultSpec { entry, line: 0, kind, trigger, duration_us, action, migration };
        if let (Some(written), false) = (&table.migration, spec.needs_migration()) {
            return Err(self.error(
                written,
                format!("{field}.migration"),
                format!(
                    "applies only to the roles {}, which this fault does not name",
                    Selector::MIGRATION_ROLES
                        .iter()
                        .map(|(name, _)| format!("`{name}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let (line, _) = line_and_column(self.context.text, name.span().start);
        Ok(FaultSpec { line, ..spec })
    }

    /// `when = { migration, phase, after, attempt }`.
    fn phase_trigger(
        &self,
        when: &Spanned<RawWhen>,
        field: &str,
        scenario_duration_us: u64,
        migrations: &[MigrationSpec],
    ) -> Checked<Trigger> {
        let table = when.get_ref();
        let field = format!("{field}.when");
        let missing = |name: &str, message: String| {
            self.context.at(when.span().start, format!("{field}.{name}"), format!("missing; {message}"))
        };
        let phases = || list(MigrationPhase::ALL.iter().map(|phase| phase.name()));
        let states =
            || list(DiskMoveState::ALL.iter().filter(|state| **state != DiskMoveState::Idle).map(|state| state.name()));
        let migration = match &table.migration {
            Some(name) => self.migration_name(name, &format!("{field}.migration"), migrations)?,
            None => {
                return Err(missing(
                    "migration",
                    format!(
                        "name the migration whose phase starts the fault, e.g. `migration = \"move-7\"`{}",
                        self.migration_names(migrations)
                    ),
                ))
            }
        };
        let disk_move = matches!(migration.kind, OperationKind::DiskMove { .. });
        let phase = match &table.phase {
            // A disk move has states, not a partition move's phases.
            Some(phase) if disk_move => DiskMoveState::from_name(phase.get_ref())
                .filter(|state| *state != DiskMoveState::Idle)
                .map(TriggerPhase::Disk)
                .ok_or_else(|| {
                    self.error(
                        phase,
                        format!("{field}.phase"),
                        format!(
                            "unknown state `{}` of disk move `{}`; allowed: {}",
                            phase.get_ref(),
                            migration.name,
                            states()
                        ),
                    )
                })?,
            Some(phase) => {
                MigrationPhase::from_name(phase.get_ref()).map(TriggerPhase::Migration).ok_or_else(|| {
                    self.error(
                        phase,
                        format!("{field}.phase"),
                        format!("unknown phase `{}`; allowed: {}", phase.get_ref(), phases()),
                    )
                })?
            }
            None => {
                let allowed = if disk_move { states() } else { phases() };
                return Err(missing(
                    "phase",
                    format!("name the phase of `{}` that starts the fault, one of: {}", migration.name, allowed),
                ));
            }
        };
        let after_us = match &table.after {
            Some(after) => {
                let after_us = self.duration(after, &format!("{field}.after"))?;
                // A phase is entered at the earliest at the start of the run, so a delay this
                // long would put the fault past the safety phase in every run.
                if after_us >= scenario_duration_us {
                    return Err(self.error(
                        after,
                        format!("{field}.after"),
                        format!(
                            "must be shorter than the safety phase (duration = {}), got {}; the fault could never fire",
                            format_us(scenario_duration_us),
                            format_us(after_us)
                        ),
                    ));
                }
                after_us
            }
            None => 0,
        };
        let attempt = match &table.attempt {
            Some(attempt) => {
                let number = *attempt.get_ref();
                let max = i64::from(migration.max_attempts);
                if !(1..=max).contains(&number) {
                    return Err(self.error(
                        attempt,
                        format!("{field}.attempt"),
                        format!(
                            "must be between 1 and {max}, got {number}; migrations[{}] `{}` makes at most {max} attempts (max_attempts)",
                            migration.id, migration.name
                        ),
                    ));
                }
                Some(number as u32)
            }
            None => None,
        };
        Ok(Trigger::Phase { migration: migration.name.clone(), phase, attempt, after_us })
    }

    /// The migration a fault names, by name.
    fn migration_name<'spec>(
        &self,
        name: &Spanned<String>,
        field: &str,
        migrations: &'spec [MigrationSpec],
    ) -> Checked<&'spec MigrationSpec> {
        migrations.iter().find(|migration| migration.name == *name.get_ref()).ok_or_else(|| {
            self.error(
                name,
                field,
                format!("no migration is named `{}`{}", name.get_ref(), self.migration_names(migrations)),
            )
        })
    }

    /// `; migrations: move-7, grow` for error messages, or that there are none.
    fn migration_names(&self, migrations: &[MigrationSpec]) -> String {
        if migrations.is_empty() {
            return "; this scenario has no `[[migrations]]`".to_string();
        }
        format!("; migrations: {}", list(migrations.iter().map(|migration| migration.name.as_str())))
    }
}

/// Checks one fault's targets and parameters. Field applicability has been checked already, so
/// each method only asks for the fields its fault takes.
struct Targets<'validator, 'text> {
    validator: &'validator Validator<'text>,
    raw: &'validator Spanned<RawFault>,
    field: &'validator str,
    kind: FaultKind,
    system: SystemKind,
    cluster: &'validator Cluster,
    /// The migration whose roles `source_*` and `target_*` name, if the fault names one.
    migration: Option<&'validator str>,
    migrations: &'validator [MigrationSpec],
}

impl Targets<'_, '_> {
    fn table(&self) -> &RawFault {
        self.raw.get_ref()
    }

    fn node_count(&self) -> u32 {
        self.system.node_count(self.cluster)
    }

    fn missing(&self, parameter: &str, message: String) -> crate::scenario::ScenarioError {
        self.validator.context.at(
            self.raw.span().start,
            format!("{}.{parameter}", self.field),
            format!("missing; {message}"),
        )
    }

    /// The nodes a node, disk or clock fault acts on: `node` (one) or `nodes` (a set), not both.
    fn subject(&self) -> Checked<NodeSet> {
        let table = self.table();
        match (&table.node, &table.nodes) {
            (Some(_), Some(nodes)) => Err(self.validator.error(
                nodes,
                format!("{}.nodes", self.field),
                "give `node` (one node) or `nodes` (several), not both",
            )),
            (Some(node), None) => {
                let selector = self.selector(node, &format!("{}.node", self.field))?;
                Ok(NodeSet::Listed(vec![selector]))
            }
            (None, Some(_)) => Ok(self.set_field("nodes")?.expect("`nodes` is present")),
            (None, None) => Err(self.missing(
                "node",
                format!(
                    "say which node, e.g. `node = 0` (ids 0..{}){}",
                    self.node_count(),
                    match self.system {
                        SystemKind::Ping => String::new(),
                        SystemKind::Store =>
                            ", a role (`node = \"primary\"`, `group = 0`) or a set (`nodes = \"storage\"`)".to_string(),
                    }
                ),
            )),
        }
    }

    fn peers(&self) -> Checked<Option<NodeSet>> {
        let peers = self.set_field("peers")?;
        if peers.is_some() && self.table().nodes.is_none() {
            let raw = self.table().peers.as_ref().expect("`peers` is present");
            return Err(self.validator.error(
                raw,
                format!("{}.peers", self.field),
                "needs `nodes` too: the fault touches links from `nodes` to `peers`",
            ));
        }
        Ok(peers)
    }

    /// `nodes` or `peers`: a list of nodes, or a set's name.
    fn set_field(&self, parameter: &str) -> Checked<Option<NodeSet>> {
        let raw = match parameter {
            "nodes" => &self.table().nodes,
            "peers" => &self.table().peers,
            other => unreachable!("scenario: `{other}` is not a node set field"),
        };
        let Some(raw) = raw else { return Ok(None) };
        let field = format!("{}.{parameter}", self.field);
        let set = match raw.get_ref() {
            RawNodeSet::Named(name) => self.named_set(raw, &field, name)?,
            RawNodeSet::List(nodes) => {
                if nodes.is_empty() {
                    return Err(self.validator.error(raw, &field, "must list at least one node"));
                }
                let mut selectors = Vec::new();
                for (index, node) in nodes.iter().enumerate() {
                    let item = format!("{field}[{index}]");
                    let selector = self.selector(node, &item)?;
                    if selectors.contains(&selector) && !selector.may_repeat() {
                        return Err(self.validator.error(
                            node,
                            &item,
                            format!("{} is listed twice", selector.describe()),
                        ));
                    }
                    selectors.push(selector);
                }
                NodeSet::Listed(selectors)
            }
        };
        if let NodeSet::Listed(selectors) = &set {
            let fixed: Vec<NodeId> = selectors
                .iter()
                .filter_map(|selector| match selector {
                    Selector::Node(node) => Some(*node),
                    _ => None,
                })
                .collect();
            let side_needs_rest = matches!(
                self.kind,
                FaultKind::NetPartition
                    | FaultKind::NetLoss
                    | FaultKind::NetDelay
                    | FaultKind::NetDuplicate
                    | FaultKind::NetReorder
                    | FaultKind::NetClog
            ) && parameter == "nodes"
                && self.table().peers.is_none();
            if side_needs_rest && fixed.len() as u32 == self.node_count() {
                return Err(self.validator.error(
                    raw,
                    &field,
                    "lists every node, so no peers are left on the other side; leave a node out or name `peers`",
                ));
            }
            if parameter == "peers" {
                if let Some(RawNodeSet::List(nodes)) = self.table().nodes.as_ref().map(Spanned::get_ref) {
                    let from: Vec<i64> = nodes
                        .iter()
                        .filter_map(|node| match node.get_ref() {
                            RawNode::Id(id) => Some(*id),
                            RawNode::Role(_) => None,
                        })
                        .collect();
                    if let Some(shared) = fixed.iter().find(|id| from.contains(&i64::from(**id))) {
                        return Err(self.validator.error(
                            raw,
                            &field,
                            format!("node {shared} is in both `nodes` and `peers`; the two sides must not overlap"),
                        ));
                    }
                }
            }
        }
        self.master_disk_stays_honest(&set, raw, &field)?;
        Ok(Some(set))
    }

    fn named_set(&self, raw: &Spanned<RawNodeSet>, field: &str, name: &str) -> Checked<NodeSet> {
        let set = match name {
            "all" => NodeSet::All,
            "storage" => NodeSet::Storage,
            "gateways" => NodeSet::Gateways,
            other => {
                if Selector::ROLE_NAMES.contains(&other) {
                    return Err(self.validator.error(
                        raw,
                        field,
                        format!("`{other}` names one node; write `nodes = [\"{other}\"]`, or `node = \"{other}\"` for faults that take one"),
                    ));
                }
                return Err(self.validator.error(
                    raw,
                    field,
                    format!(
                        "unknown node set `{other}`; write a list such as `[0, 1]`, or one of: {}",
                        self.set_names().join(", ")
                    ),
                ));
            }
        };
        if !self.set_names().contains(&name) {
            return Err(self.validator.error(
                raw,
                field,
                format!(
                    "the {} system has no `{name}` nodes; sets it has: {}",
                    self.system,
                    self.set_names().join(", ")
                ),
            ));
        }
        Ok(set)
    }

    fn set_names(&self) -> Vec<&'static str> {
        match self.system {
            SystemKind::Ping => vec!["all"],
            SystemKind::Store => NodeSet::SET_NAMES.to_vec(),
        }
    }

    /// One node: an id, or a role the system has.
    fn selector(&self, node: &Spanned<RawNode>, field: &str) -> Checked<Selector> {
        let selector = match node.get_ref() {
            RawNode::Id(id) if (0..i64::from(self.node_count())).contains(id) => Selector::Node(*id as NodeId),
            RawNode::Id(id) => return Err(self.validator.error(node, field, self.no_such_node(*id))),
            RawNode::Role(role) => {
                if self.system == SystemKind::Ping {
                    return Err(self.validator.error(
                        node,
                        field,
                        format!(
                            "`{role}` is not a node id; the ping system's nodes have no roles (ids 0..{})",
                            self.node_count()
                        ),
                    ));
                }
                match role.as_str() {
                    "primary" => Selector::Primary { group: self.group(role)? },
                    "secondary" => Selector::Secondary { group: self.group(role)? },
                    "master" => Selector::Master,
                    "gateway" => Selector::Gateway,
                    other if Selector::migration_role(other).is_some() => {
                        self.fault_migration(other)?;
                        Selector::migration_role(other).expect("a migration role")
                    }
                    other if NodeSet::SET_NAMES.contains(&other) => {
                        return Err(self.validator.error(
                            node,
                            field,
                            format!("`{other}` names a set of nodes; write `nodes = \"{other}\"`"),
                        ))
                    }
                    other => {
                        return Err(self.validator.error(
                            node,
                            field,
                            format!(
                                "unknown role `{other}`; a node is an id or one of: {}",
                                Selector::ROLE_NAMES.join(", ")
                            ),
                        ))
                    }
                }
            }
        };
        if self.kind.acts_on_node() {
            self.not_an_observer(&selector, node, field)?;
        }
        let set = NodeSet::Listed(vec![selector]);
        self.master_disk_stays_honest_at(&set, node.span().start, field)?;
        Ok(selector)
    }

    /// The group a `primary` or `secondary` selector needs.
    fn group(&self, role: &str) -> Checked<u32> {
        let groups = self.cluster.groups;
        match &self.table().group {
            Some(group) => {
                let field = format!("{}.group", self.field);
                Ok(self.validator.integer_in(group, &field, 0, i64::from(groups) - 1)? as u32)
            }
            None => {
                let which = if groups == 1 { "the only group is 0".to_string() } else { format!("groups 0..{groups}") };
                Err(self.missing(
                    "group",
                    format!("`{role}` is a role within a group; name it, e.g. `group = 0` ({which})"),
                ))
            }
        }
    }

    /// A role within a migration needs the fault to name the migration: by its phase trigger
    /// (`when.migration`) or by `migration`.
    fn fault_migration(&self, role: &str) -> Checked<()> {
        if self.migration.is_some() {
            return Ok(());
        }
        Err(self.missing(
            "migration",
            format!(
                "`{role}` is a role within a migration; name it, e.g. `migration = \"move-7\"`, or start the fault at \
                 one of its phases, e.g. `when = {{ migration = \"move-7\", phase = \"catch_up\" }}`{}",
                self.validator.migration_names(self.migrations)
            ),
        ))
    }

    /// `group` is written only when a `primary` or `secondary` selector uses it.
    fn group_is_used(&self, action: &FaultAction) -> Checked<()> {
        let Some(group) = &self.table().group else { return Ok(()) };
        let sets: Vec<&NodeSet> = match action {
            FaultAction::Node { nodes } | FaultAction::Disk { nodes, .. } | FaultAction::Clock { nodes, .. } => {
                vec![nodes]
            }
            FaultAction::Partition { nodes, peers } => std::iter::once(nodes).chain(peers).collect(),
            FaultAction::Links { nodes, peers, .. } => nodes.iter().chain(peers).collect(),
        };
        let used = sets.iter().any(|set| match set {
            NodeSet::Listed(selectors) => selectors
                .iter()
                .any(|selector| matches!(selector, Selector::Primary { .. } | Selector::Secondary { .. })),
            NodeSet::All | NodeSet::Storage | NodeSet::Gateways => false,
        });
        if used {
            return Ok(());
        }
        Err(self.validator.error(
            group,
            format!("{}.group", self.field),
            "applies only to the roles `primary` and `secondary`, which this fault does not name",
        ))
    }

    /// Node faults never act on the clients node: the history lives in its memory, so crashing it
    /// would make every later check judge a history with holes, not the store.
    fn not_an_observer(&self, selector: &Selector, node: &Spanned<RawNode>, field: &str) -> Checked<()> {
        let Selector::Node(id) = selector else { return Ok(()) };
        if self.system == SystemKind::Store && *id == store_layout(self.cluster).clients() {
            return Err(self.validator.error(
                node,
                field,
                format!(
                    "node {id} runs the store's clients, which observe the store and keep its history in memory; \
                     {} cannot target it. Partition or delay its links instead",
                    self.kind
                ),
            ));
        }
        Ok(())
    }

    fn master_disk_stays_honest(&self, set: &NodeSet, raw: &Spanned<RawNodeSet>, field: &str) -> Checked<()> {
        self.master_disk_stays_honest_at(set, raw.span().start, field)
    }

    /// The store's config master is one node whose state on disk is the cluster's configuration
    /// (its failure model, in `sut/store/master.rs`): it survives crashes, restarts, stalls, full
    /// or slow disks and failed fsyncs, but not a disk that forgets what it acknowledged or
    /// garbles it. Faults that make its disk lie are refused rather than run into a verdict
    /// nobody could act on.
    fn master_disk_stays_honest_at(&self, set: &NodeSet, offset: usize, field: &str) -> Checked<()> {
        if self.system != SystemKind::Store
            || !matches!(self.kind, FaultKind::DiskLostFsync | FaultKind::DiskCorruption | FaultKind::PeerReplace)
        {
            return Ok(());
        }
        let master = store_layout(self.cluster).master();
        let names_master = match set {
            NodeSet::All => true,
            NodeSet::Storage | NodeSet::Gateways => false,
            NodeSet::Listed(selectors) => selectors
                .iter()
                .any(|selector| matches!(selector, Selector::Master) || *selector == Selector::Node(master)),
        };
        if !names_master {
            return Ok(());
        }
        Err(self.validator.context.at(
            offset,
            field,
            format!(
                "node {master} is the store's config master, a single node whose disk must not lose or garble what it \
                 wrote (its failure model); {} cannot target it{}. Crash, restart, pause or partition it instead",
                self.kind,
                if matches!(set, NodeSet::All) { " (`all` includes it; `storage` does not)" } else { "" }
            ),
        ))
    }

    fn no_such_node(&self, id: i64) -> String {
        match self.system {
            SystemKind::Ping => format!(
                "node {id} does not exist; node ids are 0..{} (cluster.nodes = {})",
                self.node_count(),
                self.cluster.nodes
            ),
            SystemKind::Store => {
                let layout = store_layout(self.cluster);
                let ids = |start: u32, end: u32| {
                    if end - start == 1 {
                        start.to_string()
                    } else {
                        format!("{start}..{end}")
                    }
                };
                format!(
                    "node {id} does not exist; the store's nodes are {} (storage), {} (master), {} (gateways), {} (clients)",
                    ids(0, layout.storage_nodes),
                    layout.master(),
                    ids(layout.gateway(0), layout.gateway(0) + layout.gateways),
                    layout.clients()
                )
            }
        }
    }

    fn disk(&self) -> Checked<Option<u32>> {
        let Some(disk) = &self.table().disk else { return Ok(None) };
        let disks = i64::from(self.cluster.disks_per_node);
        let index = *disk.get_ref();
        if !(0..disks).contains(&index) {
            return Err(self.validator.error(
                disk,
                format!("{}.disk", self.field),
                format!("disk {index} does not exist; disk ids are 0..{disks} (cluster.disks_per_node = {disks})"),
            ));
        }
        Ok(Some(index as u32))
    }

    fn rate(&self) -> Checked<f64> {
        match &self.table().rate {
            Some(rate) => self.validator.probability(rate, &format!("{}.rate", self.field)),
            None => Err(self.missing("rate", format!("{} needs a probability, e.g. `rate = 0.1`", self.kind))),
        }
    }

    fn latency(&self) -> Checked<LatencyRange> {
        match &self.table().latency {
            Some(latency) => self.validator.latency(latency, &format!("{}.latency", self.field)),
            None => Err(self.missing(
                "latency",
                format!("{} needs a range, e.g. `latency = {{ min = \"1ms\", max = \"5ms\" }}`", self.kind),
            )),
        }
    }

    /// A scenario that migrates bounds its clocks: gateways time their holds, and sources their
    /// fences' leases, on their own clocks, and the write-pause bound holds in true time only for
    /// drift within `MIGRATION_DRIFT_PPM_LIMIT` (the fifth of the budget left after the hold
    /// window covers it) and for clocks never stepped back (a step back holds a clock still, which
    /// would stretch a hold by the step).
    fn clock_within_the_pause_model(&self, skew_us: i64, drift_ppm: i64) -> Checked<()> {
        let table = self.table();
        if let (Some(skew), true) = (&table.skew, skew_us < 0) {
            return Err(self.validator.error(
                skew,
                format!("{}.skew", self.field),
                "a clock stepped back in a scenario with migrations: the write-pause bound assumes holds and leases timed on clocks that never step back; step it forward, or use `drift_ppm`".to_string(),
            ));
        }
        if let (Some(drift), true) = (&table.drift_ppm, drift_ppm.abs() > MIGRATION_DRIFT_PPM_LIMIT) {
            return Err(self.validator.error(
                drift,
                format!("{}.drift_ppm", self.field),
                format!(
                    "{drift_ppm} is beyond the {MIGRATION_DRIFT_PPM_LIMIT} ppm a scenario with migrations allows: the write-pause bound covers drift up to that"
                ),
            ));
        }
        Ok(())
    }

    fn clock(&self) -> Checked<(i64, i64)> {
        let table = self.table();
        if table.skew.is_none() && table.drift_ppm.is_none() {
            return Err(self.missing(
                "skew",
                "clock_skew needs `skew` (e.g. `skew = \"-2ms\"`), `drift_ppm` (e.g. `drift_ppm = 50`) or both"
                    .to_string(),
            ));
        }
        let skew_us = match &table.skew {
            Some(skew) => {
                let field = format!("{}.skew", self.field);
                let text = skew.get_ref().trim();
                let (negative, magnitude) = match text.strip_prefix('-') {
                    Some(rest) => (true, rest),
                    None => (false, text),
                };
                let micros =
                    parse_duration_us(magnitude).map_err(|message| self.validator.error(skew, &field, message))?;
                let micros = i64::try_from(micros)
                    .map_err(|_| self.validator.error(skew, &field, format!("`{text}` is too large")))?;
                if negative {
                    -micros
                } else {
                    micros
                }
            }
            None => 0,
        };
        let drift_ppm = match &table.drift_ppm {
            Some(drift) => self.validator.integer_in(
                drift,
                &format!("{}.drift_ppm", self.field),
                -DRIFT_PPM_LIMIT,
                DRIFT_PPM_LIMIT,
            )?,
            None => 0,
        };
        Ok((skew_us, drift_ppm))
    }
}

/// The optional fields each fault takes, besides `fault` and its trigger (`at` or `when`), which
/// every fault has.
fn fields_of(kind: FaultKind) -> &'static [&'static str] {
    match kind {
        FaultKind::NodeCrash => &["node", "nodes", "group", "migration", "duration"],
        // Restarting and replacing happen at an instant: there is nothing to heal later.
        FaultKind::NodeRestart | FaultKind::PeerReplace => &["node", "nodes", "group", "migration"],
        FaultKind::NodePause => &["node", "nodes", "group", "migration", "duration"],
        FaultKind::NetPartition => &["nodes", "peers", "group", "migration", "duration"],
        FaultKind::NetLoss | FaultKind::NetDuplicate => {
            &["nodes", "peers", "group", "migration", "both_ways", "rate", "duration"]
        }
        FaultKind::NetDelay => &["nodes", "peers", "group", "migration", "both_ways", "latency", "duration"],
        FaultKind::NetReorder | FaultKind::NetClog => {
            &["nodes", "peers", "group", "migration", "both_ways", "duration"]
        }
        FaultKind::DiskLostFsync | FaultKind::DiskCorruption => {
            &["node", "nodes", "group", "migration", "disk", "rate", "duration"]
        }
        FaultKind::DiskTornWrite | FaultKind::DiskFsyncError | FaultKind::DiskFull => {
            &["node", "nodes", "group", "migration", "disk", "duration"]
        }
        FaultKind::DiskSlow => &["node", "nodes", "group", "migration", "disk", "latency", "duration"],
        FaultKind::ClockSkew => &["node", "nodes", "group", "migration", "skew", "drift_ppm", "duration"],
    }
}

/// The optional fields a fault entry wrote, with where each value starts, in declaration order.
fn present_parameters(fault: &RawFault) -> Vec<(&'static str, Range<usize>)> {
    let spans = [
        ("duration", fault.duration.as_ref().map(Spanned::span)),
        ("node", fault.node.as_ref().map(Spanned::span)),
        ("group", fault.group.as_ref().map(Spanned::span)),
        ("migration", fault.migration.as_ref().map(Spanned::span)),
        ("disk", fault.disk.as_ref().map(Spanned::span)),
        ("nodes", fault.nodes.as_ref().map(Spanned::span)),
        ("peers", fault.peers.as_ref().map(Spanned::span)),
        ("both_ways", fault.both_ways.as_ref().map(Spanned::span)),
        ("rate", fault.rate.as_ref().map(Spanned::span)),
        ("latency", fault.latency.as_ref().map(Spanned::span)),
        ("skew", fault.skew.as_ref().map(Spanned::span)),
        ("drift_ppm", fault.drift_ppm.as_ref().map(Spanned::span)),
    ];
    spans.into_iter().filter_map(|(name, span)| span.map(|span| (name, span))).collect()
}
