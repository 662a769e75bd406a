//! Idempotent-producer bookkeeping for one partition, following Apache Kafka's
//! `ProducerStateManager`/`ProducerAppendInfo` (KIP-98, KIP-360): per producer id the current
//! epoch and the metadata of its last 5 appended batches, used by the partition leader to accept,
//! deduplicate or reject an incoming batch (`check`) and updated for every batch that enters the
//! log (`apply`, on the leader at propose time and on every replica when applying or replaying
//! the log). It is a pure, deterministic function of the applied batches, so replaying the same
//! log on any replica yields the same table. Rules, in Kafka's order:
//! - `producer_id < 0` (not idempotent): no checks.
//! - Unknown producer id: accepted with any sequence. Since Kafka 2.5 (KIP-360) the broker no
//!   longer answers UNKNOWN_PRODUCER_ID; state lost to retention or DeleteRecords is recreated
//!   from whatever sequence the producer continues with.
//! - Same epoch: a batch whose (first, last) sequence equals one of the last 5 batches is a
//!   duplicate, answered with the original offsets (Kafka answers NONE with those offsets);
//!   otherwise it must continue the sequence (`last + 1`, `i32::MAX` wraps to 0), else
//!   OUT_OF_ORDER_SEQUENCE_NUMBER (45). A retry older than the 5-batch window is therefore
//!   OUT_OF_ORDER_SEQUENCE_NUMBER, as in Kafka since 1.0: the broker never returns
//!   DUPLICATE_SEQUENCE_NUMBER (46), and producers never have more than 5 batches in flight.
//! - Newer epoch: must start at sequence 0 (else 45) and replaces the producer's state.
//! - Older epoch: INVALID_PRODUCER_EPOCH (47), what Kafka ≥ 2.7 returns to a fenced producer.

use std::collections::{BTreeMap, VecDeque};

use crate::log::batch::{BatchHeader, NO_PRODUCER_EPOCH};
use crate::partition::txn::{AbortedTxn, Marker};

/// Batches remembered per producer for duplicate detection (Kafka's `NUM_BATCHES_TO_RETAIN`,
/// matching the producer's `max.in.flight.requests.per.connection <= 5` limit).
pub const NUM_BATCHES_TO_RETAIN: usize = 5;

/// What the table needs to know about one appended (or to-be-appended) batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    /// `BatchHeader::last_sequence()`: wraps past `i32::MAX` to 0.
    pub last_sequence: i32,
    pub base_offset: i64,
    pub last_offset: i64,
    /// The batch's max timestamp.
    pub timestamp: i64,
    /// The batch has the transactional flag: it opens (or continues) the producer's transaction.
    pub transactional: bool,
}

impl ProducerBatch {
    /// From a batch header whose base offset has already been assigned (stamped).
    pub fn from_header(h: &BatchHeader) -> Self {
        ProducerBatch {
            producer_id: h.producer_id,
            producer_epoch: h.producer_epoch,
            base_sequence: h.base_sequence,
            last_sequence: h.last_sequence(),
            base_offset: h.base_offset,
            last_offset: h.last_offset(),
            timestamp: h.max_timestamp,
            transactional: h.is_transactional(),
        }
    }
}

/// Outcome of [`ProducerStateTable::check`] for an acceptable batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqCheck {
    /// Append the batch, then `apply` it.
    Append,
    /// A retry of a batch already in the log: do not append; answer success with its offsets.
    Duplicate { base_offset: i64, last_offset: i64, timestamp: i64 },
}

/// Why a batch from an idempotent producer is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProducerError {
    #[error("out of order sequence for producer {producer_id} epoch {producer_epoch}: got {base_sequence}, expected {expected}")]
    OutOfOrderSequence { producer_id: i64, producer_epoch: i16, base_sequence: i32, expected: i32 },
    #[error("producer {producer_id} epoch {producer_epoch} is older than the current epoch {current_epoch}")]
    InvalidProducerEpoch { producer_id: i64, producer_epoch: i16, current_epoch: i16 },
    #[error("producer {producer_id} sent a non-transactional batch while its transaction is open")]
    InvalidTxnState { producer_id: i64 },
    #[error("marker for producer {producer_id} from coordinator epoch {coordinator_epoch}, older than {current}")]
    CoordinatorFenced { producer_id: i64, coordinator_epoch: i32, current: i32 },
}

