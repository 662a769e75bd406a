//! The log start offset set by DeleteRecords (Kafka's "client record deletion"): a floor under
//! the Kafka log start offset that may lie inside a segment, even inside a batch. Offsets below
//! it are never served (Fetch answers OFFSET_OUT_OF_RANGE, ListOffsets EARLIEST answers the
//! floor); a batch that straddles it is served whole from the floor on, as Kafka does (the
//! client skips the records before its fetch offset). Whole sealed segments that end at or below
//! the floor are deleted by retention (`retention.rs`), never past the applied index.
//!
//! The floor only rises. It is persisted in `records-start` (a [`state_file`], replaced
//! atomically and durably) when a committed DeleteRecords entry is applied, so it survives a
//! restart even after retention deleted the segment that held the entry.
//!
//! `records-start` layout: `magic "CRS1" | start_offset i64 big-endian | crc32c u32`.

use std::path::Path;

use super::partition_log::PartitionLog;
use super::{be_i64, state_file, LogError, Result};

const MAGIC: &[u8; 4] = b"CRS1";
const FILE: &str = "records-start";

/// Reads `dir/records-start`; a missing file is no floor (0).
pub(crate) fn load(dir: &Path) -> Result<i64> {
    let path = dir.join(FILE);
    match state_file::read(&path, MAGIC)? {
        None => Ok(0),
        Some(b) if b.len() == 8 && be_i64(&b, 0) >= 0 => Ok(be_i64(&b, 0)),
        Some(_) => Err(LogError::CorruptState { path, reason: "wrong size or negative offset".into() }),
    }
}

/// Replaces `dir/records-start` atomically and durably.
pub(crate) fn store(dir: &Path, offset: i64) -> Result<()> {
    state_file::store(&dir.join(FILE), MAGIC, &offset.to_be_bytes())
}

impl PartitionLog {
    /// The floor set by DeleteRecords (0 when none).
    pub fn records_start(&self) -> i64 {
        self.records_start
    }

    /// Raises the floor to `offset` (never lowers it) and stores it durably before it takes
    /// effect. Returns whether it moved. The leader checks it against the high watermark; a
    /// follower that installed a snapshot may hold a floor past its log end until the entries
    /// up to it arrive (it serves nothing meanwhile).
    pub fn set_records_start(&mut self, offset: i64) -> Result<bool> {
        if offset <= self.records_start {
            return Ok(false);
        }
        store(&self.dir, offset)?;
        self.records_start = offset;
        slog::info!(self.logger, "log start offset moved by DeleteRecords"; "log_start_offset" => self.log_start_offset());
        Ok(true)
    }

    /// Whether the oldest segment lies wholly below the floor (retention may delete it).
    pub(super) fn below_records_start(&self, seg: &super::segment::Segment) -> bool {
        self.records_start > 0 && seg.metas.last().is_some_and(|m| m.offset_end <= self.records_start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::partition_log::tests::{fill, logger, opts};

    const SEG: u64 = 300; // two 137-byte frames per segment

    fn open(dir: &Path) -> PartitionLog {
        PartitionLog::open(dir, opts(SEG), &logger()).unwrap().0
    }

    #[test]
    fn floor_hides_offsets_below_it_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path());
        fill(&mut log, 1, 5, 1); // 5 batches of 2 offsets: [0,2) [2,4) [4,6) [6,8) [8,10)
        assert_eq!(log.log_start_offset(), 0);
        // Inside the batch [4,6): the straddling batch is served whole from 5 on.
        assert!(log.set_records_start(5).unwrap());
        assert_eq!(log.log_start_offset(), 5);
        assert!(matches!(log.read(4, 1 << 20, i64::MAX), Err(LogError::OffsetOutOfRange { log_start: 5, .. })));
        let data = log.read(5, 1, i64::MAX).unwrap();
        assert_eq!(crate::log::batch::BatchHeader::parse(&data).unwrap().base_offset, 4);
        // Never lowered, never past the log end.
        assert!(!log.set_records_start(3).unwrap());
        assert_eq!(log.log_start_offset(), 5);
        drop(log);
        let mut log = open(dir.path());
        assert_eq!((log.log_start_offset(), log.records_start()), (5, 5));
        assert!(log.set_records_start(10).unwrap());
        assert_eq!(log.log_start_offset(), 10, "up to the log end offset");
        assert!(log.read(10, 1 << 20, i64::MAX).unwrap().is_empty());
        let p = dir.path().join(FILE);
        let mut raw = std::fs::read(&p).unwrap();
        raw[5] ^= 1;
        std::fs::write(&p, &raw).unwrap();
        assert!(matches!(load(dir.path()), Err(LogError::CorruptState { .. })));
    }

    #[test]
    fn retention_deletes_whole_segments_below_the_floor_up_to_max_index() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path());
        fill(&mut log, 1, 9, 1); // segments [1,2] [3,4] [5,6] [7,8] [9]; offsets 2 per entry
        log.set_records_start(9).unwrap(); // inside entry 5 ([8,10))
                                           // Without time or size limits: [1,2] and [3,4] end at or below 8 and go; [5,6] straddles.
        assert_eq!(log.apply_retention(0, None, None, 3).unwrap(), 1, "not past the applied index");
        assert_eq!(log.apply_retention(0, None, None, u64::MAX).unwrap(), 1);
        assert_eq!(log.first_index(), 5);
        assert_eq!(log.log_start_offset(), 9, "the straddling segment serves nothing below the floor");
        assert!(matches!(log.read(8, 1 << 20, i64::MAX), Err(LogError::OffsetOutOfRange { .. })));
        drop(log);
        let log = open(dir.path());
        assert_eq!((log.first_index(), log.log_start_offset()), (5, 9));
    }
}
