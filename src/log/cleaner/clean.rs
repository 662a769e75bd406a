//! One cleaning run over a partition, Kafka's `Cleaner.doClean`, reading only sealed segments
//! through their own file handles (never the group actor's): when to clean (dirty ratio,
//! `max.compaction.lag.ms`), building the key map over the dirty part, and rewriting every
//! segment from the log start to the end of what the map covers into `.swap` copies.
//!
//! Record rules (Kafka's `shouldRetainRecord`): a record with a key survives when no later record
//! of that key is in the map; a tombstone (null value) survives too until its segment was first
//! cleaned `delete.retention.ms` ago; a record without a key does not survive. The batch rules
//! are in `rewrite.rs`. Transactional batches and COMMIT/ABORT markers (removed once their
//! transaction has no batch left and the segment's delete horizon has passed): see
//! [`TxnTracker`].

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use protobuf::ProtobufEnum;
use raft::eraftpb::{Entry, EntryType};

use crate::log::batch::BatchHeader;
use crate::log::index::{EntryMeta, NO_TIMESTAMP};
use crate::log::offsets::{entry_offsets, COMPACTED_ENTRY};
use crate::log::segment::{file_name, frame_crc, EntryOffsets, FrameHeader, FRAME_HEADER_LEN};
use crate::log::{IoContext, LogError, Result};

use super::checkpoint::Checkpoint;
use super::install::SegmentSummary;
use super::offset_map::OffsetMap;
use super::rewrite::{Decoded, Rewritten};
use super::swap::CleanedWriter;
use super::CompactionSettings;

/// What the partition's committed state knows of its transactions (`partition::txn`).
#[derive(Debug, Clone, Default)]
pub struct TxnFacts {
    /// (producer id, first offset, offset of the ABORT marker) of each aborted transaction.
    pub aborted: Vec<(i64, i64, i64)>,
    /// Producer id → first offset of its open transaction.
    pub open: HashMap<i64, i64>,
    /// Producer id → epoch, for the producers whose table entry holds no data batch (their
    /// last entry is a marker): their markers of that epoch are kept (Kafka's
    /// `lastRecordsOfActiveProducers` with no `lastDataOffset`).
    pub marker_last: HashMap<i64, i16>,
}

/// What became of the transaction a transactional batch belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnFate {
    /// Not ended yet: the batch is kept as it is and enters no key map.
    Open,
    /// Ended by an ABORT marker: its records are removed.
    Aborted,
    /// Ended by a COMMIT marker: its records are cleaned like any others.
    Committed,
}

impl TxnFacts {
    /// The fate of a transactional batch of `producer_id` at `offset`. A producer has at most
    /// one open transaction per partition, so its batches between a transaction's first offset
    /// and its marker are that transaction's.
    pub fn fate(&self, producer_id: i64, offset: i64) -> TxnFate {
        if self.open.get(&producer_id).is_some_and(|first| offset >= *first) {
            TxnFate::Open
        } else if self.aborted.iter().any(|&(p, first, last)| p == producer_id && first <= offset && offset <= last) {
            TxnFate::Aborted
        } else {
            TxnFate::Committed
        }
    }
}

