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
                    }
                }
                Ok(Err(e)) => refuse(format!("the cluster did not record the node: {e}")),
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
