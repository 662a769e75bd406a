//! The partition log: chronik's on-disk storage, where the Raft log of a partition group IS the
//! Kafka partition log. Each Raft entry holds one Kafka record batch exactly as the client sent it
//! (base offset already stamped by the leader), so every byte is written to disk once.
//!
//! # Layout of a partition directory
//!
//! * `NNNNNNNNNNNNNNNNNNNN.log` — a segment, named by the raft index of its first entry (20 digits).
//!   A sequence of *frames*, one per raft entry: a 36-byte header followed by the entry data (the
//!   Kafka batch verbatim) and the entry context. See [`segment`] for the exact frame layout.
//! * `NNNNNNNNNNNNNNNNNNNN.index` — a **dense** index: one fixed 64-byte record per entry (raft
//!   index, term, frame position and lengths, Kafka offset range, max timestamp, CRC). It lets a
//!   sealed segment be loaded without reading its `.log`. See [`index`].
//! * `NNNNNNNNNNNNNNNNNNNN.timeindex` — a **sparse** time index: a 16-byte `(max timestamp so far,
//!   base offset)` record at most once every `index_interval_bytes` of log data, only when the
//!   running maximum timestamp grew. Used to skip ahead in `offset_for_timestamp`.
//! * `log-start` — where the log begins after retention or `reset_to`: first raft index, the term of
//!   the entry before it, the Kafka offset at that point (CRC-protected, replaced atomically).
//! * `records-start` — the log start offset set by DeleteRecords, when one was applied: it may lie
//!   inside a segment; nothing below it is served (see `records_start`).
//! * `raft-start` — the first index raft-rs sees when compacted segments below it are kept for
//!   Kafka reads only (see `raft_start`); `snapshot-install` and `snapshot-<index>.tmp/` exist
//!   only while a received snapshot replaces the log (see [`snapshot_install`]).
//!
//! # Source of truth
//!
//! The `.log` files are the source of truth. `.index` and `.timeindex` are derived: a sealed
//! segment's `.index` is trusted only when every record passes its CRC and the records chain
//! exactly to the `.log` size; otherwise both are rebuilt by scanning the `.log`. The active (last)
//! segment is always scanned on open, and a torn tail is truncated with a warning. Frame CRCs are
//! also checked on every read, so bit rot in a sealed segment surfaces as [`LogError::Corrupt`].
//!
//! # Durability and who writes
//!
//! Appends never fsync. A log run by a Raft group does not even write on the group's actor: its
//! appends, truncations and rolls change the in-memory entry table at once and queue
//! [`write::WriteOp`]s (positional writes of the entry `Bytes`, cuts, fsyncs of a sealed segment
//! or of the directory) that the node's disk writer (`raft::writer`) carries out in order; until
//! it reports them done ([`PartitionLog::written`]) the entries are served from memory, and an
//! unwritten file range is never read. [`PartitionLog::take_dirty`] hands the `.log` files (and
//! the directory when entries were created or removed) to fsync after those writes, for group
//! commit. Synchronous on the caller remain only rare metadata operations: creating a segment on
//! a roll, unlinking segments (retention, a truncated suffix, a reset) and the atomic replacement
//! of `log-start`; queued ops hold open handles, so a late write can only reach an unlinked file.
//! A log opened outside a group (recovery, tests, tools) runs its ops at once.

//! # Modules
//!
//! | module | responsibility |
//! | --- | --- |
//! | [`batch`] | Kafka record batch v2 framing and validation (shared with the produce path) |
//! | `offsets` | the offset range / max timestamp an entry covers |
//! | [`segment`] | frame format, one segment's files, appends, truncation, reads, dirty flags, unwritten entries in memory |
//! | [`write`] | queued write operations, and the deferred-write side of [`PartitionLog`] |
//! | [`index`] | the in-memory entry table and the `.index` / `.timeindex` records |
//! | [`partition_log`] | [`PartitionLog`]: segments as a raft log, rolling, group-commit handles |
//! | `kafka` | the Kafka view: offsets, high watermark, Fetch reads, ListOffsets |
//! | `recovery` | opening a directory, index rebuild, torn-tail truncation |
//! | `retention` | `log-start`, time/size retention, `reset_to` |
//! | `records_start` | the DeleteRecords floor under the log start offset (`records-start`) |
//! | `raft_start` | the raft start above the data start once compacted segments are sealed off (`raft-start`) |
//! | [`snapshot_descriptor`] | a partition snapshot's data: next offset, floor, the manifest of segment files |
//! | [`snapshot_install`] | a received snapshot's segments: verified and indexed off the group actor, then swapped in crash-safely |
//! | [`state_file`] | small CRC-protected files replaced atomically |
//! | [`txn_index`] | Kafka's `.txnindex` file format: entries, checked decoding, atomic store, the sealed segments' spans (written and checked by `partition::core::txn_index_files`) |
//! | [`cleaner`] | log compaction: the key map, batch rewriting, crash-safe segment swaps, the cleaner thread |

