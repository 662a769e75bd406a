//! The per-entry metadata table ([`EntryMeta`]) and its two on-disk forms: the dense `.index`
//! (one 64-byte record per raft entry) and the sparse `.timeindex` (16-byte records).
//!
//! `.index` record, big-endian, 64 bytes:
//! `index u64 | term u64 | frame pos u64 | data_len u32 | ctx_len u32 | offset_start i64 |
//!  offset_end i64 | max_timestamp i64 | entry_type u8 | 3 reserved bytes | crc32c u32`
//! (the CRC covers bytes 0..60). The index is dense — one record per entry — because the broker
//! keeps the whole table in memory, and this lets a sealed segment load without reading its
//! `.log`. It is only trusted when [`decode_index`] finds every record valid and the frame
//! positions chain exactly to the `.log` size.
//!
//! `.timeindex` record, big-endian, 16 bytes: `max timestamp so far i64 | base offset i64`. A
//! record is emitted after at least `index_interval_bytes` of log data since the previous one, and
//! only when the running maximum timestamp grew. Records are a deterministic function of the entry
//! table, so the in-memory copy is recomputed from it on load; the file is never trusted.

use super::be_u32;
use super::segment::FRAME_HEADER_LEN;
use super::{be_i64, be_u64};

/// Size of one `.index` record.
pub const INDEX_RECORD_LEN: usize = 64;
/// Size of one `.timeindex` record.
pub const TIME_RECORD_LEN: usize = 16;
/// `max_ts` of entries that carry no batch.
pub const NO_TIMESTAMP: i64 = -1;

/// Everything the log knows about one entry without reading its frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryMeta {
    pub term: u64,
    /// Position of the frame in the segment's `.log`.
    pub pos: u64,
    pub data_len: u32,
    pub ctx_len: u32,
    /// raft `EntryType` value.
    pub entry_type: u8,
    /// Base offset of the batch; for an entry without a batch, the log end offset at that point.
    pub offset_start: i64,
    /// Last offset of the batch + 1; equal to `offset_start` for an entry without a batch.
    pub offset_end: i64,
    /// Max timestamp of the batch, [`NO_TIMESTAMP`] when none.
    pub max_ts: i64,
}

impl EntryMeta {
    /// Whole frame size on disk (header + data + context).
    pub fn frame_len(&self) -> u64 {
        FRAME_HEADER_LEN as u64 + u64::from(self.data_len) + u64::from(self.ctx_len)
    }

    /// Whether the entry holds a Kafka batch (it always covers at least one offset).
    pub fn is_batch(&self) -> bool {
        self.offset_end > self.offset_start
    }

    /// Position of the entry data (the batch) in the `.log`.
    pub fn data_pos(&self) -> u64 {
        self.pos + FRAME_HEADER_LEN as u64
    }
}

