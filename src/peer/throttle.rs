//! Kafka's replication throttles on the Raft links: the node-wide quotas and the decision of
//! which replication traffic they hold back.
//!
//! Kafka throttles the replication of listed replicas (the topic configs
//! `leader.replication.throttled.replicas` / `follower.replication.throttled.replicas`, as
//! `partition:broker` pairs or `*`) to the broker rates `leader.replication.throttled.rate` /
//! `follower.replication.throttled.rate` (bytes per second, measured over Kafka's replication
//! quota window: 11 samples of 1 s), and only while the replica is out of sync: a caught-up
//! replica is never slowed. `kafka-reassign-partitions.sh --throttle` sets all four so that a
//! move does not starve produce traffic.
//!
//! Here the leader pushes appends, so the same rules apply where the bytes leave and arrive:
//! - **Leader side**: an append of a leader-throttled group that carries entries the leader has
//!   already committed without this follower (its last entry more than
//!   [`CATCH_UP_GAP`](crate::raft::membership::CATCH_UP_GAP) entries below the leader's commit
//!   index: the follower is catching up, Kafka's "not in sync") waits in the peer link while the
//!   leader quota is exceeded; what leaves is recorded against it.
//! - **Follower side**: the bytes of catch-up appends that a follower-throttled group receives
//!   are recorded against the follower quota; while it is exceeded, that group's append responses
//!   wait in the peer link, and the leader (whose in-flight window fills) sends no more.
//!
//! Snapshot chunks (`partition::snapshot`, a follower whose position the leader's log no longer
//! holds, always out of sync) of a leader-throttled group count against the leader quota too
//! ([`ReplicationThrottle::admit_chunk`]), but are never held: while the quota is exceeded the
//! link sends an empty "throttled" answer instead of the chunk, and the receiver asks for the
//! same chunk again after a few heartbeats. The answer resets the receiver's patience (it gives
//! up only after two election timeouts without any answer), so pacing never restarts a
//! transfer, and no copy of a chunk waits in a link.
//!
//! Holding a message is a network delay to Raft: nothing is lost or reordered within a group
//! (once a group has something held on a side, its later messages of that kind queue behind).
//! Heartbeats and votes are never held, so a throttled follower never looks dead.
//!
//! [`ReplicationThrottle`] is the shared state (rates, throttled groups, the quotas' samples);
//! [`Gate`] is one peer link's held messages. Both take the time as an argument.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use raft::eraftpb::{Message, MessageType};

use crate::raft::membership::CATCH_UP_GAP;
use crate::raft::GroupId;

/// Kafka's `replication.quota.window.num`: samples kept.
pub const SAMPLES: u32 = 11;
/// Kafka's `replication.quota.window.size.seconds`: the length of one sample.
pub const SAMPLE: Duration = Duration::from_secs(1);
/// The longest a held message waits before the quota is looked at again.
const MAX_WAIT: Duration = Duration::from_secs(1);
/// The shortest wait (a timer per message would cost more than it saves).
const MIN_WAIT: Duration = Duration::from_millis(10);

/// Kafka's sampled rate (`SampledStat` + `Rate`): bytes per second over the last [`SAMPLES`]
/// samples of [`SAMPLE`] each, divided by at least `SAMPLES - 1` sample lengths, so a fresh
/// quota lets about ten seconds' worth through before it holds anything, as Kafka's does.
#[derive(Debug, Default, Clone)]
pub struct Rate {
    /// (start of the sample, bytes recorded in it), oldest first.
    samples: VecDeque<(Instant, u64)>,
}

impl Rate {
    fn purge(&mut self, now: Instant) {
        let keep = SAMPLE * SAMPLES;
        while self.samples.front().is_some_and(|(start, _)| now.saturating_duration_since(*start) >= keep) {
            self.samples.pop_front();
        }
    }

    /// Records `bytes` at `now`.
    pub fn record(&mut self, bytes: u64, now: Instant) {
        self.purge(now);
        match self.samples.back_mut() {
            Some((start, total)) if now.saturating_duration_since(*start) < SAMPLE => *total += bytes,
            _ => self.samples.push_back((now, bytes)),
        }
    }

    fn total(&self) -> u64 {
        self.samples.iter().map(|(_, b)| b).sum()
    }

