//! The membership side of the metadata actor (`meta::members`): joins asked over the peer
//! protocol (`MetaMsg::Join`), this node's own announcement of its addresses (`AddNode` with
//! `own`), and, on the `__meta` leader, the conf changes that move `__meta` toward at most
//! `meta.max-voters` voters with every other member a learner (one step per tick, planned by
//! `raft::membership::next_step_keeping`, the planner partition reassignment uses).

use actix::prelude::*;
use tokio::sync::oneshot;

use super::{MetaActor, MetaError};
use crate::meta::command::{Cmd, MetaCommand};
use crate::meta::members::{check_add, meta_target, AddNode, Member};
use crate::meta::state::MetaResult;
use crate::peer::frame::{JoinReply, JoinRequest};
use crate::raft::membership::{next_step_keeping, GroupView, Step, CATCH_UP_GAP};

impl MetaActor {
    /// A node asks to join: refused (nothing proposed) when its id is known at another address;
    /// else `AddNode` is proposed and, once applied, answered with this replica's `__meta`
    /// configuration and every member's Raft address.
    pub(super) fn join(&mut self, req: JoinRequest, reply: oneshot::Sender<JoinReply>, ctx: &mut Context<Self>) {
        let refuse = |error: String| JoinReply { error, ..Default::default() };
        let member = Member { node_id: req.node_id, raft_addr: req.raft_addr.clone(), kafka_addr: req.kafka_addr };
        let book = self.transport.address_book();
        if let Some(addr) = book.get(&req.node_id).filter(|a| **a != req.raft_addr) {
            let _ = reply.send(refuse(format!("node id {} is already used by {addr}", req.node_id)));
            return;
        }
        if let Err(e) = check_add(&self.core.sm().state.members, &member, false) {
            let _ = reply.send(refuse(e));
            return;
        }
        slog::info!(self.logger, "a node asks to join"; "node" => req.node_id, "raft_addr" => &req.raft_addr);
        let (tx, rx) = oneshot::channel();
        let cmd = MetaCommand::new(Cmd::AddNode(AddNode { member: Some(member), own: false }));
        self.start_proposal(cmd, Some(tx), false, ctx);
        ctx.spawn(rx.into_actor(self).map(move |res, act, _| {
            let answer = match res {
                Ok(Ok(MetaResult::Rejected { message, .. })) => refuse(message),
                Ok(Ok(_)) => {
                    let storage = act.core.storage();
                    let cs = storage.conf_state();
                    let mut peers = act.transport.address_book();
                    for m in act.core.sm().state.members.nodes.values() {
                        peers.entry(m.node_id).or_insert_with(|| m.raft_addr.clone());
                    }
                    JoinReply {
                        error: String::new(),
                        voters: cs.voters.clone(),
                        learners: cs.learners.clone(),
                        conf_index: storage.conf_index(),
                        peers,
                        retriable: false,
                    }
                }
                Ok(Err(e)) => JoinReply {
                    // No leader, or not applied in time: an election settles it, ask again.
                    retriable: matches!(e, MetaError::NotLeader(_) | MetaError::RetriesExhausted(_)),
                    ..refuse(format!("the cluster did not record the node: {e}"))
                },
                Err(_) => refuse(format!("the cluster did not record the node: {}", MetaError::Dropped)),
            };
            let _ = reply.send(answer);
        }));
    }

    /// Announces this node's Raft and Kafka addresses once `__meta` lacks or differs from them
    /// (clusters only: a standalone node has no Raft address).
    pub(super) fn maybe_announce(&mut self, ctx: &mut Context<Self>) {
        if self.announcing || self.raft_addr.is_empty() || self.core.role().leader == 0 {
            return;
        }
        let members = &self.core.sm().state.members;
        let me = self.me.node_id;
        if members.removed.contains(&me) || members.nodes.get(&me).is_some_and(|m| m.raft_addr == self.raft_addr) {
            return;
        }
        self.announcing = true;
        let member = Member {
            node_id: me,
            raft_addr: self.raft_addr.clone(),
            kafka_addr: format!("{}:{}", self.me.host, self.me.port),
        };
        let (tx, rx) = oneshot::channel();
        let cmd = MetaCommand::new(Cmd::AddNode(AddNode { member: Some(member), own: true }));
        self.start_proposal(cmd, Some(tx), true, ctx);
        ctx.spawn(rx.into_actor(self).map(|res, act, _| {
            act.announcing = false;
            if !matches!(res, Ok(Ok(MetaResult::Done))) {
                slog::warn!(act.logger, "announcing this node's addresses did not apply"; "result" => ?res.ok());
            }
        }));
    }

