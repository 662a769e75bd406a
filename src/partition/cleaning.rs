//! A partition's side of log compaction and of time-based segment rolls, free of actix: on the
//! cleaner timer ([`Cleaning::check`]) the group actor rolls an active segment older than
//! `segment.ms` (Kafka's time-based roll, so that a quiet partition's data becomes sealed and
//! cleanable), and, for a compacted topic with no run in flight, plans a run from the in-memory
//! entry table (`log::cleaner::plan`: dirty ratio, `min.compaction.lag.ms`,
//! `max.compaction.lag.ms`) and hands the job to the node's cleaner thread. The reply comes back
//! by message; [`Cleaning::finished`] installs each cleaned segment (renames and a table swap,
//! see `log::cleaner::install`). Nothing here reads a segment's data.

use std::path::Path;

use slog::Logger;

use crate::log::cleaner::{plan, Checkpoint, CleanJob, CleanReply, CompactionSettings};
use crate::log::index::NO_TIMESTAMP;
use crate::log::PartitionLog;

/// Compaction state of one partition.
#[derive(Debug, Default)]
pub struct Cleaning {
    /// A job is with the cleaner: no other is planned until its reply.
    in_flight: bool,
    /// The checkpoint as last stored by the cleaner (read from the file once).
    checkpoint: Option<Checkpoint>,
    /// The index after the last cleaned segment installed: where the raft start may move
    /// (`RaftCore::advance_raft_start`).
    pub raft_start_target: u64,
}

/// What a check decided.
#[derive(Debug)]
pub struct Planned {
    pub job: Option<CleanJob>,
    pub dirty_ratio: f64,
    pub lag_seconds: f64,
}

impl Cleaning {
    /// Rolls the active segment when its first batch is older than `segment_ms` (returns whether
    /// it rolled), then, for a compacted topic, plans a cleaning run over the sealed segments at
    /// or below `applied`. `producer_state`: each producer's last batch offset and the
    /// transactions of the committed state (`partition::txn::cleaner_facts`). None when the topic
    /// is not compacted or a run is in flight.
    #[allow(clippy::too_many_arguments)]
    pub fn check(
        &mut self,
        log: &mut PartitionLog,
        dir: &Path,
        applied: u64,
        settings: Option<CompactionSettings>,
        segment_ms: Option<i64>,
        now_ms: i64,
        producer_state: impl FnOnce() -> (std::collections::HashMap<i64, i64>, crate::log::cleaner::TxnFacts),
        logger: &Logger,
    ) -> Option<Planned> {
        if let Some(ms) = segment_ms {
            let first_ts = log.active_first_batch_timestamp();
            if first_ts.is_some_and(|ts| ts != NO_TIMESTAMP && now_ms.saturating_sub(ts) >= ms) {
                match log.roll() {
                    Ok(true) => slog::debug!(logger, "rolled the active segment on segment.ms"),
                    Ok(false) => {}
                    Err(e) => slog::warn!(logger, "time-based roll failed"; "error" => %e),
                }
            }
        }
        let settings = settings?;
        if self.in_flight {
            return None;
        }
        let checkpoint = match &self.checkpoint {
            Some(c) => c.clone(),
            None => match Checkpoint::load(dir) {
                Ok(c) => {
                    self.checkpoint = Some(c.clone());
                    c
                }
                Err(e) => {
                    slog::warn!(logger, "unreadable cleaner checkpoint; starting from the log start"; "error" => %e);
                    Checkpoint::default()
                }
            },
        };
        let cleaned_offset = checkpoint.cleaned_offset.max(log.log_start_offset());
        let (segments, must, dirty_ratio, lag_seconds) =
            plan(log.cleanable_segments(applied), cleaned_offset, &settings, now_ms);
        let job = must.then(|| {
            self.in_flight = true;
            let (producer_last, txns) = producer_state();
            CleanJob {
                dir: dir.to_path_buf(),
                segments,
                checkpoint,
                producer_last,
                txns,
                settings,
                now_ms,
                index_interval_bytes: log.index_interval_bytes(),
            }
        });
        Some(Planned { job, dirty_ratio, lag_seconds })
    }

