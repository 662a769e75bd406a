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
//!
//! The coordinator of every group is the `__meta` leader: the actor polls the `__meta` status
//! (every [`STATUS_INTERVAL`]) and serves groups only while this node leads `__meta` and has
//! applied everything committed; otherwise requests get NOT_COORDINATOR (another node leads),
//! COORDINATOR_LOAD_IN_PROGRESS (catching up) or COORDINATOR_NOT_AVAILABLE (no leader). When the
//! node stops leading, it forgets its groups; the new leader reads them from `__meta`.

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
use crate::raft::core::GroupStatus;

/// How often group timers are checked.
pub const TICK_INTERVAL: Duration = Duration::from_millis(100);

/// How often the `__meta` leadership is checked.
pub const STATUS_INTERVAL: Duration = Duration::from_millis(200);

/// Offset expiry (`[offsets]`): how long offsets are kept and how often expiry runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetRetention {
    pub retention: Duration,
    pub check_interval: Duration,
}

impl Default for OffsetRetention {
    fn default() -> Self {
        OffsetRetention { retention: Duration::from_secs(7 * 24 * 3600), check_interval: Duration::from_secs(600) }
    }
}

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
        reply: oneshot::Sender<Result<Vec<Option<GroupDescription>>, i16>>,
    },
    List {
        reply: oneshot::Sender<Result<Vec<GroupListing>, i16>>,
    },
    /// Which node coordinates groups (the `__meta` leader; 0: none now), and whether this node
    /// serves groups now (or the error code why not).
    Coordinator {
        reply: oneshot::Sender<(u64, Result<(), i16>)>,
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
    node_id: u64,
    /// The `__meta` leader as last seen (0: none) and its term.
    meta_leader: (u64, u64),
    /// This node leads `__meta` and has applied everything of earlier terms (latched per term).
    ready: bool,
    meta: Addr<MetaActor>,
    image: watch::Receiver<Arc<MetaState>>,
    clock: SharedClock,
    next_waiter: Waiter,
    joins: HashMap<Waiter, (String, oneshot::Sender<JoinResponse>)>,
    syncs: HashMap<Waiter, oneshot::Sender<SyncResponse>>,
    retention: OffsetRetention,
    logger: Logger,
}

impl GroupCoordinator {
    pub fn new(
        node_id: u64,
        settings: CoordinatorSettings,
        meta: Addr<MetaActor>,
        image: watch::Receiver<Arc<MetaState>>,
        clock: SharedClock,
        random: Box<dyn RandomSource>,
        logger: Logger,
    ) -> Self {
        GroupCoordinator {
            core: Coordinator::new(settings, random),
            node_id,
            meta_leader: (0, 0),
            ready: false,
            meta,
            image,
            clock,
            next_waiter: 0,
            joins: HashMap::new(),
            syncs: HashMap::new(),
            retention: OffsetRetention::default(),
            logger,
        }
    }

    /// Sets offset expiry (`[offsets]`).
    pub fn with_offset_retention(mut self, retention: OffsetRetention) -> Self {
        self.retention = retention;
        self
    }

    /// The expiry timer: on the coordinator, proposes the removal of expired offsets
    /// (`group::expiry`) to `__meta`, without waiting.
    fn expire_offsets(&mut self) {
        if self.coordinating().is_err() {
            return;
        }
        let image = self.image.borrow().clone();
        let retention_ms = i64::try_from(self.retention.retention.as_millis()).unwrap_or(i64::MAX);
        let due = super::expiry::expired(&image, |g| self.core.describe(g), self.clock.unix_millis(), retention_ms);
        for d in due {
            slog::info!(self.logger, "expiring committed offsets"; "group" => &d.group, "offsets" => d.offsets.len());
            let (tx, _) = oneshot::channel();
            self.meta.do_send(MetaMsg::Propose { cmd: MetaCommand::new(Cmd::DeleteOffsets(d)), reply: Some(tx) });
        }
    }

    fn waiter(&mut self) -> Waiter {
        self.next_waiter += 1;
        self.next_waiter
    }

    /// Whether this node coordinates groups now: Ok, or the error code for the client.
    fn coordinating(&self) -> Result<(), i16> {
        match (self.meta_leader.0, self.ready) {
            (0, _) => Err(code::COORDINATOR_NOT_AVAILABLE),
            (leader, _) if leader != self.node_id => Err(code::NOT_COORDINATOR),
            (_, false) => Err(code::COORDINATOR_LOAD_IN_PROGRESS),
            (_, true) => Ok(()),
        }
    }

    /// Asks `__meta` for its leader and applied progress.
    fn poll_status(&mut self) -> impl ActorFuture<Self, Output = ()> {
        let (tx, rx) = oneshot::channel();
        self.meta.do_send(MetaMsg::Status { reply: tx });
        rx.into_actor(self).map(|status, act, _| {
            if let Ok(status) = status {
                act.update_status(&status);
            }
        })
    }

