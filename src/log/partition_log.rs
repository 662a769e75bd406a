//! [`PartitionLog`]: the ordered list of segments of one partition directory, seen as a raft log
//! (append with conflict truncation, first/last index, terms, entries) plus dirty-file tracking for
//! group commit. The Kafka view lives in `kafka.rs`, retention and reset in `retention.rs`,
//! opening and crash recovery in `recovery.rs`.
//!
//! Deferred writes: a log run by a Raft group ([`PartitionLog::set_deferred`]) changes its entry
//! table at once and queues the file writes ([`WriteOp`]s, see `write.rs`); the group hands them to
//! the disk writer with [`PartitionLog::take_writes`] and reports them done with
//! [`PartitionLog::written`], which releases the entries kept in memory meanwhile. Creating a
//! segment on a roll, deleting segments (retention, a truncated suffix) and a reset stay
//! synchronous metadata operations on the caller: they unlink or create files, and queued ops
//! hold open handles, so a late write can only land in an unlinked file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use raft::eraftpb::Entry;
use slog::Logger;

use super::index::EntryMeta;
use super::offsets::entry_offsets;
use super::recovery::open_dir;
use super::retention::LogStart;
use super::segment::{EntryOffsets, Segment, FRAME_HEADER_LEN};
use super::write::{DiskFile, WriteOp};
use super::{LogError, Result};

/// What the entries of a log hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    /// Normal entries with data are Kafka record batches (v2), indexed by offset and timestamp.
    KafkaBatches,
    /// Entry data is opaque (e.g. the `__meta` group's commands); no Kafka view.
    Opaque,
}

/// Tunables of a partition log.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// A segment is rolled before an entry that would make it larger than this (a single
    /// larger entry still goes into a segment of its own).
    pub segment_bytes: u64,
    /// Spacing of `.timeindex` records in bytes of log data (the `.index` is dense).
    pub index_interval_bytes: u64,
    pub kind: LogKind,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions { segment_bytes: 1 << 30, index_interval_bytes: 4096, kind: LogKind::KafkaBatches }
    }
}

/// What opening a log found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Bytes cut from a torn tail of the active segment.
    pub truncated_bytes: u64,
    /// Segments after opening.
    pub segments: usize,
    /// Entries after opening.
    pub entries: u64,
    /// `.index` files rebuilt by scanning their `.log`.
    pub indexes_rebuilt: usize,
    /// Files removed: orphan index files, segments below the log start, leftovers of a reset.
    pub stale_files_removed: usize,
    /// An interrupted `reset_to` was completed.
    pub reset_completed: bool,
}

/// The log of one partition (or of the `__meta` group): a raft log whose entries are stored
/// once, in segment files, and indexed in memory.
#[derive(Debug)]
pub struct PartitionLog {
    pub(super) dir: PathBuf,
    pub(super) opts: LogOptions,
    pub(super) logger: Logger,
    /// Never empty; only the last (active) segment may be empty.
    pub(super) segments: Vec<Segment>,
    pub(super) start: LogStart,
    pub(super) dir_dirty: bool,
    /// Entries whose frame failed its checks (bit rot, a damaged sector), by raft index. Found by
    /// recovery or by any read (reads take `&self`, hence the lock); each is logged once. Their
    /// batches are never served: Fetch stops before them, replication does not send them.
    pub(super) damaged: Mutex<BTreeMap<u64, Damage>>,
    /// Writes decided but not handed out yet (see [`Self::take_writes`]).
    pub(super) queue: Vec<WriteOp>,
    /// Whether writes wait for the caller to hand them to a writer (a Raft group's log) or run
    /// at once, on the caller's thread.
    pub(super) deferred: bool,
    /// Sequence number of the last append; entries of an append stay in memory until
    /// [`Self::written`] reports its sequence done.
    pub(super) write_seq: u64,
    /// The log start offset set by DeleteRecords (see `records_start.rs`).
    pub(super) records_start: i64,
    /// The raft start, when above the data start (see `raft_start.rs`; 0: none).
    pub(super) raft_start: u64,
}

