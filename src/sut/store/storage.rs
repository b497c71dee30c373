//! One replica's durable state on its node's simulated disk: a `meta` file (the promised epoch), a
//! checkpoint (every partition's snapshot at an LSN), and the log as append-only segments.
//!
//! Files of group `g`: `g{g}.meta` and `g{g}.ckpt`, each one checksummed record replaced
//! atomically (write a temporary file, fsync, rename, fsync the directory); `g{g}.seg.{n}`, log
//! segments numbered in write order, each a sequence of checksummed entry records.
//!
//! Rules that recovery relies on:
//! - A record whose LSN is at or below the last one replayed cuts the log back to just before it
//!   (that is how a backup's conflicting suffix is replaced, since files are never truncated).
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

fn segment_prefix(group: GroupId) -> String {
    format!("g{group}.seg.")
}

fn segment_name(group: GroupId, number: u64) -> String {
    format!("{}{number:08}", segment_prefix(group))
}

/// Replaces `name` with `bytes` atomically and durably: a crash at any point leaves either the
/// old file or the new one, never a mix.
pub async fn replace_file<M: Message>(disk: &NodeDisk<'_, M>, name: &str, bytes: &[u8]) -> Result<(), DiskError> {
    let temporary = format!("{name}.tmp");
    match disk.remove(&temporary).await {
        Ok(()) | Err(DiskError::NotFound { .. }) => {}
        Err(error) => return Err(error),
    }
    disk.create(&temporary).await?;
    disk.write_at(&temporary, 0, bytes).await?;
    disk.fsync(&temporary).await?;
    disk.rename(&temporary, name).await?;
    disk.fsync_dir().await
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

        // Replay in write order: a record at or below the last LSN cuts the log back.
        let mut log: BTreeMap<Lsn, Entry> = BTreeMap::new();
        let mut segments = Vec::new();
        let mut stop_after: Option<usize> = None;
        for (index, (_, name)) in numbered.iter().enumerate() {
            let bytes = disk.read_all(name).await?;
            let decoded: codec::Decoded<Entry> = codec::decode_all(&bytes);
            let mut max_lsn = 0;
            let mut gap = false;
            for entry in decoded.values.iter() {
                let last = log.last_key_value().map(|(lsn, _)| *lsn);
                if let Some(last) = last {
                    if entry.lsn > last + 1 {
                        gap = true;
                        break;
                    }
                }
                let _ = log.split_off(&entry.lsn);
                max_lsn = max_lsn.max(entry.lsn);
                log.insert(entry.lsn, entry.clone());
            }
            if decoded.damaged || gap {
                recovered.notes.push(format!(
                    "{name}: {} after {} bytes; later segments dropped",
                    if gap { "an LSN gap" } else { "a damaged record" },
                    decoded.valid_bytes
                ));
                if decoded.damaged {
                    replace_file(disk, name, &bytes[..decoded.valid_bytes]).await?;
                }
                segments.push(Segment { name: name.clone(), max_lsn, bytes: decoded.valid_bytes as u64 });
                stop_after = Some(index);
                break;
            }
            segments.push(Segment { name: name.clone(), max_lsn, bytes: bytes.len() as u64 });
        }
        if let Some(index) = stop_after {
            for (_, name) in &numbered[index + 1..] {
                disk.remove(name).await?;
            }
            disk.fsync_dir().await?;
        }

        // Keep what follows the checkpoint, if it follows it without a gap.
        let base = recovered.checkpoint.lsn;
        let after = log.split_off(&(base + 1));
        match after.first_key_value() {
            Some((&first, _)) if first == base + 1 => recovered.entries = after.into_values().collect(),
            Some((&first, _)) => recovered.notes.push(format!(
                "the log resumes at LSN {first} but the checkpoint ends at {base}; the log after it is dropped"
            )),
            None => {}
        }
        // The entry at the checkpoint's LSN, if the log still holds it, must be the checkpoint's.
        if let Some(entry) = log.get(&base) {
            assert_eq!(
                entry.epoch, recovered.checkpoint.epoch,
                "storage: group {group}'s log disagrees with its checkpoint at LSN {base}"
            );
        }
        let storage = GroupStorage { group, segment_bytes, segments, open: false, next_segment };
        Ok((storage, recovered))
    }

    /// Appends entries and fsyncs them. The first entry may cut the log back.
    pub async fn append<M: Message>(&mut self, disk: &NodeDisk<'_, M>, entries: &[Entry]) -> Result<(), DiskError> {
        if entries.is_empty() {
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
        for entry in entries {
            codec::encode_into(entry, &mut bytes);
        }
        let segment = self.segments.last_mut().expect("an open segment");
        let name = segment.name.clone();
        segment.bytes += bytes.len() as u64;
        segment.max_lsn = segment.max_lsn.max(entries.iter().map(|entry| entry.lsn).max().unwrap_or(0));
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
