//! Transactions on the partition side (KIP-98), following Kafka's `ProducerStateManager`,
//! `TransactionIndex` and `UnifiedLog`: COMMIT/ABORT markers (control batches), the aborted
//! transactions of a partition and its last stable offset (LSO). No actix.
//!
//! - A batch with the transactional flag opens its producer's transaction in this partition at
//!   its base offset (`ProducerStateTable::apply`); a marker ends it (`apply_marker`). Both are
//!   applied from committed entries only ([`apply_stored`]), on every replica and on every
//!   replay of the log, so replicas and restarted nodes agree on the open transactions.
//! - The aborted index ([`AbortedTxns`]): per ABORT marker of a transaction that had data here,
//!   Kafka's `.txnindex` record (producer id, first offset, last offset = the marker's offset,
//!   LSO after the abort). It is kept in memory beside the producer table and, like it, derived
//!   from the log: the log is the durable copy, and it is rebuilt by the same replay on open, on
//!   a reopen and from a snapshot's segments. Each sealed segment's part is also stored in its
//!   `.txnindex` file and checked against the replay on open (`partition/txn_index_files.rs`).
//!   Records whose marker falls below the log start (retention, DeleteRecords) are dropped
//!   ([`AbortedTxns::truncate_head`]), and so are those whose ABORT marker the log cleaner
//!   removed ([`AbortedTxns::remove_marker`]).
//! - LSO = min(first offset of the open transactions, high watermark) ([`last_stable_offset`]).
//!   A read_committed Fetch reads below it and gets the aborted transactions that overlap the
//!   range it returns ([`AbortedTxns::collect`], Kafka's `collectAbortedTxns`).

use crate::log::batch::{build_batch, finish_batch, records, BatchHeader};
use crate::partition::producer_state::{ProducerBatch, ProducerStateTable};

/// Kafka's control record types (`ControlRecordType`): ABORT = 0, COMMIT = 1.
pub const CONTROL_ABORT: i16 = 0;
pub const CONTROL_COMMIT: i16 = 1;
/// The attributes of a marker batch: transactional (0x10) + control (0x20).
const MARKER_ATTRIBUTES: i16 = 0x30;

/// A COMMIT or ABORT marker (Kafka's `EndTransactionMarker` with its batch's producer fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub coordinator_epoch: i32,
    pub commit: bool,
    /// The marker's offset (its batch's base offset).
    pub offset: i64,
    pub timestamp: i64,
}

impl Marker {
    /// The marker in a stored control batch; None for another control type (or none decodable).
    pub fn parse(h: &BatchHeader, data: &[u8]) -> Option<Marker> {
        if !h.is_control() {
            return None;
        }
        let recs = records(data).ok()?;
        let r = recs.first()?;
        let key = r.key?;
        let value = r.value?;
        if key.len() < 4 || value.len() < 6 {
            return None;
        }
        let kind = i16::from_be_bytes([key[2], key[3]]);
        if kind != CONTROL_ABORT && kind != CONTROL_COMMIT {
            return None;
        }
        Some(Marker {
            producer_id: h.producer_id,
            producer_epoch: h.producer_epoch,
            coordinator_epoch: i32::from_be_bytes([value[2], value[3], value[4], value[5]]),
            commit: kind == CONTROL_COMMIT,
            offset: h.base_offset,
            timestamp: h.max_timestamp,
        })
    }

    /// The control batch of this marker, as Kafka writes it: one record whose key is version 0
    /// and the type, whose value is version 0 and the coordinator epoch; control and
    /// transactional flags, the producer's id and epoch, sequence -1. Base offset 0 (stamped).
    pub fn to_batch(&self) -> Vec<u8> {
        let kind = if self.commit { CONTROL_COMMIT } else { CONTROL_ABORT };
        let mut key = 0i16.to_be_bytes().to_vec();
        key.extend_from_slice(&kind.to_be_bytes());
        let mut value = 0i16.to_be_bytes().to_vec();
        value.extend_from_slice(&self.coordinator_epoch.to_be_bytes());
        let recs = [(Some(&key[..]), Some(&value[..]))];
        let mut b = build_batch(0, self.producer_id, self.producer_epoch, -1, self.timestamp, &recs);
        b[21..23].copy_from_slice(&MARKER_ATTRIBUTES.to_be_bytes());
        finish_batch(&mut b);
        b
    }
}

