//! The Kafka view of a [`PartitionLog`] of kind `KafkaBatches`: log start / end offsets, the
//! high watermark of a raft index, Fetch reads (whole batches, verbatim), ListOffsets by
//! timestamp, and iteration over the stored batches.
//!
//! Offsets come from the in-memory entry table: each entry covers `[offset_start, offset_end)`
//! (empty for entries without a batch), monotone over the whole log, so lookups are binary
//! searches. Reads verify each frame's CRC before handing out its batch. Batches whose writes
//! the disk writer has not reported done are served from memory (see `segment.rs`).

use bytes::{Bytes, BytesMut};

use super::index::{time_scan_start, EntryMeta};
use super::partition_log::{OnDamage, PartitionLog};
use super::{LogError, Result};

/// Upper bound of one positional read when iterating batches.
const ITER_CHUNK_BYTES: u64 = 4 << 20;

impl PartitionLog {
    fn first_meta(&self) -> Option<&EntryMeta> {
        self.segments.iter().find_map(|s| s.metas.first())
    }

    fn last_meta(&self) -> Option<&EntryMeta> {
        self.segments.iter().rev().find_map(|s| s.metas.last())
    }

    /// Offset at which the log starts: the first batch's base offset (unless compaction removed
    /// the first batches: their entries then cover no offsets, and like Kafka's log start offset it
    /// does not move on compaction; a fetch there gets the first surviving batch), or the
    /// DeleteRecords floor when it is higher (`records_start.rs`).
    pub fn log_start_offset(&self) -> i64 {
        self.first_meta()
            .map_or(self.start.start_offset, |m| m.offset_start.min(self.start.start_offset))
            .max(self.records_start)
    }

    /// Offset after the last batch in the log (the log end offset, uncommitted entries included).
    pub fn next_offset(&self) -> i64 {
        self.last_meta().map_or(self.start.start_offset, |m| m.offset_end)
    }

    /// Offset after every batch whose raft index is `<= index` (with the commit index: the
    /// high watermark).
    pub fn offset_after_index(&self, index: u64) -> i64 {
        if index < self.first_index() {
            return self.start.start_offset;
        }
        match self.meta(index) {
            Some(m) => m.offset_end,
            None => self.next_offset(),
        }
    }

    /// Segment and slot of the first entry whose offsets end after `offset`.
    fn find_offset(&self, offset: i64) -> (usize, usize) {
        let si = self.segments.partition_point(|s| s.metas.last().is_some_and(|m| m.offset_end <= offset));
        let slot = self.segments.get(si).map_or(0, |s| s.metas.partition_point(|m| m.offset_end <= offset));
        (si, slot)
    }

    /// The batches from the one containing the log start offset up to the last one ending at
    /// or before `max_offset`, as a plan to read them off the group's thread
    /// (`log/batch_plan.rs`): the same batches [`Self::read`] returns from the log start.
    pub fn batch_plan(&self, max_offset: i64) -> super::batch_plan::BatchPlan {
        use super::batch_plan::{BatchPlan, Piece};
        let mut plan = BatchPlan::default();
        let (mut si, mut slot) = self.find_offset(self.log_start_offset());
        while si < self.segments.len() {
            let seg = &self.segments[si];
            let written = seg.first_pending_slot();
            let mut slots = Vec::new();
            while slot < seg.len() {
                let m = seg.metas[slot];
                if m.is_batch() {
                    if m.offset_end > max_offset {
                        break;
                    }
                    if slot < written {
                        slots.push((slot, m));
                    } else {
                        if !slots.is_empty() {
                            let (log, base_index) = (seg.log_file().clone(), seg.base_index);
                            plan.pieces.push(Piece::File { log, base_index, slots: std::mem::take(&mut slots) });
                        }
                        let data = seg.pending_entry(slot).map(|e| e.data.clone()).unwrap_or_default();
                        plan.pieces.push(Piece::Memory(data));
                    }
                }
                slot += 1;
            }
            if !slots.is_empty() {
                plan.pieces.push(Piece::File { log: seg.log_file().clone(), base_index: seg.base_index, slots });
            }
            if slot < seg.len() {
                break;
            }
            si += 1;
            slot = 0;
        }
        plan
    }

