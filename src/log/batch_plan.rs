//! A plan for reading a partition's stored batches off the group's thread: taken on the group's
//! actor from its log (which segment files hold which frames, and the bytes of entries not yet
//! written), then carried out on tokio's blocking pool. The plan holds each segment's `.log` by
//! its open handle, so a segment that retention deletes or the cleaner replaces meanwhile is
//! still read as it was when the plan was taken; the frames are checked (CRC, header) as the
//! log's own reads check them.
//!
//! Used for the checksum of `cluster status`, which reads the whole committed log, and for
//! Fetch reads: [`BatchPlan::read`] reads and checks the frames; [`BatchPlan::chain`] reads
//! nothing and names each written batch as a range of its open file, for a plaintext listener
//! to `sendfile` (zero-copy fetch). Those batches were checked when the log was opened (the
//! replay at start reads every retained frame) or written by this process; a frame known to be
//! damaged is never planned (`log::kafka`'s `fetch_plan` stops before it), and the client checks
//! each batch's CRC, as Kafka's consumers do (`check.crcs`).

use std::sync::Arc;

use bytes::Bytes;

use super::index::EntryMeta;
use super::segment::{check_frame_of, FRAME_HEADER_LEN};
use super::write::DiskFile;
use super::{LogError, Result};

/// Most bytes of one positional read.
const CHUNK_BYTES: u64 = 4 << 20;

/// Where the plan's batches are, in log order.
pub(crate) enum Piece {
    /// A batch not yet written to its file: its bytes.
    Memory(Bytes),
    /// Written batches of one segment: the file, its first index and (slot, meta) of each.
    File { log: Arc<DiskFile>, base_index: u64, slots: Vec<(usize, EntryMeta)> },
}

/// What [`BatchPlan::chain`] gives: the records (or why none), damage found on the way, and
/// the offset after the last batch returned.
pub struct ChainRead {
    pub records: Result<crate::protocol::chain::Chain>,
    pub damage: Option<(u64, LogError)>,
    pub end_offset: i64,
}

/// Batches to read, in log order (see the module doc).
#[derive(Default)]
pub struct BatchPlan {
    pub(crate) pieces: Vec<Piece>,
    /// The offset after the last planned batch (a Fetch plan's; 0 for an empty plan).
    pub end_offset: i64,
}

