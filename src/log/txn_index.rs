//! The aborted-transactions index file of a segment (Kafka's `.txnindex`, `TransactionIndex`
//! and `AbortedTxn`): one file per sealed segment, named like the segment with the `.txnindex`
//! suffix, holding one 34-byte big-endian entry per aborted transaction whose ABORT marker is in
//! that segment: version i16 (= 0), producer id i64, first offset i64, last offset i64 (the
//! marker's), last stable offset i64. Entries are in marker order (strictly increasing last
//! offset).
//!
//! This module is the file format only: encoding, a checked decoding that refuses anything it
//! cannot trust (a length that is not a multiple of 34 — a partial last entry —, an unknown
//! version, an entry out of order or outside its segment's offsets), and an atomic write (`.tmp`,
//! fsync, rename, directory fsync), and the spans of a log's sealed segments
//! ([`PartitionLog::sealed_spans`]) the files are written for. A file that fails the checks is
//! never used: its caller rebuilds it from its segment. Deleted with its segment
//! (`Segment::delete`, reset, open, snapshot install) and by the cleaner's swap; written and
//! checked on open by the partition (`partition/txn_index_files.rs`; see
//! `docs/architecture.md`, "Transactions: partition side").

use std::path::{Path, PathBuf};

use crate::log::partition_log::PartitionLog;
use crate::log::segment::file_name;
use crate::log::state_file::write_atomic;
use crate::log::{IoContext, LogError, Result};

/// Bytes of one entry (Kafka's `AbortedTxn.TOTAL_SIZE`).
pub const ENTRY_LEN: usize = 34;
/// The only entry version Kafka writes (`AbortedTxn.CURRENT_VERSION`).
pub const VERSION: i16 = 0;
/// File name suffix.
pub const EXT: &str = "txnindex";

/// One aborted transaction as the file holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub producer_id: i64,
    pub first_offset: i64,
    /// The offset of its ABORT marker.
    pub last_offset: i64,
    pub last_stable_offset: i64,
}

/// Why a `.txnindex` file is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Damage {
    #[error("length {0} is not a multiple of {ENTRY_LEN}")]
    Length(usize),
    #[error("entry {0}: unknown version {1}")]
    Version(usize, i16),
    #[error("entry {0}: last offset not after the previous entry's")]
    OutOfOrder(usize),
    #[error("entry {0}: offsets outside the segment or first after last")]
    OutOfRange(usize),
}

/// The path of segment `base`'s index in `dir`.
pub fn path(dir: &Path, base: u64) -> PathBuf {
    dir.join(file_name(base, EXT))
}

