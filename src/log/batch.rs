//! Kafka record batch v2 (magic 2) framing and validation: parsing the 61-byte batch header,
//! splitting a Produce partition's `records` field into batches and validating each one (magic,
//! length, CRC-32C, record count, and for uncompressed batches the records themselves), stamping
//! the broker-assigned base offset and leader epoch in place, a light decoder for uncompressed
//! records, and a builder for valid uncompressed batches used by tests and benches. Everything here
//! decodes untrusted client bytes, so every access is bounds-checked and no input can panic.

use std::ops::Range;

/// Size of the fixed batch header; records start at this offset.
pub const BATCH_HEADER_LEN: usize = 61;
/// baseOffset + batchLength: the bytes not counted by `batch_length`.
pub const LOG_OVERHEAD: usize = 12;
/// The only batch format chronik stores.
pub const MAGIC_V2: i8 = 2;
/// `producer_id`, `producer_epoch` and `base_sequence` of non-idempotent batches.
pub const NO_PRODUCER_ID: i64 = -1;
pub const NO_PRODUCER_EPOCH: i16 = -1;
pub const NO_SEQUENCE: i32 = -1;

const MAGIC_OFFSET: usize = 16;
const ATTRIBUTES_OFFSET: usize = 21;
const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_FLAG: i16 = 0x08;
const TRANSACTIONAL_FLAG: i16 = 0x10;
const CONTROL_FLAG: i16 = 0x20;
const MAX_COMPRESSION_ID: u8 = 4; // zstd

/// Why a batch (or a whole `records` field) was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("records field holds no record batch")]
    Empty,
    #[error("truncated record batch: need {needed} bytes, have {available}")]
    TooShort { needed: usize, available: usize },
    #[error("record batch length {batch_length} is inconsistent with the {available} bytes available")]
    LengthMismatch { batch_length: i32, available: usize },
    #[error("message format with magic {0} is not supported (only magic 2)")]
    UnsupportedMagic(i8),
    #[error("invalid magic byte {0}")]
    InvalidMagic(i8),
    #[error("record batch CRC mismatch: header says {expected:#010x}, computed {actual:#010x}")]
    CrcMismatch { expected: u32, actual: u32 },
    #[error("unknown compression codec id {0}")]
    InvalidCompression(u8),
    #[error("invalid record count {record_count} with last offset delta {last_offset_delta}")]
    InvalidRecordCount { record_count: i32, last_offset_delta: i32 },
    #[error("batch declares {declared} records but holds {actual}")]
    RecordCountMismatch { declared: i32, actual: usize },
    #[error("invalid record #{index}: {reason}")]
    InvalidRecord { index: usize, reason: &'static str },
    #[error("clients may not write control batches")]
    ControlBatch,
    #[error("producer id {producer_id} with invalid base sequence {base_sequence}")]
    InvalidSequence { producer_id: i64, base_sequence: i32 },
    #[error("record batch of {len} bytes exceeds the maximum of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("records of a batch compressed with codec {0} cannot be decoded here")]
    Compressed(u8),
}

impl BatchError {
    /// Kafka error code for a Produce partition response, following Kafka's mapping:
    /// framing/CRC problems are `CorruptRecordException` (2), problems found inside a
    /// CRC-valid batch are `InvalidRecordException` (87, as in Kafka's `LogValidator`).
    /// `Compressed` is a caller error (records() on a compressed batch), not a client one.
    pub fn kafka_code(&self) -> i16 {
        use BatchError::*;
        match self {
            TooShort { .. } | LengthMismatch { .. } | InvalidMagic(_) | CrcMismatch { .. } => 2,
            InvalidCompression(_) => 2, // CORRUPT_MESSAGE
            UnsupportedMagic(_) => 43,  // UNSUPPORTED_FOR_MESSAGE_FORMAT
            TooLarge { .. } => 10,      // MESSAGE_TOO_LARGE
            Empty | InvalidRecordCount { .. } | RecordCountMismatch { .. } => 87, // INVALID_RECORD
            InvalidRecord { .. } | ControlBatch | InvalidSequence { .. } => 87,
            Compressed(_) => -1, // UNKNOWN_SERVER_ERROR
        }
    }
}

