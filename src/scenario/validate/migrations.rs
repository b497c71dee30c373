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
use crate::sut::store::migration::{Expectation, MigrationSpec};
use crate::units::format_us;
use crate::vocabulary::{AbortReason, NodeId};

/// A migration's defaults and bounds, as `docs/scenario-format.md` states them.
pub(crate) const LAG_THRESHOLD_DEFAULT: u64 = 64;
pub(crate) const MAX_ATTEMPTS_DEFAULT: u32 = 3;
const MAX_ATTEMPTS_LIMIT: i64 = 100;
pub(crate) const ATTEMPT_TIMEOUT_DEFAULT_US: u64 = 2_000_000;

/// The most groups a cluster may have, counting those migrations create: `[cluster]` bounds the
/// groups it starts with the same way.
const GROUPS_LIMIT: u32 = 64;

/// What `to` names, before created groups are given their ids.
enum Target {
    /// As written, so that an error can repeat it.
    Existing(i64),
    NewGroup(Vec<NodeId>),
}

/// One entry whose own fields are valid; `spec.to` is set once targets are resolved.
struct Entry<'raw> {
    raw: &'raw Spanned<RawMigration>,
    spec: MigrationSpec,
    target: Target,
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
        let partitions = self.partitions(table, raw, id, cluster)?;
        let target = self.target(table, raw, id, cluster)?;
        let pause_budget_us = match &table.pause_budget {
            Some(budget) => self.positive_duration(budget, &field("pause_budget"))?,
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
        let expect = self.expectation(table, id)?;
        let spec = MigrationSpec {
            id,
            name,
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
                let storage = cluster.nodes;
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
                                "node {number} is not a storage node; a group's replicas live on storage nodes 0..{storage} (cluster.nodes = {storage})"
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
