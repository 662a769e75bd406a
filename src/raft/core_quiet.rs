//! What [`RaftCore`] offers hibernation (`raft::hibernate`): its settled view, the hibernate
//! heartbeats, and waking (a leader heartbeats at once with its replicas counted active; a
//! follower counts its leader node's silence, or asks a sleeping leader to wake).

use raft::eraftpb::{Message, MessageType};
use raft::StateRole;

use super::{RaftCore, StateMachine};
use crate::clock::RandomSource;
use crate::raft::hibernate::{woken_election_timeout, FollowerView, LeaderView, Told, HIBERNATE, WAKE};

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

    /// A leader woken by the silence of `gone` (replicas whose node has been silent for a
    /// CheckQuorum period, `hibernate::silent_replicas`): they count as inactive, the others as
    /// active, and the next tick runs CheckQuorum, which steps down if the active ones are not a
    /// quorum.
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

    /// A follower woken by its leader node's silence counts it toward its election timeout
    /// (`ticks`), and takes its turn among the group's other voters to campaign
    /// (`hibernate::woken_election_timeout`, with the group's election timeout `election_tick`,
    /// raft-rs's `min_election_tick`; `rng` places it within its turn).
    pub fn count_silence(&mut self, ticks: usize, election_tick: usize, rng: &mut dyn RandomSource) {
        let voters = self.conf_state().voters;
        let r = &mut self.node.raft;
        if r.state != StateRole::Follower {
            return;
        }
        r.election_elapsed = r.election_elapsed.max(ticks);
        if let Some(t) = woken_election_timeout(r.id, r.leader_id, &voters, election_tick, rng) {
            r.set_randomized_election_timeout(t);
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

    use crate::clock::SeededRandom;
    use crate::raft::core::test_support::{core, leader, msg, Sm};
    use crate::raft::core::RaftCore;
    use std::time::{Duration, Instant};

    use crate::peer::liveness::Liveness;
    use crate::raft::hibernate::{
        check_period, follower_may_sleep, silent_replicas, watched, QuietCell, HIBERNATE, WAKE,
    };
    use crate::raft::GroupSettings;

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

    /// A quiet leader cut off from both followers at `cut`, their nodes' last frames heard out
    /// of phase (node 3's 40 ms after node 2's), ticked the way the ticker and the partition
    /// actor tick it (`partition::hibernate`), on simulated time: woken when node 2 has been
    /// silent for an election timeout, while node 3 has not quite, it steps down on that tick.
    /// (When only a replica silent for an election timeout counted inactive, node 3 counted
    /// active, the check passed, and the next one came a check period later.)
    #[test]
    fn a_quiet_leader_cut_off_steps_down_on_its_wake_though_a_follower_was_heard_later() {
        let s = GroupSettings::for_tests();
        let tick = s.tick;
        let timeout = tick * s.election_tick as u32;
        let period = check_period(tick, s.heartbeat_tick, s.election_tick);
        let ms = Duration::from_millis;
        for (cut_off, stays) in [(vec![2, 3], false), (vec![2], true)] {
            let dir = tempfile::tempdir().unwrap();
            let mut c = leader(dir.path());
            let t0 = Instant::now();
            let live = Liveness::new(true, t0);
            live.watch(2);
            live.watch(3);
            let cut = t0 + ms(1_000);
            let cell = QuietCell::default();
            cell.sleep(watched(1, 1, &c.replicas()));
            let mut woke = None;
            // Ticks 25 ms out of phase with the followers' frames, for twice the timeout.
            for k in 0..(4 * s.election_tick as u32) {
                let now = t0 + ms(25) + tick * k;
                // A frame from each follower's node every tick (the node beat), node 3's 40 ms
                // after node 2's; none after the cut from a node cut off.
                for (node, phase) in [(2, ms(0)), (3, ms(40))] {
                    let Some(since) = now.checked_duration_since(t0 + phase) else { continue };
                    let frame = t0 + phase + tick * (since.as_nanos() / tick.as_nanos()) as u32;
                    if !cut_off.contains(&node) || frame < cut {
                        live.heard(node, frame);
                    }
                }
                if !cell.needs_tick(&live.silent_watched(timeout, now)) {
                    continue;
                }
                if cell.is_quiet() {
                    cell.wake();
                    c.wake_leader();
                    c.check_quorum_now(&silent_replicas(1, &c.replicas(), period, |r| live.silent_for(r, now)));
                    woke = Some(now);
                }
                c.node.tick();
                if woke.is_some() {
                    break;
                }
            }
            let woke = woke.expect("woken by node 2's silence");
            assert!(woke - cut <= timeout, "woken within an election timeout of the cut: {:?}", woke - cut);
            assert!(live.silent_for(3, woke) < timeout, "node 3 not yet silent for an election timeout");
            assert_eq!(c.is_leader(), stays, "cut off from {cut_off:?}");
        }
    }

    /// Followers 2 and 3 of leader 1 know it (a heartbeat in term 1).
    fn followers_of_node_1(dirs: &[tempfile::TempDir; 2]) -> [RaftCore<Sm>; 2] {
        let mut f = [core(dirs[0].path(), 2), core(dirs[1].path(), 3)];
        for c in &mut f {
            let to = c.id();
            c.step(msg(MessageType::MsgHeartbeat, 1, to, 1)).unwrap();
        }
        f
    }

    /// Delivers the followers' messages to each other until none is left (node 1 is gone).
    fn deliver(f: &mut [RaftCore<Sm>; 2]) {
        loop {
            let mut moved = false;
            for i in 0..2 {
                for m in std::mem::take(&mut f[i].node.raft.msgs) {
                    if m.to != 1 {
                        f[(m.to - 2) as usize].step(m).unwrap();
                        moved = true;
                    }
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// Followers 2 and 3, woken on the same tick by leader 1's node's silence (as the ticker
    /// wakes every follower of a group at once) and ticked in lockstep with their messages
    /// delivered between ticks: one election, in term 2, won by node 2 (the first voter after
    /// the leader) within an election timeout of the wake, for every seed. The control: two
    /// followers whose timeouts fall on the same tick (which raft-rs's random timeouts allow)
    /// split the vote, and the group has no leader in term 2.
    #[test]
    fn followers_woken_together_by_their_leaders_silence_elect_once_without_a_split() {
        let timeout = GroupSettings::for_tests().election_tick;
        for seed in 0..50 {
            let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
            let mut f = followers_of_node_1(&dirs);
            let mut rng = SeededRandom::new(seed);
            for c in &mut f {
                c.count_silence(timeout, timeout, &mut rng);
            }
            let mut ticks = 0;
            while !f.iter().any(|c| c.is_leader()) && ticks < timeout {
                for c in &mut f {
                    c.node.tick();
                }
                ticks += 1;
                deliver(&mut f);
            }
            assert!(f[0].is_leader(), "seed {seed}: no leader {ticks} ticks after the wake");
            assert_eq!((f[0].role().term, f[1].role().term, f[1].role().leader), (2, 2, 2), "seed {seed}");
        }
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let mut f = followers_of_node_1(&dirs);
        for c in &mut f {
            c.count_silence(timeout, timeout, &mut SeededRandom::new(1));
            c.node.raft.set_randomized_election_timeout(timeout);
        }
        for c in &mut f {
            c.node.tick();
        }
        deliver(&mut f);
        assert!(f.iter().all(|c| !c.is_leader() && c.role().term == 2), "campaigns on one tick split the vote");
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
        f.count_silence(12, 10, &mut SeededRandom::new(1));
        assert_eq!(f.node.raft.election_elapsed, 12);
        f.count_silence(3, 10, &mut SeededRandom::new(1));
        assert_eq!(f.node.raft.election_elapsed, 12, "never backwards");
        // Woken by anything else: it asks its leader to wake.
        let call = f.wake_call().expect("a known leader");
        assert_eq!((call.get_msg_type(), call.to, call.term), (MessageType::MsgHeartbeatResponse, 1, 1));
        assert_eq!(call.context.as_ref(), WAKE);
    }
}