/// One aborted transaction (Kafka's `AbortedTxn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// The offset of its ABORT marker.
    pub last_offset: i64,
    /// The partition's LSO once the abort applied.
    pub last_stable_offset: i64,
}

/// The aborted transactions of a partition, in marker order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AbortedTxns(Vec<AbortedTxn>);

impl AbortedTxns {
    pub fn push(&mut self, t: AbortedTxn) {
        self.0.push(t);
    }

    /// Those that overlap `[from, upper)`: last offset at or after `from`, first offset before
    /// `upper` (Kafka's `collectAbortedTxns(fetchOffset, upperBoundOffset)`).
    pub fn collect(&self, from: i64, upper: i64) -> Vec<AbortedTxn> {
        let start = self.0.partition_point(|t| t.last_offset < from);
        self.0[start..].iter().filter(|t| t.first_offset < upper).copied().collect()
    }

    /// Those whose ABORT marker is in `[start, end)` (a segment's, for its `.txnindex`).
    pub fn markers_in(&self, start: i64, end: i64) -> &[AbortedTxn] {
        let lo = self.0.partition_point(|t| t.last_offset < start);
        let hi = self.0.partition_point(|t| t.last_offset < end).max(lo);
        &self.0[lo..hi]
    }

    /// Drops the one whose ABORT marker, of `producer_id` at `marker_offset`, the log cleaner
    /// removed (it had no batch left in the log). Returns whether one was there.
    pub fn remove_marker(&mut self, producer_id: i64, marker_offset: i64) -> bool {
        let before = self.0.len();
        self.0.retain(|t| !(t.producer_id == producer_id && t.last_offset == marker_offset));
        self.0.len() != before
    }

