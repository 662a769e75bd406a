//! Handing a group's leadership away before this node stops (a controlled shutdown,
//! `crate::shutdown`): the leader picks the voter best placed to take over and starts a Raft
//! leader transfer to it. Only a voter the leader is replicating to, whose node it heard from
//! lately (the caller's `heard` test: the peer links' liveness), qualifies, so a node whose peers
//! are gone does not wait for a transfer that cannot happen.

use raft::{ProgressState, StateRole};

use super::{RaftCore, StateMachine};

/// Where a group stands in handing its leadership away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resign {
    /// This node does not lead it (any more).
    NotLeader,
    /// A leader transfer to this voter is in progress.
    Transferring(u64),
    /// This node leads it and no voter can take over (none live, or a configuration change is
    /// in progress): it stays led here until the node stops.
    Stays,
}

/// One voter as the leader sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Follower {
    pub id: u64,
    /// Highest index known to be in its log.
    pub matched: u64,
    /// The leader streams appends to it (raft-rs `Replicate`), and heard from it lately.
    pub live: bool,
}

/// The successor: the live voter (other than `me`) with the most of the log, the lowest id on a
/// tie; `None` when no other voter is live.
pub fn successor(me: u64, followers: &[Follower]) -> Option<u64> {
    followers.iter().filter(|f| f.id != me && f.live).max_by_key(|f| (f.matched, std::cmp::Reverse(f.id))).map(|f| f.id)
}

impl<M: StateMachine> RaftCore<M> {
    /// On the leader, starts a leader transfer to [`successor`] (or reports the one already in
    /// progress). Asking again is harmless, and restarts a transfer raft-rs aborted.
    pub fn resign(&mut self, heard: impl Fn(u64) -> bool) -> Resign {
        let r = &self.node.raft;
        if r.state != StateRole::Leader {
            return Resign::NotLeader;
        }
        if let Some(to) = r.lead_transferee {
            // A transfer to a node that went away meanwhile (its link dropped: probed, not
            // replicated to, or silent) is given up at once rather than after raft-rs's timeout.
            if r.prs().get(to).is_some_and(|p| p.state == ProgressState::Replicate) && heard(to) {
                return Resign::Transferring(to);
            }
            self.node.raft.abort_leader_transfer();
        }
        let r = &self.node.raft;
        let cs = r.prs().conf().to_conf_state();
        if !cs.voters_outgoing.is_empty() || r.pending_conf_index > self.applied {
            return Resign::Stays;
        }
        let followers: Vec<Follower> = cs
            .voters
            .iter()
            .filter_map(|id| r.prs().get(*id).map(|p| (*id, p)))
            .map(|(id, p)| Follower { id, matched: p.matched, live: p.state == ProgressState::Replicate && heard(id) })
            .collect();
        match successor(r.id, &followers) {
            Some(to) => {
                self.node.transfer_leader(to);
                Resign::Transferring(to)
            }
            None => Resign::Stays,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(id: u64, matched: u64, live: bool) -> Follower {
        Follower { id, matched, live }
    }

    #[test]
    fn the_live_voter_with_the_most_of_the_log_takes_over() {
        assert_eq!(successor(1, &[f(1, 90, true), f(2, 80, true), f(3, 85, true)]), Some(3));
        // On a tie the lower id; the leader itself never.
        assert_eq!(successor(1, &[f(1, 90, true), f(3, 85, true), f(2, 85, true)]), Some(2));
    }

    #[test]
    fn a_voter_that_is_not_live_is_never_chosen() {
        assert_eq!(successor(1, &[f(1, 90, true), f(2, 90, false), f(3, 10, true)]), Some(3));
        assert_eq!(successor(1, &[f(1, 90, true), f(2, 90, false), f(3, 90, false)]), None);
        assert_eq!(successor(1, &[f(1, 90, true)]), None, "a one-voter group has no successor");
    }
}