    /// Kafka Fetch: whole batches from the one containing `offset`, concatenated as stored,
    /// stopping before a batch whose last offset is `>= max_offset` and once `max_bytes` is
    /// reached; the first batch is always returned whole even when larger than `max_bytes`.
    pub fn read(&self, offset: i64, max_bytes: usize, max_offset: i64) -> Result<Bytes> {
        let picked = self.pick(offset, max_bytes, max_offset)?;
        self.read_picked(&picked)
    }

    /// The batches a Fetch from `offset` returns (see [`Self::read`]) as a plan to read them
    /// off the group's thread (`log/batch_plan.rs`); a damaged frame the plan meets is then
    /// noted with [`Self::note_read_damage`]. The plan stops before an entry already known to
    /// be damaged, and fails when it would start at one, as a read does: a plan carried out
    /// without reading (`BatchPlan::chain`) never sends a known damaged batch.
    pub fn fetch_plan(&self, offset: i64, max_bytes: usize, max_offset: i64) -> Result<super::batch_plan::BatchPlan> {
        use super::batch_plan::{BatchPlan, Piece};
        let mut picked = self.pick(offset, max_bytes, max_offset)?;
        let first_damaged = {
            let damaged = self.damaged.lock().unwrap_or_else(|p| p.into_inner());
            if damaged.is_empty() {
                None
            } else {
                picked
                    .iter()
                    .position(|(si, slot)| damaged.contains_key(&(self.segments[*si].base_index + *slot as u64)))
            }
        };
        if let Some(k) = first_damaged {
            if k == 0 {
                let (si, slot) = picked[0];
                return Err(self.damage_error(self.segments[si].base_index + slot as u64));
            }
            picked.truncate(k);
        }
        let mut plan = BatchPlan::default();
        for (si, slot) in picked {
            let seg = &self.segments[si];
            plan.end_offset = seg.metas[slot].offset_end;
            if slot >= seg.first_pending_slot() {
                let data = seg.pending_entry(slot).map(|e| e.data.clone()).unwrap_or_default();
                plan.pieces.push(Piece::Memory(data));
                continue;
            }
            match plan.pieces.last_mut() {
                Some(Piece::File { base_index, slots, .. }) if *base_index == seg.base_index => {
                    slots.push((slot, seg.metas[slot]))
                }
                _ => plan.pieces.push(Piece::File {
                    log: seg.log_file().clone(),
                    base_index: seg.base_index,
                    slots: vec![(slot, seg.metas[slot])],
                }),
            }
        }
        Ok(plan)
    }

    /// A plan's read found entry `index` damaged (`e`, a corrupt frame): noted as the log's own
    /// reads note damage (logged once, repaired from a peer).
    pub fn note_read_damage(&self, index: u64, e: LogError) {
        if let Some((si, slot)) = self.locate(index) {
            let _ = self.on_bad_frame(&self.segments[si], slot, e, OnDamage::Stop);
        }
    }

