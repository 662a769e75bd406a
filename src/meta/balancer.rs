//! The automatic leader balancer's core (Kafka's `auto.leader.rebalance.enable`): which
//! partitions the `__meta` leader asks to move back to their preferred replica. Pure: the
//! metadata image, the live brokers and the time come in, a list of groups for one
//! `ElectPreferred` command goes out; the shell is a timer of the `MetaActor`.
//!
//! Kafka's rule (the ZooKeeper controller's `checkAndTriggerAutoLeaderRebalance`): partitions
//! are grouped by their preferred replica (the first of the replica list); a broker's imbalance
//! ratio is the share of those whose known leader is another broker; when it exceeds
//! `leader.imbalance.per.broker.percentage`, every such partition whose preferred replica can
//! lead (here: a registered broker the `__meta` leader heard from recently) gets a preferred
//! leader election. As KRaft's `maybeBalancePartitionLeaders`, a round asks for at most
//! [`MAX_ELECTIONS_PER_ROUND`] and the next round follows at once when there were more. A
//! partition whose preferred replica leads, or whose leader is unknown, is never touched, so a
//! balanced cluster sees no transfer. A group asked for is not asked again for
//! [`REASK_AFTER`] (its transfer is under way; a failed one, e.g. a preferred replica whose log
//! is behind, is retried after that).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::meta::MetaState;
use crate::raft::GroupId;

/// Kafka's `ReplicationControlManager.MAX_ELECTIONS_PER_IMBALANCE`.
pub const MAX_ELECTIONS_PER_ROUND: usize = 1_000;

/// A group asked for is not asked again before this.
pub const REASK_AFTER: Duration = Duration::from_secs(10);

/// A round that hit the bound is due again after this (the shell's next poll, at most 1 s on).
pub const NEXT_ROUND_SOON: Duration = Duration::from_millis(10);

/// `[leaders]` as the balancer uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BalancerSettings {
    pub enabled: bool,
    pub interval: Duration,
    pub per_broker_percentage: u32,
    pub max_per_round: usize,
}

/// One broker's leaders, as Kafka computes its imbalance ratio.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BrokerImbalance {
    /// Partitions this broker is the preferred replica of.
    pub preferred: usize,
    /// ... whose known leader is another broker.
    pub led_elsewhere: usize,
}

impl BrokerImbalance {
    /// Kafka's imbalance ratio: led elsewhere / preferred.
    pub fn ratio(&self) -> f64 {
        if self.preferred == 0 {
            0.0
        } else {
            self.led_elsewhere as f64 / self.preferred as f64
        }
    }

    /// Kafka's trigger: the ratio exceeds `percentage` / 100.
    pub fn exceeds(&self, percentage: u32) -> bool {
        (self.led_elsewhere as u128) * 100 > u128::from(percentage) * (self.preferred as u128)
    }
}

/// Per preferred replica: its partitions and how many are led elsewhere (by the leaders the
/// partitions reported to `__meta`; a partition without a known leader does not count).
pub fn imbalance(image: &MetaState) -> BTreeMap<u64, BrokerImbalance> {
    let mut out: BTreeMap<u64, BrokerImbalance> = BTreeMap::new();
    for p in image.topics.values().flat_map(|t| t.partitions.iter()) {
        let Some(&preferred) = p.replicas.first() else { continue };
        let b = out.entry(preferred).or_default();
        b.preferred += 1;
        if image.leaders.get(&p.group).is_some_and(|(l, _)| *l != preferred) {
            b.led_elsewhere += 1;
        }
    }
    out
}

/// What one round asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Round {
    /// The groups of one `ElectPreferred` command (may be empty: the round found nothing to do).
    pub groups: Vec<GroupId>,
    /// The bound cut the round short: the next one follows soon.
    pub more: bool,
}

/// The balancer's state on one node.
#[derive(Debug)]
pub struct Balancer {
    settings: BalancerSettings,
    /// When the next round is due; `None` while this node does not lead `__meta`.
    next_round: Option<Instant>,
    /// Groups asked for, and when.
    asked: BTreeMap<GroupId, Instant>,
}

impl Balancer {
    pub fn new(settings: BalancerSettings) -> Self {
        Balancer { settings, next_round: None, asked: BTreeMap::new() }
    }

    pub fn settings(&self) -> &BalancerSettings {
        &self.settings
    }

    /// How often the shell should call [`Balancer::poll`]: the interval, at most 1 s apart.
    pub fn poll_period(&self) -> Duration {
        self.settings.interval.min(Duration::from_secs(1))
    }

