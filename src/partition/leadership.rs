//! Who leads a partition group, from the actor's side: retrying the first campaign while no
//! leader is known, asking the leader for a transfer to this replica (a preferred leader
//! election, `PartitionMsg::ElectSelf`), and handing the leadership away when this node stops
//! (`PartitionMsg::Resign`, a controlled shutdown: `crate::shutdown`).

use actix::prelude::*;
use tokio::sync::oneshot;

use super::PartitionActor;
use crate::raft::core::resign::Resign;

impl PartitionActor {
    /// See `campaign_retries`: campaign again while no leader is known.
    pub(super) fn retry_campaign(&mut self) {
        let role = self.core.raft.role();
        // Only while pre-voting at term 0: a pre-vote changes no term, so a retry never adds an
        // election of its own.
        if role.leader != 0 || role.term > 0 || role.role != raft::StateRole::PreCandidate {
            self.campaign_retries = 0;
            return;
        }
        self.campaign_retries -= 1;
        let _ = self.core.raft.campaign();
    }

    /// See `elect_self_ticks`: asks the known leader for a transfer to this replica (raft-rs
    /// ignores a repeat while that transfer is in progress).
    pub(super) fn elect_self(&mut self, ctx: &mut Context<Self>) {
        let me = self.links.transport.me();
        let leader = self.core.raft.role().leader;
        if leader == me {
            self.elect_self_ticks = 0;
        } else if leader != 0 {
            self.core.raft.transfer_leader(me);
            self.schedule_drive(ctx);
        }
    }

    /// This node is stopping: hand the leadership to a live voter (`RaftCore::resign`) and ask
    /// for none back from now on.
    pub(super) fn resign(&mut self, reply: oneshot::Sender<Resign>, ctx: &mut Context<Self>) {
        self.resigning = true;
        self.elect_self_ticks = 0;
        let heard = crate::shutdown::heard_lately(self.links.transport.liveness(), &self.reopen.settings);
        let r = self.core.raft.resign(heard);
        if matches!(r, Resign::Transferring(_)) {
            self.schedule_drive(ctx);
        }
        let _ = reply.send(r);
    }
}
