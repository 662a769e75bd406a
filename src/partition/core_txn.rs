//! The partition core's transaction operations (see `partition::txn`): writing a COMMIT/ABORT
//! marker on the leader, the last stable offset, the aborted transactions of a read_committed
//! read and the active producers for DescribeProducers. No actix.

use super::*;
use crate::partition::txn::{self, AbortedTxn, Marker};

/// One active producer of the partition, as DescribeProducers shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerInfo {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// -1 when no sequenced batch of the current epoch is remembered.
    pub last_sequence: i32,
    pub last_timestamp: i64,
    pub coordinator_epoch: i32,
    /// First offset of the open transaction, -1 when none.
    pub current_txn_start_offset: i64,
}

impl PartitionCore {
    /// The last stable offset of the committed state (`txn::last_stable_offset`), never below
    /// the log start (an open transaction whose first batches retention or DeleteRecords removed
    /// holds it at the log start).
    pub fn last_stable_offset(&self) -> i64 {
        txn::last_stable_offset(&self.raft.sm().producers, self.high_watermark()).max(self.log_start())
    }

    /// The aborted transactions a read_committed Fetch from `from` returning `records` gets:
    /// those overlapping `[from, end of records)`; none for an empty read.
    pub fn aborted_in(&self, from: i64, records: &[u8]) -> Vec<AbortedTxn> {
        match txn::end_of(records) {
            Some(upper) => self.raft.sm().producers.aborted.collect(from, upper),
            None => Vec::new(),
        }
    }

    /// Drops aborted-index records below the log start (retention, DeleteRecords).
    pub(super) fn prune_aborted(&mut self) {
        let start = self.log_start();
        self.raft.sm_mut().producers.aborted.truncate_head(start);
    }

    /// Proposes a COMMIT (`commit`) or ABORT marker for `producer_id` on the leader, checked as
    /// Kafka checks a marker from the coordinator (older producer epoch: INVALID_PRODUCER_EPOCH;
    /// older coordinator epoch: TRANSACTION_COORDINATOR_FENCED). Returns its offset; it is
    /// committed once the high watermark passes it.
    pub fn write_marker(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
        now_ms: i64,
    ) -> Result<i64, PartitionError> {
        if !self.raft.is_leader() {
            self.leader_view = None;
            return Err(self.not_leader());
        }
        let Some(view) = self.leader_view.as_ref() else {
            return Err(self.not_leader());
        };
        if producer_id < 0 || producer_epoch < 0 {
            let why = format!("marker for producer id {producer_id} epoch {producer_epoch}");
            return Err(PartitionError::InvalidBatch(why, crate::error::code::INVALID_REQUEST));
        }
        let offset = self.next_offset;
        let m = Marker { producer_id, producer_epoch, coordinator_epoch, commit, offset, timestamp: now_ms };
        view.check_marker(&m).map_err(|e| PartitionError::Producer(e.to_string(), e.kafka_code()))?;
        let mut batch = m.to_batch();
        stamp_base_offset(&mut batch, offset);
        stamp_leader_epoch(&mut batch, self.raft.role().term as i32);
        if self.raft.propose(batch).is_err() {
            return Err(self.not_leader());
        }
        if let Some(view) = self.leader_view.as_mut() {
            view.apply_marker(&m);
        }
        self.next_offset = offset + 1;
        slog::debug!(self.logger, "propose marker"; "group" => self.raft.group(), "offset" => offset,
            "producer_id" => producer_id, "commit" => commit);
        Ok(offset)
    }