    /// Called on the shell's timer. Only the `__meta` leader acts, and only one interval after
    /// it became leader (as Kafka's controller, which schedules its first check then).
    pub fn poll(&mut self, now: Instant, meta_leader: bool, image: &MetaState, live: &BTreeSet<u64>) -> Option<Round> {
        if !self.settings.enabled || !meta_leader {
            self.next_round = None;
            self.asked.clear();
            return None;
        }
        let due = *self.next_round.get_or_insert(now + self.settings.interval);
        if now < due {
            return None;
        }
        let round = self.round(now, image, live);
        self.next_round = Some(now + if round.more { NEXT_ROUND_SOON } else { self.settings.interval });
        Some(round)
    }

    /// One round: the partitions of every imbalanced broker that can move back.
    fn round(&mut self, now: Instant, image: &MetaState, live: &BTreeSet<u64>) -> Round {
        self.asked.retain(|_, at| now.saturating_duration_since(*at) < REASK_AFTER);
        let imbalanced: BTreeSet<u64> = imbalance(image)
            .into_iter()
            .filter(|(_, b)| b.exceeds(self.settings.per_broker_percentage))
            .map(|(broker, _)| broker)
            .collect();
        let mut groups = Vec::new();
        let mut more = false;
        for p in image.topics.values().flat_map(|t| t.partitions.iter()) {
            let Some(&preferred) = p.replicas.first() else { continue };
            let movable = imbalanced.contains(&preferred)
                && image.leaders.get(&p.group).is_some_and(|(l, _)| *l != preferred)
                && image.brokers.contains_key(&preferred)
                && live.contains(&preferred)
                && !self.asked.contains_key(&p.group);
            if !movable {
                continue;
            }
            if groups.len() >= self.settings.max_per_round {
                more = true;
                break;
            }
            groups.push(p.group);
            self.asked.insert(p.group, now);
        }
        Round { groups, more }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::meta::command::{Cmd, MetaCommand, SetLeader};

    fn settings() -> BalancerSettings {
        BalancerSettings {
            enabled: true,
            interval: Duration::from_secs(300),
            per_broker_percentage: 10,
            max_per_round: MAX_ELECTIONS_PER_ROUND,
        }
    }

    /// Three brokers, `partitions` partitions at RF 3, each led by its preferred replica.
    fn image(partitions: u32) -> MetaState {
        let mut s = crate::meta::test_image::image(&[None; 3], partitions, 3);
        for p in s.topics["t"].partitions.clone() {
            lead(&mut s, p.group, p.replicas[0]);
        }
        s
    }

    fn lead(s: &mut MetaState, group: GroupId, leader: u64) {
        let term = s.leaders.get(&group).map_or(1, |(_, t)| t + 1);
        s.apply(&MetaCommand::new(Cmd::SetLeader(SetLeader { group, leader, term })));
    }

    /// Every partition whose preferred replica is not `to` moves to `to`.
    fn all_to(s: &mut MetaState, to: u64) -> Vec<GroupId> {
        let mut moved = Vec::new();
        for p in s.topics["t"].partitions.clone() {
            if p.replicas[0] != to {
                lead(s, p.group, to);
                moved.push(p.group);
            }
        }
        moved
    }

    fn live() -> BTreeSet<u64> {
        [1, 2, 3].into()
    }

    #[test]
    fn imbalance_ratio_is_kafkas() {
        let mut s = image(6);
        let b = imbalance(&s);
        assert_eq!(b.len(), 3);
        assert!(b.values().all(|b| *b == BrokerImbalance { preferred: 2, led_elsewhere: 0 }));
        assert!(b.values().all(|b| b.ratio() == 0.0 && !b.exceeds(0)));
        let p = s.topics["t"].partitions[0].clone();
        lead(&mut s, p.group, p.replicas[1]);
        let b = imbalance(&s)[&p.replicas[0]];
        assert_eq!(b, BrokerImbalance { preferred: 2, led_elsewhere: 1 });
        assert_eq!(b.ratio(), 0.5);
        assert!(b.exceeds(10) && b.exceeds(49) && !b.exceeds(50) && !b.exceeds(100));
        // Ten partitions per broker, one led elsewhere: 10 % does not exceed 10 %.
        let mut s = image(30);
        let p = s.topics["t"].partitions[0].clone();
        lead(&mut s, p.group, p.replicas[2]);
        let b = imbalance(&s)[&p.replicas[0]];
        assert_eq!((b.preferred, b.led_elsewhere), (10, 1));
        assert!(!b.exceeds(10) && b.exceeds(9));
        // An unknown leader counts for nothing.
        let mut s = image(3);
        s.leaders.clear();
        assert!(imbalance(&s).values().all(|b| b.led_elsewhere == 0));
    }

    #[test]
    fn rounds_start_one_interval_after_becoming_meta_leader_and_only_there() {
        let clock = ManualClock::new(0);
        let mut b = Balancer::new(settings());
        let mut s = image(6);
        let moved = all_to(&mut s, 1);
        assert_eq!(moved.len(), 4);
        // A follower of __meta never acts, whatever the imbalance.
        for _ in 0..3 {
            assert_eq!(b.poll(clock.now(), false, &s, &live()), None);
            clock.advance(Duration::from_secs(400));
        }
        assert_eq!(b.poll(clock.now(), true, &s, &live()), None, "not before one interval as leader");
        clock.advance(Duration::from_secs(299));
        assert_eq!(b.poll(clock.now(), true, &s, &live()), None);
        clock.advance(Duration::from_secs(1));
        let r = b.poll(clock.now(), true, &s, &live()).expect("a round");
        let mut got = r.groups.clone();
        got.sort_unstable();
        assert_eq!(got, moved);
        assert!(!r.more);
        // Losing the __meta leadership stops it; regaining it waits an interval again.
        clock.advance(Duration::from_secs(300));
        assert_eq!(b.poll(clock.now(), false, &s, &live()), None);
        assert_eq!(b.poll(clock.now(), true, &s, &live()), None);
    }

    #[test]
    fn a_balanced_cluster_sees_nothing_and_a_preferred_leader_is_never_touched() {
        let clock = ManualClock::new(0);
        let mut b = Balancer::new(BalancerSettings { per_broker_percentage: 0, ..settings() });
        let mut s = image(9);
        b.poll(clock.now(), true, &s, &live());
        for _ in 0..5 {
            clock.advance(Duration::from_secs(300));
            assert_eq!(b.poll(clock.now(), true, &s, &live()), Some(Round { groups: vec![], more: false }));
        }
        // One partition off its preferred replica: only that one is asked for.
        let p = s.topics["t"].partitions[4].clone();
        lead(&mut s, p.group, p.replicas[1]);
        clock.advance(Duration::from_secs(300));
        assert_eq!(b.poll(clock.now(), true, &s, &live()).unwrap().groups, vec![p.group]);
    }

    #[test]
    fn disabled_never_acts() {
        let clock = ManualClock::new(0);
        let mut b = Balancer::new(BalancerSettings { enabled: false, ..settings() });
        let mut s = image(6);
        all_to(&mut s, 2);
        for _ in 0..5 {
            assert_eq!(b.poll(clock.now(), true, &s, &live()), None);
            clock.advance(Duration::from_secs(301));
        }
    }

    #[test]
    fn dead_or_unregistered_preferred_replicas_are_skipped() {
        let clock = ManualClock::new(0);
        let mut b = Balancer::new(settings());
        let mut s = image(6);
        all_to(&mut s, 1);
        b.poll(clock.now(), true, &s, &live());
        clock.advance(Duration::from_secs(300));
        let only_2: BTreeSet<u64> = [1, 2].into();
        let r = b.poll(clock.now(), true, &s, &only_2).unwrap();
        let ps = &s.topics["t"].partitions;
        assert!(r.groups.iter().all(|g| ps.iter().any(|p| p.group == *g && p.replicas[0] == 2)), "{r:?}");
        assert_eq!(r.groups.len(), 2);
        let mut gone = s.clone();
        gone.brokers.remove(&3);
        clock.advance(Duration::from_secs(300));
        let r = b.poll(clock.now(), true, &gone, &live()).unwrap();
        assert!(
            r.groups.iter().all(|g| ps.iter().any(|p| p.group == *g && p.replicas[0] == 2)),
            "3 is unregistered: {r:?}"
        );
        assert_eq!(r.groups.len(), 2);
    }

    #[test]
    fn rounds_are_bounded_and_the_rest_follows_soon_without_asking_twice() {
        let clock = ManualClock::new(0);
        let mut b = Balancer::new(BalancerSettings { max_per_round: 3, ..settings() });
        let mut s = image(12);
        let moved = all_to(&mut s, 3);
        assert_eq!(moved.len(), 8);
        b.poll(clock.now(), true, &s, &live());
        clock.advance(Duration::from_secs(300));
        let mut asked = Vec::new();
        let r = b.poll(clock.now(), true, &s, &live()).unwrap();
        assert_eq!(r.groups.len(), 3);
        assert!(r.more);
        asked.extend(r.groups);
        assert_eq!(b.poll(clock.now(), true, &s, &live()), None, "the next round is not due yet");
        clock.advance(NEXT_ROUND_SOON);
        let r = b.poll(clock.now(), true, &s, &live()).unwrap();
        assert_eq!((r.groups.len(), r.more), (3, true));
        asked.extend(r.groups);
        clock.advance(NEXT_ROUND_SOON);
        let r = b.poll(clock.now(), true, &s, &live()).unwrap();
        assert_eq!((r.groups.len(), r.more), (2, false));
        asked.extend(r.groups);
        asked.sort_unstable();
        assert_eq!(asked, moved, "each group asked for once");
        // Nothing moved yet: after an interval, longer than REASK_AFTER, they are asked again.
        clock.advance(Duration::from_secs(300));
        assert_eq!(b.poll(clock.now(), true, &s, &live()).unwrap().groups.len(), 3);
    }
}