/// The file's bytes for `entries`.
pub fn encode(entries: &[IndexEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * ENTRY_LEN);
    for e in entries {
        out.extend_from_slice(&VERSION.to_be_bytes());
        for v in [e.producer_id, e.first_offset, e.last_offset, e.last_stable_offset] {
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
    out
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(x)
}

/// The entries of a file whose segment holds offsets `[offset_start, offset_end)`, or why the
/// file cannot be trusted.
pub fn decode(bytes: &[u8], offset_start: i64, offset_end: i64) -> std::result::Result<Vec<IndexEntry>, Damage> {
    if bytes.len() % ENTRY_LEN != 0 {
        return Err(Damage::Length(bytes.len()));
    }
    let mut out: Vec<IndexEntry> = Vec::with_capacity(bytes.len() / ENTRY_LEN);
    for (i, b) in bytes.chunks_exact(ENTRY_LEN).enumerate() {
        let version = i16::from_be_bytes([b[0], b[1]]);
        if version != VERSION {
            return Err(Damage::Version(i, version));
        }
        let e = IndexEntry {
            producer_id: i64_at(b, 2),
            first_offset: i64_at(b, 10),
            last_offset: i64_at(b, 18),
            last_stable_offset: i64_at(b, 26),
        };
        if e.last_offset < offset_start || e.last_offset >= offset_end || e.first_offset > e.last_offset {
            return Err(Damage::OutOfRange(i));
        }
        if out.last().is_some_and(|p| p.last_offset >= e.last_offset) {
            return Err(Damage::OutOfOrder(i));
        }
        out.push(e);
    }
    Ok(out)
}

/// Reads segment `base`'s index: None when the file is missing, `Err(Damage)` inside when it
/// is there but not trusted.
pub fn load(
    dir: &Path,
    base: u64,
    offset_start: i64,
    offset_end: i64,
) -> Result<Option<std::result::Result<Vec<IndexEntry>, Damage>>> {
    let p = path(dir, base);
    match std::fs::read(&p) {
        Ok(bytes) => Ok(Some(decode(&bytes, offset_start, offset_end))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).ctx(&p),
    }
}

/// Writes segment `base`'s index atomically and durably.
pub fn store(dir: &Path, base: u64, entries: &[IndexEntry]) -> Result<()> {
    write_atomic(&path(dir, base), &encode(entries))
}

/// Removes segment `base`'s index, if there.
pub fn remove(dir: &Path, base: u64) -> Result<()> {
    let p = path(dir, base);
    match std::fs::remove_file(&p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(LogError::io(&p, e)),
        _ => Ok(()),
    }
}

/// A sealed segment as its index file needs it: its base (the file's name), its last raft
/// index, and the Kafka offsets `[offset_start, offset_end)` it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentSpan {
    pub base: u64,
    pub last_index: u64,
    pub offset_start: i64,
    pub offset_end: i64,
}

/// What identifies the set of sealed segments without listing them: their count, the first
/// base and the last base. Any roll, truncation, retention, clean or restore changes it, or is
/// told to [`crate::partition::txn_index_files::TxnIndexFiles`] apart (a swap, a restore).
pub type SealedKey = (usize, u64, u64);

impl PartitionLog {
    /// See [`SealedKey`]; no allocation, for the check after every apply.
    pub fn sealed_key(&self) -> SealedKey {
        let sealed = &self.segments[..self.segments.len().saturating_sub(1)];
        let base = |s: Option<&crate::log::segment::Segment>| s.map_or(0, |s| s.base_index);
        (sealed.len(), base(sealed.first()), base(sealed.last()))
    }

    /// The sealed segments (all but the active one), oldest first.
    pub fn sealed_spans(&self) -> Vec<SegmentSpan> {
        let sealed = &self.segments[..self.segments.len().saturating_sub(1)];
        sealed
            .iter()
            .filter_map(|s| {
                let (first, last) = (s.metas.first()?, s.metas.last()?);
                let last_index = s.base_index + s.metas.len() as u64 - 1;
                Some(SegmentSpan {
                    base: s.base_index,
                    last_index,
                    offset_start: first.offset_start,
                    offset_end: last.offset_end,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Vec<IndexEntry> {
        vec![
            IndexEntry { producer_id: 7, first_offset: 100, last_offset: 104, last_stable_offset: 102 },
            IndexEntry { producer_id: 9, first_offset: 101, last_offset: 110, last_stable_offset: 111 },
        ]
    }

    #[test]
    fn kafkas_layout_and_a_round_trip() {
        let b = encode(&entries());
        assert_eq!(b.len(), 2 * ENTRY_LEN);
        // version 0 | producer id | first | last | LSO, big-endian.
        assert_eq!(&b[..2], &[0, 0]);
        assert_eq!(&b[2..10], &7i64.to_be_bytes());
        assert_eq!(&b[10..18], &100i64.to_be_bytes());
        assert_eq!(&b[18..26], &104i64.to_be_bytes());
        assert_eq!(&b[26..34], &102i64.to_be_bytes());
        assert_eq!(decode(&b, 100, 120).unwrap(), entries());
        assert_eq!(decode(&[], 0, 0).unwrap(), vec![]);
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path(), 5, 100, 120).unwrap(), None, "missing");
        store(dir.path(), 5, &entries()).unwrap();
        assert!(path(dir.path(), 5).ends_with("00000000000000000005.txnindex"));
        assert_eq!(load(dir.path(), 5, 100, 120).unwrap(), Some(Ok(entries())));
        assert!(!dir.path().join("00000000000000000005.txnindex.tmp").exists());
    }

    #[test]
    fn every_kind_of_damage_is_refused() {
        let b = encode(&entries());
        // A partial last entry (a torn append or a truncated file).
        for cut in [1, ENTRY_LEN - 1, ENTRY_LEN + 5, b.len() - 1] {
            assert_eq!(decode(&b[..cut], 100, 120), Err(Damage::Length(cut)));
        }
        // An unknown version.
        let mut v = b.clone();
        v[ENTRY_LEN + 1] = 1;
        assert_eq!(decode(&v, 100, 120), Err(Damage::Version(1, 1)));
        // Out of order: the same entries swapped, or one repeated.
        let mut swapped = entries();
        swapped.reverse();
        assert_eq!(decode(&encode(&swapped), 100, 120), Err(Damage::OutOfOrder(1)));
        let twice = [entries()[0], entries()[0]];
        assert_eq!(decode(&encode(&twice), 100, 120), Err(Damage::OutOfOrder(1)));
        // Outside the segment, or first after last.
        assert_eq!(decode(&b, 105, 120), Err(Damage::OutOfRange(0)));
        assert_eq!(decode(&b, 100, 110), Err(Damage::OutOfRange(1)));
        let inverted = [IndexEntry { first_offset: 105, ..entries()[0] }];
        assert_eq!(decode(&encode(&inverted), 100, 120), Err(Damage::OutOfRange(0)));
        // Through load: a damaged file is reported, not trusted.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(path(dir.path(), 0), &b[..40]).unwrap();
        assert_eq!(load(dir.path(), 0, 100, 120).unwrap(), Some(Err(Damage::Length(40))));
    }
}
