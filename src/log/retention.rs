//! Where the log starts, and the operations that move it: time / size retention of whole sealed
//! segments, and `reset_to` (installing a raft snapshot). The start is persisted in `log-start`,
//! replaced atomically (tmp + fsync + rename + dir fsync) *before* any segment file is deleted, so
//! that a crash half-way is finished on the next open (segments below the start are removed; a
//! reset marked pending is completed).
//!
//! `log-start` layout (a [`state_file`]), big-endian, 36 bytes: `magic "CLS1" | flags u8 (bit 0:
//! reset pending) | 3 reserved bytes | start_index u64 | prev_term u64 | start_offset i64 |
//! crc32c u32` (the CRC covers bytes 0..32).

use std::path::Path;

use slog::info;

use super::index::NO_TIMESTAMP;
use super::partition_log::PartitionLog;
use super::segment::{file_name, parse_log_name, Segment};
use super::{be_i64, be_u64, state_file, sync_dir, IoContext, LogError, Result};

const MAGIC: &[u8; 4] = b"CLS1";
const BODY_LEN: usize = 28;
const FILE: &str = "log-start";

/// The persisted start of a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogStart {
    /// First raft index of the log.
    pub start_index: u64,
    /// Term of entry `start_index - 1`.
    pub prev_term: u64,
    /// Kafka offset after every batch before `start_index`.
    pub start_offset: i64,
    /// A `reset_to` was started and not finished: every segment is stale.
    pub reset_pending: bool,
}

impl Default for LogStart {
    fn default() -> Self {
        LogStart { start_index: 1, prev_term: 0, start_offset: 0, reset_pending: false }
    }
}

impl LogStart {
    /// Reads `dir/log-start`; a missing file is a log that starts at index 1, offset 0.
    pub fn load(dir: &Path) -> Result<LogStart> {
        let path = dir.join(FILE);
        let Some(b) = state_file::read(&path, MAGIC)? else {
            return Ok(LogStart::default());
        };
        let bad = |reason: &str| LogError::CorruptState { path: path.clone(), reason: reason.to_string() };
        if b.len() != BODY_LEN {
            return Err(bad("wrong size"));
        }
        let ls = LogStart {
            start_index: be_u64(&b, 4),
            prev_term: be_u64(&b, 12),
            start_offset: be_i64(&b, 20),
            reset_pending: b[0] & 1 == 1,
        };
        if ls.start_index == 0 {
            return Err(bad("start index 0"));
        }
        Ok(ls)
    }

    /// Replaces `dir/log-start` atomically and durably.
    pub fn store(&self, dir: &Path) -> Result<()> {
        let mut b = [0u8; BODY_LEN];
        b[0] = u8::from(self.reset_pending);
        b[4..12].copy_from_slice(&self.start_index.to_be_bytes());
        b[12..20].copy_from_slice(&self.prev_term.to_be_bytes());
        b[20..28].copy_from_slice(&self.start_offset.to_be_bytes());
        state_file::store(&dir.join(FILE), MAGIC, &b)
    }
}

impl PartitionLog {
    /// Deletes whole sealed segments from the oldest while the oldest is older than the time
    /// limit (its largest batch max timestamp — or the file's mtime if it holds no batch — is
    /// before `now_ms - retention_ms`), or the log stays at least `retention_bytes` without it,
    /// or it lies wholly below the DeleteRecords floor (`records_start.rs`).
    /// The active segment and segments holding an index above `max_index` are never deleted.
    /// Returns the number of segments deleted.
    pub fn apply_retention(
        &mut self,
        now_ms: i64,
        retention_ms: Option<i64>,
        retention_bytes: Option<u64>,
        max_index: u64,
    ) -> Result<usize> {
        let mut total = self.size_bytes();
        let mut n = 0;
        while n + 1 < self.segments.len() {
            let seg = &self.segments[n];
            if seg.is_empty() || seg.next_index() - 1 > max_index {
                break;
            }
            let by_time = retention_ms.is_some_and(|r| {
                let ts = match seg.largest_timestamp() {
                    NO_TIMESTAMP => seg.modified_ms(),
                    ts => Some(ts),
                };
                ts.is_some_and(|ts| ts < now_ms.saturating_sub(r))
            });
            let by_size = retention_bytes.is_some_and(|r| total - seg.size >= r);
            if !(by_time || by_size || self.below_records_start(seg)) {
                break;
            }
            total -= seg.size;
            n += 1;
        }
        let Some(last) = n.checked_sub(1).and_then(|i| self.segments[i].metas.last()) else {
            return Ok(0);
        };
        let start = LogStart {
            start_index: self.segments[n].base_index,
            prev_term: last.term,
            start_offset: last.offset_end,
            reset_pending: false,
        };
        start.store(&self.dir)?;
        self.start = start;
        let damaged = self.damaged.get_mut().unwrap_or_else(|p| p.into_inner());
        *damaged = damaged.split_off(&start.start_index);
        let gone: Vec<Segment> = self.segments.drain(..n).collect();
        self.dir_dirty = true;
        info!(self.logger, "retention deleted segments"; "segments" => n,
            "first_index" => start.start_index, "log_start_offset" => self.log_start_offset());
        // Files that cannot be deleted now are removed on the next open (they are below start).
        gone.iter().try_for_each(Segment::delete)?;
        Ok(n)
    }

