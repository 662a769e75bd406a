//! Who leads a partition group, from the actor's side: a new group's paced first campaign and
//! retrying it while no leader is known, asking the leader for a transfer to this replica (a preferred leader
//! election, `PartitionMsg::ElectSelf`), and handing the leadership away when this node stops
//! (`PartitionMsg::Resign`, a controlled shutdown: `crate::shutdown`).

use actix::prelude::*;
use tokio::sync::oneshot;

use super::PartitionActor;
use crate::raft::core::resign::Resign;
use crate::raft::first_campaign::Step;

impl PartitionActor {
    /// Whether tick `n` counts (`raft::ticker::TickGate::admit_tick`).
    pub(super) fn admit_tick(&mut self, n: u64) -> bool {
        let latest = self.links.transport.liveness().latest_tick();
        self.tick_gate.admit_tick(std::time::Instant::now(), n, latest)
    }

    /// The first campaign of a new group's preferred replica, on each tick (see
    /// `raft::first_campaign`): campaigns once a slot is free; false while it waits for one (the
    /// tick must not reach Raft).
    pub(super) fn first_campaign_tick(&mut self) -> bool {
        let bound = 2 * self.reopen.settings.election_tick.max(1) as u64;
        let leader_known = self.core.raft.role().leader != 0;
        match self.first_campaign.tick(leader_known, bound, &self.links.campaigns) {
            Step::Wait => false,
            Step::Campaign => {
                let _ = self.core.raft.campaign();
                self.campaign_retries = 5;
                true
            }
            Step::Tick => true,
        }
    }

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
