//! The failure and recovery state machine of one Raft group's storage, free of actix and of
//! the disk: the group's shell feeds it what happens (a write job submitted, written, synced or
//! failed, the writer drained, a reopen attempted) with the current time, and it answers with
//! decisions (ignore, send these messages, fail, poison and barrier, retry after a delay).
//!
//! What it keeps:
//! - the **generation**: counts reopenings of the group's core; an answer from the disk writer
//!   or the apply actor of an earlier core is ignored;
//! - the **durable index**: the highest log index known to be fsynced *with the content the log
//!   has now*. A reopen after a failure first cuts the log back to it, since anything after it
//!   may never have reached the disk. A job that rewrites the log from index `f` (a follower's
//!   truncation of a conflicting suffix, a snapshot) lowers it to `f - 1` at once — the old
//!   entries from `f` on are being overwritten and the new ones are not fsynced yet — and caps
//!   the marks of earlier jobs not yet answered the same way;
//! - the **sync marks**: Ready number → the last index its fsync covers;
//! - the **failure**: the reason, the reopen attempts, whether a retry timer is set and whether
//!   the writer has answered everything queued before the failure (the barrier: only then may
//!   the storage be reopened, since no write of the failed core can land any more).
//!
//! Reopen attempts follow [`recovery_delay`]: 0.5 s, doubling, at most 5 s; a produce request
//! may try at once, at most once a second ([`Recovery::attempt_due`]).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Delay before reopen attempt `n` (0-based) after a storage failure: 0.5 s doubling to 5 s.
pub fn recovery_delay(n: u32) -> Duration {
    Duration::from_millis(500u64.saturating_mul(1 << n.min(4))).min(Duration::from_secs(5))
}

/// How long a produce-triggered reopen attempt waits after the previous attempt.
pub const PRODUCE_RETRY_SPACING: Duration = Duration::from_secs(1);

/// A storage failure and the reopen attempts since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure<E> {
    pub reason: E,
    pub attempts: u32,
    pub last_attempt: Option<Instant>,
    /// A retry timer is on its way.
    pub timer_set: bool,
    /// The writer has answered every job of the failed core.
    pub drained: bool,
}

/// What to do with a writer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncedDecision<E> {
    /// An answer for an earlier core, or after the failure: nothing to do.
    Ignore,
    /// The job (and every earlier one) is durable: call `RaftCore::on_synced(number)`.
    Persisted(u64),
    /// The job failed: the group fails with this reason (see [`Recovery::fail`]).
    Fail(E),
}

/// A reopen attempt that may go ahead now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt<E> {
    /// 1-based.
    pub number: u32,
    pub reason: E,
    /// Cut the log back to this index before reopening (None: keep everything, page-cache policy).
    pub cut_after: Option<u64>,
}

/// The state machine; `E` is the failure reason.
#[derive(Debug, Clone)]
pub struct Recovery<E> {
    generation: u64,
    /// None with the page-cache policy: nothing is known to be fsynced, and nothing is cut.
    durable: Option<u64>,
    marks: BTreeMap<u64, u64>,
    failure: Option<Failure<E>>,
}

impl<E: Clone> Recovery<E> {
    /// A group whose log ends at `last_index`, all of it on disk (`fsync`), or one with the
    /// page-cache policy (`fsync == false`), which never cuts its log back.
    pub fn new(last_index: u64, fsync: bool) -> Self {
        Recovery { generation: 0, durable: fsync.then_some(last_index), marks: BTreeMap::new(), failure: None }
    }

    /// The current core's generation; answers carry it back.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The highest index known to be fsynced (None: page-cache policy).
    pub fn durable_index(&self) -> Option<u64> {
        self.durable
    }

    /// The failure, while the group is failed.
    pub fn failure(&self) -> Option<&Failure<E>> {
        self.failure.as_ref()
    }

    /// True while the group is failed (it neither ticks nor writes).
    pub fn is_failed(&self) -> bool {
        self.failure.is_some()
    }

