//! The partition actor: the shell around [`PartitionCore`]. It owns the mailbox, registers with
//! the ticker, runs the retention timer, and keeps the produce acknowledgements that wait for
//! the high watermark ([`AckWaiters`]). All Raft work happens in one `Drive` (`shell::drive`),
//! which runs once after a burst of messages, so many produce requests share one Ready, one
//! write job and one fsync. The actor itself never writes a log file while the group runs (only
//! segment creation and deletion, and the rare state files).
//!
//! The Ready loop, the writer's answers and storage failures (poison, barrier, timed reopen)
//! are the group shell's (`raft/shell.rs`); this actor is its [`Group`] policy: after a round it
//! hands committed batches to its apply actor, reports leadership to `__meta` and fails the
//! produce waiters on a step-down or a failure; a reopen rebuilds the [`PartitionCore`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytes::BytesMut;
use slog::Logger;
use tokio::sync::oneshot;

use crate::clock::SharedClock;
use crate::error::PartitionError;
use crate::log::batch::BatchHeader;
use crate::partition::core::{Appended, PartitionCore};
use crate::partition::shared::PartitionShared;
use crate::partition::waiters::AckWaiters;
use crate::raft::core::{Durability, OpenError, RaftCore, RoleInfo};
use crate::raft::first_campaign::FirstCampaign;
use crate::raft::shell::{self, Group, GroupShell, Next, ShellEvent};
use crate::raft::ticker::{Ticker, TickerMsg};
use crate::raft::writer::DiskWriter;
use crate::raft::{GroupId, GroupSettings};

#[path = "fetch.rs"]
mod fetch;
#[path = "hibernate.rs"]
mod hibernate;
#[path = "leadership.rs"]
mod leadership;
#[path = "reassign.rs"]
mod reassign;
#[path = "repair.rs"]
mod repair;
#[path = "snapshot.rs"]
pub mod snapshot;
#[path = "txn_index_io.rs"]
mod txn_index_io;

/// A produce acknowledgement: the batch's first offset and the log start offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProduceAck {
    pub base_offset: i64,
    pub log_start: i64,
}

/// The result of a read.
#[derive(Debug, Clone)]
pub struct FetchData {
    /// The batches: in memory, or ranges of their segment files for a zero-copy send.
    pub records: crate::protocol::chain::Chain,
    pub high_watermark: i64,
    pub log_start: i64,
    /// The last stable offset (`partition::txn`).
    pub last_stable_offset: i64,
    /// read_committed: the aborted transactions overlapping the records returned.
    pub aborted: Vec<crate::partition::txn::AbortedTxn>,
}

/// A partition's progress and checksum, for `cluster status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PartitionStatus {
    #[serde(flatten)]
    pub raft: crate::raft::core::GroupStatus,
    pub high_watermark: i64,
    pub log_start: i64,
    /// The last stable offset (`partition::txn`).
    pub last_stable_offset: i64,
    pub checksum: String,
}

