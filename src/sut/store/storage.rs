//! One replica's durable state on its node's simulated disk: a `meta` file (the promised epoch), a
//! checkpoint (every partition's snapshot at an LSN), and the log as append-only segments.
//!
//! Files of group `g`: `g{g}.meta` and `g{g}.ckpt`, each one checksummed record replaced
//! atomically (write a temporary file, fsync, rename, fsync the directory); `g{g}.seg.{n}`, log
//! segments numbered in write order, each a sequence of checksummed entry records.
//!
//! Rules that recovery relies on:
//! - A record whose LSN is at or below the last one replayed cuts the log back to just before it
//!   (that is how a backup's conflicting suffix is replaced, since files are never truncated),
//!   provided the entry before it has the epoch the record names (`LogRecord::prev_epoch`): a
//!   record stranded by a lost write before it is damage, not a cut-back.
//! - Recovery stops at the first damaged record (torn, zero-filled, flipped) and trusts nothing
//!   after it: later segments are deleted, and a damaged segment is rewritten to its valid prefix,
//!   because a damage point left in place would cut off every segment written after the next boot.
//! - A recovered segment is never appended to again; every boot starts a new segment.
//! - Segments are deleted oldest first, only once every LSN in them is at or below both the latest
//!   durable checkpoint and every per-partition hold-back.
//!
//! This module does disk I/O and nothing else: no protocol decisions, no messages, no clock.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::codec;
use super::entry::{Entry, PartitionSnapshot};
use super::{Epoch, GroupId, Lsn};
use crate::sut::durable::replace_file;
use crate::world::{DiskError, Message, NodeDisk};

/// The durable promise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub promised: Epoch,
}

/// A checkpoint: the state of every partition the group held, as of `lsn` (whose entry was of
/// epoch `epoch`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub lsn: Lsn,
    pub epoch: Epoch,
    pub partitions: Vec<PartitionSnapshot>,
}

/// One record of a log segment: an entry and the epoch of the entry before it, so that replay can
/// tell a real cut-back (the record follows what the log holds at its predecessor) from a record
/// stranded by a lost write before it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    pub prev_epoch: Epoch,
    pub entry: Entry,
}

/// What replaying a group's segments gave.
#[derive(Debug, Default)]
struct Replayed {
    /// Entries after the checkpoint, contiguous from its LSN + 1.
    entries: Vec<Entry>,
    segments: Vec<Segment>,
    /// The segment (by index) where replay stopped at damage, and its valid bytes: it is to be
    /// cut there and every later segment deleted.
    damaged: Option<(usize, usize)>,
    notes: Vec<String>,
}

/// Replays segments (name, bytes), oldest first, on top of a checkpoint. Pure: the caller reads
/// and repairs the disk.
///
/// A record at or below the last LSN cuts the log back, provided its predecessor matches the
/// record's `prev_epoch` (log matching); a record past the last LSN + 1 is a gap. Either kind
/// of mismatch, a damaged record, or a log that disagrees with the checkpoint ends what replay
/// trusts: everything after it is dropped.
fn replay(segments: &[(String, Vec<u8>)], checkpoint: &Checkpoint) -> Replayed {
    let mut replayed = Replayed::default();
    let mut log: BTreeMap<Lsn, Entry> = BTreeMap::new();
    for (index, (name, bytes)) in segments.iter().enumerate() {
        let decoded: codec::Decoded<LogRecord> = codec::decode_all(bytes);
        let mut max_lsn = 0;
        let mut problem = decoded.damaged.then_some("a damaged record");
        let mut valid_bytes = 0;
        for (record, end) in decoded.values.iter().zip(&decoded.ends) {
            let lsn = record.entry.lsn;
            let last = log.last_key_value().map(|(lsn, _)| *lsn);
            if last.is_some_and(|last| lsn > last + 1) {
                problem = Some("an LSN gap");
                break;
            }
            if let Some(previous) = log.get(&(lsn - 1)) {
                if previous.epoch != record.prev_epoch {
                    problem = Some("a record that does not follow the entry before it");
                    break;
                }
            }
            let _ = log.split_off(&lsn);
            max_lsn = max_lsn.max(lsn);
            log.insert(lsn, record.entry.clone());
            valid_bytes = *end;
        }
        if let Some(problem) = problem {
            replayed.notes.push(format!("{name}: {problem} after {valid_bytes} bytes; the rest of the log is dropped"));
            replayed.segments.push(Segment { name: name.clone(), max_lsn, bytes: valid_bytes as u64 });
            replayed.damaged = Some((index, valid_bytes));
            break;
        }
        replayed.segments.push(Segment { name: name.clone(), max_lsn, bytes: bytes.len() as u64 });
    }
    // Keep what follows the checkpoint, if it follows it without a gap and agrees with it.
    let base = checkpoint.lsn;
    let after = log.split_off(&(base + 1));
    if log.get(&base).is_some_and(|entry| entry.epoch != checkpoint.epoch) {
        replayed.notes.push(format!(
            "the log disagrees with the checkpoint at LSN {base} (epoch {} there, {} in the checkpoint); the log after it is dropped",
            log[&base].epoch, checkpoint.epoch
        ));
        return replayed;
    }
    let mut previous_epoch = checkpoint.epoch;
    for (expected, (lsn, entry)) in (base + 1..).zip(after) {
        if lsn != expected || entry.epoch < previous_epoch {
            replayed.notes.push(format!(
                "the log after the checkpoint (LSN {base}) breaks at LSN {lsn}; the rest of it is dropped"
            ));
            break;
        }
        previous_epoch = entry.epoch;
        replayed.entries.push(entry);
    }
    replayed
}

