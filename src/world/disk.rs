//! The simulated disk: one storage device of a simulated node, as a pure data model.
//!
//! It owns one disk's files, their contents, which of those bytes and names are durable, the
//! disk's fault settings, and the crash model that decides what survives when the node dies.
//! It is synchronous and deterministic: it never awaits, never reads a clock, never does real I/O,
//! never iterates a `HashMap`, and draws randomness only from the RNG its caller passes in. It knows
//! nothing about logs, partitions, groups or migration. The world wraps it: it keeps one `Disk`
//! per (node, disk index), sleeps for [`Disk::latency_us`] around each operation, and copies
//! [`Disk::take_events`] and each [`CrashReport`] into the trace.
//!
//! # The model
//!
//! What survives a crash is exactly what these rules say; each has a test below.
//!
//! - **Data.** Each file has durable bytes (its content at its last successful `fsync`) and a list
//!   of unsynced writes since then, in order. Reads see the volatile content: durable bytes with the
//!   unsynced writes applied, as a page cache would. A write past the end extends the file with
//!   zeros; a write of zero bytes does nothing. `fsync` applies the unsynced writes to the durable
//!   bytes, so its cost is the unsynced bytes, not the file size.
//! - **Names.** `create`, `rename` and `remove` change the volatile namespace at once and are
//!   durable only at `fsync_dir`. At a crash the directory operations since the last `fsync_dir`
//!   survive as an ordered prefix, as with ext4's ordered metadata journal: the seed draws how many
//!   (0 to all) are replayed onto the durable namespace. A file whose creation did not survive
//!   vanishes even if its data was fsynced; a removal or rename that did not survive brings the old
//!   name back with its file. Renames are atomic and replace their target.
//! - **Crash.** Each unsynced write of each surviving file independently survives with probability
//!   [`DiskConfig::unsynced_write_survival_probability`]. The file after the crash is its durable
//!   bytes with the surviving writes applied in order, each with the usual write semantics: a lost
//!   write leaves the durable bytes beneath it, and beyond the durable end the file grows only as
//!   far as a surviving write reaches, zero-filled in any gap such a write skipped. Afterwards
//!   everything is durable and nothing is pending.
//! - **Faults** (one per name in `fault.rs`). `disk_lost_fsync`: `fsync` or `fsync_dir` returns Ok
//!   and persists nothing, with probability `rate`; the writes stay unsynced. `disk_torn_write`:
//!   at the next crash the last surviving unsynced write of each file keeps only a prefix that ends
//!   on a 512-byte sector boundary of the file (or nothing), always shorter than the write.
//!   `disk_corruption`: with probability `rate` per read, one bit of the durable bytes in the read
//!   range flips, persistently; bytes that exist only in the page cache are never corrupted.
//!   `disk_fsync_error`: the next `fsync` fails with [`DiskError::Io`], dropping the file's unsynced
//!   writes; later fsyncs succeed. `disk_full`: writes, appends and creates fail with
//!   [`DiskError::Full`], as they do when a write would take the volatile bytes past capacity.
//!   `disk_slow`: every operation's latency gains a drawn extra. Rates, `disk_full` and `disk_slow`
//!   are properties of the device and last until they are set again, `heal` or `wipe`; the world
//!   sets them from every fault in force on the disk. One-shot faults (`disk_torn_write`,
//!   `disk_fsync_error`) are armed shots, each named by the fault that armed it ([`FaultId`]) so
//!   that healing one disarms only it: each armed fsync error fails one fsync (the oldest first),
//!   and a crash consumes every armed shot (the torn writes among them tear).
//! - **Capacity.** Writes may not take the volatile bytes of the files the disk holds past
//!   capacity, and the disk holds a removed or renamed-over file until its removal is durable,
//!   since a crash may bring it back. A write that fits the volatile namespace but not beside such
//!   files first makes the pending name changes durable, as ext4 forces a journal commit to free
//!   the blocks of deleted files before it reports ENOSPC. So no crash can leave more bytes than
//!   the capacity.

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::fault::{FaultId, FaultKind, LatencyRange};

/// Torn writes tear at this granularity: a sector is written whole or not at all.
pub const SECTOR_BYTES: u64 = 512;

/// The most fault events a disk holds for the world to take. Passing it drops events and counts
/// them in [`DiskStats::events_dropped`] rather than growing without bound.
pub const MAX_PENDING_EVENTS: usize = 1024;

/// A disk's size, speed and crash behaviour.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiskConfig {
    pub capacity_bytes: u64,
    pub read_latency: LatencyRange,
    pub write_latency: LatencyRange,
    /// Used by both `fsync` and `fsync_dir`.
    pub fsync_latency: LatencyRange,
    /// Used by `create`, `rename`, `remove`, `list` and `len`.
    pub metadata_latency: LatencyRange,
    /// The chance that one unsynced write survives a crash, drawn for each write on its own.
    pub unsynced_write_survival_probability: f64,
}

impl Default for DiskConfig {
    /// A small SSD: 1 GiB, fast reads and writes, fsyncs around a millisecond.
    fn default() -> DiskConfig {
        DiskConfig {
            capacity_bytes: 1 << 30,
            read_latency: LatencyRange { min_us: 50, max_us: 200 },
            write_latency: LatencyRange { min_us: 20, max_us: 100 },
            fsync_latency: LatencyRange { min_us: 200, max_us: 2_000 },
            metadata_latency: LatencyRange { min_us: 10, max_us: 50 },
            unsynced_write_survival_probability: 0.5,
        }
    }
}

/// The expected failures of disk operations; the system under test must handle every one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiskError {
    NotFound {
        name: String,
    },
    AlreadyExists {
        name: String,
    },
    /// The disk is full (`disk_full`, or the write would pass capacity). Nothing was written.
    Full,
    /// An fsync failed (`disk_fsync_error`): the file's unsynced writes are gone, and this is
    /// the only time the failure is reported.
    Io {
        name: String,
    },
}

impl std::fmt::Display for DiskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DiskError::NotFound { name } => write!(f, "file `{name}` not found"),
            DiskError::AlreadyExists { name } => write!(f, "file `{name}` already exists"),
            DiskError::Full => f.write_str("disk full"),
            DiskError::Io { name } => {
                write!(f, "fsync of `{name}` failed; its unsynced writes are lost")
            }
        }
    }
}

impl std::error::Error for DiskError {}

/// Which latency an operation pays, for [`Disk::latency_us`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiskOp {
    Read,
    /// `write_at` and `append`.
    Write,
    Fsync,
    FsyncDir,
    /// `create`, `rename`, `remove`, `list`, `len`.
    Metadata,
}

/// A one-shot fault, armed on a disk until it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shot {
    /// `disk_torn_write`: the next crash tears the last surviving unsynced write of each file.
    TornWrite,
    /// `disk_fsync_error`: one fsync fails and drops the file's unsynced writes.
    FsyncError,
}

/// The shot `arm_torn_write` and `arm_fsync_error` arm, for callers that track no faults: arming
/// it twice arms it once.
pub const OWN_SHOT: FaultId = FaultId::MAX;

/// A fault that fired silently inside an operation, for the trace. Faults that show up as an error
/// or in a [`CrashReport`] are reported there as well; this is the one place all of them appear.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiskEvent {
    /// `fsync(name)` returned Ok and persisted nothing.
    FsyncLost { name: String },
    /// `fsync_dir` returned Ok and persisted nothing.
    FsyncDirLost,
    /// `fsync(name)` failed and dropped `dropped_bytes` of unsynced writes.
    FsyncFailed { name: String, dropped_bytes: u64 },
    /// A read flipped bit `bit` of the durable byte at `offset` of `name`.
    Corrupted { name: String, offset: u64, bit: u8 },
}

impl DiskEvent {
    /// The fault that caused this event, by its one name.
    pub fn fault(&self) -> FaultKind {
        match self {
            DiskEvent::FsyncLost { .. } => FaultKind::DiskLostFsync,
            DiskEvent::FsyncDirLost => FaultKind::DiskLostFsync,
            DiskEvent::FsyncFailed { .. } => FaultKind::DiskFsyncError,
            DiskEvent::Corrupted { .. } => FaultKind::DiskCorruption,
        }
    }
}

/// What a crash did, for the trace. Lists are sorted by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashReport {
    /// Directory operations since the last `fsync_dir` that survived (an ordered prefix).
    pub directory_operations_kept: usize,
    pub directory_operations_lost: usize,
    /// Names that existed before the crash and not after.
    pub names_vanished: Vec<String>,
    /// Names that exist after the crash and did not before (an unsurvived remove or rename).
    pub names_reappeared: Vec<String>,
    /// Names that exist before and after but now name a different file (an unsurvived rename
    /// onto them).
    pub names_reverted: Vec<String>,
    /// One entry per surviving file that had unsynced writes.
    pub files: Vec<FileCrashOutcome>,
}