    /// Removes every entry and restarts the log at `index + 1`, with `term(index) == term` and
    /// `next_offset()` / `log_start_offset()` equal to `next_offset` (raft snapshot install).
    /// If it fails half-way, the next append or the next open completes it.
    pub fn reset_to(&mut self, index: u64, term: u64, next_offset: i64) -> Result<()> {
        let start =
            LogStart { start_index: index + 1, prev_term: term, start_offset: next_offset, reset_pending: true };
        start.store(&self.dir)?;
        self.start = start;
        self.segments.iter().for_each(Segment::retire);
        self.segments.clear();
        self.damaged.get_mut().unwrap_or_else(|p| p.into_inner()).clear();
        self.finish_reset()
    }

    /// Deletes every segment file, creates the empty active segment at the start and clears the
    /// pending flag of `log-start`.
    pub(super) fn finish_reset(&mut self) -> Result<()> {
        self.segments.iter().for_each(Segment::retire);
        self.segments.clear();
        for de in std::fs::read_dir(&self.dir).ctx(&self.dir)? {
            let name = de.ctx(&self.dir)?.file_name();
            if let Some(base) = parse_log_name(&name.to_string_lossy()) {
                for ext in ["log", "index", "timeindex", super::txn_index::EXT] {
                    let p = self.dir.join(file_name(base, ext));
                    match std::fs::remove_file(&p) {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(LogError::io(&p, e)),
                        _ => {}
                    }
                }
            }
        }
        let seg = Segment::create(&self.dir, self.start.start_index, self.opts.index_interval_bytes)?;
        self.segments.push(seg);
        sync_dir(&self.dir)?;
        if self.start.reset_pending {
            self.start.reset_pending = false;
            self.start.store(&self.dir)?;
        }
        info!(self.logger, "log reset"; "first_index" => self.start.start_index,
            "prev_term" => self.start.prev_term, "next_offset" => self.start.start_offset);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::partition_log::tests::{batch_entry, fill, logger, noop, opts};

    const SEG: u64 = 300; // two 137-byte frames per segment

    fn open(dir: &Path) -> PartitionLog {
        PartitionLog::open(dir, opts(SEG), &logger()).unwrap().0
    }

    #[test]
    fn log_start_file_round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(LogStart::load(dir.path()).unwrap(), LogStart::default());
        let ls = LogStart { start_index: 42, prev_term: 7, start_offset: 1234, reset_pending: true };
        ls.store(dir.path()).unwrap();
        assert_eq!(LogStart::load(dir.path()).unwrap(), ls);
        let p = dir.path().join(FILE);
        let mut raw = std::fs::read(&p).unwrap();
        raw[10] ^= 1;
        std::fs::write(&p, &raw).unwrap();
        assert!(matches!(LogStart::load(dir.path()), Err(LogError::CorruptState { .. })));
        std::fs::write(&p, b"short").unwrap();
        assert!(matches!(LogStart::load(dir.path()), Err(LogError::CorruptState { .. })));
    }

