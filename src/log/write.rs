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
//! thread ([`crate::log::PartitionLog::set_deferred`]).

use std::fs::File;
use std::io::{IoSlice, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::{IoContext, LogError, Result};

/// An open file and its path (for errors), shared by the log and queued ops.
#[derive(Debug)]
pub struct DiskFile {
    pub file: File,
    pub path: PathBuf,
}

impl DiskFile {
    pub fn new(file: File, path: PathBuf) -> Arc<DiskFile> {
        Arc::new(DiskFile { file, path })
    }

    /// Opens a directory for fsync.
    pub fn dir(path: &Path) -> Result<Arc<DiskFile>> {
        let f = File::open(path).ctx(path)?;
        Ok(DiskFile::new(f, path.to_path_buf()))
    }
}

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
            WriteOp::SetLen { to, len } => to.file.set_len(*len).ctx(&to.path),
            WriteOp::Sync { to } => to.file.sync_data().ctx(&to.path),
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
    let mut f = &to.file;
    f.seek(SeekFrom::Start(pos)).ctx(&to.path)?;
    let mut slices: Vec<IoSlice<'_>> = bufs.iter().filter(|b| !b.is_empty()).map(|b| IoSlice::new(b)).collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        match f.write_vectored(rest) {
            Ok(0) => return Err(LogError::io(&to.path, std::io::ErrorKind::WriteZero.into())),
            Ok(n) => IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(LogError::io(&to.path, e)),
        }
    }
    Ok(())
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
}