/// How the unsynced writes of one file fared in a crash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileCrashOutcome {
    pub name: String,
    pub writes_kept: usize,
    pub writes_lost: usize,
    /// The write that `disk_torn_write` tore, if one did. It counts as kept.
    pub torn: Option<TornWrite>,
}

/// A write that kept only a sector-aligned prefix of itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TornWrite {
    pub offset: u64,
    pub length_bytes: u64,
    pub kept_bytes: u64,
}

/// Counters and sizes for reports. Operation counters are cumulative over the disk's life, across
/// crashes and wipes, since reports are per disk slot over a whole run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskStats {
    pub capacity_bytes: u64,
    pub used_bytes: u64,
    pub files: usize,
    pub unsynced_writes: usize,
    pub pending_directory_operations: usize,
    pub reads: u64,
    pub bytes_read: u64,
    pub writes: u64,
    pub bytes_written: u64,
    pub fsyncs: u64,
    pub fsync_dirs: u64,
    pub lost_fsyncs: u64,
    pub fsync_errors: u64,
    pub corruptions: u64,
    pub full_rejections: u64,
    pub torn_writes: u64,
    pub crashes: u64,
    pub wipes: u64,
    pub events_dropped: u64,
}

/// The identity of a file, independent of its name, so renames and unsurvived removals move and
/// restore files rather than copy them.
type FileId = u64;

#[derive(Clone, Debug)]
struct UnsyncedWrite {
    offset: u64,
    data: Vec<u8>,
}

#[derive(Clone, Debug, Default)]
struct File {
    /// The content as of the last successful fsync.
    durable: Vec<u8>,
    /// Writes since then, in order; never empty writes.
    unsynced: Vec<UnsyncedWrite>,
    /// `durable` with `unsynced` applied: what reads see. Never shorter than `durable`, since
    /// nothing truncates.
    volatile: Vec<u8>,
}

#[derive(Clone, Debug)]
enum DirectoryOperation {
    Create { name: String, file: FileId },
    Rename { from: String, to: String },
    Remove { name: String },
}

#[derive(Clone, Debug, Default)]
struct Faults {
    lost_fsync_rate: f64,
    corruption_rate: f64,
    full: bool,
    slow: Option<LatencyRange>,
    /// Armed one-shot faults, by kind then the fault that armed them (oldest first).
    shots: BTreeSet<(Shot, FaultId)>,
}

/// One simulated disk. See the module documentation for the model.
#[derive(Clone, Debug)]
pub struct Disk {
    config: DiskConfig,
    files: BTreeMap<FileId, File>,
    /// The namespace as the running node sees it.
    names: BTreeMap<String, FileId>,
    /// The namespace as of the last `fsync_dir`.
    durable_names: BTreeMap<String, FileId>,
    /// Directory operations since the last `fsync_dir`, in order. Replaying any prefix of them onto
    /// `durable_names` gives a namespace the node once saw; replaying all gives `names`.
    pending_directory_operations: Vec<DirectoryOperation>,
    next_file_id: FileId,
    /// The volatile length of every file in `names`, kept up to date so capacity checks stay O(1).
    used_bytes: u64,
    /// The volatile length of every file in `files`: those named, and those a crash may bring
    /// back. Capacity is checked against it, so no crash outcome can exceed capacity.
    held_bytes: u64,
    faults: Faults,
    events: Vec<DiskEvent>,
    stats: DiskStats,
}

impl Disk {
    pub fn new(config: DiskConfig) -> Disk {
        let mut config = config;
        // Out-of-range probabilities would make `gen_bool` panic, so they are pinned here once.
        config.unsynced_write_survival_probability = probability(config.unsynced_write_survival_probability);
        Disk {
            config,
            files: BTreeMap::new(),
            names: BTreeMap::new(),
            durable_names: BTreeMap::new(),
            pending_directory_operations: Vec::new(),
            next_file_id: 0,
            used_bytes: 0,
            held_bytes: 0,
            faults: Faults::default(),
            events: Vec::new(),
            stats: DiskStats::default(),
        }
    }

    pub fn config(&self) -> &DiskConfig {
        &self.config
    }

    /// Creates an empty file. The name is durable only after the next `fsync_dir`.
    pub fn create(&mut self, name: &str) -> Result<(), DiskError> {
        if self.names.contains_key(name) {
            return Err(DiskError::AlreadyExists { name: name.to_string() });
        }
        if self.faults.full {
            self.stats.full_rejections += 1;
            return Err(DiskError::Full);
        }
        let file = self.next_file_id;
        self.next_file_id += 1;
        self.files.insert(file, File::default());
        self.names.insert(name.to_string(), file);
        self.pending_directory_operations.push(DirectoryOperation::Create { name: name.to_string(), file });
        Ok(())
    }

    /// Writes `data` at `offset`, extending the file with zeros if `offset` is past its end.
    /// All or nothing: on `Full` the file is unchanged.
    pub fn write_at(&mut self, name: &str, offset: u64, data: &[u8]) -> Result<(), DiskError> {
        self.write(name, Some(offset), data).map(|_| ())
    }

    /// Writes `data` at the end of the file and returns the offset it was written at.
    pub fn append(&mut self, name: &str, data: &[u8]) -> Result<u64, DiskError> {
        self.write(name, None, data)
    }

    /// Reads up to `length` bytes at `offset` from the volatile content: short at the end of the
    /// file, empty past it. Under `disk_corruption` the read may first flip a durable bit in range.
    pub fn read<R: Rng + ?Sized>(
        &mut self,
        name: &str,
        offset: u64,
        length: usize,
        rng: &mut R,
    ) -> Result<Vec<u8>, DiskError> {
        let id = self.file_id(name)?;
        let corruption_rate = self.faults.corruption_rate;
        let file = self.files.get_mut(&id).expect("disk_names_point_at_files: a named file exists");
        let file_length = file.volatile.len();
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(file_length);
        let end = start + length.min(file_length - start);

        let durable_end = end.min(file.durable.len());
        let mut corrupted = None;
        if corruption_rate > 0.0 && start < durable_end && rng.gen_bool(corruption_rate) {
            let position = rng.gen_range(start..durable_end);
            let bit: u8 = rng.gen_range(0..8);
            let mask = 1u8 << bit;
            file.durable[position] ^= mask;
            // The page cache holds the newer bytes where an unsynced write covers the position;
            // elsewhere the volatile byte is the durable byte, so the flip shows in this read.
            let position_u64 = position as u64;
            let covered = file
                .unsynced
                .iter()
                .any(|write| write.offset <= position_u64 && position_u64 < write.offset + write.data.len() as u64);
            if !covered {
                file.volatile[position] ^= mask;
            }
            corrupted = Some((position_u64, bit));
        }
        let data = file.volatile[start..end].to_vec();

        if let Some((offset, bit)) = corrupted {
            self.stats.corruptions += 1;
            self.push_event(DiskEvent::Corrupted { name: name.to_string(), offset, bit });
        }
        self.stats.reads += 1;
        self.stats.bytes_read += data.len() as u64;
        Ok(data)
    }

    /// The volatile length of the file.
    pub fn len(&self, name: &str) -> Result<u64, DiskError> {
        let id = self.file_id(name)?;
        Ok(self.files[&id].volatile.len() as u64)
    }

    /// Makes the file's current content durable, except under `disk_lost_fsync` (Ok, nothing
    /// persisted) or an armed `disk_fsync_error` (`Io`, unsynced writes dropped).
    pub fn fsync<R: Rng + ?Sized>(&mut self, name: &str, rng: &mut R) -> Result<(), DiskError> {
        let id = self.file_id(name)?;
        self.stats.fsyncs += 1;
        let armed_fsync_error = self.faults.shots.iter().find(|(shot, _)| *shot == Shot::FsyncError).copied();
        if let Some(fired) = armed_fsync_error {
            self.faults.shots.remove(&fired);
            let file = self.files.get_mut(&id).expect("disk_names_point_at_files: a named file exists");
            let dropped_bytes: u64 = file.unsynced.iter().map(|write| write.data.len() as u64).sum();
            let shrunk_bytes = (file.volatile.len() - file.durable.len()) as u64;
            self.used_bytes -= shrunk_bytes;
            self.held_bytes -= shrunk_bytes;
            file.volatile.clone_from(&file.durable);
            file.unsynced.clear();
            self.stats.fsync_errors += 1;
            self.push_event(DiskEvent::FsyncFailed { name: name.to_string(), dropped_bytes });
            return Err(DiskError::Io { name: name.to_string() });
        }
        if self.faults.lost_fsync_rate > 0.0 && rng.gen_bool(self.faults.lost_fsync_rate) {
            self.stats.lost_fsyncs += 1;
            self.push_event(DiskEvent::FsyncLost { name: name.to_string() });
            return Ok(());
        }
        let file = self.files.get_mut(&id).expect("disk_names_point_at_files: a named file exists");
        for write in file.unsynced.drain(..) {
            apply_write(&mut file.durable, write.offset, &write.data);
        }
        assert_eq!(file.durable.len(), file.volatile.len(), "disk_fsync_makes_volatile_durable: file `{name}`");
        Ok(())
    }

