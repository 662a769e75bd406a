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
//! # Snapshots
//! Every `[meta] snapshot-entries` applied entries (or `snapshot-bytes` of them) the actor
//! clones the state (cheap: groups' offsets sit behind `Arc`s) and a blocking-pool task encodes
//! it and writes `meta-snapshot-<index>` atomically ([`crate::meta::snapshot`]); its answer comes
//! back as [`MetaMsg::SnapshotWritten`], and only then is the log compacted below the snapshot
//! (whole sealed segments) and the snapshot held for followers behind the new log start, which
//! raft-rs sends it to as `MsgSnapshot`. A follower installs one in [`StateMachine::install`]:
//! the file is written durably before the log restarts (persist before advance). On start the
//! newest valid snapshot is loaded and only the log after it is replayed.
//!
//! # The leader balancer
//! On its own timer ([`MetaMsg::Balance`], every `leaders.imbalance-check-interval`, at most 1 s
//! apart) the actor asks the balancer core ([`crate::meta::balancer`]) which partitions move back
//! to their preferred replica; only the `__meta` leader's core answers, and its answer is
//! proposed as one `ElectPreferred` command, as ElectLeaders does. A broker counts as live when
//! this leader heard from its `__meta` replica within two election timeouts (raft-rs's
//! `recent_active`, sampled on every tick).
//!
//! After every applied batch the actor publishes the new [`MetaState`] through a `watch`
//! channel, read by the node (to start and stop partition groups) and the Kafka handlers.
//!
//! # Storage failures
//! The Ready loop, the writer's answers and storage failures are the group shell's
//! (`raft/shell.rs`), as for partitions; this actor is its [`Group`] policy. A write or fsync
//! error stops the group (no ticks, no Raft messages; waiting proposals get
//! [`MetaError::Storage`], proposals retried forever keep waiting), and once the writer has
//! drained, the shell reopens `__meta` from disk on the partitions' schedule: the log is cut
//! back to its durable index, a new state machine replays the retained log, and the rebuilt
//! image is published again.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use raft::eraftpb::{Entry, Message};
use slog::Logger;
use thiserror::Error;
use tokio::sync::{oneshot, watch};

use crate::clock::Backoff;
use crate::log::{LogKind, LogOptions};
use crate::meta::balancer::{Balancer, BalancerSettings};
use crate::meta::command::{Cmd, ElectPreferred, MetaCommand, ProposalId, RegisterBroker};
use crate::meta::snapshot::{self, SnapshotPolicy, SnapshotTrigger, StoredSnapshot};
use crate::meta::state::{MetaResult, MetaState};
use crate::peer::Transport;
use crate::raft::core::{Durability, OpenError, RaftCore, RoleInfo, StateMachine};
use crate::raft::shell::{self, Group, GroupShell, Next, ShellEvent};
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
    Storage(crate::raft::disk_error::DiskError),
}

/// The `__meta` state machine: the state plus the results of this node's proposals.
pub struct MetaSm {
    pub state: MetaState,
    results: Vec<(ProposalId, MetaResult)>,
    me: u64,
    /// The group's directory, where snapshots are written.
    dir: PathBuf,
    /// What was applied since the last snapshot.
    trigger: SnapshotTrigger,
    /// A snapshot from the leader replaced the state (publish it).
    restored: bool,
    logger: Logger,
}

impl StateMachine for MetaSm {
    /// Decodes the leader's snapshot and writes it to the group's directory durably before the
    /// core restarts the log after it (raft-rs's Ready contract: a snapshot is persisted before
    /// the Ready is advanced; here even before the log is reset).
    fn install(&mut self, snap: &raft::eraftpb::Snapshot) -> Result<(), crate::log::LogError> {
        let meta = snap.get_metadata();
        let state = snapshot::decode(&snap.data)
            .map_err(|e| crate::log::LogError::Invalid(format!("__meta snapshot from the leader: {e}")))?;
        let stored = StoredSnapshot { index: meta.index, term: meta.term, data: snap.data.clone() };
        let size = snapshot::write(&self.dir, &stored)?;
        slog::info!(self.logger, "installed a __meta snapshot from the leader"; "index" => meta.index, "term" => meta.term, "bytes" => size);
        self.state = state;
        self.trigger = SnapshotTrigger::default();
        self.restored = true;
        Ok(())
    }