    /// As leader: one step toward `__meta`'s target configuration.
    pub(super) fn membership_tick(&mut self) {
        if !self.core.is_leader() || self.shell.is_failed() {
            self.meta_step = None;
            return;
        }
        let cs = self.core.conf_state();
        let (matched, pending) = self.core.progress();
        let last_index = self.core.last_index();
        let caught_up = |id: u64| matched.get(&id).is_some_and(|m| *m > 0 && m + CATCH_UP_GAP >= last_index);
        let (voters, learners) = meta_target(&cs, &self.core.sm().state.members, self.max_voters, &caught_up);
        let view =
            GroupView { leader: self.me.node_id, conf: &cs, matched: &matched, last_index, pending, gap: CATCH_UP_GAP };
        let step = next_step_keeping(&view, &voters, &learners);
        if self.meta_step.as_ref() != Some(&step) {
            slog::info!(self.logger, "__meta membership step"; "step" => ?step, "conf" => ?cs, "voters" => ?voters, "learners" => ?learners);
            self.meta_step = Some(step.clone());
        }
        match &step {
            Step::Wait(_) | Step::Done => {}
            Step::TransferLeader(to) => self.core.transfer_leader(*to),
            s => {
                let cc = s.conf_change().expect("a conf change step");
                if let Err(e) = self.core.propose_conf_change(cc) {
                    slog::warn!(self.logger, "__meta conf change refused"; "step" => ?s, "error" => %e);
                }
            }
        }
    }
}

/// An operator's membership change (`cluster add-node|remove-node|decommission`, the admin
/// API's `/v1/members` routes), carried out by the `__meta` leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberOp {
    /// Record a node ahead of its start (its id and Raft address).
    Add(Member),
    /// Move every replica of the node to other live brokers (reassignments), as the first half
    /// of a decommission.
    Evacuate(u64),
    /// Remove the node for good; replicas it still holds are reassigned to other live brokers in
    /// the same go (a dead node's `remove-node`, or the end of a decommission).
    Remove(u64),
}

/// The answer to a [`MemberOp`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberAnswer {
    /// Applied; `moved` partitions were given a reassignment.
    Done { moved: usize },
    /// This node does not lead `__meta` (0: no leader known): ask the leader.
    NotLeader(u64),
    /// Refused, nothing changed.
    Refused(String),
    /// Accepted but not applied in time (retriable).
    Failed(String),
}

impl MetaActor {
    /// Checks `op` against this leader's view (the live nodes are the `__meta` replicas it heard
    /// from within two election timeouts) and proposes it; answered once applied.
    pub(super) fn member_op(&mut self, op: MemberOp, reply: oneshot::Sender<MemberAnswer>, ctx: &mut Context<Self>) {
        use crate::meta::members::{check_remove, evacuate, RemoveNode};
        use crate::meta::reassign::{AlterReassignments, ReassignItem};
        if !self.core.is_leader() || self.shell.is_failed() {
            let _ = reply.send(MemberAnswer::NotLeader(self.core.role().leader));
            return;
        }
        let cs = self.core.conf_state();
        let state = &self.core.sm().state;
        let live = self.live_nodes();
        let mut cmds = Vec::new();
        let mut moved = 0;
        let checked = match &op {
            MemberOp::Add(m) => check_add(&state.members, m, false).map(|()| {
                cmds.push(MetaCommand::new(Cmd::AddNode(AddNode { member: Some(m.clone()), own: false })));
            }),
            MemberOp::Evacuate(id) | MemberOp::Remove(id) => (|| {
                let id = *id;
                check_remove(&cs, &state.members, id, &live)?;
                let removing = matches!(op, MemberOp::Remove(_));
                if removing {
                    for (topic, t) in &state.topics {
                        for (i, p) in t.partitions.iter().enumerate() {
                            if p.replicas.contains(&id) && !p.replicas.iter().any(|r| *r != id && live.contains(r)) {
                                return Err(format!(
                                    "partition {topic}-{i} has no live replica besides node {id} (replicas {:?}): removing it would lose the partition",
                                    p.replicas
                                ));
                            }
                        }
                    }
                }
                let targets: std::collections::BTreeSet<u64> =
                    live.iter().copied().filter(|b| *b != id && state.brokers.contains_key(b)).collect();
                let plan = evacuate(state, id, &targets)?;
                moved = plan.len();
                if !plan.is_empty() {
                    let items =
                        plan.into_iter().map(|(group, target)| ReassignItem { group, target, cancel: false }).collect();
                    cmds.push(MetaCommand::new(Cmd::AlterReassignments(AlterReassignments { items })));
                }
                if removing {
                    cmds.push(MetaCommand::new(Cmd::RemoveNode(RemoveNode { node_id: id })));
                }
                Ok(())
            })(),
        };
        if let Err(e) = checked {
            let _ = reply.send(MemberAnswer::Refused(e));
            return;
        }
        slog::info!(self.logger, "membership change"; "op" => ?op, "reassigned" => moved, "live" => ?live);
        let mut waiting = Vec::new();
        for cmd in cmds {
            let (tx, rx) = oneshot::channel();
            self.start_proposal(cmd, Some(tx), false, ctx);
            waiting.push(rx);
        }
        actix::spawn(async move {
            for rx in waiting {
                match rx.await {
                    Ok(Ok(MetaResult::Rejected { message, .. })) => {
                        let _ = reply.send(MemberAnswer::Refused(message));
                        return;
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        let _ = reply.send(MemberAnswer::Failed(e.to_string()));
                        return;
                    }
                    Err(_) => {
                        let _ = reply.send(MemberAnswer::Failed(MetaError::Dropped.to_string()));
                        return;
                    }
                }
            }
            let _ = reply.send(MemberAnswer::Done { moved });
        });
    }
}