/// Appends the `.index` record of entry `index` to `out`.
pub fn encode_index_record(index: u64, m: &EntryMeta, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&index.to_be_bytes());
    out.extend_from_slice(&m.term.to_be_bytes());
    out.extend_from_slice(&m.pos.to_be_bytes());
    out.extend_from_slice(&m.data_len.to_be_bytes());
    out.extend_from_slice(&m.ctx_len.to_be_bytes());
    out.extend_from_slice(&m.offset_start.to_be_bytes());
    out.extend_from_slice(&m.offset_end.to_be_bytes());
    out.extend_from_slice(&m.max_ts.to_be_bytes());
    out.extend_from_slice(&[m.entry_type, 0, 0, 0]);
    let crc = crc32c::crc32c(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// Decodes a whole `.index` file of the segment starting at `base_index` whose `.log` is
/// `log_size` bytes long. Returns why it cannot be trusted instead of the table when any record
/// is damaged or the records do not describe exactly the `.log`.
pub fn decode_index(base_index: u64, bytes: &[u8], log_size: u64) -> Result<Vec<EntryMeta>, String> {
    if bytes.len() % INDEX_RECORD_LEN != 0 {
        return Err(format!("size {} is not a multiple of {INDEX_RECORD_LEN}", bytes.len()));
    }
    let mut metas: Vec<EntryMeta> = Vec::with_capacity(bytes.len() / INDEX_RECORD_LEN);
    let mut next_pos = 0u64;
    for (i, r) in bytes.chunks_exact(INDEX_RECORD_LEN).enumerate() {
        if crc32c::crc32c(&r[..60]) != be_u32(r, 60) {
            return Err(format!("record {i} fails its crc"));
        }
        let index = be_u64(r, 0);
        if index != base_index + i as u64 {
            return Err(format!("record {i} has index {index}"));
        }
        let m = decode_record(r);
        if m.pos != next_pos {
            return Err(format!("record {i} at position {} instead of {next_pos}", m.pos));
        }
        if m.entry_type > 2 || m.offset_end < m.offset_start {
            return Err(format!("record {i} has impossible values"));
        }
        if let Some(p) = metas.last() {
            if m.term < p.term || m.offset_start < p.offset_end {
                return Err(format!("record {i} goes backwards"));
            }
        }
        next_pos += m.frame_len();
        metas.push(m);
    }
    if next_pos != log_size {
        return Err(format!("records cover {next_pos} bytes, the log has {log_size}"));
    }
    Ok(metas)
}

/// The fields of one `.index` record (checks are the caller's).
fn decode_record(r: &[u8]) -> EntryMeta {
    EntryMeta {
        term: be_u64(r, 8),
        pos: be_u64(r, 16),
        data_len: be_u32(r, 24),
        ctx_len: be_u32(r, 28),
        offset_start: be_i64(r, 32),
        offset_end: be_i64(r, 40),
        max_ts: be_i64(r, 48),
        entry_type: r[56],
    }
}

/// The record of slot `slot` of an `.index` file of the segment starting at `base_index`, if it
/// is there and intact (its CRC, its index), whatever the other records hold. Recovery uses it to
/// keep a damaged frame's place and offsets when the frame itself fails its CRC.
pub fn index_record(base_index: u64, bytes: &[u8], slot: usize) -> Option<EntryMeta> {
    let r = bytes.get(slot * INDEX_RECORD_LEN..(slot + 1) * INDEX_RECORD_LEN)?;
    if crc32c::crc32c(&r[..60]) != be_u32(r, 60) || be_u64(r, 0) != base_index + slot as u64 {
        return None;
    }
    let m = decode_record(r);
    (m.entry_type <= 2 && m.offset_end >= m.offset_start).then_some(m)
}

/// One sparse time index point: every entry up to and including `slot` has max timestamp
/// `<= max_ts`, and `max_ts` is reached at or before `slot`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    pub max_ts: i64,
    pub slot: usize,
}

/// Decides when to emit `.timeindex` records while entries are appended.
#[derive(Debug, Clone)]
pub struct TimeIndexBuilder {
    interval: u64,
    bytes_since: u64,
    running_max: i64,
    last_recorded: i64,
}

impl TimeIndexBuilder {
    pub fn new(interval: u64) -> Self {
        TimeIndexBuilder { interval, bytes_since: 0, running_max: NO_TIMESTAMP, last_recorded: NO_TIMESTAMP }
    }

    /// Largest max timestamp seen so far ([`NO_TIMESTAMP`] if none).
    pub fn running_max(&self) -> i64 {
        self.running_max
    }

    /// Feeds entry `slot`; returns the record to emit after it, if any.
    pub fn observe(&mut self, slot: usize, m: &EntryMeta) -> Option<TimeEntry> {
        self.bytes_since += m.frame_len();
        if m.is_batch() && m.max_ts > self.running_max {
            self.running_max = m.max_ts;
        }
        if self.bytes_since >= self.interval && self.running_max > self.last_recorded {
            self.bytes_since = 0;
            self.last_recorded = self.running_max;
            return Some(TimeEntry { max_ts: self.running_max, slot });
        }
        None
    }

    /// Recomputes builder state and records from a whole entry table.
    pub fn rebuild(interval: u64, metas: &[EntryMeta]) -> (Self, Vec<TimeEntry>) {
        let mut b = TimeIndexBuilder::new(interval);
        let recs = metas.iter().enumerate().filter_map(|(slot, m)| b.observe(slot, m)).collect();
        (b, recs)
    }
}