/// What a boot found on disk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// `None` when the meta file is missing or damaged (an empty or replaced disk).
    pub meta: Option<Meta>,
    pub checkpoint: Checkpoint,
    /// Log entries after the checkpoint, contiguous from `checkpoint.lsn + 1`.
    pub entries: Vec<Entry>,
    /// What recovery had to throw away, for the trace.
    pub notes: Vec<String>,
}

#[derive(Clone, Debug)]
struct Segment {
    name: String,
    /// The highest LSN of any record in it (0 if none).
    max_lsn: Lsn,
    bytes: u64,
}

/// The log segments of one group on one disk, as the writer keeps track of them.
#[derive(Debug)]
pub struct GroupStorage {
    group: GroupId,
    segment_bytes: u64,
    /// Oldest first; the last one is the segment being written, if `open`.
    segments: Vec<Segment>,
    open: bool,
    next_segment: u64,
}

/// The files of a group, by name.
pub fn meta_name(group: GroupId) -> String {
    format!("g{group}.meta")
}

pub fn checkpoint_name(group: GroupId) -> String {
    format!("g{group}.ckpt")
}

/// The tombstone of a retired group: while it exists, the node hosts the group no more.
pub fn retired_name(group: GroupId) -> String {
    format!("g{group}.retired")
}

/// Whether `group` was retired on this disk.
pub async fn is_retired<M: Message>(disk: &NodeDisk<'_, M>, group: GroupId) -> bool {
    disk.list().await.contains(&retired_name(group))
}

/// Retires `group` on this disk: its tombstone first (durably), then every other file of the
/// group is deleted. Idempotent, so a crash halfway is finished at the next boot.
pub async fn retire<M: Message>(disk: &NodeDisk<'_, M>, group: GroupId) -> Result<(), DiskError> {
    if !is_retired(disk, group).await {
        crate::sut::durable::replace_file(disk, &retired_name(group), b"retired").await?;
    }
    let prefix = format!("g{group}.");
    for name in disk.list().await {
        if name.starts_with(&prefix) && name != retired_name(group) {
            disk.remove(&name).await?;
        }
    }
    disk.fsync_dir().await
}

// ---- disk moves (`migration::disk_move`) ----
//
// The disk model is flat (no directories), so Pegasus's directory renames become marks: the
// destination's copy carries `g{group}.disk.migrate.tmp` until the switch, the old copy
// `g{group}.disk.migrate.ori` from the switch on. Each mark is one durable file write or removal,
// so the switch (removing the temporary mark) is atomic, and a boot reads where the replica lives
// from the marks alone.

/// What a disk move's marks say, so that a boot can report the attempt it reverted or resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskMoveMark {
    pub migration: crate::sut::store::migration::messages::MigrationRef,
    pub from_disk: u32,
    pub to_disk: u32,
}

/// The mark of a disk move's copy that has not switched yet.
pub fn disk_move_tmp_name(group: GroupId) -> String {
    format!("g{group}.disk.migrate.tmp")
}

/// The mark of the copy a disk move switched away from.
pub fn disk_move_ori_name(group: GroupId) -> String {
    format!("g{group}.disk.migrate.ori")
}

