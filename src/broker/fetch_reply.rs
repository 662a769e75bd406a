//! The Fetch response as a chain (`protocol::chain`): kafka-protocol encodes every field, and
//! each partition's records are spliced in afterwards instead of being copied into the
//! response buffer. On a plaintext listener the records are ranges of the segment files, sent
//! with `sendfile`; otherwise they are the bytes the fetch read.
//!
//! How the splice works without a codec of our own: the response is encoded with each
//! non-empty `records` replaced by a 20-byte marker (8 bytes of tag, a random per-process
//! nonce mixed with a counter, the partition's number). Every record byte lives in the
//! chain's parts, so the encoded buffer holds only the response's own fields, and the markers
//! are found in it in order. Each marker and the length prefix kafka-protocol wrote before it
//! (compact or classic, by the response's version) are replaced by the records' length prefix,
//! and the records themselves. A marker that is not
//! where it must be is an encode error (the connection closes): a wrong splice never reaches a
//! client. The unit tests compare the chain with kafka-protocol's own encoding at every version.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use bytes::Bytes;
use kafka_protocol::messages::FetchResponse;
use kafka_protocol::protocol::HeaderVersion;

use super::throttle::ThrottleField;
use crate::error::ProtocolError;
use crate::protocol::chain::{Chain, Part};
use crate::protocol::frame::encode_response;

const TAG: &[u8; 8] = b"\xc7chronik";
const MARKER_LEN: usize = 20;

/// A Fetch response and the records of its partitions, in the order the response lists them
/// (topic by topic); the response's own `records` fields are left empty.
pub struct FetchReply {
    pub resp: FetchResponse,
    pub records: Vec<Chain>,
}

impl ThrottleField for FetchReply {
    fn throttle_time_ms(&mut self, version: i16) -> Option<&mut i32> {
        self.resp.throttle_time_ms(version)
    }
}

/// A marker no response field holds: the tag, a nonce and `k`.
fn marker(nonce: u64, k: u32) -> [u8; MARKER_LEN] {
    let mut m = [0u8; MARKER_LEN];
    m[..8].copy_from_slice(TAG);
    m[8..16].copy_from_slice(&nonce.to_be_bytes());
    m[16..].copy_from_slice(&k.to_be_bytes());
    m
}

/// A fresh nonce: a random per-process value mixed with a counter.
fn nonce() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| std::collections::hash_map::RandomState::new().build_hasher().finish());
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// The length prefix of a `records` field of `len` bytes: an unsigned varint of `len + 1` in
/// flexible versions (COMPACT_RECORDS), else a big-endian i32. kafka-protocol keeps its
/// encoders private; the tests check these bytes against its whole encoding.
fn prefix(compact: bool, len: usize) -> Result<Bytes, ProtocolError> {
    let long = || ProtocolError::Encode { what: "fetch", reason: format!("records of {len} bytes") };
    let mut b = Vec::with_capacity(5);
    if compact {
        let mut n = u32::try_from(len + 1).map_err(|_| long())?;
        loop {
            let low = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                b.push(low);
                break;
            }
            b.push(low | 0x80);
        }
    } else {
        b.extend_from_slice(&i32::try_from(len).map_err(|_| long())?.to_be_bytes());
    }
    Ok(Bytes::from(b))
}