pub mod batch;
pub mod batch_plan;
pub mod cleaner;
pub mod file_cache;
pub mod index;
mod kafka;
pub(crate) mod offsets;
pub mod partition_log;
pub mod priority;
mod raft_start;
mod records_start;
mod recovery;
mod retention;
pub mod segment;
pub mod snapshot_descriptor;
pub mod snapshot_install;
pub mod state_file;
pub mod txn_index;
pub mod write;

use std::io;
use std::path::{Path, PathBuf};

pub use offsets::{compacted_end, COMPACTED_ENTRY};
pub use partition_log::{
    is_damaged_placeholder, Damage, LogKind, LogOptions, OnDamage, PartitionLog, RecoveryReport, DAMAGED_PLACEHOLDER,
};

/// Every error the storage layer reports.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// An I/O operation on `path` failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Data on disk does not pass its checks (bad frame CRC in a sealed segment, impossible values).
    #[error("corrupt data in {segment} at position {position}: {reason}")]
    Corrupt { segment: PathBuf, position: u64, reason: String },
    /// A small state file (`log-start`, raft state) is unreadable.
    #[error("corrupt state file {path}: {reason}")]
    CorruptState { path: PathBuf, reason: String },
    /// Kafka offset outside `[log_start, log_end]`.
    #[error("offset {offset} out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange { offset: i64, log_start: i64, log_end: i64 },
    /// Raft index below `first_index` (removed by retention / reset).
    #[error("raft index {index} is compacted (first index is {first_index})")]
    Compacted { index: u64, first_index: u64 },
    /// Raft index beyond `last_index`.
    #[error("raft index {index} is unavailable (last index is {last_index})")]
    Unavailable { index: u64, last_index: u64 },
    /// Appended entries are not contiguous with each other or with the log.
    #[error("non-contiguous append: expected index {expected}, got {got}")]
    NonContiguous { expected: u64, got: u64 },
    /// An entry of a `KafkaBatches` log does not hold a well-formed record batch.
    #[error("entry {index} is not a valid kafka record batch: {reason}")]
    InvalidBatch { index: u64, reason: String },
    /// A call that makes no sense in the current state (e.g. initializing voters twice).
    #[error("invalid operation: {0}")]
    Invalid(String),
}

impl LogError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: io::Error) -> Self {
        LogError::Io { path: path.to_path_buf(), source }
    }

    pub(crate) fn corrupt(segment: &Path, position: u64, reason: impl Into<String>) -> Self {
        LogError::Corrupt { segment: segment.to_path_buf(), position, reason: reason.into() }
    }
}

/// `Result` alias of the storage layer.
pub type Result<T> = std::result::Result<T, LogError>;

/// Extension to attach a path to `io::Result`s.
pub(crate) trait IoContext<T> {
    fn ctx(self, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, path: &Path) -> Result<T> {
        self.map_err(|e| LogError::io(path, e))
    }
}

/// fsyncs a directory so that file creations, renames and deletions in it are durable
/// (nothing inside [`without_syncs`]).
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    if syncs_deferred() {
        return Ok(());
    }
    std::fs::File::open(dir).and_then(|d| d.sync_all()).ctx(dir)
}

thread_local! {
    static SYNCS_DEFERRED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this thread runs inside [`without_syncs`].
pub(crate) fn syncs_deferred() -> bool {
    SYNCS_DEFERRED.with(|d| d.get())
}

/// Runs `f` with the fsyncs that creating a group's files makes (the state files', the
/// directory's) left out: for files that the caller makes durable together afterwards, before
/// anything can depend on them (`partition::create`, one sync round for many new replicas).
pub(crate) fn without_syncs<T>(f: impl FnOnce() -> T) -> T {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            SYNCS_DEFERRED.with(|d| d.set(self.0));
        }
    }
    let _reset = Reset(SYNCS_DEFERRED.with(|d| d.replace(true)));
    f()
}

/// Big-endian readers over a slice whose length the caller has checked.
pub(crate) fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

pub(crate) fn be_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

pub(crate) fn be_i64(b: &[u8], at: usize) -> i64 {
    be_u64(b, at) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_path_and_position() {
        let e = LogError::corrupt(Path::new("/x/1.log"), 42, "bad crc");
        let s = e.to_string();
        assert!(s.contains("/x/1.log") && s.contains("42") && s.contains("bad crc"), "{s}");
        let e = std::fs::read("/nonexistent/zzz").ctx(Path::new("/nonexistent/zzz")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/zzz"));
    }

    #[test]
    fn big_endian_helpers() {
        let b = [0u8, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2];
        assert_eq!(be_u32(&b, 0), 1);
        assert_eq!(be_u64(&b, 4), 2);
        assert_eq!(be_i64(&b, 4), 2);
    }
}