/// Every file of `group` on this disk (marks, the tombstone and leftovers of interrupted
/// replacements included).
pub async fn group_files<M: Message>(disk: &NodeDisk<'_, M>, group: GroupId) -> Vec<String> {
    let prefix = format!("g{group}.");
    disk.list().await.into_iter().filter(|name| name.starts_with(&prefix)).collect()
}

/// The files that make up the replica's state: what a disk move copies.
async fn replica_files<M: Message>(disk: &NodeDisk<'_, M>, group: GroupId) -> Vec<String> {
    let marks = [disk_move_tmp_name(group), disk_move_ori_name(group), retired_name(group)];
    group_files(disk, group).await.into_iter().filter(|name| !marks.contains(name) && !name.ends_with(".tmp")).collect()
}

/// Why a copy failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CopyError {
    /// A write or fsync on either disk failed.
    Disk(DiskError),
    /// A file read back from the destination differs from its source.
    Corrupt { name: String },
}

/// Copies the replica's files from `from` to `to` under the temporary mark (written first,
/// durably), each file durably, then reads each back and compares it with its source.
pub async fn copy_replica<M: Message>(
    from: &NodeDisk<'_, M>,
    to: &NodeDisk<'_, M>,
    group: GroupId,
    mark: DiskMoveMark,
) -> Result<(), CopyError> {
    replace_file(to, &disk_move_tmp_name(group), &codec::encode(&mark)).await.map_err(CopyError::Disk)?;
    let mut copied = Vec::new();
    for name in replica_files(from, group).await {
        let bytes = from.read_all(&name).await.map_err(CopyError::Disk)?;
        replace_file(to, &name, &bytes).await.map_err(CopyError::Disk)?;
        copied.push((name, bytes));
    }
    for (name, bytes) in copied {
        let read = to.read_all(&name).await.map_err(CopyError::Disk)?;
        if read != bytes {
            return Err(CopyError::Corrupt { name });
        }
    }
    Ok(())
}

/// The switch: the old copy is marked `.ori` (durably), then the new copy's temporary mark goes
/// (durably). Until the second step is durable, a boot reverts.
pub async fn switch_replica<M: Message>(
    from: &NodeDisk<'_, M>,
    to: &NodeDisk<'_, M>,
    group: GroupId,
    mark: DiskMoveMark,
) -> Result<(), DiskError> {
    replace_file(from, &disk_move_ori_name(group), &codec::encode(&mark)).await?;
    to.remove(&disk_move_tmp_name(group)).await?;
    to.fsync_dir().await
}

/// Deletes every file of `group` on this disk, `mark` last, so that a crash halfway leaves the
/// mark that says what the rest was. Idempotent.
pub async fn delete_copy<M: Message>(disk: &NodeDisk<'_, M>, group: GroupId, mark: &str) -> Result<(), DiskError> {
    for name in group_files(disk, group).await {
        if name != mark {
            disk.remove(&name).await?;
        }
    }
    disk.fsync_dir().await?;
    match disk.remove(mark).await {
        Ok(()) | Err(DiskError::NotFound { .. }) => {}
        Err(error) => return Err(error),
    }
    disk.fsync_dir().await
}

/// Removes the `.ori` mark of a switch that never finished, if it was written.
pub async fn restore_replica<M: Message>(disk: &NodeDisk<'_, M>, group: GroupId) -> Result<(), DiskError> {
    match disk.remove(&disk_move_ori_name(group)).await {
        Ok(()) | Err(DiskError::NotFound { .. }) => disk.fsync_dir().await,
        Err(error) => Err(error),
    }
}

/// What one disk holds of a group, as a boot reads it.
#[derive(Clone, Debug, Default)]
pub struct DiskHolding {
    pub tmp: Option<DiskMoveMark>,
    pub ori: Option<DiskMoveMark>,
    /// Files of the replica's state (not marks).
    pub files: usize,
}

pub async fn disk_holding<M: Message>(disk: &NodeDisk<'_, M>, group: GroupId) -> DiskHolding {
    let tmp = read_single(disk, &disk_move_tmp_name(group)).await;
    let ori = read_single(disk, &disk_move_ori_name(group)).await;
    DiskHolding { tmp, ori, files: replica_files(disk, group).await.len() }
}

fn segment_prefix(group: GroupId) -> String {
    format!("g{group}.seg.")
}