    /// The cleaner's reply: installs the cleaned segments. Returns the bases of those installed and
    /// the ABORT markers (producer id, offset) removed from the installed ones, whose entries the
    /// caller drops from the aborted index at once (a consumer given an aborted transaction
    /// whose marker is gone would skip the producer's later batches).
    pub fn finished(
        &mut self,
        log: &mut PartitionLog,
        reply: CleanReply,
        logger: &Logger,
    ) -> (Vec<u64>, Vec<(i64, i64)>) {
        self.in_flight = false;
        let out = match reply {
            Ok(out) => out,
            Err(e) => {
                slog::warn!(logger, "cleaning run failed"; "error" => e);
                return (Vec::new(), Vec::new());
            }
        };
        let mut installed_bases = Vec::new();
        for (base, metas) in out.cleaned {
            let end = base + metas.len() as u64;
            match log.install_cleaned(base, metas) {
                Ok(true) => {
                    installed_bases.push(base);
                    self.raft_start_target = self.raft_start_target.max(end);
                }
                Ok(false) => slog::info!(logger, "a cleaned segment is gone meanwhile; copy dropped"; "base" => base),
                Err(e) => slog::warn!(logger, "installing a cleaned segment failed"; "base" => base, "error" => %e),
            }
        }
        self.checkpoint = Some(out.checkpoint);
        let dropped = out
            .dropped_aborts
            .iter()
            .filter(|(base, _, _)| installed_bases.contains(base))
            .map(|&(_, pid, offset)| (pid, offset))
            .collect();
        (installed_bases, dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::cleaner::{clean, CompactionSettings};
    use crate::log::partition_log::tests::logger;
    use crate::log::{LogKind, LogOptions};
    use raft::eraftpb::Entry;

    fn batch(base: i64, key: &str, ts: i64) -> bytes::Bytes {
        let mut b = crate::log::batch::build_batch(base, -1, -1, -1, ts, &[(Some(key.as_bytes()), Some(b"v"))]);
        crate::log::batch::finish_batch(&mut b);
        b.into()
    }

    #[test]
    fn rolls_on_segment_ms_then_plans_and_installs_a_run() {
        let dir = tempfile::tempdir().unwrap();
        let opts = LogOptions { segment_bytes: 1 << 20, index_interval_bytes: 64, kind: LogKind::KafkaBatches };
        let (mut log, _) = PartitionLog::open(dir.path(), opts, &logger()).unwrap();
        let ents: Vec<Entry> = (0..10)
            .map(|i| Entry { index: i as u64 + 1, term: 1, data: batch(i, "k", 1000 + i), ..Default::default() })
            .collect();
        log.append(&ents).unwrap();
        let mut c = Cleaning::default();
        let s = CompactionSettings::default();
        // Too young to roll: nothing sealed, nothing to plan.
        let p = c.check(&mut log, dir.path(), 10, Some(s), Some(5000), 2000, Default::default, &logger()).unwrap();
        assert!(p.job.is_none());
        assert_eq!(log.segment_count(), 1);
        // Old enough: rolled, and the sealed segment is all dirty.
        let p = c.check(&mut log, dir.path(), 10, Some(s), Some(5000), 7000, Default::default, &logger()).unwrap();
        assert_eq!(log.segment_count(), 2);
        let job = p.job.expect("a run");
        assert_eq!(p.dirty_ratio, 1.0);
        // No second job while one is in flight.
        assert!(c.check(&mut log, dir.path(), 10, Some(s), None, 7000, Default::default, &logger()).is_none());
        let out = clean(&job, 1 << 20, &mut |_| {}).unwrap();
        out.checkpoint.store(dir.path()).unwrap();
        assert_eq!(c.finished(&mut log, Ok(out), &logger()).0.len(), 1);
        assert_eq!(c.raft_start_target, 11, "after the cleaned segment");
        let served = log.read(0, usize::MAX, i64::MAX).unwrap();
        assert_eq!(crate::log::batch::BatchHeader::parse(&served).unwrap().base_offset, 9);
        assert_eq!(served.len(), crate::log::batch::BatchHeader::parse(&served).unwrap().total_len(), "one batch left");
        // Clean now: nothing more to do. A topic that is not compacted plans nothing.
        let p = c.check(&mut log, dir.path(), 10, Some(s), None, 8000, Default::default, &logger()).unwrap();
        assert!(p.job.is_none() && p.dirty_ratio == 0.0);
        assert!(c.check(&mut log, dir.path(), 10, None, None, 8000, Default::default, &logger()).is_none());
    }
}