fn too_short(available: usize) -> BatchError {
    BatchError::TooShort { needed: BATCH_HEADER_LEN, available }
}

fn mismatch(batch_length: i32, available: usize) -> BatchError {
    BatchError::LengthMismatch { batch_length, available }
}

/// The fixed 61-byte header of a v2 record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

fn be<const N: usize>(buf: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(src) = buf.get(at..at + N) {
        out.copy_from_slice(src);
    }
    out
}

/// Checks the magic byte at offset 16 (same place in the legacy v0/v1 message format).
fn check_magic(magic: i8) -> Result<(), BatchError> {
    match magic {
        MAGIC_V2 => Ok(()),
        0 | 1 => Err(BatchError::UnsupportedMagic(magic)),
        _ => Err(BatchError::InvalidMagic(magic)),
    }
}

impl BatchHeader {
    /// Parses the header at the start of `buf`. Checks the magic and that `batch_length` is at
    /// least a header's worth, but not that `buf` holds the whole batch (so a header read from a
    /// 61-byte prefix parses) nor the CRC: use [`validate_batches`] for that.
    pub fn parse(buf: &[u8]) -> Result<Self, BatchError> {
        if buf.len() < BATCH_HEADER_LEN {
            return Err(too_short(buf.len()));
        }
        let h = BatchHeader {
            base_offset: i64::from_be_bytes(be(buf, 0)),
            batch_length: i32::from_be_bytes(be(buf, 8)),
            partition_leader_epoch: i32::from_be_bytes(be(buf, 12)),
            magic: i8::from_be_bytes(be(buf, MAGIC_OFFSET)),
            crc: u32::from_be_bytes(be(buf, 17)),
            attributes: i16::from_be_bytes(be(buf, ATTRIBUTES_OFFSET)),
            last_offset_delta: i32::from_be_bytes(be(buf, 23)),
            base_timestamp: i64::from_be_bytes(be(buf, 27)),
            max_timestamp: i64::from_be_bytes(be(buf, 35)),
            producer_id: i64::from_be_bytes(be(buf, 43)),
            producer_epoch: i16::from_be_bytes(be(buf, 51)),
            base_sequence: i32::from_be_bytes(be(buf, 53)),
            record_count: i32::from_be_bytes(be(buf, 57)),
        };
        check_magic(h.magic)?;
        if h.batch_length < (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32 {
            return Err(mismatch(h.batch_length, buf.len()));
        }
        Ok(h)
    }

    /// Size of the whole batch in bytes: 12 + `batch_length` (0 for a negative length).
    pub fn total_len(&self) -> usize {
        usize::try_from(self.batch_length).map_or(0, |l| l.saturating_add(LOG_OVERHEAD))
    }

    /// Compression codec id: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd (5..7 are invalid).
    pub fn compression(&self) -> u8 {
        (self.attributes & COMPRESSION_MASK) as u8
    }

    /// Timestamp type bit: false = CreateTime, true = LogAppendTime.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_FLAG != 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_FLAG != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_FLAG != 0
    }

    /// Sequence of the last record, wrapping past `i32::MAX` to 0 exactly like Kafka's
    /// `DefaultRecordBatch.incrementSequence(baseSequence, lastOffsetDelta)`.
    /// `NO_SEQUENCE` when the batch has no base sequence.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence == NO_SEQUENCE {
            return NO_SEQUENCE;
        }
        increment_sequence(self.base_sequence, self.last_offset_delta)
    }

    /// Offset of the last record (`base_offset + last_offset_delta`).
    pub fn last_offset(&self) -> i64 {
        self.base_offset.saturating_add(i64::from(self.last_offset_delta))
    }

    /// Offset following this batch (`last_offset() + 1`).
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }

    /// True for idempotent/transactional batches (`producer_id >= 0`).
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }
}

/// Kafka's `DefaultRecordBatch.incrementSequence`: sequences wrap from `i32::MAX` to 0.
pub fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    let (s, i) = (i64::from(sequence), i64::from(increment));
    let max = i64::from(i32::MAX);
    if s > max - i {
        (i - (max - s) - 1) as i32
    } else {
        (s + i) as i32
    }
}

