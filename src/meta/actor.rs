//! The metadata actor: the shell that runs the `__meta` Raft group on every node.
//!
//! Any node accepts a proposal ([`MetaMsg::Propose`]). Each proposal gets a [`ProposalId`] in
//! its entry context; on a follower raft-rs forwards it to the leader. Every node applies every
//! entry; the node that proposed it recognises its id and answers the waiter. The state machine
//! applies an id once, so retries are safe.
//!
//! # The metadata sync retrier
//! A proposal that is not applied in time (no leader yet, a leader change, a dropped message) is
//! retried with exponential backoff, 100, 200, 400, 800 and 1600 ms. Each retry is a
//! [`MetaMsg::Retry`] the actor schedules to itself (never a sleeping task), and each attempt is
//! logged with its number. After the last attempt the waiter gets [`MetaError::RetriesExhausted`]
//! (a retriable Kafka error for the client) and a warning is logged. The node's own broker
//! registration is re-proposed until it applies.
//!
//! After every applied batch the actor publishes the new [`MetaState`] through a `watch`
//! channel, read by the node (to start and stop partition groups) and the Kafka handlers.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use raft::eraftpb::{Entry, Message};
use slog::Logger;
use thiserror::Error;
use tokio::sync::{oneshot, watch};

use crate::clock::Backoff;
use crate::log::{LogKind, LogOptions};
use crate::meta::command::{Cmd, MetaCommand, ProposalId, RegisterBroker};
use crate::meta::state::{MetaResult, MetaState};
use crate::peer::Transport;
use crate::raft::core::{OpenError, RaftCore, StateMachine};
use crate::raft::storage::GroupStorage;
use crate::raft::ticker::{Ticker, TickerMsg};
use crate::raft::writer::DiskWriter;
use crate::raft::{GroupSettings, META_GROUP};

/// Why a metadata proposal did not apply.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum MetaError {
    #[error("__meta has no leader reachable from this node")]
    NotLeader(u64),
    #[error("the proposal was not applied after {0} attempts")]
    RetriesExhausted(u32),
    #[error("the proposal was dropped")]
    Dropped,
    #[error("metadata storage failed: {0}")]
    Storage(String),
}

/// The `__meta` state machine: the state plus the results of this node's proposals.
pub struct MetaSm {
    pub state: MetaState,
    results: Vec<(ProposalId, MetaResult)>,
    me: u64,
    logger: Logger,
}

impl StateMachine for MetaSm {
    fn apply(&mut self, entry: &Entry) {
        if crate::log::is_damaged_placeholder(entry).is_some() {
            slog::crit!(self.logger, "a committed __meta entry is damaged on disk and was skipped: this node's metadata may miss a change";
                "index" => entry.index, "term" => entry.term);
            return;
        }
        let id = ProposalId::decode(&entry.context);
        let result = match MetaCommand::decode(&entry.data) {
            Ok(cmd) => self.state.apply_once(id, &cmd),
            Err(e) => {
                slog::error!(self.logger, "undecodable __meta entry"; "index" => entry.index, "term" => entry.term, "error" => %e);
                Some(MetaResult::Rejected { code: crate::error::code::UNKNOWN_SERVER_ERROR, message: e.to_string() })
            }
        };
        if let (Some(id), Some(result)) = (id, result) {
            if id.node == self.me {
                self.results.push((id, result));
            }
        }
    }
}

/// The metadata actor's one message enum.
#[derive(Message)]
#[rtype(result = "()")]
pub enum MetaMsg {
    Tick(u64),
    Drive,
    /// The disk writer has written (not yet fsynced) Ready `number`: send the appends it held.
    Written {
        number: u64,
    },
    Synced {
        number: u64,
        result: Result<(), String>,
    },
    /// A Raft message from a peer.
    Raft(Message),
    /// Propose a command; answered once applied (`reply` None: fire and forget, with retries).
    Propose {
        cmd: MetaCommand,
        reply: Option<oneshot::Sender<Result<MetaResult, MetaError>>>,
    },
    /// Report progress for `cluster status`.
    Status {
        reply: oneshot::Sender<crate::raft::core::GroupStatus>,
    },
    /// The retrier: check proposal `id` after its attempt `attempt` and propose again if needed.
    Retry {
        id: ProposalId,
        attempt: u32,
    },
}

