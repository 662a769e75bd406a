//! One partition's logic, free of actix: its Raft core, offset stamping, idempotent-producer
//! checks, reads and retention.
//!
//! The leader stamps each incoming batch with the next Kafka offset and proposes the batch bytes
//! unchanged otherwise (the CRC covers attributes to the end, so stamping the base offset and the
//! leader epoch keeps it valid). The committed producer table is built only by applying committed
//! entries; while leading, a second table (`leader_view`) also holds the batches proposed but not
//! yet committed, so a retry of an in-flight batch is recognised as a duplicate.

use std::path::Path;

use bytes::{Bytes, BytesMut};
use raft::eraftpb::Entry;
use raft::StateRole;
use slog::Logger;

use crate::error::PartitionError;
use crate::log::batch::{stamp_base_offset, stamp_leader_epoch, BatchHeader};
use crate::log::{LogError, LogKind, LogOptions};
use crate::partition::producer_state::{ProducerBatch, ProducerStateTable, SeqCheck};
use crate::raft::core::{OpenError, RaftCore, ReadyOutcome, StateMachine};
use crate::raft::storage::GroupStorage;
use crate::raft::{GroupId, GroupSettings};

/// Transactions: markers, the last stable offset, read_committed reads (`partition::txn`).
#[path = "core_txn.rs"]
mod core_txn;
pub use core_txn::ProducerInfo;
#[path = "replay.rs"]
mod replay;
/// The aborted-transactions index files of the sealed segments.
#[path = "txn_index_files.rs"]
mod txn_index_files;
pub use txn_index_files::TxnIndexJob;

/// One committed item for the apply actor, in log order.
#[derive(Debug, Clone)]
pub enum ApplyItem {
    /// A committed entry carrying a record batch.
    Batch { index: u64, term: u64, data: Bytes },
    /// The log was replaced by a snapshot; the next offset is `next_offset`.
    Restore { index: u64, next_offset: i64 },
    /// A committed entry whose frame is damaged on this node's disk: its batch is not applied
    /// (nor served); the high watermark moves to `next_offset`, after its range.
    Damaged { index: u64, next_offset: i64 },
    /// A committed DeleteRecords entry: the log start moves to `offset` (`delete_records.rs`).
    LogStart { index: u64, offset: i64 },
    /// A committed entry whose batch the cleaner removed (`log::cleaner`): the high watermark
    /// moves to `next_offset`, after the removed batch.
    Compacted { index: u64, next_offset: i64 },
}

/// The group actor's side of apply: committed entries are handed to the apply actor in order,
/// and the committed producer state (needed when this node becomes leader) is kept here from
/// the batch headers. The high watermark comes back from the apply actor.
pub struct PartitionSm {
    /// Offset after the last batch the apply actor has confirmed.
    pub high_watermark: i64,
    /// Highest index the apply actor has confirmed.
    pub confirmed: u64,
    /// Producer state of committed batches.
    pub producers: ProducerStateTable,
    pending: Vec<ApplyItem>,
}

impl PartitionSm {
    /// Items handed out since the last call, for the apply actor.
    pub fn take_pending(&mut self) -> Vec<ApplyItem> {
        std::mem::take(&mut self.pending)
    }
}

impl StateMachine for PartitionSm {
    fn apply(&mut self, entry: &Entry) {
        if let Some(next_offset) = crate::log::is_damaged_placeholder(entry) {
            self.pending.push(ApplyItem::Damaged { index: entry.index, next_offset });
            return;
        }
        if let Some(offset) = crate::partition::delete_records::delete_records_offset(entry) {
            self.pending.push(ApplyItem::LogStart { index: entry.index, offset });
            return;
        }
        if let Some(next_offset) = crate::log::compacted_end(&entry.data, &entry.context) {
            self.pending.push(ApplyItem::Compacted { index: entry.index, next_offset });
            return;
        }
        crate::partition::txn::apply_stored(&mut self.producers, &entry.data);
        self.pending.push(ApplyItem::Batch { index: entry.index, term: entry.term, data: entry.data.clone() });
    }

    /// A snapshot from the leader: this replica's log now starts where the leader's does.
    /// Producer state before that point is gone, as after retention.
    fn restore(&mut self, index: u64, next_offset: i64) {
        self.producers.clear();
        self.pending.push(ApplyItem::Restore { index, next_offset });
    }

