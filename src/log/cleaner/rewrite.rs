//! Rewriting one stored Kafka record batch (v2) for the cleaner. A batch keeps its header — base
//! offset, last offset delta, base timestamp, producer id / epoch / base sequence, partition
//! leader epoch, attributes — and only the records that survive, copied verbatim (their offset
//! and timestamp deltas are relative to the unchanged base, so every record keeps its offset and
//! timestamp). Record count, batch length, max timestamp (CreateTime: the largest surviving
//! record's; LogAppendTime: unchanged) and CRC are recomputed, as Kafka's
//! `MemoryRecords.filterTo` does. A compressed batch is decompressed and its survivors are
//! recompressed with the batch's own codec (gzip, snappy, lz4, zstd).
//!
//! A batch with no survivor disappears ([`Rewritten::Removed`]) unless it is the last batch of an
//! active producer: then, as Kafka does, an empty batch (its header, record count 0, no
//! compression, max timestamp as base timestamp) is kept so that producer state rebuilds the same.

use crate::protocol::compression;
use bytes::Bytes;

use crate::log::batch::{finish_batch, parse_record, BatchHeader, BATCH_HEADER_LEN};

/// Why a stored batch cannot be rewritten (the cleaner then leaves the segment alone).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    #[error("malformed batch: {0}")]
    Malformed(String),
    #[error("codec {codec}: {reason}")]
    Codec { codec: u8, reason: String },
}

/// One record as the cleaner sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    /// Null value: a tombstone.
    pub tombstone: bool,
    pub timestamp: i64,
}

/// The outcome of rewriting a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rewritten {
    /// Every record survives: keep the stored bytes.
    Unchanged,
    /// Some records survive: the new batch.
    Shrunk(Bytes),
    /// No record survives but the batch is kept empty (last batch of a producer).
    Empty(Bytes),
    /// No record survives: the entry loses its batch.
    Removed,
}

const COMPRESSION_MASK: i16 = 0x07;
const ATTRIBUTES_AT: usize = 21;

fn codec_err(codec: u8, e: impl std::fmt::Display) -> RewriteError {
    RewriteError::Codec { codec, reason: e.to_string() }
}

/// Output bound of one batch's decompression: the produce path refuses batches that inflate
/// beyond this (`broker/produce_policy.rs`), so a stored batch never needs more.
const MAX_DECOMPRESSED: usize = 256 * 1024 * 1024;

/// The uncompressed records section of a batch (`protocol::compression`, the codecs the produce
/// path uses too).
fn decompress(codec: u8, body: &[u8]) -> Result<Bytes, RewriteError> {
    if codec == compression::NONE {
        return Ok(Bytes::copy_from_slice(body));
    }
    compression::decompress(codec, body, MAX_DECOMPRESSED.max(body.len()))
        .map(Bytes::from)
        .map_err(|e| codec_err(codec, e))
}

/// `records` compressed with `codec` (gzip at its default level).
fn compress(codec: u8, records: &[u8]) -> Result<Vec<u8>, RewriteError> {
    compression::compress(codec, records, -1).map_err(|e| codec_err(codec, e))
}

/// A decoded batch: its header, its (uncompressed) records section and each record's span in it.
pub struct Decoded {
    pub header: BatchHeader,
    body: Bytes,
    spans: Vec<std::ops::Range<usize>>,
}

impl Decoded {
    /// Decodes a whole stored batch.
    pub fn new(batch: &[u8]) -> Result<Self, RewriteError> {
        let header = BatchHeader::parse(batch).map_err(|e| RewriteError::Malformed(e.to_string()))?;
        let raw = batch
            .get(BATCH_HEADER_LEN..header.total_len())
            .ok_or_else(|| RewriteError::Malformed("batch shorter than its length".into()))?;
        let body = decompress(header.compression(), raw)?;
        let mut spans = Vec::new();
        let mut pos = 0;
        while pos < body.len() {
            let start = pos;
            parse_record(&body, &mut pos, spans.len(), false).map_err(|e| RewriteError::Malformed(e.to_string()))?;
            spans.push(start..pos);
        }
        Ok(Decoded { header, body, spans })
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Record `i` (`i < len()`).
    pub fn record(&self, i: usize) -> RecordRef<'_> {
        let mut pos = self.spans[i].start;
        // Spans were checked by `new`.
        let r = parse_record(&self.body, &mut pos, i, false).ok();
        let (od, td, key, value) =
            r.map_or((0, 0, None, None), |r| (r.offset_delta, r.timestamp_delta, r.key, r.value));
        RecordRef {
            offset: self.header.base_offset + i64::from(od),
            key,
            tombstone: value.is_none(),
            timestamp: self.header.base_timestamp.saturating_add(td),
        }
    }

