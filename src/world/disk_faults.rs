//! The world's side of its disks: disk faults applied and healed, one fault at a time, a
//! crashing node's disks resolved by the disk model (with what survived recorded), replacement
//! of a node's disks, the incarnation file the world writes, and the disk model's silent fault
//! events copied into the trace. It draws only from the disks' stream. The disk model itself
//! (`disk.rs`) decides what each operation and each crash does; this file never second-guesses
//! it.
//!
//! Disk faults are held per fault, as link faults are: a disk's lasting settings are recomputed
//! from every lasting fault in force on it, so healing one fault leaves the others acting, and
//! overlapping faults compose. Two rates p and q (lost fsyncs, corruption) give 1 - (1 - p)(1 - q),
//! as independent causes would; `disk_full` holds while any such fault does; two `disk_slow`
//! ranges add, [min1 + min2, max1 + max2], as two independent sources of delay would on average
//! and at their bounds, drawn once per operation so the disks' stream draws the same count
//! however many faults overlap. One-shot faults are armed in their fault's name, so healing one
//! disarms only it, and `heal_all` leaves none armed.

use super::disk::{self, CrashReport, Disk};
use super::fault::{DiskChange, DiskTarget, Effect, Fault, FaultId, LatencyRange};
use super::net::Message;
use super::state::{World, INCARNATION_FILE};
use super::NodeId;
use crate::trace::EventKind;

impl<M: Message> World<M> {
    /// The disks a disk fault aims at.
    pub(super) fn target_disks(&mut self, target: DiskTarget) -> impl Iterator<Item = &mut Disk> {
        let disks = &mut self.nodes[target.node as usize].disks;
        disks
            .iter_mut()
            .enumerate()
            .filter(move |(index, _)| target.disk.is_none_or(|disk| disk as usize == *index))
            .map(|(_, disk)| disk)
    }

    /// Applies disk fault `id`, already among the faults in force: a lasting one by recomputing
    /// its node's disks, a one-shot one by arming it on each disk it aims at.
    pub(super) fn apply_disk_fault(&mut self, id: FaultId, target: DiskTarget, change: DiskChange) {
        match change {
            DiskChange::LostFsync { .. }
            | DiskChange::Corruption { .. }
            | DiskChange::Full
            | DiskChange::Slow { .. } => self.recompute_disks(target.node),
            DiskChange::OneShot(shot) => self.target_disks(target).for_each(|disk| disk.arm_shot(shot, id)),
        }
    }

    /// Heals disk fault `id`, already removed from the faults in force: a lasting one by
    /// recomputing its node's disks from the faults left, a one-shot one by disarming it where it
    /// has not fired. Either way no other fault's effect changes.
    pub(super) fn heal_disk_fault(&mut self, id: FaultId, target: DiskTarget, change: DiskChange) {
        match change {
            DiskChange::LostFsync { .. }
            | DiskChange::Corruption { .. }
            | DiskChange::Full
            | DiskChange::Slow { .. } => self.recompute_disks(target.node),
            DiskChange::OneShot(_) => self.target_disks(target).for_each(|disk| disk.disarm(id)),
        }
    }

    /// Sets the lasting fault settings of every disk of `node` from the faults in force on it.
    pub(super) fn recompute_disks(&mut self, node: NodeId) {
        let World { nodes, faults, .. } = self;
        for (index, disk) in nodes[node as usize].disks.iter_mut().enumerate() {
            LastingFaults::on(faults.values(), node, index as u32).set(disk);
        }
    }

    /// Swaps every disk of `node` for an empty one (peer replacement) and writes the new
    /// incarnation; then the faults in force on the node's disks act on the new ones, as they aim
    /// at the slot, not the device: lasting settings are recomputed and shots that had not fired
    /// are armed again. The incarnation is written first, since the world provisions the machine
    /// before any fault can touch it.
    pub(super) fn replace_disks(&mut self, node: NodeId) {
        let mut armed = Vec::new();
        for disk in &mut self.nodes[node as usize].disks {
            armed.push(disk.armed_shots());
            disk.wipe();
        }
        self.write_incarnation(node);
        for (disk, shots) in self.nodes[node as usize].disks.iter_mut().zip(armed) {
            for (shot, id) in shots {
                disk.arm_shot(shot, id);
            }
        }
        self.recompute_disks(node);
    }

    /// Resolves every disk of a crashing node by the crash model and records what survived.
    pub(super) fn crash_disks(&mut self, node: NodeId, now_us: u64) {
        let mut reports: Vec<CrashReport> = Vec::new();
        let World { nodes, disk_rng, .. } = self;
        for disk in &mut nodes[node as usize].disks {
            reports.push(disk.crash(disk_rng));
        }
        for (index, report) in reports.into_iter().enumerate() {
            let writes_kept = report.files.iter().map(|file| file.writes_kept).sum::<usize>() as u32;
            let writes_lost = report.files.iter().map(|file| file.writes_lost).sum::<usize>() as u32;
            let torn_writes = report.files.iter().filter(|file| file.torn.is_some()).count() as u32;
            self.record(
                now_us,
                Some(node),
                EventKind::DiskCrash {
                    disk: index as u32,
                    writes_kept,
                    writes_lost,
                    names_kept: report.directory_operations_kept as u32,
                    names_lost: report.directory_operations_lost as u32,
                    torn_writes,
                },
            );
        }
    }