impl FetchReply {
    /// The framed response (size prefix, header, body) with the records spliced in.
    pub fn encode(mut self, what: &'static str, correlation_id: i32, version: i16) -> Result<Chain, ProtocolError> {
        let bad = |reason: String| ProtocolError::Encode { what, reason };
        let nonce = nonce();
        let compact = FetchResponse::header_version(version) >= 1;
        let mut spliced = Vec::new();
        let parts = self.resp.responses.iter_mut().flat_map(|t| t.partitions.iter_mut());
        let mut records = self.records.into_iter();
        for (k, p) in parts.enumerate() {
            let chain = records.next().unwrap_or_default();
            if chain.is_empty() {
                p.records = Some(Bytes::new());
                continue;
            }
            let k = u32::try_from(k).map_err(|_| bad("too many partitions".into()))?;
            p.records = Some(Bytes::copy_from_slice(&marker(nonce, k)));
            spliced.push((k, chain));
        }
        let mut head = encode_response(what, correlation_id, version, &self.resp)?;
        if spliced.is_empty() {
            return Ok(Chain::from(head));
        }
        let marker_prefix = prefix(compact, MARKER_LEN)?;
        let mut prefixes = Vec::with_capacity(spliced.len());
        let mut size = head.len() - 4;
        for (_, chain) in &spliced {
            let p = prefix(compact, chain.len())?;
            size = size - marker_prefix.len() - MARKER_LEN + p.len() + chain.len();
            prefixes.push(p);
        }
        let size = i32::try_from(size).map_err(|_| bad("response too large".into()))?;
        head[..4].copy_from_slice(&size.to_be_bytes());
        let head = head.freeze();
        let mut out = Chain::default();
        let mut from = 4 + marker_prefix.len();
        let mut copied = 0;
        for ((k, chain), p) in spliced.into_iter().zip(prefixes) {
            let m = marker(nonce, k);
            let at = head
                .get(from..)
                .unwrap_or_default()
                .windows(MARKER_LEN)
                .position(|w| w == m)
                .map(|i| from + i)
                .ok_or_else(|| bad(format!("the records of partition {k} were not found in the encoding")))?;
            let start = at - marker_prefix.len();
            if head[start..at] != marker_prefix[..] {
                return Err(bad(format!("the records of partition {k} are not where the encoding puts them")));
            }
            out.push(Part::Memory(head.slice(copied..start)));
            out.push(Part::Memory(p));
            out.append(chain);
            copied = at + MARKER_LEN;
            from = copied + marker_prefix.len();
        }
        out.push(Part::Memory(head.slice(copied..)));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::chain::{FileRange, HeldFile};
    use kafka_protocol::messages::fetch_response::{AbortedTransaction, FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::{ProducerId, TopicName};
    use kafka_protocol::protocol::StrBytes;
    use std::io::Write;
    use std::sync::Arc;

    fn partition(i: i32) -> PartitionData {
        PartitionData::default()
            .with_partition_index(i)
            .with_high_watermark(1000 + i as i64)
            .with_last_stable_offset(900)
            .with_log_start_offset(7)
            .with_aborted_transactions(Some(vec![AbortedTransaction::default()
                .with_producer_id(ProducerId(42))
                .with_first_offset(3)]))
            .with_records(Some(Bytes::new()))
    }

    /// Records of every shape: none, in memory, a file range, several parts; one of them
    /// holds the marker's tag (a client's bytes may look like anything).
    fn records(file: &Arc<HeldFile>) -> Vec<Chain> {
        let mut several = Chain::from(Bytes::from_static(b"first batch|"));
        several.push(Part::File(FileRange { file: file.clone(), pos: 3, len: 4000 }));
        several.push(Part::Memory(Bytes::from_static(b"|a batch still in memory")));
        let mut tagged = Chain::from(Bytes::copy_from_slice(&marker(nonce(), 1)));
        tagged.push(Part::Memory(Bytes::from(vec![7u8; 300])));
        vec![Chain::default(), Chain::from(Bytes::from(vec![1u8; 127])), several, tagged, {
            let mut c = Chain::default();
            c.push(Part::File(FileRange { file: file.clone(), pos: 0, len: 70_000 }));
            c
        }]
    }

    fn response() -> FetchResponse {
        let topic = |name: &str, parts: std::ops::Range<i32>| {
            FetchableTopicResponse::default()
                .with_topic(TopicName(StrBytes::from_string(name.to_string())))
                .with_partitions(parts.map(partition).collect())
        };
        FetchResponse::default()
            .with_throttle_time_ms(5)
            .with_responses(vec![topic("alpha", 0..2), topic("beta", 0..3)])
    }

    #[test]
    fn the_chain_is_kafka_protocols_encoding_at_every_version() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&(0..80_000u32).map(|i| (i * 7 % 251) as u8).collect::<Vec<_>>()).unwrap();
        let file = HeldFile::new(Arc::new(f));
        for version in 4..=12 {
            let recs = records(&file);
            // kafka-protocol's own encoding, with the records in place.
            let mut plain = response();
            let flat = plain.responses.iter_mut().flat_map(|t| t.partitions.iter_mut());
            for (p, r) in flat.zip(&recs) {
                p.records = Some(r.to_bytes().unwrap());
            }
            let expected = encode_response("fetch", 99, version, &plain).unwrap();
            let reply = FetchReply { resp: response(), records: recs };
            let chain = reply.encode("fetch", 99, version).unwrap();
            assert!(chain.has_files());
            assert_eq!(chain.len(), expected.len(), "version {version}");
            assert_eq!(chain.to_bytes().unwrap(), expected.freeze(), "version {version}");
        }
    }

    #[test]
    fn a_response_without_records_is_one_buffer() {
        let reply = FetchReply { resp: response(), records: vec![Chain::default(); 5] };
        let chain = reply.encode("fetch", 1, 11).unwrap();
        assert_eq!(chain.parts().len(), 1);
        assert_eq!(chain.to_bytes().unwrap(), encode_response("fetch", 1, 11, &response()).unwrap().freeze());
    }

    #[test]
    fn markers_differ_between_responses() {
        assert_ne!(marker(nonce(), 0), marker(nonce(), 0));
    }
}