struct Pending {
    data: Vec<u8>,
    attempt: u32,
    reply: Option<oneshot::Sender<Result<MetaResult, MetaError>>>,
    /// Registration and leader reports are retried until they apply.
    forever: bool,
}

/// The metadata actor.
pub struct MetaActor {
    core: RaftCore<MetaSm>,
    writer: DiskWriter,
    ticker: Addr<Ticker>,
    transport: Transport,
    image: watch::Sender<Arc<MetaState>>,
    pending: HashMap<ProposalId, Pending>,
    next_seq: u64,
    backoff: Backoff,
    me: RegisterBroker,
    registering: bool,
    drive_scheduled: bool,
    failed: bool,
    logger: Logger,
}

/// Everything the metadata actor is built from.
pub struct MetaSpec<'a> {
    pub dir: &'a Path,
    pub voters: &'a [u64],
    pub settings: &'a GroupSettings,
    pub me: RegisterBroker,
    pub writer: DiskWriter,
    pub ticker: Addr<Ticker>,
    pub transport: Transport,
}

impl MetaActor {
    /// Opens the `__meta` log; a new group gets `voters`. A single voter, or the lowest-id voter
    /// of a cluster, campaigns at once so the group forms without waiting an election timeout.
    pub fn open(spec: MetaSpec<'_>, logger: Logger) -> Result<(Self, watch::Receiver<Arc<MetaState>>), OpenError> {
        std::fs::create_dir_all(spec.dir).map_err(|e| crate::log::LogError::io(spec.dir, e))?;
        let opts = LogOptions {
            segment_bytes: 64 * 1024 * 1024,
            index_interval_bytes: spec.settings.index_interval_bytes,
            kind: LogKind::Opaque,
        };
        let (mut storage, _) = GroupStorage::open(spec.dir, opts, &logger)?;
        if storage.is_new() {
            storage.initialize_voters(spec.voters)?;
        }
        let node_id = spec.settings.node_id;
        let first_voter = storage.conf_state().voters.iter().min() == Some(&node_id);
        let applied = storage.log().first_index().saturating_sub(1);
        let sm = MetaSm { state: MetaState::new(), results: Vec::new(), me: node_id, logger: logger.clone() };
        let mut core = RaftCore::new(
            META_GROUP,
            &spec.settings.raft_config(applied),
            storage,
            sm,
            spec.settings.durability,
            logger.clone(),
        )?;
        core.set_metrics_name("__meta".to_string());
        if first_voter {
            let _ = core.node.campaign();
        }
        let (tx, rx) = watch::channel(Arc::new(MetaState::new()));
        Ok((
            MetaActor {
                core,
                writer: spec.writer,
                ticker: spec.ticker,
                transport: spec.transport,
                image: tx,
                pending: HashMap::new(),
                // Proposal ids must not repeat across restarts (the replayed state remembers the
                // ids it applied and would drop a new proposal that reuses one): start from the
                // wall clock in microseconds, and above any id already applied (see
                // `start_proposal`).
                next_seq: (crate::clock::Clock::unix_millis(&crate::clock::SystemClock).max(1) as u64)
                    .saturating_mul(1000),
                backoff: Backoff::new(Duration::from_millis(100), 5),
                me: spec.me,
                registering: false,
                drive_scheduled: false,
                failed: false,
                logger,
            },
            rx,
        ))
    }

    fn schedule_drive(&mut self, ctx: &mut Context<Self>) {
        if !self.drive_scheduled {
            self.drive_scheduled = true;
            ctx.notify(MetaMsg::Drive);
        }
    }

