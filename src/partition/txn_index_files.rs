//! The aborted-transactions index files of a partition's sealed segments (Kafka's `.txnindex`,
//! format in `log/txn_index.rs`): when each is written, and how the files found on open are
//! checked. No actix: the partition actor runs the jobs off the actor (`partition/txn_index_io.rs`).
//!
//! The aborted list ([`AbortedTxns`]) is derived from the log by the replay (`partition::txn`); a file is
//! a durable, checked copy of one sealed segment's part of it (the aborts whose ABORT marker is
//! in the segment; an empty file means "checked, no aborts"). A segment's file is written once
//! the applied index has passed the segment's last entry (a marker is known only once applied),
//! oldest segment first, one job at a time. On open, each file that decodes is kept aside and,
//! once the replay has passed its segment, compared with what the replay derived (entries below
//! the log start, which DeleteRecords may leave in a file, are ignored): equal, it stays; missing,
//! damaged (refused by the decoder) or different, it is rewritten from the replay, with a
//! warning for a damaged or different one. The replay always wins.
//!
//! Ordering against the segment's other changes (both on the actor): the cleaner's swap deletes
//! the file and [`TxnIndexFiles::forget`] has it written again from the list, whose cleaned-away
//! aborts were already dropped; retention deletes it with its segment. A job that was running
//! meanwhile is stale: its segment is written again, or, when the segment is gone, the file the
//! job left is removed by a follow-up job.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::{ApplyItem, PartitionCore};
use crate::log::txn_index::{self, Damage, IndexEntry, SealedKey, SegmentSpan};
use crate::partition::txn::AbortedTxns;

/// Disk work for one segment's index, run off the group's actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnIndexJob {
    Store { dir: PathBuf, base: u64, entries: Vec<IndexEntry> },
    Remove { dir: PathBuf, base: u64 },
}

impl TxnIndexJob {
    pub fn base(&self) -> u64 {
        match self {
            TxnIndexJob::Store { base, .. } | TxnIndexJob::Remove { base, .. } => *base,
        }
    }

    /// Carries the job out, on the calling (blocking) thread.
    pub fn run(&self) -> Result<(), String> {
        match self {
            TxnIndexJob::Store { dir, base, entries } => txn_index::store(dir, *base, entries),
            TxnIndexJob::Remove { dir, base } => txn_index::remove(dir, *base),
        }
        .map_err(|e| e.to_string())
    }
}

/// The index files of one partition: which are known good, which are to be checked.
#[derive(Debug, Default)]
pub struct TxnIndexFiles {
    dir: PathBuf,
    /// Files read on open, until the replay has passed their segment.
    found: BTreeMap<u64, Result<Vec<IndexEntry>, Damage>>,
    /// Segments whose file holds their entries (checked, or written since).
    done: BTreeSet<u64>,
    /// The segment of the running job, and whether its segment changed meanwhile.
    in_flight: Option<(u64, bool)>,
    /// Set when [`Self::next`] found nothing due: the sealed segments then, and the applied
    /// index at which the next one falls due (`u64::MAX`: none sealed beyond). Until either
    /// changes, nothing can be due and the check after each apply costs no list. Cleared by
    /// every change that makes a file due otherwise (forget, a finished job).
    idle: Option<(SealedKey, u64)>,
}

fn has(spans: &[SegmentSpan], base: u64) -> bool {
    spans.binary_search_by_key(&base, |s| s.base).is_ok()
}

impl TxnIndexFiles {
    /// Reads the files of `spans` (a file that cannot be read counts as missing).
    pub fn open(dir: &Path, spans: &[SegmentSpan]) -> Self {
        let found = spans
            .iter()
            .filter_map(|s| Some((s.base, txn_index::load(dir, s.base, s.offset_start, s.offset_end).ok()??)))
            .collect();
        TxnIndexFiles { dir: dir.to_path_buf(), found, ..Default::default() }
    }