/// A stored entry that fails its checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub term: u64,
    /// The Kafka offsets the entry covers, from the entry table (`[start, end)`).
    pub offsets: (i64, i64),
    pub segment: PathBuf,
    pub position: u64,
    pub reason: String,
}

/// What a read does with an entry whose frame fails its checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDamage {
    /// Fail the read with [`LogError::Corrupt`].
    Fail,
    /// Return the entries before it (none if it is the first).
    Stop,
    /// Put a placeholder in its place ([`is_damaged_placeholder`]): same index and term, no batch,
    /// and the offset after the damaged batch as 8 big-endian bytes of data, so that the state
    /// machine moves past the range without serving it.
    Placeholder,
}

/// Context of a placeholder entry that stands for a damaged one (see [`OnDamage::Placeholder`]).
pub const DAMAGED_PLACEHOLDER: &[u8] = b"chronik:damaged-entry";

/// Whether `e` is a placeholder for a damaged entry; if so, the offset after its range.
pub fn is_damaged_placeholder(e: &Entry) -> Option<i64> {
    if e.context.as_ref() != DAMAGED_PLACEHOLDER {
        return None;
    }
    Some(e.data.get(..8).map_or(0, |b| i64::from_be_bytes(b.try_into().expect("8 bytes"))))
}

/// Size of `Entry` as protobuf-encoded by raft (what `raft::util::limit_size` measures).
pub(super) fn pb_entry_size(index: u64, m: &EntryMeta) -> u64 {
    fn varint(v: u64) -> u64 {
        u64::from(64 - (v | 1).leading_zeros()).div_ceil(7)
    }
    fn bytes_field(len: u32) -> u64 {
        if len == 0 {
            0
        } else {
            1 + varint(u64::from(len)) + u64::from(len)
        }
    }
    let mut s = 0;
    if m.entry_type != 0 {
        s += 1 + varint(u64::from(m.entry_type));
    }
    if m.term != 0 {
        s += 1 + varint(m.term);
    }
    if index != 0 {
        s += 1 + varint(index);
    }
    s + bytes_field(m.data_len) + bytes_field(m.ctx_len)
}

impl PartitionLog {
    /// Opens (or creates) the log in `dir`, recovering from a crash: see `recovery.rs`.
    pub fn open(dir: &Path, opts: LogOptions, logger: &slog::Logger) -> Result<(Self, RecoveryReport)> {
        Self::open_committed(dir, opts, 0, logger)
    }

    /// [`Self::open`] knowing that entries up to `committed` were committed: in the active
    /// segment, a frame at or below it that fails its CRC is kept as damaged instead of being cut
    /// as a torn tail (see `recovery::Salvage`).
    pub fn open_committed(
        dir: &Path,
        opts: LogOptions,
        committed: u64,
        logger: &slog::Logger,
    ) -> Result<(Self, RecoveryReport)> {
        let logger = logger.new(slog::o!("log" => dir.display().to_string()));
        super::snapshot_install::recover(dir, &logger)?;
        let opened = open_dir(dir, &opts, committed, &logger)?;
        let log = PartitionLog {
            dir: dir.to_path_buf(),
            opts,
            logger,
            segments: opened.segments,
            start: opened.start,
            dir_dirty: false,
            damaged: Mutex::default(),
            queue: Vec::new(),
            deferred: false,
            write_seq: 0,
            records_start: super::records_start::load(dir)?,
            raft_start: super::raft_start::load(dir)?,
        };
        for (index, d) in opened.damaged {
            log.note_damage(index, d);
        }
        Ok((log, opened.report))
    }

    /// Directory of the log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Kind of the log.
    pub fn kind(&self) -> LogKind {
        self.opts.kind
    }