    fn drive(&mut self, ctx: &mut Context<Self>) {
        self.drive_scheduled = false;
        if self.failed {
            return;
        }
        loop {
            let out = match self.core.handle_ready() {
                Ok(o) => o,
                Err(e) => {
                    slog::error!(self.logger, "__meta storage failed"; "error" => %e);
                    self.failed = true;
                    self.core.poison_writes();
                    self.fail_all(MetaError::Storage(e.to_string()));
                    return;
                }
            };
            self.transport.send(META_GROUP, out.messages);
            if let Some(job) = out.write {
                let (addr, written) = (ctx.address(), ctx.address());
                job.submit(
                    &self.writer,
                    move |number| written.do_send(MetaMsg::Written { number }),
                    move |number, result| addr.do_send(MetaMsg::Synced { number, result }),
                );
            }
            if let Some(role) = out.role {
                slog::info!(self.logger, "__meta role"; "role" => ?role.role, "leader" => role.leader, "term" => role.term);
            }
            if out.applied.is_some() {
                self.finish_applied();
            }
            if !self.core.node.has_ready() {
                break;
            }
        }
        self.maybe_register(ctx);
    }

    fn finish_applied(&mut self) {
        // Publish first: a client that got its answer must see the change in its next request.
        self.image.send_replace(Arc::new(self.core.sm.state.clone()));
        for (id, result) in std::mem::take(&mut self.core.sm.results) {
            if let Some(p) = self.pending.remove(&id) {
                if let Some(reply) = p.reply {
                    let _ = reply.send(Ok(result));
                }
            }
        }
    }

    fn fail_all(&mut self, err: MetaError) {
        for (_, p) in self.pending.drain() {
            if let Some(reply) = p.reply {
                let _ = reply.send(Err(err.clone()));
            }
        }
    }

    /// Starts a new proposal (attempt 0) and schedules its first retry check.
    fn start_proposal(
        &mut self,
        cmd: MetaCommand,
        reply: Option<oneshot::Sender<Result<MetaResult, MetaError>>>,
        forever: bool,
        ctx: &mut Context<Self>,
    ) {
        if self.failed {
            if let Some(reply) = reply {
                let _ = reply.send(Err(MetaError::Storage("__meta storage failed".into())));
            }
            return;
        }
        let applied_max = self.core.sm.state.seen.get(&self.me.node_id).and_then(|s| s.iter().max()).copied();
        self.next_seq = self.next_seq.max(applied_max.map_or(1, |m| m + 1));
        let id = ProposalId { node: self.me.node_id, seq: self.next_seq };
        self.next_seq += 1;
        self.pending.insert(id, Pending { data: cmd.encode_to_vec(), attempt: 0, reply, forever });
        self.attempt(id, ctx);
    }

    /// Proposes `id` (again) and schedules the check that retries it.
    fn attempt(&mut self, id: ProposalId, ctx: &mut Context<Self>) {
        let Some(p) = self.pending.get(&id) else { return };
        let attempt = p.attempt;
        if attempt > 0 {
            slog::info!(self.logger, "retrying __meta proposal"; "attempt" => attempt, "proposal" => ?id, "leader" => self.core.role().leader);
        }
        let _ = self.core.propose_with_context(id.encode(), p.data.clone());
        let delay = self.backoff.delay(attempt).unwrap_or(Duration::from_millis(1600));
        ctx.notify_later(MetaMsg::Retry { id, attempt }, delay);
        self.schedule_drive(ctx);
    }