    #[test]
    fn retention_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path());
        fill(&mut log, 1, 9, 3); // segments [1,2] [3,4] [5,6] [7,8] [9]
        assert_eq!(log.segment_count(), 5);
        // Aborted-transactions indexes beside the sealed segments go with them.
        let txn = |base: u64| dir.path().join(file_name(base, crate::log::txn_index::EXT));
        for base in [1, 3, 5, 7] {
            crate::log::txn_index::store(dir.path(), base, &[]).unwrap();
        }
        // Keep more than 3 frames: deletes [1,2] and [3,4] (5 frames left), not [5,6].
        assert_eq!(log.apply_retention(0, None, Some(3 * 137 + 1), u64::MAX).unwrap(), 2);
        assert_eq!((log.first_index(), log.last_index()), (5, 9));
        assert!(!txn(1).exists() && !txn(3).exists() && txn(5).exists() && txn(7).exists());
        assert_eq!(log.term(4), Some(3));
        assert_eq!(log.term(3), None);
        assert_eq!(log.log_start_offset(), 8);
        assert!(matches!(log.entries(4, 6, None), Err(LogError::Compacted { .. })));
        assert!(matches!(log.read(7, 100, i64::MAX), Err(LogError::OffsetOutOfRange { .. })));
        // Never the active segment, even with a zero limit.
        assert_eq!(log.apply_retention(0, None, Some(0), u64::MAX).unwrap(), 2);
        assert_eq!(log.segment_count(), 1);
        assert_eq!((log.first_index(), log.last_index()), (9, 9));
        assert!(!txn(5).exists() && !txn(7).exists());
        drop(log);
        let log = open(dir.path());
        assert_eq!((log.first_index(), log.last_index()), (9, 9));
        assert_eq!(log.term(8), Some(3));
        assert_eq!((log.log_start_offset(), log.next_offset()), (16, 18));
        assert!(!dir.path().join(file_name(1, "log")).exists());
    }

    #[test]
    fn retention_by_time_respects_max_index() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path());
        fill(&mut log, 1, 7, 1); // max timestamps 1001..=1007; segments [1,2] [3,4] [5,6] [7]
                                 // Older than 1004: segments whose largest timestamp < 1004: [1,2] (1002) only... and
                                 // [3,4] has 1004, so it stays.
        assert_eq!(log.apply_retention(2000, Some(996), None, u64::MAX).unwrap(), 1);
        assert_eq!(log.first_index(), 3);
        // Everything is old, but only entries <= 5 are applied: [3,4] goes, [5,6] stays.
        assert_eq!(log.apply_retention(1_000_000, Some(1), None, 5).unwrap(), 1);
        assert_eq!(log.first_index(), 5);
        assert_eq!(log.apply_retention(1_000_000, None, None, u64::MAX).unwrap(), 0);
        assert_eq!(log.apply_retention(1_000_000, Some(1), None, u64::MAX).unwrap(), 1);
        assert_eq!((log.first_index(), log.log_start_offset()), (7, 12));
        drop(log);
        let log = open(dir.path());
        assert_eq!((log.first_index(), log.last_index(), log.term(6)), (7, 7, Some(1)));
        assert_eq!(log.offset_for_timestamp(0), Some((12, 1007)));
    }

    #[test]
    fn retention_time_of_segments_without_batches_uses_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path());
        let noops: Vec<_> = (1..=3).map(|i| noop(i, 1)).collect();
        log.append(&noops).unwrap();
        log.roll().unwrap();
        fill(&mut log, 4, 1, 1);
        // The no-op segment was just written: not older than an hour...
        let now = log.segments[0].modified_ms().unwrap();
        assert_eq!(log.apply_retention(now, Some(3_600_000), None, u64::MAX).unwrap(), 0);
        // ...but older than an hour from a later clock.
        assert_eq!(log.apply_retention(now + 3_600_001, Some(3_600_000), None, 10).unwrap(), 1);
        assert_eq!(log.first_index(), 4);
    }

    #[test]
    fn interrupted_retention_is_finished_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path());
        fill(&mut log, 1, 5, 2);
        log.sync().unwrap();
        drop(log);
        // As if the process died after writing log-start but before deleting segment files.
        LogStart { start_index: 3, prev_term: 2, start_offset: 4, reset_pending: false }.store(dir.path()).unwrap();
        let (log, rep) = PartitionLog::open(dir.path(), opts(SEG), &logger()).unwrap();
        assert_eq!(rep.stale_files_removed, 1);
        assert_eq!((log.first_index(), log.last_index(), log.log_start_offset()), (3, 5, 4));
    }

    #[test]
    fn reset_to_restarts_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path());
        fill(&mut log, 1, 5, 1);
        log.reset_to(100, 7, 5000).unwrap();
        assert_eq!((log.first_index(), log.last_index()), (101, 100));
        assert_eq!(log.term(100), Some(7));
        assert_eq!(log.term(5), None);
        assert_eq!((log.log_start_offset(), log.next_offset()), (5000, 5000));
        assert_eq!(log.offset_after_index(100), 5000);
        assert!(log.read(5000, 100, i64::MAX).unwrap().is_empty());
        log.append(&[noop(101, 8), batch_entry(102, 8, 5000, 3, 1)]).unwrap();
        drop(log);
        let log = open(dir.path());
        assert_eq!((log.first_index(), log.last_index(), log.term(100)), (101, 102, Some(7)));
        assert_eq!((log.log_start_offset(), log.next_offset()), (5000, 5003));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|d| parse_log_name(&d.unwrap().file_name().to_string_lossy()))
            .collect();
        assert_eq!(names, vec![101]);
    }

    #[test]
    fn interrupted_reset_is_finished_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path());
        fill(&mut log, 1, 5, 1);
        drop(log);
        // Died after marking the reset, before deleting anything (segment 3 is above the start).
        LogStart { start_index: 3, prev_term: 1, start_offset: 77, reset_pending: true }.store(dir.path()).unwrap();
        let (log, rep) = PartitionLog::open(dir.path(), opts(SEG), &logger()).unwrap();
        assert!(rep.reset_completed);
        assert_eq!((log.first_index(), log.last_index(), log.next_offset()), (3, 2, 77));
        assert!(!LogStart::load(dir.path()).unwrap().reset_pending);
    }
}
