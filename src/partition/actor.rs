//! The partition actor: the shell around [`PartitionCore`]. It owns the mailbox, registers with
//! the ticker, hands each Ready's writes to the node's disk writer, runs the retention timer, and
//! keeps the produce acknowledgements that wait for the high watermark. All Raft work happens in
//! [`PartitionActor::drive`], which runs once after a burst of messages, so many produce
//! requests share one Ready, one write job and one fsync. The actor itself never writes a log
//! file while the group runs (only segment creation and deletion, and the rare state files).
//!
//! A storage failure (a write or fsync error from the writer, or an error of the core) stops the
//! group ([`PartitionActor::fail`]): its queued jobs are skipped by the writer (poison flag),
//! and a barrier is sent to the writer; only once the barrier is answered — no write of this
//! core can land any more — does the timed [`PartitionActor::recover`] reopen the log from disk.

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
use crate::raft::ticker::{Ticker, TickerMsg};
use crate::raft::writer::DiskWriter;
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
    /// The apply actor of core `generation` has applied up to `index`.
    Applied { generation: u64, index: u64, high_watermark: i64 },
    /// The disk writer finished the job (writes, and fsync) of Ready `number` of core `generation`.
    Synced { generation: u64, number: u64, result: Result<(), String> },
    /// The disk writer has written (not yet fsynced) the job of Ready `number` of core
    /// `generation`: the appends that waited for it can go to the followers.
    Written { generation: u64, number: u64 },
    /// After a failure of core `generation`: the writer has answered everything queued before
    /// the failure, so the storage can be reopened.
    Drained { generation: u64 },
    /// Try to reopen the group's storage after a failure (timer).
    Recover,
    /// From node `from`: a request for a copy of an entry, or the copy (see `frame::Repair`).
    Repair { from: u64, repair: crate::peer::frame::Repair },
    /// New retention settings.
    Retention(RetentionSettings),
    /// Stop the group (topic deleted); the node removes the data afterwards.
    Stop,
}

type AckWaiter = (i64, oneshot::Sender<Result<ProduceAck, PartitionError>>);

/// A storage failure and the recovery attempts since.
#[derive(Debug, Clone)]
struct Failure {
    reason: String,
    attempts: u32,
    last_attempt: Option<std::time::Instant>,
    /// A `Recover` message is on its way.
    timer_set: bool,
    /// The writer has answered every job of the failed core (see `PartitionMsg::Drained`).
    drained: bool,
}

/// What reopening a group's core needs.
struct Reopen {
    group: GroupId,
    voters: Vec<u64>,
    settings: GroupSettings,
}

/// Delay before recovery attempt `n` (0-based) after a storage failure: 0.5 s doubling to 5 s.
fn recovery_delay(n: u32) -> Duration {
    Duration::from_millis(500u64.saturating_mul(1 << n.min(4))).min(Duration::from_secs(5))
}