    /// The retrier's check: if proposal `id` is still not applied after attempt `attempt`,
    /// propose it again (attempts 1 to 5, after 100, 200, 400, 800 and 1600 ms), or give up.
    fn retry(&mut self, id: ProposalId, attempt: u32, ctx: &mut Context<Self>) {
        const MAX_RETRIES: u32 = 5;
        let Some(p) = self.pending.get_mut(&id) else { return };
        if p.attempt != attempt {
            return;
        }
        if attempt >= MAX_RETRIES && !p.forever {
            let p = self.pending.remove(&id).expect("present");
            slog::warn!(self.logger, "__meta proposal not applied after all retries"; "attempts" => attempt + 1, "proposal" => ?id, "leader" => self.core.role().leader);
            if let Some(reply) = p.reply {
                let _ = reply.send(Err(MetaError::RetriesExhausted(attempt + 1)));
            }
            return;
        }
        p.attempt = attempt + 1;
        self.attempt(id, ctx);
    }

    fn maybe_register(&mut self, ctx: &mut Context<Self>) {
        if self.registering || self.core.role().leader == 0 {
            return;
        }
        let state = &self.core.sm.state;
        let current = state.brokers.get(&self.me.node_id);
        if current.is_some_and(|b| b.host == self.me.host && b.port == self.me.port && b.admin == self.me.admin)
            && !state.cluster_id.is_empty()
        {
            return;
        }
        self.registering = true;
        let (tx, rx) = oneshot::channel();
        self.start_proposal(MetaCommand::new(Cmd::RegisterBroker(self.me.clone())), Some(tx), true, ctx);
        let logger = self.logger.clone();
        ctx.spawn(rx.into_actor(self).map(move |res, act, ctx| {
            act.registering = false;
            match res {
                Ok(Ok(_)) => slog::info!(logger, "broker registered"; "node" => act.me.node_id, "host" => &act.me.host, "port" => act.me.port),
                other => {
                    slog::warn!(logger, "broker registration did not apply; will retry"; "result" => ?other.ok());
                    act.schedule_drive(ctx);
                }
            }
        }));
    }
}

impl Actor for MetaActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let addr = ctx.address();
        self.ticker.do_send(TickerMsg::Register(
            META_GROUP,
            Box::new(move |n| {
                addr.do_send(MetaMsg::Tick(n));
                addr.connected()
            }),
        ));
        self.schedule_drive(ctx);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        // The last job: whatever is queued, then an fsync of every dirty file (not waited for).
        if !self.failed {
            self.writer.submit(self.core.flush_job(true));
        }
    }
}

impl Handler<MetaMsg> for MetaActor {
    type Result = ();

    fn handle(&mut self, msg: MetaMsg, ctx: &mut Self::Context) {
        match msg {
            MetaMsg::Tick(n) => {
                if self.core.tick_at(n) || self.core.node.has_ready() {
                    self.schedule_drive(ctx);
                }
            }
            MetaMsg::Drive => self.drive(ctx),
            MetaMsg::Written { .. } | MetaMsg::Synced { .. } if self.failed => {}
            MetaMsg::Written { number } => {
                let msgs = self.core.on_written(number);
                self.transport.send(META_GROUP, msgs);
            }
            MetaMsg::Synced { number, result } => match result {
                Ok(()) => {
                    let msgs = self.core.on_synced(number);
                    self.transport.send(META_GROUP, msgs);
                    self.schedule_drive(ctx);
                }
                Err(e) => {
                    slog::error!(self.logger, "__meta write or fsync failed"; "error" => e.clone());
                    self.failed = true;
                    self.core.poison_writes();
                    self.fail_all(MetaError::Storage(e));
                }
            },
            MetaMsg::Raft(m) => {
                if let Err(e) = self.core.step(m) {
                    slog::debug!(self.logger, "__meta rejected a raft message"; "error" => %e);
                }
                self.schedule_drive(ctx);
            }
            MetaMsg::Propose { cmd, reply } => {
                let forever = reply.is_none();
                self.start_proposal(cmd, reply, forever, ctx);
            }
            MetaMsg::Retry { id, attempt } => self.retry(id, attempt, ctx),
            MetaMsg::Status { reply } => {
                let _ = reply.send(self.core.status());
            }
        }
    }
}
