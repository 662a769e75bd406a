//! The group coordinator actor: the shell around [`Coordinator`]. It owns the mailbox, the reply
//! channels of parked JoinGroup and SyncGroup requests (by waiter number), and a timer that
//! fires the groups' session, join and sync deadlines.
//!
//! Nothing here waits on the disk. A group's membership is stored in `__meta` after each
//! rebalance ([`Effect::Store`]): the actor proposes it and answers the requests that depend on
//! it when the proposal comes back, as a message, meanwhile serving everything else. A group
//! that is not in memory is read back from the published `__meta` image on first use (after a
//! restart). Offsets are committed by the OffsetCommit handler through `__meta` after this
//! actor has checked the member's generation.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use slog::Logger;
use tokio::sync::{oneshot, watch};

use super::coordinator::Coordinator;
use super::types::*;
use crate::clock::{RandomSource, SharedClock};
use crate::error::code;
use crate::meta::command::{Cmd, MetaCommand};
use crate::meta::{MetaActor, MetaMsg, MetaState};

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
    meta: Addr<MetaActor>,
    image: watch::Receiver<Arc<MetaState>>,
    clock: SharedClock,
    next_waiter: Waiter,
    joins: HashMap<Waiter, (String, oneshot::Sender<JoinResponse>)>,
    syncs: HashMap<Waiter, oneshot::Sender<SyncResponse>>,
    logger: Logger,
}

impl GroupCoordinator {
    pub fn new(
        settings: CoordinatorSettings,
        meta: Addr<MetaActor>,
        image: watch::Receiver<Arc<MetaState>>,
        clock: SharedClock,
        random: Box<dyn RandomSource>,
        logger: Logger,
    ) -> Self {
        GroupCoordinator {
            core: Coordinator::new(settings, random),
            meta,
            image,
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

    /// Reads a group stored in `__meta` into memory if it is not there yet.
    fn load(&mut self, group: &str) {
        if self.core.group(group).is_none() {
            let image = self.image.borrow().clone();
            if let Some(stored) = image.consumer_groups.get(group) {
                slog::info!(self.logger, "group restored from __meta";
                    "group" => group, "generation" => stored.generation, "members" => stored.members.len());
                self.core.restore(self.clock.now(), stored);
            }
        }
    }

    /// Reads every group stored in `__meta` into memory (for listing).
    fn load_all(&mut self) {
        let image = self.image.borrow().clone();
        for g in image.consumer_groups.keys() {
            self.load(g);
        }
    }

    /// Carries out what the core produced.
    fn deliver(&mut self, ctx: &mut Context<Self>) {
        let effects = self.core.take_effects();
        self.deliver_effects(effects, ctx);
    }

    fn deliver_effects(&mut self, effects: Vec<Effect>, ctx: &mut Context<Self>) {
        for effect in effects {
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
                Effect::Store { snapshot, then } => self.store(snapshot, then, ctx),
            }
        }
    }

    /// Proposes a group's membership to `__meta`; `then` is delivered once it is applied. If it
    /// cannot be stored, those requests are answered COORDINATOR_NOT_AVAILABLE (the client
    /// retries; the coordinator still has the state in memory).
    fn store(&mut self, snapshot: crate::meta::command::StoreGroup, then: Vec<Effect>, ctx: &mut Context<Self>) {
        let (tx, rx) = oneshot::channel();
        let group = snapshot.group.clone();
        self.meta.do_send(MetaMsg::Propose { cmd: MetaCommand::new(Cmd::StoreGroup(snapshot)), reply: Some(tx) });
        ctx.spawn(rx.into_actor(self).map(move |result, act, ctx| {
            let stored = matches!(result, Ok(Ok(_)));
            if !stored {
                slog::warn!(act.logger, "group membership not stored"; "group" => &group, "result" => ?result.ok());
            }
            let then = then
                .into_iter()
                .map(|e| match e {
                    e if stored => e,
                    Effect::Join { waiter, response } => Effect::Join {
                        waiter,
                        response: JoinResponse::error(code::COORDINATOR_NOT_AVAILABLE, response.member_id),
                    },
                    Effect::Sync { waiter, .. } => {
                        Effect::Sync { waiter, response: SyncResponse::error(code::COORDINATOR_NOT_AVAILABLE) }
                    }
                    other => other,
                })
                .collect();
            act.deliver_effects(then, ctx);
        }));
    }
}

impl Actor for GroupCoordinator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(TICK_INTERVAL, |act, ctx| {
            act.core.tick(act.clock.now());
            act.deliver(ctx);
        });
    }
}

impl Handler<GroupMsg> for GroupCoordinator {
    type Result = ();

    fn handle(&mut self, msg: GroupMsg, ctx: &mut Self::Context) {
        let now = self.clock.now();
        match &msg {
            GroupMsg::Join { req, .. } => self.load(&req.group_id),
            GroupMsg::Sync { req, .. } => self.load(&req.group_id),
            GroupMsg::Heartbeat { who, .. } | GroupMsg::ValidateCommit { who, .. } => self.load(&who.group_id),
            GroupMsg::Leave { group_id, .. } => self.load(group_id),
            GroupMsg::Describe { groups, .. } => groups.iter().for_each(|g| self.load(g)),
            GroupMsg::Delete { groups, .. } => groups.iter().for_each(|(g, _)| self.load(g)),
            GroupMsg::List { .. } => self.load_all(),
        }
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
        self.deliver(ctx);
    }
}
