//! `[[migrations]]` entries: which partitions the store's master moves, when, to which group
//! (an existing one, or one created for the migration on storage nodes the entry names), within
//! which bounds, and how the scenario expects each to end, into `MigrationSpec`s.
//!
//! Each entry's own fields are checked in file order first, with its name against the names
//! before it; the rules between entries (which groups exist, where each partition is when its
//! migration is planned) follow, in the order the master plans the migrations (`at`, then file
//! order).

use std::collections::BTreeMap;

use toml::Spanned;

use super::{list, Checked, Validator};
use crate::scenario::schema::{RawGroup, RawMigration};
use crate::scenario::{partition_sources, planned_order, Cluster, PartitionSource, SystemKind};
use crate::sut::store::migration::spec::OperationKind;
use crate::sut::store::migration::{Expectation, MigrationSpec};
use crate::units::format_us;
use crate::vocabulary::{AbortReason, NodeId};

/// A migration's defaults and bounds, as `docs/scenario-format.md` states them.
pub(crate) const LAG_THRESHOLD_DEFAULT: u64 = 64;
pub(crate) const MAX_ATTEMPTS_DEFAULT: u32 = 3;
const MAX_ATTEMPTS_LIMIT: i64 = 100;
const MAX_CONCURRENT_LIMIT: i64 = 64;
/// The kinds of cluster operation a `[[migrations]]` entry may be, as `kind` names them.
const KINDS: [&str; 5] = ["move", "scale_out", "scale_in", "rebalance", "disk_move"];
pub(crate) const ATTEMPT_TIMEOUT_DEFAULT_US: u64 = 2_000_000;

/// The most groups a cluster may have, counting those migrations create: `[cluster]` bounds the
/// groups it starts with the same way.
const GROUPS_LIMIT: u32 = 64;

/// What `to` names, before created groups are given their ids.
enum Target {
    /// As written, so that an error can repeat it.
    Existing(i64),
    NewGroup(Vec<NodeId>),
    /// The master's planner picks the targets (`scale_in`, `rebalance`).
    Planner,
}

/// One entry whose own fields are valid; `spec.to` is set once targets are resolved.
struct Entry<'raw> {
    raw: &'raw Spanned<RawMigration>,
    spec: MigrationSpec,
    target: Target,
}

/// Where a field was written, if it was.
fn span_of<T>(value: &Option<Spanned<T>>) -> Option<std::ops::Range<usize>> {
    value.as_ref().map(Spanned::span)
}

/// The validated migrations, in file order, and the members of each group they create, by group
/// id from `cluster.groups` on.
pub(crate) struct Migrations {
    pub migrations: Vec<MigrationSpec>,
    pub new_groups: Vec<Vec<NodeId>>,
}

