//! Leader transfers the leader decides on.
//! - Handing a group's leadership away before this node stops (a controlled shutdown,
//!   `crate::shutdown`): the leader picks the voter best placed to take over and starts a Raft
//!   leader transfer to it. Only a voter the leader is replicating to, whose node it heard from
//!   lately (the caller's `heard` test: the peer links' liveness), qualifies, so a node whose
//!   peers are gone does not wait for a transfer that cannot happen.
//! - A follower asking for the leadership (a preferred leader election or the balancer:
//!   `MsgTransferLeader` from it) is heard only when it is caught up ([`may_take_over`]). raft-rs
//!   would start the transfer at once and drop every proposal until the transferee has the whole
//!   log, or until an election timeout aborts it: a replica back from a restart with minutes of
//!   log to fetch would stall the partition's producers for seconds, again at each re-ask, as
//!   Kafka never does (its preferred replica must be in the ISR to be elected). The follower
//!   keeps asking (`elect_self_ticks`), so the transfer happens once it has caught up.

use raft::{ProgressState, StateRole};

use super::{RaftCore, StateMachine};
use crate::raft::membership::CATCH_UP_GAP;

/// Whether a voter may take the leadership over now: the leader streams appends to it
/// (`Replicate`) and its log is within [`CATCH_UP_GAP`] entries of the leader's last index (the
/// rule a learner is promoted by), so the transfer waits for one append at most.
pub fn may_take_over(state: ProgressState, matched: u64, last_index: u64) -> bool {
    state == ProgressState::Replicate && matched > 0 && matched.saturating_add(CATCH_UP_GAP) >= last_index
}

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
    /// Whether a `MsgTransferLeader` for `to` is stepped: always on a follower (raft-rs forwards
    /// it to the leader, which decides) and for the transfer already under way; on the leader
    /// only when [`may_take_over`] holds for `to`.
    pub(super) fn transfer_wanted(&self, to: u64) -> bool {
        let r = &self.node.raft;
        if r.state != StateRole::Leader || r.lead_transferee == Some(to) || to == r.id {
            return true;
        }
        let ready = r.prs().get(to).is_some_and(|p| may_take_over(p.state, p.matched, r.raft_log.last_index()));
        if !ready {
            slog::debug!(self.logger, "leader transfer asked for by a replica that is behind: not yet"; "to" => to);
        }
        ready
    }

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
    fn only_a_caught_up_replica_streamed_to_may_take_over() {
        let last = 10_000;
        assert!(may_take_over(ProgressState::Replicate, last, last));
        assert!(may_take_over(ProgressState::Replicate, last - CATCH_UP_GAP, last));
        assert!(!may_take_over(ProgressState::Replicate, last - CATCH_UP_GAP - 1, last), "too far behind");
        assert!(!may_take_over(ProgressState::Probe, last, last), "not streamed to: its log is not known");
        assert!(!may_take_over(ProgressState::Snapshot, last, last));
        assert!(!may_take_over(ProgressState::Replicate, 0, 5), "never answered");
    }

    #[test]
    fn the_leader_hears_a_transfer_request_only_from_a_caught_up_voter() {
        use crate::raft::core::test_support::{leader, msg};
        use raft::eraftpb::MessageType;
        let dir = tempfile::tempdir().unwrap();
        let mut c = leader(dir.path());
        for i in 0..2 * CATCH_UP_GAP {
            c.propose(format!("entry {i}").into_bytes()).unwrap();
        }
        let last = c.last_index();
        // Node 2 has the whole log, node 3 only the first entry: both are streamed to.
        for (from, index) in [(2, last), (3, 1)] {
            let mut ack = msg(MessageType::MsgAppendResponse, from, 1, 1);
            ack.index = index;
            c.step(ack).unwrap();
        }
        c.step(msg(MessageType::MsgTransferLeader, 3, 1, 1)).unwrap();
        assert_eq!(c.node.raft.lead_transferee, None, "node 3 is {} entries behind", last - 1);
        c.step(msg(MessageType::MsgTransferLeader, 2, 1, 1)).unwrap();
        assert_eq!(c.node.raft.lead_transferee, Some(2));
        // Node 3 catches up: now its request is heard (it replaces the transfer to node 2).
        c.node.raft.abort_leader_transfer();
        let mut ack = msg(MessageType::MsgAppendResponse, 3, 1, 1);
        ack.index = last - CATCH_UP_GAP;
        c.step(ack).unwrap();
        c.step(msg(MessageType::MsgTransferLeader, 3, 1, 1)).unwrap();
        assert_eq!(c.node.raft.lead_transferee, Some(3));
    }

    #[test]
    fn a_voter_that_is_not_live_is_never_chosen() {
        assert_eq!(successor(1, &[f(1, 90, true), f(2, 90, false), f(3, 10, true)]), Some(3));
        assert_eq!(successor(1, &[f(1, 90, true), f(2, 90, false), f(3, 90, false)]), None);
        assert_eq!(successor(1, &[f(1, 90, true)]), None, "a one-voter group has no successor");
    }
}
