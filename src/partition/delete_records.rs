//! DeleteRecords on a partition: moving the log start offset through the partition's Raft group.
//!
//! The leader checks the requested offset against its high watermark (`-1` means the high
//! watermark; a negative offset or one past it is OFFSET_OUT_OF_RANGE, as Kafka answers) and
//! proposes a special entry that is not a Kafka batch: no data, and a typed context
//! (`chronik:delete-records` followed by the offset, 8 bytes big-endian). An entry without data
//! covers no Kafka offsets in the log table (`log/offsets.rs`), is never returned by a read and
//! never counted in the high watermark; the state machine recognises it by its context
//! ([`delete_records_offset`]). Every replica applies it in log order: the group actor raises
//! its log's floor (`log/records_start.rs`, persisted in `records-start` before it takes
//! effect), so the new start survives a restart, is replayed from the log, and travels in a
//! snapshot. A request whose offset is at or below the log start changes nothing and is
//! answered at once with the current start, as Kafka does.
//!
//! The leader's answer waits until the entry is applied ([`DeleteWaiters`]); a step-down fails
//! the waiters with NOT_LEADER_OR_FOLLOWER.

use raft::eraftpb::Entry;
use tokio::sync::oneshot;

use super::core::{ApplyItem, PartitionCore};
use crate::error::PartitionError;

/// Context prefix of a DeleteRecords entry.
pub const DELETE_RECORDS_CONTEXT: &[u8] = b"chronik:delete-records";

/// The context of a DeleteRecords entry moving the log start to `offset`.
pub fn delete_records_context(offset: i64) -> Vec<u8> {
    let mut c = DELETE_RECORDS_CONTEXT.to_vec();
    c.extend_from_slice(&offset.to_be_bytes());
    c
}

/// If `e` is a DeleteRecords entry: the new log start offset it carries.
pub fn delete_records_offset(e: &Entry) -> Option<i64> {
    let rest = e.context.strip_prefix(DELETE_RECORDS_CONTEXT)?;
    if !e.data.is_empty() || rest.len() != 8 {
        return None;
    }
    Some(i64::from_be_bytes(rest.try_into().ok()?))
}

/// What a DeleteRecords request on the leader led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    /// Nothing to move: the log already starts at or after the offset; the current start.
    Done(i64),
    /// Proposed as entry `index`: answered once it is applied.
    Proposed { index: u64 },
}

impl PartitionCore {
    /// DeleteRecords up to `offset` (`-1`: the high watermark) on the leader.
    pub fn delete_records(&mut self, offset: i64) -> Result<Deletion, PartitionError> {
        if !self.raft.is_leader() {
            return Err(self.not_leader());
        }
        let hw = self.high_watermark();
        let start = self.log_start();
        let offset = if offset == -1 { hw } else { offset };
        if offset < 0 || offset > hw {
            return Err(PartitionError::OffsetOutOfRange { offset, start, end: hw });
        }
        if offset <= start {
            return Ok(Deletion::Done(start));
        }
        if self.raft.propose_with_context(delete_records_context(offset), Vec::new()).is_err() {
            return Err(self.not_leader());
        }
        Ok(Deletion::Proposed { index: self.raft.last_index() })
    }

    /// Raises the log's floor for every applied DeleteRecords item (on the group's actor: a
    /// rare, small state-file replacement, like `log-start`).
    pub(super) fn apply_log_starts(&mut self, items: &[ApplyItem]) {
        for item in items {
            if let ApplyItem::LogStart { index, offset } = item {
                match self.raft.set_records_start(*offset) {
                    Ok(_) => {}
                    Err(e) => slog::error!(self.logger(), "cannot store the log start set by DeleteRecords";
                        "index" => index, "offset" => offset, "error" => %e),
                }
            }
        }
    }
}

type Reply = oneshot::Sender<Result<i64, PartitionError>>;

/// DeleteRecords answers waiting for their entry to be applied, in index order.
#[derive(Default)]
pub struct DeleteWaiters {
    waiting: Vec<(u64, Reply)>,
}

impl DeleteWaiters {
    /// Nothing waits.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Waits for entry `index`.
    pub fn wait(&mut self, index: u64, reply: Reply) {
        self.waiting.push((index, reply));
    }

