//! Node-level liveness for hibernation (`raft.hibernate`): when this node last heard from each
//! peer node, and how many of its groups are quiet.
//!
//! Every frame a peer sends counts (the listener calls [`Liveness::heard`] for each accepted
//! frame). With hibernation on, a peer link that sent nothing for a heartbeat interval sends a
//! frame on the heartbeat tick's beat anyway (the node beat, `peer::actor`), so a live node is
//! heard at least once per heartbeat interval whatever its groups do. The ticker asks [`Liveness::silent`]
//! which peers were not heard from for an election timeout, and wakes the quiet groups that
//! depend on them (`raft::hibernate`); a woken follower counts that silence toward its election
//! timeout ([`Liveness::silent_for`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What one node knows of its peers' liveness, shared by its listener, ticker and groups.
#[derive(Debug)]
pub struct Liveness {
    /// `raft.hibernate`: groups may go quiet, links send the node beat.
    enabled: bool,
    /// When this node started: a peer never heard from counts as silent since then.
    start: Instant,
    heard: Mutex<HashMap<u64, Instant>>,
    /// The peer nodes watched: the seeds and every member learned since (`Transport::learn`).
    watched: Mutex<std::collections::BTreeSet<u64>>,
    /// Quiet groups on this node (`chronik_hibernating_groups`).
    quiet: std::sync::Arc<AtomicU64>,
    /// Ticks the ticker delivered to groups (`chronik_group_ticks_total`).
    ticked: std::sync::Arc<AtomicU64>,
    /// The number of the ticker's latest tick (`raft::ticker::TickGate`).
    latest_tick: AtomicU64,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness::new(false, Instant::now())
    }
}

impl Liveness {
    pub fn new(enabled: bool, start: Instant) -> Self {
        Liveness {
            enabled,
            start,
            heard: Mutex::new(HashMap::new()),
            watched: Mutex::default(),
            quiet: Default::default(),
            ticked: Default::default(),
            latest_tick: AtomicU64::new(0),
        }
    }

    /// True when hibernation is on.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// A frame from `node` arrived at `now`.
    pub fn heard(&self, node: u64, now: Instant) {
        self.heard.lock().unwrap_or_else(|p| p.into_inner()).insert(node, now);
    }

    /// How long `node` has been silent at `now` (since this node started if never heard).
    pub fn silent_for(&self, node: u64, now: Instant) -> Duration {
        let last = self.heard.lock().unwrap_or_else(|p| p.into_inner()).get(&node).copied();
        now.saturating_duration_since(last.unwrap_or(self.start))
    }

    /// Watches `node` from now on (a peer link was started for it).
    pub fn watch(&self, node: u64) {
        self.watched.lock().unwrap_or_else(|p| p.into_inner()).insert(node);
    }

    /// Of the watched peers, those silent for at least `timeout` at `now`.
    pub fn silent_watched(&self, timeout: Duration, now: Instant) -> Vec<u64> {
        let peers: Vec<u64> = self.watched.lock().unwrap_or_else(|p| p.into_inner()).iter().copied().collect();
        self.silent(&peers, timeout, now)
    }

    /// Of `peers`, those silent for at least `timeout` at `now`.
    pub fn silent(&self, peers: &[u64], timeout: Duration, now: Instant) -> Vec<u64> {
        peers.iter().copied().filter(|p| self.silent_for(*p, now) >= timeout).collect()
    }

    /// The quiet-group counter (the groups add and subtract; the metric reads it).
    pub fn quiet_counter(&self) -> std::sync::Arc<AtomicU64> {
        self.quiet.clone()
    }

    /// The ticker issues tick `n`.
    pub fn set_latest_tick(&self, n: u64) {
        self.latest_tick.store(n, std::sync::atomic::Ordering::Release);
    }

    /// The number of the ticker's latest tick (0: none yet).
    pub fn latest_tick(&self) -> u64 {
        self.latest_tick.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The counter of ticks delivered to groups.
    pub fn ticked(&self) -> &std::sync::Arc<AtomicU64> {
        &self.ticked
    }

    /// A group went quiet (`true`) or woke (`false`).
    pub fn count_quiet(&self, quiet: bool) {
        if quiet {
            self.quiet.fetch_add(1, Ordering::Relaxed);
        } else {
            let _ = self.quiet.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
    }

    /// Quiet groups now.
    pub fn quiet_groups(&self) -> u64 {
        self.quiet.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_is_counted_from_the_last_frame_or_the_start() {
        let t0 = Instant::now();
        let l = Liveness::new(true, t0);
        let s = Duration::from_secs;
        assert_eq!(l.silent_for(2, t0 + s(4)), s(4), "never heard: silent since the start");
        l.heard(2, t0 + s(3));
        assert_eq!(l.silent_for(2, t0 + s(4)), s(1));
        assert_eq!(l.silent(&[2, 3], s(3), t0 + s(4)), vec![3]);
        assert_eq!(l.silent(&[2, 3], s(3), t0 + s(6)), vec![2, 3]);
        l.count_quiet(true);
        l.count_quiet(true);
        l.count_quiet(false);
        assert_eq!(l.quiet_groups(), 1);
        l.count_quiet(false);
        l.count_quiet(false);
        assert_eq!(l.quiet_groups(), 0, "never below zero");
    }
}