    /// Whether a job is running.
    pub fn busy(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Whether nothing can be due: the sealed segments are those of the last empty
    /// [`Self::next`] and `applied` has not reached the next segment's last entry.
    pub fn idle(&self, key: SealedKey, applied: u64) -> bool {
        self.idle.is_some_and(|(k, due)| k == key && applied < due)
    }

    /// The next job: a store for the oldest sealed segment with its last entry at or below
    /// `applied` whose file is not known good. None while a job runs or when all are good;
    /// then `key` (the log's [`SealedKey`] of `spans`) marks the files idle (see [`Self::idle`]).
    pub fn next(
        &mut self,
        key: SealedKey,
        spans: &[SegmentSpan],
        applied: u64,
        aborted: &AbortedTxns,
        log_start: i64,
        logger: &slog::Logger,
    ) -> Option<TxnIndexJob> {
        if self.busy() {
            return None;
        }
        self.idle = None;
        self.done.retain(|b| has(spans, *b));
        self.found.retain(|b, _| has(spans, *b));
        for s in spans.iter().take_while(|s| s.last_index <= applied) {
            if self.done.contains(&s.base) {
                continue;
            }
            let entries: Vec<IndexEntry> = aborted
                .markers_in(s.offset_start, s.offset_end)
                .iter()
                .map(|t| IndexEntry {
                    producer_id: t.producer_id,
                    first_offset: t.first_offset,
                    last_offset: t.last_offset,
                    last_stable_offset: t.last_stable_offset,
                })
                .collect();
            match self.found.remove(&s.base) {
                Some(Ok(mut file)) => {
                    file.retain(|e| e.last_offset >= log_start);
                    if file == entries {
                        self.done.insert(s.base);
                        continue;
                    }
                    slog::warn!(logger, "aborted index file disagrees with the log; rewritten from the log";
                        "segment" => s.base, "file_entries" => file.len(), "log_entries" => entries.len());
                }
                Some(Err(damage)) => {
                    slog::warn!(logger, "aborted index file is damaged; rebuilt from the log"; "segment" => s.base, "damage" => %damage);
                }
                None => {}
            }
            self.in_flight = Some((s.base, false));
            return Some(TxnIndexJob::Store { dir: self.dir.clone(), base: s.base, entries });
        }
        let due = spans.iter().find(|s| s.last_index > applied).map_or(u64::MAX, |s| s.last_index);
        self.idle = Some((key, due));
        None
    }

    /// The files of segments `bases` are gone or out of date (the cleaner's swap): written again.
    pub fn forget(&mut self, bases: &[u64]) {
        self.idle = None;
        for b in bases {
            self.done.remove(b);
            self.found.remove(b);
            if let Some((f, stale)) = self.in_flight.as_mut() {
                *stale |= f == b;
            }
        }
    }

    /// Every segment changed (a snapshot replaced the log): all files are written again.
    pub fn forget_all(&mut self) {
        self.idle = None;
        self.done.clear();
        self.found.clear();
        if let Some((_, stale)) = self.in_flight.as_mut() {
            *stale = true;
        }
    }

    /// The running job finished. A store for a segment that is gone meanwhile is followed by
    /// a removal of its file; a stale one is written again by a later [`Self::next`]. A failed
    /// store is logged and not retried until the next open (the list in memory is unaffected).
    pub fn finished(
        &mut self,
        job: &TxnIndexJob,
        result: Result<(), String>,
        spans: &[SegmentSpan],
        logger: &slog::Logger,
    ) -> Option<TxnIndexJob> {
        self.idle = None;
        let base = job.base();
        let stale = match self.in_flight {
            Some((b, stale)) if b == base => stale,
            _ => true,
        };
        if self.in_flight.is_some_and(|(b, _)| b == base) {
            self.in_flight = None;
        }
        if let Err(e) = &result {
            slog::warn!(logger, "aborted index file could not be written or removed"; "segment" => base, "error" => e);
        }
        let TxnIndexJob::Store { dir, .. } = job else {
            return None;
        };
        if !has(spans, base) {
            self.in_flight = Some((base, false));
            return Some(TxnIndexJob::Remove { dir: dir.clone(), base });
        }
        if !stale {
            self.done.insert(base);
        }
        None
    }
}

impl PartitionCore {
    /// The next index job, if a sealed segment's file is due (see [`TxnIndexFiles::next`]).
    pub fn txn_index_job(&mut self) -> Option<TxnIndexJob> {
        let (applied, key) = (self.confirmed_applied(), self.raft.storage().log().sealed_key());
        if self.txn_files.busy() || self.txn_files.idle(key, applied) {
            return None;
        }
        let spans = self.raft.storage().log().sealed_spans();
        let start = self.log_start();
        self.txn_files.next(key, &spans, applied, &self.raft.sm().producers.aborted, start, &self.logger)
    }

    /// A job of this core finished; returns the follow-up job, if any.
    pub fn txn_index_done(&mut self, job: &TxnIndexJob, result: Result<(), String>) -> Option<TxnIndexJob> {
        let spans = self.raft.storage().log().sealed_spans();
        self.txn_files.finished(job, result, &spans, &self.logger)
    }

    /// The files of segments `bases` are to be written again (the cleaner swapped them, or a
    /// job of an earlier core may have left an old copy).
    pub fn forget_txn_indexes(&mut self, bases: &[u64]) {
        self.txn_files.forget(bases);
    }

    /// A snapshot restore replaced the segments: every file is written again.
    pub(super) fn txn_index_items(&mut self, items: &[ApplyItem]) {
        if items.iter().any(|i| matches!(i, ApplyItem::Restore { .. })) {
            self.txn_files.forget_all();
        }
    }
}

#[cfg(test)]
#[path = "txn_index_files_tests.rs"]
mod tests;