/// Everything one run needs: given by the group actor, read-only.
#[derive(Debug, Clone)]
pub struct CleanJob {
    pub dir: PathBuf,
    /// The cleanable sealed segments, from the log start ([`super::PartitionLog::cleanable_segments`]
    /// cut at `min.compaction.lag.ms` by [`plan`]).
    pub segments: Vec<SegmentSummary>,
    pub checkpoint: Checkpoint,
    /// Producer id → last offset of its latest batch (that batch is kept, emptied if need be).
    pub producer_last: HashMap<i64, i64>,
    /// The transactions of the committed state, for the rules of transactional batches.
    pub txns: TxnFacts,
    pub settings: CompactionSettings,
    pub now_ms: i64,
    /// `.timeindex` spacing.
    pub index_interval_bytes: u64,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct CleanOutcome {
    /// Segments rewritten (their `.swap` files are ready), with their new entry tables.
    pub cleaned: Vec<(u64, Vec<EntryMeta>)>,
    /// The checkpoint to store once they are installed.
    pub checkpoint: Checkpoint,
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// Records removed.
    pub records_removed: u64,
    /// The ABORT markers removed: (segment base index, producer id, marker offset). Once the
    /// segment is installed, their entries leave the partition's aborted index (Kafka writes
    /// the cleaned `.txnindex` with only the aborted transactions whose marker it keeps).
    pub dropped_aborts: Vec<(u64, i64, i64)>,
    /// Markers removed.
    pub markers_removed: u64,
}

/// Clean and dirty bytes of the cleanable part: segments ending at or below the checkpoint are
/// clean, the others dirty (Kafka's `LogToClean`: `cleanableRatio = dirty / (clean + dirty)`).
pub fn dirty_ratio(segments: &[SegmentSummary], cleaned_offset: i64) -> (u64, u64, f64) {
    let (clean, dirty) = segments.iter().fold((0u64, 0u64), |(c, d), s| {
        if s.offset_end <= cleaned_offset {
            (c + s.size, d)
        } else {
            (c, d + s.size)
        }
    });
    let ratio = if clean + dirty == 0 { 0.0 } else { dirty as f64 / (clean + dirty) as f64 };
    (clean, dirty, ratio)
}

/// Kafka's `LogCleanerManager.cleanableOffsets` and `grabFilthiestCompactedLog` for one log:
/// cuts `segments` before the first dirty one younger than `min.compaction.lag.ms`, and says
/// whether the rest must be cleaned now: its dirty ratio reaches `min.cleanable.dirty.ratio`, or
/// its oldest dirty batch is older than `max.compaction.lag.ms`. Also returns the seconds since
/// the oldest dirty batch (the cleaner lag metric).
pub fn plan(
    mut segments: Vec<SegmentSummary>,
    cleaned_offset: i64,
    settings: &CompactionSettings,
    now_ms: i64,
) -> (Vec<SegmentSummary>, bool, f64, f64) {
    let lag_bound = now_ms.saturating_sub(settings.min_compaction_lag_ms);
    let cut = segments
        .iter()
        .position(|s| s.offset_end > cleaned_offset && s.largest_ts.is_some_and(|ts| ts > lag_bound))
        .unwrap_or(segments.len());
    segments.truncate(cut);
    let (_, dirty, ratio) = dirty_ratio(&segments, cleaned_offset);
    let oldest_dirty = segments.iter().filter(|s| s.offset_end > cleaned_offset).find_map(|s| s.first_batch_ts);
    let lag_s = oldest_dirty.map_or(0.0, |ts| (now_ms.saturating_sub(ts)).max(0) as f64 / 1000.0);
    let overdue =
        settings.max_compaction_lag_ms.zip(oldest_dirty).is_some_and(|(max, ts)| ts < now_ms.saturating_sub(max));
    let must = dirty > 0 && (ratio >= settings.min_cleanable_ratio || overdue);
    (segments, must, ratio, lag_s)
}

/// Kafka's `CleanedTransactionMetadata`: which COMMIT/ABORT markers may go. One run reads the
/// log from its start in offset order (every segment up to the end of the key map), so when it
/// reaches a marker it has seen every batch of that marker's transaction still in the log.
///
/// - A data batch of an aborted transaction ([`TxnFacts::aborted`], taken in first-offset order
///   as the run advances: `consumeAbortedTxnsUpTo`) marks that transaction as still having data;
///   any other transactional batch marks its producer's (committed or open) transaction so.
/// - A COMMIT marker may go when no batch of its transaction was read since the producer's
///   previous marker; an ABORT marker when its aborted transaction had no batch in the log at
///   the start of this run (a batch removed by this very run keeps the marker one more run, as
///   in Kafka). An empty control batch may go; one of an unknown type stays.
/// - A marker that may go is removed only once its segment was first cleaned
///   `delete.retention.ms` ago: the horizon tombstones use (`clean_into`).
/// - A marker of a producer whose last entry is a marker ([`TxnFacts::marker_last`], same
///   epoch) is kept whole, so that the producer's epoch and coordinator epoch are rebuilt by a
///   replay (Kafka keeps it as an empty control batch; chronik rebuilds producer state from the
///   log alone and keeps the marker's record).
///
/// The batches of open transactions are kept unchanged and enter no key map; records of aborted
/// transactions are removed (their producer's last batch kept empty, like any other).
pub(crate) struct TxnTracker<'a> {
    facts: &'a TxnFacts,
    /// `facts.aborted` indexes by first offset.
    by_first: Vec<usize>,
    next_aborted: usize,
    /// Producer id → (index in `facts.aborted`, a batch of it was read).
    ongoing_aborted: HashMap<i64, (usize, bool)>,
    ongoing_committed: std::collections::HashSet<i64>,
}