/// CRC-32C (Castagnoli) of `batch[21..]` (attributes to the end): the value the header's `crc`
/// must hold. `batch` must be exactly one batch; a slice shorter than 21 bytes hashes as empty.
pub fn crc32c_of(batch: &[u8]) -> u32 {
    crc32c::crc32c(batch.get(ATTRIBUTES_OFFSET..).unwrap_or(&[]))
}

/// Overwrites baseOffset (bytes 0..8). The CRC does not cover it. No-op on a slice < 8 bytes.
pub fn stamp_base_offset(batch: &mut [u8], base_offset: i64) {
    if let Some(dst) = batch.get_mut(0..8) {
        dst.copy_from_slice(&base_offset.to_be_bytes());
    }
}

/// Overwrites partitionLeaderEpoch (bytes 12..16), also outside the CRC. No-op on a short slice.
pub fn stamp_leader_epoch(batch: &mut [u8], epoch: i32) {
    if let Some(dst) = batch.get_mut(12..16) {
        dst.copy_from_slice(&epoch.to_be_bytes());
    }
}

/// Splits the `records` field of a Produce partition (one or more concatenated batches) into
/// batches and validates each: magic 2, length consistent with the buffer (no trailing bytes),
/// size <= `max_batch_bytes`, CRC-32C, a known codec, `record_count > 0` with
/// `last_offset_delta == record_count - 1` (Kafka's LogValidator rejects empty batches from
/// clients), no control batch, a non-negative base sequence when a producer id is set, and for
/// uncompressed batches that the records decode, have offset deltas 0,1,2.. and number
/// `record_count`. Compressed batches are stored as they came: only their header is checked.
/// The first failing batch rejects the whole set; an empty `records` is rejected too.
pub fn validate_batches(
    records: &[u8],
    max_batch_bytes: usize,
) -> Result<Vec<(Range<usize>, BatchHeader)>, BatchError> {
    if records.is_empty() {
        return Err(BatchError::Empty);
    }
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < records.len() {
        let rest = records.get(pos..).unwrap_or(&[]);
        let len = frame_len(rest)?;
        let batch = rest.get(..len).unwrap_or(&[]);
        let header = validate_batch(batch, max_batch_bytes)?;
        out.push((pos..pos + len, header));
        pos += len;
    }
    Ok(out)
}

/// Length of the batch at the start of `rest`, checking the magic before trusting the length.
fn frame_len(rest: &[u8]) -> Result<usize, BatchError> {
    if rest.len() <= MAGIC_OFFSET {
        return Err(too_short(rest.len()));
    }
    check_magic(i8::from_be_bytes(be(rest, MAGIC_OFFSET)))?;
    let batch_length = i32::from_be_bytes(be(rest, 8));
    let len = usize::try_from(batch_length).map_err(|_| mismatch(batch_length, rest.len()))?;
    let total = len.saturating_add(LOG_OVERHEAD);
    if total < BATCH_HEADER_LEN || total > rest.len() {
        return Err(mismatch(batch_length, rest.len()));
    }
    Ok(total)
}