    /// First raft index held (1 for a new log).
    pub fn first_index(&self) -> u64 {
        self.start.start_index
    }

    /// Last raft index held (`first_index() - 1` when empty).
    pub fn last_index(&self) -> u64 {
        self.segments.last().map_or(self.start.start_index, |s| s.next_index()) - 1
    }

    /// The active segment. There is always one, except after a `reset_to` that failed half-way:
    /// then the reset is completed here.
    pub(super) fn active_mut(&mut self) -> Result<&mut Segment> {
        if self.segments.is_empty() {
            self.finish_reset()?;
        }
        self.segments.last_mut().ok_or_else(|| LogError::Invalid("log has no active segment".into()))
    }

    /// Segment position and slot of raft index `index`.
    pub(super) fn locate(&self, index: u64) -> Option<(usize, usize)> {
        let si = self.segments.partition_point(|s| s.base_index <= index).checked_sub(1)?;
        Some((si, self.segments[si].slot(index)?))
    }

    pub(super) fn meta(&self, index: u64) -> Option<&EntryMeta> {
        self.locate(index).map(|(si, slot)| &self.segments[si].metas[slot])
    }

    /// Term of `index`, for `first_index() - 1 ..= last_index()`.
    pub fn term(&self, index: u64) -> Option<u64> {
        if index.checked_add(1) == Some(self.start.start_index) {
            return Some(self.start.prev_term);
        }
        self.meta(index).map(|m| m.term)
    }

    /// Records a damaged entry; the first time, logs it with its range.
    pub(super) fn note_damage(&self, index: u64, d: Damage) {
        let mut damaged = self.damaged.lock().unwrap_or_else(|p| p.into_inner());
        if damaged.contains_key(&index) {
            return;
        }
        slog::error!(self.logger, "corrupt entry in the partition log: its offsets are never served (reads of them fail with KAFKA_STORAGE_ERROR)";
            "segment" => d.segment.display().to_string(), "position" => d.position, "index" => index, "term" => d.term,
            "offset_start" => d.offsets.0, "offset_end" => d.offsets.1, "reason" => d.reason.as_str());
        damaged.insert(index, d);
    }