impl BatchPlan {
    /// Hands every batch's bytes, in order, to `f`; stops at the first frame that cannot be
    /// read or fails its check.
    pub fn for_each(&self, mut f: impl FnMut(&[u8])) -> Result<()> {
        for piece in &self.pieces {
            match piece {
                Piece::Memory(data) => f(data),
                Piece::File { log, base_index, slots } => {
                    let mut i = 0;
                    while i < slots.len() {
                        // One read for as many frames as fit in a chunk (at least one).
                        let start = slots[i].1.pos;
                        let mut j = i + 1;
                        while j < slots.len() && slots[j].1.pos + slots[j].1.frame_len() - start <= CHUNK_BYTES {
                            j += 1;
                        }
                        let end = slots[j - 1].1.pos + slots[j - 1].1.frame_len();
                        let mut buf = vec![0u8; (end - start) as usize];
                        log.read_exact_at(&mut buf, start).map_err(|e| {
                            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                                LogError::corrupt(&log.path, start, "log file shorter than its entry table")
                            } else {
                                LogError::io(&log.path, e)
                            }
                        })?;
                        let span = Bytes::from(buf);
                        for (slot, m) in &slots[i..j] {
                            let at = (m.pos - start) as usize;
                            let (data, _) = check_frame_of(&log.path, base_index + *slot as u64, m, &span, at)?;
                            f(&data);
                        }
                        i = j;
                    }
                }
            }
        }
        Ok(())
    }

    /// A Fetch read: the batches concatenated (one batch: a slice of what was read, no copy).
    /// A damaged frame is never served: the batches before it are, a read that starts at it
    /// fails; either way the damage comes back, as (index, error), for the log to note.
    pub fn read(&self) -> (Result<Bytes>, Option<(u64, LogError)>) {
        let mut batches: Vec<Bytes> = Vec::new();
        let mut damage = None;
        for piece in &self.pieces {
            match piece {
                Piece::Memory(data) => batches.push(data.clone()),
                Piece::File { log, base_index, slots } => {
                    if let Err((index, e)) = read_file_piece(log, *base_index, slots, &mut batches) {
                        damage = Some((index, e));
                        break;
                    }
                }
            }
        }
        let result = match (&damage, batches.len()) {
            (Some((_, e)), 0) => Err(copy_error(e)),
            (_, 1) => Ok(batches.pop().unwrap_or_default()),
            _ => {
                let mut out = bytes::BytesMut::with_capacity(batches.iter().map(Bytes::len).sum());
                batches.iter().for_each(|b| out.extend_from_slice(b));
                Ok(out.freeze())
            }
        };
        (result, damage.filter(|(_, e)| matches!(e, LogError::Corrupt { .. })))
    }

    /// A Fetch without reading: batches not yet written as their bytes, written ones as ranges
    /// of their segment's `.log`, held open (see the module doc). When the descriptors sends may
    /// hold are all taken (`DiskFile::hold_for_send`), a segment's batches are read and checked
    /// as [`Self::read`] reads them; a damaged frame found so cuts the chain there and comes back
    /// as (index, error), for the log to note. Fails when nothing could be read or opened.
    pub fn chain(&self) -> ChainRead {
        use crate::protocol::chain::{Chain, FileRange, Part};
        let mut chain = Chain::default();
        let mut damage = None;
        // The offset after the last batch in the chain, where a cut makes it matter (batches in
        // memory are the log's newest: no file piece, hence no cut, follows them).
        let mut end = None;
        let mut cut = false;
        for piece in &self.pieces {
            match piece {
                Piece::Memory(data) => {
                    chain.push(Part::Memory(data.clone()));
                    end = None;
                }
                Piece::File { log, base_index, slots } => match log.hold_for_send() {
                    Ok(Some(file)) => {
                        for (_, m) in slots {
                            let (pos, len) = (m.pos + FRAME_HEADER_LEN as u64, m.data_len as usize);
                            chain.push(Part::File(FileRange { file: file.clone(), pos, len }));
                            end = Some(m.offset_end);
                        }
                    }
                    Ok(None) => {
                        let mut read = Vec::new();
                        let result = read_file_piece(log, *base_index, slots, &mut read);
                        if let Some((_, m)) = slots.get(read.len().wrapping_sub(1)) {
                            end = Some(m.offset_end);
                        }
                        read.into_iter().for_each(|b| chain.push(Part::Memory(b)));
                        if let Err(found) = result {
                            damage = Some(found);
                            cut = true;
                            break;
                        }
                    }
                    Err(e) => {
                        damage =
                            Some((base_index + slots.first().map_or(0, |s| s.0 as u64), LogError::io(&log.path, e)));
                        cut = true;
                        break;
                    }
                },
            }
        }
        let records = match (&damage, chain.is_empty()) {
            (Some((_, e)), true) => Err(copy_error(e)),
            _ => Ok(chain),
        };
        let end_offset = if cut { end.unwrap_or(self.end_offset) } else { self.end_offset };
        ChainRead { records, damage: damage.filter(|(_, e)| matches!(e, LogError::Corrupt { .. })), end_offset }
    }

    /// CRC-32C over the batches, in order (what `cluster status` compares between replicas).
    pub fn checksum(&self) -> Result<u32> {
        let mut crc = 0u32;
        self.for_each(|data| crc = crc32c::crc32c_append(crc, data))?;
        Ok(crc)
    }
}

/// Reads and checks the frames of `slots` into `out` (one read per chunk; a chunk that cannot
/// be read whole, a short file, is read frame by frame up to the first bad one). Stops at the
/// first bad frame with its index and error.
fn read_file_piece(
    log: &DiskFile,
    base_index: u64,
    slots: &[(usize, EntryMeta)],
    out: &mut Vec<Bytes>,
) -> std::result::Result<(), (u64, LogError)> {
    let read = |lo: usize, hi: usize| -> Result<Bytes> {
        let start = slots[lo].1.pos;
        let end = slots[hi - 1].1.pos + slots[hi - 1].1.frame_len();
        let mut buf = vec![0u8; (end - start) as usize];
        log.read_exact_at(&mut buf, start).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                LogError::corrupt(&log.path, start, "log file shorter than its entry table")
            } else {
                LogError::io(&log.path, e)
            }
        })?;
        Ok(Bytes::from(buf))
    };
    let mut i = 0;
    while i < slots.len() {
        let start = slots[i].1.pos;
        let mut j = i + 1;
        while j < slots.len() && slots[j].1.pos + slots[j].1.frame_len() - start <= CHUNK_BYTES {
            j += 1;
        }
        let whole = read(i, j);
        for (k, (slot, m)) in slots.iter().enumerate().take(j).skip(i) {
            let index = base_index + *slot as u64;
            let (span, at) = match &whole {
                Ok(span) => (span.clone(), (m.pos - start) as usize),
                Err(_) => (read(k, k + 1).map_err(|e| (index, e))?, 0),
            };
            let (data, _) = check_frame_of(&log.path, index, m, &span, at).map_err(|e| (index, e))?;
            out.push(data);
        }
        i = j;
    }
    Ok(())
}