/// Validates one complete batch (`batch` must be exactly the batch's bytes), see
/// [`validate_batches`] for the rules. Returns its header.
pub fn validate_batch(batch: &[u8], max_batch_bytes: usize) -> Result<BatchHeader, BatchError> {
    use BatchError::*;
    let h = BatchHeader::parse(batch)?;
    let (len, codec) = (batch.len(), h.compression());
    let (record_count, last_offset_delta) = (h.record_count, h.last_offset_delta);
    ensure(h.total_len() == len, || mismatch(h.batch_length, len))?;
    ensure(len <= max_batch_bytes, || TooLarge { len, max: max_batch_bytes })?;
    let actual = crc32c_of(batch);
    ensure(actual == h.crc, || CrcMismatch { expected: h.crc, actual })?;
    ensure(codec <= MAX_COMPRESSION_ID, || InvalidCompression(codec))?;
    let count_ok = record_count > 0 && i64::from(last_offset_delta) == i64::from(record_count) - 1;
    ensure(count_ok, || InvalidRecordCount { record_count, last_offset_delta })?;
    ensure(!h.is_control(), || ControlBatch)?;
    let (producer_id, base_sequence) = (h.producer_id, h.base_sequence);
    let seq_ok = !h.has_producer_id() || base_sequence >= 0;
    ensure(seq_ok, || InvalidSequence { producer_id, base_sequence })?;
    if codec == 0 {
        let body = batch.get(BATCH_HEADER_LEN..).unwrap_or(&[]);
        let (mut pos, mut actual) = (0, 0usize);
        while pos < body.len() {
            let r = parse_record(body, &mut pos, actual, false)?;
            let in_order = i64::from(r.offset_delta) == actual as i64;
            ensure(in_order, || bad(actual, "offset delta is not sequential"))?;
            actual += 1;
        }
        let declared = record_count;
        ensure(actual as i64 == i64::from(declared), || RecordCountMismatch { declared, actual })?;
    }
    Ok(h)
}

fn ensure(ok: bool, err: impl FnOnce() -> BatchError) -> Result<(), BatchError> {
    if ok {
        Ok(())
    } else {
        Err(err())
    }
}

/// One decoded record of an uncompressed batch, borrowing key, value and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub attributes: i8,
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    /// (header key, header value) pairs, in order.
    pub headers: Vec<(&'a [u8], Option<&'a [u8]>)>,
}

/// Decodes every record of one uncompressed batch (`batch` must hold the whole batch; bytes
/// past `total_len` are ignored). Does not check the CRC or `record_count`: run
/// [`validate_batches`] first for untrusted input. Compressed batches yield `Compressed`.
pub fn records(batch: &[u8]) -> Result<Vec<RecordView<'_>>, BatchError> {
    let h = BatchHeader::parse(batch)?;
    if h.compression() != 0 {
        return Err(BatchError::Compressed(h.compression()));
    }
    let body = batch.get(BATCH_HEADER_LEN..h.total_len()).ok_or(mismatch(h.batch_length, batch.len()))?;
    // A record takes at least 7 bytes: never trust record_count for the allocation.
    let cap = usize::try_from(h.record_count).unwrap_or(0);
    let mut out = Vec::with_capacity(cap.min(body.len() / 7));
    let mut pos = 0;
    while pos < body.len() {
        out.push(parse_record(body, &mut pos, out.len(), true)?);
    }
    Ok(out)
}

fn bad(index: usize, reason: &'static str) -> BatchError {
    BatchError::InvalidRecord { index, reason }
}

/// Bounds-checked reader over record bytes; errors name the record's index in the batch.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    index: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], BatchError> {
        let end = self.pos.checked_add(len).ok_or(bad(self.index, what))?;
        let out = self.buf.get(self.pos..end).ok_or(bad(self.index, what))?;
        self.pos = end;
        Ok(out)
    }

    /// Unsigned LEB128 of at most `max` bytes, as Kafka's `ByteUtils` (5 for an int, 10 for a long).
    fn raw_var(&mut self, max: u32, what: &'static str) -> Result<u64, BatchError> {
        let mut raw = 0u64;
        for i in 0..max {
            let b = *self.take(1, what)?.first().unwrap_or(&0);
            raw |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(raw);
            }
        }
        Err(bad(self.index, what))
    }

    fn varint(&mut self, what: &'static str) -> Result<i32, BatchError> {
        let r = self.raw_var(5, what)? as u32; // bits past 32 are dropped, as in Java
        Ok((r >> 1) as i32 ^ -((r & 1) as i32))
    }

    fn varlong(&mut self, what: &'static str) -> Result<i64, BatchError> {
        let r = self.raw_var(10, what)?;
        Ok((r >> 1) as i64 ^ -((r & 1) as i64))
    }

    /// A varint-length-prefixed byte string; a negative length is null, as in Kafka.
    fn bytes(&mut self) -> Result<Option<&'a [u8]>, BatchError> {
        match usize::try_from(self.varint("malformed length")?) {
            Ok(len) => self.take(len, "field runs past the record").map(Some),
            Err(_) => Ok(None),
        }
    }
}

