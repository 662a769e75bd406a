//! Installing a snapshot that carries segment files (see `snapshot_descriptor.rs`): the received
//! `.log` files replace the whole log, atomically with respect to crashes.
//!
//! 1. The receiver (`partition::snapshot`) writes each `.log` into the staging directory
//!    `snapshot-<index>.tmp/` inside the partition directory and fsyncs it.
//! 2. [`prepare`] (off the group actor) checks every file against the manifest (length, every
//!    frame's CRC and batch, contiguous indexes and offsets, last index and term of each file,
//!    the snapshot's index and term at the end), writes each segment's `.index` and
//!    `.timeindex` beside it, fsyncs them and the staging directory, and returns the entry
//!    tables: a [`PreparedSnapshot`].
//! 3. [`PartitionLog::install_snapshot`] (on the group actor; metadata operations only) writes
//!    the durable marker `snapshot-install` (the commit point: index, term, new `log-start`,
//!    floor, segment bases), then [`finish`]: deletes every old segment file (only while the
//!    staging directory still holds every new file), fsyncs the directory, renames the staged
//!    files in, fsyncs, stores `log-start`, `raft-start` (index + 1) and the floor, removes the
//!    marker and the staging directory.
//!
//! On open, [`recover`] runs before anything else reads the directory: with a marker, [`finish`]
//! runs again (each step is idempotent: old files are deleted only if no staged file was moved
//! yet, renames skip files already moved); without one, staging directories are leftovers of
//! transfers that never committed and are removed. So a crash at any step leaves the old log or
//! the new one, never a mix.

use std::any::Any;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use slog::{info, warn, Logger};

use super::batch::BATCH_HEADER_LEN;
use super::index::{encode_index_record, encode_time_record, EntryMeta, TimeIndexBuilder};
use super::partition_log::{LogKind, PartitionLog};
use super::recovery::scan_log;
use super::retention::LogStart;
use super::segment::{file_name, parse_log_name, Segment};
use super::snapshot_descriptor::SnapshotDescriptor;
use super::{be_i64, be_u32, be_u64, state_file, sync_dir, IoContext, LogError, Result};

const MARKER: &str = "snapshot-install";
const MARKER_MAGIC: &[u8; 4] = b"CSI1";

/// The staging directory of the snapshot at `index`.
pub fn staging_dir(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("snapshot-{index}.tmp"))
}

fn is_staging_name(name: &str) -> bool {
    name.strip_prefix("snapshot-").and_then(|r| r.strip_suffix(".tmp")).is_some_and(|n| n.parse::<u64>().is_ok())
}

/// A received snapshot, checked and indexed, ready to replace the log.
pub struct PreparedSnapshot {
    pub index: u64,
    pub term: u64,
    pub staging: PathBuf,
    /// Each segment's base index and entry table.
    pub segments: Vec<(u64, Vec<EntryMeta>)>,
    /// The new `log-start`.
    pub start_index: u64,
    pub prev_term: u64,
    pub start_offset: i64,
    /// The DeleteRecords floor (0: none).
    pub floor: i64,
    /// The Kafka offset after `index`.
    pub next_offset: i64,
    /// State the owner derived from the batches while they were checked (a partition: its
    /// producer table), handed to the state machine on install.
    pub state: Option<Box<dyn Any + Send>>,
}

impl std::fmt::Debug for PreparedSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedSnapshot")
            .field("index", &self.index)
            .field("term", &self.term)
            .field("staging", &self.staging)
            .field("segments", &self.segments.len())
            .finish()
    }
}

/// What the marker holds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Marker {
    index: u64,
    term: u64,
    start: LogStart,
    floor: i64,
    bases: Vec<u64>,
}

impl Marker {
    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(52 + 8 * self.bases.len());
        for v in [self.index, self.term, self.start.start_index, self.start.prev_term] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        b.extend_from_slice(&self.start.start_offset.to_be_bytes());
        b.extend_from_slice(&self.floor.to_be_bytes());
        b.extend_from_slice(&(self.bases.len() as u32).to_be_bytes());
        for base in &self.bases {
            b.extend_from_slice(&base.to_be_bytes());
        }
        b
    }

    fn decode(path: &Path, b: &[u8]) -> Result<Marker> {
        let bad = || LogError::CorruptState { path: path.to_path_buf(), reason: "wrong size".into() };
        if b.len() < 52 {
            return Err(bad());
        }
        let n = be_u32(b, 48) as usize;
        if b.len() != 52 + 8 * n {
            return Err(bad());
        }
        Ok(Marker {
            index: be_u64(b, 0),
            term: be_u64(b, 8),
            start: LogStart {
                start_index: be_u64(b, 16),
                prev_term: be_u64(b, 24),
                start_offset: be_i64(b, 32),
                reset_pending: false,
            },
            floor: be_i64(b, 40),
            bases: (0..n).map(|i| be_u64(b, 52 + 8 * i)).collect(),
        })
    }
}