/// Topic-level settings a partition applies (from the topic's configs).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RetentionSettings {
    pub retention_ms: Option<i64>,
    pub retention_bytes: Option<u64>,
    /// `cleanup.policy` includes `compact` (and the cleaner runs): the compaction settings.
    pub compaction: Option<crate::log::cleaner::CompactionSettings>,
    /// `segment.ms`: roll the active segment when its first batch is this old.
    pub segment_ms: Option<i64>,
    /// `segment.bytes` (or `internal.segment.bytes`): the size at which the next segment rolls;
    /// `None` keeps the size the log was opened with.
    pub segment_bytes: Option<u64>,
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
    /// Read committed batches (below the last stable offset for `read_committed`); with
    /// `zero_copy` the written ones are not read but named as file ranges (`partition/fetch.rs`).
    Fetch {
        offset: i64,
        max_bytes: usize,
        read_committed: bool,
        zero_copy: bool,
        reply: oneshot::Sender<Result<FetchData, PartitionError>>,
    },
    /// A Fetch read off the actor found entry `index` damaged (`partition/fetch.rs`).
    ReadDamage { generation: u64, index: u64, error: crate::log::LogError },
    /// DeleteRecords: move the log start to `offset` (-1: the high watermark); answers the new
    /// log start once applied (`partition/delete_records.rs`).
    DeleteRecords { offset: i64, reply: oneshot::Sender<Result<i64, PartitionError>> },
    /// Look up an offset by timestamp (or -1/-2/-3); `read_committed` bounds it by the LSO.
    ListOffset { timestamp: i64, read_committed: bool, reply: oneshot::Sender<Result<(i64, i64), PartitionError>> },
    /// Write a transaction's COMMIT (`commit`) or ABORT marker through the group (WriteTxnMarkers,
    /// `partition::txn`); `reply` gets the marker's offset once it is committed.
    WriteTxnMarker {
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
        reply: oneshot::Sender<Result<i64, PartitionError>>,
    },
    /// The active producers (DescribeProducers), from the leader.
    DescribeProducers { reply: oneshot::Sender<Result<Vec<crate::partition::core::ProducerInfo>, PartitionError>> },
    /// A Raft message from a peer.
    Raft(raft::eraftpb::Message),
    /// Report progress for `cluster status`.
    /// Progress, and with `checksum` the CRC of the whole committed log (read off the actor).
    Status { reply: oneshot::Sender<PartitionStatus>, checksum: bool },
    /// The apply actor of core `generation` has applied up to `index`.
    Applied { generation: u64, index: u64, high_watermark: i64 },
    /// The disk writer's answers and the reopen timer (see `raft::shell`).
    Shell(ShellEvent),
    /// From node `from`: a request for a copy of an entry, or the copy (see `frame::Repair`).
    Repair { from: u64, repair: crate::peer::frame::Repair },
    /// New retention settings.
    Retention(RetentionSettings),
    /// The cleaner's answer to this partition's job (see `partition::cleaning`).
    Cleaned(crate::log::cleaner::CleanReply),
    /// From node `from`: a snapshot chunk request or chunk (see `partition::actor::snapshot`).
    Snapshot { from: u64, msg: crate::peer::frame::SnapshotPeerMsg },
    /// The answer of a snapshot receiver's disk work.
    SnapshotIo(snapshot::SnapshotIo),
    /// An aborted-index file job finished (`partition/txn_index_io.rs`).
    TxnIndex(txn_index_io::TxnIndexDone),
    /// Move the leadership to this replica (a preferred leader election, `node.rs`).
    ElectSelf,
    /// This node is stopping (a controlled shutdown, `crate::shutdown`): hand the leadership to
    /// a live voter (`RaftCore::resign`), and ask for none back from now on.
    Resign(oneshot::Sender<crate::raft::core::resign::Resign>),
    /// The connection to this node dropped: the leader stops waiting for its lost appends
    /// (raft-rs `report_unreachable`: Replicate → Probe).
    Unreachable(u64),
    /// `__meta`'s reassignment target for this group (`None`: none), see `partition::reassign`.
    Reassign(Option<Vec<u64>>),
    /// Stop the group (topic deleted); the node removes the data afterwards.
    Stop,
}

type AckReply = oneshot::Sender<Result<ProduceAck, PartitionError>>;

/// What reopening a group's core needs.
struct Reopen {
    group: GroupId,
    voters: Vec<u64>,
    settings: GroupSettings,
}