    /// The batches of a Fetch, as (segment, slot).
    fn pick(&self, offset: i64, max_bytes: usize, max_offset: i64) -> Result<Vec<(usize, usize)>> {
        let (log_start, log_end) = (self.log_start_offset(), self.next_offset());
        if offset < log_start || offset > log_end {
            return Err(LogError::OffsetOutOfRange { offset, log_start, log_end });
        }
        let (mut si, mut slot) = self.find_offset(offset);
        let mut picked: Vec<(usize, usize)> = Vec::new();
        let mut total = 0usize;
        'pick: while si < self.segments.len() {
            let seg = &self.segments[si];
            while slot < seg.len() {
                let m = &seg.metas[slot];
                if m.is_batch() {
                    let len = m.data_len as usize;
                    let too_big = total > 0 && total.saturating_add(len) > max_bytes;
                    if m.offset_end > max_offset || too_big {
                        break 'pick;
                    }
                    picked.push((si, slot));
                    total += len;
                    if total >= max_bytes {
                        break 'pick;
                    }
                }
                slot += 1;
            }
            si += 1;
            slot = 0;
        }
        Ok(picked)
    }

    /// Reads the picked batches with one positional read per segment.
    fn read_picked(&self, picked: &[(usize, usize)]) -> Result<Bytes> {
        let total = picked.iter().map(|(si, slot)| self.segments[*si].metas[*slot].data_len as usize).sum();
        let mut out = BytesMut::with_capacity(total);
        let mut i = 0;
        while i < picked.len() {
            let si = picked[i].0;
            let seg = &self.segments[si];
            let written = seg.first_pending_slot();
            if picked[i].1 >= written {
                // Not written yet: served from memory, never from the file.
                let data = seg.pending_entry(picked[i].1).map(|e| e.data.clone()).unwrap_or_default();
                if picked.len() == 1 {
                    return Ok(data);
                }
                out.extend_from_slice(&data);
                i += 1;
                continue;
            }
            let j = i + picked[i..].iter().take_while(|p| p.0 == si && p.1 < written).count();
            let span = match seg.read_frames(picked[i].1, picked[j - 1].1 + 1) {
                Ok(span) => span,
                // Unreadable as a whole (a short file): read up to the first bad frame.
                Err(_) => {
                    let mut ents = Vec::new();
                    let (lo, hi) = (picked[i].1, picked[j - 1].1 + 1);
                    seg.read_entries_with(lo, hi, &mut ents, &mut |k, e| self.on_bad_frame(seg, k, e, OnDamage::Stop))?;
                    let wanted: Vec<u64> = picked[i..j].iter().map(|p| seg.base_index + p.1 as u64).collect();
                    let got: Vec<_> = ents.into_iter().filter(|e| wanted.contains(&e.index)).map(|e| e.data).collect();
                    if got.is_empty() && i == 0 {
                        return Err(self.damage_error(seg.base_index + lo as u64));
                    }
                    got.iter().for_each(|d| out.extend_from_slice(d));
                    return Ok(out.freeze());
                }
            };
            let base = seg.metas[picked[i].1].pos;
            for (k, &(_, slot)) in picked[i..j].iter().enumerate() {
                let at = (seg.metas[slot].pos - base) as usize;
                let data = match seg.check_frame(&span, at, slot) {
                    Ok((data, _)) => data,
                    // A damaged batch is never served: the batches before it are, and a read that
                    // starts at it fails (KAFKA_STORAGE_ERROR for that range only).
                    Err(e) => match self.on_bad_frame(seg, slot, e, OnDamage::Stop)? {
                        _ if i + k == 0 => return Err(self.damage_error(seg.base_index + slot as u64)),
                        _ => return Ok(out.freeze()),
                    },
                };
                if picked.len() == 1 {
                    return Ok(data);
                }
                out.extend_from_slice(&data);
            }
            i = j;
        }
        Ok(out.freeze())
    }

    /// The error a read of damaged entry `index` fails with.
    fn damage_error(&self, index: u64) -> LogError {
        match self.damaged.lock().unwrap_or_else(|p| p.into_inner()).get(&index) {
            Some(d) => LogError::Corrupt { segment: d.segment.clone(), position: d.position, reason: d.reason.clone() },
            None => LogError::Invalid(format!("entry {index} cannot be read")),
        }
    }

    /// ListOffsets by timestamp: the first batch whose max timestamp is `>= ts`, as
    /// (its base offset, its max timestamp).
    pub fn offset_for_timestamp(&self, ts: i64) -> Option<(i64, i64)> {
        let seg = self.segments.iter().find(|s| s.largest_timestamp() >= ts)?;
        let from = time_scan_start(&seg.time_entries, ts).min(seg.len());
        seg.metas[from..].iter().find(|m| m.is_batch() && m.max_ts >= ts).map(|m| (m.offset_start, m.max_ts))
    }

    /// ListOffsets `MAX_TIMESTAMP` (-3) from the in-memory table, without reading the log:
    /// among batches whose base offset is `< max_offset` (the high watermark), the one with the
    /// largest max timestamp (the later one on ties), as (its last offset, its max timestamp).
    pub fn max_timestamp_batch(&self, max_offset: i64) -> Option<(i64, i64)> {
        self.segments
            .iter()
            .flat_map(|s| s.metas.iter())
            .take_while(|m| m.offset_start < max_offset)
            .filter(|m| m.is_batch())
            .fold(None, |best: Option<&EntryMeta>, m| match best {
                Some(b) if b.max_ts > m.max_ts => Some(b),
                _ => Some(m),
            })
            .map(|m| (m.offset_end - 1, m.max_ts))
    }

    /// Calls `f(raft index, whole batch)` for every stored batch, oldest first (for rebuilding
    /// producer state at start). Frames are read in chunks and CRC-checked.
    pub fn for_each_batch(&self, mut f: impl FnMut(u64, &[u8])) -> Result<()> {
        for seg in &self.segments {
            let written = seg.first_pending_slot();
            let mut lo = 0;
            while lo < written {
                let start = seg.metas[lo].pos;
                let mut hi = lo + 1;
                while hi < written && seg.metas[hi].pos + seg.metas[hi].frame_len() - start <= ITER_CHUNK_BYTES {
                    hi += 1;
                }
                let span = seg.read_frames(lo, hi)?;
                for slot in lo..hi {
                    let m = &seg.metas[slot];
                    if m.is_batch() {
                        let (data, _) = seg.check_frame(&span, (m.pos - start) as usize, slot)?;
                        f(seg.base_index + slot as u64, &data);
                    }
                }
                lo = hi;
            }
            for slot in written..seg.len() {
                if let Some(e) = seg.pending_entry(slot).filter(|_| seg.metas[slot].is_batch()) {
                    f(seg.base_index + slot as u64, &e.data);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::log::batch::BatchHeader;
    use crate::log::partition_log::tests::{batch_entry, fill, logger, noop, opts};
    use crate::log::{LogError, PartitionLog};

    fn bases(bytes: &[u8]) -> Vec<i64> {
        let mut v = Vec::new();
        let mut rest = bytes;
        while rest.len() >= 12 {
            let len = i32::from_be_bytes(rest[8..12].try_into().unwrap()) as usize + 12;
            v.push(BatchHeader::parse(&rest[..len]).unwrap().base_offset);
            rest = &rest[len..];
        }
        assert!(rest.is_empty());
        v
    }

    fn log_with_batches(seg_bytes: u64) -> (tempfile::TempDir, PartitionLog) {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = PartitionLog::open(dir.path(), opts(seg_bytes), &logger()).unwrap();
        // index 1: no-op; 2..=6: batches of 2 offsets: 0-1, 2-3, 4-5, 6-7, 8-9; 7: no-op; 8: 10-14
        log.append(&[noop(1, 1)]).unwrap();
        fill(&mut log, 2, 5, 1);
        log.append(&[noop(7, 2), batch_entry(8, 2, 10, 5, 3000)]).unwrap();
        (dir, log)
    }

    #[test]
    fn offsets_and_high_watermark() {
        let (_d, log) = log_with_batches(1 << 20);
        assert_eq!(log.log_start_offset(), 0);
        assert_eq!(log.next_offset(), 15);
        assert_eq!(log.offset_after_index(0), 0);
        assert_eq!(log.offset_after_index(1), 0);
        assert_eq!(log.offset_after_index(2), 2);
        assert_eq!(log.offset_after_index(6), 10);
        assert_eq!(log.offset_after_index(7), 10);
        assert_eq!(log.offset_after_index(8), 15);
        assert_eq!(log.offset_after_index(100), 15);
    }

    #[test]
    fn read_returns_whole_batches() {
        for seg_bytes in [1 << 20, 300] {
            let (_d, log) = log_with_batches(seg_bytes);
            let all = log.read(0, usize::MAX, i64::MAX).unwrap();
            assert_eq!(bases(&all), vec![0, 2, 4, 6, 8, 10]);
            // An offset inside a batch returns that batch.
            assert_eq!(bases(&log.read(3, usize::MAX, i64::MAX).unwrap()), vec![2, 4, 6, 8, 10]);
            assert_eq!(bases(&log.read(12, usize::MAX, i64::MAX).unwrap()), vec![10]);
            // The batch is returned verbatim.
            let e = log.entries(8, 9, None).unwrap();
            assert_eq!(log.read(14, 1, i64::MAX).unwrap(), e[0].data);
            assert!(log.read(15, usize::MAX, i64::MAX).unwrap().is_empty());
        }
    }

    #[test]
    fn read_limits() {
        let (_d, log) = log_with_batches(300);
        // max_bytes smaller than one batch still returns the first whole batch.
        assert_eq!(bases(&log.read(0, 1, i64::MAX).unwrap()), vec![0]);
        assert_eq!(bases(&log.read(0, 0, i64::MAX).unwrap()), vec![0]);
        // Exactly two batches (101 bytes each), then stop.
        assert_eq!(bases(&log.read(0, 202, i64::MAX).unwrap()), vec![0, 2]);
        assert_eq!(bases(&log.read(0, 250, i64::MAX).unwrap()), vec![0, 2]);
        // max_offset (high watermark) excludes batches whose last offset is >= it.
        assert_eq!(bases(&log.read(0, usize::MAX, 6).unwrap()), vec![0, 2, 4]);
        assert_eq!(bases(&log.read(0, usize::MAX, 7).unwrap()), vec![0, 2, 4]);
        assert_eq!(bases(&log.read(0, usize::MAX, 8).unwrap()), vec![0, 2, 4, 6]);
        assert!(log.read(4, usize::MAX, 4).unwrap().is_empty());
        assert!(log.read(0, usize::MAX, 0).unwrap().is_empty());
        let hw = log.offset_after_index(4);
        assert_eq!(bases(&log.read(0, usize::MAX, hw).unwrap()), vec![0, 2, 4]);
        for bad in [-1, 16] {
            let err = log.read(bad, 100, i64::MAX).unwrap_err();
            assert!(matches!(err, LogError::OffsetOutOfRange { log_start: 0, log_end: 15, .. }));
        }
    }

    #[test]
    fn offset_for_timestamp_finds_first_batch() {
        let (_d, mut log) = log_with_batches(300);
        // Batches at indexes 2..=6 have max timestamps 1002..=1006, index 8 has 3000.
        assert_eq!(log.offset_for_timestamp(0), Some((0, 1002)));
        assert_eq!(log.offset_for_timestamp(1002), Some((0, 1002)));
        assert_eq!(log.offset_for_timestamp(1004), Some((4, 1004)));
        assert_eq!(log.offset_for_timestamp(1007), Some((10, 3000)));
        assert_eq!(log.offset_for_timestamp(3001), None);
        // Timestamps need not be monotone: the first batch reaching ts wins.
        log.append(&[batch_entry(9, 2, 15, 1, 500), batch_entry(10, 2, 16, 1, 9000)]).unwrap();
        assert_eq!(log.offset_for_timestamp(3001), Some((16, 9000)));
        assert_eq!(log.offset_for_timestamp(600), Some((0, 1002)));
    }

    #[test]
    fn max_timestamp_batch_uses_the_table() {
        let (_d, mut log) = log_with_batches(300);
        assert_eq!(log.max_timestamp_batch(i64::MAX), Some((14, 3000)));
        assert_eq!(log.max_timestamp_batch(10), Some((9, 1006)));
        assert_eq!(log.max_timestamp_batch(0), None);
        log.append(&[batch_entry(9, 2, 15, 1, 3000)]).unwrap();
        assert_eq!(log.max_timestamp_batch(i64::MAX), Some((15, 3000)), "later on ties");
    }

    #[test]
    fn for_each_batch_visits_batches_only() {
        let (_d, log) = log_with_batches(300);
        let mut seen = Vec::new();
        log.for_each_batch(|index, batch| {
            seen.push((index, BatchHeader::parse(batch).unwrap().base_offset));
        })
        .unwrap();
        assert_eq!(seen, vec![(2, 0), (3, 2), (4, 4), (5, 6), (6, 8), (8, 10)]);
    }

    #[test]
    fn reopen_restores_kafka_view() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = PartitionLog::open(dir.path(), opts(300), &logger()).unwrap();
        log.append(&[noop(1, 1)]).unwrap();
        fill(&mut log, 2, 5, 1);
        let before = log.read(0, usize::MAX, i64::MAX).unwrap();
        let terms: Vec<_> = (0..=7).map(|i| log.term(i)).collect();
        drop(log);
        let (log, rep) = PartitionLog::open(dir.path(), opts(300), &logger()).unwrap();
        assert_eq!(rep.truncated_bytes, 0);
        assert_eq!(rep.entries, 6);
        assert_eq!((log.first_index(), log.last_index()), (1, 6));
        assert_eq!((0..=7).map(|i| log.term(i)).collect::<Vec<_>>(), terms);
        assert_eq!((log.log_start_offset(), log.next_offset()), (0, 10));
        assert_eq!(log.read(0, usize::MAX, i64::MAX).unwrap(), before);
        assert_eq!(log.offset_for_timestamp(1004), Some((4, 1004)));
    }
}