    /// Answers every waiter whose entry is applied (index `<= applied`) with the log start.
    pub fn release(&mut self, applied: u64, log_start: i64) {
        let (done, rest): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.waiting).into_iter().partition(|(i, _)| *i <= applied);
        self.waiting = rest;
        for (_, reply) in done {
            let _ = reply.send(Ok(log_start));
        }
    }

    /// Fails every waiter (a step-down, a storage failure, a stop).
    pub fn fail_all(&mut self, err: &PartitionError) {
        for (_, reply) in self.waiting.drain(..) {
            let _ = reply.send(Err(err.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::core::tests::{batch, open, settle};

    #[test]
    fn the_entry_is_recognised_only_by_its_context() {
        let e = Entry { context: delete_records_context(42).into(), ..Default::default() };
        assert_eq!(delete_records_offset(&e), Some(42));
        let with_data = Entry { data: vec![1].into(), ..e.clone() };
        assert_eq!(delete_records_offset(&with_data), None);
        assert_eq!(delete_records_offset(&Entry::default()), None, "a leader's no-op is not one");
        let short = Entry { context: DELETE_RECORDS_CONTEXT.to_vec().into(), ..Default::default() };
        assert_eq!(delete_records_offset(&short), None);
    }

    #[test]
    fn delete_records_moves_the_start_through_the_log_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = open(dir.path());
        for _ in 0..3 {
            let (b, h) = batch(-1, -1, 4);
            c.produce(b, h).unwrap();
        }
        settle(&mut c);
        assert_eq!((c.log_start(), c.high_watermark()), (0, 12));
        // Past the high watermark, or negative: out of range, nothing changes.
        assert_eq!(c.delete_records(13).unwrap_err().kafka_code(), crate::error::code::OFFSET_OUT_OF_RANGE);
        assert_eq!(c.delete_records(-2).unwrap_err().kafka_code(), crate::error::code::OFFSET_OUT_OF_RANGE);
        assert_eq!(c.log_start(), 0);
        // Inside the second batch [4, 8).
        let Deletion::Proposed { index } = c.delete_records(6).unwrap() else { panic!("proposed") };
        assert_eq!(c.log_start(), 0, "not before it is committed and applied");
        settle(&mut c);
        assert!(c.raft.applied() >= index);
        assert_eq!((c.log_start(), c.high_watermark()), (6, 12), "the entry holds no offsets");
        assert_eq!(c.read(5, 1 << 20, false).unwrap_err().kafka_code(), crate::error::code::OFFSET_OUT_OF_RANGE);
        let first = c.read(6, 1, false).unwrap();
        let h = crate::log::batch::BatchHeader::parse(&first).unwrap();
        assert_eq!(h.base_offset, 4, "the straddling batch is served whole");
        assert_eq!(c.offset_for(-2, false).unwrap().0, 6, "ListOffsets EARLIEST");
        // At or below the start: answered at once with the start.
        assert_eq!(c.delete_records(3).unwrap(), Deletion::Done(6));
        // -1 is the high watermark.
        assert!(matches!(c.delete_records(-1).unwrap(), Deletion::Proposed { .. }));
        settle(&mut c);
        assert_eq!(c.log_start(), 12);
        let (b, h) = batch(-1, -1, 1);
        assert_eq!(c.produce(b, h).unwrap().base_offset, 12, "offsets go on after the entries");
        settle(&mut c);
        drop(c);
        let c = open(dir.path());
        assert_eq!((c.log_start(), c.high_watermark()), (12, 13));
        assert_eq!(c.read(12, 1 << 20, false).map(|d| d.is_empty()).ok(), Some(false));
    }

    #[test]
    fn a_replayed_entry_restores_the_start_without_the_state_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = open(dir.path());
        let (b, h) = batch(-1, -1, 5);
        c.produce(b, h).unwrap();
        settle(&mut c);
        c.delete_records(3).unwrap();
        settle(&mut c);
        drop(c);
        // The entry is still in the log: applying it again on open gives the same start.
        std::fs::remove_file(dir.path().join("records-start")).unwrap();
        let c = open(dir.path());
        assert_eq!(c.log_start(), 3);
    }

    #[test]
    fn waiters_are_answered_once_applied_and_failed_on_step_down() {
        let mut w = DeleteWaiters::default();
        let (tx1, mut rx1) = oneshot::channel();
        let (tx2, mut rx2) = oneshot::channel();
        w.wait(5, tx1);
        w.wait(9, tx2);
        w.release(7, 40);
        assert_eq!(rx1.try_recv().unwrap().unwrap(), 40);
        assert!(rx2.try_recv().is_err());
        w.fail_all(&PartitionError::NotLeader { leader: Some(2) });
        assert_eq!(rx2.try_recv().unwrap().unwrap_err().kafka_code(), crate::error::code::NOT_LEADER_OR_FOLLOWER);
    }
}
