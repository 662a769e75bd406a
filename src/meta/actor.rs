//! The metadata actor: the shell that runs the `__meta` Raft group.
//!
//! Proposals arrive as [`MetaMsg::Propose`]; the actor answers each one when its entry has been
//! applied (or fails it if another entry took its index). After every applied batch it publishes
//! the new [`MetaState`] through a `watch` channel, which the node (to start and stop partition
//! groups) and the Kafka handlers (to answer Metadata) read without messaging. When it leads and
//! its own broker is not registered yet, it registers it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use actix::prelude::*;
use raft::eraftpb::Entry;
use slog::Logger;
use thiserror::Error;
use tokio::sync::{oneshot, watch};

use crate::log::{LogError, LogKind, LogOptions};
use crate::meta::command::{Cmd, MetaCommand, RegisterBroker};
use crate::meta::state::{MetaResult, MetaState};
use crate::raft::core::{OpenError, RaftCore, StateMachine};
use crate::raft::storage::GroupStorage;
use crate::raft::syncer::{SyncRequest, Syncer};
use crate::raft::ticker::{Ticker, TickerMsg};
use crate::raft::{GroupSettings, META_GROUP};

/// Why a metadata proposal did not apply.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum MetaError {
    #[error("this node does not lead __meta (leader {0})")]
    NotLeader(u64),
    #[error("the proposal was replaced by another entry after a leader change")]
    Dropped,
    #[error("metadata storage failed: {0}")]
    Storage(String),
}

/// The `__meta` state machine: the state plus the results waiting to be claimed by index.
pub struct MetaSm {
    pub state: MetaState,
    results: Vec<(u64, u64, MetaResult)>,
    logger: Logger,
}

impl StateMachine for MetaSm {
    fn apply(&mut self, entry: &Entry) {
        let result = match MetaCommand::decode(&entry.data) {
            Ok(cmd) => self.state.apply(&cmd),
            Err(e) => {
                slog::error!(self.logger, "undecodable __meta entry"; "index" => entry.index, "term" => entry.term, "error" => %e);
                MetaResult::Rejected { code: crate::error::code::UNKNOWN_SERVER_ERROR, message: e.to_string() }
            }
        };
        self.results.push((entry.index, entry.term, result));
    }
}

/// The metadata actor's one message enum.
#[derive(Message)]
#[rtype(result = "()")]
pub enum MetaMsg {
    Tick,
    Drive,
    Synced {
        number: u64,
        result: Result<(), String>,
    },
    /// Propose a command; answered once applied.
    Propose {
        cmd: MetaCommand,
        reply: oneshot::Sender<Result<MetaResult, MetaError>>,
    },
}

/// The metadata actor.
pub struct MetaActor {
    core: RaftCore<MetaSm>,
    syncer: Syncer,
    ticker: Addr<Ticker>,
    image: watch::Sender<Arc<MetaState>>,
    pending: BTreeMap<u64, (u64, oneshot::Sender<Result<MetaResult, MetaError>>)>,
    me: RegisterBroker,
    registering: bool,
    drive_scheduled: bool,
    failed: bool,
    logger: Logger,
}

