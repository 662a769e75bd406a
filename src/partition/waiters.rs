//! The produce acknowledgements that wait for the high watermark, free of actix: each waiter is
//! kept under the last offset of its batch and is released once the high watermark passes it,
//! or failed all at once (leadership lost, storage failure, shutdown). Generic over the reply
//! handle `R`, so that the tests need no channel.

use std::collections::BTreeMap;

/// Waiting acknowledgements, by the last offset of their batch.
#[derive(Debug)]
pub struct AckWaiters<R> {
    by_last_offset: BTreeMap<i64, Vec<(i64, R)>>,
}

impl<R> Default for AckWaiters<R> {
    fn default() -> Self {
        AckWaiters { by_last_offset: BTreeMap::new() }
    }
}

impl<R> AckWaiters<R> {
    /// Waits for the batch `base_offset..=last_offset`.
    pub fn wait(&mut self, base_offset: i64, last_offset: i64, reply: R) {
        self.by_last_offset.entry(last_offset).or_default().push((base_offset, reply));
    }

    /// The waiters whose batch lies below `high_watermark` (committed and applied), with their
    /// base offsets, in offset order (and arrival order for one offset); the rest keep waiting.
    pub fn release(&mut self, high_watermark: i64) -> Vec<(i64, R)> {
        let still_waiting = self.by_last_offset.split_off(&high_watermark);
        let done = std::mem::replace(&mut self.by_last_offset, still_waiting);
        done.into_values().flatten().collect()
    }

    /// Every waiter, to be failed (in offset order).
    pub fn take_all(&mut self) -> Vec<R> {
        std::mem::take(&mut self.by_last_offset).into_values().flatten().map(|(_, r)| r).collect()
    }

    /// How many acknowledgements wait.
    pub fn len(&self) -> usize {
        self.by_last_offset.values().map(Vec::len).sum()
    }

    /// True when none waits.
    pub fn is_empty(&self) -> bool {
        self.by_last_offset.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_exactly_the_batches_below_the_high_watermark() {
        let mut w = AckWaiters::default();
        w.wait(0, 4, "a");
        w.wait(5, 9, "b");
        w.wait(10, 10, "c");
        assert_eq!(w.release(5), vec![(0, "a")]);
        assert_eq!(w.len(), 2);
        assert_eq!(w.release(9), vec![], "offset 9 is not below the high watermark 9");
        assert_eq!(w.release(11), vec![(5, "b"), (10, "c")]);
        assert!(w.is_empty());
        assert_eq!(w.release(100), vec![]);
    }

    #[test]
    fn waiters_of_one_offset_keep_their_order() {
        // A retried batch waits under the same last offset as the original.
        let mut w = AckWaiters::default();
        w.wait(3, 7, 1);
        w.wait(3, 7, 2);
        w.wait(0, 2, 0);
        assert_eq!(w.release(8), vec![(0, 0), (3, 1), (3, 2)]);
    }

    #[test]
    fn take_all_fails_every_waiter_and_leaves_none() {
        let mut w = AckWaiters::default();
        w.wait(5, 9, "b");
        w.wait(0, 4, "a");
        assert_eq!(w.take_all(), vec!["a", "b"]);
        assert!(w.is_empty());
        assert_eq!(w.take_all(), Vec::<&str>::new());
        assert_eq!(w.release(10), vec![]);
    }
}