impl<'a> TxnTracker<'a> {
    pub(crate) fn new(facts: &'a TxnFacts) -> Self {
        let mut by_first: Vec<usize> = (0..facts.aborted.len()).collect();
        by_first.sort_by_key(|&i| (facts.aborted[i].1, facts.aborted[i].2));
        TxnTracker {
            facts,
            by_first,
            next_aborted: 0,
            ongoing_aborted: HashMap::new(),
            ongoing_committed: Default::default(),
        }
    }

    fn consume_aborted_up_to(&mut self, offset: i64) {
        while let Some(&i) = self.by_first.get(self.next_aborted) {
            let (pid, first, _) = self.facts.aborted[i];
            if first > offset {
                break;
            }
            self.ongoing_aborted.insert(pid, (i, false));
            self.next_aborted += 1;
        }
    }

    /// A data batch was read (Kafka's `onBatchRead`).
    pub(crate) fn on_batch(&mut self, h: &BatchHeader) {
        self.consume_aborted_up_to(h.last_offset());
        if !h.is_transactional() {
            return;
        }
        match self.ongoing_aborted.get_mut(&h.producer_id) {
            Some((i, seen)) if h.base_offset <= self.facts.aborted[*i].2 => *seen = true,
            _ => {
                self.ongoing_committed.insert(h.producer_id);
            }
        }
    }

    /// A control batch was read (Kafka's `onControlBatchRead`): whether it may be discarded
    /// (before the horizon), and whether it is an ABORT marker.
    pub(crate) fn on_control(&mut self, h: &BatchHeader, data: &[u8]) -> (bool, bool) {
        self.consume_aborted_up_to(h.last_offset());
        if h.record_count == 0 {
            return (true, false);
        }
        let pid = h.producer_id;
        match control_type(data) {
            Some(CONTROL_COMMIT) => (!self.ongoing_committed.remove(&pid), false),
            Some(CONTROL_ABORT) => {
                let seen = match self.ongoing_aborted.remove(&pid) {
                    Some((i, seen)) if self.facts.aborted[i].2 == h.base_offset => seen,
                    Some(other) => {
                        // Not this marker's transaction: leave it for its own marker.
                        self.ongoing_aborted.insert(pid, other);
                        false
                    }
                    None => false,
                };
                // A producer's batches before this ABORT that were not in the aborted list
                // (e.g. an aborted list rebuilt after they were already gone) were marked
                // committed: they belong to this transaction.
                let committed = self.ongoing_committed.remove(&pid);
                (!seen && !committed, true)
            }
            _ => (false, false),
        }
    }

    /// Whether a marker of producer `h` must stay as its producer's last entry.
    pub(crate) fn last_of_producer(&self, h: &BatchHeader) -> bool {
        self.facts.marker_last.get(&h.producer_id) == Some(&h.producer_epoch)
    }
}

/// Kafka's control record types (`ControlRecordType`, as `partition::txn` writes them).
const CONTROL_ABORT: i16 = 0;
const CONTROL_COMMIT: i16 = 1;

/// The type of a control batch's first record (key: version i16, type i16), if it has one.
fn control_type(data: &[u8]) -> Option<i16> {
    let recs = crate::log::batch::records(data).ok()?;
    let key = recs.first()?.key?;
    (key.len() >= 4).then(|| i16::from_be_bytes([key[2], key[3]]))
}

/// Reads the frames of a sealed segment in order, checking each CRC and index.
struct Frames {
    path: PathBuf,
    r: BufReader<File>,
    next_index: u64,
    left: usize,
}

impl Frames {
    fn open(dir: &Path, s: &SegmentSummary) -> Result<Frames> {
        let path = dir.join(file_name(s.base_index, "log"));
        let f = File::open(&path).ctx(&path)?;
        Ok(Frames { r: BufReader::with_capacity(1 << 20, f), path, next_index: s.base_index, left: s.entries })
    }