/// The actor shell of one partition group.
pub struct PartitionActor {
    core: PartitionCore,
    shared: Arc<PartitionShared>,
    writer: DiskWriter,
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
    /// Set when the storage failed (a full disk, an I/O error): the group stops taking part in
    /// Raft and answers produce with KAFKA_STORAGE_ERROR until its storage is reopened.
    failure: Option<Failure>,
    /// Counts reopenings of the core, so that late answers for an earlier core are ignored.
    generation: u64,
    /// The highest log index known to be on disk (fsynced); a reopen after a failure first cuts
    /// the log back to it, since writes after it may be lost (`u64::MAX`: page-cache policy).
    durable_index: u64,
    /// Ready number -> last log index its fsync covers.
    sync_marks: BTreeMap<u64, u64>,
    /// How to open the core again.
    reopen: Reopen,
    /// The preferred leader of a new group campaigns at once; its vote requests are lost when a
    /// peer has not started the group yet, so it campaigns again every heartbeat interval (this
    /// many tries left) until a leader is known, instead of waiting for an election timeout.
    campaign_retries: u32,
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
        writer: DiskWriter,
        ticker: Addr<Ticker>,
        links: Links,
        clock: SharedClock,
        logger: Logger,
    ) -> Result<Self, crate::raft::core::OpenError> {
        std::fs::create_dir_all(&spec.dir).map_err(|e| crate::log::LogError::io(&spec.dir, e))?;
        let core =
            PartitionCore::open(&spec.dir, spec.group, &spec.voters, spec.campaign, &spec.settings, logger.clone())?;
        let durable_index = match spec.settings.durability {
            crate::raft::core::Durability::Fsync => core.raft.storage().log().last_index(),
            crate::raft::core::Durability::PageCache => u64::MAX,
        };
        Ok(PartitionActor {
            core,
            shared,
            writer,
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
            failure: None,
            generation: 0,
            durable_index,
            sync_marks: BTreeMap::new(),
            campaign_retries: if spec.campaign && spec.voters.len() > 1 { 5 } else { 0 },
            reopen: Reopen { group: spec.group, voters: spec.voters, settings: spec.settings },
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
        if self.failure.is_some() {
            return;
        }
        loop {
            let out = match self.core.handle_ready() {
                Ok(out) => out,
                Err(e) => {
                    self.fail(ctx, e.to_string());
                    return;
                }
            };
            self.links.transport.send(self.core.raft.group(), out.messages);
            if let Some(job) = out.write {
                let (addr, written) = (ctx.address(), ctx.address());
                let generation = self.generation;
                self.sync_marks.insert(job.number, job.last_index);
                job.submit(
                    &self.writer,
                    move |number| written.do_send(PartitionMsg::Written { generation, number }),
                    move |number, result| addr.do_send(PartitionMsg::Synced { generation, number, result }),
                );
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

    /// Asks another replica for a copy of each damaged entry (at most 16 at a time): the leader
    /// when another node leads, else the other voters in turn.
    fn request_repairs(&mut self, tick: u64) {
        let log = self.core.raft.storage().log();
        if !log.has_damage() {
            return;
        }
        let me = self.links.transport.me();
        let leader = self.core.raft.role().leader;
        let others: Vec<u64> = self.reopen.voters.iter().copied().filter(|v| *v != me).collect();
        if others.is_empty() {
            return;
        }
        for (k, (index, d)) in log.damaged().into_iter().take(16).enumerate() {
            let to = if leader != 0 && leader != me { leader } else { others[(tick as usize + k) % others.len()] };
            slog::debug!(self.logger, "asking for a copy of a damaged entry"; "index" => index, "term" => d.term, "from_node" => to);
            let repair =
                crate::peer::frame::Repair { group: self.reopen.group, index, term: d.term, entry: Default::default() };
            self.links.transport.send_repair(to, repair);
        }
    }

    /// A repair request (send our copy if it is intact) or a copy (write it over our damage).
    fn on_repair(&mut self, from: u64, r: crate::peer::frame::Repair) {
        use protobuf::Message as _;
        if r.entry.is_empty() {
            let log = self.core.raft.storage().log();
            if r.index < log.first_index() || r.index > log.last_index() {
                return;
            }
            match log.entries(r.index, r.index + 1, None) {
                Ok(mut ents) if ents.len() == 1 && ents[0].term == r.term => {
                    let entry = ents.remove(0).write_to_bytes().unwrap_or_default().into();
                    self.links.transport.send_repair(from, crate::peer::frame::Repair { entry, ..r });
                }
                Ok(_) => {}
                Err(e) => {
                    slog::debug!(self.logger, "cannot send a copy of an entry"; "index" => r.index, "error" => %e)
                }
            }
            return;
        }
        let entry = match raft::eraftpb::Entry::parse_from_bytes(&r.entry) {
            Ok(e) if e.index == r.index && e.term == r.term => e,
            _ => {
                slog::warn!(self.logger, "dropping an undecodable or mismatched entry copy"; "from" => from, "index" => r.index);
                return;
            }
        };
        match self.core.raft.node.mut_store().log_mut().repair(&entry) {
            Ok(true) => slog::info!(self.logger, "repaired from a peer"; "from" => from, "index" => r.index),
            Ok(false) => {}
            Err(e) => {
                slog::warn!(self.logger, "an entry copy does not repair the damaged entry"; "from" => from, "index" => r.index, "error" => %e)
            }
        }
    }

    /// See `campaign_retries`: campaign again while no leader is known.
    fn retry_campaign(&mut self) {
        let role = self.core.raft.role();
        // Only while pre-voting at term 0: a pre-vote changes no term, so a retry never adds an
        // election of its own.
        if role.leader != 0 || role.term > 0 || role.role != raft::StateRole::PreCandidate {
            self.campaign_retries = 0;
            return;
        }
        self.campaign_retries -= 1;
        let _ = self.core.raft.node.campaign();
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

    /// The storage failed: stop taking part in Raft, fail every waiting produce, and try to
    /// reopen the storage from disk after a delay (a full disk recovers once space is freed).
    fn fail(&mut self, ctx: &mut Context<Self>, reason: String) {
        slog::error!(self.logger, "partition storage failed; the group stops serving until its storage can be reopened";
            "group" => self.core.raft.group(), "error" => reason.as_str(), "durable_index" => self.durable_index);
        self.fail_waiters(PartitionError::Storage(reason.clone()));
        self.shared.set_role(0, self.core.raft.role().term);
        self.failure = Some(Failure { reason, attempts: 0, last_attempt: None, timer_set: false, drained: false });
        // No queued write of this core may land after the reopen: the writer skips them from
        // now on, and the reopen waits until it has answered everything queued so far.
        self.core.raft.poison_writes();
        let (addr, generation) = (ctx.address(), self.generation);
        self.writer.barrier(move || addr.do_send(PartitionMsg::Drained { generation }));
    }

    fn schedule_recovery(&mut self, ctx: &mut Context<Self>) {
        if let Some(f) = self.failure.as_mut().filter(|f| !f.timer_set && f.drained) {
            f.timer_set = true;
            ctx.notify_later(PartitionMsg::Recover, recovery_delay(f.attempts));
        }
    }

    /// Reopens the core from disk, as a restart of this group would: the log is first cut back
    /// to what is known to be fsynced (anything after it was never acknowledged), then opened
    /// with the usual recovery (torn tail), and the state machine is rebuilt from it.
    fn recover(&mut self, ctx: &mut Context<Self>) {
        let Some(f) = self.failure.as_mut().filter(|f| f.drained) else {
            return;
        };
        f.attempts += 1;
        f.last_attempt = Some(std::time::Instant::now());
        let (attempt, reason) = (f.attempts, f.reason.clone());
        match self.reopen_core() {
            Ok(core) => {
                let old = std::mem::replace(&mut self.core, core);
                drop(old);
                self.generation += 1;
                self.failure = None;
                self.sync_marks.clear();
                self.durable_index = match self.reopen.settings.durability {
                    crate::raft::core::Durability::Fsync => self.core.raft.storage().log().last_index(),
                    crate::raft::core::Durability::PageCache => u64::MAX,
                };
                slog::warn!(self.logger, "partition storage reopened after a failure; the group serves again";
                    "group" => self.reopen.group, "attempt" => attempt, "failure" => reason.as_str(),
                    "last_index" => self.core.raft.storage().log().last_index());
                self.start_core(ctx);
                // Lead (standalone) before the next message, so a produce right after is taken.
                self.drive(ctx);
            }
            Err(e) => {
                slog::warn!(self.logger, "partition storage still failing"; "group" => self.reopen.group,
                    "attempt" => attempt, "error" => %e);
                self.schedule_recovery(ctx);
            }
        }
    }

    fn reopen_core(&self) -> Result<PartitionCore, crate::raft::core::OpenError> {
        let dir = &self.dir;
        let r = &self.reopen;
        let opts = crate::log::LogOptions {
            segment_bytes: r.settings.segment_bytes,
            index_interval_bytes: r.settings.index_interval_bytes,
            kind: crate::log::LogKind::KafkaBatches,
        };
        // Reading needs no space, writing does: only come back once a write and its fsync go
        // through again, so that a group on a full disk does not flap between leading and failing.
        let probe = dir.join("storage-probe.tmp");
        let wrote = std::fs::File::create(&probe)
            .and_then(|mut f| std::io::Write::write_all(&mut f, &[0u8; 64 * 1024]).and_then(|_| f.sync_all()));
        let _ = std::fs::remove_file(&probe);
        wrote.map_err(|e| crate::log::LogError::io(&probe, e))?;
        let (mut storage, _) = crate::raft::storage::GroupStorage::open(dir, opts, &self.logger)?;
        let last = storage.log().last_index();
        if last > self.durable_index {
            slog::warn!(self.logger, "dropping log entries that were written but not fsynced before the failure";
                "group" => r.group, "from_index" => self.durable_index + 1, "last_index" => last);
            storage.log_mut().truncate_suffix(self.durable_index + 1)?;
        }
        storage.log_mut().sync()?;
        drop(storage);
        PartitionCore::open(dir, r.group, &r.voters, false, &r.settings, self.logger.clone())
    }

    /// Starts what runs beside the core: its apply actor; then drives it.
    fn start_core(&mut self, ctx: &mut Context<Self>) {
        self.core.raft.set_metrics_name(self.name.clone());
        let me = ctx.address();
        let state = crate::partition::core::ApplyState::new(self.core.high_watermark(), self.logger.clone());
        let (delay, generation) = (self.links.apply_delay, self.generation);
        let apply = match &self.links.apply_arbiter {
            Some(arbiter) => super::apply::ApplyActor::start_in_arbiter(arbiter, move |_| {
                super::apply::ApplyActor::new(state, me, delay, generation)
            }),
            None => super::apply::ApplyActor::new(state, me, delay, generation).start(),
        };
        self.apply = Some(apply);
        self.schedule_drive(ctx);
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
        ctx: &mut Context<Self>,
        batch: BytesMut,
        header: BatchHeader,
        reply: oneshot::Sender<Result<ProduceAck, PartitionError>>,
    ) {
        if let Some(f) = &self.failure {
            let reason = format!("partition storage failed: {}", f.reason);
            let _ = reply.send(Err(PartitionError::Storage(reason)));
            // A produce retries the storage at once, at most once a second.
            let due = f.last_attempt.is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
            if due {
                self.recover(ctx);
            }
            return;
        }
        match self.core.produce(batch, header) {
            Ok(Appended { base_offset, last_offset, new }) => {
                // A new batch is acknowledged once the high watermark passes it, never at once:
                // only a retry of a batch already in the log can be committed already.
                if !new && last_offset < self.core.high_watermark() {
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

    /// Page-cache policy: have the writer fsync what it wrote since the last flush.
    fn flush(&mut self) {
        if self.failure.is_some() {
            return;
        }
        let mut req = self.core.raft.flush_job(false);
        if req.files.is_empty() && req.ops.is_empty() {
            return;
        }
        let logger = self.logger.clone();
        req.done = Box::new(move |r| {
            if let Err(e) = r {
                slog::error!(logger, "periodic fsync failed"; "error" => e);
            }
        });
        self.writer.submit(req);
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
        self.start_core(ctx);
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
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        crate::metrics::registry().remove_group(self.links.transport.me(), &self.name);
        self.ticker.do_send(TickerMsg::Unregister(self.core.raft.group()));
        self.fail_waiters(PartitionError::ShuttingDown);
        // The last job: whatever is queued, then an fsync of every dirty file (not waited for).
        if self.failure.is_none() {
            self.writer.submit(self.core.raft.flush_job(true));
        }
    }
}

impl Handler<PartitionMsg> for PartitionActor {
    type Result = ();

    fn handle(&mut self, msg: PartitionMsg, ctx: &mut Self::Context) {
        match msg {
            // A failed group is silent: peers see it as down and elect another leader.
            PartitionMsg::Tick(_) | PartitionMsg::Raft(_) if self.failure.is_some() => {}
            PartitionMsg::Tick(n) => {
                let hb = self.reopen.settings.heartbeat_tick.max(1) as u64;
                if self.campaign_retries > 0 && n % hb == 0 {
                    self.retry_campaign();
                }
                if n % (hb * 10) == 0 {
                    self.request_repairs(n / (hb * 10));
                }
                if self.core.raft.tick_at(n) || self.core.raft.node.has_ready() {
                    self.schedule_drive(ctx);
                }
            }
            PartitionMsg::Drive => self.drive(ctx),
            PartitionMsg::Produce { batch, header, reply } => {
                self.produce(ctx, batch, header, reply);
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
            PartitionMsg::Synced { generation, .. } if generation != self.generation || self.failure.is_some() => {}
            PartitionMsg::Synced { number, result, .. } => match result {
                Ok(()) => {
                    let done = self.sync_marks.split_off(&(number + 1));
                    let synced = std::mem::replace(&mut self.sync_marks, done);
                    if let Some(last) = synced.values().max() {
                        self.durable_index = self.durable_index.max(*last);
                    }
                    let msgs = self.core.raft.on_synced(number);
                    self.links.transport.send(self.core.raft.group(), msgs);
                    self.schedule_drive(ctx);
                }
                Err(e) => self.fail(ctx, format!("write or fsync failed: {e}")),
            },
            PartitionMsg::Written { generation, number } => {
                if generation == self.generation && self.failure.is_none() {
                    let msgs = self.core.raft.on_written(number);
                    self.links.transport.send(self.core.raft.group(), msgs);
                }
            }
            PartitionMsg::Drained { generation } => {
                if let Some(f) = self.failure.as_mut().filter(|_| generation == self.generation) {
                    f.drained = true;
                    self.schedule_recovery(ctx);
                }
            }
            PartitionMsg::Repair { from, repair } => self.on_repair(from, repair),
            PartitionMsg::Recover => {
                if let Some(f) = self.failure.as_mut() {
                    f.timer_set = false;
                }
                self.recover(ctx);
            }
            // Partition proposals are never forwarded: a batch must be stamped and checked
            // against the producer state by the leader that appends it (see core.rs `produce`).
            PartitionMsg::Raft(m) if m.get_msg_type() == raft::eraftpb::MessageType::MsgPropose => {
                slog::warn!(self.logger, "dropping a proposal forwarded by a peer"; "group" => self.core.raft.group(), "from" => m.from);
            }
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
            PartitionMsg::Applied { generation, .. } if generation != self.generation => {}
            PartitionMsg::Applied { index, high_watermark, .. } => {
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
