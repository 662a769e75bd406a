//! Queued writes: what the group actor decides and the node's disk writer carries out.
//!
//! A log (and its group's vote and commit files) never writes from the group's actor while a
//! group runs: appends, truncations and hard-state updates are computed in memory and turned into
//! [`WriteOp`]s — a positional write of `Bytes` slices (the entry data itself, never copied), a
//! `set_len`, an fsync — that the disk writer (`raft::writer`) executes in order. Every op names
//! its file by an open handle ([`DiskFile`]), never by path, so a file that the actor unlinks
//! meanwhile (retention, a truncated suffix, a snapshot install) only lets queued writes land in
//! the orphaned inode, never in a new file with the same name.
//!
//! Logs opened outside a group (recovery, tools, tests) run their ops at once, on the caller's
//! thread ([`PartitionLog::set_deferred`]). This file also holds that side of [`PartitionLog`]:
//! taking the queued writes, reporting them done (which releases the entries kept in memory),
//! and the handles to fsync.

use std::io::{IoSlice, Seek, SeekFrom, Write};
use std::sync::Arc;

use bytes::Bytes;
use slog::warn;

use super::segment::Segment;

use super::{IoContext, PartitionLog, Result};

pub use super::file_cache::DiskFile;

/// One write operation, executed by the disk writer in queue order.
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// Writes `bufs` back to back at byte `pos` of the file (one vectored write).
    Write { to: Arc<DiskFile>, pos: u64, bufs: Vec<Bytes> },
    /// Cuts (or extends) the file to `len` bytes.
    SetLen { to: Arc<DiskFile>, len: u64 },
    /// fsyncs the file (a sealed segment, a directory after files were created or removed).
    Sync { to: Arc<DiskFile> },
}

impl WriteOp {
    /// Bytes the op writes.
    pub fn len(&self) -> u64 {
        match self {
            WriteOp::Write { bufs, .. } => bufs.iter().map(|b| b.len() as u64).sum(),
            _ => 0,
        }
    }

    /// Whether the op writes no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Carries the op out on this thread.
    pub fn run(&self) -> Result<()> {
        match self {
            WriteOp::Write { to, pos, bufs } => write_at(to, *pos, bufs),
            WriteOp::SetLen { to, len } => to.set_len(*len).ctx(&to.path),
            WriteOp::Sync { to } => to.sync_data().ctx(&to.path),
        }
    }
}

/// Runs `ops` in order, stopping at the first error.
pub fn run_all(ops: &[WriteOp]) -> Result<()> {
    ops.iter().try_for_each(WriteOp::run)
}