/// The actor shell of one partition group.
pub struct PartitionActor {
    core: PartitionCore,
    shell: GroupShell,
    shared: Arc<PartitionShared>,
    ticker: Addr<Ticker>,
    links: Links,
    apply: Option<Addr<super::apply::ApplyActor>>,
    clock: SharedClock,
    retention: RetentionSettings,
    retention_check: Duration,
    cleaning: super::cleaning::Cleaning,
    /// Snapshot transfers that carry segment files, both ways.
    snapshots: snapshot::Snapshots,
    flush_interval: Option<Duration>,
    /// Acknowledgements waiting for the high watermark to pass their last offset.
    waiters: AckWaiters<AckReply>,
    /// DeleteRecords answers waiting for their entry to apply.
    deletes: crate::partition::delete_records::DeleteWaiters,
    /// How to open the core again.
    reopen: Reopen,
    /// The preferred leader of a new group campaigns at once; its vote requests are lost when a
    /// peer has not started the group yet, so it campaigns again every heartbeat interval (this
    /// many tries left) until a leader is known, instead of waiting for an election timeout.
    campaign_retries: u32,
    /// Ticks left in which this replica keeps asking for the leadership (a preferred leader
    /// election, `ElectSelf`): the request is repeated every heartbeat while no leader is known
    /// yet or the leader aborted a transfer (its log was behind), and ends once this replica leads.
    elect_self_ticks: u64,
    /// This node is stopping (`PartitionMsg::Resign`): it takes no leadership back.
    resigning: bool,
    /// The reassignment this replica follows (driven while it leads).
    reassign: reassign::Driver,
    /// Whether the group is quiet (`raft.hibernate`).
    hib: hibernate::Hibernation,
    /// The first campaign of a new group's preferred replica (`raft::first_campaign`).
    first_campaign: FirstCampaign,
    /// Drops the ticks a backlog delivers in one burst (`raft::ticker::TickGate`).
    tick_gate: crate::raft::ticker::TickGate,
    /// The group had no leader and an empty log when it opened, and this replica does not join
    /// a running group (`raft::hibernate::starts_quiet`).
    new_group: bool,
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
    /// The node's log cleaner, and how often a partition checks for cleanable data.
    pub cleaner: Option<(crate::log::cleaner::Cleaner, Duration)>,
    /// The node's first-campaign slots (`raft::first_campaign`).
    pub campaigns: crate::raft::first_campaign::CampaignSlots,
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
    /// A replica that joins a running group (reassignment): the leader's conf state and its index.
    pub join: Option<(raft::eraftpb::ConfState, u64)>,
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
        if let Some(join) = &spec.join {
            reassign::prepare_join(&spec.dir, &spec.settings, join, &logger)?;
        }
        // In a cluster the preferred replica of a new group campaigns once it holds one of the
        // node's first-campaign slots (`raft::first_campaign`), not at open.
        let paced = spec.campaign && spec.voters.len() > 1;
        let core = PartitionCore::open(
            &spec.dir,
            spec.group,
            &spec.voters,
            spec.campaign && !paced,
            &spec.settings,
            logger.clone(),
        )?;
        let fsync = spec.settings.durability == Durability::Fsync;
        let last_index = core.raft.last_index();
        let never_led = last_index == 0 && core.raft.role().term == 0;
        let transport = links.transport.clone();
        let shell = GroupShell::new(spec.group, "partition", last_index, fsync, writer, transport, logger.clone());
        Ok(PartitionActor {
            core,
            shell,
            shared,
            ticker,
            links,
            apply: None,
            clock,
            retention: spec.retention,
            retention_check: spec.retention_check,
            cleaning: Default::default(),
            snapshots: snapshot::Snapshots::new(spec.group, &spec.settings),
            flush_interval: (!fsync).then_some(spec.flush_interval),
            waiters: AckWaiters::default(),
            deletes: Default::default(),
            campaign_retries: 0,
            first_campaign: if paced && never_led { FirstCampaign::Waiting } else { FirstCampaign::Done },
            tick_gate: crate::raft::ticker::TickGate::new(spec.settings.tick),
            elect_self_ticks: 0,
            resigning: false,
            reassign: Default::default(),
            hib: hibernate::Hibernation::new(&spec.settings, never_led),
            new_group: never_led && spec.join.is_none(),
            reopen: Reopen { group: spec.group, voters: spec.voters, settings: spec.settings },
            name: spec.name,
            logger,
            dir: spec.dir,
        })
    }

    fn schedule_drive(&mut self, ctx: &mut Context<Self>) {
        if self.shell.want_drive() {
            ctx.notify(PartitionMsg::Drive);
        }
    }

    /// Carries out what the shell asks for.
    fn follow(&mut self, next: Next, ctx: &mut Context<Self>) {
        if let Some(delay) = next.timer {
            ctx.notify_later(PartitionMsg::Shell(ShellEvent::Recover), delay);
        }
        if next.reopened {
            self.start_core(ctx);
            // Lead (standalone) before the next message, so a produce right after is taken.
            let next = shell::drive(self);
            self.follow(next, ctx);
        } else if next.drive {
            self.schedule_drive(ctx);
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
        let lso = self.core.last_stable_offset();
        self.shared.set_offsets(hw, log_start, lso);
        for (base_offset, reply) in self.waiters.release(hw) {
            let _ = reply.send(Ok(ProduceAck { base_offset, log_start }));
        }
    }

    /// Starts what runs beside the core: its apply actor; then drives it.
    fn start_core(&mut self, ctx: &mut Context<Self>) {
        self.core.raft.set_metrics_name(self.name.clone());
        let me = ctx.address();
        let state = crate::partition::core::ApplyState::new(self.core.high_watermark(), self.logger.clone());
        let (delay, generation) = (self.links.apply_delay, self.shell.generation());
        let apply = match &self.links.apply_arbiter {
            Some(arbiter) => super::apply::ApplyActor::start_in_arbiter(arbiter, move |_| {
                super::apply::ApplyActor::new(state, me, delay, generation)
            }),
            None => super::apply::ApplyActor::new(state, me, delay, generation).start(),
        };
        self.apply = Some(apply);
        // The replay at open applied the retained log already (`partition/replay.rs`).
        self.publish_offsets();
        self.store_txn_indexes(ctx);
        self.schedule_drive(ctx);
    }

    fn fail_waiters(&mut self, err: PartitionError) {
        for reply in self.waiters.take_all() {
            let _ = reply.send(Err(err.clone()));
        }
        self.deletes.fail_all(&err);
    }

    fn produce(
        &mut self,
        ctx: &mut Context<Self>,
        batch: BytesMut,
        header: BatchHeader,
        reply: oneshot::Sender<Result<ProduceAck, PartitionError>>,
    ) {
        if let Some(reason) = self.shell.failure_reason() {
            let _ = reply.send(Err(PartitionError::Disk(reason.clone())));
            // A produce retries the storage at once, at most once a second.
            let next = shell::retry_now(self, std::time::Instant::now());
            self.follow(next, ctx);
            return;
        }
        match self.core.produce(batch, header) {
            Ok(Appended { base_offset, last_offset, new }) => {
                // A new batch is acknowledged once the high watermark passes it, never at once:
                // only a retry of a batch already in the log can be committed already.
                if !new && last_offset < self.core.high_watermark() {
                    let _ = reply.send(Ok(ProduceAck { base_offset, log_start: self.core.log_start() }));
                } else {
                    self.waiters.wait(base_offset, last_offset, reply);
                }
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }

    /// A transaction marker: proposed on the leader, answered with its offset once committed
    /// (it waits for the high watermark like an acks=all produce).
    fn write_marker(
        &mut self,
        ctx: &mut Context<Self>,
        (producer_id, epoch, commit, coordinator_epoch): (i64, i16, bool, i32),
        reply: oneshot::Sender<Result<i64, PartitionError>>,
    ) {
        if let Some(reason) = self.shell.failure_reason() {
            let _ = reply.send(Err(PartitionError::Disk(reason.clone())));
            return;
        }
        let now = self.clock.unix_millis();
        match self.core.write_marker(producer_id, epoch, commit, coordinator_epoch, now) {
            Ok(offset) => {
                let (tx, rx) = oneshot::channel();
                self.waiters.wait(offset, offset, tx);
                ctx.spawn(actix::fut::wrap_future(async move {
                    let r = rx.await.unwrap_or(Err(PartitionError::ShuttingDown));
                    let _ = reply.send(r.map(|ack| ack.base_offset));
                }));
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }

    /// Page-cache policy: have the writer fsync what it wrote since the last flush.
    fn flush(&mut self) {
        if self.shell.is_failed() {
            return;
        }
        let mut req = self.core.raft.flush_job(false);
        if req.files.is_empty() && req.ops.is_empty() {
            return;
        }
        let logger = self.logger.clone();
        req.done = Box::new(move |r| {
            if let Err(e) = r {
                slog::error!(logger, "periodic fsync failed"; "error" => %e);
            }
        });
        self.shell.writer().submit(req);
    }

    fn run_retention(&mut self) {
        let now = self.clock.unix_millis();
        let r = self.retention;
        // Without time or size limits it still deletes segments below a DeleteRecords floor.
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

impl PartitionActor {
    /// The cleaner timer: a time-based roll, then a compaction job for the node's cleaner
    /// (planned from memory; the cleaner thread does the reading and writing).
    fn run_cleaner(&mut self, ctx: &mut Context<Self>) {
        if self.shell.is_failed() {
            return;
        }
        let Some((cleaner, _)) = self.links.cleaner.clone() else {
            return;
        };
        self.advance_raft_start();
        let (now, applied) = (self.clock.unix_millis(), self.core.confirmed_applied());
        let r = self.retention;
        let producers = self.core.raft.sm().producers.clone();
        let log = self.core.raft.log_mut();
        let planned = self.cleaning.check(
            log,
            &self.dir,
            applied,
            r.compaction,
            r.segment_ms,
            now,
            || (producers.last_offsets(), crate::partition::txn::cleaner_facts(&producers)),
            &self.logger,
        );
        self.store_txn_indexes(ctx);
        let node = self.links.transport.me();
        let Some(p) = planned else {
            if r.compaction.is_none() {
                crate::metrics::cleaner_forget(node, &self.name);
            }
            return;
        };
        crate::metrics::cleaner_partition(node, &self.name, p.dirty_ratio, p.lag_seconds);
        if let Some(job) = p.job {
            let addr = ctx.address();
            let reply = Box::new(move |r| addr.do_send(PartitionMsg::Cleaned(r)));
            let msg =
                crate::log::cleaner::CleanerMsg::Clean { node, name: self.name.clone(), job: Box::new(job), reply };
            if !cleaner.send(msg) {
                self.cleaning.finished(self.core.raft.log_mut(), Err("the cleaner has stopped".into()), &self.logger);
            }
        }
    }
}

impl Actor for PartitionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.shared.set_thread();
        let addr = ctx.address();
        self.shell.set_notify(Arc::new(move |e| addr.do_send(PartitionMsg::Shell(e))));
        self.start_core(ctx);
        let addr = ctx.address();
        let tick: crate::raft::ticker::TickFn = Box::new(move |n| {
            addr.do_send(PartitionMsg::Tick(n));
            addr.connected()
        });
        let group = self.core.raft.group();
        self.ticker.do_send(match self.hib.cell() {
            Some(cell) => TickerMsg::RegisterQuiet(group, tick, cell),
            None => TickerMsg::Register(group, tick),
        });
        self.start_quiet(self.new_group, false, ctx);
        ctx.run_interval(self.retention_check, |act, _| act.run_retention());
        if let Some((_, every)) = &self.links.cleaner {
            ctx.run_interval(*every, |act, ctx| act.run_cleaner(ctx));
        }
        if let Some(every) = self.flush_interval {
            ctx.run_interval(every, |act, _| act.flush());
        }
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        crate::metrics::registry().remove_group(self.links.transport.me(), &self.name);
        crate::metrics::cleaner_forget(self.links.transport.me(), &self.name);
        self.ticker.do_send(TickerMsg::Unregister(self.core.raft.group()));
        self.first_campaign.abandon(&self.links.campaigns);
        self.hibernate_stopped();
        self.fail_waiters(PartitionError::ShuttingDown);
        self.shell.final_flush(&mut self.core.raft);
    }
}

impl Handler<PartitionMsg> for PartitionActor {
    type Result = ();

    fn handle(&mut self, msg: PartitionMsg, ctx: &mut Self::Context) {
        self.wake_on(&msg, ctx);
        match msg {
            // A failed group is silent: peers see it as down and elect another leader.
            PartitionMsg::Tick(_) | PartitionMsg::Raft(_) if self.shell.is_failed() => {}
            PartitionMsg::Tick(n) if !self.admit_tick(n) => {}
            PartitionMsg::Tick(_) if !self.hibernate_tick(ctx) => {}
            PartitionMsg::Tick(n) => {
                let hb = self.reopen.settings.heartbeat_tick.max(1) as u64;
                if !self.first_campaign_tick() {
                    return;
                }
                if self.campaign_retries > 0 && n % hb == 0 {
                    self.retry_campaign();
                }
                if self.elect_self_ticks > 0 {
                    self.elect_self_ticks -= 1;
                    if n % hb == 0 {
                        self.elect_self(ctx);
                    }
                }
                if n % (hb * 10) == 0 {
                    self.request_repairs(n / (hb * 10));
                }
                if n % hb == 0 {
                    self.reassign_tick(ctx);
                }
                self.snapshot_tick(ctx);
                if self.core.raft.tick_at(n) || self.core.raft.has_ready() {
                    self.schedule_drive(ctx);
                }
            }
            PartitionMsg::Drive => {
                let next = shell::drive(self);
                self.follow(next, ctx);
            }
            PartitionMsg::Produce { batch, header, reply } => {
                self.produce(ctx, batch, header, reply);
                self.schedule_drive(ctx);
            }
            PartitionMsg::Fetch { offset, max_bytes, read_committed, zero_copy, reply } => {
                self.fetch(ctx, (offset, max_bytes, read_committed, zero_copy), reply)
            }
            PartitionMsg::ReadDamage { generation, index, error } => self.on_read_damage(generation, index, error),
            PartitionMsg::WriteTxnMarker { producer_id, producer_epoch, commit, coordinator_epoch, reply } => {
                self.write_marker(ctx, (producer_id, producer_epoch, commit, coordinator_epoch), reply);
                self.schedule_drive(ctx);
            }
            PartitionMsg::Resign(reply) => self.resign(reply, ctx),
            PartitionMsg::ElectSelf => {
                let me = self.links.transport.me();
                if self.core.raft.role().leader != me && !self.resigning {
                    slog::info!(self.logger, "preferred leader election: asking for a leader transfer"; "to" => me);
                    crate::metrics::leader_transfer_requested(me);
                    self.elect_self_ticks = 3 * self.reopen.settings.election_tick.max(1) as u64;
                    self.elect_self(ctx);
                }
            }
            PartitionMsg::DescribeProducers { reply } => {
                let _ = reply.send(self.core.producers());
            }
            PartitionMsg::DeleteRecords { offset, reply } => {
                use crate::partition::delete_records::Deletion;
                match self.core.delete_records(offset) {
                    Ok(Deletion::Done(start)) => {
                        let _ = reply.send(Ok(start));
                    }
                    Ok(Deletion::Proposed { index }) => self.deletes.wait(index, reply),
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
                self.schedule_drive(ctx);
            }
            PartitionMsg::ListOffset { timestamp, read_committed, reply } => {
                let _ = reply.send(self.core.offset_for(timestamp, read_committed));
            }
            PartitionMsg::Shell(event) => {
                let next = shell::on_event(self, event, std::time::Instant::now());
                self.follow(next, ctx);
            }
            PartitionMsg::Repair { from, repair } => self.on_repair(from, repair),
            // Partition proposals are never forwarded: a batch must be stamped and checked
            // against the producer state by the leader that appends it (see core.rs `produce`).
            PartitionMsg::Raft(m) if m.get_msg_type() == raft::eraftpb::MessageType::MsgPropose => {
                slog::warn!(self.logger, "dropping a proposal forwarded by a peer"; "group" => self.core.raft.group(), "from" => m.from);
            }
            PartitionMsg::Raft(m) => {
                let m = self.quiet_step(m, ctx);
                let Some(m) = self.take_snapshot_msg(m, ctx) else {
                    return;
                };
                if let Err(e) = self.core.raft.step(m) {
                    slog::debug!(self.logger, "raft rejected a message"; "group" => self.core.raft.group(), "error" => %e);
                }
                self.schedule_drive(ctx);
            }
            PartitionMsg::Status { reply, checksum } => {
                let status = PartitionStatus {
                    raft: self.core.raft.status(),
                    high_watermark: self.core.high_watermark(),
                    log_start: self.core.log_start(),
                    last_stable_offset: self.core.last_stable_offset(),
                    checksum: String::new(),
                };
                if !checksum {
                    let _ = reply.send(status);
                    return;
                }
                // The checksum reads the whole committed log: on the blocking pool, which
                // answers the request itself.
                let plan = self.core.checksum_plan();
                tokio::task::spawn_blocking(move || {
                    let checksum = match plan.checksum() {
                        Ok(c) => format!("{c:#010x}"),
                        Err(e) => format!("error: {e}"),
                    };
                    let _ = reply.send(PartitionStatus { checksum, ..status });
                });
            }
            PartitionMsg::Applied { generation, .. } if generation != self.shell.generation() => {}
            PartitionMsg::Applied { index, high_watermark, .. } => {
                self.core.set_applied(index, high_watermark);
                self.publish_offsets();
                self.store_txn_indexes(ctx);
                let lag = self.core.raft.commit_index().saturating_sub(index);
                let lso_lag = self.core.high_watermark() - self.core.last_stable_offset();
                crate::metrics::registry().group(self.links.transport.me(), &self.name, |g| {
                    g.apply_lag = lag;
                    g.lso_lag = Some(lso_lag);
                });
            }
            PartitionMsg::Retention(r) => {
                // A changed segment size applies from the next roll, as Kafka's does.
                if let Some(b) = r.segment_bytes {
                    self.core.raft.log_mut().set_segment_bytes(b);
                }
                self.retention = r;
            }
            PartitionMsg::Cleaned(reply) => {
                let log = self.core.raft.log_mut();
                let (installed, dropped_aborts) = self.cleaning.finished(log, reply, &self.logger);
                self.core.forget_txn_indexes(&installed);
                let aborted = &mut self.core.raft.sm_mut().producers.aborted;
                for (pid, offset) in dropped_aborts {
                    aborted.remove_marker(pid, offset);
                }
                if !installed.is_empty() {
                    self.advance_raft_start();
                    self.publish_offsets();
                    self.store_txn_indexes(ctx);
                    // As Kafka's cleaner does, keep cleaning while the log is still cleanable
                    // (a full key map leaves the rest for the next run); the backoff timer only
                    // paces a partition that has nothing to clean.
                    self.run_cleaner(ctx);
                }
            }
            PartitionMsg::Snapshot { from, msg } => self.on_snapshot_peer(from, msg, ctx),
            PartitionMsg::SnapshotIo(io) => self.on_snapshot_io(io, ctx),
            PartitionMsg::TxnIndex(done) => self.on_txn_index_done(done, ctx),
            PartitionMsg::Unreachable(peer) => {
                if self.core.raft.is_leader() {
                    self.core.raft.report_unreachable(peer);
                    self.schedule_drive(ctx);
                }
            }
            PartitionMsg::Reassign(target) => self.set_reassign_target(target, ctx),
            PartitionMsg::Stop => ctx.stop(),
        }
    }
}

impl Group for PartitionActor {
    type Sm = crate::partition::core::PartitionSm;

    fn shell(&mut self) -> &mut GroupShell {
        &mut self.shell
    }

    fn raft(&mut self) -> &mut RaftCore<Self::Sm> {
        &mut self.core.raft
    }

    fn handle_ready(&mut self) -> Result<crate::raft::core::ReadyOutcome, crate::log::LogError> {
        self.core.handle_ready()
    }

    fn after_round(&mut self, role: Option<RoleInfo>, _applied: Option<u64>) {
        if let Some(role) = role {
            self.shared.set_role(role.leader, role.term);
            if role.role == raft::StateRole::Leader {
                self.report_leader(role.term);
            } else {
                self.fail_waiters(PartitionError::NotLeader { leader: Some(role.leader).filter(|l| *l != 0) });
            }
        }
        let items = self.core.take_apply_items();
        if items.iter().any(|i| matches!(i, crate::partition::core::ApplyItem::LogStart { .. })) {
            self.publish_offsets();
            self.deletes.release(self.core.raft.applied(), self.core.log_start());
        }
        if !items.is_empty() {
            if let Some(apply) = &self.apply {
                apply.do_send(super::apply::ApplyMsg::Apply(items));
            }
        }
        self.shared.set_in_sync(self.core.in_sync_replicas());
    }

    /// Fails every waiting produce (KAFKA_STORAGE_ERROR) and stops naming a leader.
    fn on_failure(&mut self, reason: &crate::raft::disk_error::DiskError) {
        self.fail_waiters(PartitionError::Disk(reason.clone()));
        self.shared.set_role(0, self.core.raft.role().term);
    }

    /// Reopens the core from disk, as a restart of this group would: the log is cut back to
    /// what is known to be fsynced, opened with the usual recovery (torn tail), and the state
    /// machine is rebuilt from it.
    fn reopen(&mut self, cut_after: Option<u64>) -> Result<(), OpenError> {
        let r = &self.reopen;
        let opts = crate::log::LogOptions {
            segment_bytes: r.settings.segment_bytes,
            index_interval_bytes: r.settings.index_interval_bytes,
            kind: crate::log::LogKind::KafkaBatches,
        };
        shell::prepare_reopen(&self.dir, opts, cut_after, r.group, &self.logger)?;
        let core = PartitionCore::open(&self.dir, r.group, &r.voters, false, &r.settings, self.logger.clone())?;
        self.core = core;
        Ok(())
    }
}
