//! Hibernation of idle groups (`raft.hibernate`; CockroachDB's quiescence, TiKV's hibernate
//! regions): the pure decisions, and the [`QuietCell`] a group shares with the ticker.
//!
//! - A leader goes quiet once it has been settled ([`LeaderView::settled`]: every replica's
//!   matched index is the last index, committed = applied = last, nothing pending) for
//!   [`Idle`]'s limit of ticks in a row (two election timeouts). It sends each replica a
//!   hibernate heartbeat (a `MsgHeartbeat` whose context is [`HIBERNATE`] and whose
//!   `index`/`log_term` name its last entry; it rides in the heartbeat frame like any heartbeat)
//!   and stops ticking.
//! - A follower goes quiet when it steps such a heartbeat and its log matches it
//!   ([`follower_may_sleep`]); otherwise it answers without the context, which wakes the leader.
//! - The ticker skips quiet groups ([`QuietCell::needs_tick`]); it still ticks one whose
//!   watched nodes ([`watched`]: the leader's node for a follower, every other replica's for a
//!   leader) went silent for an election timeout (`peer::liveness`), which wakes it. A follower
//!   woken so counts the silence toward its election timeout ([`silent_ticks`]), and the
//!   followers, woken together, campaign in turns rather than at random
//!   ([`woken_election_timeout`]), so the group elects within `[T, 2T)` of the leader node's
//!   last frame without a split vote. A leader
//!   woken so runs CheckQuorum at once, counting inactive the replicas whose node has been silent
//!   for a CheckQuorum period ([`silent_replicas`]), so it steps down within `T` of losing its
//!   quorum, as if it had never slept.
//! - Any other activity wakes a group: a Raft message, a produce, a transfer, a reassignment.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The context of a leader's hibernate heartbeat (and of the answer of a follower that slept).
pub const HIBERNATE: &[u8] = b"chronik-hibernate";
/// The context of a follower's wake call to a quiet leader (a heartbeat response), and of its
/// answer to a hibernate heartbeat it refused: either wakes the leader.
pub const WAKE: &[u8] = b"chronik-wake";

/// What the ticker knows of a group: whether it is quiet, and whose silence wakes it.
#[derive(Debug, Default)]
pub struct QuietCell {
    quiet: AtomicBool,
    watch: Mutex<Vec<u64>>,
}

impl QuietCell {
    /// The group went quiet, to be woken by the silence of any of `watch`.
    pub fn sleep(&self, watch: Vec<u64>) {
        *self.watch.lock().unwrap_or_else(|p| p.into_inner()) = watch;
        self.quiet.store(true, Ordering::Release);
    }

    /// The group woke.
    pub fn wake(&self) {
        self.quiet.store(false, Ordering::Release);
    }

    pub fn is_quiet(&self) -> bool {
        self.quiet.load(Ordering::Acquire)
    }

    /// Whether the ticker ticks the group: always when awake; when quiet only if a watched node
    /// is among the `silent` ones.
    pub fn needs_tick(&self, silent: &[u64]) -> bool {
        if !self.is_quiet() {
            return true;
        }
        !silent.is_empty() && self.watch.lock().unwrap_or_else(|p| p.into_inner()).iter().any(|n| silent.contains(n))
    }
}

/// A leader's state as the quiet decision sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LeaderView {
    pub last_index: u64,
    pub committed: u64,
    pub applied: u64,
    /// Every replica's matched index is `last_index`, none is being sent a snapshot.
    pub all_matched: bool,
    /// Anything in progress: a read, a leader transfer, a conf change not applied, writes not
    /// persisted, a Ready not handled, a produce waiting, a reassignment, a campaign retry.
    pub busy: bool,
    /// Every other replica's node was heard from lately (a leader does not sleep while one is
    /// silent: its silence would wake it at once).
    pub replicas_live: bool,
}

impl LeaderView {
    pub fn settled(&self) -> bool {
        self.all_matched
            && self.replicas_live
            && !self.busy
            && self.committed == self.last_index
            && self.applied == self.last_index
    }
}

/// Ticks in a row a leader has been settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Idle {
    ticks: u64,
    limit: u64,
}

impl Idle {
    /// Quiet after `limit` settled ticks in a row (at least 1).
    pub fn new(limit: u64) -> Self {
        Idle { ticks: 0, limit: limit.max(1) }
    }

    /// One tick: returns true when the group should go quiet now.
    pub fn tick(&mut self, settled: bool) -> bool {
        self.ticks = if settled { self.ticks + 1 } else { 0 };
        self.ticks >= self.limit
    }

    /// Activity: count again from zero.
    pub fn reset(&mut self) {
        self.ticks = 0;
    }
}

