//! Tests of the membership planner: each rule alone, then whole reassignments carried out on
//! raft-rs nodes over memory storage (joint consensus, leader self-removal, cancel).

use super::*;
use raft::eraftpb::{Entry, EntryType, Message};
use raft::storage::MemStorage;
use raft::{RawNode, StateRole, Storage};

fn conf(voters: &[u64], learners: &[u64], outgoing: &[u64]) -> ConfState {
    ConfState {
        voters: voters.to_vec(),
        learners: learners.to_vec(),
        voters_outgoing: outgoing.to_vec(),
        ..Default::default()
    }
}

fn plan(leader: u64, cs: &ConfState, matched: &[(u64, u64)], last: u64, target: &[u64]) -> Step {
    let matched: BTreeMap<u64, u64> = matched.iter().copied().collect();
    let view = GroupView { leader, conf: cs, matched: &matched, last_index: last, pending: false, gap: 10 };
    next_step(&view, target)
}

#[test]
fn adds_learners_one_at_a_time_then_waits_for_the_gap() {
    let cs = conf(&[1, 2, 3], &[], &[]);
    assert_eq!(plan(1, &cs, &[], 100, &[2, 3, 4, 5]), Step::AddLearner(4));
    let cs = conf(&[1, 2, 3], &[4], &[]);
    assert_eq!(plan(1, &cs, &[], 100, &[2, 3, 4, 5]), Step::AddLearner(5));
    let cs = conf(&[1, 2, 3], &[4, 5], &[]);
    // 4 is 11 behind (outside the gap of 10), 5 is 10 behind (inside).
    assert_eq!(plan(2, &cs, &[(4, 89), (5, 90)], 100, &[2, 3, 4, 5]), Step::Wait(Wait::CatchUp(vec![4])));
    let step = plan(2, &cs, &[(4, 90), (5, 95)], 100, &[2, 3, 4, 5]);
    assert_eq!(step, Step::Promote { add: vec![4, 5], remove: vec![1] });
    // A learner that never answered is not caught up, even when the log is shorter than the gap.
    assert_eq!(plan(2, &cs, &[(4, 0), (5, 3)], 5, &[2, 3, 4, 5]), Step::Wait(Wait::CatchUp(vec![4])));
    let cc = step.conf_change().unwrap();
    assert_eq!(cc.get_transition(), ConfChangeTransition::Explicit);
    assert_eq!(cc.enter_joint(), Some(false), "one joint change, left explicitly");
    assert_eq!(cc.changes.len(), 3);
}

#[test]
fn leaves_the_joint_config_only_as_an_incoming_voter() {
    let joint = conf(&[2, 3, 4], &[], &[1, 2, 3]);
    assert_eq!(plan(2, &joint, &[], 50, &[2, 3, 4]), Step::LeaveJoint);
    assert!(Step::LeaveJoint.conf_change().unwrap().leave_joint());
    // The leader is outgoing only: hand over to the most advanced caught-up incoming voter.
    assert_eq!(plan(1, &joint, &[(2, 45), (3, 50), (4, 50)], 50, &[2, 3, 4]), Step::TransferLeader(3));
    assert_eq!(plan(1, &joint, &[(2, 1), (3, 2), (4, 3)], 50, &[2, 3, 4]), Step::Wait(Wait::NoTransferee));
    let mut pending = BTreeMap::new();
    pending.insert(2, 50);
    let view = GroupView { leader: 2, conf: &joint, matched: &pending, last_index: 50, pending: true, gap: 10 };
    assert_eq!(next_step(&view, &[2, 3, 4]), Step::Wait(Wait::Pending));
}

#[test]
fn a_leader_that_leaves_transfers_first() {
    let cs = conf(&[1, 2, 3], &[4], &[]);
    assert_eq!(plan(1, &cs, &[(2, 100), (3, 99), (4, 100)], 100, &[2, 3, 4]), Step::TransferLeader(2));
    // No voter of the target at all: promote; the handover happens in the joint config.
    let cs = conf(&[1], &[4], &[]);
    assert_eq!(plan(1, &cs, &[(4, 100)], 100, &[4]), Step::Promote { add: vec![4], remove: vec![1] });
}