    /// The damaged entries found so far, by raft index.
    pub fn damaged(&self) -> BTreeMap<u64, Damage> {
        self.damaged.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Handles a frame of `seg` at `slot` that failed with `e`, following `policy`.
    pub(super) fn on_bad_frame(
        &self,
        seg: &Segment,
        slot: usize,
        e: LogError,
        policy: OnDamage,
    ) -> Result<Option<Entry>> {
        let LogError::Corrupt { segment, position, reason } = e else {
            return Err(e);
        };
        let index = seg.base_index + slot as u64;
        let m = seg.metas[slot];
        let d = Damage { term: m.term, offsets: (m.offset_start, m.offset_end), segment, position, reason };
        self.note_damage(index, d.clone());
        match policy {
            OnDamage::Fail => Err(LogError::Corrupt { segment: d.segment, position: d.position, reason: d.reason }),
            OnDamage::Stop => Ok(None),
            OnDamage::Placeholder => Ok(Some(Entry {
                term: m.term,
                index,
                data: m.offset_end.to_be_bytes().to_vec().into(),
                context: DAMAGED_PLACEHOLDER.into(),
                ..Default::default()
            })),
        }
    }

    /// Replaces damaged entry `e.index` with `e`, a copy from another replica, in place. Raft's
    /// log matching makes any replica's entry with the same index and term the same entry; the
    /// copy must also fit the damaged frame exactly and, in a Kafka log, hold a batch whose CRC
    /// holds and whose offsets are the ones the entry table has. Returns whether it was repaired
    /// (`false`: the entry is not, or no longer, damaged).
    pub fn repair(&mut self, e: &Entry) -> Result<bool> {
        if !self.damaged.get_mut().unwrap_or_else(|p| p.into_inner()).contains_key(&e.index) {
            return Ok(false);
        }
        let Some((si, slot)) = self.locate(e.index) else {
            return Ok(false);
        };
        let m = self.segments[si].metas[slot];
        let kafka = self.opts.kind == LogKind::KafkaBatches;
        let o = entry_offsets(kafka, e.entry_type, &e.data, &e.context, m.offset_start)
            .map_err(|reason| LogError::InvalidBatch { index: e.index, reason })?;
        if (o.offset_start, o.offset_end) != (m.offset_start, m.offset_end) {
            return Err(LogError::InvalidBatch {
                index: e.index,
                reason: format!(
                    "copy covers offsets {}..{}, the entry {}..{}",
                    o.offset_start, o.offset_end, m.offset_start, m.offset_end
                ),
            });
        }
        if kafka && o.offset_end > o.offset_start {
            let h = super::batch::BatchHeader::parse(&e.data)
                .map_err(|err| LogError::InvalidBatch { index: e.index, reason: err.to_string() })?;
            if super::batch::crc32c_of(&e.data) != h.crc {
                return Err(LogError::InvalidBatch { index: e.index, reason: "the copy's batch fails its crc".into() });
            }
        }
        self.segments[si].rewrite_frame(slot, e)?;
        let d = self.damaged.get_mut().unwrap_or_else(|p| p.into_inner()).remove(&e.index);
        if let Some(d) = d {
            slog::warn!(self.logger, "damaged entry repaired with a copy from another replica";
                "index" => e.index, "term" => e.term, "offset_start" => d.offsets.0, "offset_end" => d.offsets.1,
                "segment" => d.segment.display().to_string(), "position" => d.position);
        }
        Ok(true)
    }

    /// Whether any damaged entry is known.
    pub fn has_damage(&self) -> bool {
        !self.damaged.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
    }

    /// Entries `[lo, hi)`, limited to `max_size` bytes (protobuf size, as `raft::util::limit_size`)
    /// but always at least one when `lo < hi`. Frame CRCs are verified; a damaged entry fails the
    /// read ([`OnDamage::Fail`]).
    pub fn entries(&self, lo: u64, hi: u64, max_size: Option<u64>) -> Result<Vec<Entry>> {
        self.entries_with(lo, hi, max_size, OnDamage::Fail)
    }

    /// [`Self::entries`] with a choice of what a damaged entry does (see [`OnDamage`]).
    pub fn entries_with(&self, lo: u64, hi: u64, max_size: Option<u64>, policy: OnDamage) -> Result<Vec<Entry>> {
        if lo < self.first_index() {
            return Err(LogError::Compacted { index: lo, first_index: self.first_index() });
        }
        if hi > self.last_index() + 1 {
            return Err(LogError::Unavailable { index: hi - 1, last_index: self.last_index() });
        }
        let mut out = Vec::new();
        if lo >= hi {
            return Ok(out);
        }
        let Some((mut si, mut slot)) = self.locate(lo) else {
            return Err(LogError::Unavailable { index: lo, last_index: self.last_index() });
        };
        let (mut size, mut left) = (0u64, hi - lo);
        let mut index = lo;
        let max = max_size.unwrap_or(u64::MAX);
        'segments: while left > 0 {
            let Some(seg) = self.segments.get(si) else {
                break;
            };
            let from = slot;
            while slot < seg.len() && left > 0 {
                let s = pb_entry_size(index, &seg.metas[slot]);
                if index > lo && size.saturating_add(s) > max {
                    seg.read_entries_with(from, slot, &mut out, &mut |k, e| self.on_bad_frame(seg, k, e, policy))?;
                    break 'segments;
                }
                size = size.saturating_add(s);
                slot += 1;
                index += 1;
                left -= 1;
            }
            if !seg.read_entries_with(from, slot, &mut out, &mut |k, e| self.on_bad_frame(seg, k, e, policy))? {
                break;
            }
            si += 1;
            slot = 0;
        }
        Ok(out)
    }