/// A follower's log as the quiet decision sees it, after stepping the hibernate heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerView {
    pub term: u64,
    pub last_index: u64,
    pub last_term: u64,
    pub committed: u64,
    /// Anything in progress on the follower (unpersisted writes, a snapshot, a campaign).
    pub busy: bool,
}

/// What the leader's hibernate heartbeat says: its term, last entry and commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Told {
    pub term: u64,
    pub index: u64,
    pub log_term: u64,
    pub commit: u64,
}

/// A follower sleeps only when its log is the leader's (same last index and term) and it knows
/// everything is committed.
pub fn follower_may_sleep(me: &FollowerView, told: &Told) -> bool {
    !me.busy
        && me.term == told.term
        && me.last_index == told.index
        && me.last_term == told.log_term
        && told.commit == told.index
        && me.committed == told.index
}

/// The nodes whose silence wakes a quiet replica: a follower watches its leader, a leader every
/// other replica.
pub fn watched(me: u64, leader: u64, replicas: &[u64]) -> Vec<u64> {
    if leader == me {
        replicas.iter().copied().filter(|r| *r != me).collect()
    } else {
        vec![leader]
    }
}

/// How a replica of a group that never had a leader (empty log, term 0) starts, with
/// hibernation on: the preferred replica (the first of `voters`) starts awake and campaigns at
/// once; every other voter starts quiet, watching the preferred replica's node, so it neither
/// ticks nor campaigns of its own and is woken by the preferred replica's (pre-)vote request
/// (any Raft message wakes a quiet group). Returns the nodes a starting replica watches
/// asleep, `None` when it starts awake. So each new group's first election is the preferred
/// replica's, among replicas that run (a vote comes only from a started replica), and thousands
/// of new groups do not all tick at once. Should the preferred node go silent, its watchers are
/// woken by its silence and elect one of them, as after a leader's loss.
pub fn starts_quiet(me: u64, voters: &[u64], never_led: bool, joining: bool) -> Option<Vec<u64>> {
    let preferred = *voters.first()?;
    (never_led && !joining && preferred != me && voters.len() > 1 && voters.contains(&me)).then(|| vec![preferred])
}

/// Settled ticks in a row before a leader goes quiet: two election timeouts, but only two
/// heartbeat intervals for the first leader of a new group (its log holds nothing but the
/// leader's empty entry, so there is no traffic to wait out), so that the leaders of thousands
/// of groups created at once sleep as soon as their followers have the entry.
pub fn idle_limit(first_leader: bool, heartbeat_tick: usize, election_tick: usize) -> u64 {
    if first_leader {
        (2 * heartbeat_tick).max(1) as u64
    } else {
        (2 * election_tick).max(1) as u64
    }
}

/// The replicas a leader woken by its replicas' silence counts as inactive in the quorum check it
/// runs at once (`RaftCore::check_quorum_now`): the others (`me` excluded) whose node has been
/// silent for at least `period`, the leader's CheckQuorum period ([`check_period`]),
/// as an awake leader counts a replica it has not heard from in a period. The wake comes when the
/// first watched node has been silent for an election timeout; a node cut off at the same moment
/// may have sent its last frame up to a heartbeat interval later, and counting it active until
/// it too had been silent for a whole election timeout (as this once did) let the check pass,
/// and the next one came a period later: 1.5 × T after the cut instead of T. With `period`, a
/// leader steps down within T (plus a tick) of losing its quorum, asleep or awake: a replica
/// silent for less than a period at the wake is counted active, and the next check, a period
/// later, finds it silent if it was lost since.
pub fn silent_replicas(me: u64, replicas: &[u64], period: Duration, silent_for: impl Fn(u64) -> Duration) -> Vec<u64> {
    replicas.iter().copied().filter(|r| *r != me && silent_for(*r) >= period).collect()
}

/// How long a replica's node must have been silent for a leader woken by its replicas' silence to
/// count it inactive ([`silent_replicas`]): the leader's CheckQuorum period,
/// `raft::quorum_check_tick` ticks.
pub fn check_period(tick: Duration, heartbeat_tick: usize, election_tick: usize) -> Duration {
    tick.saturating_mul(crate::raft::quorum_check_tick(election_tick, heartbeat_tick) as u32)
}

/// The election ticks a follower woken by its leader node's silence counts as already elapsed:
/// that silence, in whole ticks.
pub fn silent_ticks(silence: Duration, tick: Duration) -> usize {
    if tick.is_zero() {
        return 0;
    }
    (silence.as_nanos() / tick.as_nanos()) as usize
}