    /// The next entry and its frame size, or None after the segment's last entry.
    fn next(&mut self) -> Result<Option<(Entry, u64)>> {
        if self.left == 0 {
            return Ok(None);
        }
        let mut h = [0u8; FRAME_HEADER_LEN];
        self.r.read_exact(&mut h).ctx(&self.path)?;
        let fh = FrameHeader::decode(&h).map_err(|why| LogError::corrupt(&self.path, 0, why))?;
        let mut payload = vec![0u8; (fh.data_len + fh.ctx_len) as usize];
        self.r.read_exact(&mut payload).ctx(&self.path)?;
        let (data, ctx) = payload.split_at(fh.data_len as usize);
        if frame_crc(&h, data, ctx) != fh.crc || fh.index != self.next_index {
            return Err(LogError::corrupt(
                &self.path,
                0,
                format!("frame of entry {} fails its checks", self.next_index),
            ));
        }
        let payload = Bytes::from(payload);
        let e = Entry {
            index: fh.index,
            term: fh.term,
            entry_type: EntryType::from_i32(i32::from(fh.entry_type)).unwrap_or_default(),
            data: payload.slice(..fh.data_len as usize),
            context: payload.slice(fh.data_len as usize..),
            ..Default::default()
        };
        self.next_index += 1;
        self.left -= 1;
        Ok(Some((e, u64::from(fh.frame_len))))
    }
}

/// The batch an entry holds, if any (normal entries with data; not a compacted entry).
fn batch_of(e: &Entry) -> Option<&[u8]> {
    (e.entry_type == EntryType::EntryNormal && !e.data.is_empty()).then_some(&e.data[..])
}

/// Pass 1: the key map over the dirty part (offsets from `from`). Returns the offset up to which
/// the map covers the log: the end of the dirty part, or where the map became full.
fn build_map(job: &CleanJob, from: i64, map: &mut OffsetMap, io: &mut dyn FnMut(u64)) -> Result<(i64, u64)> {
    let mut read = 0;
    let end = job.segments.last().map_or(from, |s| s.offset_end);
    for s in job.segments.iter().filter(|s| s.offset_end > from) {
        let mut frames = Frames::open(&job.dir, s)?;
        while let Some((e, len)) = frames.next()? {
            read += len;
            io(len);
            let Some(data) = batch_of(&e) else { continue };
            let Ok(d) = Decoded::new(data) else { continue };
            // Markers, and records of transactions that are open or aborted, enter no map: they
            // must not shadow an older value (see `TxnTracker`).
            let h = d.header;
            if h.is_control()
                || (h.is_transactional() && job.txns.fate(h.producer_id, h.base_offset) != TxnFate::Committed)
            {
                continue;
            }
            for r in d.records() {
                let Some(key) = r.key.filter(|_| r.offset >= from) else { continue };
                if !map.put(key, r.offset) {
                    return Ok((r.offset, read));
                }
            }
        }
    }
    Ok((end, read))
}

/// One cleaning run. `buffer_bytes` bounds the key map; `io(bytes)` is called for every read
/// and written chunk (the rate limit). Leaves `.swap` files for the segments in the outcome.
pub fn clean(job: &CleanJob, buffer_bytes: usize, io: &mut dyn FnMut(u64)) -> Result<CleanOutcome> {
    let mut out = CleanOutcome { checkpoint: job.checkpoint.clone(), ..Default::default() };
    match clean_into(job, buffer_bytes, io, &mut out) {
        Ok(()) => Ok(out),
        Err(e) => {
            // Nothing of a failed run is kept: its swaps are not committed.
            for (base, _) in &out.cleaned {
                let _ = super::swap::discard(&job.dir, *base);
            }
            Err(e)
        }
    }
}

