//! One segment of a partition log: its three files (`.log`, `.index`, `.timeindex`), the
//! in-memory entry table, the frame format, appends (without fsync), truncation, positional
//! reads and per-file dirty tracking for group commit.
//!
//! Appends and truncations change the entry table at once and return [`WriteOp`]s for the disk
//! writer (see `write.rs`): the frames go to `.log` at the positions the table gives them, the
//! records to `.index` / `.timeindex` at theirs. Until the writer reports an append done
//! ([`Segment::release`]), its entries stay in memory (`pending`, a suffix of the table) and are
//! read from there: a file range is only read once it has been written.
//!
//! Frame layout in `.log` (big-endian, 36-byte header):
//! `frame_len u32 | crc32c u32 | term u64 | index u64 | entry_type u8 | version u8 (=1) |
//!  reserved u16 | data_len u32 | ctx_len u32 | data | context`
//! `frame_len` is the whole frame (header included) and must equal `36 + data_len + ctx_len`; the
//! CRC-32C covers every byte after the CRC field (term .. end of context), so it detects torn
//! writes and flipped bits in the header and the payload alike.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use protobuf::ProtobufEnum;
use raft::eraftpb::{Entry, EntryType};

use super::file_cache::Opening;
use super::index::{
    encode_index_record, encode_time_record, EntryMeta, TimeEntry, TimeIndexBuilder, INDEX_RECORD_LEN, TIME_RECORD_LEN,
};
use super::write::{DiskFile, WriteOp};
use super::{be_u32, be_u64, IoContext, LogError, Result};

/// Size of the frame header.
pub const FRAME_HEADER_LEN: usize = 36;
const FRAME_VERSION: u8 = 1;

/// Name of the segment file with first raft index `base` and extension `ext`.
pub fn file_name(base: u64, ext: &str) -> String {
    format!("{base:020}.{ext}")
}

/// Parses a segment `.log` file name back into its base index.
pub fn parse_log_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".log")?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub frame_len: u32,
    pub crc: u32,
    pub term: u64,
    pub index: u64,
    pub entry_type: u8,
    pub data_len: u32,
    pub ctx_len: u32,
}

impl FrameHeader {
    /// Decodes and sanity-checks a header (not the CRC, which needs the payload).
    pub fn decode(h: &[u8]) -> std::result::Result<FrameHeader, String> {
        if h.len() < FRAME_HEADER_LEN {
            return Err(format!("short frame header ({} bytes)", h.len()));
        }
        let f = FrameHeader {
            frame_len: be_u32(h, 0),
            crc: be_u32(h, 4),
            term: be_u64(h, 8),
            index: be_u64(h, 16),
            entry_type: h[24],
            data_len: be_u32(h, 28),
            ctx_len: be_u32(h, 32),
        };
        let expect = FRAME_HEADER_LEN as u64 + u64::from(f.data_len) + u64::from(f.ctx_len);
        if u64::from(f.frame_len) != expect {
            return Err(format!("frame length {} does not match its parts", f.frame_len));
        }
        if h[25] != FRAME_VERSION || f.entry_type > 2 {
            return Err(format!("unknown frame version {} or entry type {}", h[25], f.entry_type));
        }
        Ok(f)
    }
}

/// Encodes the frame header of `e` (CRC computed over header fields, data and context).
pub fn encode_header(e: &Entry) -> [u8; FRAME_HEADER_LEN] {
    let mut h = [0u8; FRAME_HEADER_LEN];
    let len = FRAME_HEADER_LEN + e.data.len() + e.context.len();
    h[0..4].copy_from_slice(&(len as u32).to_be_bytes());
    h[8..16].copy_from_slice(&e.term.to_be_bytes());
    h[16..24].copy_from_slice(&e.index.to_be_bytes());
    h[24] = e.entry_type.value() as u8;
    h[25] = FRAME_VERSION;
    h[28..32].copy_from_slice(&(e.data.len() as u32).to_be_bytes());
    h[32..36].copy_from_slice(&(e.context.len() as u32).to_be_bytes());
    let crc = frame_crc(&h, &e.data, &e.context);
    h[4..8].copy_from_slice(&crc.to_be_bytes());
    h
}