    /// The producer state of a snapshot's segments, read while they were checked.
    fn restore_state(&mut self, state: Box<dyn std::any::Any + Send>) {
        if let Ok(table) = state.downcast::<ProducerStateTable>() {
            self.producers = *table;
        }
    }
}

/// The apply actor's state: the high watermark, computed from committed batches in order.
#[derive(Debug)]
pub struct ApplyState {
    pub high_watermark: i64,
    pub applied: u64,
    logger: Logger,
}

impl ApplyState {
    pub fn new(high_watermark: i64, logger: Logger) -> Self {
        ApplyState { high_watermark, applied: 0, logger }
    }

    /// Diagnostic point 3: every committed batch is re-checked (length, CRC-32C). A failure
    /// logs the entry's index and term and a dump of its first bytes, and counts in
    /// `deserialization_failures_total`; the high watermark does not move past it.
    pub fn apply(&mut self, item: &ApplyItem) {
        match item {
            ApplyItem::Batch { index, term, data } => {
                match check_batch(data) {
                    Ok(h) => {
                        slog::debug!(self.logger, "apply batch"; "index" => index, "term" => term, "base_offset" => h.base_offset, "records" => h.record_count);
                        self.high_watermark = h.next_offset();
                    }
                    Err(e) => {
                        crate::metrics::count_deserialization_failure();
                        slog::error!(self.logger, "committed entry is not a valid record batch"; "index" => index, "term" => term,
                            "len" => data.len(), "error" => %e, "dump" => crate::metrics::hex_dump(data, 64));
                    }
                }
                self.applied = *index;
            }
            ApplyItem::Restore { index, next_offset } => {
                self.high_watermark = *next_offset;
                self.applied = *index;
            }
            ApplyItem::Damaged { index, next_offset } => {
                slog::warn!(self.logger, "committed entry is damaged on disk; its offsets are skipped, not served"; "index" => index,
                    "offset_start" => self.high_watermark, "offset_end" => next_offset);
                self.high_watermark = self.high_watermark.max(*next_offset);
                self.applied = *index;
            }
            ApplyItem::LogStart { index, .. } => self.applied = *index,
            ApplyItem::Compacted { index, next_offset } => {
                self.high_watermark = self.high_watermark.max(*next_offset);
                self.applied = *index;
            }
        }
    }
}

/// Length and CRC-32C of a stored batch (no per-record work).
fn check_batch(data: &[u8]) -> Result<BatchHeader, String> {
    let h = BatchHeader::parse(data).map_err(|e| e.to_string())?;
    if h.total_len() != data.len() {
        return Err(format!("batch length {} but entry holds {} bytes", h.total_len(), data.len()));
    }
    let crc = crate::log::batch::crc32c_of(data);
    if crc != h.crc {
        return Err(format!("crc {crc:#010x} does not match header crc {:#010x}", h.crc));
    }
    Ok(h)
}

/// Where an accepted batch went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub base_offset: i64,
    pub last_offset: i64,
    /// False for a retried batch already in the log: it is acknowledged with its first offsets.
    pub new: bool,
}

/// One partition: Raft core plus the leader's Kafka view.
pub struct PartitionCore {
    pub raft: RaftCore<PartitionSm>,
    leader_view: Option<ProducerStateTable>,
    next_offset: i64,
    max_message_bytes: usize,
    txn_files: txn_index_files::TxnIndexFiles,
    logger: Logger,
}

