//! The data of a partition's Raft snapshot: where the receiving replica's log restarts and, when
//! the leader's log holds compacted data below its raft start (see `raft_start.rs`), the
//! manifest of the segment files that carry it.
//!
//! Formats (the `data` of a raft-rs `Snapshot` of a `KafkaBatches` log):
//! * legacy, metadata only: `next_offset i64` (8 bytes, big-endian), or `next_offset | floor`
//!   (16 bytes) when the DeleteRecords floor lies past the snapshot. The log restarts empty.
//! * versioned: `magic "CSD1" | SnapshotDescriptor (prost)`, with a manifest of the segment
//!   files wholly at or below the snapshot index, from the log start on. The receiver pulls
//!   those files in chunks and installs them (`partition::snapshot`). A versioned descriptor is
//!   only ever written with a non-empty manifest, so it is never 8 or 16 bytes long and the two
//!   formats cannot be confused.
//!
//! [`PartitionLog::snapshot_manifest`] builds the manifest from the in-memory entry table only.

use super::partition_log::PartitionLog;
use super::segment::file_name;

const MAGIC: &[u8; 4] = b"CSD1";

/// One segment file of a snapshot.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct SnapshotFile {
    /// Raft index of its first entry.
    #[prost(uint64, tag = "1")]
    pub base_index: u64,
    /// The `.log` file name (`file_name(base_index, "log")`).
    #[prost(string, tag = "2")]
    pub name: String,
    /// Bytes of the `.log`.
    #[prost(uint64, tag = "3")]
    pub length: u64,
    /// Raft index and term of its last entry.
    #[prost(uint64, tag = "4")]
    pub last_index: u64,
    #[prost(uint64, tag = "5")]
    pub last_term: u64,
    /// Entries (frames) it holds.
    #[prost(uint64, tag = "6")]
    pub entries: u64,
}

/// What a partition snapshot carries (see the module docs).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct SnapshotDescriptor {
    #[prost(uint32, tag = "1")]
    pub version: u32,
    /// The Kafka offset after the snapshot index.
    #[prost(int64, tag = "2")]
    pub next_offset: i64,
    /// The DeleteRecords floor (0: none).
    #[prost(int64, tag = "3")]
    pub floor: i64,
    /// The sender's Kafka log start offset (informational, checked after install).
    #[prost(int64, tag = "4")]
    pub log_start_offset: i64,
    /// The sender's data start: first raft index of the first file, the term before it and the
    /// Kafka offset there (its `log-start`).
    #[prost(uint64, tag = "5")]
    pub start_index: u64,
    #[prost(uint64, tag = "6")]
    pub prev_term: u64,
    #[prost(int64, tag = "7")]
    pub start_offset: i64,
    /// The segment files, in raft index order, contiguous from `start_index` to the snapshot
    /// index.
    #[prost(message, repeated, tag = "8")]
    pub files: Vec<SnapshotFile>,
}

impl SnapshotDescriptor {
    /// A metadata-only descriptor (the legacy format).
    pub fn legacy(next_offset: i64, floor: i64) -> Self {
        SnapshotDescriptor { next_offset, floor, ..Default::default() }
    }

    /// Whether the snapshot carries segment files.
    pub fn has_manifest(&self) -> bool {
        !self.files.is_empty()
    }

    /// Bytes of all files.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.length).sum()
    }

    /// Encodes: the legacy 8/16 bytes without a manifest, else the versioned format.
    pub fn encode(&self) -> Vec<u8> {
        if !self.has_manifest() {
            let mut b = self.next_offset.to_be_bytes().to_vec();
            if self.floor > self.next_offset {
                b.extend_from_slice(&self.floor.to_be_bytes());
            }
            return b;
        }
        let mut b = MAGIC.to_vec();
        let d = SnapshotDescriptor { version: 1, ..self.clone() };
        prost::Message::encode(&d, &mut b).expect("a Vec grows");
        b
    }

    /// Decodes either format. Empty data (an old leader with nothing to say) is offset 0.
    pub fn decode(data: &[u8]) -> Result<Self, String> {
        let be = |b: &[u8]| i64::from_be_bytes(b.try_into().expect("8 bytes"));
        match data.len() {
            0 => return Ok(Self::legacy(0, 0)),
            8 => return Ok(Self::legacy(be(&data[..8]), 0)),
            16 => return Ok(Self::legacy(be(&data[..8]), be(&data[8..16]))),
            _ => {}
        }
        let body =
            data.strip_prefix(MAGIC).ok_or_else(|| format!("snapshot data of {} bytes: no magic", data.len()))?;
        let d = <SnapshotDescriptor as prost::Message>::decode(body).map_err(|e| e.to_string())?;
        if d.version != 1 {
            return Err(format!("snapshot descriptor version {} is unknown", d.version));
        }
        if !d.has_manifest() {
            return Err("versioned snapshot descriptor without files".into());
        }
        Ok(d)
    }
}