    /// Makes every create, rename and remove so far durable, except under `disk_lost_fsync`
    /// (Ok, nothing persisted). It never fails today; the `Result` lets the system under test
    /// handle a directory fsync error should the model grow one.
    pub fn fsync_dir<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Result<(), DiskError> {
        self.stats.fsync_dirs += 1;
        if self.faults.lost_fsync_rate > 0.0 && rng.gen_bool(self.faults.lost_fsync_rate) {
            self.stats.lost_fsyncs += 1;
            self.push_event(DiskEvent::FsyncDirLost);
            return Ok(());
        }
        self.commit_directory();
        Ok(())
    }

    /// Makes the volatile namespace durable and lets go of the files it no longer names.
    fn commit_directory(&mut self) {
        self.durable_names.clone_from(&self.names);
        self.pending_directory_operations.clear();
        self.collect_unreachable_files();
    }

    /// Renames `from` to `to` atomically, replacing `to` if it exists. Durable only after the
    /// next `fsync_dir`; until then a crash leaves either the old names or the new ones.
    pub fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        let id = self.file_id(from)?;
        if from == to {
            return Ok(());
        }
        if let Some(replaced) = self.names.remove(to) {
            self.used_bytes -= self.files[&replaced].volatile.len() as u64;
        }
        self.names.remove(from);
        self.names.insert(to.to_string(), id);
        self.pending_directory_operations
            .push(DirectoryOperation::Rename { from: from.to_string(), to: to.to_string() });
        Ok(())
    }

    /// Removes a file. Durable only after the next `fsync_dir`; until then a crash may bring it
    /// back.
    pub fn remove(&mut self, name: &str) -> Result<(), DiskError> {
        let id = self.file_id(name)?;
        self.used_bytes -= self.files[&id].volatile.len() as u64;
        self.names.remove(name);
        self.pending_directory_operations.push(DirectoryOperation::Remove { name: name.to_string() });
        Ok(())
    }

    /// The names of the volatile namespace, sorted.
    pub fn list(&self) -> Vec<String> {
        self.names.keys().cloned().collect()
    }

    /// Resolves everything unsynced as the model says, leaving a disk on which everything is
    /// durable. Consumes armed `disk_torn_write` and `disk_fsync_error`.
    pub fn crash<R: Rng + ?Sized>(&mut self, rng: &mut R) -> CrashReport {
        let mut report = CrashReport::default();

        let operations = std::mem::take(&mut self.pending_directory_operations);
        let kept = rng.gen_range(0..=operations.len());
        let mut names = std::mem::take(&mut self.durable_names);
        for operation in &operations[..kept] {
            replay(&mut names, operation);
        }
        report.directory_operations_kept = kept;
        report.directory_operations_lost = operations.len() - kept;
        for (name, file) in &self.names {
            match names.get(name) {
                None => report.names_vanished.push(name.clone()),
                Some(survivor) if survivor != file => report.names_reverted.push(name.clone()),
                Some(_) => {}
            }
        }
        for name in names.keys() {
            if !self.names.contains_key(name) {
                report.names_reappeared.push(name.clone());
            }
        }

        // Files are resolved in id order so that the draws do not depend on names.
        let survivors: BTreeMap<FileId, &String> = names.iter().map(|(name, &file)| (file, name)).collect();
        let torn_write_armed = self.faults.shots.iter().any(|(shot, _)| *shot == Shot::TornWrite);
        let survival_probability = self.config.unsynced_write_survival_probability;
        for (file_id, name) in &survivors {
            let file = self.files.get_mut(file_id).expect("disk_names_point_at_files: a named file exists");
            if let Some(mut outcome) = resolve_unsynced_writes(file, survival_probability, torn_write_armed, rng) {
                outcome.name = (*name).clone();
                if outcome.torn.is_some() {
                    self.stats.torn_writes += 1;
                }
                report.files.push(outcome);
            }
        }
        report.files.sort_by(|left, right| left.name.cmp(&right.name));

        self.files.retain(|file, _| survivors.contains_key(file));
        self.names.clone_from(&names);
        self.durable_names = names;
        self.used_bytes = self.volatile_bytes_of_named_files();
        self.held_bytes = self.used_bytes;
        assert!(
            self.used_bytes <= self.config.capacity_bytes,
            "disk_within_capacity: a crash left {} bytes on a disk of {}",
            self.used_bytes,
            self.config.capacity_bytes
        );
        self.faults.shots.clear();
        self.stats.crashes += 1;
        report
    }

    /// Replaces the disk with an empty new one (peer replacement): no files, no pending state, no
    /// faults. The configuration and the cumulative counters stay. Faults that act on whatever
    /// disk is in the slot are the caller's to set again.
    pub fn wipe(&mut self) {
        let stats = DiskStats { wipes: self.stats.wipes + 1, ..self.stats.clone() };
        *self = Disk::new(self.config.clone());
        self.stats = stats;
    }

    /// How long `op` takes on this disk, in model microseconds, including `disk_slow`.
    pub fn latency_us<R: Rng + ?Sized>(&self, op: DiskOp, rng: &mut R) -> u64 {
        let range = match op {
            DiskOp::Read => self.config.read_latency,
            DiskOp::Write => self.config.write_latency,
            DiskOp::Fsync => self.config.fsync_latency,
            DiskOp::FsyncDir => self.config.fsync_latency,
            DiskOp::Metadata => self.config.metadata_latency,
        };
        let extra = self.faults.slow.map_or(0, |slow| draw_latency_us(slow, rng));
        draw_latency_us(range, rng).saturating_add(extra)
    }

    /// `disk_lost_fsync`: each fsync and fsync_dir persists nothing, returning Ok, with
    /// probability `rate`.
    pub fn set_lost_fsync(&mut self, rate: f64) {
        self.faults.lost_fsync_rate = probability(rate);
    }

    /// `disk_torn_write`: at the next crash, the last surviving unsynced write of each file tears.
    pub fn arm_torn_write(&mut self) {
        self.arm_shot(Shot::TornWrite, OWN_SHOT);
    }

    /// `disk_corruption`: each read flips one durable bit in its range with probability `rate`.
    pub fn set_corruption(&mut self, rate: f64) {
        self.faults.corruption_rate = probability(rate);
    }

    /// `disk_fsync_error`: the next fsync fails with `Io` and drops the file's unsynced writes.
    pub fn arm_fsync_error(&mut self) {
        self.arm_shot(Shot::FsyncError, OWN_SHOT);
    }

    /// Arms a one-shot fault on behalf of fault `id`, until it fires, a crash consumes it, or
    /// `disarm` takes it back. One fault arms at most one shot of a kind on a disk.
    pub fn arm_shot(&mut self, shot: Shot, id: FaultId) {
        self.faults.shots.insert((shot, id));
    }

    /// Takes back the shots fault `id` armed that have not fired.
    pub fn disarm(&mut self, id: FaultId) {
        self.faults.shots.retain(|&(_, armed_by)| armed_by != id);
    }

    /// The shots armed and not yet fired, by kind then fault.
    pub fn armed_shots(&self) -> Vec<(Shot, FaultId)> {
        self.faults.shots.iter().copied().collect()
    }

    /// `disk_full`: writes, appends and creates fail with `Full` while set.
    pub fn set_full(&mut self, full: bool) {
        self.faults.full = full;
    }

    /// `disk_slow`: every operation's latency gains a draw from `extra`.
    pub fn set_slow(&mut self, extra: Option<LatencyRange>) {
        self.faults.slow = extra;
    }

    /// Clears every fault setting, armed or not. Data, including corrupted bytes, stays.
    pub fn heal(&mut self) {
        self.faults = Faults::default();
    }

    /// The silent fault events since the last call, oldest first.
    pub fn take_events(&mut self) -> Vec<DiskEvent> {
        std::mem::take(&mut self.events)
    }

    pub fn stats(&self) -> DiskStats {
        DiskStats {
            capacity_bytes: self.config.capacity_bytes,
            used_bytes: self.used_bytes,
            files: self.names.len(),
            unsynced_writes: self.files.values().map(|file| file.unsynced.len()).sum(),
            pending_directory_operations: self.pending_directory_operations.len(),
            ..self.stats.clone()
        }
    }

    fn file_id(&self, name: &str) -> Result<FileId, DiskError> {
        self.names.get(name).copied().ok_or_else(|| DiskError::NotFound { name: name.to_string() })
    }

    /// The shared body of `write_at` (`offset` given) and `append` (`offset` is the end).
    fn write(&mut self, name: &str, offset: Option<u64>, data: &[u8]) -> Result<u64, DiskError> {
        let id = self.file_id(name)?;
        if self.faults.full {
            self.stats.full_rejections += 1;
            return Err(DiskError::Full);
        }
        let current_length = self.files[&id].volatile.len() as u64;
        let offset = offset.unwrap_or(current_length);
        if data.is_empty() {
            return Ok(offset);
        }
        // A write whose end does not fit in u64 or usize cannot fit on the disk either.
        let end = offset.checked_add(data.len() as u64).filter(|&end| usize::try_from(end).is_ok());
        let growth = end.map(|end| end.saturating_sub(current_length));
        let capacity = self.config.capacity_bytes;
        let fits = |held_bytes: u64| growth.is_some_and(|growth| held_bytes.saturating_add(growth) <= capacity);
        if !fits(self.held_bytes) && fits(self.used_bytes) {
            // The space is held by files a crash could bring back: make their removal durable.
            self.commit_directory();
            assert_eq!(self.held_bytes, self.used_bytes, "disk_holds_only_named_files: after a directory commit");
        }
        let Some(growth) = growth.filter(|_| fits(self.held_bytes)) else {
            self.stats.full_rejections += 1;
            return Err(DiskError::Full);
        };
        let file = self.files.get_mut(&id).expect("disk_names_point_at_files: a named file exists");
        apply_write(&mut file.volatile, offset, data);
        file.unsynced.push(UnsyncedWrite { offset, data: data.to_vec() });
        self.used_bytes += growth;
        self.held_bytes += growth;
        self.stats.writes += 1;
        self.stats.bytes_written += data.len() as u64;
        Ok(offset)
    }

    /// Drops files no namespace can reach any more: after `fsync_dir` only `names` matters, since
    /// the durable namespace equals it and no operation is pending.
    fn collect_unreachable_files(&mut self) {
        let reachable: BTreeSet<FileId> = self.names.values().copied().collect();
        let mut released_bytes = 0;
        self.files.retain(|file, content| {
            let kept = reachable.contains(file);
            if !kept {
                released_bytes += content.volatile.len() as u64;
            }
            kept
        });
        self.held_bytes -= released_bytes;
    }

    fn volatile_bytes_of_named_files(&self) -> u64 {
        self.names.values().map(|file| self.files[file].volatile.len() as u64).sum()
    }

    fn push_event(&mut self, event: DiskEvent) {
        if self.events.len() < MAX_PENDING_EVENTS {
            self.events.push(event);
        } else {
            self.stats.events_dropped += 1;
        }
    }
}