impl Validator<'_> {
    pub(super) fn migrations(
        &self,
        raw: &[Spanned<RawMigration>],
        scenario_duration_us: u64,
        system: SystemKind,
        cluster: &Cluster,
    ) -> Checked<Migrations> {
        let mut entries: Vec<Entry> = Vec::new();
        for (index, raw) in raw.iter().enumerate() {
            let entry = self.migration(raw, index as u32, scenario_duration_us, cluster)?;
            if let Some(first) = entries.iter().find(|earlier| earlier.spec.name == entry.spec.name) {
                let name = raw.get_ref().name.as_ref().expect("a checked migration has a name");
                return Err(self.error(
                    name,
                    format!("migrations[{index}].name"),
                    format!(
                        "`{}` is already the name of migrations[{}]; faults and traces name a migration by its name, so each needs its own",
                        entry.spec.name, first.spec.id
                    ),
                ));
            }
            if let OperationKind::DiskMove { node, group, .. } = entry.spec.kind {
                let same = entries.iter().find(|earlier| {
                    matches!(earlier.spec.kind, OperationKind::DiskMove { node: n, group: g, .. } if (n, g) == (node, group))
                });
                if let Some(first) = same {
                    let written = raw.get_ref().node.as_ref().expect("a checked disk move names its node");
                    return Err(self.error(
                        written,
                        format!("migrations[{index}].node"),
                        format!(
                            "node {node}'s replica of group {group} is moved already by migrations[{}] `{}`; one disk move per replica",
                            first.spec.id, first.spec.name
                        ),
                    ));
                }
            }
            entries.push(entry);
        }
        // Checked before it is rejected, as the tables of other systems are, so that the error
        // does not change when the file's `system` does.
        if let (Some(first), false) = (raw.first(), system == SystemKind::Store) {
            return Err(self.context.at(
                first.span().start,
                "migrations",
                format!(
                    "does not apply to the {system} system; migrations move the partitions of the store system (`system = \"store\"`)"
                ),
            ));
        }
        let new_groups = self.targets(&mut entries, cluster)?;
        let migrations: Vec<MigrationSpec> = entries.iter().map(|entry| entry.spec.clone()).collect();
        self.scale_in_groups(&entries, cluster.groups + new_groups.len() as u32)?;
        self.listed_after_planner(&entries, &migrations)?;
        self.targets_differ_from_sources(&entries, &migrations, cluster)?;
        Ok(Migrations { migrations, new_groups })
    }

    /// Gives each `"new_group"` the next group id, in the order the migrations are planned, and
    /// checks that every group id a `to` names exists by the time its migration is planned.
    fn targets(&self, entries: &mut [Entry], cluster: &Cluster) -> Checked<Vec<Vec<NodeId>>> {
        let specs: Vec<MigrationSpec> = entries.iter().map(|entry| entry.spec.clone()).collect();
        let order = planned_order(&specs);
        let mut new_groups: Vec<Vec<NodeId>> = Vec::new();
        // Each created group's id, with the migration that creates it.
        let mut creators: BTreeMap<u32, u32> = BTreeMap::new();
        for &id in &order {
            let entry = &mut entries[id as usize];
            if let Target::NewGroup(nodes) = &entry.target {
                let group = cluster.groups + new_groups.len() as u32;
                if group >= GROUPS_LIMIT {
                    return Err(self.error(
                        self.to_of(entry),
                        format!("migrations[{id}].to"),
                        format!(
                            "would create group {group}, but a cluster has at most {GROUPS_LIMIT} groups, counting those migrations create"
                        ),
                    ));
                }
                new_groups.push(nodes.clone());
                creators.insert(group, id);
                entry.spec.to = group;
            }
        }
        let position = |id: u32| order.iter().position(|&planned| planned == id).expect("every migration is ordered");
        for &id in &order {
            let entry = &mut entries[id as usize];
            let Target::Existing(written) = entry.target else { continue };
            let group = u32::try_from(written).unwrap_or(u32::MAX);
            let created_before = match creators.get(&group) {
                Some(&creator) => position(creator) < position(id),
                None => false,
            };
            if group >= cluster.groups && !created_before {
                let existing = match cluster.groups {
                    1 => "group 0 (cluster.groups = 1)".to_string(),
                    groups => format!("groups 0..{groups} (cluster.groups = {groups})"),
                };
                let created: Vec<String> = creators
                    .iter()
                    .filter(|(_, &creator)| position(creator) < position(id))
                    .map(|(group, &creator)| format!("{group} (created by migrations[{creator}])"))
                    .collect();
                let mut message = format!(
                    "group {written} does not exist when `{}` is planned; the cluster has {existing}",
                    entry.spec.name
                );
                if !created.is_empty() {
                    message.push_str(&format!(" and {}", created.join(", ")));
                }
                if let Some(&creator) = creators.get(&group) {
                    message.push_str(&format!(
                        "; group {group} is created by migrations[{creator}] `{}`, planned at {}, after this one",
                        specs[creator as usize].name,
                        format_us(specs[creator as usize].at_us)
                    ));
                } else {
                    message.push_str("; write `to = \"new_group\"` with `nodes` to create one");
                }
                return Err(self.error(self.to_of(entry), format!("migrations[{id}].to"), message));
            }
            entry.spec.to = group;
        }
        Ok(new_groups)
    }

    /// A migration moves each of its partitions away from the group that holds it when the
    /// migration is planned: the partition's first group, or where an earlier migration expected
    /// to finish moved it.
    fn targets_differ_from_sources(
        &self,
        entries: &[Entry],
        migrations: &[MigrationSpec],
        cluster: &Cluster,
    ) -> Checked<()> {
        let sources = partition_sources(cluster.groups, migrations);
        for id in planned_order(migrations) {
            let spec = &migrations[id as usize];
            for PartitionSource { partition, source, moved_by } in &sources[id as usize] {
                if *source != spec.to {
                    continue;
                }
                let why = match moved_by {
                    Some(earlier) => {
                        let earlier = &migrations[*earlier as usize];
                        format!(
                            "migrations[{}] `{}` moves it there at {}",
                            earlier.id,
                            earlier.name,
                            format_us(earlier.at_us)
                        )
                    }
                    None => format!(
                        "partition p starts in group p % cluster.groups, {partition} % {} = {source}",
                        cluster.groups
                    ),
                };
                return Err(self.error(
                    self.to_of(&entries[id as usize]),
                    format!("migrations[{id}].to"),
                    format!(
                        "partition {partition} is already in group {source} when `{}` is planned ({why}); a migration moves partitions to another group",
                        spec.name
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A scale-in's `group` and `to` name groups that exist, and `to` does not name `group`.
    fn scale_in_groups(&self, entries: &[Entry], groups: u32) -> Checked<()> {
        for entry in entries {
            let OperationKind::ScaleIn { group, to } = &entry.spec.kind else { continue };
            let id = entry.spec.id;
            let table = entry.raw.get_ref();
            let exists = |group: u32| group < groups;
            if !exists(*group) {
                let written = table.group.as_ref().expect("a scale-in names its group");
                return Err(self.error(
                    written,
                    format!("migrations[{id}].group"),
                    format!("group {group} does not exist; the cluster has groups 0..{groups}, counting those migrations create"),
                ));
            }
            for (index, target) in to.iter().enumerate() {
                let written = table.to.as_ref().expect("a scale-in's targets were written");
                if !exists(*target) {
                    return Err(self.error(
                        written,
                        format!("migrations[{id}].to[{index}]"),
                        format!("group {target} does not exist; the cluster has groups 0..{groups}, counting those migrations create"),
                    ));
                }
                if target == group {
                    return Err(self.error(
                        written,
                        format!("migrations[{id}].to[{index}]"),
                        format!(
                            "group {target} is the group this scale-in drains; list the groups its partitions go to"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Which group holds a listed partition is known before the run only until a planner's
    /// operation (`scale_in`, `rebalance`, a `scale_out` without `partitions`) is planned: after
    /// one, the master decides where partitions are, so a migration that lists partitions must
    /// be planned before it.
    fn listed_after_planner(&self, entries: &[Entry], migrations: &[MigrationSpec]) -> Checked<()> {
        let mut planner: Option<&MigrationSpec> = None;
        for id in planned_order(migrations) {
            let spec = &migrations[id as usize];
            if let (Some(planner), false) = (planner, spec.partitions.is_empty()) {
                let list =
                    entries[id as usize].raw.get_ref().partitions.as_ref().expect("listed partitions were written");
                return Err(self.error(
                    list,
                    format!("migrations[{id}].partitions"),
                    format!(
                        "`{}` lists its partitions but is planned after migrations[{}] `{}` ({} at {}), whose planner decides at run time which group holds each partition; plan it earlier, or let a planner pick (`kind = \"rebalance\"`)",
                        spec.name,
                        planner.id,
                        planner.name,
                        planner.kind.name(),
                        format_us(planner.at_us)
                    ),
                ));
            }
            if spec.kind.planned_by_master(&spec.partitions) {
                planner = Some(spec);
            }
        }
        Ok(())
    }

    fn to_of<'raw>(&self, entry: &Entry<'raw>) -> &'raw Spanned<RawGroup> {
        entry.raw.get_ref().to.as_ref().expect("a checked migration has a target")
    }

    /// One entry's own fields.
    fn migration<'raw>(
        &self,
        raw: &'raw Spanned<RawMigration>,
        id: u32,
        scenario_duration_us: u64,
        cluster: &Cluster,
    ) -> Checked<Entry<'raw>> {
        let field = |name: &str| format!("migrations[{id}].{name}");
        let table = raw.get_ref();
        let missing =
            |name: &str, message: String| self.context.at(raw.span().start, field(name), format!("missing; {message}"));
        let name = match &table.name {
            Some(name) if name.get_ref().trim().is_empty() => {
                return Err(self.error(
                    name,
                    field("name"),
                    "must not be empty; faults and traces name a migration by it, e.g. `name = \"move-7\"`",
                ))
            }
            Some(name) => name.get_ref().clone(),
            None => {
                return Err(missing(
                    "name",
                    "name the migration, e.g. `name = \"move-7\"`; faults and traces name it so".to_string(),
                ))
            }
        };
        let at_us = match &table.at {
            Some(at) => {
                let at_us = self.duration(at, &field("at"))?;
                if at_us >= scenario_duration_us {
                    return Err(self.error(
                        at,
                        field("at"),
                        format!(
                            "must be before the end of the safety phase (duration = {}), got {}",
                            format_us(scenario_duration_us),
                            format_us(at_us)
                        ),
                    ));
                }
                at_us
            }
            None => {
                return Err(missing("at", "say when the master plans the migration, e.g. `at = \"2s\"`".to_string()))
            }
        };
        let kind_name = match &table.kind {
            None => "move",
            Some(kind) if KINDS.contains(&kind.get_ref().as_str()) => kind.get_ref().as_str(),
            Some(kind) => {
                return Err(self.error(
                    kind,
                    field("kind"),
                    format!("unknown kind `{}`; allowed: {}", kind.get_ref(), list(KINDS.iter().copied())),
                ))
            }
        };
        // Which of `partitions`, `to`, `nodes` and `group` each kind takes.
        let refuse = |value: Option<std::ops::Range<usize>>, name: &str, why: &str| -> Checked<()> {
            match value {
                Some(span) => Err(self.context.at(
                    span.start,
                    field(name),
                    format!("does not apply to `kind = \"{kind_name}\"`: {why}"),
                )),
                None => Ok(()),
            }
        };
        if kind_name != "disk_move" {
            let why = "it names a disk move's replica (`kind = \"disk_move\"`)";
            refuse(span_of(&table.node), "node", why)?;
            refuse(span_of(&table.to_disk), "to_disk", why)?;
        }
        let (kind, partitions, target) = match kind_name {
            "disk_move" => {
                let why =
                    "a disk move moves one node's replica of a group between its disks; no partition changes group";
                refuse(span_of(&table.partitions), "partitions", why)?;
                refuse(span_of(&table.to), "to", why)?;
                refuse(span_of(&table.nodes), "nodes", why)?;
                refuse(
                    span_of(&table.cancel_at),
                    "cancel_at",
                    "a disk move runs to its end or reverts; it is not cancelled",
                )?;
                refuse(span_of(&table.max_concurrent), "max_concurrent", "a disk move is one move")?;
                refuse(span_of(&table.pause_budget), "pause_budget", "a disk move pauses no partition's writes")?;
                refuse(span_of(&table.lag_threshold), "lag_threshold", "a disk move has no cut-over")?;
                refuse(
                    span_of(&table.attempt_timeout),
                    "attempt_timeout",
                    "a disk move's attempt runs until it completes or reverts",
                )?;
                let Some(group) = &table.group else {
                    return Err(self.context.at(
                        raw.span().start,
                        field("group"),
                        "missing; say which group's replica moves, e.g. `group = 1`".to_string(),
                    ));
                };
                let group_id = self.integer_in(group, &field("group"), 0, i64::from(GROUPS_LIMIT) - 1)? as u32;
                if group_id >= cluster.groups {
                    return Err(self.error(
                        group,
                        field("group"),
                        format!(
                            "group {group_id} does not exist; the cluster starts with groups 0..{} (cluster.groups = {}), and a disk move moves a replica of one of them",
                            cluster.groups, cluster.groups
                        ),
                    ));
                }
                let Some(node) = &table.node else {
                    return Err(self.context.at(
                        raw.span().start,
                        field("node"),
                        "missing; say which storage node's replica moves, e.g. `node = 2`".to_string(),
                    ));
                };
                let node_id = self.integer_in(node, &field("node"), 0, i64::from(cluster.nodes) - 1)? as u32;
                let members: Vec<u32> = (0..cluster.replicas).map(|index| (group_id + index) % cluster.nodes).collect();
                if !members.contains(&node_id) {
                    let members: Vec<String> = members.iter().map(u32::to_string).collect();
                    return Err(self.error(
                        node,
                        field("node"),
                        format!(
                            "node {node_id} hosts no replica of group {group_id}; its replicas are on nodes {} (group g has replicas on nodes g, g+1, ... mod cluster.nodes)",
                            members.join(", ")
                        ),
                    ));
                }
                let Some(to_disk) = &table.to_disk else {
                    return Err(self.context.at(
                        raw.span().start,
                        field("to_disk"),
                        "missing; say which of the node's disks the replica moves to, e.g. `to_disk = 0`".to_string(),
                    ));
                };
                let disk =
                    self.integer_in(to_disk, &field("to_disk"), 0, i64::from(cluster.disks_per_node) - 1)? as u32;
                let home = group_id % cluster.disks_per_node.max(1);
                if disk == home {
                    return Err(self.error(
                        to_disk,
                        field("to_disk"),
                        format!(
                            "group {group_id}'s replicas are on disk {home} already (group g is on disk g % cluster.disks_per_node); move it to another disk"
                        ),
                    ));
                }
                (OperationKind::DiskMove { node: node_id, group: group_id, to_disk: disk }, Vec::new(), Target::Planner)
            }
            "move" => {
                refuse(
                    span_of(&table.group),
                    "group",
                    "a move names the partitions it moves and where (`partitions`, `to`)",
                )?;
                let partitions = self.partitions(table, raw, id, cluster)?;
                (OperationKind::Move, partitions, self.target(table, raw, id, cluster)?)
            }
            "scale_out" => {
                refuse(
                    span_of(&table.group),
                    "group",
                    "a scale-out creates its group with `to = \"new_group\"` and `nodes`",
                )?;
                let partitions = match &table.partitions {
                    Some(_) => self.partitions(table, raw, id, cluster)?,
                    None => Vec::new(),
                };
                let target = self.target(table, raw, id, cluster)?;
                if let Target::Existing(_) = target {
                    let to = table.to.as_ref().expect("a checked target was written");
                    return Err(self.error(
                        to,
                        field("to"),
                        "a scale-out brings a new group into the cluster: write `to = \"new_group\"` with its `nodes` (reserve nodes: `cluster.reserve_nodes`)",
                    ));
                }
                (OperationKind::ScaleOut, partitions, target)
            }
            "scale_in" => {
                refuse(
                    span_of(&table.partitions),
                    "partitions",
                    "a scale-in moves every partition its `group` owns when it starts",
                )?;
                refuse(span_of(&table.nodes), "nodes", "a scale-in moves partitions to groups that exist")?;
                let Some(group) = &table.group else {
                    return Err(self.context.at(
                        raw.span().start,
                        field("group"),
                        "missing; say which group the scale-in drains and retires, e.g. `group = 3`",
                    ));
                };
                let drained = self.integer_in(group, &field("group"), 0, i64::from(GROUPS_LIMIT) - 1)? as u32;
                let to = match table.to.as_ref().map(|to| (to, to.get_ref())) {
                    None => Vec::new(),
                    Some((_, RawGroup::List(groups))) if !groups.is_empty() => {
                        let mut targets: Vec<u32> = Vec::new();
                        for (index, &written) in groups.iter().enumerate() {
                            let to = table.to.as_ref().expect("matched above");
                            let group = u32::try_from(written).map_err(|_| {
                                self.error(to, format!("migrations[{id}].to[{index}]"), format!("group {written} does not exist; group ids start at 0"))
                            })?;
                            if targets.contains(&group) {
                                return Err(self.error(to, format!("migrations[{id}].to[{index}]"), format!("group {group} is listed twice")));
                            }
                            targets.push(group);
                        }
                        targets
                    }
                    Some((to, _)) => {
                        return Err(self.error(
                            to,
                            field("to"),
                            "a scale-in's `to` lists the groups its partitions may go to, e.g. `to = [0, 1]`; leave it out to let the planner use every other active group",
                        ))
                    }
                };
                (OperationKind::ScaleIn { group: drained, to }, Vec::new(), Target::Planner)
            }
            _ => {
                let why = "the planner moves partitions from the most loaded active groups to the least loaded";
                refuse(span_of(&table.partitions), "partitions", why)?;
                refuse(span_of(&table.to), "to", why)?;
                refuse(span_of(&table.nodes), "nodes", why)?;
                refuse(span_of(&table.group), "group", why)?;
                (OperationKind::Rebalance, Vec::new(), Target::Planner)
            }
        };
        let max_concurrent = match &table.max_concurrent {
            Some(limit) => self.integer_in(limit, &field("max_concurrent"), 1, MAX_CONCURRENT_LIMIT)? as u32,
            None => 1,
        };
        let cancel_at_us = match &table.cancel_at {
            Some(cancel) => {
                let cancel_us = self.duration(cancel, &field("cancel_at"))?;
                if cancel_us < at_us || cancel_us >= scenario_duration_us {
                    return Err(self.error(
                        cancel,
                        field("cancel_at"),
                        format!(
                            "must be at or after the migration's `at` ({}) and before the end of the safety phase (duration = {}), got {}",
                            format_us(at_us),
                            format_us(scenario_duration_us),
                            format_us(cancel_us)
                        ),
                    ));
                }
                Some(cancel_us)
            }
            None => None,
        };
        let pause_budget_us = match &table.pause_budget {
            Some(budget) => self.positive_duration(budget, &field("pause_budget"))?,
            // Unused: a disk move holds no writes.
            None if kind_name == "disk_move" => 1,
            None => {
                return Err(missing(
                    "pause_budget",
                    "say how long a write may pause because of the migration, e.g. `pause_budget = \"50ms\"`"
                        .to_string(),
                ))
            }
        };
        let lag_threshold = match &table.lag_threshold {
            Some(threshold) => self.integer_in(threshold, &field("lag_threshold"), 0, i64::MAX)? as u64,
            None => LAG_THRESHOLD_DEFAULT,
        };
        let max_attempts = match &table.max_attempts {
            Some(attempts) => self.integer_in(attempts, &field("max_attempts"), 1, MAX_ATTEMPTS_LIMIT)? as u32,
            None => MAX_ATTEMPTS_DEFAULT,
        };
        let attempt_timeout_us = match &table.attempt_timeout {
            Some(timeout) => self.positive_duration(timeout, &field("attempt_timeout"))?,
            None => ATTEMPT_TIMEOUT_DEFAULT_US,
        };
        let expect = match (self.expectation(table, id)?, cancel_at_us, &table.expect) {
            // A cancellation meets each move in some phase: before its commit it aborts the move,
            // after it the move finishes. Unless the scenario says, either is expected.
            (Expectation::Done, Some(_), None) => Expectation::DoneOrCancelled,
            (expect, _, _) => expect,
        };
        let spec = MigrationSpec {
            id,
            name,
            kind,
            max_concurrent,
            cancel_at_us,
            at_us,
            partitions,
            // Set once every entry's target is known: a created group's id depends on the others.
            to: 0,
            pause_budget_us,
            lag_threshold,
            max_attempts,
            attempt_timeout_us,
            expect,
        };
        Ok(Entry { raw, spec, target })
    }

    fn partitions(
        &self,
        table: &RawMigration,
        raw: &Spanned<RawMigration>,
        id: u32,
        cluster: &Cluster,
    ) -> Checked<Vec<u32>> {
        let field = format!("migrations[{id}].partitions");
        let Some(list) = &table.partitions else {
            return Err(self.context.at(
                raw.span().start,
                &field,
                "missing; say which partitions move, e.g. `partitions = [7]`",
            ));
        };
        if list.get_ref().is_empty() {
            return Err(self.error(list, &field, "must list at least one partition, e.g. `partitions = [7]`"));
        }
        let mut partitions: Vec<u32> = Vec::new();
        for (index, partition) in list.get_ref().iter().enumerate() {
            let item = format!("{field}[{index}]");
            let number = *partition.get_ref();
            if !(0..i64::from(cluster.partitions)).contains(&number) {
                return Err(self.error(
                    partition,
                    &item,
                    format!(
                        "partition {number} does not exist; partitions are 0..{} (cluster.partitions = {})",
                        cluster.partitions, cluster.partitions
                    ),
                ));
            }
            let number = number as u32;
            if partitions.contains(&number) {
                return Err(self.error(partition, &item, format!("partition {number} is listed twice")));
            }
            partitions.push(number);
        }
        Ok(partitions)
    }

    /// `to`, and the `nodes` a created group needs.
    fn target(&self, table: &RawMigration, raw: &Spanned<RawMigration>, id: u32, cluster: &Cluster) -> Checked<Target> {
        let field = |name: &str| format!("migrations[{id}].{name}");
        let Some(to) = &table.to else {
            return Err(self.context.at(
                raw.span().start,
                field("to"),
                "missing; say where the partitions go: a group id (e.g. `to = 1`) or `to = \"new_group\"` with its `nodes`",
            ));
        };
        match to.get_ref() {
            RawGroup::Id(group) => {
                if *group < 0 {
                    return Err(self.error(
                        to,
                        field("to"),
                        format!("group {group} does not exist; group ids start at 0"),
                    ));
                }
                if let Some(nodes) = &table.nodes {
                    return Err(self.error(
                        nodes,
                        field("nodes"),
                        format!(
                            "applies only to `to = \"new_group\"`: group {group}'s members are its own; to create a group for the migration, write `to = \"new_group\"`"
                        ),
                    ));
                }
                Ok(Target::Existing(*group))
            }
            RawGroup::Named(name) if name == "new_group" => {
                let replicas = cluster.replicas;
                let storage = cluster.storage_nodes();
                let Some(nodes) = &table.nodes else {
                    return Err(self.error(
                        to,
                        field("nodes"),
                        format!(
                            "missing; a new group needs its members: `nodes` lists {replicas} distinct storage node ids (cluster.replicas = {replicas}) from 0..{storage}, e.g. `nodes = [{}]`",
                            (0..replicas).map(|node| node.to_string()).collect::<Vec<_>>().join(", ")
                        ),
                    ));
                };
                if nodes.get_ref().len() != replicas as usize {
                    return Err(self.error(
                        nodes,
                        field("nodes"),
                        format!(
                            "lists {} nodes, but every group has cluster.replicas = {replicas} replicas, each on its own storage node",
                            nodes.get_ref().len()
                        ),
                    ));
                }
                let mut members: Vec<NodeId> = Vec::new();
                for (index, node) in nodes.get_ref().iter().enumerate() {
                    let item = format!("migrations[{id}].nodes[{index}]");
                    let number = *node.get_ref();
                    if !(0..i64::from(storage)).contains(&number) {
                        return Err(self.error(
                            node,
                            &item,
                            format!(
                                "node {number} is not a storage node; a group's replicas live on storage nodes 0..{storage} (cluster.nodes = {}{})",
                                cluster.nodes,
                                if cluster.reserve_nodes > 0 { format!(" plus cluster.reserve_nodes = {}", cluster.reserve_nodes) } else { String::new() }
                            ),
                        ));
                    }
                    let number = number as NodeId;
                    if members.contains(&number) {
                        return Err(self.error(
                            node,
                            &item,
                            format!("node {number} is listed twice; each replica of a group lives on its own node"),
                        ));
                    }
                    members.push(number);
                }
                Ok(Target::NewGroup(members))
            }
            RawGroup::List(_) => Err(self.error(
                to,
                field("to"),
                "a list of groups applies only to `kind = \"scale_in\"`; write one group id (e.g. `to = 1`) or `\"new_group\"`",
            )),
            RawGroup::Named(other) => Err(self.error(
                to,
                field("to"),
                format!("unknown target `{other}`; write a group id (e.g. `to = 1`) or `\"new_group\"`"),
            )),
        }
    }

    /// `expect`, and the `reason` an expected abort gives.
    fn expectation(&self, table: &RawMigration, id: u32) -> Checked<Expectation> {
        let field = |name: &str| format!("migrations[{id}].{name}");
        let reasons = || list(AbortReason::ALL.iter().map(|reason| reason.name()));
        let aborted = match &table.expect {
            None => false,
            Some(expect) => match expect.get_ref().as_str() {
                "done" => false,
                "aborted" => true,
                other => {
                    return Err(self.error(
                        expect,
                        field("expect"),
                        format!("unknown outcome `{other}`; allowed: done, aborted"),
                    ))
                }
            },
        };
        match (&table.reason, aborted) {
            (Some(reason), false) => Err(self.error(
                reason,
                field("reason"),
                "applies only with `expect = \"aborted\"`: a migration expected to finish gives no abort reason",
            )),
            (None, false) => Ok(Expectation::Done),
            (None, true) => {
                let expect = table.expect.as_ref().expect("`aborted` was written");
                Err(self.error(
                    expect,
                    field("reason"),
                    format!(
                        "missing; `expect = \"aborted\"` needs the reason the migration gives up with, one of: {}",
                        reasons()
                    ),
                ))
            }
            (Some(reason), true) => {
                let parsed = AbortReason::from_name(reason.get_ref()).ok_or_else(|| {
                    self.error(
                        reason,
                        field("reason"),
                        format!("unknown abort reason `{}`; allowed: {}", reason.get_ref(), reasons()),
                    )
                })?;
                Ok(Expectation::Aborted(parsed))
            }
        }
    }
}