impl MetaActor {
    /// Opens the `__meta` log in `dir`; a new group gets `voters`.
    pub fn open(
        dir: &Path,
        voters: &[u64],
        settings: &GroupSettings,
        me: RegisterBroker,
        syncer: Syncer,
        ticker: Addr<Ticker>,
        logger: Logger,
    ) -> Result<(Self, watch::Receiver<Arc<MetaState>>), OpenError> {
        std::fs::create_dir_all(dir).map_err(|e| LogError::Io { path: dir.to_path_buf(), source: e })?;
        let opts = LogOptions {
            segment_bytes: 64 * 1024 * 1024,
            index_interval_bytes: settings.index_interval_bytes,
            kind: LogKind::Opaque,
        };
        let (mut storage, _) = GroupStorage::open(dir, opts, &logger)?;
        if storage.is_new() {
            storage.initialize_voters(voters)?;
        }
        let single = storage.conf_state().voters == [settings.node_id];
        let applied = storage.log().first_index().saturating_sub(1);
        let sm = MetaSm { state: MetaState::new(), results: Vec::new(), logger: logger.clone() };
        let mut core = RaftCore::new(
            META_GROUP,
            &settings.raft_config(applied),
            storage,
            sm,
            settings.durability,
            logger.clone(),
        )?;
        if single {
            let _ = core.node.campaign();
        }
        let (tx, rx) = watch::channel(Arc::new(MetaState::new()));
        Ok((
            MetaActor {
                core,
                syncer,
                ticker,
                image: tx,
                pending: BTreeMap::new(),
                me,
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
                    self.fail_pending(MetaError::Storage(e.to_string()));
                    return;
                }
            };
            drop(out.messages);
            if let Some(job) = out.sync {
                let addr = ctx.address();
                let number = job.number;
                self.syncer.sync(SyncRequest {
                    files: job.files,
                    done: Box::new(move |result| addr.do_send(MetaMsg::Synced { number, result })),
                });
            }
            if let Some(role) = out.role {
                slog::info!(self.logger, "__meta role"; "role" => ?role.role, "leader" => role.leader, "term" => role.term);
                if role.role != raft::StateRole::Leader {
                    self.fail_pending(MetaError::NotLeader(role.leader));
                    self.registering = false;
                }
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
        for (index, term, result) in std::mem::take(&mut self.core.sm.results) {
            if let Some((want_term, reply)) = self.pending.remove(&index) {
                let _ = reply.send(if want_term == term { Ok(result) } else { Err(MetaError::Dropped) });
            }
        }
        // Proposals at indexes now behind the applied index lost their slot.
        let applied = self.core.applied();
        let later = self.pending.split_off(&(applied + 1));
        for (_, (_, reply)) in std::mem::replace(&mut self.pending, later) {
            let _ = reply.send(Err(MetaError::Dropped));
        }
    }

    fn fail_pending(&mut self, err: MetaError) {
        for (_, (_, reply)) in std::mem::take(&mut self.pending) {
            let _ = reply.send(Err(err.clone()));
        }
    }

    fn propose(&mut self, cmd: MetaCommand, reply: oneshot::Sender<Result<MetaResult, MetaError>>) {
        if self.failed {
            let _ = reply.send(Err(MetaError::Storage("__meta storage failed".into())));
            return;
        }
        if !self.core.is_leader() {
            let _ = reply.send(Err(MetaError::NotLeader(self.core.role().leader)));
            return;
        }
        match self.core.propose(cmd.encode_to_vec()) {
            Ok((index, term)) => {
                self.pending.insert(index, (term, reply));
            }
            Err(_) => {
                let _ = reply.send(Err(MetaError::NotLeader(self.core.role().leader)));
            }
        }
    }

    fn maybe_register(&mut self, ctx: &mut Context<Self>) {
        if self.registering || !self.core.is_leader() || self.core.applied() < self.core.commit_index() {
            return;
        }
        let state = &self.core.sm.state;
        let current = state.brokers.get(&self.me.node_id);
        if current.is_some_and(|b| b.host == self.me.host && b.port == self.me.port) && !state.cluster_id.is_empty() {
            return;
        }
        self.registering = true;
        let (tx, rx) = oneshot::channel();
        self.propose(MetaCommand::new(Cmd::RegisterBroker(self.me.clone())), tx);
        let logger = self.logger.clone();
        ctx.spawn(
            rx.into_actor(self).map(move |res, act, ctx| {
                act.registering = false;
                match res {
                    Ok(Ok(_)) => slog::info!(logger, "broker registered"; "node" => act.me.node_id, "host" => &act.me.host, "port" => act.me.port),
                    other => {
                        slog::warn!(logger, "broker registration did not apply; will retry"; "result" => ?other.ok());
                        act.schedule_drive(ctx);
                    }
                }
            }),
        );
        self.schedule_drive(ctx);
    }
}

impl Actor for MetaActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let addr = ctx.address();
        self.ticker.do_send(TickerMsg::Register(
            META_GROUP,
            Box::new(move || {
                addr.do_send(MetaMsg::Tick);
                addr.connected()
            }),
        ));
        self.schedule_drive(ctx);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        let _ = self.core.node.mut_store().log_mut().sync();
    }
}

impl Handler<MetaMsg> for MetaActor {
    type Result = ();

    fn handle(&mut self, msg: MetaMsg, ctx: &mut Self::Context) {
        match msg {
            MetaMsg::Tick => {
                if self.core.tick() || self.core.node.has_ready() {
                    self.schedule_drive(ctx);
                }
            }
            MetaMsg::Drive => self.drive(ctx),
            MetaMsg::Synced { number, result } => match result {
                Ok(()) => {
                    let _ = self.core.on_synced(number);
                    self.schedule_drive(ctx);
                }
                Err(e) => {
                    slog::error!(self.logger, "__meta fsync failed"; "error" => e.clone());
                    self.failed = true;
                    self.fail_pending(MetaError::Storage(e));
                }
            },
            MetaMsg::Propose { cmd, reply } => {
                self.propose(cmd, reply);
                self.schedule_drive(ctx);
            }
        }
    }
}