    /// The time the rate is measured over (Kafka's `Rate.windowSize`).
    fn window(&self, now: Instant) -> Duration {
        let elapsed = self.samples.front().map_or(Duration::ZERO, |(start, _)| now.saturating_duration_since(*start));
        let full = (elapsed.as_nanos() / SAMPLE.as_nanos()) as u32;
        match (SAMPLES - 1).checked_sub(full) {
            Some(missing) if missing > 0 => elapsed + SAMPLE * missing,
            _ => elapsed,
        }
    }

    /// Bytes per second at `now`.
    pub fn measure(&mut self, now: Instant) -> f64 {
        self.purge(now);
        self.total() as f64 / self.window(now).as_secs_f64()
    }
}

/// One side's quota: a limit in bytes per second (`None`: Kafka's default, `Long.MAX_VALUE`, no
/// throttle) and its measured rate.
#[derive(Debug, Default, Clone)]
pub struct Quota {
    limit: Option<u64>,
    rate: Rate,
}

impl Quota {
    /// Whether the measured rate is above the limit (Kafka's `isQuotaExceeded`).
    pub fn exceeded(&mut self, now: Instant) -> bool {
        self.limit.is_some_and(|l| self.rate.measure(now) > l as f64)
    }

    pub fn record(&mut self, bytes: u64, now: Instant) {
        if self.limit.is_some() {
            self.rate.record(bytes, now);
        }
    }

    /// How long until the rate falls back to the limit if nothing more is recorded.
    pub fn wait(&mut self, now: Instant) -> Duration {
        let Some(limit) = self.limit.filter(|l| *l > 0) else { return MAX_WAIT };
        self.rate.purge(now);
        let needed = Duration::from_secs_f64(self.rate.total() as f64 / limit as f64);
        needed.saturating_sub(self.rate.window(now)).clamp(MIN_WAIT, MAX_WAIT)
    }
}

/// What the node's `__meta` image says about throttles on this node.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// `leader.replication.throttled.rate` of this broker (None: unlimited).
    pub leader_rate: Option<u64>,
    /// `follower.replication.throttled.rate` of this broker (None: unlimited).
    pub follower_rate: Option<u64>,
    /// Groups whose `leader.replication.throttled.replicas` names this node.
    pub leader_groups: HashSet<GroupId>,
    /// Groups whose `follower.replication.throttled.replicas` names this node.
    pub follower_groups: HashSet<GroupId>,
}

/// Which quota a held message waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Leader,
    Follower,
}

#[derive(Debug, Default)]
struct Inner {
    config: ThrottleConfig,
    leader: Quota,
    follower: Quota,
    /// Follower-throttled groups whose last append received was catch-up traffic.
    catching_up: HashSet<GroupId>,
    /// Bytes recorded against each quota since start (the metric).
    throttled_bytes: HashMap<Side, u64>,
}

/// The node-wide throttle state, shared by the peer links (leader side) and the router
/// (follower side, as bytes arrive).
#[derive(Debug, Default)]
pub struct ReplicationThrottle {
    /// Some quota is limited and some group is listed: the fast path checks only this.
    active: AtomicBool,
    inner: Mutex<Inner>,
}

/// True when an append carries entries the leader committed without its receiver: the receiver
/// is catching up (out of sync, in Kafka's words).
pub fn is_catch_up(m: &Message) -> bool {
    m.get_msg_type() == MessageType::MsgAppend
        && m.get_entries().last().is_some_and(|e| e.index.saturating_add(CATCH_UP_GAP) < m.commit)
}

/// Bytes of entry data a message carries.
fn entry_bytes(m: &Message) -> u64 {
    m.get_entries().iter().map(|e| (e.get_data().len() + e.get_context().len()) as u64).sum()
}

impl ReplicationThrottle {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a new configuration (from a `__meta` image); the measured rates carry over.
    pub fn configure(&self, config: ThrottleConfig) {
        let mut i = self.lock();
        if i.config == config {
            return;
        }
        let active = (config.leader_rate.is_some() && !config.leader_groups.is_empty())
            || (config.follower_rate.is_some() && !config.follower_groups.is_empty());
        i.leader.limit = config.leader_rate;
        i.follower.limit = config.follower_rate;
        i.catching_up.retain(|g| config.follower_groups.contains(g));
        i.config = config;
        self.active.store(active, Ordering::Release);
    }

    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// Bytes counted against the leader and the follower quota so far.
    pub fn throttled_bytes(&self) -> (u64, u64) {
        let i = self.lock();
        let get = |s| i.throttled_bytes.get(&s).copied().unwrap_or(0);
        (get(Side::Leader), get(Side::Follower))
    }

