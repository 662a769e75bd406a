//! Which Kafka offsets a raft entry covers. In a `KafkaBatches` log a `Normal` entry with data
//! holds exactly one v2 record batch (already validated by the produce path, base offset stamped
//! by the leader); its header gives the offset range and max timestamp that the log indexes. The
//! header is parsed with [`super::batch::BatchHeader`]; here it is only checked to be one whole
//! batch whose offsets do not go backwards. Nothing panics on short or malformed data: callers
//! turn the error string into `LogError::InvalidBatch` (append) or `LogError::Corrupt` (disk).

use raft::eraftpb::EntryType;

use super::batch::BatchHeader;
use super::index::NO_TIMESTAMP;
use super::segment::EntryOffsets;

/// Context of an entry whose batch the cleaner removed entirely (see `log::cleaner`): no data,
/// this marker followed by the offset after the removed batch (8 bytes, big-endian), so that the
/// log end offset at that point survives compaction on every replica and after every scan.
pub const COMPACTED_ENTRY: &[u8] = b"chronik:compacted-entry";

/// The offset after the removed batch, if `context` (with empty `data`) marks a compacted entry.
pub fn compacted_end(data: &[u8], context: &[u8]) -> Option<i64> {
    if !data.is_empty() {
        return None;
    }
    let rest = context.strip_prefix(COMPACTED_ENTRY)?;
    Some(i64::from_be_bytes(rest.try_into().ok()?))
}

/// Offsets covered by an entry about to be stored at a point where the log end offset is
/// `next_offset`. Only `Normal` entries with data in a Kafka log carry a batch; the others (raft's
/// empty no-op, conf changes, every entry of an opaque log) cover no offsets. A compacted entry
/// ([`COMPACTED_ENTRY`]) covers none either but moves the log end offset to its recorded end.
pub(crate) fn entry_offsets(
    kafka: bool,
    entry_type: EntryType,
    data: &[u8],
    context: &[u8],
    next_offset: i64,
) -> Result<EntryOffsets, String> {
    if kafka && entry_type == EntryType::EntryNormal {
        if let Some(end) = compacted_end(data, context) {
            if end < next_offset {
                return Err(format!("compacted entry ends at {end}, below the log end offset {next_offset}"));
            }
            return Ok(EntryOffsets { offset_start: end, offset_end: end, max_ts: NO_TIMESTAMP });
        }
    }
    if !kafka || entry_type != EntryType::EntryNormal || data.is_empty() {
        return Ok(EntryOffsets { offset_start: next_offset, offset_end: next_offset, max_ts: NO_TIMESTAMP });
    }
    let h = BatchHeader::parse(data).map_err(|e| e.to_string())?;
    if h.total_len() != data.len() {
        return Err(format!("batch length {} does not match the {} bytes of the entry", h.batch_length, data.len()));
    }
    if h.base_offset < 0 || h.last_offset_delta < 0 {
        return Err(format!("negative base offset {} or last offset delta {}", h.base_offset, h.last_offset_delta));
    }
    let end = h.base_offset.checked_add(i64::from(h.last_offset_delta) + 1).ok_or("offset overflow")?;
    if h.base_offset < next_offset {
        return Err(format!("base offset {} is below the log end offset {next_offset}", h.base_offset));
    }
    Ok(EntryOffsets { offset_start: h.base_offset, offset_end: end, max_ts: h.max_timestamp })
}

