//! Pacing the first elections of new groups: a CreateTopics of 10,000 partitions makes every
//! node the preferred replica of thousands of new groups at once, and had each campaign as soon as
//! it opened, every election's votes, fsyncs and first appends would queue behind the others':
//! answers seconds late, leaders stepping down by CheckQuorum before their followers' answers
//! arrive, elections again. So the preferred replica of a new group campaigns only once it holds
//! one of the node's [`CampaignSlots`] ([`FIRST_CAMPAIGNS_PER_NODE`] of them); until then its
//! Raft clock stands still (it cannot time out and campaign outside the limit). The slot is
//! given back as soon as the group knows a leader, or after [`FirstCampaign`]'s bound of ticks
//! (raft-rs's own election timer then goes on as for any group).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// First campaigns a node runs at once.
pub const FIRST_CAMPAIGNS_PER_NODE: usize = 128;

/// The node's first-campaign slots (shared by all its partition groups).
#[derive(Debug, Clone)]
pub struct CampaignSlots {
    in_flight: Arc<AtomicUsize>,
    limit: usize,
}

impl Default for CampaignSlots {
    fn default() -> Self {
        CampaignSlots::new(FIRST_CAMPAIGNS_PER_NODE)
    }
}

impl CampaignSlots {
    pub fn new(limit: usize) -> Self {
        CampaignSlots { in_flight: Arc::default(), limit: limit.max(1) }
    }

    /// Takes a slot if one is free.
    pub fn try_take(&self) -> bool {
        self.in_flight.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.limit).then_some(n + 1)).is_ok()
    }

    pub fn give_back(&self) {
        let _ = self.in_flight.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }
}

/// What a tick does for a group's first campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Waiting for a slot: the tick must not reach Raft.
    Wait,
    /// A slot was taken: campaign now (and tick).
    Campaign,
    /// Tick as usual.
    Tick,
}

/// The first campaign of a new group's preferred replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FirstCampaign {
    /// Not a preferred replica of a new group, or done.
    #[default]
    Done,
    /// Waiting for a slot.
    Waiting,
    /// Holding a slot for at most this many more ticks.
    Running(u64),
}

impl FirstCampaign {
    /// One tick. `leader_known`: the group knows a leader (this replica or another); `bound`:
    /// the ticks a campaign holds its slot at most.
    pub fn tick(&mut self, leader_known: bool, bound: u64, slots: &CampaignSlots) -> Step {
        match *self {
            FirstCampaign::Done => Step::Tick,
            FirstCampaign::Waiting if leader_known => {
                *self = FirstCampaign::Done;
                Step::Tick
            }
            FirstCampaign::Waiting if slots.try_take() => {
                *self = FirstCampaign::Running(bound);
                Step::Campaign
            }
            FirstCampaign::Waiting => Step::Wait,
            FirstCampaign::Running(left) if leader_known || left == 0 => {
                slots.give_back();
                *self = FirstCampaign::Done;
                Step::Tick
            }
            FirstCampaign::Running(left) => {
                *self = FirstCampaign::Running(left - 1);
                Step::Tick
            }
        }
    }

    /// The group stops: gives its slot back.
    pub fn abandon(&mut self, slots: &CampaignSlots) {
        if matches!(self, FirstCampaign::Running(_)) {
            slots.give_back();
        }
        *self = FirstCampaign::Done;
    }

    pub fn active(&self) -> bool {
        *self != FirstCampaign::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_the_limit_campaign_at_once_and_a_leader_frees_the_slot() {
        let slots = CampaignSlots::new(2);
        let mut g = [FirstCampaign::Waiting; 3];
        let steps: Vec<Step> = g.iter_mut().map(|c| c.tick(false, 10, &slots)).collect();
        assert_eq!(steps, [Step::Campaign, Step::Campaign, Step::Wait]);
        assert_eq!(slots.in_flight(), 2);
        assert_eq!(g[2].tick(false, 10, &slots), Step::Wait, "still no slot");
        assert_eq!(g[0].tick(true, 10, &slots), Step::Tick, "group 0 has its leader");
        assert_eq!(g[0], FirstCampaign::Done);
        assert_eq!(g[2].tick(false, 10, &slots), Step::Campaign);
        assert_eq!(slots.in_flight(), 2);
    }

    #[test]
    fn a_campaign_holds_its_slot_for_the_bound_at_most() {
        let slots = CampaignSlots::new(1);
        let mut c = FirstCampaign::Waiting;
        assert_eq!(c.tick(false, 2, &slots), Step::Campaign);
        assert_eq!(c.tick(false, 2, &slots), Step::Tick);
        assert_eq!(c.tick(false, 2, &slots), Step::Tick);
        assert_eq!(slots.in_flight(), 1);
        assert_eq!(c.tick(false, 2, &slots), Step::Tick, "bound reached: slot given back");
        assert_eq!((c, slots.in_flight()), (FirstCampaign::Done, 0));
        assert_eq!(c.tick(false, 2, &slots), Step::Tick, "done: ticks as usual");
    }

    #[test]
    fn a_waiting_group_that_learns_a_leader_never_campaigns() {
        let slots = CampaignSlots::new(1);
        assert!(slots.try_take());
        let mut c = FirstCampaign::Waiting;
        assert_eq!(c.tick(true, 5, &slots), Step::Tick);
        assert!(!c.active());
        slots.give_back();
        assert_eq!(c.tick(false, 5, &slots), Step::Tick);
        assert_eq!(slots.in_flight(), 0);
    }

    #[test]
    fn a_stopped_group_gives_its_slot_back() {
        let slots = CampaignSlots::new(1);
        let mut c = FirstCampaign::Waiting;
        c.tick(false, 5, &slots);
        c.abandon(&slots);
        assert_eq!(slots.in_flight(), 0);
        let mut w = FirstCampaign::Waiting;
        w.abandon(&slots);
        assert_eq!(slots.in_flight(), 0, "a waiting group held none");
    }
}
