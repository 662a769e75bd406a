//! The transaction coordinator actor (the shell around `txn::core`): one per node, serving only
//! while this node leads `__meta` (and has applied everything of earlier terms). Requests from
//! the Kafka handlers are proposed to `__meta` as `Cmd::Txn` without blocking the actor; a
//! transaction that enters PrepareCommit/PrepareAbort gets its markers written to every
//! partition (retried with backoff until each answers), then CompleteCommit/CompleteAbort is
//! proposed. Timers are messages: the status poll (which also resumes every Prepare*
//! transaction after a failover), the timed-out-transaction abort, and the id expiry.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use slog::Logger;
use tokio::sync::{oneshot, watch};

use super::code;
use super::core;
use super::markers::{Marker, MarkerSink};
use super::model::{CompleteTxn, TxnCommand, TxnMeta, TxnOp, TxnReply, TxnState};
use crate::clock::SharedClock;
use crate::meta::command::{Cmd, MetaCommand};
use crate::meta::state::MetaResult;
use crate::meta::{MetaActor, MetaMsg, MetaState};
use crate::raft::core::GroupStatus;

/// How often the `__meta` leader and progress are polled (and Prepare* transactions resumed).
const STATUS_INTERVAL: Duration = Duration::from_millis(500);
/// Marker retry backoff: doubles from the base up to the maximum.
const MARKER_BACKOFF: Duration = Duration::from_millis(50);
const MARKER_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// The coordinator's configuration (`[transactions]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnSettings {
    /// `transaction.max.timeout.ms`.
    pub max_timeout: Duration,
    /// `transactional.id.expiration.ms`.
    pub id_expiration: Duration,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
    pub abort_timed_out_interval: Duration,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`.
    pub remove_expired_interval: Duration,
}

impl Default for TxnSettings {
    fn default() -> Self {
        TxnSettings {
            max_timeout: Duration::from_secs(15 * 60),
            id_expiration: Duration::from_secs(7 * 24 * 3600),
            abort_timed_out_interval: Duration::from_secs(10),
            remove_expired_interval: Duration::from_secs(3600),
        }
    }
}

/// A topic partition of a transaction.
type Tp = (String, i32);

/// Everything the coordinator does, one enum.
#[derive(Message)]
#[rtype(result = "()")]
pub enum TxnMsg {
    /// A transition from a Kafka handler; answered once applied (or with the reason not).
    Request { op: TxnOp, reply: oneshot::Sender<Result<TxnReply, i16>> },
    /// Whether this node coordinates transactions now (the `__meta` leader, 0: none).
    Coordinator { reply: oneshot::Sender<(u64, Result<(), i16>)> },
    /// The `__meta` status poll's answer.
    Status(GroupStatus),
    /// Timer: poll the status.
    PollStatus,
    /// Timer: abort timed-out transactions.
    AbortTimedOut,
    /// Timer: remove expired transactional ids.
    RemoveExpired,
    /// A transaction entered Prepare*: write its markers.
    Prepared(Arc<TxnMeta>),
    /// (Re)send one marker.
    SendMarker { id: String, tp: Tp, marker: Marker },
    /// A partition's answer to a marker.
    MarkerDone { id: String, tp: Tp, marker: Marker, result: Result<i64, i16> },
    /// The Complete* proposal of a transaction was answered.
    Completed { id: String, marker: Marker },
    /// Replace the marker sink (tests inject a fake one into a running node).
    SetSink(Arc<dyn MarkerSink>),
}

/// Markers in flight for one transaction.
struct Inflight {
    marker: Marker,
    remaining: BTreeSet<Tp>,
    attempts: HashMap<Tp, u32>,
    completing: bool,
}

/// The transaction coordinator of this node.
pub struct TxnCoordinator {
    node_id: u64,
    settings: TxnSettings,
    meta: Addr<MetaActor>,
    image: watch::Receiver<Arc<MetaState>>,
    clock: SharedClock,
    sink: Arc<dyn MarkerSink>,
    /// The `__meta` leader as last seen (0: none) and its term (the coordinator epoch).
    meta_leader: (u64, u64),
    ready: bool,
    inflight: HashMap<String, Inflight>,
    logger: Logger,
}

impl TxnCoordinator {
    pub fn new(
        node_id: u64,
        settings: TxnSettings,
        meta: Addr<MetaActor>,
        image: watch::Receiver<Arc<MetaState>>,
        clock: SharedClock,
        sink: Arc<dyn MarkerSink>,
        logger: Logger,
    ) -> Self {
        TxnCoordinator {
            node_id,
            settings,
            meta,
            image,
            clock,
            sink,
            meta_leader: (0, 0),
            ready: false,
            inflight: HashMap::new(),
            logger,
        }
    }

    /// Whether this node coordinates now: Ok, or the error code for the client.
    fn coordinating(&self) -> Result<(), i16> {
        match (self.meta_leader.0, self.ready) {
            (0, _) => Err(code::COORDINATOR_NOT_AVAILABLE),
            (leader, _) if leader != self.node_id => Err(code::NOT_COORDINATOR),
            (_, false) => Err(code::COORDINATOR_LOAD_IN_PROGRESS),
            (_, true) => Ok(()),
        }
    }

    fn coordinator_epoch(&self) -> i32 {
        i32::try_from(self.meta_leader.1).unwrap_or(i32::MAX)
    }

    fn update_status(&mut self, s: &GroupStatus, ctx: &mut Context<Self>) {
        let leader = (s.leader, s.term);
        if leader != self.meta_leader {
            self.meta_leader = leader;
            self.ready = false;
            if !self.inflight.is_empty() {
                slog::info!(self.logger, "__meta leadership changed: markers in flight stop"; "leader" => leader.0, "term" => leader.1);
            }
            self.inflight.clear();
        }
        if leader.0 == self.node_id && s.applied >= s.commit && s.commit >= s.last_index {
            self.ready = true;
        }
        if self.coordinating().is_ok() {
            // Resume (or start) every transaction whose markers are not all written: after a
            // failover the new coordinator completes what the old one prepared.
            let image = self.image.borrow().clone();
            for t in core::preparing(&image.transactions) {
                if !self.inflight.contains_key(&t.transactional_id) {
                    self.start_markers(t.clone(), ctx);
                }
            }
        }
    }

    /// Proposes a transaction command; `then` gets the reply on the actor.
    fn propose(
        &mut self,
        op: TxnOp,
        ctx: &mut Context<Self>,
        then: impl FnOnce(&mut Self, Result<TxnReply, i16>, &mut Context<Self>) + 'static,
    ) {
        let cmd = MetaCommand::new(Cmd::Txn(TxnCommand { op: Some(op), now_ms: self.clock.unix_millis() }));
        let (tx, rx) = oneshot::channel();
        self.meta.do_send(MetaMsg::Propose { cmd, reply: Some(tx) });
        let fut = async move {
            match rx.await {
                Ok(Ok(MetaResult::Txn(r))) => Ok(r),
                Ok(Ok(MetaResult::Rejected { code, .. })) => Err(code),
                Ok(Ok(_)) => Err(code::UNKNOWN_SERVER_ERROR),
                // Not (or no longer) the leader, or the proposal timed out: the client retries.
                Ok(Err(_)) | Err(_) => Err(code::NOT_COORDINATOR),
            }
        };
        ctx.spawn(fut.into_actor(self).map(move |r, act, ctx| {
            if let Ok(reply) = &r {
                if let Some(t) = &reply.txn {
                    if matches!(t.state(), TxnState::PrepareCommit | TxnState::PrepareAbort) {
                        act.start_markers(t.clone(), ctx);
                    }
                }
            }
            then(act, r, ctx)
        }));
    }

    fn start_markers(&mut self, t: Arc<TxnMeta>, ctx: &mut Context<Self>) {
        if self.coordinating().is_err() {
            return;
        }
        let marker = Marker {
            producer_id: t.producer_id,
            producer_epoch: t.epoch(),
            commit: t.state() == TxnState::PrepareCommit,
            coordinator_epoch: self.coordinator_epoch(),
        };
        if self.inflight.get(&t.transactional_id).is_some_and(|i| i.marker == marker) {
            return;
        }
        let remaining: BTreeSet<Tp> =
            t.partitions.iter().flat_map(|tp| tp.partitions.iter().map(|p| (tp.topic.clone(), *p))).collect();
        slog::debug!(self.logger, "writing transaction markers";
            "transactional_id" => &t.transactional_id, "commit" => marker.commit, "partitions" => remaining.len());
        let id = t.transactional_id.clone();
        for tp in &remaining {
            ctx.notify(TxnMsg::SendMarker { id: id.clone(), tp: tp.clone(), marker });
        }
        self.inflight.insert(id.clone(), Inflight { marker, remaining, attempts: HashMap::new(), completing: false });
        self.maybe_complete(&id, ctx);
    }

    fn send_marker(&mut self, id: String, tp: Tp, marker: Marker, ctx: &mut Context<Self>) {
        if !self.inflight.get(&id).is_some_and(|i| i.marker == marker && i.remaining.contains(&tp)) {
            return;
        }
        // A partition that no longer exists (its topic was deleted) needs no marker (Kafka skips
        // removed partitions).
        let exists =
            self.image.borrow().topics.get(&tp.0).is_some_and(|t| tp.1 >= 0 && (tp.1 as usize) < t.partitions.len());
        if !exists {
            ctx.notify(TxnMsg::MarkerDone { id, tp, marker, result: Ok(-1) });
            return;
        }
        let fut = self.sink.send(&tp.0, tp.1, marker);
        ctx.spawn(fut.into_actor(self).map(move |result, _, ctx| {
            ctx.notify(TxnMsg::MarkerDone { id, tp, marker, result });
        }));
    }

    fn marker_done(&mut self, id: String, tp: Tp, marker: Marker, result: Result<i64, i16>, ctx: &mut Context<Self>) {
        let Some(inflight) = self.inflight.get_mut(&id).filter(|i| i.marker == marker) else { return };
        match result {
            Ok(_) => {
                inflight.remaining.remove(&tp);
                self.maybe_complete(&id, ctx);
            }
            Err(error) => {
                let attempt = inflight.attempts.entry(tp.clone()).or_default();
                *attempt += 1;
                let delay = MARKER_BACKOFF.saturating_mul(1 << (*attempt).min(10)).min(MARKER_BACKOFF_MAX);
                // The first failure of each partition's marker at info, the rest sparsely.
                if *attempt == 1 {
                    slog::info!(self.logger, "transaction marker failed; retrying";
                        "transactional_id" => &id, "topic" => &tp.0, "partition" => tp.1,
                        "error" => error, "attempt" => *attempt);
                } else if attempt.is_power_of_two() {
                    slog::debug!(self.logger, "transaction marker failed; retrying";
                        "transactional_id" => &id, "topic" => &tp.0, "partition" => tp.1,
                        "error" => error, "attempt" => *attempt);
                }
                ctx.notify_later(TxnMsg::SendMarker { id, tp, marker }, delay);
            }
        }
    }

    fn maybe_complete(&mut self, id: &str, ctx: &mut Context<Self>) {
        let Some(inflight) = self.inflight.get_mut(id) else { return };
        if !inflight.remaining.is_empty() || inflight.completing {
            return;
        }
        inflight.completing = true;
        let marker = inflight.marker;
        let op = TxnOp::Complete(CompleteTxn {
            transactional_id: id.to_string(),
            producer_id: marker.producer_id,
            producer_epoch: i32::from(marker.producer_epoch),
            commit: marker.commit,
        });
        let id = id.to_string();
        self.propose(op, ctx, move |act, r, ctx| {
            match &r {
                Ok(reply) if reply.error == code::NONE => {
                    crate::metrics::registry().txn_completed(act.node_id, marker.commit);
                }
                other => slog::info!(act.logger, "completing a transaction failed (resumed by the next poll)";
                    "transactional_id" => &id, "result" => ?other),
            }
            ctx.notify(TxnMsg::Completed { id, marker });
        });
    }

    fn abort_timed_out(&mut self, ctx: &mut Context<Self>) {
        if self.coordinating().is_err() {
            return;
        }
        let image = self.image.borrow().clone();
        for end in core::timed_out(&image.transactions, self.clock.unix_millis()) {
            slog::info!(self.logger, "aborting a timed-out transaction (the producer is fenced)";
                "transactional_id" => &end.transactional_id, "producer_id" => end.producer_id);
            self.propose(TxnOp::End(end), ctx, |_, _, _| {});
        }
    }

    fn remove_expired(&mut self, ctx: &mut Context<Self>) {
        if self.coordinating().is_err() {
            return;
        }
        let image = self.image.borrow().clone();
        let expiration = i64::try_from(self.settings.id_expiration.as_millis()).unwrap_or(i64::MAX);
        let due = core::expired(&image.transactions, self.clock.unix_millis(), expiration);
        if due.ids.is_empty() {
            return;
        }
        slog::info!(self.logger, "removing expired transactional ids"; "count" => due.ids.len());
        self.propose(TxnOp::Expire(due), ctx, |_, _, _| {});
    }

    /// Open transactions (Ongoing or Prepare*) while this node coordinates; 0 otherwise.
    fn publish_gauge(&self) {
        let open = if self.coordinating().is_ok() {
            let image = self.image.borrow();
            image
                .transactions
                .values()
                .filter(|t| matches!(t.state(), TxnState::Ongoing | TxnState::PrepareCommit | TxnState::PrepareAbort))
                .count()
        } else {
            0
        };
        crate::metrics::registry().txn_open(self.node_id, open as u64);
    }
}

impl Actor for TxnCoordinator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.notify(TxnMsg::PollStatus);
        ctx.run_interval(STATUS_INTERVAL, |_, ctx| ctx.notify(TxnMsg::PollStatus));
        ctx.run_interval(self.settings.abort_timed_out_interval, |_, ctx| ctx.notify(TxnMsg::AbortTimedOut));
        ctx.run_interval(self.settings.remove_expired_interval, |_, ctx| ctx.notify(TxnMsg::RemoveExpired));
    }
}

impl Handler<TxnMsg> for TxnCoordinator {
    type Result = ();

    fn handle(&mut self, msg: TxnMsg, ctx: &mut Self::Context) {
        match msg {
            TxnMsg::Request { op, reply } => {
                if let Err(e) = self.coordinating() {
                    let _ = reply.send(Err(e));
                    return;
                }
                self.propose(op, ctx, move |_, r, _| {
                    let _ = reply.send(r);
                });
            }
            TxnMsg::Coordinator { reply } => {
                let _ = reply.send((self.meta_leader.0, self.coordinating()));
            }
            TxnMsg::Status(s) => {
                self.update_status(&s, ctx);
                self.publish_gauge();
            }
            TxnMsg::PollStatus => {
                let (tx, rx) = oneshot::channel();
                self.meta.do_send(MetaMsg::Status { reply: tx });
                ctx.spawn(rx.into_actor(self).map(|s, _, ctx| {
                    if let Ok(s) = s {
                        ctx.notify(TxnMsg::Status(s));
                    }
                }));
            }
            TxnMsg::AbortTimedOut => self.abort_timed_out(ctx),
            TxnMsg::RemoveExpired => self.remove_expired(ctx),
            TxnMsg::Prepared(t) => self.start_markers(t, ctx),
            TxnMsg::SendMarker { id, tp, marker } => self.send_marker(id, tp, marker, ctx),
            TxnMsg::MarkerDone { id, tp, marker, result } => self.marker_done(id, tp, marker, result, ctx),
            TxnMsg::SetSink(sink) => {
                self.sink = sink;
                // Markers in flight restart through the new sink.
                self.inflight.clear();
                self.publish_gauge();
                ctx.notify(TxnMsg::PollStatus);
            }
            TxnMsg::Completed { id, marker } => {
                if self.inflight.get(&id).is_some_and(|i| i.marker == marker) {
                    self.inflight.remove(&id);
                }
            }
        }
    }
}