/// Writes `data` into `buffer` at `offset`, zero-filling any gap past the end. The caller has
/// checked that the end fits in memory (`Disk::write` bounds it by capacity).
fn apply_write(buffer: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let start = offset as usize;
    let end = start + data.len();
    if buffer.len() < end {
        buffer.resize(end, 0);
    }
    buffer[start..end].copy_from_slice(data);
}

/// Applies one directory operation to a namespace, as it was applied to the volatile one.
fn replay(names: &mut BTreeMap<String, FileId>, operation: &DirectoryOperation) {
    match operation {
        DirectoryOperation::Create { name, file } => {
            let previous = names.insert(name.clone(), *file);
            assert!(previous.is_none(), "disk_replay_matches_history: create of existing `{name}`");
        }
        DirectoryOperation::Rename { from, to } => {
            let file = names.remove(from);
            let file = file.unwrap_or_else(|| panic!("disk_replay_matches_history: rename of missing `{from}`"));
            names.insert(to.clone(), file);
        }
        DirectoryOperation::Remove { name } => {
            let removed = names.remove(name);
            assert!(removed.is_some(), "disk_replay_matches_history: remove of missing `{name}`");
        }
    }
}

/// Decides which unsynced writes of one file survive a crash, tears the last survivor if asked,
/// and leaves the file fully durable. Returns `None`, drawing nothing, if nothing was unsynced.
/// The outcome's name is left for the caller to fill in.
fn resolve_unsynced_writes<R: Rng + ?Sized>(
    file: &mut File,
    survival_probability: f64,
    torn_write_armed: bool,
    rng: &mut R,
) -> Option<FileCrashOutcome> {
    if file.unsynced.is_empty() {
        return None;
    }
    let survived: Vec<bool> = file.unsynced.iter().map(|_| rng.gen_bool(survival_probability)).collect();
    let last_survivor = survived.iter().rposition(|&kept| kept);
    let mut torn = None;
    if let (true, Some(index)) = (torn_write_armed, last_survivor) {
        let write = &file.unsynced[index];
        let kept_bytes = draw_torn_prefix_bytes(write.offset, write.data.len() as u64, rng);
        torn = Some((index, kept_bytes));
    }
    let writes_kept = survived.iter().filter(|&&kept| kept).count();
    let mut outcome =
        FileCrashOutcome { name: String::new(), writes_kept, writes_lost: survived.len() - writes_kept, torn: None };
    for (index, write) in file.unsynced.drain(..).enumerate() {
        if !survived[index] {
            continue;
        }
        let mut kept_bytes = write.data.len() as u64;
        if let Some((torn_index, torn_kept_bytes)) = torn {
            if torn_index == index {
                kept_bytes = torn_kept_bytes;
                outcome.torn =
                    Some(TornWrite { offset: write.offset, length_bytes: write.data.len() as u64, kept_bytes });
            }
        }
        // An empty prefix writes nothing, so it cannot extend the file either.
        if kept_bytes > 0 {
            apply_write(&mut file.durable, write.offset, &write.data[..kept_bytes as usize]);
        }
    }
    file.volatile.clone_from(&file.durable);
    Some(outcome)
}

/// Draws how many bytes of a torn write survive: the write's end is cut back to its own start or
/// to a sector boundary of the file strictly inside it, uniformly among those. Tearing at file
/// offsets rather than write-relative ones is what a disk does; for a sector-aligned write they
/// agree.
fn draw_torn_prefix_bytes<R: Rng + ?Sized>(offset: u64, length_bytes: u64, rng: &mut R) -> u64 {
    let end = offset + length_bytes;
    let first_boundary = (offset / SECTOR_BYTES + 1) * SECTOR_BYTES;
    let boundaries_inside = if first_boundary < end { (end - 1) / SECTOR_BYTES - offset / SECTOR_BYTES } else { 0 };
    let choice = rng.gen_range(0..=boundaries_inside);
    if choice == 0 {
        0
    } else {
        first_boundary + (choice - 1) * SECTOR_BYTES - offset
    }
}

fn draw_latency_us<R: Rng + ?Sized>(range: LatencyRange, rng: &mut R) -> u64 {
    let low = range.min_us.min(range.max_us);
    let high = range.min_us.max(range.max_us);
    rng.gen_range(low..=high)
}