/// Appends the `.timeindex` record for `t` (whose entry is `m`) to `out`.
pub fn encode_time_record(t: &TimeEntry, m: &EntryMeta, out: &mut Vec<u8>) {
    out.extend_from_slice(&t.max_ts.to_be_bytes());
    out.extend_from_slice(&m.offset_start.to_be_bytes());
}

/// First slot that can hold a batch with max timestamp `>= ts`, according to the time records.
pub fn time_scan_start(records: &[TimeEntry], ts: i64) -> usize {
    match records.partition_point(|r| r.max_ts < ts) {
        0 => 0,
        k => records[k - 1].slot + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(pos: u64, data_len: u32, start: i64, end: i64, ts: i64) -> EntryMeta {
        EntryMeta {
            term: 1,
            pos,
            data_len,
            ctx_len: 0,
            entry_type: 0,
            offset_start: start,
            offset_end: end,
            max_ts: ts,
        }
    }

    fn table() -> Vec<EntryMeta> {
        let mut v = Vec::new();
        let mut pos = 0;
        for i in 0..10i64 {
            let m = meta(pos, 100, i * 3, i * 3 + 3, 1000 + i);
            pos += m.frame_len();
            v.push(m);
        }
        v
    }

    #[test]
    fn index_round_trip() {
        let metas = table();
        let mut buf = Vec::new();
        for (i, m) in metas.iter().enumerate() {
            encode_index_record(7 + i as u64, m, &mut buf);
        }
        assert_eq!(buf.len(), 10 * INDEX_RECORD_LEN);
        let size = metas.last().map(|m| m.pos + m.frame_len()).unwrap();
        assert_eq!(decode_index(7, &buf, size).unwrap(), metas);
        assert_eq!(decode_index(7, &[], 0).unwrap(), vec![]);
    }

    #[test]
    fn index_inconsistencies_are_reported() {
        let metas = table();
        let mut buf = Vec::new();
        for (i, m) in metas.iter().enumerate() {
            encode_index_record(1 + i as u64, m, &mut buf);
        }
        let size = metas.last().map(|m| m.pos + m.frame_len()).unwrap();
        assert!(decode_index(2, &buf, size).is_err(), "wrong base");
        assert!(decode_index(1, &buf, size + 1).is_err(), "log longer than index");
        assert!(decode_index(1, &buf[..buf.len() - 3], size).is_err(), "partial record");
        let mut flipped = buf.clone();
        flipped[100] ^= 0x10;
        assert!(decode_index(1, &flipped, size).is_err(), "bad crc");
        let mut zeroed = buf;
        zeroed[64..128].fill(0);
        assert!(decode_index(1, &zeroed, size).is_err(), "zeroed record");
    }

    #[test]
    fn time_index_is_sparse_and_monotone() {
        let metas = table();
        let frame = metas[0].frame_len();
        // Interval of 3 frames: records after slots 2, 5, 8.
        let (b, recs) = TimeIndexBuilder::rebuild(3 * frame, &metas);
        assert_eq!(recs.iter().map(|r| r.slot).collect::<Vec<_>>(), vec![2, 5, 8]);
        assert_eq!(recs[0].max_ts, 1002);
        assert_eq!(b.running_max(), 1009);
        assert_eq!(time_scan_start(&recs, 0), 0);
        assert_eq!(time_scan_start(&recs, 1002), 0);
        assert_eq!(time_scan_start(&recs, 1003), 3);
        assert_eq!(time_scan_start(&recs, 1006), 6);
        assert_eq!(time_scan_start(&recs, 1009), 9);
        assert_eq!(time_scan_start(&recs, 5000), 9);
        let mut out = Vec::new();
        encode_time_record(&recs[1], &metas[5], &mut out);
        assert_eq!(out.len(), TIME_RECORD_LEN);
        assert_eq!(be_i64(&out, 0), 1005);
        assert_eq!(be_i64(&out, 8), 15);
    }

    #[test]
    fn time_index_skips_non_growing_timestamps() {
        let mut metas = table();
        for m in metas.iter_mut() {
            m.max_ts = 5;
        }
        let (_, recs) = TimeIndexBuilder::rebuild(1, &metas);
        assert_eq!(recs, vec![TimeEntry { max_ts: 5, slot: 0 }]);
    }
}