fn segment_name(group: GroupId, number: u64) -> String {
    format!("{}{number:08}", segment_prefix(group))
}

async fn read_single<M: Message, T: serde::de::DeserializeOwned>(disk: &NodeDisk<'_, M>, name: &str) -> Option<T> {
    let bytes = disk.read_all(name).await.ok()?;
    codec::decode_single(&bytes)
}

impl GroupStorage {
    /// Reads everything the group has on this disk and repairs what recovery must not see twice.
    pub async fn recover<M: Message>(
        disk: &NodeDisk<'_, M>,
        group: GroupId,
        segment_bytes: u64,
    ) -> Result<(GroupStorage, Recovered), DiskError> {
        let mut recovered = Recovered { meta: read_single(disk, &meta_name(group)).await, ..Recovered::default() };
        if let Some(checkpoint) = read_single::<M, Checkpoint>(disk, &checkpoint_name(group)).await {
            recovered.checkpoint = checkpoint;
        }
        let prefix = segment_prefix(group);
        let mut numbered: Vec<(u64, String)> = disk
            .list()
            .await
            .into_iter()
            .filter_map(|name| {
                let number = name.strip_prefix(&prefix)?.parse::<u64>().ok()?;
                Some((number, name))
            })
            .collect();
        numbered.sort();
        let next_segment = numbered.last().map_or(0, |(number, _)| number + 1);

        let mut contents = Vec::new();
        for (_, name) in &numbered {
            contents.push((name.clone(), disk.read_all(name).await?));
        }
        let replayed = replay(&contents, &recovered.checkpoint);
        recovered.entries = replayed.entries;
        recovered.notes = replayed.notes;
        if let Some((index, valid_bytes)) = replayed.damaged {
            let (name, bytes) = &contents[index];
            if valid_bytes < bytes.len() {
                replace_file(disk, name, &bytes[..valid_bytes]).await?;
            }
            for (name, _) in &contents[index + 1..] {
                disk.remove(name).await?;
            }
            disk.fsync_dir().await?;
        }
        let segments = replayed.segments;
        let storage = GroupStorage { group, segment_bytes, segments, open: false, next_segment };
        Ok((storage, recovered))
    }

    /// Appends records and fsyncs them. The first may cut the log back.
    pub async fn append<M: Message>(&mut self, disk: &NodeDisk<'_, M>, records: &[LogRecord]) -> Result<(), DiskError> {
        if records.is_empty() {
            return Ok(());
        }
        let needs_segment = match (self.open, self.segments.last()) {
            (true, Some(segment)) => segment.bytes >= self.segment_bytes,
            _ => true,
        };
        if needs_segment {
            let name = segment_name(self.group, self.next_segment);
            self.next_segment += 1;
            disk.create(&name).await?;
            disk.fsync_dir().await?;
            self.segments.push(Segment { name, max_lsn: 0, bytes: 0 });
            self.open = true;
        }
        let mut bytes = Vec::new();
        for record in records {
            codec::encode_into(record, &mut bytes);
        }
        let segment = self.segments.last_mut().expect("an open segment");
        let name = segment.name.clone();
        segment.bytes += bytes.len() as u64;
        segment.max_lsn = segment.max_lsn.max(records.iter().map(|record| record.entry.lsn).max().unwrap_or(0));
        disk.append(&name, &bytes).await?;
        disk.fsync(&name).await
    }

    /// Writes the meta file.
    pub async fn write_meta<M: Message>(&self, disk: &NodeDisk<'_, M>, meta: Meta) -> Result<(), DiskError> {
        replace_file(disk, &meta_name(self.group), &codec::encode(&meta)).await
    }

    /// Writes a checkpoint, then deletes the segments wholly at or below `truncate_to`.
    pub async fn checkpoint<M: Message>(
        &mut self,
        disk: &NodeDisk<'_, M>,
        checkpoint: &Checkpoint,
        truncate_to: Lsn,
    ) -> Result<(), DiskError> {
        replace_file(disk, &checkpoint_name(self.group), &codec::encode(checkpoint)).await?;
        assert!(truncate_to <= checkpoint.lsn, "storage: truncation past the checkpoint it relies on");
        let mut removed = false;
        while self.segments.len() > 1 || (!self.open && !self.segments.is_empty()) {
            let segment = &self.segments[0];
            if segment.max_lsn > truncate_to {
                break;
            }
            disk.remove(&segment.name).await?;
            self.segments.remove(0);
            removed = true;
        }
        if removed {
            disk.fsync_dir().await?;
        }
        Ok(())
    }