impl PartitionCore {
    /// Opens (or creates) the partition's log in `dir`. A new group gets `voters` as its
    /// configuration. A single voter campaigns at once, so standalone needs no election timeout;
    /// in a cluster the preferred replica (`campaign`) does, so first leaders are balanced.
    pub fn open(
        dir: &Path,
        group: GroupId,
        voters: &[u64],
        campaign: bool,
        settings: &GroupSettings,
        logger: Logger,
    ) -> Result<Self, OpenError> {
        let opts = LogOptions {
            segment_bytes: settings.segment_bytes,
            index_interval_bytes: settings.index_interval_bytes,
            kind: LogKind::KafkaBatches,
        };
        let (mut storage, report) = GroupStorage::open(dir, opts, &logger)?;
        if report.truncated_bytes > 0 {
            slog::warn!(logger, "recovered partition log"; "group" => group, "truncated_bytes" => report.truncated_bytes);
        }
        if storage.is_new() {
            storage.initialize_voters(voters)?;
        }
        // Raft replays the committed entries from its raft start; below it (a compacted topic's
        // sealed prefix, see `log/raft_start.rs`) the producer state is read from the log here.
        let applied = storage.log().raft_first_index().saturating_sub(1);
        let mut producers = ProducerStateTable::new();
        let log = storage.log();
        if log.first_index() <= applied {
            for e in log.entries_with(log.first_index(), applied + 1, None, crate::log::OnDamage::Placeholder)? {
                crate::partition::txn::apply_stored(&mut producers, &e.data);
            }
        }
        let txn_files = txn_index_files::TxnIndexFiles::open(dir, &log.sealed_spans());
        let sm = PartitionSm {
            // Where the replay of committed entries starts (below a DeleteRecords floor, if any).
            high_watermark: storage.log().offset_after_index(applied),
            confirmed: applied,
            producers,
            pending: Vec::new(),
        };
        let cfg = settings.raft_config(applied);
        let single = storage.conf_state().voters == [settings.node_id];
        let campaign = campaign && storage.log().last_index() == 0;
        let raft = RaftCore::new(group, &cfg, storage, sm, settings.durability, logger.clone())?;
        let mut core = PartitionCore {
            raft,
            leader_view: None,
            next_offset: 0,
            max_message_bytes: settings.max_message_bytes,
            txn_files,
            logger,
        };
        // The committed entries are applied here, where the log is opened (the node does it on
        // the blocking pool), before the group ticks or campaigns (`partition/replay.rs`).
        core.replay(settings.replay_delay, settings.replay_nice)?;
        if single || campaign {
            let _ = core.raft.campaign();
        }
        Ok(core)
    }

    /// Handles a Ready and keeps the leader view in step with the role.
    pub fn handle_ready(&mut self) -> Result<ReadyOutcome, LogError> {
        let out = self.raft.handle_ready()?;
        if let Some(role) = out.role {
            if role.role == StateRole::Leader {
                if self.leader_view.is_none() {
                    self.become_leader()?;
                }
            } else {
                self.leader_view = None;
            }
        }
        Ok(out)
    }

    /// Rebuilds the leader's view: committed producer state plus every entry after it.
    fn become_leader(&mut self) -> Result<(), LogError> {
        let mut view = self.raft.sm().producers.clone();
        let store = self.raft.storage();
        let (lo, hi) = (self.raft.applied() + 1, store.log().last_index() + 1);
        if lo < hi {
            for e in store.log().entries_with(lo, hi, None, crate::log::OnDamage::Placeholder)? {
                crate::partition::txn::apply_stored(&mut view, &e.data);
            }
        }
        self.next_offset = store.log().next_offset();
        self.leader_view = Some(view);
        slog::debug!(self.logger, "became leader"; "group" => self.raft.group(), "term" => self.raft.role().term, "next_offset" => self.next_offset);
        Ok(())
    }

    /// The replicas in contact with the leader (itself included); empty when not leading.
    /// raft-rs marks a follower active when it has heard from it within an election timeout.
    pub fn in_sync_replicas(&self) -> Vec<u64> {
        self.raft.recently_active()
    }

    /// The committed items handed out since the last call, for the apply actor, in log order.
    pub fn take_apply_items(&mut self) -> Vec<ApplyItem> {
        let items = self.raft.sm_mut().take_pending();
        self.apply_log_starts(&items);
        self.prune_aborted();
        self.txn_index_items(&items);
        items
    }

    /// The high watermark.
    pub fn high_watermark(&self) -> i64 {
        self.raft.sm().high_watermark
    }

    /// Where the apply actor has got to: the index it confirmed and the high watermark.
    pub fn set_applied(&mut self, index: u64, high_watermark: i64) {
        if index >= self.raft.sm().confirmed {
            self.raft.sm_mut().confirmed = index;
            self.raft.sm_mut().high_watermark = high_watermark;
        }
    }

    /// The highest index the apply actor has confirmed.
    pub fn confirmed_applied(&self) -> u64 {
        self.raft.sm().confirmed
    }

    /// The log start offset.
    pub fn log_start(&self) -> i64 {
        self.raft.storage().log().log_start_offset()
    }

    pub(crate) fn logger(&self) -> &Logger {
        &self.logger
    }

    pub(crate) fn not_leader(&self) -> PartitionError {
        let leader = self.raft.role().leader;
        if leader == 0 {
            PartitionError::LeaderNotAvailable
        } else {
            PartitionError::NotLeader { leader: Some(leader) }
        }
    }