/// CRC-32C of a frame: header bytes after the CRC field, then data, then context.
pub fn frame_crc(header: &[u8], data: &[u8], ctx: &[u8]) -> u32 {
    let c = crc32c::crc32c(&header[8..FRAME_HEADER_LEN]);
    crc32c::crc32c_append(crc32c::crc32c_append(c, data), ctx)
}

/// Offsets and timestamp of an entry about to be appended (its `EntryMeta` minus the position).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryOffsets {
    pub offset_start: i64,
    pub offset_end: i64,
    pub max_ts: i64,
}

/// One open segment.
#[derive(Debug)]
pub struct Segment {
    pub base_index: u64,
    pub log_path: PathBuf,
    pub index_path: PathBuf,
    pub time_path: PathBuf,
    log: Arc<DiskFile>,
    index: Arc<DiskFile>,
    time: Arc<DiskFile>,
    /// Bytes of `.log`, appends queued for the writer included.
    pub size: u64,
    /// One entry per raft index `base_index + slot`.
    pub metas: Vec<EntryMeta>,
    /// Entries of the last `pending.len()` slots, with the write sequence of their append: their
    /// frames may not be in `.log` yet, so they are read from here.
    pending: VecDeque<(u64, Entry)>,
    pub time_entries: Vec<TimeEntry>,
    time_builder: TimeIndexBuilder,
    interval: u64,
    log_dirty: bool,
    index_dirty: bool,
    time_dirty: bool,
}

/// Checks the frame of entry `index` (described by `m`, in the `.log` at `path`) at byte `at` of
/// `span` and returns its (data, context) as zero-copy slices of `span`.
pub(crate) fn check_frame_of(
    path: &Path,
    index: u64,
    m: &EntryMeta,
    span: &Bytes,
    at: usize,
) -> Result<(Bytes, Bytes)> {
    let fail = |why: String| LogError::corrupt(path, m.pos, why);
    let end = at + m.frame_len() as usize;
    if end > span.len() {
        return Err(fail("frame beyond the bytes read".into()));
    }
    let h = FrameHeader::decode(&span[at..at + FRAME_HEADER_LEN]).map_err(fail)?;
    if h.index != index || h.term != m.term || h.data_len != m.data_len || h.ctx_len != m.ctx_len {
        return Err(fail(format!("frame header does not match entry {index}")));
    }
    let d0 = at + FRAME_HEADER_LEN;
    let d1 = d0 + m.data_len as usize;
    if frame_crc(&span[at..d0], &span[d0..d1], &span[d1..end]) != h.crc {
        return Err(fail(format!("frame of entry {index} fails its crc")));
    }
    Ok((span.slice(d0..d1), span.slice(d1..end)))
}

/// A managed handle (`file_cache.rs`) of a segment file for positional reads and writes (never
/// `O_APPEND`: writes go to the position the entry table gives them). Only the `.log` keeps its
/// descriptor while it has unsynced writes: `.index` and `.timeindex` are derived from it.
fn open_rw(path: &Path, pins_dirty: bool) -> Result<Arc<DiskFile>> {
    DiskFile::managed(path, Opening::Create, pins_dirty)
}

impl Segment {
    /// Creates a new empty segment (any stale files with the same name are truncated).
    pub fn create(dir: &Path, base_index: u64, interval: u64) -> Result<Segment> {
        let mut s = Segment::open(dir, base_index, interval, Vec::new())?;
        for f in [&s.log, &s.index, &s.time] {
            f.truncate_new().ctx(&f.path)?;
        }
        s.size = 0;
        s.log_dirty = true;
        s.index_dirty = true;
        s.time_dirty = true;
        Ok(s)
    }

