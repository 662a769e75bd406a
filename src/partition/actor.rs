//! The partition actor: the shell around [`PartitionCore`]. It owns the mailbox, registers with
//! the ticker, hands fsyncs to the syncer, runs the retention timer, and keeps the produce
//! acknowledgements that wait for the high watermark. All Raft work happens in
//! [`PartitionActor::drive`], which runs once after a burst of messages, so many produce
//! requests share one Ready, one write and one fsync.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytes::{Bytes, BytesMut};
use slog::Logger;
use tokio::sync::oneshot;

use crate::clock::SharedClock;
use crate::error::PartitionError;
use crate::log::batch::BatchHeader;
use crate::partition::core::{Appended, PartitionCore};
use crate::partition::shared::PartitionShared;
use crate::raft::syncer::{SyncRequest, Syncer};
use crate::raft::ticker::{Ticker, TickerMsg};
use crate::raft::{GroupId, GroupSettings};

/// A produce acknowledgement: the batch's first offset and the log start offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProduceAck {
    pub base_offset: i64,
    pub log_start: i64,
}

/// The result of a read.
#[derive(Debug, Clone)]
pub struct FetchData {
    pub records: Bytes,
    pub high_watermark: i64,
    pub log_start: i64,
}

/// A partition's progress and checksum, for `cluster status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PartitionStatus {
    #[serde(flatten)]
    pub raft: crate::raft::core::GroupStatus,
    pub high_watermark: i64,
    pub log_start: i64,
    pub checksum: String,
}

/// Topic-level settings a partition applies (from the topic's configs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionSettings {
    pub retention_ms: Option<i64>,
    pub retention_bytes: Option<u64>,
}

/// Everything a partition actor does, one enum.
#[derive(Message)]
#[rtype(result = "()")]
pub enum PartitionMsg {
    /// One Raft tick (from the ticker).
    Tick(u64),
    /// Run the Ready loop (self-sent after a burst of messages).
    Drive,
    /// Append one validated batch; `reply` answers once it is committed.
    Produce { batch: BytesMut, header: BatchHeader, reply: oneshot::Sender<Result<ProduceAck, PartitionError>> },
    /// Read committed batches.
    Fetch { offset: i64, max_bytes: usize, reply: oneshot::Sender<Result<FetchData, PartitionError>> },
    /// Look up an offset by timestamp (or -1/-2/-3).
    ListOffset { timestamp: i64, reply: oneshot::Sender<Result<(i64, i64), PartitionError>> },
    /// A Raft message from a peer.
    Raft(raft::eraftpb::Message),
    /// Report progress for `cluster status`.
    Status { reply: oneshot::Sender<PartitionStatus> },
    /// The apply actor has applied up to `index`.
    Applied { index: u64, high_watermark: i64 },
    /// The syncer finished the fsync of Ready `number`.
    Synced { number: u64, result: Result<(), String> },
    /// New retention settings.
    Retention(RetentionSettings),
    /// Stop the group (topic deleted); the node removes the data afterwards.
    Stop,
}

type AckWaiter = (i64, oneshot::Sender<Result<ProduceAck, PartitionError>>);

/// The actor shell of one partition group.
pub struct PartitionActor {
    core: PartitionCore,
    shared: Arc<PartitionShared>,
    syncer: Syncer,
    ticker: Addr<Ticker>,
    links: Links,
    apply: Option<Addr<super::apply::ApplyActor>>,
    clock: SharedClock,
    retention: RetentionSettings,
    retention_check: Duration,
    flush_interval: Option<Duration>,
    /// Acknowledgements waiting for the high watermark to pass their last offset.
    waiters: BTreeMap<i64, Vec<AckWaiter>>,
    drive_scheduled: bool,
    failed: bool,
    /// `topic/partition`, for metrics and logs.
    name: String,
    logger: Logger,
    pub dir: PathBuf,
}

/// How a partition reaches the rest of the node: peers, and `__meta` for leader reports.
#[derive(Clone)]
pub struct Links {
    pub transport: crate::peer::Transport,
    pub meta: Option<Addr<crate::meta::MetaActor>>,
    /// Where apply actors run (None: on the group's own arbiter).
    pub apply_arbiter: Option<actix::dev::ArbiterHandle>,
    /// Fault injection: how long each committed batch takes to apply.
    pub apply_delay: Duration,
}

/// What the node needs to start a partition actor.
pub struct PartitionSpec {
    pub group: GroupId,
    /// `topic/partition`.
    pub name: String,
    pub dir: PathBuf,
    pub voters: Vec<u64>,
    /// Campaign at once (the preferred leader of a new group).
    pub campaign: bool,
    pub settings: GroupSettings,
    pub retention: RetentionSettings,
    pub retention_check: Duration,
    /// With the page-cache durability policy, how often written data is fsynced.
    pub flush_interval: Duration,
}