    /// Appends raft entries; a conflicting suffix from `entries[0].index` on is truncated first.
    /// Rolls segments past `segment_bytes`; never fsyncs (a roll queues the sealed segment's
    /// fsync). With deferred writes, only the entry table changes here (see `write.rs`).
    pub fn append(&mut self, entries: &[Entry]) -> Result<()> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        let mut prev_term = self.term(first.index.saturating_sub(1)).unwrap_or(0);
        for (i, e) in entries.iter().enumerate() {
            let expected = first.index + i as u64;
            if e.index != expected {
                return Err(LogError::NonContiguous { expected, got: e.index });
            }
            if e.data.len() > u32::MAX as usize || e.context.len() > u32::MAX as usize {
                return Err(LogError::Invalid(format!("entry {} is too large", e.index)));
            }
            if e.term < prev_term {
                return Err(LogError::Invalid(format!(
                    "entry {} has term {} below the previous term {prev_term}",
                    e.index, e.term
                )));
            }
            prev_term = e.term;
        }
        if first.index < self.first_index() {
            return Err(LogError::Compacted { index: first.index, first_index: self.first_index() });
        }
        if first.index > self.last_index() + 1 {
            return Err(LogError::NonContiguous { expected: self.last_index() + 1, got: first.index });
        }
        let kafka = self.opts.kind == LogKind::KafkaBatches;
        let mut next = self.offset_after_index(first.index - 1);
        let mut offsets = Vec::with_capacity(entries.len());
        for e in entries {
            let o = entry_offsets(kafka, e.entry_type, &e.data, &e.context, next)
                .map_err(|reason| LogError::InvalidBatch { index: e.index, reason })?;
            next = o.offset_end;
            offsets.push(o);
        }
        self.truncate_suffix(first.index)?;
        self.write_seq += 1;
        self.write_entries(entries, &offsets)?;
        self.flush_if_immediate()
    }

    /// The size at which the active segment rolls from now on (a topic's `segment.bytes`
    /// changed); segments already sealed keep theirs.
    pub fn set_segment_bytes(&mut self, segment_bytes: u64) {
        self.opts.segment_bytes = segment_bytes.max(1);
    }

    fn write_entries(&mut self, entries: &[Entry], offsets: &[EntryOffsets]) -> Result<()> {
        let limit = self.opts.segment_bytes;
        let seq = self.write_seq;
        let mut i = 0;
        while i < entries.len() {
            self.active_mut()?;
            let (Some(active), queue) = (self.segments.last_mut(), &mut self.queue) else {
                return Err(LogError::Invalid("log has no active segment".into()));
            };
            let mut size = active.size;
            let mut j = i;
            while j < entries.len() {
                let e = &entries[j];
                let len = (FRAME_HEADER_LEN + e.data.len() + e.context.len()) as u64;
                if size > 0 && size + len > limit {
                    break;
                }
                size += len;
                j += 1;
            }
            if j > i {
                active.append(&entries[i..j], &offsets[i..j], seq, queue);
                i = j;
            }
            if i < entries.len() {
                self.roll()?;
            }
        }
        Ok(())
    }

    /// Seals the active segment (its fsync is queued) and starts a new one, unless the active
    /// segment is empty. Appends roll by themselves; callers may also roll on age (Kafka's
    /// `segment.ms`). Returns whether a new segment was created. The new segment's files are
    /// created here; the fsync of the directory is queued before any write to them.
    pub fn roll(&mut self) -> Result<bool> {
        let Some(active) = self.segments.last_mut().filter(|s| !s.is_empty()) else {
            return Ok(false);
        };
        active.sync_ops(&mut self.queue);
        let next = active.next_index();
        let seg = Segment::create(&self.dir, next, self.opts.index_interval_bytes)?;
        self.segments.push(seg);
        self.queue.push(WriteOp::Sync { to: DiskFile::dir(&self.dir)? });
        self.flush_if_immediate()?;
        Ok(true)
    }

    /// Removes the entries from `from` on (no-op when `from > last_index()`).
    pub fn truncate_suffix(&mut self, from: u64) -> Result<()> {
        if from > self.last_index() {
            return Ok(());
        }
        if from < self.first_index() {
            return Err(LogError::Compacted { index: from, first_index: self.first_index() });
        }
        self.damaged.get_mut().unwrap_or_else(|p| p.into_inner()).split_off(&from);
        let mut deleted = false;
        while self.segments.len() > 1 && self.segments.last().is_some_and(|s| s.base_index >= from) {
            if let Some(seg) = self.segments.last() {
                seg.delete()?;
            }
            self.segments.pop();
            deleted = true;
        }
        if deleted {
            // Deleted segments must not come back after a crash while later writes survive: the
            // directory is fsynced before any write queued after this.
            self.queue.push(WriteOp::Sync { to: DiskFile::dir(&self.dir)? });
        }
        if let Some(active) = self.segments.last_mut() {
            active.truncate((from - active.base_index) as usize, &mut self.queue);
        }
        self.flush_if_immediate()
    }

    /// Bytes of all `.log` files.
    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size).sum()
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::log::offsets::make_batch;
    use crate::log::segment::file_name;
    use bytes::Bytes;
    use protobuf::Message;
    use raft::eraftpb::EntryType;

    pub(crate) fn logger() -> Logger {
        Logger::root(slog::Discard, slog::o!())
    }

    pub(crate) fn opts(segment_bytes: u64) -> LogOptions {
        LogOptions { segment_bytes, index_interval_bytes: 256, kind: LogKind::KafkaBatches }
    }

    /// Entry `index` holding a batch of `count` offsets from `base`, max timestamp `ts`.
    pub(crate) fn batch_entry(index: u64, term: u64, base: i64, count: i32, ts: i64) -> Entry {
        Entry { index, term, data: Bytes::from(make_batch(base, count, ts, 40)), ..Default::default() }
    }

    pub(crate) fn noop(index: u64, term: u64) -> Entry {
        Entry { index, term, ..Default::default() }
    }

    /// Appends entries `first..first+n`, each a batch of 2 offsets, continuing offsets.
    pub(crate) fn fill(log: &mut PartitionLog, first: u64, n: u64, term: u64) {
        let mut off = log.offset_after_index(first - 1);
        let ents: Vec<Entry> = (first..first + n)
            .map(|i| {
                let e = batch_entry(i, term, off, 2, 1000 + i as i64);
                off += 2;
                e
            })
            .collect();
        log.append(&ents).unwrap();
    }

    #[test]
    fn new_log_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let (log, rep) = PartitionLog::open(dir.path(), opts(1 << 20), &logger()).unwrap();
        assert_eq!((log.first_index(), log.last_index()), (1, 0));
        assert_eq!(log.term(0), Some(0));
        assert_eq!(log.term(1), None);
        assert_eq!(rep.segments, 1);
        assert_eq!(rep.entries, 0);
        assert!(log.entries(1, 1, None).unwrap().is_empty());
        assert!(dir.path().join(file_name(1, "log")).exists());
    }

    #[test]
    fn append_and_read_entries_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = PartitionLog::open(dir.path(), opts(1 << 20), &logger()).unwrap();
        let mut ents = vec![noop(1, 1)];
        ents.push(batch_entry(2, 1, 0, 3, 5));
        let mut cc = noop(3, 2);
        cc.entry_type = EntryType::EntryConfChange;
        cc.data = Bytes::from_static(b"conf");
        cc.context = Bytes::from_static(b"ctx");
        ents.push(cc);
        log.append(&ents).unwrap();
        assert_eq!(log.last_index(), 3);
        assert_eq!(log.entries(1, 4, None).unwrap(), ents);
        assert_eq!(log.entries(2, 3, None).unwrap(), ents[1..2].to_vec());
        assert_eq!((log.term(1), log.term(3), log.term(4)), (Some(1), Some(2), None));
        assert!(matches!(log.entries(0, 2, None), Err(LogError::Compacted { .. })));
        assert!(matches!(log.entries(1, 5, None), Err(LogError::Unavailable { .. })));
    }

    #[test]
    fn pb_size_matches_protobuf() {
        for (ty, term, index, data, ctx) in [
            (0u8, 0u64, 0u64, 0usize, 0usize),
            (1, 1, 1, 1, 0),
            (2, 300, 1 << 40, 200, 17),
            (0, u64::MAX, u64::MAX, 70_000, 1),
        ] {
            let e = Entry {
                entry_type: match ty {
                    0 => EntryType::EntryNormal,
                    1 => EntryType::EntryConfChange,
                    _ => EntryType::EntryConfChangeV2,
                },
                term,
                index,
                data: vec![7u8; data].into(),
                context: vec![1u8; ctx].into(),
                ..Default::default()
            };
            let m = EntryMeta {
                term,
                pos: 0,
                data_len: data as u32,
                ctx_len: ctx as u32,
                entry_type: ty,
                offset_start: 0,
                offset_end: 0,
                max_ts: -1,
            };
            assert_eq!(pb_entry_size(index, &m), u64::from(e.compute_size()));
        }
    }

    #[test]
    fn entries_honour_max_size_like_limit_size() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = PartitionLog::open(dir.path(), opts(600), &logger()).unwrap();
        fill(&mut log, 1, 10, 1);
        assert!(log.segment_count() > 2, "spans segments");
        let all = log.entries(1, 11, None).unwrap();
        assert_eq!(all.len(), 10);
        for max in [0, 1, 150, 300, 301, 1000, u64::MAX] {
            let mut want = all.clone();
            raft::util::limit_size(&mut want, Some(max));
            assert_eq!(log.entries(1, 11, Some(max)).unwrap(), want, "max {max}");
        }
    }

    #[test]
    fn rolls_to_new_segments() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = PartitionLog::open(dir.path(), opts(400), &logger()).unwrap();
        // Each frame is 36 + 101 = 137 bytes: two per segment.
        fill(&mut log, 1, 5, 1);
        assert_eq!(log.segment_count(), 3);
        let bases: Vec<u64> = log.segments.iter().map(|s| s.base_index).collect();
        assert_eq!(bases, vec![1, 3, 5]);
        for b in bases {
            assert!(dir.path().join(file_name(b, "log")).exists());
            assert!(dir.path().join(file_name(b, "index")).exists());
            assert!(dir.path().join(file_name(b, "timeindex")).exists());
        }
        assert_eq!(log.size_bytes(), 5 * 137);
        // A single entry larger than a segment gets a segment of its own.
        let mut big = batch_entry(6, 1, 10, 1, 0);
        big.data = Bytes::from(make_batch(10, 1, 0, 1000));
        log.append(&[big.clone()]).unwrap();
        assert_eq!(log.segment_count(), 4);
        assert_eq!(log.entries(6, 7, None).unwrap(), vec![big]);
        assert!(log.roll().unwrap());
        assert!(!log.roll().unwrap(), "an empty active segment is not rolled");
    }

    #[test]
    fn conflicting_append_truncates_suffix() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = PartitionLog::open(dir.path(), opts(400), &logger()).unwrap();
        fill(&mut log, 1, 10, 1);
        assert_eq!(log.next_offset(), 20);
        let e5 = batch_entry(5, 2, 8, 4, 77);
        log.append(std::slice::from_ref(&e5)).unwrap();
        assert_eq!(log.last_index(), 5);
        assert_eq!(log.term(5), Some(2));
        assert_eq!(log.term(4), Some(1));
        assert_eq!(log.next_offset(), 12);
        assert_eq!(log.entries(5, 6, None).unwrap(), vec![e5]);
        let bases: Vec<u64> = log.segments.iter().map(|s| s.base_index).collect();
        assert_eq!(bases, vec![1, 3, 5]);
        assert!(!dir.path().join(file_name(7, "log")).exists());
        // Re-appending the same entries after truncation and reopening sees the new state.
        fill(&mut log, 6, 2, 2);
        drop(log);
        let (log, _) = PartitionLog::open(dir.path(), opts(400), &logger()).unwrap();
        assert_eq!(log.last_index(), 7);
        assert_eq!(log.term(6), Some(2));
        assert_eq!(log.next_offset(), 16);
    }

    #[test]
    fn invalid_appends_are_rejected_without_side_effects() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = PartitionLog::open(dir.path(), opts(1 << 20), &logger()).unwrap();
        fill(&mut log, 1, 3, 2);
        let err = log.append(&[noop(5, 2)]).unwrap_err();
        assert!(matches!(err, LogError::NonContiguous { expected: 4, got: 5 }));
        let err = log.append(&[noop(4, 2), noop(6, 2)]).unwrap_err();
        assert!(matches!(err, LogError::NonContiguous { expected: 5, got: 6 }));
        let err = log.append(&[noop(4, 1)]).unwrap_err();
        assert!(matches!(err, LogError::Invalid(_)), "term going backwards");
        let mut short = noop(2, 3);
        short.data = Bytes::from_static(b"not a batch");
        let err = log.append(&[short]).unwrap_err();
        assert!(matches!(err, LogError::InvalidBatch { index: 2, .. }));
        // Offsets going backwards.
        let err = log.append(&[batch_entry(4, 2, 1, 1, 0)]).unwrap_err();
        assert!(matches!(err, LogError::InvalidBatch { index: 4, .. }));
        assert_eq!(log.last_index(), 3, "nothing was truncated");
        assert_eq!(log.next_offset(), 6);
    }

    #[test]
    fn take_dirty_returns_handles_and_clears() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = PartitionLog::open(dir.path(), opts(400), &logger()).unwrap();
        let (files, last) = log.take_dirty();
        assert_eq!(files.len(), 1, "the directory that gained the new segment");
        assert_eq!(last, 0);
        assert!(log.take_dirty().0.is_empty());
        fill(&mut log, 1, 1, 1);
        let (files, last) = log.take_dirty();
        assert_eq!(last, 1);
        assert_eq!(files.len(), 1, "only the .log takes part in group commit");
        for f in &files {
            f.sync_all().unwrap();
        }
        assert!(log.take_dirty().0.is_empty());
        fill(&mut log, 2, 4, 1); // rolls: the sealed segment was synced, the new one is dirty
        let (files, last) = log.take_dirty();
        assert_eq!(last, 5);
        assert!(!files.is_empty());
        fill(&mut log, 6, 1, 1);
        log.sync().unwrap();
        assert!(log.take_dirty().0.is_empty());
    }

    #[test]
    fn opaque_log_stores_arbitrary_data() {
        let dir = tempfile::tempdir().unwrap();
        let o = LogOptions { kind: LogKind::Opaque, ..opts(300) };
        let (mut log, _) = PartitionLog::open(dir.path(), o.clone(), &logger()).unwrap();
        let ents: Vec<Entry> = (1..=6u64)
            .map(|i| {
                let mut e = noop(i, 1);
                e.data = Bytes::from(vec![i as u8; 10 * i as usize]);
                e
            })
            .collect();
        log.append(&ents).unwrap();
        assert_eq!(log.next_offset(), 0);
        drop(log);
        let (log, rep) = PartitionLog::open(dir.path(), o, &logger()).unwrap();
        assert_eq!(rep.entries, 6);
        assert_eq!(log.entries(1, 7, None).unwrap(), ents);
    }
}