    fn apply(&mut self, entry: &Entry) {
        self.trigger.applied(entry.data.len());
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
    /// The disk writer's answers and the reopen timer (see `raft::shell`).
    Shell(ShellEvent),
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
    /// The leader balancer's timer.
    Balance,
    /// The connection to this node dropped: as leader, raft-rs `report_unreachable` (Replicate →
    /// Probe), as the partition groups do.
    Unreachable(u64),
    /// A node asks to join the cluster (`peer::frame::JoinRequest`, `meta::members`).
    Join {
        req: crate::peer::frame::JoinRequest,
        reply: oneshot::Sender<crate::peer::frame::JoinReply>,
    },
    /// An operator's membership change, on the `__meta` leader (`actor_members.rs`).
    Members {
        op: members_glue::MemberOp,
        reply: oneshot::Sender<members_glue::MemberAnswer>,
    },
    /// This node is stopping (a controlled shutdown, `crate::shutdown`): as leader, hand the
    /// leadership to a live voter (`RaftCore::resign`).
    Resign(oneshot::Sender<crate::raft::core::resign::Resign>),
    /// The blocking task that wrote a snapshot of core `generation` is done.
    SnapshotWritten {
        generation: u64,
        snap: StoredSnapshot,
        result: Result<u64, String>,
        took: Duration,
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
    shell: GroupShell,
    ticker: Addr<Ticker>,
    image: watch::Sender<Arc<MetaState>>,
    pending: HashMap<ProposalId, Pending>,
    next_seq: u64,
    backoff: Backoff,
    me: RegisterBroker,
    registering: bool,
    /// How to open the group again after a storage failure.
    dir: PathBuf,
    settings: GroupSettings,
    snapshots: SnapshotPolicy,
    segment_bytes: u64,
    addr: Option<Addr<MetaActor>>,
    /// The `__meta` leader this node knows (0: none), for Metadata's and DescribeCluster's
    /// `controller_id`.
    leader: Arc<std::sync::atomic::AtomicU64>,
    /// The automatic leader balancer's core.
    balancer: Balancer,
    /// The node-wide tick last seen, and the last tick each replica of `__meta` was heard from
    /// (while this node leads it): the live brokers of the balancer and the membership changes.
    tick: u64,
    heard: BTreeMap<u64, u64>,
    /// Membership (`actor_members.rs`): the peer transport, this node's Raft address, the
    /// most `__meta` voters, an announcement in flight, and the last planned step.
    transport: Transport,
    raft_addr: String,
    max_voters: usize,
    announcing: bool,
    meta_step: Option<crate::raft::membership::Step>,
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
    /// When to snapshot (`[meta]`).
    pub snapshots: SnapshotPolicy,
    /// `meta.segment-bytes`.
    pub segment_bytes: u64,
    /// `[leaders]`: the automatic leader balancer.
    pub balancer: BalancerSettings,
    /// This node's Raft address (empty: standalone) and `meta.max-voters`.
    pub raft_addr: String,
    pub max_voters: usize,
    /// A joining node's `__meta` replica starts from this configuration (a join answer).
    pub join: Option<(raft::eraftpb::ConfState, u64)>,
}

impl MetaActor {
    /// Opens the `__meta` log; a new group gets `voters`. A single voter, or the lowest-id voter
    /// of a cluster, campaigns at once so the group forms without waiting an election timeout.
    pub fn open(spec: MetaSpec<'_>, logger: Logger) -> Result<(Self, watch::Receiver<Arc<MetaState>>), OpenError> {
        std::fs::create_dir_all(spec.dir).map_err(|e| crate::log::LogError::io(spec.dir, e))?;
        if let Some((cs, index)) = &spec.join {
            prepare_join(spec.dir, spec.settings, spec.segment_bytes, cs, *index, &logger)?;
        }
        let core = open_core(spec.dir, Some(spec.voters), spec.settings, spec.segment_bytes, &logger)?;
        let fsync = spec.settings.durability == Durability::Fsync;
        let shell = GroupShell::new(
            META_GROUP,
            "__meta",
            core.last_index(),
            fsync,
            spec.writer,
            spec.transport.clone(),
            logger.clone(),
        );
        let (tx, rx) = watch::channel(Arc::new(MetaState::new()));
        Ok((
            MetaActor {
                core,
                shell,
                ticker: spec.ticker,
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
                dir: spec.dir.to_path_buf(),
                settings: spec.settings.clone(),
                snapshots: spec.snapshots,
                segment_bytes: spec.segment_bytes,
                addr: None,
                leader: Arc::default(),
                balancer: Balancer::new(spec.balancer),
                tick: 0,
                heard: BTreeMap::new(),
                transport: spec.transport,
                raft_addr: spec.raft_addr,
                max_voters: spec.max_voters,
                announcing: false,
                meta_step: None,
                logger,
            },
            rx,
        ))
    }

    /// The cell this actor keeps the known `__meta` leader in (0: none).
    pub fn leader_cell(&self) -> Arc<std::sync::atomic::AtomicU64> {
        self.leader.clone()
    }

    fn schedule_drive(&mut self, ctx: &mut Context<Self>) {
        if self.shell.want_drive() {
            ctx.notify(MetaMsg::Drive);
        }
    }

    fn drive(&mut self, ctx: &mut Context<Self>) {
        let next = shell::drive(self);
        self.follow(next, ctx);
        if !self.shell.is_failed() {
            self.maybe_register(ctx);
            self.maybe_announce(ctx);
        }
    }

    /// Carries out what the shell asks for.
    fn follow(&mut self, next: Next, ctx: &mut Context<Self>) {
        if let Some(delay) = next.timer {
            ctx.notify_later(MetaMsg::Shell(ShellEvent::Recover), delay);
        }
        if next.reopened {
            self.drive(ctx);
        } else if next.drive {
            self.schedule_drive(ctx);
        }
    }

    fn finish_applied(&mut self) {
        // Publish first: a client that got its answer must see the change in its next request.
        self.image.send_replace(Arc::new(self.core.sm().state.clone()));
        for (id, result) in std::mem::take(&mut self.core.sm_mut().results) {
            if let Some(p) = self.pending.remove(&id) {
                if let Some(reply) = p.reply {
                    let _ = reply.send(Ok(result));
                }
            }
        }
    }

    /// Answers every waiting proposal with `err`; those retried until they apply (without a
    /// waiter) stay, and are proposed again once the group works again.
    fn fail_waiting(&mut self, err: MetaError) {
        let waiting: Vec<ProposalId> =
            self.pending.iter().filter(|(_, p)| p.reply.is_some()).map(|(id, _)| *id).collect();
        for id in waiting {
            if let Some(reply) = self.pending.remove(&id).and_then(|p| p.reply) {
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
        if let Some(reason) = self.shell.failure_reason() {
            if let Some(reply) = reply {
                let _ = reply.send(Err(MetaError::Storage(reason.clone())));
                return;
            }
        }
        let applied_max = self.core.sm().state.seen.get(&self.me.node_id).and_then(|s| s.iter().max()).copied();
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

    /// Starts a snapshot when the policy says so: the state is cloned here and encoded and
    /// written by a blocking-pool task, which answers with [`MetaMsg::SnapshotWritten`].
    fn maybe_snapshot(&mut self) {
        let Some(addr) = self.addr.clone() else { return };
        let policy = self.snapshots;
        if !self.core.sm_mut().trigger.due(&policy) {
            return;
        }
        let Some((index, term)) = self.core.applied_point() else {
            self.core.sm_mut().trigger.done();
            return;
        };
        let state = self.core.sm().state.clone();
        let (dir, generation, started) = (self.dir.clone(), self.shell.generation(), std::time::Instant::now());
        tokio::task::spawn_blocking(move || {
            let snap = StoredSnapshot { index, term, data: bytes::Bytes::from(snapshot::encode(&state)) };
            let result = snapshot::write(&dir, &snap).map_err(|e| e.to_string());
            addr.do_send(MetaMsg::SnapshotWritten { generation, snap, result, took: started.elapsed() });
        });
    }

    /// A snapshot is durable (or failed): compact the log below it and hold it for followers.
    fn snapshot_written(&mut self, snap: StoredSnapshot, result: Result<u64, String>, took: Duration) {
        self.core.sm_mut().trigger.done();
        let size = match result {
            Ok(size) => size,
            Err(e) => {
                slog::warn!(self.logger, "writing a __meta snapshot failed; the log is kept"; "index" => snap.index, "error" => e);
                return;
            }
        };
        let index = snap.index;
        match self.core.compact_to(index, snap.term, snap.data) {
            Ok(segments) => {
                let log = self.core.storage().log();
                let figures = Some((index, size, log.size_bytes()));
                crate::metrics::registry().group(self.me.node_id, "__meta", |g| g.snapshot = figures);
                slog::info!(self.logger, "__meta snapshot written"; "index" => index, "bytes" => size,
                    "took_ms" => took.as_millis() as u64, "segments_deleted" => segments,
                    "log_first_index" => log.first_index(), "log_bytes" => log.size_bytes());
            }
            Err(e) => slog::warn!(self.logger, "compacting the __meta log failed"; "index" => index, "error" => %e),
        }
    }

    /// The balancer's timer: a round on the `__meta` leader proposes one `ElectPreferred`.
    fn balance(&mut self, ctx: &mut Context<Self>) {
        ctx.notify_later(MetaMsg::Balance, self.balancer.poll_period());
        let leading = self.core.is_leader() && !self.shell.is_failed();
        let me = self.me.node_id;
        let live = self.live_nodes();
        let now = std::time::Instant::now();
        let Some(round) = self.balancer.poll(now, leading, &self.core.sm().state, &live) else { return };
        crate::metrics::balancer_round(me, round.groups.len());
        if round.groups.is_empty() {
            slog::debug!(self.logger, "leader balancer: nothing to move");
            return;
        }
        slog::info!(self.logger, "leader balancer: asking preferred replicas to take their partitions back";
            "partitions" => round.groups.len(), "more" => round.more, "live" => ?live);
        let cmd = MetaCommand::new(Cmd::ElectPreferred(ElectPreferred { groups: round.groups }));
        self.start_proposal(cmd, None, false, ctx);
    }

    /// The live nodes as this leader sees them: heard from within two election timeouts
    /// (raft-rs resets `recent_active` at every CheckQuorum, so one sample is not enough), and
    /// itself. The balancer's and the membership changes' view.
    fn live_nodes(&self) -> BTreeSet<u64> {
        let window = 2 * self.settings.election_tick as u64;
        self.heard
            .iter()
            .filter(|(_, at)| self.tick.saturating_sub(**at) <= window)
            .map(|(id, _)| *id)
            .chain(std::iter::once(self.me.node_id))
            .collect()
    }

    fn maybe_register(&mut self, ctx: &mut Context<Self>) {
        if self.registering || self.core.role().leader == 0 {
            return;
        }
        let state = &self.core.sm().state;
        // A removed node never registers again (nor floods `__meta` with refused proposals).
        if state.members.removed.contains(&self.me.node_id) {
            return;
        }
        let current = state.brokers.get(&self.me.node_id);
        if current.is_some_and(|b| {
            b.host == self.me.host
                && b.port == self.me.port
                && b.admin == self.me.admin
                && b.listeners == crate::meta::state::parse_endpoints(&self.me.listeners)
                && b.rack == self.me.rack
        }) && !state.cluster_id.is_empty()
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

#[path = "actor_members.rs"]
mod members_glue;
pub use members_glue::{MemberAnswer, MemberOp};

impl Actor for MetaActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.addr = Some(ctx.address());
        let addr = ctx.address();
        self.shell.set_notify(Arc::new(move |e| addr.do_send(MetaMsg::Shell(e))));
        let addr = ctx.address();
        self.ticker.do_send(TickerMsg::Register(
            META_GROUP,
            Box::new(move |n| {
                addr.do_send(MetaMsg::Tick(n));
                addr.connected()
            }),
        ));
        if self.balancer.settings().enabled {
            ctx.notify_later(MetaMsg::Balance, self.balancer.poll_period());
        }
        self.schedule_drive(ctx);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.shell.final_flush(&mut self.core);
    }
}

impl Handler<MetaMsg> for MetaActor {
    type Result = ();

    fn handle(&mut self, msg: MetaMsg, ctx: &mut Self::Context) {
        match msg {
            MetaMsg::Drive => self.drive(ctx),
            // A failed group is silent: peers see it as down.
            MetaMsg::Tick(_) | MetaMsg::Raft(_) if self.shell.is_failed() => {}
            MetaMsg::Tick(n) => {
                self.tick = n;
                for id in self.core.recently_active() {
                    self.heard.insert(id, n);
                }
                self.membership_tick();
                if self.core.tick_at(n) || self.core.has_ready() {
                    self.schedule_drive(ctx);
                }
            }
            MetaMsg::Shell(event) => {
                let next = shell::on_event(self, event, std::time::Instant::now());
                self.follow(next, ctx);
            }
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
            MetaMsg::Balance => self.balance(ctx),
            MetaMsg::Unreachable(peer) => {
                if self.core.is_leader() {
                    self.core.report_unreachable(peer);
                    self.schedule_drive(ctx);
                }
            }
            MetaMsg::Join { req, reply } => self.join(req, reply, ctx),
            MetaMsg::Members { op, reply } => self.member_op(op, reply, ctx),
            MetaMsg::Status { reply } => {
                let _ = reply.send(self.core.status());
            }
            MetaMsg::Resign(reply) => {
                let r = self.core.resign(crate::shutdown::heard_lately(self.transport.liveness(), &self.settings));
                if matches!(r, crate::raft::core::resign::Resign::Transferring(_)) {
                    self.schedule_drive(ctx);
                }
                let _ = reply.send(r);
            }
            MetaMsg::SnapshotWritten { generation, snap, result, took } => {
                if generation == self.shell.generation() {
                    self.snapshot_written(snap, result, took);
                }
            }
        }
    }
}

/// Opens the `__meta` core from `dir`: at start (`voters`: a new group gets them, and the
/// lowest-id voter campaigns) or after a storage failure (`None`: only a single voter campaigns).
/// The state machine starts empty and replays the retained log.
fn open_core(
    dir: &Path,
    voters: Option<&[u64]>,
    settings: &GroupSettings,
    segment_bytes: u64,
    logger: &Logger,
) -> Result<RaftCore<MetaSm>, OpenError> {
    let (mut storage, _) = GroupStorage::open(dir, meta_log_options(settings, segment_bytes), logger)?;
    if let Some(voters) = voters.filter(|_| storage.is_new()) {
        storage.initialize_voters(voters)?;
    }
    let node_id = settings.node_id;
    let conf_voters = &storage.conf_state().voters;
    let campaign = match voters {
        Some(_) => conf_voters.iter().min() == Some(&node_id),
        None => conf_voters[..] == [node_id],
    };
    let (state, applied) = load_snapshot(dir, &mut storage, logger)?;
    let sm = MetaSm {
        state,
        results: Vec::new(),
        me: node_id,
        dir: dir.to_path_buf(),
        trigger: SnapshotTrigger::default(),
        restored: false,
        logger: logger.clone(),
    };
    let cfg = settings.raft_config(applied);
    let mut core = RaftCore::new(META_GROUP, &cfg, storage, sm, settings.durability, logger.clone())?;
    core.set_metrics_name("__meta".to_string());
    if campaign {
        let _ = core.campaign();
    }
    Ok(core)
}

/// The newest valid snapshot in `dir`, held in the storage for followers, with the index the
/// state machine starts from; without one, an empty state from the log start. A snapshot the log
/// does not reach (a crash after the snapshot file of an install and before the log reset, or a
/// log that lost its unsynced tail) restarts the log after it, as an install does.
fn load_snapshot(dir: &Path, storage: &mut GroupStorage, logger: &Logger) -> Result<(MetaState, u64), OpenError> {
    let log_start = storage.log().first_index().saturating_sub(1);
    let skipped = |path: &Path, why: String| {
        slog::warn!(logger, "skipping a damaged __meta snapshot"; "file" => %path.display(), "error" => why);
    };
    let Some((snap, state)) = snapshot::load(dir, skipped)? else {
        if log_start > 0 {
            return Err(crate::log::LogError::Invalid(format!(
                "the __meta log starts after index {log_start} but no snapshot covers it"
            ))
            .into());
        }
        return Ok((MetaState::new(), 0));
    };
    if snap.index < log_start {
        return Err(crate::log::LogError::Invalid(format!(
            "the newest __meta snapshot ends at {} but the log starts after {log_start}",
            snap.index
        ))
        .into());
    }
    if storage.log().term(snap.index) != Some(snap.term) {
        slog::warn!(logger, "the __meta log does not reach the snapshot; restarting the log after it";
            "snapshot_index" => snap.index, "last_index" => storage.log().last_index());
        let mut meta = raft::eraftpb::SnapshotMetadata { index: snap.index, term: snap.term, ..Default::default() };
        meta.set_conf_state(storage.conf_state().clone());
        storage.apply_snapshot(&meta, 0)?;
    }
    slog::info!(logger, "loaded the __meta snapshot"; "index" => snap.index, "term" => snap.term, "bytes" => snap.data.len());
    let index = snap.index;
    storage.hold_snapshot(snap.index, snap.term, snap.data);
    Ok((state, index))
}

/// Creates the `__meta` storage of a node that joins: the configuration a member answered
/// with, as applied at `index`, so the entries it then receives change it only from there.
fn prepare_join(
    dir: &Path,
    settings: &GroupSettings,
    segment_bytes: u64,
    cs: &raft::eraftpb::ConfState,
    index: u64,
    logger: &Logger,
) -> Result<(), OpenError> {
    let (mut storage, _) = GroupStorage::open(dir, meta_log_options(settings, segment_bytes), logger)?;
    if storage.is_new() {
        storage.initialize_conf(cs, index)?;
        slog::info!(logger, "joining __meta"; "conf" => ?cs, "conf_index" => index);
    }
    Ok(())
}

fn meta_log_options(settings: &GroupSettings, segment_bytes: u64) -> LogOptions {
    LogOptions { segment_bytes, index_interval_bytes: settings.index_interval_bytes, kind: LogKind::Opaque }
}

impl Group for MetaActor {
    type Sm = MetaSm;

    fn shell(&mut self) -> &mut GroupShell {
        &mut self.shell
    }

    fn raft(&mut self) -> &mut RaftCore<MetaSm> {
        &mut self.core
    }

    fn after_round(&mut self, role: Option<RoleInfo>, applied: Option<u64>) {
        if let Some(role) = role {
            slog::info!(self.logger, "__meta role"; "role" => ?role.role, "leader" => role.leader, "term" => role.term);
            self.leader.store(role.leader, std::sync::atomic::Ordering::Relaxed);
        }
        if applied.is_some() || std::mem::take(&mut self.core.sm_mut().restored) {
            self.finish_applied();
        }
        if applied.is_some() {
            self.maybe_snapshot();
        }
    }

    fn on_failure(&mut self, reason: &crate::raft::disk_error::DiskError) {
        self.fail_waiting(MetaError::Storage(reason.clone()));
    }

    /// Reopens `__meta` from disk after the writer drained: cut back to the durable index, a new
    /// state machine replays the log (the image is published again as it applies).
    fn reopen(&mut self, cut_after: Option<u64>) -> Result<(), OpenError> {
        let opts = meta_log_options(&self.settings, self.segment_bytes);
        shell::prepare_reopen(&self.dir, opts, cut_after, META_GROUP, &self.logger)?;
        self.core = open_core(&self.dir, None, &self.settings, self.segment_bytes, &self.logger)?;
        Ok(())
    }
}