    /// Writes the node's incarnation, durably, to its first disk (at creation and replacement).
    pub(super) fn write_incarnation(&mut self, node: NodeId) {
        let World { nodes, disk_rng, .. } = self;
        let slot = &mut nodes[node as usize];
        let text = slot.incarnation.to_string();
        let disk = &mut slot.disks[0];
        let written = disk
            .create(INCARNATION_FILE)
            .and_then(|()| disk.write_at(INCARNATION_FILE, 0, text.as_bytes()))
            .and_then(|()| disk.fsync(INCARNATION_FILE, disk_rng))
            .and_then(|()| disk.fsync_dir(disk_rng));
        assert!(written.is_ok(), "world: could not write node {node}'s incarnation to an empty disk: {written:?}");
    }

    /// Copies a disk's silent fault events into the trace.
    pub(super) fn drain_disk_events(&mut self, node: NodeId, index: u32, now_us: u64) {
        let events = self.nodes[node as usize].disks[index as usize].take_events();
        for event in events {
            let fault = event.fault();
            let detail = format!("{event:?}");
            self.record(now_us, Some(node), EventKind::DiskFault { disk: index, fault, detail });
        }
    }
}

/// The lasting disk faults in force on one disk, composed.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct LastingFaults {
    pub(super) lost_fsync_rate: f64,
    pub(super) corruption_rate: f64,
    pub(super) full: bool,
    pub(super) slow: Option<LatencyRange>,
}

impl LastingFaults {
    /// Composes the lasting faults among `faults` that aim at disk `disk` of `node`.
    pub(super) fn on<'a>(faults: impl Iterator<Item = &'a Fault>, node: NodeId, disk: u32) -> LastingFaults {
        let mut lasting = LastingFaults::default();
        for fault in faults {
            let (target, change) = match fault.effect() {
                Effect::Disk { target, change } => (target, change),
                Effect::Node(_) | Effect::Link { .. } | Effect::Clock { .. } => continue,
            };
            if target.node != node || target.disk.is_some_and(|aimed| aimed != disk) {
                continue;
            }
            match change {
                DiskChange::LostFsync { rate } => lasting.lost_fsync_rate = either(lasting.lost_fsync_rate, rate),
                DiskChange::Corruption { rate } => lasting.corruption_rate = either(lasting.corruption_rate, rate),
                DiskChange::Full => lasting.full = true,
                DiskChange::Slow { latency } => lasting.slow = Some(add_latencies(lasting.slow, latency)),
                DiskChange::OneShot(_) => {}
            }
        }
        lasting
    }

    fn set(&self, disk: &mut Disk) {
        disk.set_lost_fsync(self.lost_fsync_rate);
        disk.set_corruption(self.corruption_rate);
        disk.set_full(self.full);
        disk.set_slow(self.slow);
    }
}

/// The chance that either of two independent events happens. With `p` zero it is exactly `q`, so
/// a fault alone sets its own rate bit for bit.
fn either(p: f64, q: f64) -> f64 {
    let q = disk::probability(q);
    p + q - p * q
}

/// Two extra latencies, one after the other: the bounds add (each range taken low to high).
fn add_latencies(sum: Option<LatencyRange>, extra: LatencyRange) -> LatencyRange {
    let low = extra.min_us.min(extra.max_us);
    let high = extra.min_us.max(extra.max_us);
    match sum {
        None => LatencyRange { min_us: low, max_us: high },
        Some(sum) => LatencyRange { min_us: sum.min_us.saturating_add(low), max_us: sum.max_us.saturating_add(high) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::fault::Fault;

    fn range(min_us: u64, max_us: u64) -> LatencyRange {
        LatencyRange { min_us, max_us }
    }

    fn on_disk(disk: Option<u32>) -> DiskTarget {
        DiskTarget { node: 3, disk }
    }

    #[test]
    fn lasting_faults_compose_on_the_disks_they_aim_at() {
        let faults = [
            Fault::DiskLostFsync { target: on_disk(Some(1)), rate: 0.5 },
            Fault::DiskLostFsync { target: on_disk(None), rate: 0.2 },
            Fault::DiskCorruption { target: on_disk(Some(0)), rate: 0.3 },
            Fault::DiskFull { target: on_disk(Some(1)) },
            Fault::DiskSlow { target: on_disk(None), latency: range(100, 200) },
            Fault::DiskSlow { target: on_disk(Some(1)), latency: range(50, 10) },
            Fault::DiskFsyncError { target: on_disk(None) },
            Fault::DiskFull { target: DiskTarget { node: 4, disk: None } },
            Fault::NodeCrash { node: 3 },
        ];
        let disk_0 = LastingFaults::on(faults.iter(), 3, 0);
        assert_eq!(
            disk_0,
            LastingFaults { lost_fsync_rate: 0.2, corruption_rate: 0.3, full: false, slow: Some(range(100, 200)) }
        );
        let disk_1 = LastingFaults::on(faults.iter(), 3, 1);
        assert!((disk_1.lost_fsync_rate - 0.6).abs() < 1e-12, "1 - (1 - 0.5)(1 - 0.2) = 0.6");
        assert_eq!((disk_1.corruption_rate, disk_1.full, disk_1.slow), (0.0, true, Some(range(110, 250))));
        assert_eq!(LastingFaults::on(faults.iter(), 5, 0), LastingFaults::default());
    }

    #[test]
    fn a_fault_alone_sets_exactly_its_own_rate() {
        for rate in [0.1, 0.3, 0.7, 1.0 / 3.0, 1.0] {
            let faults = [Fault::DiskLostFsync { target: on_disk(None), rate }];
            assert_eq!(LastingFaults::on(faults.iter(), 3, 0).lost_fsync_rate.to_bits(), rate.to_bits());
        }
    }
}
