//! The world's side of its disks: disk faults applied to and healed from the disks they aim at,
//! a crashing node's disks resolved by the disk model (with what survived recorded), the
//! incarnation file the world writes, and the disk model's silent fault events copied into the
//! trace. It draws only from the disks' stream. The disk model itself (`disk.rs`) decides what
//! each operation and each crash does; this file never second-guesses it.

use super::disk::{CrashReport, Disk};
use super::fault::{DiskChange, DiskTarget};
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

    pub(super) fn apply_disk_fault(&mut self, target: DiskTarget, change: DiskChange) {
        match change {
            DiskChange::LostFsync { rate } => self.target_disks(target).for_each(|disk| disk.set_lost_fsync(rate)),
            DiskChange::TornWrite => self.target_disks(target).for_each(Disk::arm_torn_write),
            DiskChange::Corruption { rate } => self.target_disks(target).for_each(|disk| disk.set_corruption(rate)),
            DiskChange::FsyncError => self.target_disks(target).for_each(Disk::arm_fsync_error),
            DiskChange::Full => self.target_disks(target).for_each(|disk| disk.set_full(true)),
            DiskChange::Slow { latency } => self.target_disks(target).for_each(|disk| disk.set_slow(Some(latency))),
        }
    }

    /// Undoes one disk fault's lasting setting. One-shot faults (a torn write, an fsync error)
    /// have nothing to undo once armed; healing disarms nothing that already fired.
    pub(super) fn heal_disk_fault(&mut self, target: DiskTarget, change: DiskChange) {
        match change {
            DiskChange::LostFsync { .. } => self.target_disks(target).for_each(|disk| disk.set_lost_fsync(0.0)),
            DiskChange::Corruption { .. } => self.target_disks(target).for_each(|disk| disk.set_corruption(0.0)),
            DiskChange::Full => self.target_disks(target).for_each(|disk| disk.set_full(false)),
            DiskChange::Slow { .. } => self.target_disks(target).for_each(|disk| disk.set_slow(None)),
            DiskChange::TornWrite | DiskChange::FsyncError => {}
        }
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
