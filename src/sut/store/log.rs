//! A replica's log in memory: the entries after a base (the last checkpoint or installed
//! snapshot), with Raft's accessors. It only holds entries; what is durable, committed or applied
//! is the replica's business, and it never touches a disk.

use super::entry::Entry;
use super::{Epoch, Lsn};

#[derive(Clone, Debug, Default)]
pub struct Log {
    pub base_lsn: Lsn,
    pub base_epoch: Epoch,
    pub entries: Vec<Entry>,
}

impl Log {
    pub fn last_lsn(&self) -> Lsn {
        self.base_lsn + self.entries.len() as Lsn
    }

    pub fn last_epoch(&self) -> Epoch {
        self.entries.last().map_or(self.base_epoch, |entry| entry.epoch)
    }

    /// The epoch of the entry at `lsn`, if the log knows it (the base counts).
    pub fn epoch_at(&self, lsn: Lsn) -> Option<Epoch> {
        if lsn == self.base_lsn {
            return Some(self.base_epoch);
        }
        self.get(lsn).map(|entry| entry.epoch)
    }

    pub fn get(&self, lsn: Lsn) -> Option<&Entry> {
        if lsn <= self.base_lsn {
            return None;
        }
        self.entries.get((lsn - self.base_lsn - 1) as usize)
    }

    pub fn push(&mut self, entry: Entry) {
        assert_eq!(entry.lsn, self.last_lsn() + 1, "log_contiguous: group log appended out of order");
        assert!(
            entry.epoch >= self.last_epoch(),
            "log_epochs_monotone: entry {entry:?} after epoch {}",
            self.last_epoch()
        );
        self.entries.push(entry);
    }

    /// Drops every entry at or after `lsn`.
    pub fn truncate_from(&mut self, lsn: Lsn) {
        assert!(lsn > self.base_lsn, "log_truncation_above_base: cutting at {lsn}, base {}", self.base_lsn);
        self.entries.truncate((lsn - self.base_lsn - 1) as usize);
    }

    /// Drops entries at or below `lsn`, which becomes the base.
    pub fn compact_to(&mut self, lsn: Lsn) {
        if lsn <= self.base_lsn {
            return;
        }
        let epoch = self.epoch_at(lsn).expect("log_compaction_within_log: compacting to an LSN the log holds");
        self.entries.drain(..(lsn - self.base_lsn) as usize);
        self.base_lsn = lsn;
        self.base_epoch = epoch;
    }

    /// Up to `max` entries from `from` on; none when `from` is at or below the base or past the end.
    pub fn slice(&self, from: Lsn, max: usize) -> Vec<Entry> {
        if from <= self.base_lsn || from > self.last_lsn() {
            return Vec::new();
        }
        let start = (from - self.base_lsn - 1) as usize;
        self.entries[start..(start + max).min(self.entries.len())].to_vec()
    }
}
