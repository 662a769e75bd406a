//! Replacing a segment by its cleaned copy, atomically and crash-safely.
//!
//! Steps (the cleaner thread does 1–3, the partition's group actor 4–5):
//! 1. write `X.log.cleaned`, `X.index.cleaned`, `X.timeindex.cleaned`; fsync each;
//! 2. rename the `.index` and `.timeindex` copies to `.swap`, then `X.log.cleaned` to
//!    `X.log.swap` (the commit point: from here the swap will happen);
//! 3. fsync the directory;
//! 4. delete `X.txnindex` (the old segment's aborted index; see [`complete`]), rename
//!    `X.index.swap`, `X.timeindex.swap`, then `X.log.swap` over the originals;
//! 5. fsync the directory (queued on the disk writer).
//!
//! On open ([`recover`]): every `.cleaned` file is deleted (steps 1–2 unfinished: the old segment
//! stays); a segment with `X.log.swap` whose `X.log` still exists has its swap completed (step 4
//! again; renames are atomic, so each file is old or new, and the `.log` goes last); other
//! `.swap` files (no `X.log.swap`, or no `X.log` because retention deleted the segment) are
//! deleted. So a crash at any step leaves exactly the old segment or exactly the new one.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use protobuf::ProtobufEnum;
use raft::eraftpb::Entry;
use slog::{info, Logger};

use crate::log::index::{encode_index_record, encode_time_record, EntryMeta, TimeIndexBuilder};
use crate::log::segment::{encode_header, file_name, EntryOffsets, FRAME_HEADER_LEN};
use crate::log::{sync_dir, IoContext, LogError, Result};

/// Extensions of a segment's files, the `.log` last (the order of step 2 and 4).
const EXTS: [&str; 3] = ["index", "timeindex", "log"];

fn with_suffix(dir: &Path, base: u64, ext: &str, suffix: &str) -> PathBuf {
    dir.join(format!("{}.{suffix}", file_name(base, ext)))
}

fn remove_if_exists(p: &Path) -> Result<bool> {
    match std::fs::remove_file(p) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(LogError::io(p, e)),
    }
}

/// Writes the cleaned copy of segment `base`, entry by entry (steps 1–3).
pub struct CleanedWriter {
    dir: PathBuf,
    base: u64,
    log: BufWriter<File>,
    pos: u64,
    metas: Vec<EntryMeta>,
    index: Vec<u8>,
}

impl CleanedWriter {
    /// Creates `X.log.cleaned` (replacing a leftover).
    pub fn create(dir: &Path, base: u64) -> Result<Self> {
        let p = with_suffix(dir, base, "log", "cleaned");
        let f = File::create(&p).ctx(&p)?;
        Ok(CleanedWriter {
            dir: dir.to_path_buf(),
            base,
            log: BufWriter::with_capacity(1 << 20, f),
            pos: 0,
            metas: Vec::new(),
            index: Vec::new(),
        })
    }

    /// Appends the frame of `e` (the next raft index of the segment) covering `o`.
    pub fn push(&mut self, e: &Entry, o: EntryOffsets) -> Result<()> {
        let p = with_suffix(&self.dir, self.base, "log", "cleaned");
        let m = EntryMeta {
            term: e.term,
            pos: self.pos,
            data_len: e.data.len() as u32,
            ctx_len: e.context.len() as u32,
            entry_type: e.entry_type.value() as u8,
            offset_start: o.offset_start,
            offset_end: o.offset_end,
            max_ts: o.max_ts,
        };
        self.log.write_all(&encode_header(e)).ctx(&p)?;
        self.log.write_all(&e.data).ctx(&p)?;
        self.log.write_all(&e.context).ctx(&p)?;
        self.pos += (FRAME_HEADER_LEN + e.data.len() + e.context.len()) as u64;
        encode_index_record(e.index, &m, &mut self.index);
        self.metas.push(m);
        Ok(())
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.pos
    }