    /// Opens the files of an existing segment whose entry table is `metas` (already validated
    /// against the `.log`). The `.log` keeps its size; `.index` is not touched; `.timeindex` is
    /// rewritten when its length does not match the records derived from `metas`.
    pub fn open(dir: &Path, base_index: u64, interval: u64, metas: Vec<EntryMeta>) -> Result<Segment> {
        let log_path = dir.join(file_name(base_index, "log"));
        let index_path = dir.join(file_name(base_index, "index"));
        let time_path = dir.join(file_name(base_index, "timeindex"));
        let log = open_rw(&log_path, true)?;
        let index = open_rw(&index_path, false)?;
        let time = open_rw(&time_path, false)?;
        let size = metas.last().map_or(0, |m| m.pos + m.frame_len());
        let (time_builder, time_entries) = TimeIndexBuilder::rebuild(interval, &metas);
        let mut s = Segment {
            base_index,
            log_path,
            index_path,
            time_path,
            log,
            index,
            time,
            size,
            metas,
            pending: VecDeque::new(),
            time_entries,
            time_builder,
            interval,
            log_dirty: false,
            index_dirty: false,
            time_dirty: false,
        };
        let want = (s.time_entries.len() * TIME_RECORD_LEN) as u64;
        if s.time.metadata().ctx(&s.time_path)?.len() != want {
            s.rewrite_time_index()?;
        }
        Ok(s)
    }

    /// Rewrites `.index` from the entry table (after a rebuild by scanning).
    pub fn rewrite_index(&mut self) -> Result<()> {
        let mut buf = Vec::with_capacity(self.metas.len() * INDEX_RECORD_LEN);
        for (slot, m) in self.metas.iter().enumerate() {
            encode_index_record(self.base_index + slot as u64, m, &mut buf);
        }
        self.index.set_len(0).ctx(&self.index_path)?;
        self.index.write_all_at(&buf, 0).ctx(&self.index_path)?;
        self.index_dirty = true;
        Ok(())
    }

    /// Rewrites `.timeindex` from the in-memory records.
    pub fn rewrite_time_index(&mut self) -> Result<()> {
        let mut buf = Vec::with_capacity(self.time_entries.len() * TIME_RECORD_LEN);
        for t in &self.time_entries {
            encode_time_record(t, &self.metas[t.slot], &mut buf);
        }
        self.time.set_len(0).ctx(&self.time_path)?;
        self.time.write_all_at(&buf, 0).ctx(&self.time_path)?;
        self.time_dirty = true;
        Ok(())
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.metas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.metas.is_empty()
    }

    /// Raft index the next appended entry must have.
    pub fn next_index(&self) -> u64 {
        self.base_index + self.metas.len() as u64
    }

    /// Entry table slot of raft index `index`, if it is in this segment.
    pub fn slot(&self, index: u64) -> Option<usize> {
        let slot = index.checked_sub(self.base_index)? as usize;
        (slot < self.metas.len()).then_some(slot)
    }

    /// Largest batch max timestamp in the segment ([`super::index::NO_TIMESTAMP`] if none).
    pub fn largest_timestamp(&self) -> i64 {
        self.time_builder.running_max()
    }