    /// Polls the `__meta` status until this node knows the leader and, if it leads, has caught
    /// up (at most about 3 s), so that the first client requests after a start are served.
    fn wait_ready(&mut self) -> impl ActorFuture<Self, Output = ()> {
        let meta = self.meta.clone();
        let me = self.node_id;
        let poll = async move {
            let mut last = None;
            for _ in 0..60 {
                let (tx, rx) = oneshot::channel();
                meta.do_send(MetaMsg::Status { reply: tx });
                if let Ok(s) = rx.await {
                    let done = s.leader != 0 && (s.leader != me || caught_up(&s));
                    last = Some(s);
                    if done {
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            last
        };
        poll.into_actor(self).map(|status, act, _| {
            if let Some(status) = status {
                act.update_status(&status);
            }
        })
    }

    fn update_status(&mut self, status: &GroupStatus) {
        let was_coordinator = self.coordinating().is_ok();
        let leader = (status.leader, status.term);
        if leader != self.meta_leader {
            if leader.0 != self.meta_leader.0 {
                slog::info!(self.logger, "the group coordinator is the __meta leader";
                    "leader" => leader.0, "term" => leader.1, "me" => self.node_id);
            }
            self.meta_leader = leader;
            self.ready = false;
        }
        if leader.0 == self.node_id && caught_up(status) {
            self.ready = true;
        }
        if was_coordinator && self.coordinating().is_err() {
            self.forget_all();
        }
    }

    /// This node no longer coordinates: parked requests are told so, groups are forgotten.
    fn forget_all(&mut self) {
        slog::info!(self.logger, "no longer the group coordinator: forgetting groups"; "groups" => self.core.list().len());
        self.core.clear();
        for (_, (_, reply)) in self.joins.drain() {
            let _ = reply.send(JoinResponse::error(code::NOT_COORDINATOR, ""));
        }
        for (_, reply) in self.syncs.drain() {
            let _ = reply.send(SyncResponse::error(code::NOT_COORDINATOR));
        }
    }

    /// Answers a request with `error` without looking at any group.
    fn refuse(msg: GroupMsg, error: i16) {
        match msg {
            GroupMsg::Join { req, reply } => {
                let _ = reply.send(JoinResponse::error(error, req.member_id));
            }
            GroupMsg::Sync { reply, .. } => {
                let _ = reply.send(SyncResponse::error(error));
            }
            GroupMsg::Heartbeat { reply, .. } => {
                let _ = reply.send(error);
            }
            GroupMsg::Leave { members, reply, .. } => {
                let _ = reply.send((error, vec![error; members.len()]));
            }
            GroupMsg::ValidateCommit { reply, .. } => {
                let _ = reply.send(Err(error));
            }
            GroupMsg::Describe { reply, .. } => {
                let _ = reply.send(Err(error));
            }
            GroupMsg::List { reply } => {
                let _ = reply.send(Err(error));
            }
            GroupMsg::Delete { groups, reply } => {
                let _ = reply.send(vec![error; groups.len()]);
            }
            GroupMsg::Coordinator { reply } => {
                let _ = reply.send((0, Err(error)));
            }
        }
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
    fn store(&mut self, mut snapshot: crate::meta::command::StoreGroup, then: Vec<Effect>, ctx: &mut Context<Self>) {
        // When the group entered this state: for an Empty group, offset expiry counts from it.
        snapshot.state_timestamp = self.clock.unix_millis();
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

/// Everything committed in `__meta` so far is applied here, including the entries of earlier
/// terms (the leader's log holds nothing uncommitted).
fn caught_up(s: &GroupStatus) -> bool {
    s.applied >= s.commit && s.commit >= s.last_index
}

impl Actor for GroupCoordinator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Learn who leads __meta before serving the first request.
        let first = self.wait_ready();
        ctx.wait(first);
        ctx.run_interval(STATUS_INTERVAL, |act, ctx| {
            let poll = act.poll_status();
            ctx.spawn(poll);
        });
        ctx.run_interval(self.retention.check_interval, |act, _| act.expire_offsets());
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
        if let GroupMsg::Coordinator { reply } = msg {
            let _ = reply.send((self.meta_leader.0, self.coordinating()));
            return;
        }
        if let Err(error) = self.coordinating() {
            return Self::refuse(msg, error);
        }
        match &msg {
            GroupMsg::Join { req, .. } => self.load(&req.group_id),
            GroupMsg::Sync { req, .. } => self.load(&req.group_id),
            GroupMsg::Heartbeat { who, .. } | GroupMsg::ValidateCommit { who, .. } => self.load(&who.group_id),
            GroupMsg::Leave { group_id, .. } => self.load(group_id),
            GroupMsg::Describe { groups, .. } => groups.iter().for_each(|g| self.load(g)),
            GroupMsg::Delete { groups, .. } => groups.iter().for_each(|(g, _)| self.load(g)),
            GroupMsg::List { .. } => self.load_all(),
            GroupMsg::Coordinator { .. } => {}
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
                let _ = reply.send(Ok(groups.iter().map(|g| self.core.describe(g)).collect()));
            }
            GroupMsg::List { reply } => {
                let _ = reply.send(Ok(self.core.list()));
            }
            GroupMsg::Coordinator { .. } => unreachable!("answered above"),
            GroupMsg::Delete { groups, reply } => {
                let _ = reply.send(groups.iter().map(|(g, has_offsets)| self.core.delete(g, *has_offsets)).collect());
            }
        }
        self.deliver(ctx);
    }
}
