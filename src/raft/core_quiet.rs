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

    /// A leader woken by the silence of `gone` (replicas silent for an election timeout): they
    /// count as inactive, the others as active, and the next tick runs CheckQuorum, which steps
    /// down if the active ones are not a quorum.
    pub fn check_quorum_now(&mut self, gone: &[u64]) {
        let r = &mut self.node.raft;
        if r.state != StateRole::Leader {
            return;
        }
        let me = r.id;
        for (id, p) in r.mut_prs().iter_mut() {
            p.recent_active = *id == me || !gone.contains(id);
        }
        r.election_elapsed = r.election_timeout().saturating_sub(1);
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

#[cfg(test)]
mod tests {
    use raft::eraftpb::MessageType;

    use crate::raft::core::test_support::{core, leader, msg};
    use crate::raft::hibernate::{follower_may_sleep, HIBERNATE, WAKE};

    #[test]
    fn hibernate_heartbeats_name_the_leaders_last_entry_and_commit() {
        let dir = tempfile::tempdir().unwrap();
        let c = leader(dir.path());
        let hbs = c.hibernate_heartbeats();
        assert_eq!(hbs.iter().map(|m| m.to).collect::<Vec<_>>(), vec![2, 3]);
        for m in &hbs {
            assert_eq!(m.get_msg_type(), MessageType::MsgHeartbeat);
            assert_eq!(m.context.as_ref(), HIBERNATE);
            assert_eq!((m.term, m.index, m.log_term), (1, c.last_index(), 1));
            // Never past what the follower is known to hold (nothing yet).
            assert_eq!(m.commit, 0);
        }
        let view = c.leader_view();
        assert!(!view.settled(), "followers have not matched the leader's no-op: {view:?}");
        assert_eq!(c.replicas(), vec![1, 2, 3]);
    }

    #[test]
    fn a_woken_leader_counts_every_replica_active_and_heartbeats_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = leader(dir.path());
        let queued = c.queued_messages().len();
        c.wake_leader();
        assert_eq!(c.node.raft.election_elapsed, 0);
        assert!(c.node.raft.prs().iter().all(|(_, p)| p.recent_active), "no step-down for a quiet period");
        assert_eq!(c.recently_active(), vec![1, 2, 3]);
        let hbs = c.queued_messages()[queued..].iter().filter(|m| m.get_msg_type() == MessageType::MsgHeartbeat);
        assert_eq!(hbs.count(), 2, "a heartbeat to each follower at once");
        assert!(c.align_pending, "heartbeats come back in phase");
    }

    #[test]
    fn a_leader_woken_by_its_quorums_silence_steps_down_on_the_next_tick() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = leader(dir.path());
        c.wake_leader();
        c.check_quorum_now(&[2]);
        c.node.tick();
        assert!(c.is_leader(), "node 3 is heard from: self and 3 are a quorum");
        c.wake_leader();
        c.check_quorum_now(&[2, 3]);
        c.node.tick();
        assert!(!c.is_leader(), "both followers silent: CheckQuorum steps down at once");
    }

    #[test]
    fn a_follower_sleeps_on_a_matching_hibernate_heartbeat_and_counts_silence_when_woken() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = core(dir.path(), 2);
        let mut hb = msg(MessageType::MsgHeartbeat, 1, 2, 1);
        (hb.index, hb.log_term, hb.commit) = (0, 0, 0);
        hb.context = HIBERNATE.to_vec().into();
        f.step(hb.clone()).unwrap();
        let (told, steppable) = f.told(&hb);
        assert!(steppable);
        assert!(follower_may_sleep(&f.follower_view(false), &told));
        assert!(!follower_may_sleep(&f.follower_view(true), &told), "busy with its own work");
        let mut far = hb.clone();
        far.commit = 5;
        let (_, steppable) = f.told(&far);
        assert!(!steppable, "a commit past this follower's log is never stepped");
        // Woken by its leader node's silence: that silence counts toward its election timeout.
        assert_eq!(f.node.raft.election_elapsed, 0);
        f.count_silence(12);
        assert_eq!(f.node.raft.election_elapsed, 12);
        f.count_silence(3);
        assert_eq!(f.node.raft.election_elapsed, 12, "never backwards");
        // Woken by anything else: it asks its leader to wake.
        let call = f.wake_call().expect("a known leader");
        assert_eq!((call.get_msg_type(), call.to, call.term), (MessageType::MsgHeartbeatResponse, 1, 1));
        assert_eq!(call.context.as_ref(), WAKE);
    }
}