/// `LogError` is not `Clone`: the same error again for the reader.
fn copy_error(e: &LogError) -> LogError {
    match e {
        LogError::Corrupt { segment, position, reason } => {
            LogError::Corrupt { segment: segment.clone(), position: *position, reason: reason.clone() }
        }
        other => LogError::Invalid(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use crate::log::batch::BatchHeader;
    use crate::log::partition_log::tests::{fill, logger, noop, opts};
    use crate::log::PartitionLog;

    /// The batches Fetch's reads return from the log start up to `hw`, concatenated.
    fn fetched(log: &PartitionLog, hw: i64) -> Vec<u8> {
        let (mut out, mut offset) = (Vec::new(), log.log_start_offset());
        loop {
            let chunk = log.read(offset, 500, hw).unwrap();
            if chunk.is_empty() {
                return out;
            }
            let mut pos = 0;
            while pos < chunk.len() {
                let h = BatchHeader::parse(&chunk[pos..]).unwrap();
                offset = h.next_offset();
                pos += h.total_len();
            }
            out.extend_from_slice(&chunk);
        }
    }

    fn planned(log: &PartitionLog, hw: i64) -> Vec<u8> {
        let mut out = Vec::new();
        log.batch_plan(hw).for_each(|d| out.extend_from_slice(d)).unwrap();
        out
    }

    #[test]
    fn a_plan_reads_the_batches_fetch_reads_even_after_retention_deleted_their_segments() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = PartitionLog::open(dir.path(), opts(300), &logger()).unwrap();
        fill(&mut log, 1, 9, 1);
        log.append(&[noop(10, 1)]).unwrap();
        fill(&mut log, 11, 2, 1);
        let hw = log.offset_after_index(11);
        let expected = fetched(&log, hw);
        assert!(!expected.is_empty());
        assert_eq!(planned(&log, hw), expected);
        assert_eq!(planned(&log, log.next_offset()), fetched(&log, log.next_offset()));

        // Taken before retention deletes the sealed segments, the plan still reads them.
        let plan = log.batch_plan(hw);
        let deleted = log.apply_retention(0, None, Some(0), 11).unwrap();
        assert!(deleted > 0);
        assert_eq!(plan.checksum().unwrap(), crc32c::crc32c(&expected));
        assert_ne!(planned(&log, hw), expected, "the log itself starts later now");
        assert_eq!(planned(&log, hw), fetched(&log, hw));
    }

    #[test]
    fn entries_not_yet_written_are_read_from_memory() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = PartitionLog::open(dir.path(), opts(300), &logger()).unwrap();
        fill(&mut log, 1, 3, 1);
        log.set_deferred(true).unwrap();
        fill(&mut log, 4, 3, 1);
        let end = log.next_offset();
        let plan = log.batch_plan(end);
        assert!(plan.pieces.iter().any(|p| matches!(p, super::Piece::Memory(_))));
        assert!(plan.pieces.iter().any(|p| matches!(p, super::Piece::File { .. })));
        assert_eq!(planned(&log, end), fetched(&log, end));
    }

    #[test]
    fn a_fetch_plan_reads_what_a_fetch_read_returns() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = PartitionLog::open(dir.path(), opts(300), &logger()).unwrap();
        fill(&mut log, 1, 9, 1);
        log.set_deferred(true).unwrap();
        fill(&mut log, 10, 3, 1);
        let end = log.next_offset();
        for offset in [0, 1, 2, 5, 17, end - 1] {
            for (max_bytes, bound) in [(1, end), (100, end), (1 << 20, end), (1 << 20, end - 4)] {
                let expected = log.read(offset, max_bytes, bound).unwrap();
                let plan = log.fetch_plan(offset, max_bytes, bound).unwrap();
                let (got, damage) = plan.read();
                assert_eq!(got.unwrap(), expected, "offset {offset}, max {max_bytes}, bound {bound}");
                assert!(damage.is_none());
                let chain = plan.chain();
                assert!(chain.damage.is_none());
                assert_eq!(
                    chain.records.unwrap().to_bytes().unwrap(),
                    expected,
                    "offset {offset}, max {max_bytes}, bound {bound}"
                );
                if !expected.is_empty() {
                    assert_eq!(Some(plan.end_offset), crate::partition::txn::end_of(&expected));
                }
            }
        }
        assert!(log.fetch_plan(end + 1, 100, end).is_err());
    }

    #[test]
    fn a_chain_reads_a_segment_when_sends_hold_their_share_of_descriptors() {
        use crate::log::file_cache::{DiskFile, FileCache, Opening};
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = PartitionLog::open(dir.path(), opts(300), &logger()).unwrap();
        fill(&mut log, 1, 9, 1);
        let end = log.next_offset();
        let expected = log.read(0, 1 << 20, end).unwrap();
        // The same plan, its segments named through a cache of 4 descriptors (a send may hold 1).
        let cache = FileCache::new(4);
        let mut plan = log.fetch_plan(0, 1 << 20, end).unwrap();
        for piece in plan.pieces.iter_mut() {
            if let super::Piece::File { log, .. } = piece {
                *log = DiskFile::managed_in(&cache, &log.path, Opening::Existing, false).unwrap();
            }
        }
        let files = plan.pieces.iter().filter(|p| matches!(p, super::Piece::File { .. })).count();
        assert!(files >= 2, "the batches span {files} segments");
        let read = plan.chain();
        let chain = read.records.unwrap();
        assert_eq!(chain.to_bytes().unwrap(), expected);
        assert!(chain.has_files(), "the first segment is sent from its file");
        assert!(chain.file_bytes() < chain.len(), "the others, over the share, are read");
        assert_eq!(read.end_offset, plan.end_offset);
        drop(chain);
        // Given back: the next chain holds a file again.
        assert!(plan.chain().records.unwrap().has_files());
    }

    #[test]
    fn a_fetch_plan_stops_before_a_damaged_frame_and_reports_it() {
        use std::os::unix::fs::FileExt;
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = PartitionLog::open(dir.path(), opts(1 << 20), &logger()).unwrap();
        fill(&mut log, 1, 3, 1);
        let end = log.next_offset();
        let plan = log.fetch_plan(0, 1 << 20, end).unwrap();
        // Damage the second frame: the first batch is served, the damage reported.
        let second = log.fetch_plan(2, 1, end).unwrap();
        let pos = match &second.pieces[0] {
            super::Piece::File { slots, .. } => slots[0].1.pos,
            _ => unreachable!("written"),
        };
        let seg = dir.path().join(format!("{:020}.log", 1));
        std::fs::OpenOptions::new().write(true).open(&seg).unwrap().write_all_at(b"X", pos + 40).unwrap();
        let (got, damage) = plan.read();
        assert_eq!(crate::partition::txn::end_of(&got.unwrap()), Some(2));
        assert_eq!(damage.map(|(index, _)| index), Some(2));
        let (got, damage) = second.read();
        assert!(got.is_err(), "a read that starts at the damaged batch fails");
        let (index, e) = damage.unwrap();
        log.note_read_damage(index, e);
        assert!(log.has_damage());
        // Known now: a plan stops before it, or fails at it, without reading.
        let plan = log.fetch_plan(0, 1 << 20, end).unwrap();
        assert_eq!(plan.end_offset, 2);
        let chain = plan.chain();
        assert_eq!(crate::partition::txn::end_of(&chain.records.unwrap().to_bytes().unwrap()), Some(2));
        assert_eq!(chain.end_offset, 2);
        assert!(log.fetch_plan(2, 1 << 20, end).is_err(), "a plan that starts at the damaged batch fails");
    }

    #[test]
    fn a_damaged_frame_is_an_error() {
        use std::os::unix::fs::FileExt;
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = PartitionLog::open(dir.path(), opts(1 << 20), &logger()).unwrap();
        fill(&mut log, 1, 3, 1);
        let plan = log.batch_plan(log.next_offset());
        let seg = dir.path().join(format!("{:020}.log", 1));
        let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
        f.write_all_at(b"X", 40).unwrap();
        assert!(plan.checksum().is_err());
    }
}