/// The election timeout, in ticks within raft-rs's `[T, 2T)`, of a follower woken by its leader
/// node's silence. Every follower of the group is woken by that same silence at about the same
/// moment, and with raft-rs's own random timeouts two of them could campaign within a message's
/// flight of each other: a split vote, and another timeout before the next try, so more than
/// 2 T after the leader's loss. Instead the voters other than the lost leader take turns:
/// ordered from the one after the leader (so the leadership a lost node held spreads over the
/// rest), the `k`-th of `n` campaigns in the first half of its slot
/// `[T + k·T/n, T + (k+1)·T/n)`, so two followers' campaigns are at least half a slot apart
/// (T/4 with three voters). The first that is alive wins within its slot, and the others
/// vote for it; should it be gone too, the next one's turn comes. `None` for a replica that
/// is not a voter, or when the leader is not known.
pub fn woken_election_timeout(
    me: u64,
    leader: u64,
    voters: &[u64],
    election_tick: usize,
    rng: &mut dyn crate::clock::RandomSource,
) -> Option<usize> {
    if leader == 0 || election_tick == 0 {
        return None;
    }
    let mut ring: Vec<u64> = voters.iter().copied().filter(|v| *v != leader).collect();
    ring.sort_unstable();
    // From the first voter after the leader's id, wrapping around.
    let after = ring.iter().position(|v| *v > leader).unwrap_or(0);
    ring.rotate_left(after);
    let rank = ring.iter().position(|v| *v == me)?;
    let slot = (election_tick / ring.len()).max(1);
    let start = election_tick + rank * slot;
    let jitter = rng.range(0, (slot / 2).max(1) as u64) as usize;
    Some((start + jitter).min(2 * election_tick - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settled() -> LeaderView {
        LeaderView { last_index: 9, committed: 9, applied: 9, all_matched: true, busy: false, replicas_live: true }
    }

    #[test]
    fn a_leader_sleeps_only_when_everything_is_settled() {
        assert!(settled().settled());
        assert!(!LeaderView { all_matched: false, ..settled() }.settled(), "a follower behind");
        assert!(!LeaderView { committed: 8, ..settled() }.settled(), "an entry not committed");
        assert!(!LeaderView { applied: 8, ..settled() }.settled(), "an entry not applied");
        assert!(!LeaderView { busy: true, ..settled() }.settled(), "a pending read/transfer/conf change");
        assert!(!LeaderView { replicas_live: false, ..settled() }.settled(), "a replica's node silent");
    }

    #[test]
    fn a_leader_sleeps_after_the_idle_limit_of_settled_ticks_in_a_row() {
        let mut idle = Idle::new(3);
        assert!(!idle.tick(true));
        assert!(!idle.tick(true));
        assert!(!idle.tick(false), "activity counts again from zero");
        assert!(!idle.tick(true));
        assert!(!idle.tick(true));
        assert!(idle.tick(true));
        idle.reset();
        assert!(!idle.tick(true));
        assert!(Idle::new(0).tick(true), "a limit of 0 is 1");
    }

    #[test]
    fn a_follower_sleeps_only_with_the_leaders_log() {
        let told = Told { term: 4, index: 20, log_term: 4, commit: 20 };
        let me = FollowerView { term: 4, last_index: 20, last_term: 4, committed: 20, busy: false };
        assert!(follower_may_sleep(&me, &told));
        assert!(!follower_may_sleep(&FollowerView { last_index: 19, ..me }, &told), "shorter log");
        assert!(!follower_may_sleep(&FollowerView { last_index: 21, ..me }, &told), "longer log");
        assert!(!follower_may_sleep(&FollowerView { last_term: 3, ..me }, &told), "other last term");
        assert!(!follower_may_sleep(&FollowerView { term: 5, ..me }, &told), "another term");
        assert!(!follower_may_sleep(&FollowerView { committed: 19, ..me }, &told), "commit not known");
        assert!(!follower_may_sleep(&FollowerView { busy: true, ..me }, &told), "busy");
        assert!(!follower_may_sleep(&me, &Told { commit: 19, ..told }), "leader not committed");
    }

    #[test]
    fn the_ticker_skips_a_quiet_group_until_a_watched_node_is_silent() {
        let cell = QuietCell::default();
        assert!(cell.needs_tick(&[]), "awake: always ticked");
        cell.sleep(watched(1, 2, &[1, 2, 3]));
        assert!(cell.is_quiet());
        assert!(!cell.needs_tick(&[]));
        assert!(!cell.needs_tick(&[3]), "a follower ignores another follower's silence");
        assert!(cell.needs_tick(&[2]), "its leader's node is silent");
        cell.sleep(watched(1, 1, &[1, 2, 3]));
        assert!(cell.needs_tick(&[3]), "a leader wakes when any replica's node is silent");
        cell.wake();
        assert!(cell.needs_tick(&[]));
    }

    #[test]
    fn only_the_preferred_replica_of_a_new_group_starts_awake() {
        let voters = [2, 1, 3];
        assert_eq!(starts_quiet(2, &voters, true, false), None, "the preferred replica campaigns");
        assert_eq!(starts_quiet(1, &voters, true, false), Some(vec![2]), "watches the preferred node");
        assert_eq!(starts_quiet(3, &voters, true, false), Some(vec![2]));
        assert_eq!(starts_quiet(1, &voters, false, false), None, "a group that had a leader starts awake");
        assert_eq!(starts_quiet(1, &voters, true, true), None, "a replica joining a running group");
        assert_eq!(starts_quiet(1, &[1], true, false), None, "a single voter");
        assert_eq!(starts_quiet(4, &voters, true, false), None, "not a voter");
        assert_eq!(starts_quiet(1, &[], true, false), None);
    }

    #[test]
    fn a_new_groups_first_leader_sleeps_after_two_heartbeats() {
        assert_eq!(idle_limit(true, 3, 60), 6);
        assert_eq!(idle_limit(false, 3, 60), 120);
        assert_eq!(idle_limit(true, 0, 0), 1);
    }

    #[test]
    fn a_woken_leader_counts_replicas_silent_for_a_check_period_inactive() {
        let ms = Duration::from_millis;
        let silence = |r: u64| match r {
            1 => ms(10_000),
            2 => ms(3_000),
            3 => ms(2_860),
            _ => ms(100),
        };
        assert_eq!(silent_replicas(1, &[1, 2, 3, 4], ms(1_500), silence), vec![2, 3], "never itself");
        assert_eq!(silent_replicas(1, &[1, 2, 3, 4], ms(2_900), silence), vec![2]);
        assert_eq!(silent_replicas(4, &[4], ms(1_500), silence), Vec::<u64>::new());
        assert_eq!(check_period(ms(50), 3, 60), ms(1_500), "half the election timeout");
        assert_eq!(check_period(ms(50), 3, 5), ms(200), "more than a heartbeat interval");
    }

    #[test]
    fn a_follower_counts_its_leaders_silence_in_whole_ticks() {
        let ms = Duration::from_millis;
        assert_eq!(silent_ticks(ms(3020), ms(50)), 60);
        assert_eq!(silent_ticks(ms(49), ms(50)), 0);
        assert_eq!(silent_ticks(ms(100), Duration::ZERO), 0);
    }

    #[test]
    fn woken_followers_take_turns_from_the_one_after_the_lost_leader() {
        use crate::clock::SeededRandom;
        let mut rng = SeededRandom::new(7);
        for _ in 0..200 {
            // Three voters, leader 3 gone: 1 then 2, in [50, 62) and [75, 87).
            let a = woken_election_timeout(1, 3, &[3, 1, 2], 50, &mut rng).unwrap();
            let b = woken_election_timeout(2, 3, &[3, 1, 2], 50, &mut rng).unwrap();
            assert!((50..62).contains(&a), "{a}");
            assert!((75..87).contains(&b), "{b}");
            // Leader 1 gone: 2 then 3; leader 2 gone: 3 then 1.
            assert!((50..62).contains(&woken_election_timeout(2, 1, &[1, 2, 3], 50, &mut rng).unwrap()));
            assert!((75..87).contains(&woken_election_timeout(3, 1, &[1, 2, 3], 50, &mut rng).unwrap()));
            assert!((50..62).contains(&woken_election_timeout(3, 2, &[1, 2, 3], 50, &mut rng).unwrap()));
            assert!((75..87).contains(&woken_election_timeout(1, 2, &[1, 2, 3], 50, &mut rng).unwrap()));
            // Five voters: four slots of 15 ticks in [60, 120), always within raft-rs's range.
            for (k, me) in [3u64, 4, 5, 1].into_iter().enumerate() {
                let t = woken_election_timeout(me, 2, &[1, 2, 3, 4, 5], 60, &mut rng).unwrap();
                assert!((60 + 15 * k..60 + 15 * k + 7).contains(&t), "voter {me}: {t}");
            }
            let t = woken_election_timeout(1, 2, &[1, 2], 3, &mut rng).unwrap();
            assert!((3..6).contains(&t), "{t}");
        }
        assert_eq!(woken_election_timeout(4, 3, &[1, 2, 3], 50, &mut rng), None, "not a voter");
        assert_eq!(woken_election_timeout(1, 0, &[1, 2, 3], 50, &mut rng), None, "no leader known");
    }
}
