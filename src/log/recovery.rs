//! Opening a partition directory: finishing interrupted retention / reset, removing orphan files,
//! loading sealed segments from their `.index` (or rebuilding it by scanning the `.log`), and
//! scanning the active segment frame by frame, truncating a torn tail with a warning.
//!
//! Rules: a bad frame in the active (last) segment is a torn write after a crash — the file is cut
//! there. A bad frame in a sealed segment cannot come from a crash (segments are fsynced before a
//! new one is created), so it is reported as [`LogError::Corrupt`]. A frame with a good CRC whose
//! content is impossible (an invalid batch, offsets going backwards) is corruption wherever it is.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use protobuf::ProtobufEnum;
use raft::eraftpb::EntryType;
use slog::{info, warn, Logger};

use super::index::{decode_index, index_record, EntryMeta};
use super::offsets::entry_offsets;
use super::partition_log::{Damage, LogKind, LogOptions, RecoveryReport};
use super::retention::LogStart;
use super::segment::{file_name, frame_crc, parse_log_name, FrameHeader, Segment, FRAME_HEADER_LEN};
use super::{IoContext, LogError, Result};

/// What [`open_dir`] hands to `PartitionLog`.
pub(crate) struct Opened {
    pub segments: Vec<Segment>,
    pub start: LogStart,
    pub report: RecoveryReport,
    /// Damaged frames kept in place (see [`Salvage`]), by raft index.
    pub damaged: Vec<(u64, Damage)>,
}

/// Outcome of scanning a `.log`.
#[derive(Debug)]
pub(crate) struct Scan {
    pub metas: Vec<EntryMeta>,
    /// Bytes of whole, valid frames.
    pub valid_len: u64,
    pub file_len: u64,
    /// Position and reason of the first bad frame, if any.
    pub bad: Option<(u64, String)>,
    /// Frames that fail their CRC but were kept (see [`Salvage`]), with their slot.
    pub damaged: Vec<(usize, u64, String)>,
}

/// When a scan may keep a frame that fails its CRC instead of stopping there: the frame's
/// header is intact (right index, a length that fits the file), its entry is at or below
/// `through` (committed, so it cannot be a torn write that was never acknowledged), and the
/// segment's `.index` still holds an intact record of it with the same place, term and lengths,
/// which gives its offsets. The entry is then kept as damaged: its batch is never served.
pub(crate) struct Salvage<'a> {
    pub index_bytes: &'a [u8],
    pub through: u64,
}

/// Reads until `buf` is full or EOF; returns the number of bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Scans the frames of `path` (segment starting at `base_index`). `next_offset` and `prev_term`
/// are the log end offset and the term just before the segment.
pub(crate) fn scan_log(
    path: &Path,
    base_index: u64,
    kind: LogKind,
    mut next_offset: i64,
    mut prev_term: u64,
    salvage: Option<&Salvage<'_>>,
) -> Result<Scan> {
    let file = File::open(path).ctx(path)?;
    let file_len = file.metadata().ctx(path)?.len();
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut metas: Vec<EntryMeta> = Vec::new();
    let mut pos = 0u64;
    let mut header = [0u8; FRAME_HEADER_LEN];
    let mut payload = Vec::new();
    let kafka = kind == LogKind::KafkaBatches;
    let mut damaged = Vec::new();
    let bad = loop {
        let n = read_full(&mut r, &mut header).ctx(path)?;
        if n == 0 {
            break None;
        }
        if n < FRAME_HEADER_LEN {
            break Some((pos, format!("short frame header ({n} bytes)")));
        }
        let h = match FrameHeader::decode(&header) {
            Ok(h) => h,
            Err(why) => break Some((pos, why)),
        };
        if pos + u64::from(h.frame_len) > file_len {
            break Some((pos, format!("frame of {} bytes runs past the end of the file", h.frame_len)));
        }
        payload.resize((h.data_len + h.ctx_len) as usize, 0);
        if read_full(&mut r, &mut payload).ctx(path)? < payload.len() {
            break Some((pos, "short frame".to_string()));
        }
        let (data, ctx) = payload.split_at(h.data_len as usize);
        let want = base_index + metas.len() as u64;
        if frame_crc(&header, data, ctx) != h.crc {
            let slot = metas.len();
            let kept =
                salvage.filter(|s| want <= s.through).and_then(|s| index_record(base_index, s.index_bytes, slot));
            match kept {
                Some(m)
                    if h.index == want
                        && m.pos == pos
                        && m.term == h.term
                        && m.term >= prev_term
                        && (m.data_len, m.ctx_len) == (h.data_len, h.ctx_len)
                        && m.offset_start >= next_offset =>
                {
                    damaged.push((slot, pos, "frame fails its crc".to_string()));
                    metas.push(m);
                    next_offset = m.offset_end;
                    prev_term = m.term;
                    pos += u64::from(h.frame_len);
                    continue;
                }
                _ => break Some((pos, "frame fails its crc".to_string())),
            }
        }
        if h.index != want || h.term < prev_term {
            let why = format!("frame holds index {} term {}, expected index {want}", h.index, h.term);
            break Some((pos, why));
        }
        let ty = EntryType::from_i32(i32::from(h.entry_type)).unwrap_or_default();
        let offsets = entry_offsets(kafka, ty, data, ctx, next_offset)
            .map_err(|why| LogError::corrupt(path, pos, format!("entry {want}: {why}")))?;
        metas.push(EntryMeta {
            term: h.term,
            pos,
            data_len: h.data_len,
            ctx_len: h.ctx_len,
            entry_type: ty.value() as u8,
            offset_start: offsets.offset_start,
            offset_end: offsets.offset_end,
            max_ts: offsets.max_ts,
        });
        next_offset = offsets.offset_end;
        prev_term = h.term;
        pos += u64::from(h.frame_len);
    };
    Ok(Scan { metas, valid_len: pos, file_len, bad, damaged })
}