    /// Appends `entries` (contiguous, starting at `next_index()`) with their offsets: the entry
    /// table grows at once, and the writes of the frames (zero-copy slices of the entry data),
    /// of the `.index` records and of any `.timeindex` record are pushed to `ops`, tagged with
    /// the write sequence `seq`. Until [`Self::release`] is called with `seq` or later, the
    /// entries are served from memory. Never fsyncs.
    pub fn append(&mut self, entries: &[Entry], offsets: &[EntryOffsets], seq: u64, ops: &mut Vec<WriteOp>) {
        debug_assert_eq!(entries.len(), offsets.len());
        if entries.is_empty() {
            return;
        }
        let mut headers = BytesMut::with_capacity(entries.len() * FRAME_HEADER_LEN);
        for e in entries {
            headers.extend_from_slice(&encode_header(e));
        }
        let headers = headers.freeze();
        let mut bufs = Vec::with_capacity(entries.len() * 3);
        let mut idx = Vec::with_capacity(entries.len() * INDEX_RECORD_LEN);
        let mut time_buf = Vec::new();
        let (log_pos, index_pos) = (self.size, (self.metas.len() * INDEX_RECORD_LEN) as u64);
        let time_pos = (self.time_entries.len() * TIME_RECORD_LEN) as u64;
        let mut pos = self.size;
        for (k, (e, o)) in entries.iter().zip(offsets).enumerate() {
            let m = EntryMeta {
                term: e.term,
                pos,
                data_len: e.data.len() as u32,
                ctx_len: e.context.len() as u32,
                entry_type: e.entry_type.value() as u8,
                offset_start: o.offset_start,
                offset_end: o.offset_end,
                max_ts: o.max_ts,
            };
            pos += m.frame_len();
            bufs.push(headers.slice(k * FRAME_HEADER_LEN..(k + 1) * FRAME_HEADER_LEN));
            bufs.extend([e.data.clone(), e.context.clone()].into_iter().filter(|b| !b.is_empty()));
            encode_index_record(e.index, &m, &mut idx);
            let slot = self.metas.len();
            if let Some(t) = self.time_builder.observe(slot, &m) {
                encode_time_record(&t, &m, &mut time_buf);
                self.time_entries.push(t);
            }
            self.metas.push(m);
            self.pending.push_back((seq, e.clone()));
        }
        self.size = pos;
        ops.push(WriteOp::Write { to: self.log.clone(), pos: log_pos, bufs });
        ops.push(WriteOp::Write { to: self.index.clone(), pos: index_pos, bufs: vec![Bytes::from(idx)] });
        self.log_dirty = true;
        self.index_dirty = true;
        if !time_buf.is_empty() {
            ops.push(WriteOp::Write { to: self.time.clone(), pos: time_pos, bufs: vec![Bytes::from(time_buf)] });
            self.time_dirty = true;
        }
    }

    /// Keeps only the first `keep` entries; the cuts of all three files go to `ops`.
    pub fn truncate(&mut self, keep: usize, ops: &mut Vec<WriteOp>) {
        if keep >= self.metas.len() {
            return;
        }
        let new_size = self.metas[keep].pos;
        let pending_kept = keep.saturating_sub(self.first_pending_slot());
        self.pending.truncate(pending_kept);
        self.metas.truncate(keep);
        self.size = new_size;
        let (builder, recs) = TimeIndexBuilder::rebuild(self.interval, &self.metas);
        self.time_builder = builder;
        self.time_entries = recs;
        ops.push(WriteOp::SetLen { to: self.log.clone(), len: new_size });
        ops.push(WriteOp::SetLen { to: self.index.clone(), len: (keep * INDEX_RECORD_LEN) as u64 });
        ops.push(WriteOp::SetLen { to: self.time.clone(), len: (self.time_entries.len() * TIME_RECORD_LEN) as u64 });
        self.log_dirty = true;
        self.index_dirty = true;
        self.time_dirty = true;
    }

    /// The first slot whose entry is (possibly) not written yet: every slot before it is in the
    /// `.log`, every slot from it on is served from memory.
    pub fn first_pending_slot(&self) -> usize {
        self.metas.len() - self.pending.len()
    }

    /// The in-memory entry of `slot`, if its append has not been reported written.
    pub fn pending_entry(&self, slot: usize) -> Option<&Entry> {
        let k = slot.checked_sub(self.first_pending_slot())?;
        self.pending.get(k).map(|(_, e)| e)
    }

    /// The writer has carried out every op of write sequence `seq` and earlier: their entries
    /// are in the file and leave memory.
    pub fn release(&mut self, seq: u64) {
        while self.pending.front().is_some_and(|(s, _)| *s <= seq) {
            self.pending.pop_front();
        }
    }

    /// Bytes of entry data held in memory because they are not written yet.
    pub fn pending_bytes(&self) -> u64 {
        self.pending.iter().map(|(_, e)| (e.data.len() + e.context.len()) as u64).sum()
    }

