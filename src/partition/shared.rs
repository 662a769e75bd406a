//! What a partition publishes for readers on other actors without a message round trip: its
//! leader, term, high watermark, last stable offset and log start offset, as atomics, and a `Notify` that fetch long
//! polls wait on. Only the partition's own actor writes these.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use tokio::sync::Notify;

/// Published state of one partition.
#[derive(Debug, Default)]
pub struct PartitionShared {
    leader: AtomicU64,
    term: AtomicU64,
    high_watermark: AtomicI64,
    log_start: AtomicI64,
    last_stable_offset: AtomicI64,
    /// Bit n set: node n is in sync (as seen by the leader; nodes 1..=63).
    in_sync: AtomicU64,
    /// Woken whenever the high watermark moves or leadership changes.
    pub changed: Notify,
    /// The thread (poller) the partition's actor runs on, once started (tests, diagnostics).
    thread: std::sync::OnceLock<std::thread::ThreadId>,
}

impl PartitionShared {
    /// The thread the partition's actor runs on (`raft::pollers`), once it has started.
    pub fn thread(&self) -> Option<std::thread::ThreadId> {
        self.thread.get().copied()
    }

    pub(crate) fn set_thread(&self) {
        let _ = self.thread.set(std::thread::current().id());
    }

    /// The current leader's node id, 0 when unknown.
    pub fn leader(&self) -> u64 {
        self.leader.load(Ordering::Acquire)
    }
    /// The current Raft term (the Kafka leader epoch).
    pub fn term(&self) -> u64 {
        self.term.load(Ordering::Acquire)
    }
    /// The high watermark: the offset after the last committed record.
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }
    /// The log start offset.
    pub fn log_start(&self) -> i64 {
        self.log_start.load(Ordering::Acquire)
    }
    /// The last stable offset (`partition::txn`): at most the high watermark.
    pub fn last_stable_offset(&self) -> i64 {
        self.last_stable_offset.load(Ordering::Acquire)
    }

    /// The in-sync replicas reported by this node while it leads (empty otherwise).
    pub fn in_sync(&self) -> Vec<u64> {
        let bits = self.in_sync.load(Ordering::Acquire);
        (1..64).filter(|n| bits & (1 << n) != 0).collect()
    }

    pub(crate) fn set_in_sync(&self, ids: Vec<u64>) {
        let bits = ids.iter().filter(|n| **n < 64).fold(0u64, |b, n| b | (1 << n));
        self.in_sync.store(bits, Ordering::Release);
    }

    pub(crate) fn set_role(&self, leader: u64, term: u64) {
        self.leader.store(leader, Ordering::Release);
        self.term.store(term, Ordering::Release);
        self.changed.notify_waiters();
    }

    pub(crate) fn set_offsets(&self, hw: i64, log_start: i64, lso: i64) {
        let old = self.high_watermark.swap(hw, Ordering::AcqRel);
        self.log_start.store(log_start, Ordering::Release);
        let old_lso = self.last_stable_offset.swap(lso, Ordering::AcqRel);
        if old != hw || old_lso != lso {
            self.changed.notify_waiters();
        }
    }
}
