//! What [`RaftCore`] offers hibernation (`raft::hibernate`): its settled view, the hibernate
//! heartbeats, and waking (a leader heartbeats at once with its replicas counted active; a
//! follower counts its leader node's silence, or asks a sleeping leader to wake).

use raft::eraftpb::{Message, MessageType};
use raft::StateRole;

use super::{RaftCore, StateMachine};
use crate::raft::hibernate::{FollowerView, LeaderView, Told, HIBERNATE, WAKE};

impl<M: StateMachine> RaftCore<M> {
    /// The leader's view for the quiet decision (`busy` and `replicas_live` are the caller's to
    /// add: only the Raft state is known here).
    pub fn leader_view(&self) -> LeaderView {
        let r = &self.node.raft;
        let last = r.raft_log.last_index();
        let all_matched = r.prs().iter().all(|(_, p)| p.matched == last && p.state != raft::ProgressState::Snapshot);
        let busy = r.state != StateRole::Leader
            || r.lead_transferee.is_some()
            || r.pending_conf_index > self.applied
            || r.read_only.pending_read_count() > 0
            || !self.pending_persisted.is_empty()
            || !self.snapshot_wait.is_empty()
            || self.align_pending
            || self.node.has_ready();
        LeaderView {
            last_index: last,
            committed: r.raft_log.committed,
            applied: self.applied,
            all_matched,
            busy,
            replicas_live: true,
        }
    }

    /// The replicas of the group (voters and learners), this node included.
    pub fn replicas(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.node.raft.prs().iter().map(|(id, _)| *id).collect();
        ids.sort_unstable();
        ids
    }

    /// The hibernate heartbeats a settled leader sends its replicas before it goes quiet.
    pub fn hibernate_heartbeats(&self) -> Vec<Message> {
        let r = &self.node.raft;
        let last = r.raft_log.last_index();
        let log_term = r.raft_log.term(last).unwrap_or(0);
        let me = r.id;
        r.prs()
            .iter()
            .filter(|(id, _)| **id != me)
            .map(|(id, p)| {
                let mut m = Message::default();
                m.set_msg_type(MessageType::MsgHeartbeat);
                (m.from, m.to, m.term) = (me, *id, r.term);
                m.commit = p.matched.min(r.raft_log.committed);
                (m.index, m.log_term) = (last, log_term);
                m.context = HIBERNATE.to_vec().into();
                m
            })
            .collect()
    }

    /// What a hibernate heartbeat tells, and whether it can be stepped as is (its commit lies
    /// within this follower's log; raft-rs would refuse to commit past it).
    pub fn told(&self, m: &Message) -> (Told, bool) {
        let told = Told { term: m.term, index: m.index, log_term: m.log_term, commit: m.commit };
        (told, m.commit <= self.node.raft.raft_log.last_index())
    }

    /// The follower's view for the quiet decision (`busy` adds the caller's own).
    pub fn follower_view(&self, busy: bool) -> FollowerView {
        let r = &self.node.raft;
        let last = r.raft_log.last_index();
        FollowerView {
            term: r.term,
            last_index: last,
            last_term: r.raft_log.term(last).unwrap_or(0),
            committed: r.raft_log.committed,
            busy: busy || r.state != StateRole::Follower,
        }
    }

    /// A leader wakes: its quorum check restarts with every replica counted active (their
    /// silence while quiet was asked for), it heartbeats at once (which wakes the followers),
    /// and its heartbeats come back in phase with the node's.
    pub fn wake_leader(&mut self) {
        let r = &mut self.node.raft;
        if r.state != StateRole::Leader {
            return;
        }
        r.election_elapsed = 0;
        for (_, p) in r.mut_prs().iter_mut() {
            p.recent_active = true;
        }
        self.node.ping();
        self.align_pending = true;
    }

    /// A follower woken by its leader node's silence counts it toward its election timeout.
    pub fn count_silence(&mut self, ticks: usize) {
        let r = &mut self.node.raft;
        if r.state == StateRole::Follower {
            r.election_elapsed = r.election_elapsed.max(ticks);
        }
    }

    /// A follower woken by activity asks its (quiet) leader to wake: a heartbeat response,
    /// which a leader takes at any time and which wakes a quiet group.
    pub fn wake_call(&self) -> Option<Message> {
        let r = &self.node.raft;
        if r.state != StateRole::Follower || r.leader_id == 0 || r.leader_id == r.id {
            return None;
        }
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgHeartbeatResponse);
        (m.from, m.to, m.term, m.commit) = (r.id, r.leader_id, r.term, r.raft_log.committed);
        m.context = WAKE.to_vec().into();
        Some(m)
    }
}