fn remove_file(p: &Path) -> Result<()> {
    match std::fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(LogError::io(p, e)),
        _ => Ok(()),
    }
}

fn write_synced(p: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = File::create(p).ctx(p)?;
    f.write_all(bytes).ctx(p)?;
    f.sync_all().ctx(p)
}

/// Step 2: checks the staged `.log` files of `desc` (snapshot `index`, `term`) and writes their
/// indexes. `on_batch` sees the header bytes of every batch (all of a control batch), in order. Runs off the group actor.
pub fn prepare(
    dir: &Path,
    desc: &SnapshotDescriptor,
    index: u64,
    term: u64,
    interval: u64,
    on_batch: &mut dyn FnMut(&[u8]),
) -> Result<PreparedSnapshot> {
    let staging = staging_dir(dir, index);
    let invalid = |why: String| LogError::Invalid(format!("snapshot {index}: {why}"));
    let (mut next_index, mut prev_term, mut next_offset) = (desc.start_index, desc.prev_term, desc.start_offset);
    let mut segments = Vec::with_capacity(desc.files.len());
    let mut header = [0u8; BATCH_HEADER_LEN];
    for f in &desc.files {
        if f.name != file_name(f.base_index, "log") || f.base_index != next_index {
            return Err(invalid(format!("file {} does not start at index {next_index}", f.name)));
        }
        let path = staging.join(&f.name);
        let file = File::open(&path).ctx(&path)?;
        file.sync_all().ctx(&path)?;
        let len = file.metadata().ctx(&path)?.len();
        if len != f.length {
            return Err(invalid(format!("{} holds {len} bytes, the manifest {}", f.name, f.length)));
        }
        let scan = scan_log(&path, f.base_index, LogKind::KafkaBatches, next_offset, prev_term, None)?;
        if let Some((pos, why)) = scan.bad {
            return Err(LogError::corrupt(&path, pos, why));
        }
        let last = scan.metas.last().ok_or_else(|| invalid(format!("{} is empty", f.name)))?;
        let last_index = f.base_index + scan.metas.len() as u64 - 1;
        if scan.metas.len() as u64 != f.entries || last_index != f.last_index || last.term != f.last_term {
            return Err(invalid(format!(
                "{} ends at index {last_index} term {}, the manifest says {} term {}",
                f.name, last.term, f.last_index, f.last_term
            )));
        }
        for m in scan.metas.iter().filter(|m| m.is_batch()) {
            file.read_exact_at(&mut header, m.data_pos()).ctx(&path)?;
            if crate::log::batch::BatchHeader::parse(&header).is_ok_and(|h| h.is_control()) {
                // A transaction marker: its record says commit or abort (`partition::txn`).
                let mut whole = vec![0u8; m.data_len as usize];
                file.read_exact_at(&mut whole, m.data_pos()).ctx(&path)?;
                on_batch(&whole);
            } else {
                on_batch(&header);
            }
        }
        let mut idx = Vec::with_capacity(scan.metas.len() * 64);
        for (slot, m) in scan.metas.iter().enumerate() {
            encode_index_record(f.base_index + slot as u64, m, &mut idx);
        }
        let (_, recs) = TimeIndexBuilder::rebuild(interval, &scan.metas);
        let mut time = Vec::new();
        for t in &recs {
            encode_time_record(t, &scan.metas[t.slot], &mut time);
        }
        write_synced(&staging.join(file_name(f.base_index, "index")), &idx)?;
        write_synced(&staging.join(file_name(f.base_index, "timeindex")), &time)?;
        next_index = last_index + 1;
        prev_term = last.term;
        next_offset = last.offset_end;
        segments.push((f.base_index, scan.metas));
    }
    if next_index != index + 1 || prev_term != term || next_offset != desc.next_offset {
        return Err(invalid(format!(
            "files end at index {} term {prev_term} offset {next_offset}, the snapshot at {index} term {term} offset {}",
            next_index - 1,
            desc.next_offset
        )));
    }
    sync_dir(&staging)?;
    Ok(PreparedSnapshot {
        index,
        term,
        staging,
        segments,
        start_index: desc.start_index,
        prev_term: desc.prev_term,
        start_offset: desc.start_offset,
        floor: desc.floor,
        next_offset,
        state: None,
    })
}