/// Positions the file's cursor and writes every slice (partial writes advance through them).
/// Only the disk writer (or the one thread that owns a log not yet handed to a group) moves
/// the cursor of these files; every reader uses positional reads.
fn write_at(to: &DiskFile, pos: u64, bufs: &[Bytes]) -> Result<()> {
    to.write_with(|mut f| {
        f.seek(SeekFrom::Start(pos))?;
        let mut slices: Vec<IoSlice<'_>> = bufs.iter().filter(|b| !b.is_empty()).map(|b| IoSlice::new(b)).collect();
        let mut rest = &mut slices[..];
        while !rest.is_empty() {
            match f.write_vectored(rest) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut rest, n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    })
    .ctx(&to.path)
}

/// The deferred-write side of a [`PartitionLog`].
impl PartitionLog {
    /// Makes the log queue its writes for a writer (`true`, a Raft group's log) or run them at
    /// once on the caller's thread (`false`, the default). Turning deferral off runs what is
    /// queued.
    pub fn set_deferred(&mut self, deferred: bool) -> Result<()> {
        self.deferred = deferred;
        self.flush_if_immediate()
    }

    /// Queues one more op behind the log's own (the group's vote and commit files).
    pub fn queue_op(&mut self, op: WriteOp) -> Result<()> {
        self.queue.push(op);
        self.flush_if_immediate()
    }

    /// The writes queued since the last call, in order, and the write sequence they complete:
    /// once a writer has carried them out, pass the sequence to [`Self::written`].
    pub fn take_writes(&mut self) -> (Vec<WriteOp>, u64) {
        (std::mem::take(&mut self.queue), self.write_seq)
    }

    /// Every write up to sequence `seq` is in the files: the entries kept in memory for it are
    /// released and read from the files from now on.
    pub fn written(&mut self, seq: u64) {
        // Unwritten entries are a suffix of the log: stop at the first segment that has none.
        for seg in self.segments.iter_mut().rev().filter(|s| !s.is_empty()) {
            if seg.first_pending_slot() == seg.len() {
                break;
            }
            seg.release(seq);
        }
    }

    /// Bytes of entry data held in memory until their writes are done.
    pub fn pending_bytes(&self) -> u64 {
        let with_pending = self.segments.iter().rev().filter(|s| !s.is_empty());
        with_pending.take_while(|s| s.first_pending_slot() < s.len()).map(Segment::pending_bytes).sum()
    }

    pub(super) fn flush_if_immediate(&mut self) -> Result<()> {
        if self.deferred {
            return Ok(());
        }
        self.run_queued()
    }

    /// Runs the queued writes on this thread (only when no writer holds earlier ones).
    fn run_queued(&mut self) -> Result<()> {
        let ops = std::mem::take(&mut self.queue);
        super::write::run_all(&ops)?;
        self.written(self.write_seq);
        Ok(())
    }

    /// Shared handles of every `.log` with unsynced writes (and of the directory after files
    /// were created or deleted), clearing their dirty flags, plus the last raft index those
    /// writes cover. The caller fsyncs them on another thread, after the writes queued so far.
    pub fn take_dirty(&mut self) -> (Vec<Arc<DiskFile>>, u64) {
        let mut files = Vec::new();
        for seg in self.segments.iter_mut().filter(|s| s.is_log_dirty()) {
            seg.take_dirty(&mut files);
        }
        if self.dir_dirty {
            match DiskFile::dir(&self.dir) {
                Ok(d) => {
                    files.push(d);
                    self.dir_dirty = false;
                }
                Err(e) => warn!(self.logger, "cannot open the log directory"; "error" => %e),
            }
        }
        (files, self.last_index())
    }

    /// Ops that fsync every dirty file (all three of each segment) and the directory, clearing
    /// the flags: the last job of a group that stops.
    pub fn sync_ops(&mut self) -> Vec<WriteOp> {
        let mut ops = Vec::new();
        for seg in self.segments.iter_mut() {
            seg.sync_ops(&mut ops);
        }
        if self.dir_dirty {
            if let Ok(d) = DiskFile::dir(&self.dir) {
                ops.push(WriteOp::Sync { to: d });
                self.dir_dirty = false;
            }
        }
        ops
    }

    /// Runs the queued writes and fsyncs everything dirty on this thread (only where no writer
    /// holds writes of this log).
    pub fn sync(&mut self) -> Result<()> {
        self.run_queued()?;
        let ops = self.sync_ops();
        super::write::run_all(&ops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_write_at_positions_and_cut() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let f = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&p).unwrap();
        let f = DiskFile::new(f, p.clone());
        let ops = vec![
            WriteOp::Write {
                to: f.clone(),
                pos: 0,
                bufs: vec![Bytes::from_static(b"hello "), Bytes::from_static(b"world")],
            },
            WriteOp::Write { to: f.clone(), pos: 6, bufs: vec![Bytes::from_static(b"WORLD!")] },
            WriteOp::SetLen { to: f.clone(), len: 11 },
            WriteOp::Sync { to: f.clone() },
        ];
        assert_eq!(ops[0].len(), 11);
        run_all(&ops).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"hello WORLD");
    }

    #[test]
    fn deferred_log_serves_unwritten_entries_and_keeps_order_across_a_truncation() {
        use crate::log::partition_log::tests::{batch_entry, fill, logger, opts};
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = PartitionLog::open(dir.path(), opts(400), &logger()).unwrap();
        log.set_deferred(true).unwrap();
        let _ = log.take_writes();
        fill(&mut log, 1, 5, 1); // two 137-byte frames per segment: [1,2] [3,4] [5]
        assert_eq!(log.segment_count(), 3);
        let all = log.read(0, usize::MAX, i64::MAX).unwrap();
        assert_eq!(all.len(), 5 * 101, "every batch, from memory");
        let (first, seq1) = log.take_writes();
        // A new leader's entry 4 replaces 4 and 5: segment [5] is unlinked, [3,4] is cut.
        let e4 = batch_entry(4, 2, 6, 4, 77);
        log.append(std::slice::from_ref(&e4)).unwrap();
        let (second, seq2) = log.take_writes();
        assert_eq!(log.entries(4, 5, None).unwrap(), vec![e4.clone()]);
        // The writer carries out the first job: entries 1..=3 are read from the files now.
        run_all(&first).unwrap();
        log.written(seq1);
        assert_eq!(log.entries(3, 5, None).unwrap()[1], e4, "4 is still the new one, from memory");
        assert!(log.pending_bytes() > 0);
        run_all(&second).unwrap();
        log.written(seq2);
        assert_eq!(log.pending_bytes(), 0);
        let before: Vec<_> = log.entries(1, 5, None).unwrap();
        drop(log);
        let (log, rep) = PartitionLog::open(dir.path(), opts(400), &logger()).unwrap();
        assert_eq!(rep.truncated_bytes, 0, "exactly the kept entries on disk");
        assert_eq!(log.entries(1, 5, None).unwrap(), before);
        assert_eq!((log.last_index(), log.term(4), log.next_offset()), (4, Some(2), 10));
    }
}