fn clean_into(job: &CleanJob, buffer_bytes: usize, io: &mut dyn FnMut(u64), out: &mut CleanOutcome) -> Result<()> {
    let from = job.checkpoint.cleaned_offset.max(job.segments.first().map_or(0, |s| s.offset_start));
    let dirty_span = job.segments.last().map_or(0, |s| s.offset_end).saturating_sub(from).max(0) as usize;
    let mut map = OffsetMap::new(buffer_bytes, dirty_span);
    let (end, mut bytes_read) = build_map(job, from, &mut map, io)?;
    if end <= from {
        return Ok(());
    }
    let mut txns = TxnTracker::new(&job.txns);
    for s in job.segments.iter().filter(|s| s.offset_start < end) {
        let first_cleaned = job.checkpoint.cleaned_at.get(&s.base_index).copied();
        let drop_tombstones =
            first_cleaned.is_some_and(|t| job.now_ms >= t.saturating_add(job.settings.delete_retention_ms));
        let mut frames = Frames::open(&job.dir, s)?;
        let mtime = std::fs::metadata(&frames.path).and_then(|m| m.modified()).ok();
        let mut w = CleanedWriter::create(&job.dir, s.base_index)?;
        let mut changed = false;
        let mut removed = 0u64;
        let mut next = s.offset_start;
        while let Some((e, len)) = frames.next()? {
            bytes_read += len;
            io(len);
            let mut dropped = None;
            let cleaned = rewrite_entry(job, &map, &mut txns, drop_tombstones, &e, &mut removed, &mut dropped);
            if let Some((pid, offset, abort)) = dropped {
                out.markers_removed += 1;
                if abort {
                    out.dropped_aborts.push((s.base_index, pid, offset));
                }
            }
            let (ne, off) = match cleaned {
                Some(x) => {
                    changed = true;
                    x
                }
                None => {
                    let off = entry_offsets(true, e.entry_type, &e.data, &e.context, next)
                        .map_err(|reason| LogError::InvalidBatch { index: e.index, reason })?;
                    (e, off)
                }
            };
            next = off.offset_end;
            w.push(&ne, off)?;
        }
        if !changed {
            w.abort()?;
        } else {
            io(w.size());
            out.bytes_written += w.size();
            out.records_removed += removed;
            let metas = w.finish(job.index_interval_bytes, mtime)?;
            out.cleaned.push((s.base_index, metas));
        }
        // Tombstones of this segment are kept delete.retention.ms from its first cleaning.
        out.checkpoint.cleaned_at.entry(s.base_index).or_insert(job.now_ms);
    }
    let first = job.segments.first().map_or(0, |s| s.base_index);
    out.checkpoint.cleaned_at.retain(|b, _| *b >= first);
    out.checkpoint.cleaned_offset = end;
    out.bytes_read = bytes_read;
    Ok(())
}

/// The cleaned form of entry `e`, None when it stays as it is. Entries without a batch and
/// batches that do not decode stay as they are. `drop_tombstones`: the segment's delete horizon
/// has passed (tombstones and markers that may go are removed). A removed marker is reported
/// in `dropped` (producer id, offset, is an ABORT).
fn rewrite_entry(
    job: &CleanJob,
    map: &OffsetMap,
    txns: &mut TxnTracker<'_>,
    drop_tombstones: bool,
    e: &Entry,
    removed: &mut u64,
    dropped: &mut Option<(i64, i64, bool)>,
) -> Option<(Entry, EntryOffsets)> {
    let data = batch_of(e)?;
    let h = BatchHeader::parse(data).ok()?;
    if !h.is_control() {
        txns.on_batch(&h);
    }
    let d = Decoded::new(data).ok()?;
    let fate = h.is_transactional().then(|| job.txns.fate(h.producer_id, h.base_offset));
    let result = if h.is_control() {
        let (may_go, abort) = txns.on_control(&h, data);
        if may_go && drop_tombstones && !txns.last_of_producer(&h) {
            *dropped = Some((h.producer_id, h.base_offset, abort));
            Rewritten::Removed
        } else {
            Rewritten::Unchanged
        }
    } else if fate == Some(TxnFate::Open) {
        Rewritten::Unchanged
    } else {
        let keep_empty = h.has_producer_id() && job.producer_last.get(&h.producer_id) == Some(&h.last_offset());
        let aborted = fate == Some(TxnFate::Aborted);
        let mut keep = |r: &super::rewrite::RecordRef<'_>| match r.key {
            _ if aborted => false,
            Some(k) => map.get(k).is_none_or(|latest| r.offset >= latest) && !(r.tombstone && drop_tombstones),
            None => false,
        };
        d.rewrite(data, &mut keep, keep_empty).ok()?
    };
    let mut ne = e.clone();
    let off = match result {
        Rewritten::Unchanged => return None,
        Rewritten::Shrunk(b) | Rewritten::Empty(b) => {
            let nh = BatchHeader::parse(&b).ok()?;
            *removed += (h.record_count - nh.record_count).max(0) as u64;
            ne.data = b;
            EntryOffsets { offset_start: nh.base_offset, offset_end: nh.next_offset(), max_ts: nh.max_timestamp }
        }
        Rewritten::Removed => {
            if !h.is_control() {
                *removed += h.record_count.max(0) as u64;
            }
            let end = h.next_offset();
            let mut ctx = COMPACTED_ENTRY.to_vec();
            ctx.extend_from_slice(&end.to_be_bytes());
            ne.data = Bytes::new();
            ne.context = Bytes::from(ctx);
            EntryOffsets { offset_start: end, offset_end: end, max_ts: NO_TIMESTAMP }
        }
    };
    debug_assert_eq!(ne.entry_type.value(), EntryType::EntryNormal.value());
    Some((ne, off))
}