#[test]
fn cancel_removes_added_learners_and_reverts_a_joint_config() {
    let cs = conf(&[1, 2, 3], &[4], &[]);
    assert_eq!(plan(1, &cs, &[], 100, &[1, 2, 3]), Step::RemoveLearner(4));
    assert_eq!(Step::RemoveLearner(4).conf_change().unwrap().enter_joint(), None, "a simple change");
    assert_eq!(plan(1, &conf(&[1, 2, 3], &[], &[]), &[], 100, &[1, 2, 3]), Step::Done);
    // From joint (new incoming): leave first, then move back with another change.
    let joint = conf(&[2, 3, 4], &[], &[1, 2, 3]);
    assert_eq!(plan(2, &joint, &[], 100, &[1, 2, 3]), Step::LeaveJoint);
    let after = conf(&[2, 3, 4], &[], &[]);
    assert_eq!(plan(2, &after, &[], 100, &[1, 2, 3]), Step::AddLearner(1));
}

/// raft-rs nodes over memory storage, stepped by hand: a deterministic little cluster.
struct Sim {
    nodes: BTreeMap<u64, RawNode<MemStorage>>,
    inflight: Vec<Message>,
    /// (term, leader) of every node that was leader after a round.
    leaders: BTreeSet<(u64, u64)>,
    stopped: BTreeSet<u64>,
}

impl Sim {
    fn new(ids: &[u64], voters: &[u64], learners: &[u64]) -> Sim {
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let mut nodes = BTreeMap::new();
        for id in ids {
            let store = MemStorage::new_with_conf_state(conf(voters, learners, &[]));
            let cfg = raft::Config { id: *id, election_tick: 10, heartbeat_tick: 1, ..Default::default() };
            nodes.insert(*id, RawNode::new(&cfg, store, &logger).unwrap());
        }
        Sim { nodes, inflight: Vec::new(), leaders: BTreeSet::new(), stopped: BTreeSet::new() }
    }

    fn leader(&self) -> Option<u64> {
        self.nodes
            .iter()
            .find(|(id, n)| !self.stopped.contains(id) && n.raft.state == StateRole::Leader)
            .map(|(i, _)| *i)
    }

    /// Delivers messages and handles Readies until nothing moves.
    fn settle(&mut self) {
        for _ in 0..200 {
            let mut moved = false;
            for m in std::mem::take(&mut self.inflight) {
                if self.stopped.contains(&m.to) || self.stopped.contains(&m.from) {
                    continue;
                }
                if let Some(n) = self.nodes.get_mut(&m.to) {
                    let _ = n.step(m);
                    moved = true;
                }
            }
            for (id, n) in self.nodes.iter_mut() {
                if self.stopped.contains(id) || !n.has_ready() {
                    continue;
                }
                moved = true;
                let mut rd = n.ready();
                self.inflight.extend(rd.take_messages());
                if !rd.snapshot().is_empty() {
                    n.mut_store().wl().apply_snapshot(rd.snapshot().clone()).unwrap();
                }
                n.mut_store().wl().append(rd.entries()).unwrap();
                if let Some(hs) = rd.hs() {
                    n.mut_store().wl().set_hardstate(hs.clone());
                }
                self.inflight.extend(rd.take_persisted_messages());
                let committed = rd.take_committed_entries();
                apply(n, committed);
                let mut light = n.advance(rd);
                if let Some(c) = light.commit_index() {
                    n.mut_store().wl().mut_hard_state().commit = c;
                }
                self.inflight.extend(light.take_messages());
                apply(n, light.take_committed_entries());
                n.advance_apply();
                if n.raft.state == StateRole::Leader {
                    self.leaders.insert((n.raft.term, *id));
                }
            }
            if !moved && self.inflight.is_empty() {
                return;
            }
        }
    }

    fn tick(&mut self, n: usize) {
        for _ in 0..n {
            for (id, node) in self.nodes.iter_mut() {
                if !self.stopped.contains(id) {
                    node.tick();
                }
            }
            self.settle();
        }
    }