/// Builds a v2 batch header with `count` offsets and `payload` bytes of opaque "records" (tests
/// only: the records are not a valid encoding, the log never decodes them).
#[cfg(test)]
pub(crate) fn make_batch(base_offset: i64, count: i32, max_ts: i64, payload: usize) -> Vec<u8> {
    use super::batch::BATCH_HEADER_LEN;
    let mut b = Vec::with_capacity(BATCH_HEADER_LEN + payload);
    b.extend_from_slice(&base_offset.to_be_bytes());
    let batch_length = (BATCH_HEADER_LEN - 12 + payload) as i32;
    b.extend_from_slice(&batch_length.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes()); // partition leader epoch
    b.push(2); // magic
    b.extend_from_slice(&0u32.to_be_bytes()); // crc, filled below
    b.extend_from_slice(&0i16.to_be_bytes()); // attributes
    b.extend_from_slice(&(count - 1).to_be_bytes()); // last offset delta
    b.extend_from_slice(&(max_ts - 1).to_be_bytes()); // base timestamp
    b.extend_from_slice(&max_ts.to_be_bytes());
    b.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    b.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
    b.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    b.extend_from_slice(&count.to_be_bytes());
    b.extend((0..payload).map(|i| (i % 251) as u8));
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normal(data: &[u8], next: i64) -> Result<EntryOffsets, String> {
        entry_offsets(true, EntryType::EntryNormal, data, &[], next)
    }

    #[test]
    fn batch_offsets_and_timestamp() {
        let b = make_batch(10, 3, 77, 5);
        let h = BatchHeader::parse(&b).unwrap();
        assert_eq!((h.base_offset, h.last_offset(), h.max_timestamp), (10, 12, 77));
        let o = normal(&b, 10).unwrap();
        assert_eq!((o.offset_start, o.offset_end, o.max_ts), (10, 13, 77));
        // Gaps are allowed, going backwards is not.
        assert!(normal(&b, 5).is_ok());
        assert!(normal(&b, 11).is_err());
    }

    #[test]
    fn entries_without_batches_cover_no_offsets() {
        let b = make_batch(10, 3, 77, 5);
        for (kafka, ty, data) in [
            (true, EntryType::EntryNormal, &b""[..]),
            (true, EntryType::EntryConfChange, &b"xyz"[..]),
            (true, EntryType::EntryConfChangeV2, &b[..]),
            (false, EntryType::EntryNormal, &b[..]),
        ] {
            let o = entry_offsets(kafka, ty, data, &[], 42).unwrap();
            assert_eq!((o.offset_start, o.offset_end, o.max_ts), (42, 42, NO_TIMESTAMP));
        }
    }

    #[test]
    fn compacted_entries_keep_the_log_end_offset() {
        let mut ctx = COMPACTED_ENTRY.to_vec();
        ctx.extend_from_slice(&50i64.to_be_bytes());
        assert_eq!(compacted_end(b"", &ctx), Some(50));
        assert_eq!(compacted_end(b"x", &ctx), None);
        assert_eq!(compacted_end(b"", &ctx[..ctx.len() - 1]), None);
        let o = entry_offsets(true, EntryType::EntryNormal, b"", &ctx, 42).unwrap();
        assert_eq!((o.offset_start, o.offset_end, o.max_ts), (50, 50, NO_TIMESTAMP));
        assert!(entry_offsets(true, EntryType::EntryNormal, b"", &ctx, 51).is_err(), "going backwards");
        let o = entry_offsets(false, EntryType::EntryNormal, b"", &ctx, 42).unwrap();
        assert_eq!(o.offset_end, 42, "opaque logs know no compaction");
    }

    #[test]
    fn malformed_batches_are_errors_not_panics() {
        assert!(normal(b"short", 0).is_err());
        assert!(normal(&[0u8; 60], 0).is_err());
        let good = make_batch(0, 1, 0, 4);
        assert!(normal(&good[..good.len() - 1], 0).is_err(), "truncated");
        let mut two = good.clone();
        two.extend_from_slice(&good);
        assert!(normal(&two, 0).is_err(), "two batches in one entry");
        let mut bad_magic = good.clone();
        bad_magic[16] = 1;
        assert!(normal(&bad_magic, 0).is_err());
        let mut neg = good.clone();
        neg[23..27].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(normal(&neg, 0).is_err());
        let mut overflow = good;
        overflow[0..8].copy_from_slice(&i64::MAX.to_be_bytes());
        overflow[23..27].copy_from_slice(&5i32.to_be_bytes());
        assert!(normal(&overflow, 0).is_err());
    }
}