    /// The follower side sees a Raft message of `group` arrive: the bytes of a catch-up append
    /// count against the follower quota, and whether the group is catching up is noted.
    pub fn received(&self, group: GroupId, m: &Message, now: Instant) {
        if !self.is_active() || m.get_msg_type() != MessageType::MsgAppend || m.get_entries().is_empty() {
            return;
        }
        let mut i = self.lock();
        if i.config.follower_rate.is_none() || !i.config.follower_groups.contains(&group) {
            return;
        }
        if is_catch_up(m) {
            i.catching_up.insert(group);
            let bytes = entry_bytes(m);
            i.follower.record(bytes, now);
            *i.throttled_bytes.entry(Side::Follower).or_default() += bytes;
        } else {
            i.catching_up.remove(&group);
        }
    }

    /// Whether a snapshot chunk of `bytes` of `group` may leave now (recorded against the leader
    /// quota if so); `Err` is how long the quota stays exceeded. Only leader-throttled groups.
    pub fn admit_chunk(&self, group: GroupId, bytes: u64, now: Instant) -> Result<(), Duration> {
        if !self.is_active() {
            return Ok(());
        }
        {
            let i = self.lock();
            if i.config.leader_rate.is_none() || !i.config.leader_groups.contains(&group) {
                return Ok(());
            }
        }
        self.admit(Side::Leader, bytes, now)
    }

    /// Which quota an outgoing Raft message of `group` waits for, if any. `behind` says whether
    /// the link already holds messages of the group on a side: its later appends (responses)
    /// queue behind them whatever the configuration says now, so their order is kept.
    fn classify(&self, group: GroupId, m: &Message, behind: impl Fn(Side) -> bool) -> Option<Side> {
        let i = self.lock();
        match m.get_msg_type() {
            MessageType::MsgAppend if !m.get_entries().is_empty() => (behind(Side::Leader)
                || (i.config.leader_rate.is_some() && i.config.leader_groups.contains(&group) && is_catch_up(m)))
            .then_some(Side::Leader),
            MessageType::MsgAppendResponse => (behind(Side::Follower)
                || (i.config.follower_rate.is_some()
                    && i.config.follower_groups.contains(&group)
                    && i.catching_up.contains(&group)))
            .then_some(Side::Follower),
            _ => None,
        }
    }

    /// Whether `side`'s quota lets the next message go; if so, its `bytes` are recorded (the
    /// leader side records what it sends; the follower side recorded on arrival).
    fn admit(&self, side: Side, bytes: u64, now: Instant) -> Result<(), Duration> {
        let mut i = self.lock();
        let q = match side {
            Side::Leader => &mut i.leader,
            Side::Follower => &mut i.follower,
        };
        if q.exceeded(now) {
            return Err(q.wait(now));
        }
        if side == Side::Leader {
            q.record(bytes, now);
            *i.throttled_bytes.entry(Side::Leader).or_default() += bytes;
        }
        Ok(())
    }
}

/// A message a link holds for a quota.
#[derive(Debug)]
struct Held(GroupId, Message);

impl Held {
    fn group(&self) -> GroupId {
        self.0
    }

    fn bytes(&self) -> u64 {
        entry_bytes(&self.1)
    }
}

/// Whether `h` is an append of `group` starting at the same index with the same last entry.
fn same_append(h: &Held, group: GroupId, m: &Message) -> bool {
    let last = |m: &Message| m.get_entries().last().map(|e| e.index);
    let Held(g, x) = h;
    *g == group && x.index == m.index && x.log_term == m.log_term && last(x) == last(m)
}

/// One peer link's held messages, a queue per side (the quotas are independent).
#[derive(Debug, Default)]
pub struct Gate {
    leader: VecDeque<Held>,
    follower: VecDeque<Held>,
    /// Messages held per (group, side).
    per_group: HashMap<(GroupId, Side), usize>,
    /// Entry and chunk bytes held.
    bytes: u64,
}