    /// Accepts one validated batch: checks the producer sequence, stamps offset and leader
    /// epoch, and proposes it. Duplicates are not proposed again.
    pub fn produce(&mut self, mut batch: BytesMut, header: BatchHeader) -> Result<Appended, PartitionError> {
        // The view is dropped on the next Ready after a step-down, but a message stepped since
        // (a higher term) may already have made this node a follower. raft-rs would then forward
        // the proposal to the new leader, which appends it as is: a batch stamped with this
        // node's offsets, unknown to the new leader's view of producers. Found by the fault
        // checker: the new leader later stamped a retry with an offset below its log end.
        if !self.raft.is_leader() {
            self.leader_view = None;
            return Err(self.not_leader());
        }
        let Some(view) = self.leader_view.as_ref() else {
            return Err(self.not_leader());
        };
        if batch.len() > self.max_message_bytes {
            return Err(PartitionError::InvalidBatch(
                format!("batch of {} bytes exceeds max message bytes {}", batch.len(), self.max_message_bytes),
                crate::error::code::MESSAGE_TOO_LARGE,
            ));
        }
        let base_offset = self.next_offset;
        let count = i64::from(header.last_offset_delta) + 1;
        let mut pb = ProducerBatch::from_header(&header);
        pb.base_offset = base_offset;
        pb.last_offset = base_offset + count - 1;
        if header.has_producer_id() {
            match view.check(&pb) {
                Ok(SeqCheck::Append) => {}
                Ok(SeqCheck::Duplicate { base_offset, last_offset, .. }) => {
                    return Ok(Appended { base_offset, last_offset, new: false });
                }
                Err(e) => return Err(PartitionError::Producer(e.to_string(), e.kafka_code())),
            }
        }
        let term = self.raft.role().term;
        stamp_base_offset(&mut batch, base_offset);
        stamp_leader_epoch(&mut batch, term as i32);
        // Diagnostic point 2: re-check length and CRC right before the bytes enter the log.
        let crc = crate::log::batch::crc32c_of(&batch);
        if batch.len() != header.total_len() || crc != header.crc {
            return Err(PartitionError::InvalidBatch(
                format!("batch changed before propose: len {} crc {crc:#x}", batch.len()),
                crate::error::code::CORRUPT_MESSAGE,
            ));
        }
        slog::debug!(self.logger, "propose batch"; "group" => self.raft.group(), "base_offset" => base_offset, "len" => batch.len(), "crc" => crc);
        // The request's copy becomes the entry's data without a new allocation and copy
        // (`BytesMut` made from a slice owns a plain vector, which `Vec::from` takes over).
        if self.raft.propose(Vec::from(batch)).is_err() {
            return Err(self.not_leader());
        }
        if header.has_producer_id() {
            if let Some(view) = self.leader_view.as_mut() {
                view.apply(&pb);
            }
        }
        self.next_offset = base_offset + count;
        Ok(Appended { base_offset, last_offset: base_offset + count - 1, new: true })
    }

    /// What [`Self::read`] reads, as a plan to read off the actor (`None`: nothing to read), with
    /// the aborted transactions (read_committed) up to the plan's end.
    pub fn fetch_plan(
        &self,
        offset: i64,
        max_bytes: usize,
        read_committed: bool,
    ) -> Result<Option<(crate::log::batch_plan::BatchPlan, Vec<crate::partition::txn::AbortedTxn>)>, PartitionError>
    {
        if !self.raft.is_leader() {
            return Err(self.not_leader());
        }
        let hw = self.high_watermark();
        let bound = if read_committed { self.last_stable_offset() } else { hw };
        let log = self.raft.storage().log();
        if offset >= bound && offset <= hw && offset >= log.log_start_offset() {
            return Ok(None);
        }
        if offset > hw || offset < log.log_start_offset() {
            return Err(PartitionError::OffsetOutOfRange { offset, start: log.log_start_offset(), end: hw });
        }
        let plan = log.fetch_plan(offset, max_bytes, bound).map_err(|e| match e {
            LogError::OffsetOutOfRange { .. } => {
                PartitionError::OffsetOutOfRange { offset, start: log.log_start_offset(), end: hw }
            }
            other => PartitionError::Storage(other.to_string()),
        })?;
        let aborted =
            if read_committed { self.raft.sm().producers.aborted.collect(offset, plan.end_offset) } else { Vec::new() };
        Ok(Some((plan, aborted)))
    }