    /// Every record, in order.
    pub fn records(&self) -> impl Iterator<Item = RecordRef<'_>> + '_ {
        (0..self.len()).map(|i| self.record(i))
    }

    /// Rewrites `batch` (the bytes this was decoded from) keeping the records for which `keep`
    /// is true; `keep_empty`: keep an empty batch when no record survives.
    pub fn rewrite(
        &self,
        batch: &[u8],
        keep: &mut dyn FnMut(&RecordRef<'_>) -> bool,
        keep_empty: bool,
    ) -> Result<Rewritten, RewriteError> {
        let mut kept = Vec::new();
        let mut max_ts = i64::MIN;
        for i in 0..self.len() {
            let r = self.record(i);
            if keep(&r) {
                max_ts = max_ts.max(r.timestamp);
                kept.push(i);
            }
        }
        if kept.len() == self.len() {
            return Ok(Rewritten::Unchanged);
        }
        let h = &self.header;
        let mut out = batch[..BATCH_HEADER_LEN].to_vec();
        if kept.is_empty() {
            if !keep_empty {
                return Ok(Rewritten::Removed);
            }
            // Kafka's `writeEmptyHeader`: no compression, the batch's max timestamp as both.
            let attrs = h.attributes & !COMPRESSION_MASK;
            out[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attrs.to_be_bytes());
            out[27..35].copy_from_slice(&h.max_timestamp.to_be_bytes());
            out[57..61].copy_from_slice(&0i32.to_be_bytes());
            finish_batch(&mut out);
            return Ok(Rewritten::Empty(Bytes::from(out)));
        }
        let mut records = Vec::with_capacity(self.body.len());
        for &i in &kept {
            records.extend_from_slice(&self.body[self.spans[i].clone()]);
        }
        out.extend_from_slice(&compress(h.compression(), &records)?);
        if !h.is_log_append_time() {
            out[35..43].copy_from_slice(&max_ts.to_be_bytes());
        }
        out[57..61].copy_from_slice(&(kept.len() as i32).to_be_bytes());
        finish_batch(&mut out);
        Ok(Rewritten::Shrunk(Bytes::from(out)))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::log::batch::{build_batch, validate_batch, KeyValue, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE};

    /// An uncompressed batch of (key, value) records with timestamps `ts, ts+1, ...`.
    pub(crate) fn kv_batch(base: i64, recs: &[KeyValue<'_>], ts: i64) -> Vec<u8> {
        let mut b = build_batch(base, NO_PRODUCER_ID, NO_PRODUCER_EPOCH, NO_SEQUENCE, ts, recs);
        // Give record i the timestamp delta i (build_batch uses 0 everywhere): rebuild by hand.
        let d = Decoded::new(&b).unwrap();
        let mut body = Vec::new();
        for (i, span) in d.spans.iter().enumerate() {
            let rec = &d.body[span.clone()];
            // record = len varint | attributes | ts delta varint(0) | rest; ts delta i < 64.
            let inner = &rec[1..];
            let mut r = vec![inner[0], (i as u8) << 1];
            r.extend_from_slice(&inner[2..]);
            body.push(rec[0]); // same length: one byte per varint either way
            body.extend_from_slice(&r);
        }
        b.truncate(BATCH_HEADER_LEN);
        b.extend_from_slice(&body);
        b[35..43].copy_from_slice(&(ts + recs.len() as i64 - 1).to_be_bytes());
        finish_batch(&mut b);
        b
    }

    /// `batch` with its records compressed with `codec`.
    pub(crate) fn compressed(batch: &[u8], codec: u8) -> Vec<u8> {
        let mut out = batch[..BATCH_HEADER_LEN].to_vec();
        out.extend_from_slice(&compress(codec, &batch[BATCH_HEADER_LEN..]).unwrap());
        let attrs = i16::from_be_bytes([out[21], out[22]]) | i16::from(codec);
        out[21..23].copy_from_slice(&attrs.to_be_bytes());
        finish_batch(&mut out);
        out
    }

    fn keys(batch: &[u8]) -> Vec<(i64, Option<Vec<u8>>, bool, i64)> {
        Decoded::new(batch)
            .unwrap()
            .records()
            .map(|r| (r.offset, r.key.map(|k| k.to_vec()), r.tombstone, r.timestamp))
            .collect()
    }

    #[test]
    fn survivors_keep_offsets_and_timestamps() {
        for codec in 0..=4u8 {
            let plain = kv_batch(100, &[(Some(b"a"), Some(b"1")), (Some(b"b"), Some(b"2")), (Some(b"c"), None)], 5000);
            let b = if codec == 0 { plain.clone() } else { compressed(&plain, codec) };
            validate_batch(&b, 1 << 20).unwrap();
            let valid = |b: &[u8]| {
                let h = BatchHeader::parse(b).unwrap();
                assert_eq!((h.total_len(), crate::log::batch::crc32c_of(b)), (b.len(), h.crc));
                h
            };
            let d = Decoded::new(&b).unwrap();
            assert_eq!(d.len(), 3);
            let before = keys(&b);
            assert_eq!(before[2], (102, Some(b"c".to_vec()), true, 5002), "codec {codec}");
            // Keep b only.
            let out = d.rewrite(&b, &mut |r| r.key == Some(b"b"), false).unwrap();
            let Rewritten::Shrunk(nb) = out else { panic!("{out:?}") };
            let h = valid(&nb);
            assert_eq!((h.base_offset, h.last_offset_delta, h.record_count), (100, 2, 1), "codec {codec}");
            assert_eq!(h.compression(), codec, "recompressed with its own codec");
            assert_eq!(h.max_timestamp, 5001, "max timestamp of the survivors");
            assert_eq!(keys(&nb), vec![before[1].clone()]);
            // All kept: unchanged; none kept: removed or an empty batch.
            assert_eq!(d.rewrite(&b, &mut |_| true, false).unwrap(), Rewritten::Unchanged);
            assert_eq!(d.rewrite(&b, &mut |_| false, false).unwrap(), Rewritten::Removed);
        }
    }

    #[test]
    fn empty_batch_keeps_producer_fields() {
        let mut b = build_batch(7, 42, 3, 10, 900, &[(Some(b"k"), Some(b"v")), (Some(b"k"), Some(b"w"))]);
        finish_batch(&mut b);
        let b = compressed(&b, 2);
        let d = Decoded::new(&b).unwrap();
        let Rewritten::Empty(e) = d.rewrite(&b, &mut |_| false, true).unwrap() else { panic!() };
        let h = BatchHeader::parse(&e).unwrap();
        assert_eq!(e.len(), BATCH_HEADER_LEN);
        assert_eq!(crate::log::batch::crc32c_of(&e), h.crc);
        assert_eq!((h.base_offset, h.last_offset(), h.record_count, h.compression()), (7, 8, 0, 0));
        assert_eq!((h.producer_id, h.producer_epoch, h.base_sequence, h.last_sequence()), (42, 3, 10, 11));
        assert!(Decoded::new(&e).unwrap().is_empty());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let plain = kv_batch(0, &[(Some(b"a"), Some(b"1"))], 1);
        let mut bad = compressed(&plain, 1);
        let n = bad.len();
        bad[n - 5] ^= 0xff;
        bad[BATCH_HEADER_LEN] ^= 0xff;
        assert!(Decoded::new(&bad).is_err());
        assert!(Decoded::new(b"short").is_err());
        let mut torn = plain.clone();
        torn.truncate(plain.len() - 1);
        assert!(Decoded::new(&torn).is_err());
    }
}