impl ProducerError {
    /// OUT_OF_ORDER_SEQUENCE_NUMBER = 45, INVALID_PRODUCER_EPOCH = 47, INVALID_TXN_STATE = 48,
    /// TRANSACTION_COORDINATOR_FENCED = 52.
    pub fn kafka_code(&self) -> i16 {
        match self {
            ProducerError::OutOfOrderSequence { .. } => 45,
            ProducerError::InvalidProducerEpoch { .. } => 47,
            ProducerError::InvalidTxnState { .. } => 48,
            ProducerError::CoordinatorFenced { .. } => 52,
        }
    }
}

/// Metadata of one batch remembered for duplicate detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub base_offset: i64,
    pub last_offset: i64,
    pub timestamp: i64,
}

/// State of one producer id: its epoch and its last batches, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchMetadata>,
    last_timestamp: i64,
    /// Epoch of the transaction coordinator that wrote this producer's last marker (-1: none).
    coordinator_epoch: i32,
    /// First offset of the producer's open transaction in this partition (Kafka's
    /// `currentTxnFirstOffset`).
    txn_first_offset: Option<i64>,
}

impl ProducerEntry {
    pub fn epoch(&self) -> i16 {
        self.epoch
    }

    /// The last (at most 5) batches of the current epoch, oldest first.
    pub fn batches(&self) -> impl Iterator<Item = &BatchMetadata> {
        self.batches.iter()
    }

    /// Last sequence appended in the current epoch.
    pub fn last_sequence(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_sequence)
    }

    /// Max timestamp of the producer's latest batch.
    pub fn last_timestamp(&self) -> i64 {
        self.last_timestamp
    }

    /// Epoch of the coordinator that wrote the producer's last marker, -1 if none.
    pub fn coordinator_epoch(&self) -> i32 {
        self.coordinator_epoch
    }

    /// First offset of the producer's open transaction, if one is open.
    pub fn txn_first_offset(&self) -> Option<i64> {
        self.txn_first_offset
    }

    fn last_offset(&self) -> Option<i64> {
        self.batches.back().map(|b| b.last_offset)
    }

    fn find(&self, first: i32, last: i32) -> Option<&BatchMetadata> {
        let same = |m: &&BatchMetadata| m.first_sequence == first && m.last_sequence == last;
        self.batches.iter().find(same)
    }
}

/// Sequence expected after `last`: Kafka's `inSequence` (`i32::MAX` is followed by 0).
fn next_sequence(last: i32) -> i32 {
    last.checked_add(1).unwrap_or(0)
}

/// Per-partition table of idempotent producers, keyed by producer id (ordered, so iteration and
/// any future snapshot are deterministic).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerStateTable {
    producers: BTreeMap<i64, ProducerEntry>,
    /// Transactions ended by an ABORT marker (`partition::txn`): rebuilt with the table.
    pub(crate) aborted: crate::partition::txn::AbortedTxns,
}