/// What [`Gate::admit`] does with a message.
#[derive(Debug)]
pub enum Admit<T> {
    /// Not throttled: send it now.
    Send(T),
    /// Held for its quota.
    Held,
    /// The link holds too much already: dropped.
    Dropped,
}

impl<T> Admit<T> {
    #[cfg(test)]
    fn sent(self) -> Option<T> {
        match self {
            Admit::Send(m) => Some(m),
            _ => None,
        }
    }
}

/// What [`Gate::release`] lets go, and when to look again.
#[derive(Debug, Default)]
pub struct Released {
    pub raft: Vec<(GroupId, Message)>,
    /// Something is still held: release again after this long.
    pub again: Option<Duration>,
}

impl Gate {
    /// Whether anything is held.
    pub fn is_empty(&self) -> bool {
        self.leader.is_empty() && self.follower.is_empty()
    }

    /// Bytes held.
    pub fn held_bytes(&self) -> u64 {
        self.bytes
    }

    fn hold(&mut self, side: Side, h: Held) {
        *self.per_group.entry((h.group(), side)).or_default() += 1;
        self.bytes += h.bytes();
        match side {
            Side::Leader => self.leader.push_back(h),
            Side::Follower => self.follower.push_back(h),
        }
    }

    /// Takes a Raft message of `group` for the link: to send now, held (call
    /// [`Gate::release`]), or dropped because the link holds `max_bytes` already (Raft resends).
    pub fn admit(&mut self, t: &ReplicationThrottle, group: GroupId, m: Message, max_bytes: u64) -> Admit<Message> {
        if !t.is_active() && self.is_empty() {
            return Admit::Send(m);
        }
        match t.classify(group, &m, |side| self.per_group.contains_key(&(group, side))) {
            Some(_) if self.bytes + entry_bytes(&m) > max_bytes => Admit::Dropped,
            // A probe is re-sent on every heartbeat response while the first copy waits here:
            // a copy of a held append would only spend the quota twice.
            Some(Side::Leader) if self.leader.iter().any(|h| same_append(h, group, &m)) => Admit::Dropped,
            Some(side) => {
                self.hold(side, Held(group, m));
                Admit::Held
            }
            None => Admit::Send(m),
        }
    }