impl PartitionLog {
    /// The segment files that hold entries `first_index()..=index`, when `index` is the last
    /// entry of a sealed segment and every one of them is written and undamaged (from memory:
    /// the entry table and segment sizes). `None` otherwise.
    pub fn snapshot_manifest(&self, index: u64) -> Option<Vec<SnapshotFile>> {
        let damaged = self.damaged.lock().unwrap_or_else(|p| p.into_inner());
        let sealed = self.segments.len().saturating_sub(1);
        let mut files = Vec::new();
        for s in &self.segments[..sealed] {
            if s.base_index > index {
                break;
            }
            let last = s.next_index() - 1;
            if s.is_empty()
                || last > index
                || s.first_pending_slot() != s.len()
                || damaged.range(s.base_index..s.next_index()).next().is_some()
            {
                return None;
            }
            files.push(SnapshotFile {
                base_index: s.base_index,
                name: file_name(s.base_index, "log"),
                length: s.size,
                last_index: last,
                last_term: s.metas.last().map_or(0, |m| m.term),
                entries: s.len() as u64,
            });
        }
        (files.last().map(|f| f.last_index) == Some(index)).then_some(files)
    }

    /// The data start as `log-start` holds it: (first index, term before it, offset there).
    pub fn data_start(&self) -> (u64, u64, i64) {
        (self.start.start_index, self.start.prev_term, self.start.start_offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_formats_decode_and_encode() {
        assert_eq!(SnapshotDescriptor::decode(&[]).unwrap(), SnapshotDescriptor::legacy(0, 0));
        let eight = 500i64.to_be_bytes();
        assert_eq!(SnapshotDescriptor::decode(&eight).unwrap(), SnapshotDescriptor::legacy(500, 0));
        let sixteen = [500i64.to_be_bytes(), 503i64.to_be_bytes()].concat();
        let d = SnapshotDescriptor::decode(&sixteen).unwrap();
        assert_eq!((d.next_offset, d.floor, d.has_manifest()), (500, 503, false));
        assert_eq!(d.encode(), sixteen);
        assert_eq!(SnapshotDescriptor::legacy(500, 0).encode(), eight);
        assert_eq!(SnapshotDescriptor::legacy(500, 400).encode(), eight, "a floor below the offset is not sent");
    }

    #[test]
    fn versioned_round_trip_and_garbage() {
        let f = SnapshotFile {
            base_index: 1,
            name: file_name(1, "log"),
            length: 4096,
            last_index: 40,
            last_term: 2,
            entries: 40,
        };
        let d = SnapshotDescriptor {
            version: 0,
            next_offset: 77,
            floor: 3,
            log_start_offset: 3,
            start_index: 1,
            prev_term: 0,
            start_offset: 0,
            files: vec![f],
        };
        let b = d.encode();
        assert!(b.starts_with(MAGIC) && b.len() > 16);
        let back = SnapshotDescriptor::decode(&b).unwrap();
        assert_eq!(back, SnapshotDescriptor { version: 1, ..d });
        assert_eq!(back.total_bytes(), 4096);
        assert!(SnapshotDescriptor::decode(b"garbage-of-17-bytes").is_err());
        let mut bad = b.clone();
        bad.truncate(10);
        assert!(SnapshotDescriptor::decode(&bad).is_err());
        let mut v2 = MAGIC.to_vec();
        prost::Message::encode(&SnapshotDescriptor { version: 2, ..back }, &mut v2).unwrap();
        assert!(SnapshotDescriptor::decode(&v2).is_err(), "unknown version");
    }
}