    /// Installs a snapshot from the primary: a checkpoint at its LSN and, unless the log still
    /// agrees with it (`keep_log`), an empty log after it.
    pub async fn install<M: Message>(
        &mut self,
        disk: &NodeDisk<'_, M>,
        checkpoint: &Checkpoint,
        keep_log: bool,
    ) -> Result<(), DiskError> {
        replace_file(disk, &checkpoint_name(self.group), &codec::encode(checkpoint)).await?;
        if !keep_log {
            for segment in self.segments.drain(..) {
                disk.remove(&segment.name).await?;
            }
            self.open = false;
            disk.fsync_dir().await?;
        }
        Ok(())
    }

    /// Bytes of log on disk, for tests and reports.
    pub fn log_bytes(&self) -> u64 {
        self.segments.iter().map(|segment| segment.bytes).sum()
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sut::store::entry::EntryKind;

    fn entry(epoch: Epoch, lsn: Lsn) -> Entry {
        Entry { epoch, lsn, partition: Some(0), kind: EntryKind::Own { owner_epoch: 1 } }
    }

    /// A segment of records (prev_epoch, epoch, lsn).
    fn segment(name: &str, records: &[(Epoch, Epoch, Lsn)]) -> (String, Vec<u8>) {
        let mut bytes = Vec::new();
        for &(prev_epoch, epoch, lsn) in records {
            codec::encode_into(&LogRecord { prev_epoch, entry: entry(epoch, lsn) }, &mut bytes);
        }
        (name.to_string(), bytes)
    }

    fn lsns(replayed: &Replayed) -> Vec<(Epoch, Lsn)> {
        replayed.entries.iter().map(|entry| (entry.epoch, entry.lsn)).collect()
    }

    #[test]
    fn a_cut_back_replaces_the_suffix_it_follows() {
        let segments = [segment("s0", &[(0, 1, 1), (1, 1, 2), (1, 1, 3)]), segment("s1", &[(1, 2, 3), (2, 2, 4)])];
        let replayed = replay(&segments, &Checkpoint::default());
        assert_eq!(lsns(&replayed), vec![(1, 1), (1, 2), (2, 3), (2, 4)]);
        assert_eq!(replayed.damaged, None);
    }

    /// A cut-back record (2, 3) was lost with its unsynced write at the end of one segment, and
    /// the records after it, fsynced in the next segment, survived: they must not be read as a
    /// cut-back of the older (1, 3).
    #[test]
    fn a_record_stranded_by_a_lost_write_before_it_is_damage_not_a_cut_back() {
        let segments =
            [segment("s0", &[(0, 1, 1), (1, 1, 2), (1, 1, 3), (1, 1, 4)]), segment("s1", &[(2, 2, 4), (2, 2, 5)])];
        let replayed = replay(&segments, &Checkpoint::default());
        assert_eq!(lsns(&replayed), vec![(1, 1), (1, 2), (1, 3), (1, 4)]);
        assert_eq!(replayed.damaged, Some((1, 0)), "the stranded segment is cut to nothing");
    }

    #[test]
    fn a_log_that_disagrees_with_the_checkpoint_is_dropped_not_trusted() {
        // A snapshot install (checkpoint at 3, epoch 2) whose removal of the old segments never
        // became durable: the old log's entry at 3 is of epoch 1.
        let segments = [segment("s0", &[(0, 1, 1), (1, 1, 2), (1, 1, 3), (1, 1, 4)])];
        let checkpoint = Checkpoint { lsn: 3, epoch: 2, partitions: Vec::new() };
        let replayed = replay(&segments, &checkpoint);
        assert!(replayed.entries.is_empty());
        assert!(
            replayed.notes.iter().any(|note| note.contains("disagrees with the checkpoint")),
            "{:?}",
            replayed.notes
        );
    }

    #[test]
    fn entries_after_the_checkpoint_must_not_go_back_in_epoch() {
        let segments = [segment("s0", &[(0, 3, 5), (3, 3, 6)])];
        let checkpoint = Checkpoint { lsn: 4, epoch: 4, partitions: Vec::new() };
        let replayed = replay(&segments, &checkpoint);
        assert!(replayed.entries.is_empty(), "epoch 3 after a checkpoint of epoch 4: {:?}", lsns(&replayed));
    }
}