    /// Lets go, oldest first on each side, what the quotas allow at `now`.
    pub fn release(&mut self, t: &ReplicationThrottle, now: Instant) -> Released {
        let mut out = Released::default();
        for side in [Side::Leader, Side::Follower] {
            loop {
                let queue = match side {
                    Side::Leader => &mut self.leader,
                    Side::Follower => &mut self.follower,
                };
                let Some(front) = queue.front() else { break };
                // A throttle switched off (rate removed) lets everything go at once.
                let limited = match side {
                    Side::Leader => t.lock().config.leader_rate.is_some(),
                    Side::Follower => t.lock().config.follower_rate.is_some(),
                };
                if limited {
                    if let Err(wait) = t.admit(side, front.bytes(), now) {
                        out.again = Some(out.again.map_or(wait, |w: Duration| w.min(wait)));
                        break;
                    }
                }
                let h = queue.pop_front().expect("front");
                let key = (h.group(), side);
                if let Some(n) = self.per_group.get_mut(&key) {
                    *n -= 1;
                    if *n == 0 {
                        self.per_group.remove(&key);
                    }
                }
                self.bytes = self.bytes.saturating_sub(h.bytes());
                out.raft.push((h.0, h.1));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::eraftpb::Entry;

    const MAX: u64 = u64::MAX;

    fn append(group_commit: u64, last: u64, bytes: usize) -> Message {
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgAppend);
        m.commit = group_commit;
        let e = Entry { index: last, data: vec![0u8; bytes].into(), ..Default::default() };
        m.set_entries(vec![e].into());
        m
    }

    fn response() -> Message {
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgAppendResponse);
        m
    }

    fn throttle(leader: Option<u64>, follower: Option<u64>, groups: &[GroupId]) -> ReplicationThrottle {
        let t = ReplicationThrottle::default();
        t.configure(ThrottleConfig {
            leader_rate: leader,
            follower_rate: follower,
            leader_groups: groups.iter().copied().collect(),
            follower_groups: groups.iter().copied().collect(),
        });
        t
    }

    /// Snapshot chunks of a leader-throttled group count against the leader quota and are
    /// refused (with the wait) while it is exceeded; other groups' chunks always go.
    #[test]
    fn snapshot_chunks_of_a_listed_group_count_against_the_leader_quota() {
        let t0 = Instant::now();
        let t = throttle(Some(100), None, &[7]);
        assert_eq!(t.admit_chunk(7, 1_000, t0), Ok(()), "the first chunk goes");
        assert_eq!(t.throttled_bytes(), (1_000, 0));
        // 1,000 bytes over at least 10 s: exactly at the quota, not above it.
        assert_eq!(t.admit_chunk(7, 500, t0), Ok(()));
        let wait = t.admit_chunk(7, 500, t0).unwrap_err();
        assert!(wait > Duration::ZERO, "{wait:?}");
        assert_eq!(t.throttled_bytes(), (1_500, 0), "a refused chunk is not recorded");
        assert_eq!(t.admit_chunk(8, 1 << 20, t0), Ok(()), "an unlisted group is never throttled");
        // Once the samples expire the chunk goes.
        assert_eq!(t.admit_chunk(7, 500, t0 + Duration::from_secs(12)), Ok(()));
        assert_eq!(throttle(None, Some(1), &[7]).admit_chunk(7, 1 << 20, t0), Ok(()), "no leader rate");
    }

    #[test]
    fn a_fresh_rate_is_measured_over_ten_samples_and_old_samples_expire() {
        let t0 = Instant::now();
        let mut r = Rate::default();
        r.record(10_000, t0);
        // Kafka divides by at least (samples - 1) sample lengths.
        assert_eq!(r.measure(t0), 1_000.0);
        assert_eq!(r.measure(t0 + Duration::from_secs(5)), 1_000.0);
        // Past 10 full samples the real elapsed time counts.
        assert_eq!(r.measure(t0 + Duration::from_secs(10)), 1_000.0);
        let at = t0 + Duration::from_millis(10_500);
        assert!((r.measure(at) - 10_000.0 / 10.5).abs() < 1e-6);
        // After 11 samples the bytes are forgotten.
        assert_eq!(r.measure(t0 + Duration::from_secs(11)), 0.0);
    }

    #[test]
    fn samples_last_one_second_each() {
        let t0 = Instant::now();
        let mut r = Rate::default();
        r.record(1, t0);
        r.record(1, t0 + Duration::from_millis(999));
        r.record(1, t0 + Duration::from_millis(1_000));
        assert_eq!(r.samples.len(), 2);
        assert_eq!(r.total(), 3);
    }

    #[test]
    fn only_catch_up_appends_of_listed_groups_are_held_by_the_leader_quota() {
        let t = throttle(Some(1_000), None, &[7]);
        let mut gate = Gate::default();
        // Tail appends of an in-sync follower pass, and so do other groups' catch-up appends.
        assert!(gate.admit(&t, 7, append(100, 100, 50), MAX).sent().is_some());
        assert!(gate.admit(&t, 8, append(1_000, 100, 50), MAX).sent().is_some());
        // Heartbeats always pass.
        let mut hb = Message::default();
        hb.set_msg_type(MessageType::MsgHeartbeat);
        assert!(gate.admit(&t, 7, hb, MAX).sent().is_some());
        // A catch-up append of group 7 is held.
        assert!(gate.admit(&t, 7, append(1_000, 100, 50), MAX).sent().is_none());
        // Once something of group 7 is held, its later appends queue behind it, even tail ones.
        assert!(gate.admit(&t, 7, append(1_000, 999, 50), MAX).sent().is_none());
        let t0 = Instant::now();
        let r = gate.release(&t, t0);
        assert_eq!(r.raft.iter().map(|(_, m)| m.get_entries()[0].index).collect::<Vec<_>>(), vec![100, 999]);
        assert!(gate.is_empty() && r.again.is_none());
        assert_eq!(t.throttled_bytes(), (100, 0));
    }

    #[test]
    fn the_leader_quota_holds_what_is_over_the_rate_until_the_rate_falls() {
        // 1,000 B/s: a fresh quota takes 10,000 B before it is exceeded (Kafka's first window).
        let t = throttle(Some(1_000), None, &[1]);
        let mut gate = Gate::default();
        let t0 = Instant::now();
        for i in 0..4 {
            assert!(gate.admit(&t, 1, append(10_000, 10 + i, 4_000), MAX).sent().is_none());
        }
        let r = gate.release(&t, t0);
        // 0, 4,000 and 8,000 recorded are within 10 s x 1,000 B/s; 12,000 is over.
        assert_eq!(r.raft.len(), 3);
        let wait = r.again.expect("one is still held");
        assert_eq!(wait, Duration::from_secs(1), "waits are capped");
        assert_eq!(gate.held_bytes(), 4_000);
        // Nothing goes while the measured rate is above the limit.
        assert!(gate.release(&t, t0 + Duration::from_secs(1)).raft.is_empty());
        // After 11 s the samples have expired: what was held goes.
        let r = gate.release(&t, t0 + Duration::from_secs(11));
        assert_eq!(r.raft.len(), 1);
        assert!(gate.is_empty());
    }

    #[test]
    fn the_follower_quota_counts_received_catch_up_bytes_and_holds_responses() {
        let t = throttle(None, Some(100), &[3]);
        let t0 = Instant::now();
        let mut gate = Gate::default();
        // Before any catch-up traffic, responses pass.
        assert!(gate.admit(&t, 3, response(), MAX).sent().is_some());
        t.received(3, &append(5_000, 10, 2_000), t0);
        assert_eq!(t.throttled_bytes(), (0, 2_000));
        // 2,000 B over a 10 s window is 200 B/s, above 100: the response waits.
        assert!(gate.admit(&t, 3, response(), MAX).sent().is_none());
        assert!(gate.release(&t, t0).raft.is_empty());
        // Tail traffic means caught up: new responses no longer wait, but queue behind held ones.
        t.received(3, &append(5_000, 4_999, 10), t0);
        assert!(gate.admit(&t, 3, response(), MAX).sent().is_none());
        let r = gate.release(&t, t0 + Duration::from_secs(11));
        assert_eq!(r.raft.len(), 2);
        assert!(gate.admit(&t, 3, response(), MAX).sent().is_some());
    }

    #[test]
    fn a_link_holding_its_limit_drops_what_would_be_held() {
        let t = throttle(Some(1), None, &[1]);
        let mut gate = Gate::default();
        assert!(matches!(gate.admit(&t, 1, append(1_000, 10, 100), 150), Admit::Held));
        assert!(matches!(gate.admit(&t, 1, append(1_000, 11, 100), 150), Admit::Dropped));
        assert!(matches!(gate.admit(&t, 1, append(1_000, 11, 50), 150), Admit::Held));
        assert_eq!(gate.held_bytes(), 150);
        // A resent copy of a held append is dropped, whatever room is left.
        let mut gate = Gate::default();
        assert!(matches!(gate.admit(&t, 1, append(1_000, 10, 100), MAX), Admit::Held));
        assert!(matches!(gate.admit(&t, 1, append(1_000, 10, 100), MAX), Admit::Dropped));
        assert!(matches!(gate.admit(&t, 2, append(1_000, 10, 100), MAX), Admit::Send(_)), "group 2 is not listed");
    }

    #[test]
    fn removing_the_rate_lets_everything_held_go() {
        let t = throttle(Some(1), None, &[1]);
        let mut gate = Gate::default();
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(gate.admit(&t, 1, append(1_000, 10 + i, 100), MAX).sent().is_none());
        }
        assert_eq!(gate.release(&t, t0).raft.len(), 1);
        t.configure(ThrottleConfig::default());
        assert!(!t.is_active());
        // What comes before the link lets go still queues behind what it holds: order is kept.
        assert!(gate.admit(&t, 1, append(1_000, 13, 100), MAX).sent().is_none());
        let r = gate.release(&t, t0);
        assert_eq!(r.raft.iter().map(|(_, m)| m.get_entries()[0].index).collect::<Vec<_>>(), vec![11, 12, 13]);
        assert!(gate.is_empty());
        assert!(gate.admit(&t, 1, append(1_000, 14, 100), MAX).sent().is_some());
    }
}