impl PartitionActor {
    /// Opens the partition's log and builds the actor (not yet started).
    pub fn open(
        spec: PartitionSpec,
        shared: Arc<PartitionShared>,
        syncer: Syncer,
        ticker: Addr<Ticker>,
        links: Links,
        clock: SharedClock,
        logger: Logger,
    ) -> Result<Self, crate::raft::core::OpenError> {
        std::fs::create_dir_all(&spec.dir).map_err(|e| crate::log::LogError::io(&spec.dir, e))?;
        let core =
            PartitionCore::open(&spec.dir, spec.group, &spec.voters, spec.campaign, &spec.settings, logger.clone())?;
        Ok(PartitionActor {
            core,
            shared,
            syncer,
            ticker,
            links,
            apply: None,
            clock,
            retention: spec.retention,
            retention_check: spec.retention_check,
            flush_interval: (spec.settings.durability == crate::raft::core::Durability::PageCache)
                .then_some(spec.flush_interval),
            waiters: BTreeMap::new(),
            drive_scheduled: false,
            failed: false,
            name: spec.name,
            logger,
            dir: spec.dir,
        })
    }

    fn schedule_drive(&mut self, ctx: &mut Context<Self>) {
        if !self.drive_scheduled {
            self.drive_scheduled = true;
            ctx.notify(PartitionMsg::Drive);
        }
    }

    /// Runs the Ready loop until raft has nothing more to do right now.
    fn drive(&mut self, ctx: &mut Context<Self>) {
        self.drive_scheduled = false;
        if self.failed {
            return;
        }
        loop {
            let out = match self.core.handle_ready() {
                Ok(out) => out,
                Err(e) => {
                    slog::error!(self.logger, "partition storage failed; the group stops serving"; "group" => self.core.raft.group(), "error" => %e);
                    self.failed = true;
                    self.fail_waiters(PartitionError::Storage(e.to_string()));
                    return;
                }
            };
            self.links.transport.send(self.core.raft.group(), out.messages);
            if let Some(job) = out.sync {
                let addr = ctx.address();
                job.submit(&self.syncer, move |number, result| addr.do_send(PartitionMsg::Synced { number, result }));
            }
            if let Some(role) = out.role {
                self.shared.set_role(role.leader, role.term);
                if role.role == raft::StateRole::Leader {
                    self.report_leader(role.term);
                }
                if role.role != raft::StateRole::Leader {
                    self.fail_waiters(PartitionError::NotLeader { leader: Some(role.leader).filter(|l| *l != 0) });
                }
            }
            let items = self.core.raft.sm.take_pending();
            if !items.is_empty() {
                if let Some(apply) = &self.apply {
                    apply.do_send(super::apply::ApplyMsg::Apply(items));
                }
            }
            self.shared.set_in_sync(self.core.in_sync_replicas());
            if !self.core.raft.node.has_ready() {
                break;
            }
        }
    }

    /// Tells `__meta` that this node now leads the group (retried until it applies), so every
    /// node can answer Metadata for partitions it does not host.
    fn report_leader(&self, term: u64) {
        if let Some(meta) = &self.links.meta {
            use crate::meta::command::{Cmd, MetaCommand, SetLeader};
            let cmd = MetaCommand::new(Cmd::SetLeader(SetLeader {
                group: self.core.raft.group(),
                leader: self.links.transport.me(),
                term,
            }));
            meta.do_send(crate::meta::MetaMsg::Propose { cmd, reply: None });
        }
    }

    fn publish_offsets(&mut self) {
        let hw = self.core.high_watermark();
        let log_start = self.core.log_start();
        self.shared.set_offsets(hw, log_start);
        let still_waiting = self.waiters.split_off(&hw);
        let done = std::mem::replace(&mut self.waiters, still_waiting);
        for (_, waiters) in done {
            for (base_offset, reply) in waiters {
                let _ = reply.send(Ok(ProduceAck { base_offset, log_start }));
            }
        }
    }

    fn fail_waiters(&mut self, err: PartitionError) {
        for (_, waiters) in std::mem::take(&mut self.waiters) {
            for (_, reply) in waiters {
                let _ = reply.send(Err(err.clone()));
            }
        }
    }