/// Decodes the record starting at `body[*pos]` and advances `pos` past it. The record must
/// consume exactly its declared length. Headers are collected only when `keep_headers`.
pub(crate) fn parse_record<'a>(
    body: &'a [u8],
    pos: &mut usize,
    index: usize,
    keep_headers: bool,
) -> Result<RecordView<'a>, BatchError> {
    let mut outer = Cursor { buf: body, pos: *pos, index };
    let len = outer.varint("malformed record length")?;
    let len = usize::try_from(len).map_err(|_| bad(index, "negative record length"))?;
    let rec = outer.take(len, "record runs past the batch")?;
    *pos = outer.pos;

    let mut c = Cursor { buf: rec, pos: 0, index };
    let attributes = i8::from_be_bytes(be(c.take(1, "empty record")?, 0));
    let timestamp_delta = c.varlong("malformed timestamp delta")?;
    let offset_delta = c.varint("malformed offset delta")?;
    let key = c.bytes()?;
    let value = c.bytes()?;
    let n_headers =
        usize::try_from(c.varint("malformed header count")?).map_err(|_| bad(index, "negative header count"))?;
    if n_headers > rec.len().saturating_sub(c.pos) {
        return Err(bad(index, "header count exceeds record size"));
    }
    let mut headers = Vec::new();
    for _ in 0..n_headers {
        let hkey = c.bytes()?.ok_or(bad(index, "null header key"))?;
        let hval = c.bytes()?;
        if keep_headers {
            headers.push((hkey, hval));
        }
    }
    if c.pos != rec.len() {
        return Err(bad(index, "record length does not match its fields"));
    }
    Ok(RecordView { attributes, timestamp_delta, offset_delta, key, value, headers })
}

fn put_varint(out: &mut Vec<u8>, v: i32) {
    put_varlong(out, i64::from(v));
}

fn put_varlong(out: &mut Vec<u8>, v: i64) {
    let mut raw = ((v << 1) ^ (v >> 63)) as u64;
    while raw >= 0x80 {
        out.push((raw as u8 & 0x7f) | 0x80);
        raw >>= 7;
    }
    out.push(raw as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => put_varint(out, -1),
        Some(b) => {
            put_varint(out, i32::try_from(b.len()).unwrap_or(i32::MAX));
            out.extend_from_slice(b);
        }
    }
}

/// A record's (key, value) for [`build_batch`]; `None` is a null key or value.
pub type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);
/// A record header: (key, value).
type Header<'a> = (&'a [u8], Option<&'a [u8]>);