/// The damage a scan kept, as `(raft index, Damage)`.
fn damage_of(path: &Path, base: u64, scan: &Scan) -> Vec<(u64, Damage)> {
    scan.damaged
        .iter()
        .map(|(slot, pos, why)| {
            let m = &scan.metas[*slot];
            let d = Damage {
                term: m.term,
                offsets: (m.offset_start, m.offset_end),
                segment: path.to_path_buf(),
                position: *pos,
                reason: why.clone(),
            };
            (base + *slot as u64, d)
        })
        .collect()
}

/// The `.index` file's bytes (empty when missing or unreadable: salvage then keeps nothing).
fn index_bytes(dir: &Path, base: u64) -> Vec<u8> {
    std::fs::read(dir.join(file_name(base, "index"))).unwrap_or_default()
}

fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(LogError::io(path, e)),
        _ => Ok(()),
    }
}

fn remove_segment_files(dir: &Path, base: u64) -> Result<()> {
    for ext in ["log", "index", "timeindex", super::txn_index::EXT] {
        remove(&dir.join(file_name(base, ext)))?;
    }
    Ok(())
}

/// Loads a sealed segment from its index when consistent, else by scanning (bad frame = error).
#[allow(clippy::too_many_arguments)]
fn load_sealed(
    dir: &Path,
    base: u64,
    opts: &LogOptions,
    next_offset: i64,
    prev_term: u64,
    logger: &Logger,
    report: &mut RecoveryReport,
    damaged: &mut Vec<(u64, Damage)>,
) -> Result<Segment> {
    let log_path = dir.join(file_name(base, "log"));
    let index_path = dir.join(file_name(base, "index"));
    let log_len = std::fs::metadata(&log_path).ctx(&log_path)?.len();
    let from_index = match std::fs::read(&index_path) {
        Ok(bytes) => decode_index(base, &bytes, log_len).and_then(|metas| match metas.first() {
            Some(m) if m.offset_start < next_offset || m.term < prev_term => {
                Err("first record does not follow the previous segment".to_string())
            }
            _ => Ok(metas),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err("missing".to_string()),
        Err(e) => return Err(LogError::io(&index_path, e)),
    };
    match from_index {
        Ok(metas) => Segment::open(dir, base, opts.index_interval_bytes, metas),
        Err(why) => {
            warn!(logger, "rebuilding segment index by scanning";
                "segment" => log_path.display().to_string(), "reason" => why);
            // A sealed segment was fsynced before the next one was created: any bad frame in it
            // is damage, never a torn write, so every frame that can be kept in place is kept.
            let bytes = index_bytes(dir, base);
            let salvage = Salvage { index_bytes: &bytes, through: u64::MAX };
            let scan = scan_log(&log_path, base, opts.kind, next_offset, prev_term, Some(&salvage))?;
            if let Some((pos, why)) = scan.bad {
                return Err(LogError::corrupt(&log_path, pos, format!("sealed segment: {why}")));
            }
            damaged.extend(damage_of(&log_path, base, &scan));
            let mut seg = Segment::open(dir, base, opts.index_interval_bytes, scan.metas)?;
            seg.rewrite_index()?;
            report.indexes_rebuilt += 1;
            Ok(seg)
        }
    }
}

/// Scans the active segment, truncating a torn tail.
#[allow(clippy::too_many_arguments)]
fn load_active(
    dir: &Path,
    base: u64,
    opts: &LogOptions,
    next_offset: i64,
    prev_term: u64,
    committed: u64,
    logger: &Logger,
    report: &mut RecoveryReport,
    damaged: &mut Vec<(u64, Damage)>,
) -> Result<Segment> {
    let log_path = dir.join(file_name(base, "log"));
    // Committed entries were fsynced before they counted: a bad frame among them is damage and
    // keeps its place; above the commit it is a torn write and the tail is cut there.
    let bytes = index_bytes(dir, base);
    let salvage = Salvage { index_bytes: &bytes, through: committed };
    let scan = scan_log(&log_path, base, opts.kind, next_offset, prev_term, Some(&salvage))?;
    damaged.extend(damage_of(&log_path, base, &scan));
    if let Some((pos, why)) = &scan.bad {
        let dropped = scan.file_len - scan.valid_len;
        let first_cut = base + scan.metas.len() as u64;
        if first_cut <= committed {
            slog::error!(logger, "the torn tail holds committed entries, which are lost here";
                "segment" => log_path.display().to_string(), "first_lost_index" => first_cut, "committed" => committed);
        }
        warn!(logger, "truncating torn tail of the active segment";
            "segment" => log_path.display().to_string(), "position" => pos,
            "bytes_dropped" => dropped, "reason" => why.as_str());
        let f = std::fs::OpenOptions::new().write(true).open(&log_path).ctx(&log_path)?;
        f.set_len(scan.valid_len).ctx(&log_path)?;
        f.sync_all().ctx(&log_path)?;
        report.truncated_bytes += dropped;
    }
    let index_path = dir.join(file_name(base, "index"));
    let index_ok = match std::fs::read(&index_path) {
        Ok(bytes) => decode_index(base, &bytes, scan.valid_len).is_ok_and(|m| m == scan.metas),
        Err(_) => false,
    };
    let mut seg = Segment::open(dir, base, opts.index_interval_bytes, scan.metas)?;
    // The active segment's time index may hold records of entries cut by a crash.
    seg.rewrite_time_index()?;
    if !index_ok {
        seg.rewrite_index()?;
        report.indexes_rebuilt += 1;
    }
    Ok(seg)
}

/// Opens (creating if needed) the partition directory `dir`. `committed` is the highest raft
/// index known to be committed (0 if unknown): it tells damage from a torn tail in the active
/// segment.
pub(crate) fn open_dir(dir: &Path, opts: &LogOptions, committed: u64, logger: &Logger) -> Result<Opened> {
    std::fs::create_dir_all(dir).ctx(dir)?;
    let mut report = RecoveryReport::default();
    let mut start = LogStart::load(dir)?;
    let mut bases = Vec::new();
    let mut others = Vec::new();
    for de in std::fs::read_dir(dir).ctx(dir)? {
        let name = de.ctx(dir)?.file_name().to_string_lossy().into_owned();
        match parse_log_name(&name) {
            Some(base) => bases.push(base),
            None => others.push(name),
        }
    }
    bases.sort_unstable();
    // Orphan index files (their .log was deleted first) and leftovers of atomic writes.
    for name in others {
        let orphan = [".index", ".timeindex", ".txnindex"].iter().any(|ext| {
            name.strip_suffix(ext)
                .and_then(|stem| parse_log_name(&format!("{stem}.log")))
                .is_some_and(|b| bases.binary_search(&b).is_err())
        });
        // A `.txnindex.tmp` is an index store cut short (`txn_index::store`): written again.
        if orphan || name == "log-start.tmp" || name.ends_with(".txnindex.tmp") {
            remove(&dir.join(&name))?;
            report.stale_files_removed += 1;
        }
    }
    if start.reset_pending {
        warn!(logger, "completing an interrupted reset"; "dir" => dir.display().to_string(),
            "start_index" => start.start_index);
        for b in bases.drain(..) {
            remove_segment_files(dir, b)?;
            report.stale_files_removed += 1;
        }
        report.reset_completed = true;
    }
    // Segments below the log start were being deleted by retention.
    while let Some(&b) = bases.first() {
        if b >= start.start_index {
            break;
        }
        info!(logger, "removing segment below the log start"; "base" => b,
            "start_index" => start.start_index);
        remove_segment_files(dir, b)?;
        bases.remove(0);
        report.stale_files_removed += 1;
    }
    // Interrupted compaction swaps: finished or undone (see `cleaner::swap`).
    report.stale_files_removed += super::cleaner::swap::recover(dir, &bases, logger)?;
    if let Some(&b) = bases.first() {
        if b != start.start_index {
            let p = dir.join(file_name(b, "log"));
            let why = format!("first segment starts at index {b}, the log starts at {}", start.start_index);
            return Err(LogError::corrupt(&p, 0, why));
        }
    }
    let mut damaged = Vec::new();
    let mut segments: Vec<Segment> = Vec::with_capacity(bases.len().max(1));
    let (mut next_offset, mut prev_term) = (start.start_offset, start.prev_term);
    for (i, &base) in bases.iter().enumerate() {
        let last = i + 1 == bases.len();
        let seg = if last {
            load_active(dir, base, opts, next_offset, prev_term, committed, logger, &mut report, &mut damaged)?
        } else {
            load_sealed(dir, base, opts, next_offset, prev_term, logger, &mut report, &mut damaged)?
        };
        if let Some(&next_base) = bases.get(i + 1) {
            if seg.next_index() != next_base {
                let why = format!(
                    "sealed segment ends before index {} but the next segment starts at {next_base}",
                    seg.next_index()
                );
                return Err(LogError::corrupt(&seg.log_path, seg.size, why));
            }
        }
        if let Some(m) = seg.metas.last() {
            next_offset = m.offset_end;
            prev_term = m.term;
        }
        report.entries += seg.len() as u64;
        segments.push(seg);
    }
    if segments.is_empty() {
        segments.push(Segment::create(dir, start.start_index, opts.index_interval_bytes)?);
        super::sync_dir(dir)?;
    }
    if start.reset_pending {
        start.reset_pending = false;
        start.store(dir)?;
    }
    report.segments = segments.len();
    Ok(Opened { segments, start, report, damaged })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::offsets::make_batch;
    use crate::log::segment::EntryOffsets;
    use raft::eraftpb::Entry;

    fn logger() -> Logger {
        Logger::root(slog::Discard, slog::o!())
    }

    fn opts() -> LogOptions {
        LogOptions { segment_bytes: 1 << 20, index_interval_bytes: 100, kind: LogKind::KafkaBatches }
    }

    /// Writes a segment at `base` with `n` one-record batches starting at offset `off`.
    fn write_segment(dir: &Path, base: u64, n: u64, off: i64) -> Segment {
        let mut seg = Segment::create(dir, base, 100).unwrap();
        for i in 0..n {
            let e = Entry {
                index: base + i,
                term: 1,
                data: make_batch(off + i as i64, 1, 10, 20).into(),
                ..Default::default()
            };
            let o = EntryOffsets { offset_start: off + i as i64, offset_end: off + i as i64 + 1, max_ts: 10 };
            let mut ops = Vec::new();
            seg.append(&[e], &[o], i, &mut ops);
            crate::log::write::run_all(&ops).unwrap();
            seg.release(i);
        }
        seg.sync().unwrap();
        seg
    }

    #[test]
    fn scan_stops_at_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let seg = write_segment(dir.path(), 1, 3, 0);
        let mut raw = std::fs::read(&seg.log_path).unwrap();
        let good = raw.len() as u64;
        raw.extend_from_slice(&[0xAB; 50]);
        std::fs::write(&seg.log_path, &raw).unwrap();
        let scan = scan_log(&seg.log_path, 1, LogKind::KafkaBatches, 0, 0, None).unwrap();
        assert_eq!(scan.metas, seg.metas);
        assert_eq!(scan.valid_len, good);
        assert_eq!(scan.file_len, good + 50);
        assert_eq!(scan.bad.as_ref().map(|b| b.0), Some(good));
    }

    #[test]
    fn scan_rejects_wrong_base_and_backwards_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let seg = write_segment(dir.path(), 1, 2, 0);
        let scan = scan_log(&seg.log_path, 2, LogKind::KafkaBatches, 0, 0, None).unwrap();
        assert!(scan.metas.is_empty() && scan.bad.is_some());
        // Valid frames whose offsets go below the previous segment's end: corruption.
        let err = scan_log(&seg.log_path, 1, LogKind::KafkaBatches, 5, 0, None).unwrap_err();
        assert!(matches!(err, LogError::Corrupt { position: 0, .. }), "{err}");
        // Opaque logs never parse the data.
        let scan = scan_log(&seg.log_path, 1, LogKind::Opaque, 5, 0, None).unwrap();
        assert_eq!(scan.metas.len(), 2);
        assert!(scan.bad.is_none());
    }

    #[test]
    fn open_removes_orphans_and_segments_below_start() {
        let dir = tempfile::tempdir().unwrap();
        drop(write_segment(dir.path(), 1, 3, 0));
        drop(write_segment(dir.path(), 4, 3, 3));
        std::fs::write(dir.path().join(file_name(99, "index")), b"junk").unwrap();
        std::fs::write(dir.path().join(file_name(99, "txnindex")), b"junk").unwrap();
        std::fs::write(dir.path().join(file_name(1, "txnindex")), b"").unwrap();
        std::fs::write(dir.path().join(format!("{}.tmp", file_name(4, "txnindex"))), b"cut").unwrap();
        std::fs::write(dir.path().join("unrelated"), b"keep").unwrap();
        LogStart { start_index: 4, prev_term: 1, start_offset: 3, reset_pending: false }.store(dir.path()).unwrap();
        let o = open_dir(dir.path(), &opts(), 0, &logger()).unwrap();
        assert_eq!(o.segments.len(), 1);
        assert_eq!(o.segments[0].base_index, 4);
        assert_eq!(o.report.stale_files_removed, 4);
        assert!(!dir.path().join(format!("{}.tmp", file_name(4, "txnindex"))).exists(), "a store cut short");
        assert!(!dir.path().join(file_name(1, "log")).exists());
        assert!(!dir.path().join(file_name(1, "txnindex")).exists(), "with its segment below the start");
        assert!(!dir.path().join(file_name(99, "index")).exists());
        assert!(!dir.path().join(file_name(99, "txnindex")).exists());
        assert!(dir.path().join("unrelated").exists());
    }

    #[test]
    fn gap_between_segments_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        drop(write_segment(dir.path(), 1, 3, 0));
        drop(write_segment(dir.path(), 5, 3, 3));
        let err = open_dir(dir.path(), &opts(), 0, &logger()).err().unwrap();
        assert!(matches!(err, LogError::Corrupt { .. }), "{err}");
        // A log start pointing after the first segment's base with nothing below is also wrong.
        let dir = tempfile::tempdir().unwrap();
        drop(write_segment(dir.path(), 7, 1, 0));
        let err = open_dir(dir.path(), &opts(), 0, &logger()).err().unwrap();
        assert!(matches!(err, LogError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn damaged_sealed_index_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let metas = write_segment(dir.path(), 1, 3, 0).metas;
        drop(write_segment(dir.path(), 4, 1, 3));
        let idx = dir.path().join(file_name(1, "index"));
        let mut raw = std::fs::read(&idx).unwrap();
        raw.truncate(100);
        std::fs::write(&idx, &raw).unwrap();
        let o = open_dir(dir.path(), &opts(), 0, &logger()).unwrap();
        assert_eq!(o.report.indexes_rebuilt, 1);
        assert_eq!(o.segments[0].metas, metas);
        assert_eq!(std::fs::metadata(&idx).unwrap().len(), 3 * 64);
        let o = open_dir(dir.path(), &opts(), 0, &logger()).unwrap();
        assert_eq!(o.report.indexes_rebuilt, 0);
        assert_eq!(o.report.entries, 4);
    }

    mod partition_log {
        use crate::log::partition_log::tests::{fill, logger, opts};
        use crate::log::segment::file_name;
        use crate::log::{LogError, PartitionLog};
        use std::io::Write;

        const SEG: u64 = 300; // two 137-byte frames per segment

        fn build(dir: &std::path::Path, n: u64) -> bytes::Bytes {
            let (mut log, _) = PartitionLog::open(dir, opts(SEG), &logger()).unwrap();
            fill(&mut log, 1, n, 1);
            log.sync().unwrap();
            log.read(0, usize::MAX, i64::MAX).unwrap()
        }

        #[test]
        fn torn_tail_mid_frame_is_truncated() {
            let dir = tempfile::tempdir().unwrap();
            build(dir.path(), 5); // segments [1,2] [3,4] [5]
            let active = dir.path().join(file_name(5, "log"));
            let f = std::fs::OpenOptions::new().write(true).open(&active).unwrap();
            f.set_len(100).unwrap(); // mid-frame of entry 5
            drop(f);
            let (mut log, rep) = PartitionLog::open(dir.path(), opts(SEG), &logger()).unwrap();
            assert_eq!(rep.truncated_bytes, 100);
            assert_eq!(rep.entries, 4);
            assert_eq!(log.last_index(), 4);
            assert_eq!(log.next_offset(), 8);
            assert_eq!(std::fs::metadata(&active).unwrap().len(), 0);
            // The log goes on from there.
            fill(&mut log, 5, 2, 2);
            drop(log);
            let (log, rep) = PartitionLog::open(dir.path(), opts(SEG), &logger()).unwrap();
            assert_eq!(rep.truncated_bytes, 0);
            assert_eq!((log.last_index(), log.term(6)), (6, Some(2)));
        }

        #[test]
        fn garbage_after_the_last_frame_is_truncated() {
            let dir = tempfile::tempdir().unwrap();
            let before = build(dir.path(), 6); // segments [1,2] [3,4] [5,6]
            let active = dir.path().join(file_name(5, "log"));
            let good = std::fs::metadata(&active).unwrap().len();
            let mut f = std::fs::OpenOptions::new().append(true).open(&active).unwrap();
            f.write_all(&[0x5A; 77]).unwrap();
            drop(f);
            let (log, rep) = PartitionLog::open(dir.path(), opts(SEG), &logger()).unwrap();
            assert_eq!(rep.truncated_bytes, 77);
            assert_eq!(std::fs::metadata(&active).unwrap().len(), good);
            assert_eq!(log.last_index(), 6);
            assert_eq!(log.read(0, usize::MAX, i64::MAX).unwrap(), before);
            // Zeroes (e.g. a preallocated tail) are dropped the same way.
            drop(log);
            let mut f = std::fs::OpenOptions::new().append(true).open(&active).unwrap();
            f.write_all(&[0; 4096]).unwrap();
            drop(f);
            let (_, rep) = PartitionLog::open(dir.path(), opts(SEG), &logger()).unwrap();
            assert_eq!(rep.truncated_bytes, 4096);
        }

        #[test]
        fn flipped_byte_in_active_segment_truncates_from_that_frame() {
            let dir = tempfile::tempdir().unwrap();
            build(dir.path(), 6);
            let active = dir.path().join(file_name(5, "log"));
            let mut raw = std::fs::read(&active).unwrap();
            raw[137 + 50] ^= 0x01; // inside entry 6
            std::fs::write(&active, &raw).unwrap();
            let (log, rep) = PartitionLog::open(dir.path(), opts(SEG), &logger()).unwrap();
            assert_eq!(rep.truncated_bytes, 137);
            assert_eq!(log.last_index(), 5);
        }

        #[test]
        fn flipped_byte_in_sealed_segment_is_corruption() {
            let dir = tempfile::tempdir().unwrap();
            build(dir.path(), 5);
            let sealed = dir.path().join(file_name(3, "log"));
            let mut raw = std::fs::read(&sealed).unwrap();
            raw[137 + 80] ^= 0x04; // inside the batch of entry 4
            std::fs::write(&sealed, &raw).unwrap();
            // The index is consistent, so the segment loads without a scan, but every read
            // that touches the frame checks its CRC.
            let (log, _) = PartitionLog::open(dir.path(), opts(SEG), &logger()).unwrap();
            let err = log.entries(4, 5, None).unwrap_err();
            assert!(matches!(&err, LogError::Corrupt { position: 137, .. }), "{err}");
            assert!(err.to_string().contains(&file_name(3, "log")));
            assert!(matches!(log.read(6, 1000, i64::MAX), Err(LogError::Corrupt { .. })));
            assert!(matches!(log.for_each_batch(|_, _| {}), Err(LogError::Corrupt { .. })));
            assert_eq!(log.entries(3, 4, None).unwrap().len(), 1, "other frames still read");
            drop(log);
            // Without its index the segment is scanned: opening fails instead of truncating.
            std::fs::remove_file(dir.path().join(file_name(3, "index"))).unwrap();
            let err = PartitionLog::open(dir.path(), opts(SEG), &logger()).err().unwrap();
            assert!(matches!(err, LogError::Corrupt { position: 137, .. }), "{err}");
            assert_eq!(std::fs::read(&sealed).unwrap(), raw, "nothing was truncated");
        }

        #[test]
        fn torn_sealed_segment_is_corruption() {
            let dir = tempfile::tempdir().unwrap();
            build(dir.path(), 5);
            let sealed = dir.path().join(file_name(1, "log"));
            let f = std::fs::OpenOptions::new().write(true).open(&sealed).unwrap();
            f.set_len(200).unwrap();
            drop(f);
            let err = PartitionLog::open(dir.path(), opts(SEG), &logger()).err().unwrap();
            assert!(matches!(err, LogError::Corrupt { .. }), "{err}");
        }

        fn flip(path: &std::path::Path, at: usize) {
            let mut raw = std::fs::read(path).unwrap();
            raw[at] ^= 0x10;
            std::fs::write(path, &raw).unwrap();
        }

        fn bases_of(bytes: &[u8]) -> Vec<i64> {
            let mut v = Vec::new();
            let mut rest = bytes;
            while !rest.is_empty() {
                let h = crate::log::batch::BatchHeader::parse(rest).unwrap();
                v.push(h.base_offset);
                rest = &rest[h.total_len()..];
            }
            v
        }

        #[test]
        fn damaged_sealed_frame_is_never_served_and_its_neighbours_are() {
            use crate::log::{is_damaged_placeholder, OnDamage};
            let dir = tempfile::tempdir().unwrap();
            build(dir.path(), 5); // segments [1,2] [3,4] [5]; entry i holds offsets 2(i-1)..2i
            flip(&dir.path().join(file_name(3, "log")), 137 + 80); // inside the batch of entry 4
            let (log, _) = PartitionLog::open(dir.path(), opts(SEG), &logger()).unwrap();
            // Fetch: the batches before the damaged one are served, a read starting at it fails,
            // the ones after it are served.
            assert_eq!(bases_of(&log.read(0, usize::MAX, i64::MAX).unwrap()), vec![0, 2, 4]);
            assert!(matches!(log.read(6, usize::MAX, i64::MAX), Err(LogError::Corrupt { .. })));
            assert!(matches!(log.read(7, usize::MAX, i64::MAX), Err(LogError::Corrupt { .. })));
            assert_eq!(bases_of(&log.read(8, usize::MAX, i64::MAX).unwrap()), vec![8]);
            let d = log.damaged();
            assert_eq!(d.keys().copied().collect::<Vec<_>>(), vec![4]);
            assert_eq!((d[&4].offsets, d[&4].position), ((6, 8), 137));
            // Raft: replication stops before it; apply gets a placeholder with its offsets.
            let sent = log.entries_with(1, 6, None, OnDamage::Stop).unwrap();
            assert_eq!(sent.iter().map(|e| e.index).collect::<Vec<_>>(), vec![1, 2, 3]);
            let applied = log.entries_with(1, 6, None, OnDamage::Placeholder).unwrap();
            assert_eq!(applied.len(), 5);
            assert_eq!(is_damaged_placeholder(&applied[3]), Some(8));
            assert_eq!((applied[3].index, applied[3].term), (4, 1));
            assert!(applied.iter().enumerate().all(|(i, e)| (i == 3) == is_damaged_placeholder(e).is_some()));
            assert!(log.entries(1, 6, None).is_err(), "strict reads still fail");
        }

        #[test]
        fn sealed_segment_rebuild_keeps_a_damaged_frame_with_an_intact_index_record() {
            let dir = tempfile::tempdir().unwrap();
            build(dir.path(), 5);
            flip(&dir.path().join(file_name(3, "log")), 137 + 80); // entry 4
            flip(&dir.path().join(file_name(3, "index")), 10); // record of entry 3: rebuild by scan
            let (log, rep) = PartitionLog::open(dir.path(), opts(SEG), &logger()).unwrap();
            assert_eq!(rep.indexes_rebuilt, 1);
            assert_eq!(log.damaged().keys().copied().collect::<Vec<_>>(), vec![4], "found while opening");
            assert_eq!((log.last_index(), log.next_offset()), (5, 10));
            assert!(log.read(6, 100, i64::MAX).is_err());
            // Without any index record for it the segment cannot be opened, as before.
            drop(log);
            std::fs::remove_file(dir.path().join(file_name(3, "index"))).unwrap();
            assert!(matches!(PartitionLog::open(dir.path(), opts(SEG), &logger()), Err(LogError::Corrupt { .. })));
        }

        #[test]
        fn damaged_committed_frame_in_the_active_segment_is_kept_not_cut() {
            let dir = tempfile::tempdir().unwrap();
            build(dir.path(), 6); // active segment [5, 6]
            let active = dir.path().join(file_name(5, "log"));
            flip(&active, 80); // entry 5, followed by the intact entry 6
            let len = std::fs::metadata(&active).unwrap().len();
            // Committed through 6: damage, kept in place; entry 6 is still served.
            let (log, rep) = PartitionLog::open_committed(dir.path(), opts(SEG), 6, &logger()).unwrap();
            assert_eq!((rep.truncated_bytes, log.last_index()), (0, 6));
            assert_eq!(log.damaged().keys().copied().collect::<Vec<_>>(), vec![5]);
            assert_eq!(bases_of(&log.read(10, usize::MAX, i64::MAX).unwrap()), vec![10]);
            assert!(log.read(8, usize::MAX, i64::MAX).is_err());
            assert_eq!(std::fs::metadata(&active).unwrap().len(), len);
            drop(log);
            // Committed only through 4: a torn write that was never acknowledged; the tail goes.
            let (log, rep) = PartitionLog::open_committed(dir.path(), opts(SEG), 4, &logger()).unwrap();
            assert_eq!((rep.truncated_bytes, log.last_index()), (len, 4));
            assert!(log.damaged().is_empty());
        }

        #[test]
        fn a_damaged_entry_is_repaired_only_with_a_matching_copy() {
            let dir = tempfile::tempdir().unwrap();
            build(dir.path(), 5);
            let sealed = dir.path().join(file_name(3, "log"));
            let original = std::fs::read(&sealed).unwrap();
            flip(&sealed, 137 + 80); // entry 4
            let (mut log, _) = PartitionLog::open(dir.path(), opts(SEG), &logger()).unwrap();
            assert!(log.read(6, 100, i64::MAX).is_err());
            assert!(log.has_damage());
            // The copy another replica holds (what it would send).
            let other = tempfile::tempdir().unwrap();
            build(other.path(), 5);
            let (theirs, _) = PartitionLog::open(other.path(), opts(SEG), &logger()).unwrap();
            let copy = theirs.entries(4, 5, None).unwrap().remove(0);
            // Copies that do not fit are refused and change nothing.
            let mut wrong_term = copy.clone();
            wrong_term.term = 2;
            assert!(log.repair(&wrong_term).is_err());
            let mut bad_crc = copy.clone();
            let mut data = bad_crc.data.to_vec();
            *data.last_mut().unwrap() ^= 1;
            bad_crc.data = data.into();
            assert!(matches!(log.repair(&bad_crc), Err(LogError::InvalidBatch { .. })));
            let other_entry = theirs.entries(5, 6, None).unwrap().remove(0);
            let mut misplaced = other_entry;
            misplaced.index = 4;
            assert!(log.repair(&misplaced).is_err());
            assert!(log.has_damage());
            // The right copy: written in place, served again, nothing else moves.
            assert!(log.repair(&copy).unwrap());
            assert!(!log.has_damage());
            assert!(!log.repair(&copy).unwrap(), "nothing left to repair");
            assert_eq!(std::fs::read(&sealed).unwrap(), original);
            assert_eq!(bases_of(&log.read(0, usize::MAX, i64::MAX).unwrap()), vec![0, 2, 4, 6, 8]);
            drop(log);
            let (log, _) = PartitionLog::open(dir.path(), opts(SEG), &logger()).unwrap();
            assert_eq!(log.entries(1, 6, None).unwrap(), theirs.entries(1, 6, None).unwrap());
        }
    }
}