    /// A write job was handed to the writer: Ready `number`, which rewrites the log from index
    /// `rewrites_from` on (its first new entry, or the index after a snapshot; None when it
    /// writes no entries), and after which the log ends at `last_index`.
    pub fn submitted(&mut self, number: u64, rewrites_from: Option<u64>, last_index: u64) {
        if let Some(from) = rewrites_from {
            let keep = from.saturating_sub(1);
            if let Some(d) = self.durable.as_mut() {
                *d = (*d).min(keep);
            }
            for m in self.marks.values_mut() {
                *m = (*m).min(keep);
            }
        }
        self.marks.insert(number, last_index);
    }

    /// The writer answered job `number` of core `generation`.
    pub fn synced(&mut self, generation: u64, number: u64, result: Result<(), E>) -> SyncedDecision<E> {
        if generation != self.generation || self.failure.is_some() {
            return SyncedDecision::Ignore;
        }
        match result {
            Ok(()) => {
                let later = self.marks.split_off(&(number + 1));
                let done = std::mem::replace(&mut self.marks, later);
                if let (Some(d), Some(last)) = (self.durable.as_mut(), done.values().max()) {
                    *d = (*d).max(*last);
                }
                SyncedDecision::Persisted(number)
            }
            Err(e) => SyncedDecision::Fail(e),
        }
    }

    /// The storage failed. True when this is the first failure of the current core: the shell
    /// then poisons the core's writes and sends the writer a barrier tagged with
    /// [`Recovery::generation`]. A second failure while failed changes nothing.
    pub fn fail(&mut self, reason: E) -> bool {
        if self.failure.is_some() {
            return false;
        }
        self.failure = Some(Failure { reason, attempts: 0, last_attempt: None, timer_set: false, drained: false });
        true
    }

    /// The writer answered the barrier of core `generation`. Returns the delay of the first
    /// retry timer to set, if one is due.
    pub fn drained(&mut self, generation: u64) -> Option<Duration> {
        if generation != self.generation {
            return None;
        }
        self.failure.as_mut()?.drained = true;
        self.timer()
    }

    /// The retry timer fired: the attempt to run now, if any.
    pub fn timer_fired(&mut self, now: Instant) -> Option<Attempt<E>> {
        self.failure.as_mut()?.timer_set = false;
        self.begin(now)
    }

    /// A request (a produce) found the group failed: the attempt to run now, if the writer has
    /// drained and the last attempt is at least [`PRODUCE_RETRY_SPACING`] old.
    pub fn attempt_due(&mut self, now: Instant) -> Option<Attempt<E>> {
        let f = self.failure.as_ref()?;
        let due = f.last_attempt.is_none_or(|t| now.saturating_duration_since(t) >= PRODUCE_RETRY_SPACING);
        if due {
            self.begin(now)
        } else {
            None
        }
    }

    fn begin(&mut self, now: Instant) -> Option<Attempt<E>> {
        let f = self.failure.as_mut().filter(|f| f.drained)?;
        f.attempts += 1;
        f.last_attempt = Some(now);
        Some(Attempt { number: f.attempts, reason: f.reason.clone(), cut_after: self.durable })
    }

    /// The reopen worked and the new core's log ends at `last_index` (all of it on disk: the
    /// reopen fsyncs it). Starts the next generation.
    pub fn reopened(&mut self, last_index: u64) {
        self.generation += 1;
        self.failure = None;
        self.marks.clear();
        if let Some(d) = self.durable.as_mut() {
            *d = last_index;
        }
    }

    /// The reopen failed: the delay of the next retry timer to set, if one is due.
    pub fn reopen_failed(&mut self) -> Option<Duration> {
        self.timer()
    }