    /// Drops those whose marker is below `log_start` (their segments are gone). Returns how many.
    pub fn truncate_head(&mut self, log_start: i64) -> usize {
        let n = self.0.partition_point(|t| t.last_offset < log_start);
        self.0.drain(..n);
        n
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &AbortedTxn> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Applies one stored (stamped) batch to the producer table: a data batch with a producer id,
/// or a COMMIT/ABORT marker. Everything else (plain batches, other control types) is ignored.
pub fn apply_stored(table: &mut ProducerStateTable, data: &[u8]) {
    let Ok(h) = BatchHeader::parse(data) else {
        return;
    };
    if h.is_control() {
        if let Some(m) = Marker::parse(&h, data) {
            table.apply_marker(&m);
        }
    } else if h.has_producer_id() {
        table.apply(&ProducerBatch::from_header(&h));
    }
}

/// What the log cleaner needs to know of the transactions (`log::cleaner::TxnFacts`): the
/// aborted ones and the first offset of each open one.
pub fn cleaner_facts(table: &ProducerStateTable) -> crate::log::cleaner::TxnFacts {
    crate::log::cleaner::TxnFacts {
        aborted: table.aborted.iter().map(|t| (t.producer_id, t.first_offset, t.last_offset)).collect(),
        open: table.iter().filter_map(|(pid, e)| Some((pid, e.txn_first_offset()?))).collect(),
        marker_last: table.marker_last_epochs(),
    }
}

/// The last stable offset: the first offset of the oldest open transaction, at most the high
/// watermark.
pub fn last_stable_offset(table: &ProducerStateTable, high_watermark: i64) -> i64 {
    table.first_open_offset().map_or(high_watermark, |o| o.min(high_watermark))
}

/// The offset after the last batch of `chunk` (batches as stored), `None` when empty.
pub fn end_of(chunk: &[u8]) -> Option<i64> {
    let (mut pos, mut end) = (0usize, None);
    while pos < chunk.len() {
        let h = BatchHeader::parse(&chunk[pos..]).ok()?;
        end = Some(h.next_offset());
        pos += h.total_len();
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::{stamp_base_offset, validate_batch};

    /// A stored transactional batch of `n` records from `pid` at `offset`.
    pub(crate) fn txn_batch(pid: i64, epoch: i16, seq: i32, n: usize, offset: i64) -> Vec<u8> {
        let recs: Vec<crate::log::batch::KeyValue> = (0..n).map(|_| (None, Some(&b"v"[..]))).collect();
        let mut b = build_batch(offset, pid, epoch, seq, 1000, &recs);
        b[21..23].copy_from_slice(&0x10i16.to_be_bytes());
        finish_batch(&mut b);
        b
    }

    fn marker(pid: i64, commit: bool, offset: i64, coordinator_epoch: i32) -> Vec<u8> {
        let m = Marker { producer_id: pid, producer_epoch: 0, coordinator_epoch, commit, offset: 0, timestamp: 5 };
        let mut b = m.to_batch();
        stamp_base_offset(&mut b, offset);
        b
    }

    #[test]
    fn a_marker_batch_is_kafkas_control_record_and_parses_back() {
        let m =
            Marker { producer_id: 7, producer_epoch: 3, coordinator_epoch: 9, commit: true, offset: 0, timestamp: 42 };
        let b = m.to_batch();
        let h = BatchHeader::parse(&b).unwrap();
        assert!(h.is_control() && h.is_transactional());
        assert_eq!((h.producer_id, h.producer_epoch, h.base_sequence, h.record_count), (7, 3, -1, 1));
        assert_eq!(crate::log::batch::crc32c_of(&b), h.crc);
        let r = &records(&b).unwrap()[0];
        assert_eq!(r.key.unwrap(), &[0, 0, 0, 1]);
        assert_eq!(r.value.unwrap(), &[0, 0, 0, 0, 0, 9]);
        assert_eq!(Marker::parse(&h, &b), Some(m));
        // clients may never write one: validation still refuses it
        assert_eq!(validate_batch(&b, 1 << 20).unwrap_err().kafka_code(), 87);
        let abort = Marker { commit: false, ..m }.to_batch();
        assert_eq!(records(&abort).unwrap()[0].key.unwrap(), &[0, 0, 0, 0]);
    }

    #[test]
    fn commit_and_abort_move_the_lso_and_fill_the_aborted_index() {
        let mut t = ProducerStateTable::new();
        apply_stored(&mut t, &txn_batch(1, 0, 0, 2, 0)); // 0..=1, txn of producer 1
        apply_stored(&mut t, &txn_batch(2, 0, 0, 1, 2)); // 2, txn of producer 2
        apply_stored(&mut t, &txn_batch(1, 0, 2, 1, 3)); // 3, same txn
        assert_eq!(last_stable_offset(&t, 4), 0);
        assert_eq!(t.get(1).unwrap().txn_first_offset(), Some(0));
        apply_stored(&mut t, &marker(1, false, 4, 0)); // producer 1 aborts
        assert_eq!(last_stable_offset(&t, 5), 2, "producer 2's transaction is still open");
        apply_stored(&mut t, &marker(2, true, 5, 0)); // producer 2 commits
        assert_eq!(last_stable_offset(&t, 6), 6);
        let want = AbortedTxn { producer_id: 1, first_offset: 0, last_offset: 4, last_stable_offset: 2 };
        assert_eq!(t.aborted.collect(0, 6), vec![want]);
        assert_eq!(t.aborted.collect(5, 6), vec![], "ended before the fetched range");
        assert_eq!(t.aborted.collect(0, 0), vec![], "starts at or after the upper bound");
        assert_eq!(t.aborted.collect(4, 5), vec![want]);
        // an abort without an open transaction (idempotent) adds nothing
        apply_stored(&mut t, &marker(1, false, 6, 0));
        assert_eq!(t.aborted.len(), 1);
        assert_eq!(t.get(1).unwrap().txn_first_offset(), None);
        // the index goes with the segments below the log start
        assert_eq!(t.aborted.truncate_head(4), 0);
        assert_eq!(t.aborted.truncate_head(5), 1);
        assert!(t.aborted.is_empty());
    }

    #[test]
    fn a_non_transactional_batch_inside_a_transaction_is_invalid_txn_state() {
        let mut t = ProducerStateTable::new();
        apply_stored(&mut t, &txn_batch(1, 0, 0, 1, 0));
        let h = BatchHeader::parse(&crate::log::batch::build_batch(1, 1, 0, 1, 1000, &[(None, Some(b"x"))])).unwrap();
        let err = t.check(&ProducerBatch::from_header(&h)).unwrap_err();
        assert_eq!(err.kafka_code(), 48);
        let ok = BatchHeader::parse(&txn_batch(1, 0, 1, 1, 1)).unwrap();
        assert!(t.check(&ProducerBatch::from_header(&ok)).is_ok());
    }

    #[test]
    fn markers_are_checked_against_producer_and_coordinator_epochs() {
        let mut t = ProducerStateTable::new();
        let m = |epoch: i16, coordinator_epoch: i32| Marker {
            producer_id: 1,
            producer_epoch: epoch,
            coordinator_epoch,
            commit: false,
            offset: 9,
            timestamp: 0,
        };
        assert!(t.check_marker(&m(0, 0)).is_ok(), "unknown producer: written anyway");
        apply_stored(&mut t, &txn_batch(1, 2, 0, 1, 0));
        t.apply_marker(&Marker { offset: 1, ..m(2, 5) });
        assert_eq!(t.check_marker(&m(1, 5)).unwrap_err().kafka_code(), 47);
        assert_eq!(t.check_marker(&m(2, 4)).unwrap_err().kafka_code(), 52);
        assert!(t.check_marker(&m(2, 5)).is_ok() && t.check_marker(&m(3, 6)).is_ok());
        let e = t.get(1).unwrap();
        assert_eq!((e.epoch(), e.coordinator_epoch(), e.txn_first_offset()), (2, 5, None));
        // a marker with a bumped epoch adopts it and forgets the old sequences
        t.apply_marker(&Marker { offset: 2, ..m(3, 5) });
        assert_eq!((t.get(1).unwrap().epoch(), t.get(1).unwrap().last_sequence()), (3, None));
    }

    #[test]
    fn replaying_a_transactional_log_rebuilds_the_same_state() {
        let mut log = Vec::new();
        let mut off = 0i64;
        let mut seq = [0i32; 3];
        for round in 0..30i64 {
            for pid in 0..3i64 {
                if (round + pid) % 4 == 3 {
                    continue;
                }
                log.push(txn_batch(pid, 0, seq[pid as usize], 2, off));
                seq[pid as usize] += 2;
                off += 2;
            }
            let pid = round % 3;
            log.push(marker(pid, round % 2 == 0, off, 0));
            off += 1;
        }
        let mut a = ProducerStateTable::new();
        log.iter().for_each(|b| apply_stored(&mut a, b));
        assert!(!a.aborted.is_empty());
        let mut b = ProducerStateTable::new();
        log.iter().for_each(|x| apply_stored(&mut b, x));
        assert_eq!(a, b);
        b.clear();
        log.iter().for_each(|x| apply_stored(&mut b, x));
        assert_eq!(a, b, "and after a clear (restart, truncation)");
        assert_eq!(end_of(&log[..2].concat()), Some(4));
    }
}
