//! The topic configs that Produce enforces, resolved once per request from the metadata image
//! and the broker's defaults: `max.message.bytes` (per topic, above or below the broker's
//! `message.max.bytes`), `cleanup.policy` with `compact` (a record without a key is refused
//! with INVALID_RECORD, as Kafka's LogValidator does), `message.timestamp.type`
//! (`LogAppendTime`: the leader stamps the batch), `message.timestamp.before.max.ms` /
//! `after.max.ms` (INVALID_TIMESTAMP for CreateTime batches out of bounds) and
//! `min.insync.replicas` (NOT_ENOUGH_REPLICAS for acks=all), `compression.type` (a codec
//! other than `producer` recompresses the batch on the leader, as Kafka's LogValidator does)
//! and the segment size (`internal.segment.bytes`, else `segment.bytes`: a partition's batches
//! larger than one segment are RECORD_BATCH_TOO_LARGE, as Kafka's `UnifiedLog.append`).
//! Compressed batches are decompressed (bounded) when their records must be read: for the keys
//! on compacted topics and for recompression.

use std::collections::BTreeMap;

use bytes::BytesMut;

use crate::error::{code, PartitionError};
use crate::log::batch::{finish_batch, records, validate_batch, BatchHeader};
use crate::meta::topic_config::{effective, list_items, segment_size, BrokerTopicDefaults};
use crate::protocol::compression::{self, codec_of};

/// The fixed header of a v2 batch; the records (compressed or not) follow it.
const HEADER_LEN: usize = 61;
/// The most a batch's records may inflate to when the broker decompresses them.
const MAX_DECOMPRESSED: usize = 256 * 1024 * 1024;
const CODEC_MASK: i16 = 0x07;

/// Byte offsets of v2 batch header fields.
const ATTRIBUTES_AT: usize = 21;
const MAX_TIMESTAMP_AT: usize = 35;
const TIMESTAMP_TYPE_FLAG: i16 = 0x08;

/// What Produce enforces for one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPolicy {
    /// Largest batch accepted (`max.message.bytes`, else the broker's `message.max.bytes`).
    pub max_message_bytes: usize,
    /// `cleanup.policy` contains `compact`: every record needs a key.
    pub compact: bool,
    /// `message.timestamp.type=LogAppendTime`.
    pub log_append_time: bool,
    /// `message.timestamp.before.max.ms`.
    pub before_max_ms: i64,
    /// `message.timestamp.after.max.ms`.
    pub after_max_ms: i64,
    /// `min.insync.replicas`.
    pub min_insync_replicas: usize,
    /// `compression.type` as a codec id; `None` for `producer` (stored as sent).
    pub compression: Option<u8>,
    /// `compression.gzip.level`.
    pub gzip_level: i32,
    /// The segment size (Kafka's `LogConfig.segmentSize()`; may be 0 or negative when
    /// `internal.segment.bytes` says so).
    pub segment_bytes: i64,
}

impl TopicPolicy {
    /// The policy of a topic with `configs`, falling back to the broker's defaults and then to
    /// Kafka's.
    pub fn resolve(configs: &BTreeMap<String, String>, broker: &BrokerTopicDefaults) -> Self {
        let get = |k: &'static str| effective(k, configs, broker).map(|(v, _)| v).unwrap_or_default();
        let long = |k: &'static str, fallback: i64| get(k).trim().parse::<i64>().unwrap_or(fallback);
        TopicPolicy {
            max_message_bytes: long("max.message.bytes", 1_048_588).max(0) as usize,
            compact: list_items(&get("cleanup.policy")).contains(&"compact"),
            log_append_time: get("message.timestamp.type").trim() == "LogAppendTime",
            before_max_ms: long("message.timestamp.before.max.ms", i64::MAX),
            after_max_ms: long("message.timestamp.after.max.ms", 3_600_000),
            min_insync_replicas: long("min.insync.replicas", 1).max(1) as usize,
            compression: codec_of(get("compression.type").trim()),
            gzip_level: long("compression.gzip.level", -1) as i32,
            segment_bytes: segment_size(configs, long("segment.bytes", 1_073_741_824)),
        }
    }

    /// Kafka's last check before an append: the partition's validated batches of one request
    /// (`bytes` in all) must fit in one segment, else RECORD_BATCH_TOO_LARGE with
    /// `UnifiedLog.append`'s message.
    pub fn check_segment_size(&self, bytes: usize, topic: &str, partition: i32) -> Result<(), PartitionError> {
        if i64::try_from(bytes).unwrap_or(i64::MAX) <= self.segment_bytes {
            return Ok(());
        }
        Err(PartitionError::InvalidBatch(
            format!(
                "Message batch size is {bytes} bytes in append to partition {topic}-{partition}, which exceeds \
                 the maximum configured segment size of {}.",
                self.segment_bytes
            ),
            code::RECORD_LIST_TOO_LARGE,
        ))
    }