    /// Finishes steps 1–3: the new segment's entry table. `mtime`: the modification time to
    /// give the new `.log` (the old one's, so time-based retention sees the same age).
    pub fn finish(self, interval: u64, mtime: Option<std::time::SystemTime>) -> Result<Vec<EntryMeta>> {
        let CleanedWriter { dir, base, log, metas, index, .. } = self;
        let log_path = with_suffix(&dir, base, "log", "cleaned");
        let f = log.into_inner().map_err(|e| LogError::io(&log_path, e.into_error()))?;
        if let Some(t) = mtime {
            f.set_modified(t).ctx(&log_path)?;
        }
        f.sync_all().ctx(&log_path)?;
        let (_, recs) = TimeIndexBuilder::rebuild(interval, &metas);
        let mut time = Vec::new();
        for t in &recs {
            encode_time_record(t, &metas[t.slot], &mut time);
        }
        for (ext, bytes) in [("index", &index), ("timeindex", &time)] {
            let p = with_suffix(&dir, base, ext, "cleaned");
            let mut f = File::create(&p).ctx(&p)?;
            f.write_all(bytes).ctx(&p)?;
            f.sync_all().ctx(&p)?;
        }
        for ext in EXTS {
            let from = with_suffix(&dir, base, ext, "cleaned");
            std::fs::rename(&from, with_suffix(&dir, base, ext, "swap")).ctx(&from)?;
        }
        sync_dir(&dir)?;
        Ok(metas)
    }

    /// Gives up: removes what was written.
    pub fn abort(self) -> Result<()> {
        let (dir, base) = (self.dir.clone(), self.base);
        drop(self);
        discard(&dir, base)
    }
}

/// Removes every `.cleaned` and `.swap` file of segment `base`.
pub fn discard(dir: &Path, base: u64) -> Result<()> {
    for ext in EXTS {
        for suffix in ["cleaned", "swap"] {
            remove_if_exists(&with_suffix(dir, base, ext, suffix))?;
        }
    }
    Ok(())
}

/// Step 4: removes the old segment's aborted-transactions index (`X.txnindex`, which may list
/// ABORT markers the cleaner removed; a missing index is rebuilt from its segment), then renames
/// the `.swap` files of `base` over the segment's files, `.log` last. Returns false (and changes
/// nothing) when there is no `X.log.swap`. The caller fsyncs the directory.
pub fn complete(dir: &Path, base: u64) -> Result<bool> {
    if !with_suffix(dir, base, "log", "swap").exists() {
        return Ok(false);
    }
    remove_if_exists(&dir.join(file_name(base, crate::log::txn_index::EXT)))?;
    for ext in EXTS {
        let from = with_suffix(dir, base, ext, "swap");
        match std::fs::rename(&from, dir.join(file_name(base, ext))) {
            Ok(()) => {}
            // Renamed before a crash.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && ext != "log" => {}
            Err(e) => return Err(LogError::io(&from, e)),
        }
    }
    Ok(true)
}

/// On open: finishes or undoes every interrupted swap in `dir`, whose segments are `bases`.
/// Returns the number of leftover files handled.
pub fn recover(dir: &Path, bases: &[u64], logger: &Logger) -> Result<usize> {
    let mut pending: Vec<u64> = Vec::new();
    let mut n = 0;
    for de in std::fs::read_dir(dir).ctx(dir)? {
        let name = de.ctx(dir)?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".cleaned") {
            remove_if_exists(&dir.join(&name))?;
            n += 1;
        } else if let Some(stem) = name.strip_suffix(".swap") {
            let base = stem.split('.').next().and_then(|b| (b.len() == 20).then(|| b.parse::<u64>().ok()).flatten());
            match base {
                Some(b) => pending.push(b),
                None => {
                    remove_if_exists(&dir.join(&name))?;
                }
            }
            n += 1;
        }
    }
    pending.sort_unstable();
    pending.dedup();
    for base in pending {
        if bases.binary_search(&base).is_ok() && complete(dir, base)? {
            info!(logger, "completed an interrupted segment swap"; "base" => base);
        } else {
            info!(logger, "dropping an uncommitted segment swap"; "base" => base);
            discard(dir, base)?;
        }
    }
    if n > 0 {
        sync_dir(dir)?;
    }
    Ok(n)
}