    fn timer(&mut self) -> Option<Duration> {
        let f = self.failure.as_mut().filter(|f| !f.timer_set && f.drained)?;
        f.timer_set = true;
        Some(recovery_delay(f.attempts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type R = Recovery<&'static str>;

    fn failed_and_drained(r: &mut R) -> Duration {
        assert!(r.fail("disk full"));
        r.drained(r.generation()).expect("first timer")
    }

    #[test]
    fn synced_jobs_move_the_durable_index_in_order() {
        let mut r = R::new(10, true);
        r.submitted(1, Some(11), 12);
        r.submitted(2, Some(13), 15);
        r.submitted(3, None, 15);
        assert_eq!(r.durable_index(), Some(10), "nothing counts before its answer");
        assert_eq!(r.synced(0, 1, Ok(())), SyncedDecision::Persisted(1));
        assert_eq!(r.durable_index(), Some(12));
        // One answer covers every earlier job (the writer answers in order).
        assert_eq!(r.synced(0, 3, Ok(())), SyncedDecision::Persisted(3));
        assert_eq!(r.durable_index(), Some(15));
    }

    #[test]
    fn a_follower_truncation_then_a_failed_fsync_never_counts_the_rewritten_entries() {
        // 1..=10 fsynced; a new leader makes this follower replace 6.. with 6..=8.
        let mut r = R::new(10, true);
        r.submitted(1, Some(6), 8);
        assert_eq!(r.durable_index(), Some(5), "the old 6..=10 are being overwritten");
        assert_eq!(r.synced(0, 1, Err("fsync: EIO")), SyncedDecision::Fail("fsync: EIO"));
        assert!(r.fail("fsync: EIO"));
        r.drained(0).unwrap();
        let a = r.timer_fired(Instant::now()).unwrap();
        assert_eq!(a.cut_after, Some(5), "the reopen cuts the unsynced rewrite away");
    }

    #[test]
    fn a_truncation_caps_the_marks_of_earlier_unanswered_jobs() {
        let mut r = R::new(10, true);
        r.submitted(1, Some(11), 14);
        r.submitted(2, Some(7), 9);
        assert_eq!(r.synced(0, 1, Ok(())), SyncedDecision::Persisted(1));
        assert_eq!(r.durable_index(), Some(6), "job 1's 7..=14 were replaced by job 2");
        assert_eq!(r.synced(0, 2, Ok(())), SyncedDecision::Persisted(2));
        assert_eq!(r.durable_index(), Some(9));
    }

    #[test]
    fn a_successful_truncation_lowers_the_durable_index_to_its_last_entry() {
        let mut r = R::new(10, true);
        r.submitted(1, Some(4), 5);
        assert_eq!(r.synced(0, 1, Ok(())), SyncedDecision::Persisted(1));
        assert_eq!(r.durable_index(), Some(5));
        // Later appends that fail are not covered by the old, higher index.
        r.submitted(2, Some(6), 9);
        assert_eq!(r.synced(0, 2, Err("EIO")), SyncedDecision::Fail("EIO"));
        assert_eq!(r.durable_index(), Some(5));
    }

    #[test]
    fn an_fsync_error_fails_and_later_answers_are_ignored() {
        let mut r = R::new(0, true);
        r.submitted(1, Some(1), 1);
        r.submitted(2, Some(2), 2);
        assert_eq!(r.synced(0, 1, Err("EIO")), SyncedDecision::Fail("EIO"));
        assert!(r.fail("EIO"), "the first failure poisons and sends a barrier");
        assert!(!r.fail("EIO again"), "a second one does nothing more");
        assert_eq!(r.synced(0, 2, Ok(())), SyncedDecision::Ignore, "a later job never counts");
        assert_eq!(r.durable_index(), Some(0));
        assert_eq!(r.failure().unwrap().reason, "EIO");
    }

    #[test]
    fn late_answers_of_an_old_generation_are_ignored() {
        let mut r = R::new(3, true);
        r.submitted(7, Some(4), 4);
        failed_and_drained(&mut r);
        r.timer_fired(Instant::now()).unwrap();
        r.reopened(3);
        assert_eq!(r.generation(), 1);
        assert!(!r.is_failed());
        assert_eq!(r.synced(0, 7, Ok(())), SyncedDecision::Ignore);
        assert_eq!(r.synced(0, 8, Err("late")), SyncedDecision::Ignore);
        assert_eq!(r.drained(0), None);
        assert_eq!(r.durable_index(), Some(3));
        // The new core's Ready numbers start again; its answers count.
        r.submitted(1, Some(4), 4);
        assert_eq!(r.synced(1, 1, Ok(())), SyncedDecision::Persisted(1));
        assert_eq!(r.durable_index(), Some(4));
    }

    #[test]
    fn no_attempt_before_the_writer_has_drained() {
        let mut r = R::new(0, true);
        assert!(r.fail("EIO"));
        let now = Instant::now();
        assert_eq!(r.attempt_due(now), None);
        assert_eq!(r.timer_fired(now), None);
        assert_eq!(r.reopen_failed(), None, "no timer before the barrier is answered");
        assert_eq!(r.drained(0), Some(Duration::from_millis(500)));
        assert_eq!(r.drained(0), None, "one timer at a time");
        assert_eq!(r.timer_fired(now).map(|a| a.number), Some(1));
    }

    #[test]
    fn backoff_is_half_a_second_doubling_to_five() {
        let want = [500, 1000, 2000, 4000, 5000, 5000, 5000];
        let mut r = R::new(0, true);
        let mut now = Instant::now();
        let mut delay = failed_and_drained(&mut r);
        for (i, ms) in want.iter().enumerate() {
            assert_eq!(delay, Duration::from_millis(*ms), "attempt {i}");
            assert_eq!(recovery_delay(i as u32), Duration::from_millis(*ms));
            now += delay;
            let a = r.timer_fired(now).unwrap();
            assert_eq!(a.number, i as u32 + 1);
            delay = r.reopen_failed().unwrap();
        }
        assert_eq!(recovery_delay(u32::MAX), Duration::from_secs(5));
    }

    #[test]
    fn a_produce_attempts_at_most_once_a_second() {
        let mut r = R::new(0, true);
        failed_and_drained(&mut r);
        let t0 = Instant::now();
        assert_eq!(r.attempt_due(t0).map(|a| a.number), Some(1), "the first may go at once");
        assert_eq!(r.attempt_due(t0 + Duration::from_millis(999)), None);
        assert_eq!(r.attempt_due(t0 + Duration::from_secs(1)).map(|a| a.number), Some(2));
        // The timer still fires on its own schedule.
        assert_eq!(r.timer_fired(t0 + Duration::from_secs(1)).map(|a| a.number), Some(3));
    }

    #[test]
    fn a_successful_reopen_clears_the_failure_and_resets_the_durable_index() {
        let mut r = R::new(5, true);
        r.submitted(1, Some(6), 9);
        failed_and_drained(&mut r);
        let a = r.timer_fired(Instant::now()).unwrap();
        assert_eq!((a.number, a.reason, a.cut_after), (1, "disk full", Some(5)));
        r.reopened(5);
        assert!(r.failure().is_none());
        assert_eq!(r.durable_index(), Some(5));
        assert_eq!(r.timer_fired(Instant::now()), None, "a stale timer does nothing");
        assert_eq!(r.synced(1, 1, Ok(())), SyncedDecision::Persisted(1));
        assert_eq!(r.durable_index(), Some(5), "the old core's mark is gone");
    }

    #[test]
    fn the_page_cache_policy_never_cuts() {
        let mut r = R::new(5, false);
        r.submitted(1, Some(3), 4);
        assert_eq!(r.synced(0, 1, Ok(())), SyncedDecision::Persisted(1));
        assert_eq!(r.durable_index(), None);
        failed_and_drained(&mut r);
        assert_eq!(r.timer_fired(Instant::now()).unwrap().cut_after, None);
        r.reopened(9);
        assert_eq!(r.durable_index(), None);
    }
}