    /// Reads committed batches from `offset`, at most about `max_bytes` (always one whole batch):
    /// below the high watermark, or below the last stable offset for read_committed.
    pub fn read(&self, offset: i64, max_bytes: usize, read_committed: bool) -> Result<Bytes, PartitionError> {
        // Fetch carries its plan out off the poller; here it is carried out at once.
        match self.fetch_plan(offset, max_bytes, read_committed)? {
            None => Ok(Bytes::new()),
            Some((plan, _)) => plan.read().0.map_err(|e| PartitionError::Storage(e.to_string())),
        }
    }

    /// ListOffsets for one timestamp: -1 latest, -2 earliest, -3 max timestamp, else the first
    /// committed batch with a timestamp at or after `ts`. Returns (offset, timestamp). For
    /// read_committed the last stable offset stands in for the high watermark (Kafka's rule).
    pub fn offset_for(&self, ts: i64, read_committed: bool) -> Result<(i64, i64), PartitionError> {
        if !self.raft.is_leader() {
            return Err(self.not_leader());
        }
        let hw = if read_committed { self.last_stable_offset() } else { self.high_watermark() };
        let log = self.raft.storage().log();
        Ok(match ts {
            -1 => (hw, -1),
            -2 | -4 => (log.log_start_offset(), -1),
            -3 => log.max_timestamp_batch(hw).unwrap_or((-1, -1)),
            ts => match log.offset_for_timestamp(ts) {
                Some((off, t)) if off < hw => (off, t),
                _ => (-1, -1),
            },
        })
    }

    /// The plan for the CRC-32C over the committed batches (log start to high watermark), as
    /// stored, run off the actor (`BatchPlan::checksum`): replicas
    /// of a partition hold identical bytes, so their checksums match once they have applied
    /// the same entries.
    pub fn checksum_plan(&self) -> crate::log::batch_plan::BatchPlan {
        self.raft.storage().log().batch_plan(self.high_watermark())
    }

    /// Applies retention; returns how many segments were deleted.
    pub fn apply_retention(
        &mut self,
        now_ms: i64,
        retention_ms: Option<i64>,
        retention_bytes: Option<u64>,
    ) -> Result<usize, LogError> {
        let applied = self.confirmed_applied();
        let deleted = self.raft.apply_retention(now_ms, retention_ms, retention_bytes, applied)?;
        self.prune_aborted();
        Ok(deleted)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::log::batch::build_batch;

    fn logger() -> Logger {
        Logger::root(slog::Discard, slog::o!())
    }

    /// Drives the core until idle, fsyncing and applying inline.
    pub(crate) fn settle(core: &mut PartitionCore) {
        let mut apply = ApplyState::new(core.high_watermark(), logger());
        for _ in 0..100 {
            let out = core.handle_ready().unwrap();
            for item in core.take_apply_items() {
                apply.apply(&item);
                core.set_applied(apply.applied, apply.high_watermark);
            }
            let idle = out.write.is_none() && out.messages.is_empty() && out.applied.is_none();
            if let Some(job) = out.write {
                job.run_now().unwrap();
                core.raft.on_synced(job.number);
            }
            if idle && !core.raft.has_ready() {
                return;
            }
        }
        panic!("core did not settle");
    }

    pub(crate) fn batch(pid: i64, seq: i32, n: usize) -> (BytesMut, BatchHeader) {
        let recs: Vec<crate::log::batch::KeyValue> = (0..n).map(|_| (None, Some(&b"v"[..]))).collect();
        let b = build_batch(0, pid, 0, seq, 1000, &recs);
        let h = BatchHeader::parse(&b).unwrap();
        (BytesMut::from(&b[..]), h)
    }

    pub(crate) fn open(dir: &Path) -> PartitionCore {
        let mut c = PartitionCore::open(dir, 7, &[1], false, &GroupSettings::for_tests(), logger()).unwrap();
        settle(&mut c);
        c
    }

    #[test]
    fn single_voter_leads_and_commits_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = open(dir.path());
        assert!(c.raft.is_leader());
        let (b, h) = batch(-1, -1, 3);
        assert_eq!(c.produce(b, h).unwrap(), Appended { base_offset: 0, last_offset: 2, new: true });
        let (b, h) = batch(-1, -1, 2);
        assert_eq!(c.produce(b, h).unwrap().base_offset, 3);
        assert_eq!(c.high_watermark(), 0, "nothing is committed before the fsync");
        settle(&mut c);
        assert_eq!(c.high_watermark(), 5);
        let data = c.read(4, 1 << 20, false).unwrap();
        let h = BatchHeader::parse(&data).unwrap();
        assert_eq!(h.base_offset, 3, "an offset inside a batch returns that batch");
    }