    /// Checks one validated batch against the policy (keys, timestamps) and, for
    /// LogAppendTime topics, stamps it with `now_ms` (timestamp-type bit and max timestamp; the
    /// CRC is recomputed once). Returns the header to propose with.
    pub fn apply(
        &self,
        batch: &mut BytesMut,
        mut header: BatchHeader,
        now_ms: i64,
        topic: &str,
        partition: i32,
    ) -> Result<BatchHeader, PartitionError> {
        let codec = header.compression();
        let recompress = self.compression.filter(|c| *c != codec);
        if self.compact || recompress.is_some() {
            let plain = if codec == compression::NONE { None } else { Some(decompressed(batch)?) };
            let plain_batch: &[u8] = plain.as_deref().unwrap_or(batch);
            if self.compact {
                check_keys(plain_batch, topic, partition)?;
            }
            if let Some(target) = recompress {
                let body = plain_batch.get(HEADER_LEN..).unwrap_or(&[]);
                let packed = compression::compress(target, body, self.gzip_level)
                    .map_err(|e| PartitionError::InvalidBatch(e.to_string(), code::CORRUPT_MESSAGE))?;
                let mut out = BytesMut::with_capacity(HEADER_LEN + packed.len());
                out.extend_from_slice(&plain_batch[..HEADER_LEN]);
                set_codec(&mut out, target);
                out.extend_from_slice(&packed);
                finish_batch(&mut out);
                if out.len() > self.max_message_bytes {
                    return Err(PartitionError::InvalidBatch(
                        format!(
                            "the recompressed batch of {} bytes exceeds max.message.bytes {}",
                            out.len(),
                            self.max_message_bytes
                        ),
                        code::MESSAGE_TOO_LARGE,
                    ));
                }
                *batch = out;
                header = parse(batch)?;
            }
        }
        if self.log_append_time {
            stamp_log_append_time(batch, now_ms);
            return parse(batch);
        }
        // CreateTime: the first record's timestamp is the batch's base timestamp and the latest
        // is its max timestamp; both must lie within [now - before, now + after].
        let (lo, hi) = (now_ms.saturating_sub(self.before_max_ms), now_ms.saturating_add(self.after_max_ms));
        for ts in [header.base_timestamp, header.max_timestamp] {
            if ts != -1 && (ts < lo || ts > hi) {
                return Err(PartitionError::InvalidBatch(
                    format!(
                        "Timestamp {ts} of message with offset 0 is out of range. The timestamp should be within [{lo}, {hi}]"
                    ),
                    code::INVALID_TIMESTAMP,
                ));
            }
        }
        Ok(header)
    }
}

fn parse(batch: &[u8]) -> Result<BatchHeader, PartitionError> {
    BatchHeader::parse(batch).map_err(|e| PartitionError::InvalidBatch(e.to_string(), code::CORRUPT_MESSAGE))
}

fn set_codec(batch: &mut [u8], codec: u8) {
    if let Some(a) = batch.get_mut(21..23) {
        let attrs = (i16::from_be_bytes([a[0], a[1]]) & !CODEC_MASK) | i16::from(codec);
        a.copy_from_slice(&attrs.to_be_bytes());
    }
}

/// The batch with its records decompressed (same header, codec none, length and CRC
/// recomputed), its records checked as an uncompressed batch's are. Corrupt or oversized
/// compressed records are INVALID_RECORD / CORRUPT_MESSAGE.
fn decompressed(batch: &[u8]) -> Result<Vec<u8>, PartitionError> {
    let h = parse(batch)?;
    let body = batch.get(HEADER_LEN..).unwrap_or(&[]);
    let plain = compression::decompress(h.compression(), body, MAX_DECOMPRESSED.max(batch.len()))
        .map_err(|e| PartitionError::InvalidBatch(e.to_string(), code::CORRUPT_MESSAGE))?;
    let mut out = Vec::with_capacity(HEADER_LEN + plain.len());
    out.extend_from_slice(&batch[..HEADER_LEN]);
    set_codec(&mut out, compression::NONE);
    out.extend_from_slice(&plain);
    finish_batch(&mut out);
    validate_batch(&out, usize::MAX).map_err(|e| PartitionError::InvalidBatch(e.to_string(), e.kafka_code()))?;
    Ok(out)
}

