//! The cleaner's per-partition checkpoint, chronik's `cleaner-offset-checkpoint`: the offset up
//! to which the log is clean (everything after it is "dirty", the numerator of the dirty ratio)
//! and, for each segment the cleaner has rewritten, when it first did (tombstones in a segment are
//! kept `delete.retention.ms` after that). One small file per partition directory,
//! `cleaner-checkpoint`, a [`state_file`] replaced atomically.
//!
//! Layout (big-endian): `cleaned_offset i64 | count u32 | count × (segment base index u64 |
//! first cleaned at, unix ms i64)`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::log::{be_i64, be_u32, be_u64, state_file, LogError, Result};

const MAGIC: &[u8; 4] = b"CCK1";
/// File name in the partition directory.
pub const FILE: &str = "cleaner-checkpoint";

/// What the cleaner remembers about a partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// Offsets below this are clean.
    pub cleaned_offset: i64,
    /// Segment base index → when the cleaner first rewrote it (unix ms).
    pub cleaned_at: BTreeMap<u64, i64>,
}

impl Checkpoint {
    /// Reads the checkpoint of `dir` (a missing file: nothing cleaned yet).
    pub fn load(dir: &Path) -> Result<Checkpoint> {
        let path = dir.join(FILE);
        let Some(b) = state_file::read(&path, MAGIC)? else {
            return Ok(Checkpoint::default());
        };
        let bad = || LogError::CorruptState { path: path.clone(), reason: "bad cleaner checkpoint".into() };
        if b.len() < 12 {
            return Err(bad());
        }
        let n = be_u32(&b, 8) as usize;
        if b.len() != 12 + n * 16 {
            return Err(bad());
        }
        let cleaned_at = (0..n).map(|i| (be_u64(&b, 12 + i * 16), be_i64(&b, 20 + i * 16))).collect();
        Ok(Checkpoint { cleaned_offset: be_i64(&b, 0), cleaned_at })
    }

    /// Replaces the checkpoint of `dir` atomically and durably.
    pub fn store(&self, dir: &Path) -> Result<()> {
        let mut b = Vec::with_capacity(12 + self.cleaned_at.len() * 16);
        b.extend_from_slice(&self.cleaned_offset.to_be_bytes());
        b.extend_from_slice(&(self.cleaned_at.len() as u32).to_be_bytes());
        for (base, at) in &self.cleaned_at {
            b.extend_from_slice(&base.to_be_bytes());
            b.extend_from_slice(&at.to_be_bytes());
        }
        state_file::store(&dir.join(FILE), MAGIC, &b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Checkpoint::load(dir.path()).unwrap(), Checkpoint::default());
        let c = Checkpoint { cleaned_offset: 1234, cleaned_at: [(1, 10), (77, -5)].into_iter().collect() };
        c.store(dir.path()).unwrap();
        assert_eq!(Checkpoint::load(dir.path()).unwrap(), c);
        std::fs::write(dir.path().join(FILE), b"junk").unwrap();
        assert!(Checkpoint::load(dir.path()).is_err());
    }
}