    #[test]
    fn idempotent_retry_is_acknowledged_with_original_offset() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = open(dir.path());
        let (b, h) = batch(9, 0, 2);
        c.produce(b.clone(), h).unwrap();
        let dup = c.produce(b, h).unwrap();
        assert_eq!(dup, Appended { base_offset: 0, last_offset: 1, new: false });
        let (b, h) = batch(9, 5, 1);
        let err = c.produce(b, h).unwrap_err();
        assert_eq!(err.kafka_code(), crate::error::code::OUT_OF_ORDER_SEQUENCE_NUMBER);
        settle(&mut c);
        assert_eq!(c.high_watermark(), 2, "the duplicate was not appended twice");
    }

    #[test]
    fn a_leader_that_stepped_down_refuses_produce_instead_of_forwarding_it() {
        use raft::eraftpb::{Message, MessageType};
        let dir = tempfile::tempdir().unwrap();
        let settings = GroupSettings::for_tests();
        let mut c = PartitionCore::open(dir.path(), 7, &[1, 2], true, &settings, logger()).unwrap();
        let msg = |t: MessageType, term: u64| {
            let mut m = Message::default();
            m.set_msg_type(t);
            (m.from, m.to, m.term) = (2, 1, term);
            m
        };
        let _ = c.handle_ready().unwrap();
        let term = c.raft.role().term;
        c.raft.step(msg(MessageType::MsgRequestPreVoteResponse, term + 1)).unwrap();
        let _ = c.handle_ready().unwrap();
        c.raft.step(msg(MessageType::MsgRequestVoteResponse, c.raft.role().term)).unwrap();
        let _ = c.handle_ready().unwrap();
        assert!(c.raft.is_leader());
        let (b, h) = batch(9, 0, 1);
        assert!(c.produce(b, h).unwrap().new, "leads: the batch is proposed");
        // Node 2 wins a later term; this node learns it from a message, before its next Ready.
        let _ = c.handle_ready();
        let mut hb = msg(MessageType::MsgHeartbeat, c.raft.role().term + 5);
        hb.commit = 0;
        c.raft.step(hb).unwrap();
        assert!(!c.raft.is_leader());
        let (b, h) = batch(9, 1, 1);
        assert!(matches!(c.produce(b, h), Err(PartitionError::NotLeader { leader: Some(2) })));
        let forwarded = c.raft.queued_messages().iter().any(|m| m.get_msg_type() == MessageType::MsgPropose);
        assert!(!forwarded, "nothing is forwarded to the new leader");
    }

    fn msg(t: raft::eraftpb::MessageType, from: u64, term: u64) -> raft::eraftpb::Message {
        let mut m = raft::eraftpb::Message::default();
        m.set_msg_type(t);
        (m.from, m.to, m.term) = (from, 1, term);
        m
    }

    /// Node 1 of voters 1, 2, 3, elected with node 2's votes, and the Ready of its first moment
    /// as leader (its no-op append).
    fn elect_leader_of_three(dir: &Path) -> (PartitionCore, ReadyOutcome) {
        use raft::eraftpb::MessageType;
        let mut c = PartitionCore::open(dir, 7, &[1, 2, 3], true, &GroupSettings::for_tests(), logger()).unwrap();
        let _ = c.handle_ready().unwrap();
        let term = c.raft.role().term;
        c.raft.step(msg(MessageType::MsgRequestPreVoteResponse, 2, term + 1)).unwrap();
        let _ = c.handle_ready().unwrap();
        c.raft.step(msg(MessageType::MsgRequestVoteResponse, 2, c.raft.role().term)).unwrap();
        let out = c.handle_ready().unwrap();
        assert!(c.raft.is_leader());
        (c, out)
    }

    #[test]
    fn a_follower_truncation_is_a_job_that_rewrites_and_is_not_durable_until_synced() {
        use crate::raft::recovery::{Recovery, SyncedDecision};
        use raft::eraftpb::{Entry, MessageType};
        let dir = tempfile::tempdir().unwrap();
        let mut c =
            PartitionCore::open(dir.path(), 7, &[1, 2, 3], false, &GroupSettings::for_tests(), logger()).unwrap();
        let mut recovery: Recovery<&str> = Recovery::new(c.raft.last_index(), true);
        let append = |from: u64, term: u64, index: u64, log_term: u64, terms: &[u64]| {
            let mut m = msg(MessageType::MsgAppend, from, term);
            (m.index, m.log_term) = (index, log_term);
            m.entries = terms
                .iter()
                .enumerate()
                .map(|(k, t)| Entry { index: index + 1 + k as u64, term: *t, ..Default::default() })
                .collect::<Vec<_>>()
                .into();
            m
        };
        // Leader 2 (term 1) gives this follower entries 1..=3; their job is written and fsynced.
        c.raft.step(append(2, 1, 0, 0, &[1, 1, 1])).unwrap();
        let job = c.handle_ready().unwrap().write.expect("a job");
        assert_eq!((job.rewrites_from, job.last_index), (Some(1), 3));
        recovery.submitted(job.number, job.rewrites_from, job.last_index);
        job.run_now().unwrap();
        assert_eq!(recovery.synced(0, job.number, Ok(())), SyncedDecision::Persisted(job.number));
        c.raft.on_synced(job.number);
        assert_eq!(recovery.durable_index(), Some(3));
        // Leader 3 (term 2) replaces 2..=3 with its own entry 2: the job rewrites from index 2.
        c.raft.step(append(3, 2, 1, 1, &[2])).unwrap();
        let job = c.handle_ready().unwrap().write.expect("a job");
        assert_eq!((job.rewrites_from, job.last_index), (Some(2), 2));
        recovery.submitted(job.number, job.rewrites_from, job.last_index);
        assert_eq!(recovery.durable_index(), Some(1), "the old 2..=3 are gone, the new 2 is not fsynced");
        // Its fsync fails: a reopen keeps only index 1.
        assert_eq!(recovery.synced(0, job.number, Err("EIO")), SyncedDecision::Fail("EIO"));
        assert!(recovery.fail("EIO"));
        let _ = recovery.drained(0);
        assert_eq!(recovery.timer_fired(std::time::Instant::now()).unwrap().cut_after, Some(1));
    }

    fn leader_of_three(dir: &Path) -> PartitionCore {
        elect_leader_of_three(dir).0
    }

    #[test]
    fn a_leader_replicates_entries_once_its_own_write_is_done() {
        use raft::eraftpb::MessageType;
        let dir = tempfile::tempdir().unwrap();
        // The new leader appends its no-op and replicates it in the same Ready.
        let (mut c, out) = elect_leader_of_three(dir.path());
        let appends = |ms: &[raft::eraftpb::Message]| {
            ms.iter().filter(|m| m.get_msg_type() == MessageType::MsgAppend && !m.entries.is_empty()).count()
        };
        assert_eq!(appends(&out.messages), 0, "held until the leader's own write is done");
        let job = out.write.expect("the no-op is written by the writer");
        assert_eq!(appends(&job.held), 2, "one append per follower, sent by the writer once written");
        assert_eq!(job.held.len(), 2, "nothing else waits for the write");
        // The job's persisted messages never hold the appends again.
        assert_eq!(appends(&job.persisted), 0);
        job.run_now().unwrap();
        c.raft.on_synced(job.number);
    }

    #[test]
    fn a_leader_cut_off_from_its_quorum_steps_down_within_the_election_timeout() {
        use raft::eraftpb::MessageType;
        let settings = GroupSettings::for_tests();
        let dir = tempfile::tempdir().unwrap();
        let mut c = leader_of_three(dir.path());
        // While a follower answers every heartbeat, the leader stays, for many timeouts.
        for _ in 0..settings.election_tick * 10 {
            c.raft.tick();
            c.raft.step(msg(MessageType::MsgHeartbeatResponse, 3, c.raft.role().term)).unwrap();
            let _ = c.handle_ready().unwrap();
            assert!(c.raft.is_leader(), "a leader with a live quorum stays leader");
        }
        // From the last answer on, nobody answers: it must be gone within T ticks.
        let mut ticks = 0;
        while c.raft.is_leader() {
            c.raft.tick();
            let _ = c.handle_ready().unwrap();
            ticks += 1;
            assert!(ticks <= settings.election_tick, "still leader {ticks} ticks after losing its quorum");
        }
        assert!(ticks > settings.heartbeat_tick, "stepped down after {ticks} ticks: too eager");
    }

    #[test]
    fn a_follower_answers_heartbeats_while_its_append_waits_for_fsync() {
        use raft::eraftpb::{Entry, MessageType};
        let dir = tempfile::tempdir().unwrap();
        let mut c =
            PartitionCore::open(dir.path(), 7, &[1, 2, 3], false, &GroupSettings::for_tests(), logger()).unwrap();
        let _ = c.handle_ready().unwrap();
        let (b, _) = batch(-1, -1, 1);
        let mut app = msg(MessageType::MsgAppend, 2, 3);
        let mut e = Entry::default();
        (e.index, e.term, e.data) = (1, 3, b.to_vec().into());
        app.set_entries(vec![e].into());
        c.raft.step(app).unwrap();
        let out = c.handle_ready().unwrap();
        let job = out.write.expect("the appended entry waits for the writer");
        assert!(
            !out.messages.iter().any(|m| m.get_msg_type() == MessageType::MsgAppendResponse),
            "the append response waits for the fsync"
        );
        // Not written yet: nothing in the file, the entry is read from memory.
        let log = c.raft.storage().log();
        assert_eq!(std::fs::metadata(dir.path().join(crate::log::segment::file_name(1, "log"))).unwrap().len(), 0);
        assert_eq!(log.entries(1, 2, None).unwrap()[0].data, b.to_vec());
        assert!(log.pending_bytes() > 0);
        let mut hb = msg(MessageType::MsgHeartbeat, 2, 3);
        hb.commit = 0;
        c.raft.step(hb).unwrap();
        let out = c.handle_ready().unwrap();
        let sent: Vec<_> = out.messages.iter().map(|m| m.get_msg_type()).collect();
        assert_eq!(sent, [MessageType::MsgHeartbeatResponse], "the heartbeat is answered at once");
        // The response rides with the job: whoever runs it sends it once it is done.
        assert!(job.persisted.iter().any(|m| m.get_msg_type() == MessageType::MsgAppendResponse && m.index == 1));
        job.run_now().unwrap();
        c.raft.on_synced(job.number);
        // Written: the memory copy is released and the entry is read back from the file.
        let log = c.raft.storage().log();
        assert_eq!(log.pending_bytes(), 0);
        assert_eq!(log.entries(1, 2, None).unwrap()[0].data, b.to_vec());
    }

    #[test]
    fn a_vote_leaves_only_once_its_job_is_done() {
        use raft::eraftpb::MessageType;
        let dir = tempfile::tempdir().unwrap();
        let mut c =
            PartitionCore::open(dir.path(), 7, &[1, 2, 3], false, &GroupSettings::for_tests(), logger()).unwrap();
        let _ = c.handle_ready().unwrap();
        let vote_file = dir.path().join("raft-vote");
        let before = std::fs::read(&vote_file).unwrap();
        let mut req = msg(MessageType::MsgRequestVote, 2, 5);
        (req.log_term, req.index) = (0, 0);
        c.raft.step(req).unwrap();
        let out = c.handle_ready().unwrap();
        assert!(!out.messages.iter().any(|m| m.get_msg_type() == MessageType::MsgRequestVoteResponse));
        let job = out.write.expect("the vote is written by the writer");
        assert!(job.files.iter().any(|f| f.path == vote_file), "and fsynced");
        assert_eq!(std::fs::read(&vote_file).unwrap(), before, "nothing written on the actor");
        // A later Ready with nothing to write still waits behind the first job.
        let mut hb = msg(MessageType::MsgHeartbeat, 2, 5);
        hb.commit = 0;
        c.raft.step(hb).unwrap();
        let out = c.handle_ready().unwrap();
        assert!(!out.messages.iter().any(|m| m.get_msg_type() == MessageType::MsgRequestVoteResponse));
        let second = out.write.expect("a Ready behind an unanswered one goes through the writer too");
        let vote = job.persisted.iter().find(|m| m.get_msg_type() == MessageType::MsgRequestVoteResponse);
        assert!(vote.is_some_and(|v| !v.reject && v.term == 5), "the vote rides with its job");
        job.run_now().unwrap();
        c.raft.on_synced(job.number);
        assert_ne!(std::fs::read(&vote_file).unwrap(), before);
        second.run_now().unwrap();
        c.raft.on_synced(second.number);
    }

    #[test]
    fn state_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut c = open(dir.path());
            let (b, h) = batch(9, 0, 4);
            c.produce(b, h).unwrap();
            settle(&mut c);
        }
        let mut c = open(dir.path());
        settle(&mut c);
        assert_eq!(c.high_watermark(), 4);
        let (b, h) = batch(9, 0, 4);
        assert!(!c.produce(b, h).unwrap().new, "producer state was rebuilt from the log");
        let (b, h) = batch(9, 4, 1);
        assert_eq!(c.produce(b, h).unwrap().base_offset, 4);
    }
}