    /// The producers known to the leader (its view: batches proposed included), by id.
    pub fn producers(&self) -> Result<Vec<ProducerInfo>, PartitionError> {
        if !self.raft.is_leader() {
            return Err(self.not_leader());
        }
        let view = self.leader_view.as_ref().ok_or_else(|| self.not_leader())?;
        Ok(view
            .iter()
            .map(|(producer_id, e)| ProducerInfo {
                producer_id,
                producer_epoch: e.epoch(),
                last_sequence: e.last_sequence().unwrap_or(-1),
                last_timestamp: e.last_timestamp(),
                coordinator_epoch: e.coordinator_epoch(),
                current_txn_start_offset: e.txn_first_offset().unwrap_or(-1),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{open, settle};
    use super::*;
    use crate::log::batch::build_batch;

    fn txn_batch(pid: i64, seq: i32, n: usize) -> (BytesMut, BatchHeader) {
        let recs: Vec<crate::log::batch::KeyValue> = (0..n).map(|_| (None, Some(&b"t"[..]))).collect();
        let mut b = build_batch(0, pid, 0, seq, 1000, &recs);
        b[21..23].copy_from_slice(&0x10i16.to_be_bytes());
        crate::log::batch::finish_batch(&mut b);
        let h = BatchHeader::parse(&b).unwrap();
        (BytesMut::from(&b[..]), h)
    }

    /// Offsets of the batches of a read, with their control flag.
    fn batches(data: &[u8]) -> Vec<(i64, bool)> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < data.len() {
            let h = BatchHeader::parse(&data[pos..]).unwrap();
            out.push((h.base_offset, h.is_control()));
            pos += h.total_len();
        }
        out
    }

    #[test]
    fn read_committed_stops_at_the_lso_and_lists_aborted_transactions() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = open(dir.path());
        let (b, h) = super::super::tests::batch(-1, -1, 2); // 0..=1 plain
        c.produce(b, h).unwrap();
        let (b, h) = txn_batch(5, 0, 2); // 2..=3 txn of 5
        c.produce(b, h).unwrap();
        let (b, h) = txn_batch(6, 0, 1); // 4 txn of 6
        c.produce(b, h).unwrap();
        settle(&mut c);
        assert_eq!((c.high_watermark(), c.last_stable_offset()), (5, 2));
        assert_eq!(batches(&c.read(0, 1 << 20, true).unwrap()), vec![(0, false)]);
        assert!(c.read(2, 1 << 20, true).unwrap().is_empty(), "at the LSO: nothing yet, not out of range");
        assert_eq!(batches(&c.read(0, 1 << 20, false).unwrap()).len(), 3, "read_uncommitted sees all");
        assert_eq!(c.write_marker(5, 0, false, 0, 7).unwrap(), 5); // abort 5
        settle(&mut c);
        assert_eq!(c.last_stable_offset(), 4, "6's transaction is open");
        assert_eq!(c.write_marker(6, 0, true, 0, 8).unwrap(), 6); // commit 6
        settle(&mut c);
        assert_eq!((c.high_watermark(), c.last_stable_offset()), (7, 7));
        let all = c.read(0, 1 << 20, true).unwrap();
        assert_eq!(batches(&all), vec![(0, false), (2, false), (4, false), (5, true), (6, true)]);
        let aborted = c.aborted_in(0, &all);
        assert_eq!(aborted.len(), 1);
        assert_eq!((aborted[0].producer_id, aborted[0].first_offset, aborted[0].last_offset), (5, 2, 5));
        assert!(c.aborted_in(6, &c.read(6, 1 << 20, true).unwrap()).is_empty(), "after the abort marker");
        assert_eq!(c.offset_for(-1, true).unwrap().0, 7);
        // describe-producers: 6 committed (no open txn), coordinator epoch 0
        let p = c.producers().unwrap();
        assert_eq!(
            p.iter().map(|p| (p.producer_id, p.current_txn_start_offset)).collect::<Vec<_>>(),
            [(5, -1), (6, -1)]
        );
    }

    #[test]
    fn stale_markers_are_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = open(dir.path());
        let (b, h) = txn_batch(5, 0, 1);
        c.produce(b, h).unwrap();
        c.write_marker(5, 0, true, 3, 1).unwrap();
        settle(&mut c);
        let hw = c.high_watermark();
        let err = c.write_marker(5, 0, false, 2, 1).unwrap_err();
        assert_eq!(err.kafka_code(), 52, "TRANSACTION_COORDINATOR_FENCED");
        // a bumped epoch (a new InitProducerId) fences the old one
        c.write_marker(5, 1, false, 3, 1).unwrap();
        let err = c.write_marker(5, 0, false, 3, 1).unwrap_err();
        assert_eq!(err.kafka_code(), 47, "INVALID_PRODUCER_EPOCH");
        assert_eq!(c.write_marker(-1, 0, true, 0, 1).unwrap_err().kafka_code(), 42);
        settle(&mut c);
        assert_eq!(c.high_watermark(), hw + 1, "only the valid marker entered the log");
        // a marker for a producer with no open transaction is written anyway (idempotent abort)
        assert!(c.write_marker(9, 0, false, 0, 1).is_ok());
    }

    #[test]
    fn open_transactions_and_aborted_index_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (lso, aborted) = {
            let mut c = open(dir.path());
            let (b, h) = txn_batch(5, 0, 2);
            c.produce(b, h).unwrap();
            c.write_marker(5, 0, false, 0, 1).unwrap();
            let (b, h) = txn_batch(6, 0, 1);
            c.produce(b, h).unwrap();
            settle(&mut c);
            let all = c.read(0, 1 << 20, false).unwrap();
            (c.last_stable_offset(), c.aborted_in(0, &all))
        };
        assert_eq!((lso, aborted.len()), (3, 1));
        let c = open(dir.path());
        assert_eq!(c.last_stable_offset(), lso, "rebuilt from the log");
        let all = c.read(0, 1 << 20, false).unwrap();
        assert_eq!(c.aborted_in(0, &all), aborted);
        let (b, h) = super::super::tests::batch(6, 1, 1);
        let mut c = c;
        assert_eq!(c.produce(b, h).unwrap_err().kafka_code(), 48, "INVALID_TXN_STATE: txn still open");
    }
}