    /// The leader plans and carries out steps toward `target` until done; returns the steps.
    fn drive(&mut self, target: &[u64], stop_after: Option<&dyn Fn(&Step) -> bool>) -> Vec<Step> {
        let mut steps: Vec<Step> = Vec::new();
        for _ in 0..500 {
            self.tick(1);
            let Some(l) = self.leader() else { continue };
            let n = self.nodes.get_mut(&l).unwrap();
            let matched = n.raft.prs().iter().map(|(id, p)| (*id, p.matched)).collect();
            let cs = n.raft.prs().conf().to_conf_state();
            let view = GroupView {
                leader: l,
                conf: &cs,
                matched: &matched,
                last_index: n.raft.raft_log.last_index(),
                pending: n.raft.pending_conf_index > n.raft.raft_log.applied,
                gap: CATCH_UP_GAP,
            };
            let step = next_step(&view, target);
            if !matches!(step, Step::Wait(_)) && steps.last() != Some(&step) {
                steps.push(step.clone());
            }
            match &step {
                Step::Done => return steps,
                Step::Wait(_) => {}
                Step::TransferLeader(to) => n.transfer_leader(*to),
                s => n.propose_conf_change(vec![], s.conf_change().unwrap()).unwrap(),
            }
            self.settle();
            if stop_after.is_some_and(|f| f(&step)) {
                return steps;
            }
        }
        panic!("no progress: {steps:?}");
    }

    fn data(&self, id: u64) -> Vec<Vec<u8>> {
        let s = self.nodes[&id].store();
        let (first, last) = (s.first_index().unwrap(), s.last_index().unwrap());
        let ents = s.entries(first, last + 1, None, raft::GetEntriesContext::empty(false)).unwrap();
        ents.into_iter()
            .filter(|e| e.get_entry_type() == EntryType::EntryNormal && !e.data.is_empty())
            .map(|e| e.data.to_vec())
            .collect()
    }

    fn voters(&self, id: u64) -> ConfState {
        let mut cs = self.nodes[&id].raft.prs().conf().to_conf_state();
        cs.voters.sort_unstable();
        cs
    }

    fn assert_one_leader_per_term(&self) {
        let terms: BTreeSet<u64> = self.leaders.iter().map(|(t, _)| *t).collect();
        assert_eq!(terms.len(), self.leaders.len(), "two leaders in one term: {:?}", self.leaders);
    }
}

fn apply(n: &mut RawNode<MemStorage>, entries: Vec<Entry>) {
    for e in entries {
        if e.get_entry_type() == EntryType::EntryConfChangeV2 {
            let mut cc = ConfChangeV2::default();
            protobuf::Message::merge_from_bytes(&mut cc, &e.data).unwrap();
            let cs = n.apply_conf_change(&cc).unwrap();
            n.mut_store().wl().set_conf_state(cs);
        }
    }
}

fn started(ids: &[u64]) -> Sim {
    // Node 4 is created as the new replica is: the current voters and itself a learner.
    let mut sim = Sim::new(ids, &[1, 2, 3], &[]);
    sim.nodes.get_mut(&1).unwrap().campaign().unwrap();
    sim.settle();
    for i in 0..20u8 {
        sim.nodes.get_mut(&1).unwrap().propose(vec![], vec![i]).unwrap();
    }
    sim.settle();
    sim
}

#[test]
fn reassignment_moves_the_leader_then_promotes_in_one_joint_change() {
    let mut sim = started(&[1, 2, 3]);
    let store = MemStorage::new_with_conf_state(conf(&[1, 2, 3], &[4], &[]));
    let cfg = raft::Config { id: 4, election_tick: 10, heartbeat_tick: 1, ..Default::default() };
    sim.nodes.insert(4, RawNode::new(&cfg, store, &slog::Logger::root(slog::Discard, slog::o!())).unwrap());
    let steps = sim.drive(&[2, 3, 4], None);
    assert_eq!(
        steps,
        vec![
            Step::AddLearner(4),
            Step::TransferLeader(2),
            Step::Promote { add: vec![4], remove: vec![1] },
            Step::LeaveJoint,
            Step::Done
        ]
    );
    sim.tick(5);
    let want: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i]).collect();
    assert_eq!(sim.data(4), want, "every committed entry reached the new replica");
    for id in [2, 3, 4] {
        assert_eq!(sim.voters(id).voters, vec![2, 3, 4]);
    }
    sim.assert_one_leader_per_term();
}

