//! The poller threads: the actix arbiters that run the partition groups of a node.
//!
//! A node starts `raft.threads` pollers (default: one per available core). Every partition group
//! runs on the poller [`shard`] picks for its group id, for its whole life: its ticks, Ready
//! handling and message handlers run there, and many groups share one poller. Groups on other
//! pollers never wait for it, so the groups of a node use several cores. [`Pollers::start`] is
//! the one place a partition actor is started. Work that reads a whole log runs on tokio's
//! blocking pool and reports back by message, so a poller only does short, in-memory steps.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix::dev::ArbiterHandle;
use actix::prelude::*;

use crate::raft::GroupId;

/// The poller a group runs on, of `pollers`: its group id modulo the count. Group ids are
/// handed out in sequence by `__meta` (a topic's partitions get consecutive ids), so the groups
/// of a topic, and of all topics together, spread evenly; a group's id never changes, so it
/// always lands on the same poller.
pub fn shard(group: GroupId, pollers: usize) -> usize {
    (group % pollers.max(1) as u64) as usize
}

/// How many of `groups` run on each of `pollers` pollers.
pub fn per_poller<'a>(groups: impl Iterator<Item = &'a GroupId>, pollers: usize) -> Vec<u64> {
    let mut counts = vec![0u64; pollers.max(1)];
    for g in groups {
        counts[shard(*g, pollers)] += 1;
    }
    counts
}

/// The node's poller threads (the arbiters themselves are owned by the node handle, which stops
/// and joins them).
#[derive(Clone)]
pub struct Pollers {
    handles: Vec<ArbiterHandle>,
    /// Groups running on each poller (`chronik_poller_groups`).
    groups: Arc<Vec<AtomicU64>>,
}

impl Pollers {
    /// Starts `n` (at least 1) poller arbiters; returns them with the arbiters to keep.
    pub fn new(n: usize) -> (Pollers, Vec<Arbiter>) {
        let arbiters: Vec<Arbiter> =
            (0..n.max(1)).map(|_| crate::log::priority::named_arbiter("chronik-poller")).collect();
        let handles = arbiters.iter().map(Arbiter::handle).collect();
        let groups = Arc::new((0..arbiters.len()).map(|_| AtomicU64::new(0)).collect());
        (Pollers { handles, groups }, arbiters)
    }

    /// How many pollers there are.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Always false: there is at least one poller.
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// The poller that runs `group`.
    pub fn handle_of(&self, group: GroupId) -> &ArbiterHandle {
        &self.handles[shard(group, self.len())]
    }

    /// Starts `actor` (group `group`) on its poller.
    pub fn start<A>(&self, group: GroupId, actor: A) -> Addr<A>
    where
        A: Actor<Context = Context<A>> + Send,
    {
        A::start_in_arbiter(self.handle_of(group), move |_| actor)
    }

    /// Records how many of `groups` run on each poller (for the metrics).
    pub fn count<'a>(&self, groups: impl Iterator<Item = &'a GroupId>) {
        for (c, n) in self.groups.iter().zip(per_poller(groups, self.len())) {
            c.store(n, Ordering::Relaxed);
        }
    }

    /// The groups on each poller, as last counted.
    pub fn groups(&self) -> Vec<u64> {
        self.groups.iter().map(|c| c.load(Ordering::Relaxed)).collect()
    }

    /// The shared per-poller counters (the metrics registry reads them when it renders).
    pub fn counters(&self) -> Arc<Vec<AtomicU64>> {
        self.groups.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_always_lands_on_the_same_poller() {
        for g in 0..1000u64 {
            assert_eq!(shard(g, 4), shard(g, 4));
            assert!(shard(g, 4) < 4);
        }
        assert_eq!(shard(7, 1), 0);
        // A count of 0 is treated as 1 rather than dividing by zero.
        assert_eq!(shard(7, 0), 0);
    }

    #[test]
    fn consecutive_groups_spread_evenly() {
        for pollers in [1usize, 2, 3, 8] {
            for (first, count) in [(1u64, 6u64), (1, 96), (40, 1000), (3, 7)] {
                let mut per = vec![0u64; pollers];
                for g in first..first + count {
                    per[shard(g, pollers)] += 1;
                }
                let (lo, hi) = (per.iter().min().unwrap(), per.iter().max().unwrap());
                assert!(hi - lo <= 1, "{pollers} pollers, groups {first}..+{count}: {per:?}");
                assert_eq!(per.iter().sum::<u64>(), count);
            }
        }
    }

    #[test]
    fn counts_follow_the_shard() {
        // 3 → 0; 1, 4, 7 → 1; 2 → 2.
        assert_eq!(per_poller([1u64, 2, 3, 4, 7].iter(), 3), vec![1, 3, 1]);
        assert_eq!(per_poller([].iter(), 2), vec![0, 0]);
    }
}