    fn produce(
        &mut self,
        batch: BytesMut,
        header: BatchHeader,
        reply: oneshot::Sender<Result<ProduceAck, PartitionError>>,
    ) {
        if self.failed {
            let _ = reply.send(Err(PartitionError::Storage("partition storage failed".into())));
            return;
        }
        match self.core.produce(batch, header) {
            Ok(Appended { base_offset, last_offset, .. }) => {
                if last_offset < self.core.high_watermark() {
                    let _ = reply.send(Ok(ProduceAck { base_offset, log_start: self.core.log_start() }));
                } else {
                    self.waiters.entry(last_offset).or_default().push((base_offset, reply));
                }
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }

    /// Page-cache policy: hand what was written since the last flush to the syncer.
    fn flush(&mut self) {
        let (files, _) = self.core.raft.node.mut_store().log_mut().take_dirty();
        if files.is_empty() {
            return;
        }
        let logger = self.logger.clone();
        self.syncer.sync(SyncRequest {
            files,
            done: Box::new(move |r| {
                if let Err(e) = r {
                    slog::error!(logger, "periodic fsync failed"; "error" => e);
                }
            }),
        });
    }

    fn run_retention(&mut self) {
        let now = self.clock.unix_millis();
        let r = self.retention;
        if r.retention_ms.is_none() && r.retention_bytes.is_none() {
            return;
        }
        match self.core.apply_retention(now, r.retention_ms, r.retention_bytes) {
            Ok(0) => {}
            Ok(n) => {
                slog::info!(self.logger, "retention deleted segments"; "group" => self.core.raft.group(), "segments" => n, "log_start" => self.core.log_start());
                self.publish_offsets();
            }
            Err(e) => slog::warn!(self.logger, "retention failed"; "group" => self.core.raft.group(), "error" => %e),
        }
    }
}

impl Actor for PartitionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.core.raft.set_metrics_name(self.name.clone());
        let me = ctx.address();
        let state = crate::partition::core::ApplyState::new(self.core.high_watermark(), self.logger.clone());
        let delay = self.links.apply_delay;
        let apply = match &self.links.apply_arbiter {
            Some(arbiter) => super::apply::ApplyActor::start_in_arbiter(arbiter, move |_| {
                super::apply::ApplyActor::new(state, me, delay)
            }),
            None => super::apply::ApplyActor::new(state, me, delay).start(),
        };
        self.apply = Some(apply);
        let addr = ctx.address();
        self.ticker.do_send(TickerMsg::Register(
            self.core.raft.group(),
            Box::new(move |n| {
                addr.do_send(PartitionMsg::Tick(n));
                addr.connected()
            }),
        ));
        ctx.run_interval(self.retention_check, |act, _| act.run_retention());
        if let Some(every) = self.flush_interval {
            ctx.run_interval(every, |act, _| act.flush());
        }
        self.schedule_drive(ctx);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        crate::metrics::registry().remove_group(self.links.transport.me(), &self.name);
        self.ticker.do_send(TickerMsg::Unregister(self.core.raft.group()));
        self.fail_waiters(PartitionError::ShuttingDown);
        let _ = self.core.raft.node.mut_store().log_mut().sync();
    }
}

impl Handler<PartitionMsg> for PartitionActor {
    type Result = ();

    fn handle(&mut self, msg: PartitionMsg, ctx: &mut Self::Context) {
        match msg {
            PartitionMsg::Tick(n) => {
                if self.core.raft.tick_at(n) || self.core.raft.node.has_ready() {
                    self.schedule_drive(ctx);
                }
            }
            PartitionMsg::Drive => self.drive(ctx),
            PartitionMsg::Produce { batch, header, reply } => {
                self.produce(batch, header, reply);
                self.schedule_drive(ctx);
            }
            PartitionMsg::Fetch { offset, max_bytes, reply } => {
                let result = self.core.read(offset, max_bytes).map(|records| FetchData {
                    records,
                    high_watermark: self.core.high_watermark(),
                    log_start: self.core.log_start(),
                });
                let _ = reply.send(result);
            }
            PartitionMsg::ListOffset { timestamp, reply } => {
                let _ = reply.send(self.core.offset_for(timestamp));
            }
            PartitionMsg::Synced { number, result } => match result {
                Ok(()) => {
                    let msgs = self.core.raft.on_synced(number);
                    self.links.transport.send(self.core.raft.group(), msgs);
                    self.schedule_drive(ctx);
                }
                Err(e) => {
                    slog::error!(self.logger, "fsync failed; the group stops serving"; "group" => self.core.raft.group(), "error" => e.clone());
                    self.failed = true;
                    self.fail_waiters(PartitionError::Storage(e));
                }
            },
            PartitionMsg::Raft(m) => {
                if let Err(e) = self.core.raft.step(m) {
                    slog::debug!(self.logger, "raft rejected a message"; "group" => self.core.raft.group(), "error" => %e);
                }
                self.schedule_drive(ctx);
            }
            PartitionMsg::Status { reply } => {
                let checksum = match self.core.checksum() {
                    Ok(c) => format!("{c:#010x}"),
                    Err(e) => format!("error: {e}"),
                };
                let _ = reply.send(PartitionStatus {
                    raft: self.core.raft.status(),
                    high_watermark: self.core.high_watermark(),
                    log_start: self.core.log_start(),
                    checksum,
                });
            }
            PartitionMsg::Applied { index, high_watermark } => {
                self.core.set_applied(index, high_watermark);
                self.publish_offsets();
                let lag = self.core.raft.commit_index().saturating_sub(index);
                crate::metrics::registry().group(self.links.transport.me(), &self.name, |g| g.apply_lag = lag);
            }
            PartitionMsg::Retention(r) => self.retention = r,
            PartitionMsg::Stop => ctx.stop(),
        }
    }
}