#[test]
fn cancel_from_the_joint_config_reverts_with_another_change() {
    let mut sim = started(&[1, 2, 3]);
    let store = MemStorage::new_with_conf_state(conf(&[1, 2, 3], &[4], &[]));
    let cfg = raft::Config { id: 4, election_tick: 10, heartbeat_tick: 1, ..Default::default() };
    sim.nodes.insert(4, RawNode::new(&cfg, store, &slog::Logger::root(slog::Discard, slog::o!())).unwrap());
    let joint = |s: &Step| matches!(s, Step::Promote { .. });
    sim.drive(&[2, 3, 4], Some(&joint));
    sim.tick(2);
    assert!(is_joint(&sim.voters(2)), "in the joint config");
    let back = sim.drive(&[1, 2, 3], None);
    assert_eq!(back[0], Step::LeaveJoint);
    assert!(back.contains(&Step::AddLearner(1)) && back.contains(&Step::Promote { add: vec![1], remove: vec![4] }));
    assert_eq!(back.last(), Some(&Step::Done));
    sim.tick(5);
    assert_eq!(sim.voters(1).voters, vec![1, 2, 3]);
    assert_eq!(sim.data(1).len(), 20);
    sim.assert_one_leader_per_term();
}

#[test]
fn a_leader_lost_in_the_joint_config_is_replaced_and_the_change_finishes() {
    let mut sim = started(&[1, 2, 3]);
    let store = MemStorage::new_with_conf_state(conf(&[1, 2, 3], &[4], &[]));
    let cfg = raft::Config { id: 4, election_tick: 10, heartbeat_tick: 1, ..Default::default() };
    sim.nodes.insert(4, RawNode::new(&cfg, store, &slog::Logger::root(slog::Discard, slog::o!())).unwrap());
    let joint = |s: &Step| matches!(s, Step::Promote { .. });
    sim.drive(&[2, 3, 4], Some(&joint));
    let old = sim.leader().unwrap();
    sim.stopped.insert(old);
    // A new leader needs a majority of both halves; it resumes from the conf state it has.
    let rest = sim.drive(&[2, 3, 4], None);
    assert_eq!(rest.last(), Some(&Step::Done));
    assert_ne!(sim.leader(), Some(old));
    let live = *[2, 3, 4].iter().find(|i| **i != old).unwrap();
    assert_eq!(sim.voters(live).voters, vec![2, 3, 4]);
    sim.assert_one_leader_per_term();
}

#[test]
fn report_unreachable_moves_a_paused_follower_back_to_probe() {
    let mut sim = started(&[1, 2, 3]);
    assert_eq!(sim.nodes[&1].raft.prs().get(2).unwrap().state, raft::ProgressState::Replicate);
    // Node 2's connection is gone: every append to it is lost until the window is full.
    sim.stopped.insert(2);
    for i in 0..300u32 {
        sim.nodes.get_mut(&1).unwrap().propose(vec![], i.to_be_bytes().to_vec()).unwrap();
        sim.settle();
    }
    let pr = sim.nodes[&1].raft.prs().get(2).unwrap();
    assert!(pr.state == raft::ProgressState::Replicate && pr.is_paused(), "paused with a full window: {pr:?}");
    sim.nodes.get_mut(&1).unwrap().report_unreachable(2);
    let pr = sim.nodes[&1].raft.prs().get(2).unwrap();
    assert_eq!(pr.state, raft::ProgressState::Probe, "probed again instead of waiting for lost appends");
    sim.stopped.remove(&2);
    sim.tick(5);
    assert_eq!(sim.data(2).len(), 320, "the follower catches up");
}
