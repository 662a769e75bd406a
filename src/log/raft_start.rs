//! The raft start of a `KafkaBatches` log, separate from its data start: entries below it stay
//! in the segments for Kafka reads (Fetch, ListOffsets), but raft-rs sees them as compacted, so
//! a follower whose next index is at or below it gets a snapshot (the segment files, see
//! `snapshot_descriptor.rs`) instead of the entries. The partition moves it after installing a
//! cleaner run (`partition::cleaning`), to the end of the cleaned segments, never past the
//! applied index; it is the end of a sealed segment, so the files below it never change again
//! except by another cleaning (which keeps every entry's index and term) or retention.
//!
//! Persisted in `raft-start` (a [`state_file`], replaced atomically and durably before it takes
//! effect): `magic "CRT1" | start u64 big-endian | crc32c`. It only rises; a crash before the
//! file is replaced leaves the older value, which is safe (raft-rs then merely holds more of
//! the log as entries). The effective raft start is the larger of it and the data start.

use std::path::Path;

use super::partition_log::PartitionLog;
use super::{be_u64, state_file, LogError, Result};

const MAGIC: &[u8; 4] = b"CRT1";
const FILE: &str = "raft-start";

/// Reads `dir/raft-start`; a missing file is no separate raft start (0).
pub(crate) fn load(dir: &Path) -> Result<u64> {
    let path = dir.join(FILE);
    match state_file::read(&path, MAGIC)? {
        None => Ok(0),
        Some(b) if b.len() == 8 => Ok(be_u64(&b, 0)),
        Some(_) => Err(LogError::CorruptState { path, reason: "wrong size".into() }),
    }
}

/// Replaces `dir/raft-start` atomically and durably.
pub(crate) fn store(dir: &Path, start: u64) -> Result<()> {
    state_file::store(&dir.join(FILE), MAGIC, &start.to_be_bytes())
}

impl PartitionLog {
    /// The first index raft-rs sees: the raft start, or the data start when that is later.
    pub fn raft_first_index(&self) -> u64 {
        self.raft_start.max(self.first_index())
    }

    /// The highest index at most `max` where a raft start may be: the first index of a
    /// segment that follows a sealed one.
    pub fn raft_start_candidate(&self, max: u64) -> Option<u64> {
        self.segments.iter().skip(1).map(|s| s.base_index).take_while(|b| *b <= max).last()
    }

    /// Moves the raft start up to `index`, which must be the first index of a segment after a
    /// sealed one (every entry below it sealed). Stored durably first. Returns whether it moved.
    pub fn set_raft_start(&mut self, index: u64) -> Result<bool> {
        if index <= self.raft_first_index() {
            return Ok(false);
        }
        let boundary = self.segments.iter().skip(1).any(|s| s.base_index == index);
        if !boundary {
            return Err(LogError::Invalid(format!("raft start {index} is not the end of a sealed segment")));
        }
        store(&self.dir, index)?;
        self.raft_start = index;
        slog::debug!(self.logger, "raft start moved"; "raft_first_index" => index, "first_index" => self.first_index());
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::partition_log::tests::{fill, logger, opts};

    #[test]
    fn raft_start_moves_only_up_to_segment_ends_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), opts(300), &logger()).unwrap().0;
        fill(&mut log, 1, 7, 1); // segments [1,2] [3,4] [5,6] [7]
        assert_eq!(log.raft_first_index(), 1);
        assert!(log.set_raft_start(4).is_err(), "inside a segment");
        assert!(log.set_raft_start(8).is_err(), "past the sealed segments");
        assert!(log.set_raft_start(5).unwrap());
        assert!(!log.set_raft_start(3).unwrap(), "never down");
        assert_eq!((log.first_index(), log.raft_first_index()), (1, 5));
        assert_eq!(
            (log.raft_start_candidate(6), log.raft_start_candidate(4), log.raft_start_candidate(2)),
            (Some(5), Some(3), None)
        );
        assert!(log.set_raft_start(7).unwrap(), "the active segment's base: every entry below is sealed");
        drop(log);
        let log = PartitionLog::open(dir.path(), opts(300), &logger()).unwrap().0;
        assert_eq!((log.first_index(), log.raft_first_index()), (1, 7));
        // Retention past it: the data start wins.
        std::fs::write(dir.path().join(FILE), b"CRT1").unwrap();
        assert!(PartitionLog::open(dir.path(), opts(300), &logger()).is_err(), "a damaged file is an error");
    }
}
