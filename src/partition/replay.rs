//! A partition's replay at open: the committed entries a restart finds in its log are applied
//! where the log is opened, i.e. on tokio's blocking pool (`node.rs`), before the group's actor
//! starts. The group neither ticks nor campaigns until it is done, and the poller thread that
//! will run it keeps running its other groups meanwhile; the actor's first Ready has nothing
//! left to read from the retained log.
//!
//! Each round goes through the same steps as on the actor: raft-rs hands out the committed
//! entries (at most `max_committed_size_per_ready` bytes per round, so memory stays bounded),
//! the state machine applies them (producer state), and what the apply actor would do with the
//! items (the CRC re-check, the high watermark) is done at once by an [`ApplyState`], whose
//! result is confirmed like an `Applied` answer.
//!
//! The replay reads and checks the whole retained log (gigabytes after a long run), so it runs at
//! a lower CPU priority (`raft.replay-nice`): the groups already running on the node, and the
//! other brokers sharing its machine, keep their ticks and heartbeats on time.

use super::{ApplyState, PartitionCore};
use crate::log::priority::on_low_priority_thread;
use crate::log::LogError;

impl PartitionCore {
    /// Applies every committed entry after the replay start; before any tick or campaign, on a
    /// thread of its own at niceness `nice` (`raft.replay-nice`, `log::priority`). `delay`
    /// (fault injection) is waited in each round that applied record batches.
    pub(super) fn replay(&mut self, delay: std::time::Duration, nice: i32) -> Result<(), LogError> {
        if !self.raft.has_ready() {
            return Ok(()); // a new group, or nothing committed: no thread for nothing
        }
        let (result, lowered) = on_low_priority_thread("chronik-replay", nice, || self.replay_rounds(delay));
        if let Some(e) = lowered {
            slog::warn!(self.logger, "cannot lower the replay thread's priority"; "nice" => nice, "error" => %e);
        }
        result
    }

    fn replay_rounds(&mut self, delay: std::time::Duration) -> Result<(), LogError> {
        let started = std::time::Instant::now();
        let mut apply = ApplyState::new(self.high_watermark(), self.logger.clone());
        let mut entries = 0usize;
        while self.raft.replay_round()?.is_some() {
            let items = self.take_apply_items();
            if !delay.is_zero() && items.iter().any(|i| matches!(i, super::ApplyItem::Batch { .. })) {
                std::thread::sleep(delay);
            }
            entries += items.len();
            for item in &items {
                apply.apply(item);
            }
            self.set_applied(apply.applied, apply.high_watermark);
        }
        if entries > 0 {
            slog::info!(self.logger, "replayed the committed log"; "group" => self.raft.group(), "entries" => entries,
                "high_watermark" => self.high_watermark(), "ms" => started.elapsed().as_millis() as u64);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{batch, open, settle};
    use super::*;
    use crate::raft::GroupSettings;

    #[test]
    fn a_reopened_partition_has_replayed_its_log_before_its_first_ready() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = open(dir.path());
        for seq in 0..20 {
            let (b, h) = batch(9, seq * 2, 2);
            c.produce(b, h).unwrap();
            settle(&mut c);
        }
        assert_eq!(c.high_watermark(), 40);
        let commit = c.raft.commit_index();
        drop(c);

        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let mut c = PartitionCore::open(dir.path(), 7, &[1], false, &GroupSettings::for_tests(), logger).unwrap();
        // Replayed inside `open`: the high watermark and the applied index are back, and the
        // producer state with them.
        assert_eq!(c.high_watermark(), 40);
        assert_eq!(c.raft.applied(), commit);
        assert!(c.confirmed_applied() > 0);
        // The first Ready (the campaign of the single voter) applies nothing of the old log.
        let out = c.handle_ready().unwrap();
        assert_eq!(out.applied, None);
        assert!(c.take_apply_items().is_empty());
        settle(&mut c);
        assert!(c.raft.is_leader());
        let (b, h) = batch(9, 38, 2);
        assert!(!c.produce(b, h).unwrap().new, "the last batch's retry is recognized");
        let (b, h) = batch(9, 40, 1);
        assert_eq!(c.produce(b, h).unwrap().base_offset, 40);
        settle(&mut c);
        assert_eq!(c.high_watermark(), 41);
    }
}