/// Appends one encoded record (length prefix included).
fn encode_record(
    out: &mut Vec<u8>,
    offset_delta: i32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[Header<'_>],
) {
    let mut body = vec![0u8]; // attributes
    put_varlong(&mut body, 0); // timestamp delta: every record carries the batch timestamp
    put_varint(&mut body, offset_delta);
    put_bytes(&mut body, key);
    put_bytes(&mut body, value);
    put_varint(&mut body, i32::try_from(headers.len()).unwrap_or(i32::MAX));
    for (k, v) in headers {
        put_bytes(&mut body, Some(k));
        put_bytes(&mut body, *v);
    }
    put_varint(out, i32::try_from(body.len()).unwrap_or(i32::MAX));
    out.extend_from_slice(&body);
}

/// Builds a valid uncompressed v2 batch (CreateTime, partition leader epoch -1, correct CRC)
/// holding `records` as (key, value) pairs with offset deltas 0.. and `timestamp` as both base
/// and max timestamp. Pass `NO_PRODUCER_ID`/`NO_PRODUCER_EPOCH`/`NO_SEQUENCE` for a
/// non-idempotent batch. An empty `records` gives a well-formed batch that validation rejects.
pub fn build_batch(
    base_offset: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    timestamp: i64,
    records: &[KeyValue<'_>],
) -> Vec<u8> {
    let count = i32::try_from(records.len()).unwrap_or(i32::MAX);
    let mut buf = Vec::with_capacity(BATCH_HEADER_LEN + records.len() * 16);
    buf.extend_from_slice(&base_offset.to_be_bytes());
    buf.extend_from_slice(&[0; 4]); // batch length, set below
    buf.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    buf.push(MAGIC_V2 as u8);
    buf.extend_from_slice(&[0; 4]); // crc, set below
    buf.extend_from_slice(&0i16.to_be_bytes()); // attributes
    buf.extend_from_slice(&(count - 1).to_be_bytes());
    buf.extend_from_slice(&timestamp.to_be_bytes());
    buf.extend_from_slice(&timestamp.to_be_bytes());
    buf.extend_from_slice(&producer_id.to_be_bytes());
    buf.extend_from_slice(&producer_epoch.to_be_bytes());
    buf.extend_from_slice(&base_sequence.to_be_bytes());
    buf.extend_from_slice(&count.to_be_bytes());
    for (i, (k, v)) in records.iter().enumerate() {
        encode_record(&mut buf, i32::try_from(i).unwrap_or(i32::MAX), *k, *v, &[]);
    }
    finish_batch(&mut buf);
    buf
}

/// Rewrites batchLength and the CRC of `batch` (exactly one whole batch) from its bytes, e.g.
/// after the broker changed covered fields such as maxTimestamp for LogAppendTime topics.
pub fn finish_batch(batch: &mut [u8]) {
    let len = i32::try_from(batch.len().saturating_sub(LOG_OVERHEAD)).unwrap_or(i32::MAX);
    if let Some(dst) = batch.get_mut(8..12) {
        dst.copy_from_slice(&len.to_be_bytes());
    }
    let crc = crc32c_of(batch);
    if let Some(dst) = batch.get_mut(17..21) {
        dst.copy_from_slice(&crc.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BatchError::*;

    const MAX: usize = 1 << 20;
    const KVS: &[KeyValue<'static>] = &[(Some(b"k0"), Some(b"v0")), (None, Some(b"v1")), (Some(b"k2"), None)];

    fn sample() -> Vec<u8> {
        build_batch(0, 42, 3, 10, 1_700_000_000_000, KVS)
    }

    /// Applies `f` to a valid batch, then fixes batchLength and CRC so only `f`'s change is wrong.
    fn tweak(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut b = sample();
        f(&mut b);
        finish_batch(&mut b);
        b
    }

    fn set(at: usize, v: &[u8]) -> Vec<u8> {
        tweak(|b| b[at..at + v.len()].copy_from_slice(v))
    }

    fn err(b: &[u8]) -> (BatchError, i16) {
        let e = validate_batches(b, MAX).unwrap_err();
        let code = e.kafka_code();
        (e, code)
    }

    #[test]
    fn build_parse_validate_roundtrip() {
        let b = sample();
        let h = BatchHeader::parse(&b).unwrap();
        let want = BatchHeader {
            base_offset: 0,
            batch_length: b.len() as i32 - 12,
            partition_leader_epoch: -1,
            magic: 2,
            crc: crc32c::crc32c(&b[21..]),
            attributes: 0,
            last_offset_delta: 2,
            base_timestamp: 1_700_000_000_000,
            max_timestamp: 1_700_000_000_000,
            producer_id: 42,
            producer_epoch: 3,
            base_sequence: 10,
            record_count: 3,
        };
        assert_eq!(h, want);
        assert_eq!((h.total_len(), h.last_sequence(), h.next_offset()), (b.len(), 12, 3));
        assert!(h.has_producer_id() && !h.is_transactional() && !h.is_control());
        assert_eq!(validate_batches(&b, MAX).unwrap(), vec![(0..b.len(), h)]);
        let recs = records(&b).unwrap();
        assert_eq!(recs.iter().map(|r| (r.key, r.value)).collect::<Vec<_>>(), KVS);
        assert!(recs.iter().enumerate().all(|(i, r)| r.offset_delta == i as i32));
        let plain = build_batch(0, NO_PRODUCER_ID, NO_PRODUCER_EPOCH, NO_SEQUENCE, 5, KVS);
        let h = validate_batch(&plain, MAX).unwrap();
        assert_eq!((h.has_producer_id(), h.last_sequence()), (false, NO_SEQUENCE));
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283); // the Castagnoli check value
        assert_eq!(crc32c_of(&b[..3]), 0); // shorter than a header: hashes as empty
    }

    #[test]
    fn concatenated_batches_split_into_ranges() {
        let (a, b) = (sample(), build_batch(0, -1, -1, -1, 7, &[(None, Some(b"x"))]));
        let all = [a.clone(), b.clone()].concat();
        let v = validate_batches(&all, MAX).unwrap();
        let ranges: Vec<_> = v.iter().map(|(r, h)| (r.clone(), h.record_count)).collect();
        assert_eq!(ranges, vec![(0..a.len(), 3), (a.len()..all.len(), 1)]);
        let mut bad = all.clone();
        *bad.last_mut().unwrap() ^= 1; // one bad batch rejects the whole set
        assert!(matches!(err(&bad), (CrcMismatch { .. }, 2)));
    }

    #[test]
    fn framing_crc_and_size_errors() {
        let b = sample();
        let with = |at: usize, v: &[u8]| {
            let mut m = b.clone();
            m[at..at + v.len()].copy_from_slice(v);
            m
        };
        assert_eq!(err(&[]), (Empty, 87));
        assert!(matches!(err(&b[..10]), (TooShort { .. }, 2)));
        assert!(matches!(err(&b[..40]), (LengthMismatch { .. }, 2)));
        assert!(matches!(err(&[&b[..], &[0; 5]].concat()), (TooShort { .. }, 2)));
        assert!(matches!(err(&[&b[..], &b[..70]].concat()), (LengthMismatch { .. }, 2)));
        assert!(matches!(err(&with(8, &48i32.to_be_bytes())), (LengthMismatch { .. }, 2)));
        assert!(matches!(err(&with(8, &(-5i32).to_be_bytes())), (LengthMismatch { .. }, 2)));
        assert!(matches!(BatchHeader::parse(&b[..60]), Err(TooShort { .. })));
        for (magic, want) in [(0u8, 43), (1, 43), (3, 2), (0xff, 2)] {
            assert_eq!(err(&with(16, &[magic])).1, want, "magic {magic}");
        }
        assert_eq!(BatchHeader::parse(&with(16, &[1])), Err(UnsupportedMagic(1)));
        for i in [21, 30, 60, b.len() - 1] {
            assert!(matches!(err(&with(i, &[b[i] ^ 0x40])), (CrcMismatch { .. }, 2)));
        }
        let too_large = validate_batches(&b, b.len() - 1).unwrap_err();
        assert_eq!(too_large, TooLarge { len: b.len(), max: b.len() - 1 });
        assert_eq!(too_large.kafka_code(), 10);
        assert!(validate_batches(&b, b.len()).is_ok());
    }

    #[test]
    fn structure_errors_behind_a_valid_crc() {
        let four_three = tweak(|b| {
            b[57..61].copy_from_slice(&4i32.to_be_bytes());
            b[23..27].copy_from_slice(&3i32.to_be_bytes());
        });
        let cases = [
            (set(57, &4i32.to_be_bytes()), InvalidRecordCount { record_count: 4, last_offset_delta: 2 }),
            (set(23, &3i32.to_be_bytes()), InvalidRecordCount { record_count: 3, last_offset_delta: 3 }),
            (set(57, &0i32.to_be_bytes()), InvalidRecordCount { record_count: 0, last_offset_delta: 2 }),
            (four_three, RecordCountMismatch { declared: 4, actual: 3 }),
            (set(22, &[0x20]), ControlBatch),
            (set(53, &(-1i32).to_be_bytes()), InvalidSequence { producer_id: 42, base_sequence: -1 }),
            (tweak(|b| b.truncate(b.len() - 1)), bad(2, "record runs past the batch")),
            (tweak(|b| b.push(0)), bad(3, "empty record")),
            (tweak(|b| b.push(0x7e)), bad(3, "record runs past the batch")),
            (set(64, &[0x04]), bad(0, "offset delta is not sequential")),
        ];
        for (batch, want) in cases {
            assert_eq!(err(&batch), (want, 87));
        }
        assert_eq!(err(&set(22, &[0x05])), (InvalidCompression(5), 2));
    }

    #[test]
    fn compressed_batches_are_checked_by_header_only() {
        for codec in 1..=4u8 {
            let b = tweak(|b| {
                b[22] = codec;
                b.truncate(61);
                b.extend_from_slice(b"opaque compressed bytes");
            });
            assert_eq!(validate_batch(&b, MAX).unwrap().compression(), codec);
            assert_eq!(records(&b), Err(Compressed(codec)));
        }
    }

    #[test]
    fn headers_and_varints_decode() {
        let hdrs: [Header<'_>; 2] = [(b"h1", Some(b"x")), (b"h2", None)];
        let b = tweak(|b| {
            b.truncate(61);
            encode_record(b, 0, Some(&[7u8; 300]), Some(&[]), &hdrs);
            b[57..61].copy_from_slice(&1i32.to_be_bytes());
            b[23..27].copy_from_slice(&0i32.to_be_bytes());
        });
        validate_batches(&b, MAX).unwrap();
        let r = &records(&b).unwrap()[0];
        assert_eq!((r.key.map(<[u8]>::len), r.value), (Some(300), Some(&b""[..])));
        assert_eq!(r.headers, hdrs.to_vec());
        fn cur(buf: &[u8]) -> Cursor<'_> {
            Cursor { buf, pos: 0, index: 0 }
        }
        let (min, max) = (i64::from(i32::MIN), i64::from(i32::MAX));
        for v in [0i64, 1, -1, 63, -64, 64, max, min, i64::MAX, i64::MIN] {
            let mut buf = Vec::new();
            put_varlong(&mut buf, v);
            assert_eq!(cur(&buf).varlong("x"), Ok(v));
            assert_eq!(cur(&buf).varint("x").ok(), i32::try_from(v).ok());
        }
        assert!(cur(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]).varint("x").is_err());
        // 6 bytes
    }

    #[test]
    fn stamping_keeps_crc_valid_and_never_panics() {
        let mut b = sample();
        stamp_base_offset(&mut b, 1_000);
        stamp_leader_epoch(&mut b, 9);
        let h = validate_batch(&b, MAX).unwrap();
        assert_eq!((h.base_offset, h.partition_leader_epoch, h.next_offset()), (1_000, 9, 1_003));
        let mut tiny = [0u8; 4];
        stamp_base_offset(&mut tiny, 5);
        stamp_leader_epoch(&mut tiny, 5);
        assert_eq!(tiny, [0; 4]);
    }

    #[test]
    fn last_sequence_wraps_like_kafka() {
        let h = BatchHeader::parse(&sample()).unwrap();
        let last =
            |base_sequence, last_offset_delta| BatchHeader { base_sequence, last_offset_delta, ..h }.last_sequence();
        assert_eq!([last(i32::MAX - 1, 2), last(i32::MAX, 0), last(i32::MAX, 1)], [0, i32::MAX, 0]);
        assert_eq!([last(i32::MAX - 2, 5), last(5, 4)], [2, 9]);
        assert_eq!(increment_sequence(i32::MAX, i32::MAX), i32::MAX - 1);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let b = [sample(), sample()].concat();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as usize
        };
        for n in 0..=b.len() {
            let _ = (validate_batches(&b[..n], MAX), records(&b[..n]));
        }
        for _ in 0..5000 {
            let mut m = b.clone();
            for _ in 0..1 + rnd() % 4 {
                let i = rnd() % m.len();
                m[i] = rnd() as u8;
            }
            if rnd() % 2 == 0 {
                finish_batch(&mut m[..b.len() / 2]); // valid CRC around garbage
            }
            let noise: Vec<u8> = (0..rnd() % 200).map(|_| rnd() as u8).collect();
            for input in [&m, &noise] {
                let _ = (validate_batches(input, MAX), records(input));
            }
        }
    }
}