/// The steps of [`finish`] carried out before a simulated crash (tests), or all.
fn finish_steps(dir: &Path, m: &Marker, mut budget: usize) -> Result<bool> {
    let mut step = || {
        let go = budget > 0;
        budget = budget.saturating_sub(1);
        go
    };
    let staging = staging_dir(dir, m.index);
    let staged = |base: u64, ext: &str| staging.join(file_name(base, ext));
    const EXTS: [&str; 3] = ["index", "timeindex", "log"];
    let all_staged = m.bases.iter().all(|b| EXTS.iter().all(|e| staged(*b, e).exists()));
    if all_staged {
        // Nothing moved yet: the old log goes first.
        for de in std::fs::read_dir(dir).ctx(dir)? {
            let name = de.ctx(dir)?.file_name().to_string_lossy().into_owned();
            let segment_file = ["log", "index", "timeindex", super::txn_index::EXT]
                .iter()
                .any(|ext| name.strip_suffix(ext).is_some_and(|stem| parse_log_name(&format!("{stem}log")).is_some()));
            if segment_file || name.ends_with(".swap") || name.ends_with(".cleaned") {
                if !step() {
                    return Ok(false);
                }
                remove_file(&dir.join(&name))?;
            }
        }
        sync_dir(dir)?;
    }
    for base in &m.bases {
        for ext in EXTS {
            let from = staged(*base, ext);
            if !from.exists() {
                continue;
            }
            if !step() {
                return Ok(false);
            }
            std::fs::rename(&from, dir.join(file_name(*base, ext))).ctx(&from)?;
        }
    }
    sync_dir(dir)?;
    if !step() {
        return Ok(false);
    }
    m.start.store(dir)?;
    if !step() {
        return Ok(false);
    }
    super::raft_start::store(dir, m.index + 1)?;
    if !step() {
        return Ok(false);
    }
    if m.floor > super::records_start::load(dir)? {
        super::records_start::store(dir, m.floor)?;
    }
    if !step() {
        return Ok(false);
    }
    remove_file(&dir.join(MARKER))?;
    sync_dir(dir)?;
    match std::fs::remove_dir_all(&staging) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(LogError::io(&staging, e)),
        _ => {}
    }
    Ok(true)
}

/// Step 3 after the marker: see the module docs.
fn finish(dir: &Path, m: &Marker) -> Result<()> {
    finish_steps(dir, m, usize::MAX).map(|_| ())
}

/// On open: completes an install whose marker is durable, or removes staging directories of
/// transfers that never reached it. Returns whether an install was completed.
pub fn recover(dir: &Path, logger: &Logger) -> Result<bool> {
    let marker = dir.join(MARKER);
    if let Some(b) = state_file::read(&marker, MARKER_MAGIC)? {
        let m = Marker::decode(&marker, &b)?;
        warn!(logger, "completing an interrupted snapshot install"; "index" => m.index, "segments" => m.bases.len());
        finish(dir, &m)?;
        return Ok(true);
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(false);
    };
    for de in entries {
        let name = de.ctx(dir)?.file_name().to_string_lossy().into_owned();
        if is_staging_name(&name) {
            info!(logger, "removing the staging directory of an unfinished snapshot transfer"; "name" => name.as_str());
            let p = dir.join(&name);
            std::fs::remove_dir_all(&p).ctx(&p)?;
        }
    }
    Ok(false)
}

impl PartitionLog {
    /// Replaces the whole log with the prepared snapshot's segments (see the module docs): the
    /// log then holds entries from the snapshot's data start to `index`, raft starts at
    /// `index + 1`, and an empty active segment follows. On the group actor: renames only.
    pub fn install_snapshot(&mut self, p: &PreparedSnapshot) -> Result<()> {
        let start = LogStart {
            start_index: p.start_index,
            prev_term: p.prev_term,
            start_offset: p.start_offset,
            reset_pending: false,
        };
        let m = Marker {
            index: p.index,
            term: p.term,
            start,
            floor: p.floor,
            bases: p.segments.iter().map(|s| s.0).collect(),
        };
        state_file::store(&self.dir.join(MARKER), MARKER_MAGIC, &m.encode())?;
        self.segments.iter().for_each(Segment::retire);
        self.segments.clear();
        self.damaged.get_mut().unwrap_or_else(|e| e.into_inner()).clear();
        finish(&self.dir, &m)?;
        let interval = self.opts.index_interval_bytes;
        for (base, metas) in &p.segments {
            self.segments.push(Segment::open(&self.dir, *base, interval, metas.clone())?);
        }
        self.segments.push(Segment::create(&self.dir, p.index + 1, interval)?);
        sync_dir(&self.dir)?;
        self.start = start;
        self.raft_start = p.index + 1;
        self.records_start = self.records_start.max(p.floor);
        info!(self.logger, "installed a snapshot's segments"; "index" => p.index, "term" => p.term,
            "segments" => p.segments.len(), "first_index" => p.start_index, "next_offset" => self.next_offset());
        Ok(())
    }
}

#[cfg(test)]
#[path = "snapshot_install_tests.rs"]
mod tests;