    /// Reads the frames of slots `[lo, hi)` with one positional read. They must be written
    /// (`hi <= first_pending_slot()`): an unwritten range is never read from the file.
    pub fn read_frames(&self, lo: usize, hi: usize) -> Result<Bytes> {
        if lo >= hi || hi > self.metas.len() {
            return Ok(Bytes::new());
        }
        if hi > self.first_pending_slot() {
            return Err(LogError::Invalid(format!(
                "slots {lo}..{hi} of {} are not written yet",
                self.log_path.display()
            )));
        }
        let start = self.metas[lo].pos;
        let end = self.metas[hi - 1].pos + self.metas[hi - 1].frame_len();
        let mut buf = vec![0u8; (end - start) as usize];
        self.log.read_exact_at(&mut buf, start).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                LogError::corrupt(&self.log_path, start, "log file shorter than its entry table")
            } else {
                LogError::io(&self.log_path, e)
            }
        })?;
        Ok(Bytes::from(buf))
    }

    /// Checks the frame of `slot` at byte `at` of `span` (as returned by [`Self::read_frames`])
    /// and returns its (data, context) as zero-copy slices of `span`.
    pub fn check_frame(&self, span: &Bytes, at: usize, slot: usize) -> Result<(Bytes, Bytes)> {
        check_frame_of(&self.log_path, self.base_index + slot as u64, &self.metas[slot], span, at)
    }

    /// The segment's `.log` file (shared: a reader off the group's thread keeps it readable
    /// even once the segment is deleted or replaced).
    pub(crate) fn log_file(&self) -> &Arc<DiskFile> {
        &self.log
    }

    /// Reads and checks entries of slots `[lo, hi)`.
    pub fn read_entries(&self, lo: usize, hi: usize, out: &mut Vec<Entry>) -> Result<()> {
        self.read_entries_with(lo, hi, out, &mut |_, e| Err(e)).map(drop)
    }

    /// Reads and checks entries of slots `[lo, hi)` like [`Self::read_entries`], but hands a frame
    /// that cannot be read or fails its checks to `bad(slot, error)`: `Ok(Some(entry))` puts
    /// `entry` in its place, `Ok(None)` stops before it (the result is then `false`), `Err` fails
    /// the read. When the span cannot be read at once, the frames are read one by one so that one
    /// bad frame does not hide its neighbours.
    pub fn read_entries_with(
        &self,
        lo: usize,
        hi: usize,
        out: &mut Vec<Entry>,
        bad: &mut dyn FnMut(usize, LogError) -> Result<Option<Entry>>,
    ) -> Result<bool> {
        let hi = hi.min(self.metas.len());
        let fp = self.first_pending_slot();
        let file_hi = hi.min(fp);
        let whole = if lo < file_hi { self.read_frames(lo, file_hi).ok() } else { None };
        let base_pos = self.metas.get(lo).map_or(0, |m| m.pos);
        for slot in lo..file_hi {
            let m = &self.metas[slot];
            let checked = match &whole {
                Some(span) => self.check_frame(span, (m.pos - base_pos) as usize, slot),
                None => self.read_frames(slot, slot + 1).and_then(|one| self.check_frame(&one, 0, slot)),
            };
            match checked {
                Ok((data, context)) => out.push(Entry {
                    entry_type: EntryType::from_i32(i32::from(m.entry_type)).unwrap_or_default(),
                    term: m.term,
                    index: self.base_index + slot as u64,
                    data,
                    context,
                    ..Default::default()
                }),
                Err(e) => match bad(slot, e)? {
                    Some(entry) => out.push(entry),
                    None => return Ok(false),
                },
            }
        }
        for slot in lo.max(fp)..hi {
            if let Some(e) = self.pending_entry(slot) {
                out.push(e.clone());
            }
        }
        Ok(true)
    }

    /// Writes `e` over the frame of `slot` in place and fsyncs it, then reads it back and checks
    /// it. `e` must have exactly the stored entry's index, term, type and lengths (the caller
    /// checks its content): the frame keeps its place, so the entry table and `.index` stay right.
    pub fn rewrite_frame(&self, slot: usize, e: &Entry) -> Result<()> {
        let m = self.metas.get(slot).ok_or_else(|| LogError::Invalid(format!("no slot {slot}")))?;
        let same = e.index == self.base_index + slot as u64
            && e.term == m.term
            && e.entry_type.value() as u8 == m.entry_type
            && (e.data.len(), e.context.len()) == (m.data_len as usize, m.ctx_len as usize);
        if !same {
            return Err(LogError::Invalid(format!("entry {} does not fit the frame of slot {slot}", e.index)));
        }
        if slot >= self.first_pending_slot() {
            return Err(LogError::Invalid(format!("entry {} is not written yet", e.index)));
        }
        let mut frame = encode_header(e).to_vec();
        frame.extend_from_slice(&e.data);
        frame.extend_from_slice(&e.context);
        // A written frame: no queued op touches it (ops only write past the written slots).
        self.log.write_all_at(&frame, m.pos).ctx(&self.log_path)?;
        self.log.sync_data().ctx(&self.log_path)?;
        let back = self.read_frames(slot, slot + 1)?;
        self.check_frame(&back, 0, slot).map(drop)
    }

    /// Whether any file has writes that are not fsynced yet.
    pub fn is_dirty(&self) -> bool {
        self.log_dirty || self.index_dirty || self.time_dirty
    }

    /// Whether the `.log` has writes that are not fsynced yet.
    pub fn is_log_dirty(&self) -> bool {
        self.log_dirty
    }

    /// Clones the handle of the `.log` file into `out` if it has unsynced writes, and clears its
    /// flag. Only the `.log` takes part in group commit: `.index` and `.timeindex` are derived
    /// (the active segment's are rebuilt by scanning on open) and are fsynced when the segment
    /// is sealed or on [`Segment::sync`], so an acknowledged append costs one fsync.
    pub fn take_dirty(&mut self, out: &mut Vec<Arc<DiskFile>>) {
        if self.log_dirty {
            out.push(self.log.clone());
            self.log_dirty = false;
        }
    }

    /// Pushes an fsync of every dirty file to `ops` (sealing the segment, or before a stop), and
    /// clears the flags.
    pub fn sync_ops(&mut self, ops: &mut Vec<WriteOp>) {
        for (dirty, f) in
            [(&mut self.log_dirty, &self.log), (&mut self.index_dirty, &self.index), (&mut self.time_dirty, &self.time)]
        {
            if *dirty {
                ops.push(WriteOp::Sync { to: f.clone() });
                *dirty = false;
            }
        }
    }

    /// fsyncs the dirty files on this thread (only where no writer has ops of this segment).
    pub fn sync(&mut self) -> Result<()> {
        let mut ops = Vec::new();
        self.sync_ops(&mut ops);
        super::write::run_all(&ops)
    }

    /// Deletes the segment's files (`.log` first: orphan index files are removed on open),
    /// its aborted-transactions index (`.txnindex`, see `txn_index.rs`) with them.
    pub fn delete(&self) -> Result<()> {
        self.retire();
        let txn = self.log_path.with_extension(super::txn_index::EXT);
        for p in [&self.log_path, &self.index_path, &self.time_path, &txn] {
            match std::fs::remove_file(p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::io(p, e)),
            }
        }
        Ok(())
    }

    /// The segment's files are being deleted or replaced: their handles never open them again
    /// (see `file_cache.rs`).
    pub fn retire(&self) {
        [&self.log, &self.index, &self.time].iter().for_each(|f| f.retire());
    }

    /// Modification time of the `.log` in ms since the epoch (fallback age for retention).
    pub fn modified_ms(&self) -> Option<i64> {
        let t = self.log.metadata().ok()?.modified().ok()?;
        let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
        i64::try_from(d.as_millis()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64, data: &[u8], ctx: &[u8]) -> Entry {
        Entry {
            index,
            term,
            data: Bytes::copy_from_slice(data),
            context: Bytes::copy_from_slice(ctx),
            ..Default::default()
        }
    }

    fn offs(n: usize) -> Vec<EntryOffsets> {
        (0..n).map(|_| EntryOffsets { offset_start: 0, offset_end: 0, max_ts: -1 }).collect()
    }

    /// Appends and carries the writes out at once, as a log outside a group does.
    fn append_now(s: &mut Segment, ents: &[Entry]) {
        let mut ops = Vec::new();
        s.append(ents, &offs(ents.len()), 1, &mut ops);
        crate::log::write::run_all(&ops).unwrap();
        s.release(u64::MAX);
    }

    fn truncate_now(s: &mut Segment, keep: usize) {
        let mut ops = Vec::new();
        s.truncate(keep, &mut ops);
        crate::log::write::run_all(&ops).unwrap();
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(file_name(1, "log"), "00000000000000000001.log");
        assert_eq!(parse_log_name("00000000000000000001.log"), Some(1));
        assert_eq!(parse_log_name("00000000000000000001.index"), None);
        assert_eq!(parse_log_name("1.log"), None);
        assert_eq!(parse_log_name("0000000000000000000x.log"), None);
    }

    #[test]
    fn header_round_trip_and_crc() {
        let e = entry(9, 3, b"hello", b"ctx");
        let h = encode_header(&e);
        let d = FrameHeader::decode(&h).unwrap();
        assert_eq!((d.index, d.term, d.data_len, d.ctx_len), (9, 3, 5, 3));
        assert_eq!(d.frame_len as usize, FRAME_HEADER_LEN + 8);
        assert_eq!(frame_crc(&h, b"hello", b"ctx"), d.crc);
        assert_ne!(frame_crc(&h, b"hellO", b"ctx"), d.crc);
        let mut bad = h;
        bad[3] ^= 1;
        assert!(FrameHeader::decode(&bad).is_err());
        assert!(FrameHeader::decode(&h[..10]).is_err());
    }

    #[test]
    fn append_read_truncate() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Segment::create(dir.path(), 5, 1 << 20).unwrap();
        let ents: Vec<Entry> =
            (5..10).map(|i| entry(i, 2, format!("data-{i}").as_bytes(), if i == 7 { b"c" } else { b"" })).collect();
        append_now(&mut s, &ents);
        assert_eq!(s.next_index(), 10);
        assert_eq!(s.slot(7), Some(2));
        assert_eq!(s.slot(4), None);
        assert_eq!(s.slot(10), None);
        assert_eq!(std::fs::metadata(&s.log_path).unwrap().len(), s.size);
        let mut out = Vec::new();
        s.read_entries(0, 5, &mut out).unwrap();
        assert_eq!(out, ents);
        truncate_now(&mut s, 2);
        assert_eq!(s.next_index(), 7);
        assert_eq!(std::fs::metadata(&s.log_path).unwrap().len(), s.size);
        assert_eq!(std::fs::metadata(&s.index_path).unwrap().len(), 2 * 64);
        // Appending after a truncation lands at the new end.
        append_now(&mut s, &ents[2..3]);
        let mut out = Vec::new();
        s.read_entries(0, 3, &mut out).unwrap();
        assert_eq!(out, ents[..3].to_vec());
    }

    #[test]
    fn flipped_byte_is_detected_on_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Segment::create(dir.path(), 1, 1 << 20).unwrap();
        append_now(&mut s, &[entry(1, 1, b"abcdef", b"")]);
        let mut raw = std::fs::read(&s.log_path).unwrap();
        raw[FRAME_HEADER_LEN + 2] ^= 0x40;
        std::fs::write(&s.log_path, &raw).unwrap();
        let mut out = Vec::new();
        let err = s.read_entries(0, 1, &mut out).unwrap_err();
        assert!(matches!(err, LogError::Corrupt { position: 0, .. }), "{err}");
    }

    #[test]
    fn dirty_handles_are_taken_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Segment::create(dir.path(), 1, 1).unwrap();
        let mut v = Vec::new();
        s.take_dirty(&mut v);
        assert_eq!(v.len(), 1, "only the .log joins group commit");
        assert!(!s.is_log_dirty());
        assert!(s.is_dirty(), "the derived index files wait for sync()");
        v.clear();
        s.take_dirty(&mut v);
        assert!(v.is_empty());
        append_now(&mut s, &[entry(1, 1, b"x", b"")]);
        assert!(s.is_dirty());
        s.sync().unwrap();
        assert!(!s.is_dirty());
    }

    #[test]
    fn unwritten_entries_are_served_from_memory_then_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Segment::create(dir.path(), 1, 1 << 20).unwrap();
        let ents: Vec<Entry> = (1..4).map(|i| entry(i, 1, format!("payload-{i}").as_bytes(), b"")).collect();
        let mut ops = Vec::new();
        s.append(&ents, &offs(3), 7, &mut ops);
        // Queued, not written: the file is empty, the table and the reads are complete.
        assert_eq!(std::fs::metadata(&s.log_path).unwrap().len(), 0);
        assert_eq!((s.next_index(), s.first_pending_slot()), (4, 0));
        assert!(s.read_frames(0, 1).is_err(), "an unwritten range is never read from the file");
        let mut out = Vec::new();
        s.read_entries(0, 3, &mut out).unwrap();
        assert_eq!(out, ents);
        assert_eq!(out[1].data.as_ptr(), ents[1].data.as_ptr(), "served from memory, zero-copy");
        assert!(s.pending_bytes() > 0);
        // The writer runs the ops; an answer for an earlier sequence releases nothing.
        crate::log::write::run_all(&ops).unwrap();
        s.release(6);
        assert_eq!(s.first_pending_slot(), 0);
        s.release(7);
        assert_eq!((s.first_pending_slot(), s.pending_bytes()), (3, 0));
        assert_eq!(std::fs::metadata(&s.log_path).unwrap().len(), s.size);
        assert_eq!(std::fs::metadata(&s.index_path).unwrap().len(), 3 * INDEX_RECORD_LEN as u64);
        let mut out = Vec::new();
        s.read_entries(0, 3, &mut out).unwrap();
        assert_eq!(out, ents);
        assert_ne!(out[1].data.as_ptr(), ents[1].data.as_ptr(), "read back from the file");
    }

    #[test]
    fn truncation_queued_after_writes_leaves_exactly_the_kept_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Segment::create(dir.path(), 1, 64).unwrap();
        let ents: Vec<Entry> = (1..6).map(|i| entry(i, 1, &[i as u8; 100], b"")).collect();
        let mut ops = Vec::new();
        s.append(&ents, &offs(5), 1, &mut ops);
        s.truncate(2, &mut ops);
        let replacement = entry(3, 2, b"the leader's entry", b"ctx");
        s.append(std::slice::from_ref(&replacement), &offs(1), 2, &mut ops);
        let mut out = Vec::new();
        s.read_entries(0, 3, &mut out).unwrap();
        assert_eq!(out, vec![ents[0].clone(), ents[1].clone(), replacement.clone()]);
        crate::log::write::run_all(&ops).unwrap();
        s.release(2);
        let raw = std::fs::read(&s.log_path).unwrap();
        assert_eq!(raw.len() as u64, s.size);
        let mut want = Vec::new();
        for e in [&ents[0], &ents[1], &replacement] {
            want.extend_from_slice(&encode_header(e));
            want.extend_from_slice(&e.data);
            want.extend_from_slice(&e.context);
        }
        assert_eq!(raw, want, "exactly the kept entries, then the new one");
        assert_eq!(std::fs::metadata(&s.index_path).unwrap().len(), 3 * INDEX_RECORD_LEN as u64);
        let want_time = (s.time_entries.len() * TIME_RECORD_LEN) as u64;
        assert_eq!(std::fs::metadata(&s.time_path).unwrap().len(), want_time);
        let mut out = Vec::new();
        s.read_entries(0, 3, &mut out).unwrap();
        assert_eq!(out[2], replacement);
    }
}