impl ProducerStateTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decides what to do with `b` before it is appended. The leader calls this for each batch
    /// at propose time and `apply`s accepted batches immediately, so batches still in flight
    /// through raft are already part of the state the next check sees.
    pub fn check(&self, b: &ProducerBatch) -> Result<SeqCheck, ProducerError> {
        if b.producer_id < 0 {
            return Ok(SeqCheck::Append);
        }
        let Some(e) = self.producers.get(&b.producer_id) else {
            return Ok(SeqCheck::Append); // unknown producer: any sequence (KIP-360)
        };
        let out_of_order = |expected| ProducerError::OutOfOrderSequence {
            producer_id: b.producer_id,
            producer_epoch: b.producer_epoch,
            base_sequence: b.base_sequence,
            expected,
        };
        if b.producer_epoch == e.epoch {
            if let Some(d) = e.find(b.base_sequence, b.last_sequence) {
                let (base_offset, last_offset, timestamp) = (d.base_offset, d.last_offset, d.timestamp);
                return Ok(SeqCheck::Duplicate { base_offset, last_offset, timestamp });
            }
            if e.txn_first_offset.is_some() && !b.transactional {
                return Err(ProducerError::InvalidTxnState { producer_id: b.producer_id });
            }
            match e.last_sequence() {
                Some(last) if e.epoch != NO_PRODUCER_EPOCH && b.base_sequence != next_sequence(last) => {
                    Err(out_of_order(next_sequence(last)))
                }
                _ => Ok(SeqCheck::Append),
            }
        } else if b.producer_epoch < e.epoch {
            Err(ProducerError::InvalidProducerEpoch {
                producer_id: b.producer_id,
                producer_epoch: b.producer_epoch,
                current_epoch: e.epoch,
            })
        } else if b.base_sequence != 0 && e.epoch != NO_PRODUCER_EPOCH {
            Err(out_of_order(0))
        } else {
            Ok(SeqCheck::Append)
        }
    }

    /// Records a batch that entered the log, without validating it: on the leader at propose
    /// time, on followers when applying, and when replaying the log after a restart or a
    /// truncation. As in Kafka's `ProducerStateEntry.addBatch`, a batch whose epoch differs from
    /// the producer's current one (normally a bump) drops the remembered batches and adopts that
    /// epoch; the oldest of more than 5 batches is forgotten.
    pub fn apply(&mut self, b: &ProducerBatch) {
        if b.producer_id < 0 {
            return;
        }
        let e = self.producers.entry(b.producer_id).or_insert_with(|| ProducerEntry {
            epoch: b.producer_epoch,
            batches: VecDeque::with_capacity(NUM_BATCHES_TO_RETAIN),
            last_timestamp: b.timestamp,
            coordinator_epoch: -1,
            txn_first_offset: None,
        });
        if e.epoch != b.producer_epoch {
            e.epoch = b.producer_epoch;
            e.batches.clear();
        }
        if b.transactional && e.txn_first_offset.is_none() {
            e.txn_first_offset = Some(b.base_offset);
        }
        if e.batches.len() >= NUM_BATCHES_TO_RETAIN {
            e.batches.pop_front();
        }
        e.batches.push_back(BatchMetadata {
            first_sequence: b.base_sequence,
            last_sequence: b.last_sequence,
            base_offset: b.base_offset,
            last_offset: b.last_offset,
            timestamp: b.timestamp,
        });
        e.last_timestamp = b.timestamp;
    }

    /// Checks a COMMIT/ABORT marker the leader is about to write (Kafka's
    /// `appendEndTxnMarker`): an older producer epoch is INVALID_PRODUCER_EPOCH, an older
    /// coordinator epoch TRANSACTION_COORDINATOR_FENCED. A marker for an unknown producer or
    /// without an open transaction passes (an idempotent abort).
    pub fn check_marker(&self, m: &Marker) -> Result<(), ProducerError> {
        let Some(e) = self.producers.get(&m.producer_id) else {
            return Ok(());
        };
        if m.producer_epoch < e.epoch {
            return Err(ProducerError::InvalidProducerEpoch {
                producer_id: m.producer_id,
                producer_epoch: m.producer_epoch,
                current_epoch: e.epoch,
            });
        }
        if m.coordinator_epoch < e.coordinator_epoch {
            return Err(ProducerError::CoordinatorFenced {
                producer_id: m.producer_id,
                coordinator_epoch: m.coordinator_epoch,
                current: e.coordinator_epoch,
            });
        }
        Ok(())
    }

    /// Records a marker that entered the log (unchecked, as `apply`): ends the producer's open
    /// transaction and adopts the marker's epochs. Returns the transaction it ended (first
    /// offset), if one was open: an ABORT of it goes into the aborted index.
    pub fn apply_marker(&mut self, m: &Marker) -> Option<i64> {
        if m.producer_id < 0 {
            return None;
        }
        let e = self.producers.entry(m.producer_id).or_insert_with(|| ProducerEntry {
            epoch: m.producer_epoch,
            batches: VecDeque::new(),
            last_timestamp: m.timestamp,
            coordinator_epoch: m.coordinator_epoch,
            txn_first_offset: None,
        });
        if e.epoch != m.producer_epoch {
            e.epoch = m.producer_epoch;
            e.batches.clear();
        }
        e.coordinator_epoch = m.coordinator_epoch;
        e.last_timestamp = m.timestamp;
        let first = e.txn_first_offset.take();
        if let (Some(first_offset), false) = (first, m.commit) {
            let last_stable_offset = self.first_open_offset().unwrap_or(m.offset + 1);
            let (producer_id, last_offset) = (m.producer_id, m.offset);
            self.aborted.push(AbortedTxn { producer_id, first_offset, last_offset, last_stable_offset });
        }
        first
    }

    /// The smallest first offset of the open transactions (the LSO before the high watermark).
    pub fn first_open_offset(&self) -> Option<i64> {
        self.producers.values().filter_map(|e| e.txn_first_offset).min()
    }

    /// Every producer, by id.
    pub fn iter(&self) -> impl Iterator<Item = (i64, &ProducerEntry)> {
        self.producers.iter().map(|(k, v)| (*k, v))
    }

    /// Forgets everything. After the raft log is truncated (or on restart) the caller clears the
    /// table and `apply`s every batch still in the log, in order: only 5 batches per producer are
    /// kept, so removing the truncated suffix in place could not restore what it had evicted.
    pub fn clear(&mut self) {
        self.producers.clear();
        self.aborted = Default::default();
    }

    /// Drops producers whose last batch ended before `log_start_offset` (their batches were
    /// all deleted by retention or DeleteRecords), as Kafka does when the log start moves.
    /// Returns how many were removed.
    pub fn truncate_head(&mut self, log_start_offset: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, e| e.last_offset().is_some_and(|o| o >= log_start_offset));
        before - self.producers.len()
    }

    /// Drops producers whose latest batch timestamp is before `min_timestamp` (Kafka's
    /// `producer.id.expiration.ms`: pass `now - expiration`). To keep replicas identical, call it
    /// with the same argument at the same log position on every replica. Returns how many.
    pub fn expire_before(&mut self, min_timestamp: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, e| e.last_timestamp >= min_timestamp);
        before - self.producers.len()
    }

    /// The state of one producer id, if known.
    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// Number of producer ids tracked.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Last offset of each producer's latest batch: the log cleaner keeps that batch (emptied
    /// of its records if need be) so that this table rebuilds the same from the log.
    /// Producer id → epoch of the producers holding no data batch (their last entry is a
    /// marker): the log cleaner keeps their markers of that epoch.
    pub fn marker_last_epochs(&self) -> std::collections::HashMap<i64, i16> {
        self.producers.iter().filter(|(_, e)| e.last_offset().is_none()).map(|(pid, e)| (*pid, e.epoch)).collect()
    }

    pub fn last_offsets(&self) -> std::collections::HashMap<i64, i64> {
        self.producers.iter().filter_map(|(pid, e)| Some((*pid, e.last_offset()?))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::{build_batch, increment_sequence, stamp_base_offset, validate_batch};
    use SeqCheck::*;

    /// A batch of `count` records from producer `pid`, appended at `base_offset`.
    fn batch(pid: i64, epoch: i16, base_sequence: i32, count: i32, base_offset: i64) -> ProducerBatch {
        ProducerBatch {
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence,
            last_sequence: increment_sequence(base_sequence, count - 1),
            base_offset,
            last_offset: base_offset + i64::from(count) - 1,
            timestamp: 1_000 + base_offset,
            transactional: false,
        }
    }

    /// check + apply as the leader does; returns the check outcome.
    fn produce(t: &mut ProducerStateTable, b: &ProducerBatch) -> Result<SeqCheck, ProducerError> {
        let r = t.check(b)?;
        if r == Append {
            t.apply(b);
        }
        Ok(r)
    }

    fn code(r: Result<SeqCheck, ProducerError>) -> i16 {
        r.map_or_else(|e| e.kafka_code(), |_| 0)
    }

    fn dup(b: &ProducerBatch) -> SeqCheck {
        Duplicate { base_offset: b.base_offset, last_offset: b.last_offset, timestamp: b.timestamp }
    }

    #[test]
    fn non_idempotent_batches_are_not_tracked() {
        let mut t = ProducerStateTable::new();
        for _ in 0..3 {
            assert_eq!(produce(&mut t, &batch(-1, -1, -1, 4, 0)), Ok(Append));
        }
        assert!(t.is_empty() && t.get(-1).is_none());
    }

    #[test]
    fn new_and_unknown_producers_are_accepted() {
        let mut t = ProducerStateTable::new();
        assert_eq!(produce(&mut t, &batch(1, 0, 0, 3, 0)), Ok(Append));
        // KIP-360: state lost (retention, DeleteRecords) must not wedge the producer
        assert_eq!(produce(&mut t, &batch(2, 4, 17, 3, 3)), Ok(Append));
        assert_eq!(produce(&mut t, &batch(2, 4, 20, 1, 6)), Ok(Append));
        assert_eq!((t.len(), t.get(2).unwrap().last_sequence()), (2, Some(20)));
    }

    #[test]
    fn same_epoch_must_continue_the_sequence() {
        let mut t = ProducerStateTable::new();
        assert_eq!(produce(&mut t, &batch(1, 0, 0, 3, 0)), Ok(Append));
        assert_eq!(produce(&mut t, &batch(1, 0, 3, 2, 3)), Ok(Append));
        let gap = produce(&mut t, &batch(1, 0, 6, 1, 5));
        let want =
            ProducerError::OutOfOrderSequence { producer_id: 1, producer_epoch: 0, base_sequence: 6, expected: 5 };
        assert_eq!(gap, Err(want));
        assert_eq!(code(gap), 45);
        assert_eq!(code(t.check(&batch(1, 0, 4, 1, 5))), 45); // backwards, not a known batch
        assert_eq!(code(t.check(&batch(1, 0, 3, 1, 5))), 45); // same start, other end: no dup
        assert_eq!(produce(&mut t, &batch(1, 0, 5, 1, 5)), Ok(Append));
    }

    #[test]
    fn retries_within_the_last_five_batches_are_duplicates() {
        let mut t = ProducerStateTable::new();
        let sent: Vec<_> = (0..6).map(|i| batch(7, 2, i * 10, 10, 100 + i64::from(i) * 10)).collect();
        for b in &sent {
            assert_eq!(produce(&mut t, b), Ok(Append));
        }
        for b in &sent[1..] {
            assert_eq!(t.check(b), Ok(dup(b)));
        }
        // the 6th-most-recent batch fell out of the window: Kafka answers OUT_OF_ORDER_SEQUENCE
        assert_eq!(code(t.check(&sent[0])), 45);
        assert_eq!(t.get(7).unwrap().batches().count(), NUM_BATCHES_TO_RETAIN);
        let first = t.get(7).unwrap().batches().next().unwrap().first_sequence;
        assert_eq!(first, 10);
        // a duplicate from an older epoch is fenced rather than deduplicated
        let before = t.clone();
        produce(&mut t, &batch(7, 3, 0, 1, 200)).unwrap();
        assert_eq!(code(t.check(&sent[5])), 47);
        assert_ne!(before, t);
    }

    #[test]
    fn sequences_wrap_after_i32_max() {
        let mut t = ProducerStateTable::new();
        let wrap = batch(3, 0, i32::MAX - 1, 3, 0); // MAX-1, MAX, 0
        assert_eq!(wrap.last_sequence, 0);
        assert_eq!(produce(&mut t, &wrap), Ok(Append));
        assert_eq!(t.check(&wrap), Ok(dup(&wrap)));
        assert_eq!(code(t.check(&batch(3, 0, 0, 1, 3))), 45);
        assert_eq!(produce(&mut t, &batch(3, 0, 1, 1, 3)), Ok(Append));

        let mut t = ProducerStateTable::new();
        produce(&mut t, &batch(4, 0, i32::MAX - 4, 5, 0)).unwrap(); // ends exactly at MAX
        assert_eq!(t.get(4).unwrap().last_sequence(), Some(i32::MAX));
        let err = t.check(&batch(4, 0, 1, 1, 5)).unwrap_err();
        assert!(matches!(err, ProducerError::OutOfOrderSequence { expected: 0, .. }));
        assert_eq!(produce(&mut t, &batch(4, 0, 0, 1, 5)), Ok(Append));
    }

    #[test]
    fn epoch_bump_resets_and_older_epochs_are_fenced() {
        let mut t = ProducerStateTable::new();
        let old = batch(5, 1, 0, 4, 0);
        produce(&mut t, &old).unwrap();
        produce(&mut t, &batch(5, 1, 4, 4, 4)).unwrap();
        let nonzero = t.check(&batch(5, 2, 8, 1, 8)).unwrap_err();
        assert!(matches!(nonzero, ProducerError::OutOfOrderSequence { expected: 0, .. }));
        assert_eq!(produce(&mut t, &batch(5, 2, 0, 2, 8)), Ok(Append));
        let e = t.get(5).unwrap();
        assert_eq!((e.epoch(), e.batches().count(), e.last_sequence()), (2, 1, Some(1)));
        let fenced = t.check(&batch(5, 1, 8, 1, 10));
        let want = ProducerError::InvalidProducerEpoch { producer_id: 5, producer_epoch: 1, current_epoch: 2 };
        assert_eq!(fenced, Err(want));
        assert_eq!((code(fenced), code(t.check(&old))), (47, 47));
        assert_eq!(produce(&mut t, &batch(5, 2, 2, 1, 10)), Ok(Append));
    }

    #[test]
    fn replaying_the_log_rebuilds_the_same_table() {
        let mut leader = ProducerStateTable::new();
        let mut log = Vec::new();
        let (mut offset, mut seqs, mut x) = (0i64, [0i32; 4], 12345u64);
        for step in 0..400 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let pid = (x % 4) as usize;
            let epoch = (step / 150) as i16 + (pid as i16 % 2);
            if step % 150 == 0 {
                seqs = [0; 4];
            }
            let count = 1 + (x >> 8) as i32 % 5;
            let mut b = batch(pid as i64, epoch, seqs[pid], count, offset);
            if x % 7 == 0 {
                b.base_sequence += 1; // a gap: must be refused and leave no trace
            }
            if let Ok(Append) = produce(&mut leader, &b) {
                log.push(b);
                seqs[pid] = increment_sequence(b.last_sequence, 1);
                offset = b.last_offset + 1;
            }
        }
        assert!(log.len() > 200);
        let mut follower = ProducerStateTable::new();
        log.iter().for_each(|b| follower.apply(b));
        assert_eq!(follower, leader);
        follower.clear();
        assert!(follower.is_empty());
        log.iter().for_each(|b| follower.apply(b));
        assert_eq!(follower, leader);
    }

    #[test]
    fn head_truncation_and_expiry_drop_producers() {
        let mut t = ProducerStateTable::new();
        produce(&mut t, &batch(1, 0, 0, 10, 0)).unwrap(); // offsets 0..=9, ts 1000
        produce(&mut t, &batch(2, 0, 0, 10, 10)).unwrap(); // offsets 10..=19, ts 1010
        assert_eq!((t.truncate_head(9), t.len()), (0, 2));
        assert_eq!((t.truncate_head(10), t.len()), (1, 1));
        assert!(t.get(1).is_none());
        assert_eq!(t.get(2).unwrap().last_timestamp(), 1010);
        assert_eq!((t.expire_before(1010), t.expire_before(1011), t.len()), (0, 1, 0));
    }

    #[test]
    fn from_header_of_a_stamped_batch() {
        let mut raw = build_batch(0, 9, 1, 30, 777, &[(None, Some(b"a")), (None, Some(b"b"))]);
        stamp_base_offset(&mut raw, 50);
        let b = ProducerBatch::from_header(&validate_batch(&raw, 1 << 20).unwrap());
        assert_eq!(
            b,
            ProducerBatch {
                producer_id: 9,
                producer_epoch: 1,
                base_sequence: 30,
                last_sequence: 31,
                base_offset: 50,
                last_offset: 51,
                timestamp: 777,
                transactional: false,
            }
        );
    }
}