/// Pins a rate into [0, 1]; NaN counts as never.
pub(crate) fn probability(rate: f64) -> f64 {
    if rate.is_nan() {
        0.0
    } else {
        rate.clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const SEEDS: u64 = 200;

    fn rng(seed: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(seed)
    }

    fn fixed(latency_us: u64) -> LatencyRange {
        LatencyRange { min_us: latency_us, max_us: latency_us }
    }

    fn small_disk(capacity_bytes: u64) -> Disk {
        Disk::new(DiskConfig { capacity_bytes, ..DiskConfig::default() })
    }

    fn read_all(disk: &mut Disk, name: &str) -> Vec<u8> {
        disk.read(name, 0, usize::MAX, &mut rng(0)).unwrap()
    }

    /// Every file and its content, for comparing whole disks.
    fn snapshot(disk: &mut Disk) -> Vec<(String, Vec<u8>)> {
        disk.list().into_iter().map(|name| (name.clone(), read_all(disk, &name))).collect()
    }

    /// A disk holding `name` with `content`, all durable (data and name).
    fn disk_with_durable_file(name: &str, content: &[u8]) -> Disk {
        let mut disk = Disk::new(DiskConfig::default());
        disk.create(name).unwrap();
        disk.write_at(name, 0, content).unwrap();
        disk.fsync(name, &mut rng(0)).unwrap();
        disk.fsync_dir(&mut rng(0)).unwrap();
        disk
    }

    /// Crashes a copy of `disk` under each seed and returns the copies' snapshots.
    fn crash_outcomes(disk: &Disk) -> Vec<Vec<(String, Vec<u8>)>> {
        (0..SEEDS)
            .map(|seed| {
                let mut copy = disk.clone();
                copy.crash(&mut rng(seed));
                snapshot(&mut copy)
            })
            .collect()
    }

    #[test]
    fn reads_see_unsynced_writes_before_a_crash() {
        let mut disk = Disk::new(DiskConfig::default());
        disk.create("log").unwrap();
        disk.write_at("log", 0, b"hello").unwrap();
        disk.write_at("log", 3, b"p!").unwrap();
        assert_eq!(read_all(&mut disk, "log"), b"help!");
        assert_eq!(disk.len("log"), Ok(5));
    }

    #[test]
    fn append_returns_the_offset_it_wrote_at() {
        let mut disk = Disk::new(DiskConfig::default());
        disk.create("log").unwrap();
        assert_eq!(disk.append("log", b"abc"), Ok(0));
        assert_eq!(disk.append("log", b"de"), Ok(3));
        assert_eq!(disk.append("log", b""), Ok(5));
        assert_eq!(read_all(&mut disk, "log"), b"abcde");
    }

    #[test]
    fn write_past_the_end_fills_the_gap_with_zeros() {
        let mut disk = Disk::new(DiskConfig::default());
        disk.create("sparse").unwrap();
        disk.write_at("sparse", 4, b"xy").unwrap();
        assert_eq!(read_all(&mut disk, "sparse"), b"\0\0\0\0xy");
    }

    #[test]
    fn synced_data_survives_a_crash() {
        let mut disk = disk_with_durable_file("data", b"durable");
        disk.append("data", b" and more").unwrap();
        disk.fsync("data", &mut rng(0)).unwrap();
        for outcome in crash_outcomes(&disk) {
            assert_eq!(outcome, vec![("data".to_string(), b"durable and more".to_vec())]);
        }
    }

    #[test]
    fn unsynced_write_is_lost_or_kept_as_the_seed_draws() {
        let mut disk = disk_with_durable_file("data", b"old");
        disk.append("data", b"new").unwrap();
        let outcomes = crash_outcomes(&disk);
        let kept = vec![("data".to_string(), b"oldnew".to_vec())];
        let lost = vec![("data".to_string(), b"old".to_vec())];
        assert!(outcomes.iter().all(|outcome| *outcome == kept || *outcome == lost));
        assert!(outcomes.contains(&kept), "no seed kept the unsynced write");
        assert!(outcomes.contains(&lost), "no seed lost the unsynced write");
    }

    #[test]
    fn lost_writes_leave_durable_bytes_and_only_surviving_writes_extend_the_file() {
        let mut disk = disk_with_durable_file("data", b"AAAAAAAA");
        disk.write_at("data", 2, b"BB").unwrap();
        disk.write_at("data", 12, b"CC").unwrap();
        assert_eq!(read_all(&mut disk, "data"), b"AABBAAAA\0\0\0\0CC");
        let possible: Vec<&[u8]> = vec![b"AAAAAAAA", b"AABBAAAA", b"AAAAAAAA\0\0\0\0CC", b"AABBAAAA\0\0\0\0CC"];
        let outcomes: BTreeSet<Vec<u8>> =
            crash_outcomes(&disk).into_iter().map(|outcome| outcome[0].1.clone()).collect();
        let expected: BTreeSet<Vec<u8>> = possible.into_iter().map(|content| content.to_vec()).collect();
        assert_eq!(outcomes, expected);
    }

    #[test]
    fn a_lost_extending_write_does_not_leave_zeros_behind() {
        // Durable "ab"; unsynced: extend to 6 bytes, then overwrite inside the extension.
        let mut disk = disk_with_durable_file("data", b"ab");
        disk.write_at("data", 2, b"cdef").unwrap();
        disk.write_at("data", 3, b"X").unwrap();
        let outcomes: BTreeSet<Vec<u8>> =
            crash_outcomes(&disk).into_iter().map(|outcome| outcome[0].1.clone()).collect();
        let expected: BTreeSet<Vec<u8>> =
            [&b"ab"[..], b"abcdef", b"ab\0X", b"abcXef"].into_iter().map(|content| content.to_vec()).collect();
        assert_eq!(outcomes, expected);
    }

    #[test]
    fn after_a_crash_everything_is_durable() {
        let mut disk = disk_with_durable_file("data", b"old");
        disk.append("data", b"new").unwrap();
        disk.create("other").unwrap();
        disk.crash(&mut rng(7));
        let stats = disk.stats();
        assert_eq!(stats.unsynced_writes, 0);
        assert_eq!(stats.pending_directory_operations, 0);
        let after_first_crash = snapshot(&mut disk);
        for outcome in crash_outcomes(&disk) {
            assert_eq!(outcome, after_first_crash);
        }
    }

    #[test]
    fn same_seed_gives_the_same_crash_outcome() {
        let mut disk = disk_with_durable_file("data", &[1; 4096]);
        for index in 0..20u8 {
            disk.append("data", &[index; 700]).unwrap();
            disk.create(&format!("file-{index}")).unwrap();
            disk.write_at(&format!("file-{index}"), 0, &[index; 100]).unwrap();
        }
        disk.rename("file-3", "file-4").unwrap();
        disk.remove("file-5").unwrap();
        disk.arm_torn_write();
        for seed in 0..20 {
            let mut first = disk.clone();
            let mut second = disk.clone();
            let first_report = first.crash(&mut rng(seed));
            let second_report = second.crash(&mut rng(seed));
            assert_eq!(first_report, second_report);
            assert_eq!(snapshot(&mut first), snapshot(&mut second));
        }
        let distinct: BTreeSet<_> = crash_outcomes(&disk).into_iter().collect();
        assert!(distinct.len() > 1, "the seed should matter");
    }

    #[test]
    fn torn_write_leaves_a_512_byte_aligned_prefix() {
        let mut disk = disk_with_durable_file("data", b"");
        disk.write_at("data", 0, &[0xab; 2000]).unwrap();
        disk.arm_torn_write();
        let mut lengths = BTreeSet::new();
        for seed in 0..SEEDS {
            let mut copy = disk.clone();
            let report = copy.crash(&mut rng(seed));
            let content = read_all(&mut copy, "data");
            assert!(content.iter().all(|&byte| byte == 0xab));
            assert_eq!(content.len() % 512, 0, "kept {} bytes", content.len());
            assert!(content.len() < 2000, "a torn write is always shorter than the write");
            if let Some(torn) = report.files[0].torn {
                assert_eq!(torn.kept_bytes, content.len() as u64);
                assert_eq!(torn.length_bytes, 2000);
            }
            lengths.insert(content.len());
        }
        assert_eq!(lengths, BTreeSet::from([0, 512, 1024, 1536]));
    }

    #[test]
    fn torn_write_at_an_unaligned_offset_tears_at_file_sector_boundaries() {
        let mut disk = disk_with_durable_file("data", &[1; 100]);
        disk.write_at("data", 100, &[2; 1000]).unwrap();
        disk.arm_torn_write();
        let lengths: BTreeSet<usize> = crash_outcomes(&disk).into_iter().map(|outcome| outcome[0].1.len()).collect();
        assert_eq!(lengths, BTreeSet::from([100, 512, 1024]));
    }

    #[test]
    fn torn_write_tears_only_the_last_surviving_write() {
        let mut disk = disk_with_durable_file("data", b"");
        disk.write_at("data", 0, &[1; 1024]).unwrap();
        disk.write_at("data", 1024, &[2; 1024]).unwrap();
        disk.arm_torn_write();
        let mut saw_first_whole_and_second_torn = false;
        for seed in 0..SEEDS {
            let mut copy = disk.clone();
            let report = copy.crash(&mut rng(seed));
            let outcome = &report.files[0];
            let content = read_all(&mut copy, "data");
            match (outcome.writes_kept, outcome.torn) {
                (0, torn) => {
                    assert_eq!(torn, None);
                    assert!(content.is_empty());
                }
                (1, Some(torn)) => {
                    // A write torn down to nothing writes nothing, so it cannot extend the file.
                    let end = if torn.kept_bytes == 0 { 0 } else { torn.offset + torn.kept_bytes };
                    assert_eq!(content.len() as u64, end);
                }
                (2, Some(torn)) => {
                    assert_eq!(torn.offset, 1024, "the torn write is the last survivor");
                    assert_eq!(&content[..1024], &[1; 1024][..]);
                    saw_first_whole_and_second_torn = true;
                }
                other => panic!("unexpected outcome {other:?}"),
            }
        }
        assert!(saw_first_whole_and_second_torn);
    }

    #[test]
    fn torn_write_is_consumed_by_the_crash() {
        let mut disk = disk_with_durable_file("data", b"");
        disk.arm_torn_write();
        disk.crash(&mut rng(0));
        disk.write_at("data", 0, &[3; 2048]).unwrap();
        for outcome in crash_outcomes(&disk) {
            let length = outcome[0].1.len();
            assert!(length == 0 || length == 2048, "torn after the arming was consumed: {length}");
        }
    }

    #[test]
    fn created_file_needs_fsync_dir_to_survive() {
        let mut disk = Disk::new(DiskConfig::default());
        disk.create("new").unwrap();
        disk.write_at("new", 0, b"fsynced data").unwrap();
        disk.fsync("new", &mut rng(0)).unwrap();
        let outcomes = crash_outcomes(&disk);
        let survived = vec![("new".to_string(), b"fsynced data".to_vec())];
        assert!(outcomes.iter().all(|outcome| outcome.is_empty() || *outcome == survived));
        assert!(outcomes.iter().any(|outcome| outcome.is_empty()), "the creation never vanished");

        disk.fsync_dir(&mut rng(0)).unwrap();
        for outcome in crash_outcomes(&disk) {
            assert_eq!(outcome, survived);
        }
    }

    #[test]
    fn directory_operations_survive_as_an_ordered_prefix() {
        let mut disk = Disk::new(DiskConfig::default());
        for name in ["a", "b", "c"] {
            disk.create(name).unwrap();
        }
        let names: BTreeSet<Vec<String>> = crash_outcomes(&disk)
            .into_iter()
            .map(|outcome| outcome.into_iter().map(|(name, _)| name).collect())
            .collect();
        let prefixes: BTreeSet<Vec<String>> = [vec![], vec!["a"], vec!["a", "b"], vec!["a", "b", "c"]]
            .into_iter()
            .map(|names| names.into_iter().map(String::from).collect())
            .collect();
        assert_eq!(names, prefixes);
    }

    #[test]
    fn rename_is_durable_only_after_fsync_dir() {
        let mut disk = disk_with_durable_file("old-name", b"content");
        disk.rename("old-name", "new-name").unwrap();
        assert_eq!(disk.list(), vec!["new-name"]);
        let before = vec![("old-name".to_string(), b"content".to_vec())];
        let after = vec![("new-name".to_string(), b"content".to_vec())];
        let outcomes = crash_outcomes(&disk);
        assert!(outcomes.iter().all(|outcome| *outcome == before || *outcome == after));
        assert!(outcomes.contains(&before) && outcomes.contains(&after));

        disk.fsync_dir(&mut rng(0)).unwrap();
        for outcome in crash_outcomes(&disk) {
            assert_eq!(outcome, after);
        }
    }

    #[test]
    fn rename_replaces_its_target_atomically_across_a_crash() {
        // The classic safe replace: write a temporary file, fsync it, rename it over the original.
        let mut disk = disk_with_durable_file("manifest", b"version 1");
        disk.create("manifest.tmp").unwrap();
        disk.write_at("manifest.tmp", 0, b"version 2").unwrap();
        disk.fsync("manifest.tmp", &mut rng(0)).unwrap();
        disk.rename("manifest.tmp", "manifest").unwrap();
        assert_eq!(disk.list(), vec!["manifest"]);
        let mut versions = BTreeSet::new();
        for seed in 0..SEEDS {
            let mut copy = disk.clone();
            let report = copy.crash(&mut rng(seed));
            let content = read_all(&mut copy, "manifest");
            assert!(content == b"version 1" || content == b"version 2");
            assert_eq!(report.names_reverted.contains(&"manifest".to_string()), content == b"version 1");
            versions.insert(content);
        }
        assert_eq!(versions.len(), 2);
    }

    #[test]
    fn removal_is_durable_only_after_fsync_dir() {
        let mut disk = disk_with_durable_file("data", b"content");
        disk.remove("data").unwrap();
        assert!(disk.list().is_empty());
        assert_eq!(disk.len("data"), Err(DiskError::NotFound { name: "data".to_string() }));
        let back = vec![("data".to_string(), b"content".to_vec())];
        let outcomes = crash_outcomes(&disk);
        assert!(outcomes.iter().all(|outcome| outcome.is_empty() || *outcome == back));
        assert!(outcomes.contains(&back), "the unsynced removal never came undone");

        disk.fsync_dir(&mut rng(0)).unwrap();
        assert!(crash_outcomes(&disk).iter().all(|outcome| outcome.is_empty()));
    }

    #[test]
    fn lost_fsync_returns_ok_and_persists_nothing() {
        let mut disk = disk_with_durable_file("data", b"old");
        disk.set_lost_fsync(1.0);
        disk.append("data", b"new").unwrap();
        assert_eq!(disk.fsync("data", &mut rng(0)), Ok(()));
        assert_eq!(disk.take_events(), vec![DiskEvent::FsyncLost { name: "data".to_string() }]);
        assert_eq!(disk.stats().unsynced_writes, 1);
        let outcomes = crash_outcomes(&disk);
        assert!(outcomes.contains(&vec![("data".to_string(), b"old".to_vec())]), "the write was persisted");

        disk.heal();
        disk.fsync("data", &mut rng(0)).unwrap();
        assert!(crash_outcomes(&disk).iter().all(|outcome| outcome[0].1 == b"oldnew"));
    }

    #[test]
    fn lost_fsync_dir_returns_ok_and_persists_no_names() {
        let mut disk = Disk::new(DiskConfig::default());
        disk.set_lost_fsync(1.0);
        disk.create("new").unwrap();
        assert_eq!(disk.fsync_dir(&mut rng(0)), Ok(()));
        assert_eq!(disk.take_events(), vec![DiskEvent::FsyncDirLost]);
        assert!(crash_outcomes(&disk).iter().any(|outcome| outcome.is_empty()));
    }

    #[test]
    fn fsync_error_drops_dirty_data_and_is_reported_once() {
        let mut disk = disk_with_durable_file("data", b"old");
        disk.write_at("data", 0, b"NEW and longer").unwrap();
        disk.arm_fsync_error();
        assert_eq!(disk.fsync("data", &mut rng(0)), Err(DiskError::Io { name: "data".to_string() }));
        assert_eq!(read_all(&mut disk, "data"), b"old", "dirty data reverts to the durable content");
        assert_eq!(disk.stats().used_bytes, 3);
        assert_eq!(disk.take_events(), vec![DiskEvent::FsyncFailed { name: "data".to_string(), dropped_bytes: 14 }]);
        assert_eq!(disk.fsync("data", &mut rng(0)), Ok(()), "the error is reported once");
        disk.append("data", b"!").unwrap();
        assert_eq!(disk.fsync("data", &mut rng(0)), Ok(()));
        for outcome in crash_outcomes(&disk) {
            assert_eq!(outcome[0].1, b"old!");
        }
    }

    #[test]
    fn fsync_error_arming_is_consumed_by_a_crash() {
        let mut disk = disk_with_durable_file("data", b"old");
        disk.arm_fsync_error();
        disk.crash(&mut rng(0));
        assert_eq!(disk.fsync("data", &mut rng(0)), Ok(()));
    }

    #[test]
    fn each_armed_fsync_error_fails_one_fsync_and_disarm_takes_back_only_its_own() {
        let mut disk = disk_with_durable_file("data", b"old");
        for fault in [7, 8, 9] {
            disk.arm_shot(Shot::FsyncError, fault);
        }
        disk.arm_fsync_error();
        disk.arm_fsync_error();
        disk.disarm(8);
        let armed = |disk: &Disk| disk.armed_shots().into_iter().map(|(_, fault)| fault).collect::<Vec<_>>();
        assert_eq!(armed(&disk), vec![7, 9, OWN_SHOT], "arming the disk's own shot twice arms it once");
        let io = Err(DiskError::Io { name: "data".to_string() });
        assert_eq!(disk.fsync("data", &mut rng(0)), io);
        assert_eq!(armed(&disk), vec![9, OWN_SHOT], "the oldest shot fires first");
        assert_eq!(disk.fsync("data", &mut rng(0)), io);
        assert_eq!(disk.fsync("data", &mut rng(0)), io);
        assert_eq!(disk.fsync("data", &mut rng(0)), Ok(()));
        assert_eq!(disk.stats().fsync_errors, 3);
    }

    #[test]
    fn a_crash_consumes_every_armed_shot() {
        let mut disk = disk_with_durable_file("data", b"old");
        disk.arm_shot(Shot::TornWrite, 1);
        disk.arm_shot(Shot::FsyncError, 2);
        disk.arm_shot(Shot::TornWrite, 3);
        disk.crash(&mut rng(0));
        assert!(disk.armed_shots().is_empty());
        disk.disarm(2);
        assert_eq!(disk.fsync("data", &mut rng(0)), Ok(()));
    }

    #[test]
    fn corruption_flips_bytes_persistently() {
        let original: Vec<u8> = (0..4096u32).map(|index| index as u8).collect();
        let mut disk = disk_with_durable_file("data", &original);
        disk.set_corruption(1.0);
        let corrupted = disk.read("data", 1000, 100, &mut rng(3)).unwrap();
        let events = disk.take_events();
        let [DiskEvent::Corrupted { offset, bit, .. }] = events[..] else {
            panic!("expected one corruption event, got {events:?}");
        };
        assert!((1000..1100).contains(&offset), "the flip lies in the read range");
        let differing_bits: u32 = corrupted.iter().zip(&original[1000..1100]).map(|(a, b)| (a ^ b).count_ones()).sum();
        assert_eq!(differing_bits, 1);
        assert_eq!(corrupted[offset as usize - 1000], original[offset as usize] ^ (1 << bit));

        disk.heal();
        assert_eq!(disk.read("data", 1000, 100, &mut rng(4)).unwrap(), corrupted, "re-reads see it");
        disk.crash(&mut rng(5));
        assert_eq!(disk.read("data", 1000, 100, &mut rng(6)).unwrap(), corrupted, "it is on the medium");
    }

    #[test]
    fn corruption_never_touches_bytes_only_in_the_page_cache() {
        let mut disk = disk_with_durable_file("data", b"");
        disk.append("data", &[7; 1000]).unwrap();
        disk.set_corruption(1.0);
        for seed in 0..SEEDS {
            assert_eq!(disk.read("data", 0, 1000, &mut rng(seed)).unwrap(), vec![7; 1000]);
        }
        assert!(disk.take_events().is_empty());
    }

    #[test]
    fn corruption_under_an_unsynced_overwrite_appears_if_the_overwrite_is_lost() {
        let mut disk = disk_with_durable_file("data", &[0; 8]);
        disk.write_at("data", 0, &[9; 8]).unwrap();
        disk.set_corruption(1.0);
        assert_eq!(disk.read("data", 0, 8, &mut rng(1)).unwrap(), vec![9; 8], "the page cache wins");
        disk.heal();
        let outcomes: BTreeSet<Vec<u8>> =
            crash_outcomes(&disk).into_iter().map(|outcome| outcome[0].1.clone()).collect();
        assert_eq!(outcomes.len(), 2);
        assert!(outcomes.contains(&vec![9; 8]));
        let lost = outcomes.iter().find(|content| **content != vec![9; 8]).unwrap();
        assert_eq!(lost.iter().map(|byte| byte.count_ones()).sum::<u32>(), 1, "the flip is beneath");
    }

    #[test]
    fn disk_full_is_a_distinct_error() {
        let mut disk = disk_with_durable_file("data", b"content");
        disk.set_full(true);
        assert_eq!(disk.write_at("data", 0, b"x"), Err(DiskError::Full));
        assert_eq!(disk.append("data", b"x"), Err(DiskError::Full));
        assert_eq!(disk.create("other"), Err(DiskError::Full));
        assert_eq!(read_all(&mut disk, "data"), b"content", "reads still work");
        assert_eq!(disk.fsync("data", &mut rng(0)), Ok(()));
        assert_eq!(disk.stats().full_rejections, 3);
        disk.set_full(false);
        assert_eq!(disk.append("data", b"!"), Ok(7));
    }

    #[test]
    fn capacity_counts_volatile_bytes_and_rejects_whole_writes() {
        let mut disk = small_disk(1000);
        disk.create("a").unwrap();
        disk.create("b").unwrap();
        disk.write_at("a", 0, &[1; 600]).unwrap();
        assert_eq!(disk.append("b", &[2; 401]), Err(DiskError::Full));
        assert_eq!(disk.len("b"), Ok(0), "a rejected write leaves nothing");
        assert_eq!(disk.append("b", &[2; 400]), Ok(0));
        assert_eq!(disk.stats().used_bytes, 1000);
        assert_eq!(disk.write_at("a", 100, &[3; 500]), Ok(()), "overwrites need no space");
        assert_eq!(disk.write_at("b", u64::MAX, b"x"), Err(DiskError::Full));
        disk.remove("a").unwrap();
        assert_eq!(disk.stats().used_bytes, 400);
        assert_eq!(disk.append("b", &[2; 600]), Ok(400));
        disk.create("c").unwrap();
        disk.rename("c", "b").unwrap();
        assert_eq!(disk.stats().used_bytes, 0, "renaming over a file frees it");
    }

    #[test]
    fn a_crash_never_leaves_more_bytes_than_the_capacity() {
        // `old` (600 bytes) is removed and its space reused by `new` (1,000 bytes, synced), while
        // neither name change is durable: a crash that kept the create but not the remove would
        // bring `old` back beside `new`, 1,600 bytes on a 1,000-byte disk.
        let mut disk = small_disk(1000);
        disk.create("old").unwrap();
        disk.write_at("old", 0, &[1; 600]).unwrap();
        disk.fsync("old", &mut rng(0)).unwrap();
        disk.fsync_dir(&mut rng(0)).unwrap();
        disk.create("new").unwrap();
        disk.remove("old").unwrap();
        assert_eq!(disk.append("new", &[2; 1000]), Ok(0), "the space `old` held is free to reuse");
        disk.fsync("new", &mut rng(0)).unwrap();
        for seed in 0..SEEDS {
            let mut crashed = disk.clone();
            crashed.crash(&mut rng(seed));
            let used = crashed.stats().used_bytes;
            assert!(used <= 1000, "disk_within_capacity: seed {seed} left {used} bytes: {:?}", crashed.list());
        }
        assert!(crash_outcomes(&disk).iter().all(|outcome| outcome == &vec![("new".to_string(), vec![2; 1000])]));
        assert_eq!(disk.append("new", b"x"), Err(DiskError::Full), "the disk is still as full as it is");
    }

    #[test]
    fn slow_disk_adds_latency() {
        let config = DiskConfig {
            read_latency: fixed(10),
            write_latency: fixed(20),
            fsync_latency: fixed(30),
            metadata_latency: fixed(40),
            ..DiskConfig::default()
        };
        let mut disk = Disk::new(config);
        let operations = [DiskOp::Read, DiskOp::Write, DiskOp::Fsync, DiskOp::FsyncDir, DiskOp::Metadata];
        let base: Vec<u64> = operations.iter().map(|&op| disk.latency_us(op, &mut rng(0))).collect();
        assert_eq!(base, vec![10, 20, 30, 30, 40]);
        disk.set_slow(Some(fixed(5_000)));
        let slow: Vec<u64> = operations.iter().map(|&op| disk.latency_us(op, &mut rng(0))).collect();
        assert_eq!(slow, vec![5_010, 5_020, 5_030, 5_030, 5_040]);
        disk.heal();
        assert_eq!(disk.latency_us(DiskOp::Read, &mut rng(0)), 10);
    }

    #[test]
    fn latency_is_drawn_within_the_configured_range() {
        let range = LatencyRange { min_us: 100, max_us: 200 };
        let backwards = LatencyRange { min_us: 200, max_us: 100 };
        let disk = Disk::new(DiskConfig { read_latency: range, write_latency: backwards, ..DiskConfig::default() });
        let mut random = rng(1);
        let draws: BTreeSet<u64> = (0..500).map(|_| disk.latency_us(DiskOp::Read, &mut random)).collect();
        assert!(draws.iter().all(|draw| (100..=200).contains(draw)));
        assert!(draws.len() > 50, "draws spread over the range");
        assert!((0..100).all(|_| (100..=200).contains(&disk.latency_us(DiskOp::Write, &mut random))));
    }

    #[test]
    fn wipe_leaves_an_empty_disk() {
        let mut disk = disk_with_durable_file("data", b"content");
        disk.create("pending").unwrap();
        disk.append("data", b"unsynced").unwrap();
        disk.set_full(true);
        disk.set_lost_fsync(1.0);
        disk.set_slow(Some(fixed(1_000)));
        disk.arm_torn_write();
        disk.wipe();
        assert!(disk.list().is_empty());
        assert!(matches!(disk.len("data"), Err(DiskError::NotFound { .. })));
        let stats = disk.stats();
        assert_eq!((stats.used_bytes, stats.files, stats.unsynced_writes), (0, 0, 0));
        assert_eq!(stats.pending_directory_operations, 0);
        assert_eq!(stats.wipes, 1);
        assert!(crash_outcomes(&disk).iter().all(|outcome| outcome.is_empty()));
        disk.create("fresh").unwrap();
        disk.append("fresh", b"x").unwrap();
        disk.fsync("fresh", &mut rng(0)).unwrap();
        assert!(disk.take_events().is_empty(), "faults were healed");
    }

    #[test]
    fn read_past_end_is_short_not_a_panic() {
        let mut disk = disk_with_durable_file("data", b"0123456789");
        let mut random = rng(0);
        assert_eq!(disk.read("data", 8, 10, &mut random).unwrap(), b"89");
        assert_eq!(disk.read("data", 10, 10, &mut random).unwrap(), b"");
        assert_eq!(disk.read("data", 1_000, 10, &mut random).unwrap(), b"");
        assert_eq!(disk.read("data", u64::MAX, usize::MAX, &mut random).unwrap(), b"");
        assert_eq!(disk.read("data", 3, 0, &mut random).unwrap(), b"");
    }

    #[test]
    fn unknown_files_are_not_found_and_names_are_unique() {
        let mut disk = Disk::new(DiskConfig::default());
        let missing = || DiskError::NotFound { name: "missing".to_string() };
        assert_eq!(disk.read("missing", 0, 1, &mut rng(0)), Err(missing()));
        assert_eq!(disk.write_at("missing", 0, b"x"), Err(missing()));
        assert_eq!(disk.append("missing", b"x"), Err(missing()));
        assert_eq!(disk.fsync("missing", &mut rng(0)), Err(missing()));
        assert_eq!(disk.rename("missing", "other"), Err(missing()));
        assert_eq!(disk.remove("missing"), Err(missing()));
        assert_eq!(disk.len("missing"), Err(missing()));
        disk.create("data").unwrap();
        assert_eq!(disk.create("data"), Err(DiskError::AlreadyExists { name: "data".to_string() }));
        assert_eq!(disk.rename("data", "data"), Ok(()));
        assert_eq!(disk.list(), vec!["data"]);
    }

    #[test]
    fn events_are_bounded() {
        let mut disk = disk_with_durable_file("data", b"x");
        disk.set_lost_fsync(1.0);
        for _ in 0..MAX_PENDING_EVENTS + 5 {
            disk.fsync("data", &mut rng(0)).unwrap();
        }
        assert_eq!(disk.stats().events_dropped, 5);
        assert_eq!(disk.take_events().len(), MAX_PENDING_EVENTS);
        assert!(disk.take_events().is_empty());
    }

    #[test]
    fn frequent_small_appends_and_fsyncs_stay_cheap() {
        // A replicated log's pattern. With O(file size) work per fsync this would copy ~1.5 GB.
        let mut disk = Disk::new(DiskConfig::default());
        let mut random = rng(0);
        disk.create("log").unwrap();
        for index in 0..20_000u32 {
            disk.append("log", &index.to_le_bytes().repeat(4)).unwrap();
            disk.fsync("log", &mut random).unwrap();
        }
        assert_eq!(disk.len("log"), Ok(320_000));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        #[derive(Clone, Debug)]
        enum Operation {
            Create(u8),
            WriteAt(u8, u64, Vec<u8>),
            Append(u8, Vec<u8>),
            Read(u8, u64, usize),
            Fsync(u8),
            FsyncDir,
            Rename(u8, u8),
            Remove(u8),
            Crash,
            Fault(u8),
        }

        fn operation() -> impl Strategy<Value = Operation> {
            let name = 0..4u8;
            let offset = prop_oneof![0..1_200u64, Just(u64::MAX), Just(u64::MAX - 3)];
            let data = proptest::collection::vec(any::<u8>(), 0..700);
            prop_oneof![
                name.clone().prop_map(Operation::Create),
                (name.clone(), offset.clone(), data.clone()).prop_map(|(n, o, d)| Operation::WriteAt(n, o, d)),
                (name.clone(), data).prop_map(|(n, d)| Operation::Append(n, d)),
                (name.clone(), offset, prop_oneof![0..2_000usize, Just(usize::MAX)])
                    .prop_map(|(n, o, l)| Operation::Read(n, o, l)),
                name.clone().prop_map(Operation::Fsync),
                Just(Operation::FsyncDir),
                (name.clone(), name.clone()).prop_map(|(a, b)| Operation::Rename(a, b)),
                name.prop_map(Operation::Remove),
                Just(Operation::Crash),
                (0..8u8).prop_map(Operation::Fault),
            ]
        }

        proptest! {
            /// Between crashes the disk behaves like a plain map of byte vectors; whatever the
            /// input it never panics, and its byte count matches its files.
            #[test]
            fn the_volatile_view_matches_a_plain_map_and_nothing_panics(
                seed in any::<u64>(),
                operations in proptest::collection::vec(operation(), 1..60),
            ) {
                let mut disk = small_disk(4_000);
                let mut random = rng(seed);
                let mut reference: BTreeMap<String, Vec<u8>> = BTreeMap::new();
                for operation in operations {
                    let file = |index: u8| format!("file-{index}");
                    match operation {
                        Operation::Create(index) => {
                            if disk.create(&file(index)).is_ok() {
                                reference.insert(file(index), Vec::new());
                            }
                        }
                        Operation::WriteAt(index, offset, data) => {
                            if disk.write_at(&file(index), offset, &data).is_ok() && !data.is_empty() {
                                apply_write(reference.get_mut(&file(index)).unwrap(), offset, &data);
                            }
                        }
                        Operation::Append(index, data) => {
                            if let Ok(offset) = disk.append(&file(index), &data) {
                                let content = reference.get_mut(&file(index)).unwrap();
                                prop_assert_eq!(offset, content.len() as u64);
                                content.extend_from_slice(&data);
                            }
                        }
                        Operation::Read(index, offset, length) => {
                            // Corruption changes what the reference cannot know, so re-read it.
                            if let Ok(data) = disk.read(&file(index), offset, length, &mut random) {
                                let content = reference.get(&file(index)).unwrap();
                                let start = (offset.min(content.len() as u64)) as usize;
                                let end = start + length.min(content.len() - start);
                                prop_assert_eq!(data.len(), end - start);
                                if disk.take_events().is_empty() {
                                    prop_assert_eq!(&data[..], &content[start..end]);
                                } else {
                                    reference.insert(file(index), read_all(&mut disk, &file(index)));
                                }
                            }
                        }
                        Operation::Fsync(index) => {
                            if let Err(DiskError::Io { .. }) = disk.fsync(&file(index), &mut random) {
                                reference.insert(file(index), read_all(&mut disk, &file(index)));
                            }
                        }
                        Operation::FsyncDir => disk.fsync_dir(&mut random).unwrap(),
                        Operation::Rename(from, to) => {
                            if disk.rename(&file(from), &file(to)).is_ok() {
                                let content = reference.remove(&file(from)).unwrap();
                                reference.insert(file(to), content);
                            }
                        }
                        Operation::Remove(index) => {
                            if disk.remove(&file(index)).is_ok() {
                                reference.remove(&file(index));
                            }
                        }
                        Operation::Crash => {
                            disk.crash(&mut random);
                            reference = snapshot(&mut disk).into_iter().collect();
                            let after = reference.clone();
                            let mut again = disk.clone();
                            again.crash(&mut random);
                            prop_assert_eq!(snapshot(&mut again).into_iter().collect::<BTreeMap<_, _>>(), after);
                        }
                        Operation::Fault(kind) => match kind {
                            0 => disk.set_lost_fsync(0.5),
                            1 => disk.arm_torn_write(),
                            2 => disk.set_corruption(0.3),
                            3 => disk.arm_fsync_error(),
                            4 => disk.set_full(true),
                            5 => disk.set_slow(Some(LatencyRange { min_us: 9, max_us: 1 })),
                            6 => disk.heal(),
                            _ => disk.set_lost_fsync(f64::NAN),
                        },
                    }
                    disk.take_events();
                    prop_assert_eq!(disk.list(), reference.keys().cloned().collect::<Vec<_>>());
                    let used: u64 = reference.values().map(|content| content.len() as u64).sum();
                    prop_assert_eq!(disk.stats().used_bytes, used);
                    prop_assert!(used <= 4_000);
                    for (name, content) in &reference {
                        prop_assert_eq!(disk.len(name).unwrap(), content.len() as u64);
                    }
                }
            }
        }
    }
}