/// Refuses a batch (uncompressed, or decompressed by the caller) holding a record without a
/// key, as Kafka's LogValidator ("Compacted topic cannot accept message without key").
fn check_keys(batch: &[u8], topic: &str, partition: i32) -> Result<(), PartitionError> {
    let rs = records(batch).map_err(|e| PartitionError::InvalidBatch(e.to_string(), e.kafka_code()))?;
    if rs.iter().any(|r| r.key.is_none()) {
        return Err(PartitionError::InvalidBatch(
            format!("Compacted topic cannot accept message without key in topic partition {topic}-{partition}."),
            code::INVALID_RECORD,
        ));
    }
    Ok(())
}

/// Sets the LogAppendTime bit and the max timestamp of one whole batch and recomputes its CRC.
pub fn stamp_log_append_time(batch: &mut [u8], now_ms: i64) {
    if let Some(a) = batch.get_mut(ATTRIBUTES_AT..ATTRIBUTES_AT + 2) {
        let attrs = i16::from_be_bytes([a[0], a[1]]) | TIMESTAMP_TYPE_FLAG;
        a.copy_from_slice(&attrs.to_be_bytes());
    }
    if let Some(t) = batch.get_mut(MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8) {
        t.copy_from_slice(&now_ms.to_be_bytes());
    }
    finish_batch(batch);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::{build_batch, crc32c_of, validate_batch, KeyValue};

    fn policy(pairs: &[(&str, &str)]) -> TopicPolicy {
        let configs = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        TopicPolicy::resolve(&configs, &BrokerTopicDefaults::new())
    }

    fn code_of(r: Result<BatchHeader, PartitionError>) -> i16 {
        r.map(|_| 0).unwrap_or_else(|e| e.kafka_code())
    }

    #[test]
    fn resolves_defaults_and_overrides() {
        let p = policy(&[]);
        assert_eq!(p.max_message_bytes, 1_048_588);
        assert!(!p.compact && !p.log_append_time);
        assert_eq!(p.min_insync_replicas, 1);
        let broker: BrokerTopicDefaults = [("max.message.bytes", "500".to_string())].into();
        assert_eq!(TopicPolicy::resolve(&BTreeMap::new(), &broker).max_message_bytes, 500);
        let p = policy(&[("cleanup.policy", "delete, compact"), ("max.message.bytes", "10485760")]);
        assert!(p.compact);
        assert_eq!(p.max_message_bytes, 10_485_760);
    }

    #[test]
    fn batches_larger_than_the_segment_size_are_refused() {
        let err = |p: &TopicPolicy, n| p.check_segment_size(n, "t", 3).map_err(|e| (e.kafka_code(), e.to_string()));
        let p = policy(&[]);
        assert_eq!(p.segment_bytes, 1_073_741_824);
        let broker: BrokerTopicDefaults = [("segment.bytes", "2097152".to_string())].into();
        assert_eq!(TopicPolicy::resolve(&BTreeMap::new(), &broker).segment_bytes, 2_097_152);
        let p = policy(&[("segment.bytes", "1048576"), ("internal.segment.bytes", "1024")]);
        assert_eq!(err(&p, 1024), Ok(()));
        let (c, msg) = err(&p, 1025).unwrap_err();
        assert_eq!(c, code::RECORD_LIST_TOO_LARGE);
        assert!(
            msg.contains(
                "Message batch size is 1025 bytes in append to partition t-3, which exceeds the maximum \
                 configured segment size of 1024."
            ),
            "{msg}"
        );
        assert!(err(&policy(&[("internal.segment.bytes", "0")]), 1).is_err(), "0 refuses every batch, as Kafka");
    }

    #[test]
    fn compacted_topics_refuse_keyless_records() {
        let p = policy(&[("cleanup.policy", "compact")]);
        let mut keyed = BytesMut::from(&build_batch(0, -1, -1, -1, 1_000, &[(Some(b"k"), Some(b"v"))])[..]);
        let h = validate_batch(&keyed, usize::MAX).unwrap();
        assert_eq!(code_of(p.apply(&mut keyed, h, 1_000, "t", 0)), 0);
        let mut keyless =
            BytesMut::from(&build_batch(0, -1, -1, -1, 1_000, &[(Some(b"k"), Some(b"v")), (None, Some(b"v"))])[..]);
        let h = validate_batch(&keyless, usize::MAX).unwrap();
        assert_eq!(code_of(p.apply(&mut keyless, h, 1_000, "t", 0)), code::INVALID_RECORD);
        assert_eq!(code_of(policy(&[]).apply(&mut keyless, h, 1_000, "t", 0)), 0, "delete topics take keyless");
    }

    #[test]
    fn timestamps_out_of_bounds_are_refused() {
        let p = policy(&[("message.timestamp.before.max.ms", "1000"), ("message.timestamp.after.max.ms", "10")]);
        let now = 1_000_000;
        for (ts, want) in
            [(now, 0), (now - 1000, 0), (now - 1001, code::INVALID_TIMESTAMP), (now + 11, code::INVALID_TIMESTAMP)]
        {
            let mut b = BytesMut::from(&build_batch(0, -1, -1, -1, ts, &[(Some(b"k"), Some(b"v"))])[..]);
            let h = validate_batch(&b, usize::MAX).unwrap();
            assert_eq!(code_of(p.apply(&mut b, h, now, "t", 0)), want, "ts {ts}");
        }
        // The default after-bound is one hour.
        let mut b = BytesMut::from(&build_batch(0, -1, -1, -1, now + 3_600_001, &[(Some(b"k"), Some(b"v"))])[..]);
        let h = validate_batch(&b, usize::MAX).unwrap();
        assert_eq!(code_of(policy(&[]).apply(&mut b, h, now, "t", 0)), code::INVALID_TIMESTAMP);
    }

    #[test]
    fn log_append_time_stamps_the_batch_with_a_valid_crc() {
        let p = policy(&[("message.timestamp.type", "LogAppendTime")]);
        let mut b = BytesMut::from(&build_batch(0, -1, -1, -1, 5, &[(Some(b"k"), Some(b"v"))])[..]);
        let h = validate_batch(&b, usize::MAX).unwrap();
        let out = p.apply(&mut b, h, 1_234_567, "t", 0).unwrap();
        assert!(out.is_log_append_time());
        assert_eq!(out.max_timestamp, 1_234_567);
        assert_eq!(out.base_timestamp, 5, "only the max timestamp changes, as Kafka");
        assert_eq!(out.crc, crc32c_of(&b));
        assert_eq!(validate_batch(&b, usize::MAX).unwrap(), out);
    }

    /// A batch compressed with `codec` holding `kv` (as a producer would send it).
    fn compressed(codec: u8, kv: &[KeyValue<'_>]) -> BytesMut {
        let plain = build_batch(0, -1, -1, -1, 1_000, kv);
        let packed = compression::compress(codec, &plain[HEADER_LEN..], -1).unwrap();
        let mut b = BytesMut::from(&plain[..HEADER_LEN]);
        set_codec(&mut b, codec);
        b.extend_from_slice(&packed);
        finish_batch(&mut b);
        b
    }

    #[test]
    fn keys_inside_compressed_batches_are_checked() {
        let p = policy(&[("cleanup.policy", "compact")]);
        for codec in [compression::GZIP, compression::SNAPPY, compression::LZ4, compression::ZSTD] {
            let mut ok = compressed(codec, &[(Some(b"k"), Some(b"v"))]);
            let h = validate_batch(&ok, usize::MAX).unwrap();
            assert_eq!(code_of(p.apply(&mut ok, h, 1_000, "t", 0)), 0, "{codec}");
            let mut bad = compressed(codec, &[(Some(b"k"), Some(b"v")), (None, None)]);
            let h = validate_batch(&bad, usize::MAX).unwrap();
            assert_eq!(code_of(p.apply(&mut bad, h, 1_000, "t", 0)), code::INVALID_RECORD, "{codec}");
        }
    }

    #[test]
    fn compression_type_recompresses_on_the_leader() {
        let kv: Vec<KeyValue<'_>> =
            (0..200).map(|_| (Some(&b"key"[..]), Some(&b"a fairly repetitive value"[..]))).collect();
        let original = build_batch(0, -1, -1, -1, 1_000, &kv);
        for (name, want) in [("gzip", 1), ("snappy", 2), ("lz4", 3), ("zstd", 4)] {
            let p = policy(&[("compression.type", name)]);
            for mut input in [BytesMut::from(&original[..]), compressed(compression::GZIP, &kv)] {
                let h = validate_batch(&input, usize::MAX).unwrap();
                let out = p.apply(&mut input, h, 1_000, "t", 0).unwrap();
                assert_eq!(out.compression(), want, "{name}");
                assert_eq!(out.crc, crc32c_of(&input));
                assert_eq!(out.record_count, 200);
                assert!(input.len() < original.len(), "{name} shrinks the batch");
                assert_eq!(decompressed(&input).unwrap(), original, "{name}: same records");
            }
        }
        let mut input = compressed(compression::LZ4, &kv);
        let h = validate_batch(&input, usize::MAX).unwrap();
        let out = policy(&[("compression.type", "uncompressed")]).apply(&mut input, h, 1_000, "t", 0).unwrap();
        assert_eq!((out.compression(), &input[..]), (0, &original[..]));
        let mut input = compressed(compression::ZSTD, &kv);
        let h = validate_batch(&input, usize::MAX).unwrap();
        let before = input.clone();
        policy(&[]).apply(&mut input, h, 1_000, "t", 0).unwrap();
        assert_eq!(input, before, "producer: stored as sent");
    }
}
