//! The group coordinator actor: the shell around [`Coordinator`]. It owns the mailbox, the reply
//! channels of parked JoinGroup and SyncGroup requests (by waiter number), and a timer that
//! fires the groups' session, join and sync deadlines. Nothing here waits on the disk: offsets
//! are committed by the OffsetCommit handler through `__meta` after this actor has checked the
//! member's generation.

use std::collections::HashMap;
use std::time::Duration;

use actix::prelude::*;
use slog::Logger;
use tokio::sync::oneshot;

use super::coordinator::Coordinator;
use super::types::*;
use crate::clock::{RandomSource, SharedClock};
use crate::error::code;

/// How often group timers are checked.
pub const TICK_INTERVAL: Duration = Duration::from_millis(100);

/// The coordinator actor's one message enum.
#[derive(Message)]
#[rtype(result = "()")]
pub enum GroupMsg {
    /// JoinGroup; answered when the join completes (or at once).
    Join {
        req: JoinRequest,
        reply: oneshot::Sender<JoinResponse>,
    },
    /// SyncGroup; followers are answered when the leader has synced.
    Sync {
        req: SyncRequest,
        reply: oneshot::Sender<SyncResponse>,
    },
    Heartbeat {
        who: MemberRef,
        reply: oneshot::Sender<i16>,
    },
    /// LeaveGroup: the top-level error and one per member.
    Leave {
        group_id: String,
        members: Vec<LeavingMember>,
        reply: oneshot::Sender<(i16, Vec<i16>)>,
    },
    /// May this member commit offsets now? (also refreshes its session)
    ValidateCommit {
        who: MemberRef,
        reply: oneshot::Sender<Result<(), i16>>,
    },
    Describe {
        groups: Vec<String>,
        reply: oneshot::Sender<Vec<Option<GroupDescription>>>,
    },
    List {
        reply: oneshot::Sender<Vec<GroupListing>>,
    },
    /// DeleteGroups: (group, whether `__meta` holds offsets for it) → error per group.
    Delete {
        groups: Vec<(String, bool)>,
        reply: oneshot::Sender<Vec<i16>>,
    },
}

/// The group coordinator of this node (one actor for all groups).
pub struct GroupCoordinator {
    core: Coordinator,
    clock: SharedClock,
    next_waiter: Waiter,
    joins: HashMap<Waiter, (String, oneshot::Sender<JoinResponse>)>,
    syncs: HashMap<Waiter, oneshot::Sender<SyncResponse>>,
    logger: Logger,
}

impl GroupCoordinator {
    pub fn new(
        settings: CoordinatorSettings,
        clock: SharedClock,
        random: Box<dyn RandomSource>,
        logger: Logger,
    ) -> Self {
        GroupCoordinator {
            core: Coordinator::new(settings, random),
            clock,
            next_waiter: 0,
            joins: HashMap::new(),
            syncs: HashMap::new(),
            logger,
        }
    }

    fn waiter(&mut self) -> Waiter {
        self.next_waiter += 1;
        self.next_waiter
    }

    /// Delivers the answers the core produced.
    fn deliver(&mut self) {
        for effect in self.core.take_effects() {
            match effect {
                Effect::Join { waiter, response } => {
                    let Some((group, reply)) = self.joins.remove(&waiter) else { continue };
                    if response.error == code::NONE && response.leader == response.member_id {
                        slog::info!(self.logger, "group rebalanced";
                            "group" => &group, "generation" => response.generation_id,
                            "members" => response.members.len(),
                            "protocol" => response.protocol_name.as_deref().unwrap_or(""));
                    } else if response.error != code::NONE && response.error != code::MEMBER_ID_REQUIRED {
                        slog::debug!(self.logger, "join failed"; "group" => &group, "member" => &response.member_id, "error" => response.error);
                    }
                    let _ = reply.send(response);
                }
                Effect::Sync { waiter, response } => {
                    if let Some(reply) = self.syncs.remove(&waiter) {
                        let _ = reply.send(response);
                    }
                }
            }
        }
    }
}

impl Actor for GroupCoordinator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(TICK_INTERVAL, |act, _| {
            act.core.tick(act.clock.now());
            act.deliver();
        });
    }
}

impl Handler<GroupMsg> for GroupCoordinator {
    type Result = ();

    fn handle(&mut self, msg: GroupMsg, _: &mut Self::Context) {
        let now = self.clock.now();
        match msg {
            GroupMsg::Join { req, reply } => {
                let waiter = self.waiter();
                self.joins.insert(waiter, (req.group_id.clone(), reply));
                self.core.join(now, waiter, req);
            }
            GroupMsg::Sync { req, reply } => {
                let waiter = self.waiter();
                self.syncs.insert(waiter, reply);
                self.core.sync(now, waiter, req);
            }
            GroupMsg::Heartbeat { who, reply } => {
                let _ = reply.send(self.core.heartbeat(now, &who));
            }
            GroupMsg::Leave { group_id, members, reply } => {
                let result = self.core.leave(now, &group_id, &members);
                slog::debug!(self.logger, "leave group"; "group" => &group_id, "members" => members.len(), "errors" => ?result);
                let _ = reply.send(result);
            }
            GroupMsg::ValidateCommit { who, reply } => {
                let _ = reply.send(self.core.validate_commit(now, &who));
            }
            GroupMsg::Describe { groups, reply } => {
                let _ = reply.send(groups.iter().map(|g| self.core.describe(g)).collect());
            }
            GroupMsg::List { reply } => {
                let _ = reply.send(self.core.list());
            }
            GroupMsg::Delete { groups, reply } => {
                let _ = reply.send(groups.iter().map(|(g, has_offsets)| self.core.delete(g, *has_offsets)).collect());
            }
        }
        self.deliver();
    }
}
