//! The [`PartitionLog`] side of compaction, run on the partition's group actor: which sealed
//! segments the cleaner may read ([`PartitionLog::cleanable_segments`], an in-memory summary),
//! and installing a cleaned segment ([`PartitionLog::install_cleaned`]: renames, opening the new
//! files and swapping the entry table — metadata operations only, like retention's unlinks; the
//! directory fsync is queued on the disk writer).
//!
//! A cleaned segment is installed only if the log still holds the same segment: same base, same
//! entry count, and every entry with the same term, type and offsets (an entry the cleaner
//! emptied may only have moved its start to its end). Otherwise (retention deleted it, a snapshot
//! replaced the log) its files are discarded.

use crate::log::index::EntryMeta;
use crate::log::partition_log::PartitionLog;
use crate::log::segment::Segment;
use crate::log::write::{DiskFile, WriteOp};
use crate::log::Result;

use super::swap;

/// What the group actor tells the cleaner about one sealed segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentSummary {
    pub base_index: u64,
    pub entries: usize,
    /// Bytes of its `.log`.
    pub size: u64,
    /// Offset range covered (first entry's start, last entry's end).
    pub offset_start: i64,
    pub offset_end: i64,
    /// Max timestamp of its first batch (Kafka's first batch timestamp), if any.
    pub first_batch_ts: Option<i64>,
    /// Largest batch max timestamp, if any.
    pub largest_ts: Option<i64>,
}

fn same_entry(old: &EntryMeta, new: &EntryMeta) -> bool {
    old.term == new.term
        && old.entry_type == new.entry_type
        && old.offset_end == new.offset_end
        && (old.offset_start == new.offset_start || new.offset_start == new.offset_end)
}

impl PartitionLog {
    /// Max timestamp of the active segment's first batch (Kafka rolls on `segment.ms` from it).
    pub fn active_first_batch_timestamp(&self) -> Option<i64> {
        self.segments.last()?.metas.iter().find(|m| m.is_batch()).map(|m| m.max_ts)
    }

    /// Spacing of `.timeindex` records.
    pub fn index_interval_bytes(&self) -> u64 {
        self.opts.index_interval_bytes
    }

    /// The sealed segments wholly at or below raft index `max_index`, from the first, whose
    /// entries are all written and undamaged: what the cleaner may read.
    pub fn cleanable_segments(&self, max_index: u64) -> Vec<SegmentSummary> {
        let damaged = self.damaged.lock().unwrap_or_else(|p| p.into_inner());
        let sealed = self.segments.len().saturating_sub(1);
        self.segments[..sealed]
            .iter()
            .take_while(|s| {
                !s.is_empty()
                    && s.next_index() - 1 <= max_index
                    && s.first_pending_slot() == s.len()
                    && damaged.range(s.base_index..s.next_index()).next().is_none()
            })
            .map(|s| {
                let batches = || s.metas.iter().filter(|m| m.is_batch());
                SegmentSummary {
                    base_index: s.base_index,
                    entries: s.len(),
                    size: s.size,
                    offset_start: s.metas.first().map_or(0, |m| m.offset_start),
                    offset_end: s.metas.last().map_or(0, |m| m.offset_end),
                    first_batch_ts: batches().next().map(|m| m.max_ts),
                    largest_ts: batches().map(|m| m.max_ts).max(),
                }
            })
            .collect()
    }

    /// Installs the cleaned copy of segment `base` (its `.swap` files, entry table `metas`).
    /// Returns false, after discarding the copy, when the log no longer holds that segment.
    pub fn install_cleaned(&mut self, base: u64, metas: Vec<EntryMeta>) -> Result<bool> {
        let sealed = self.segments.len().saturating_sub(1);
        let Some(si) = self.segments[..sealed].iter().position(|s| s.base_index == base) else {
            swap::discard(&self.dir, base)?;
            return Ok(false);
        };
        let old = &self.segments[si];
        let same = old.len() == metas.len()
            && old.first_pending_slot() == old.len()
            && old.metas.iter().zip(&metas).all(|(o, n)| same_entry(o, n));
        if !same || !swap::complete(&self.dir, base)? {
            swap::discard(&self.dir, base)?;
            return Ok(false);
        }
        // The old files' names now name the cleaned copy: their handles never reopen them.
        self.segments[si].retire();
        let seg = Segment::open(&self.dir, base, self.opts.index_interval_bytes, metas)?;
        self.segments[si] = seg;
        self.queue.push(WriteOp::Sync { to: DiskFile::dir(&self.dir)? });
        self.flush_if_immediate()?;
        Ok(true)
    }
}
