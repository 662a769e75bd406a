//! The Ready loop of one Raft group, written once for every kind of group and free of actix.
//!
//! [`RaftCore`] owns a raft-rs `RawNode` over a [`GroupStorage`] and a [`StateMachine`], both
//! private: callers use intent methods (tick, step, propose, campaign, repair an entry, status,
//! `has_ready`, the state machine through `sm`/`sm_mut`). The group shell (`raft/shell.rs`,
//! embedded in the partition and metadata actors) calls [`RaftCore::handle_ready`] and carries
//! out the returned [`ReadyOutcome`]: send `messages` now, hand `write` to the disk writer (which
//! sends the job's held appends itself once written, and its persisted messages once done), and
//! when the writer answers, call [`RaftCore::on_synced`].
//!
//! # The Ready contract (raft-rs `RawNode`), as implemented here
//! 1. `ready()` is taken only when `has_ready()`.
//! 2. Messages of the Ready (`messages`) go out at once: a leader may replicate before its own
//!    append is durable (Raft thesis 10.2.1). Only a leader's appends that carry entries wait
//!    until the disk writer has *written* this Ready (page cache, before its fsync; the writer
//!    thread sends them itself, [`WriteJob::held`]): a leader never replicates an entry its own
//!    disk refused (a full disk), so a client told KAFKA_STORAGE_ERROR never finds its batch committed by the next
//!    leader. Heartbeats, votes and everything else never wait for the disk.
//! 3. A snapshot is installed (a state machine whose snapshot carries its state persists it
//!    first, see [`StateMachine::install`]; a partition snapshot that names segment files
//!    installs the segments its receiver already pulled, checked and indexed off this actor —
//!    renames only, see `log::snapshot_install`; the log restarts after it), then the writes of the new entries and of the HardState are
//!    *queued* (the entry table and the hard state change in memory at once; a changed term or
//!    vote is made durable before anything depending on it happens). Nothing is written here.
//! 4. Committed entries are applied in order, here, on the group's one actor, and
//!    `advance_apply_to` records the applied index. raft-rs only hands out entries up to
//!    min(committed, persisted), and reads entries it has not seen persisted from its own
//!    `unstable` log, so the state machine never needs an entry that is not written yet; other
//!    readers (Fetch, a new leader's view) get unwritten entries from the log's memory.
//! 5. Every Ready that queued writes (or follows one not yet answered) goes through
//!    `advance_append_async` and becomes a [`WriteJob`]. The disk writer writes it and, for
//!    [`Durability::Fsync`], fsyncs (grouped with other groups' fsyncs); with
//!    [`Durability::PageCache`] the write alone counts. Only once the job is done are the
//!    `persisted_messages` (votes, append responses; [`WriteJob::persisted`]) sent, by the
//!    writer's side itself, so a follower's acknowledgement leaves without a hop back through
//!    its group's actor; jobs are done in order, so they leave in order. The answer then
//!    reaches the group, which calls `on_persist_ready` ([`RaftCore::on_synced`]): that lets
//!    the leader count its own copy toward the commit quorum, and releases the entries kept in
//!    memory. A job that failed sends nothing. The one exception: heartbeat responses go out at
//!    once (they carry no log position or vote). A Ready with nothing to write, and none before it
//!    unanswered, is advanced at once (`advance_append`).
//!
//! With the `interval` fsync policy (page cache), a timer fsyncs the written files later; that
//! trades durability of the last interval for latency, as Kafka's default does. A changed term
//! or vote is fsynced with its job under either policy.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use raft::eraftpb::{ConfChange, ConfChangeV2, Entry, EntryType, HardState, Message, MessageType};
use raft::{RawNode, StateRole};
use slog::Logger;

use crate::log::snapshot_descriptor::SnapshotDescriptor;
use crate::log::LogError;
use crate::raft::storage::GroupStorage;
pub use crate::raft::write_job::WriteJob;

#[path = "core_quiet.rs"]
mod quiet;
#[path = "core_resign.rs"]
pub mod resign;
#[cfg(test)]
#[path = "core_test_support.rs"]
pub(crate) mod test_support;
use crate::raft::writer::WriteRequest;
use crate::raft::GroupId;

/// What a group does with its committed entries.
pub trait StateMachine {
    /// Applies one committed entry that carries data (not a leader no-op, not a conf change).
    fn apply(&mut self, entry: &Entry);

    /// The log was replaced by a snapshot ending at `index`; for a partition, the next Kafka
    /// offset is `next_offset`. The default keeps the state (for logs that are never compacted).
    fn restore(&mut self, _index: u64, _next_offset: i64) {}

    /// A snapshot from the leader is about to replace the log. A state machine whose snapshots
    /// carry its state (`__meta`) takes it over here and makes it durable *before* the log
    /// restarts after it, so a crash in between finds the snapshot and replays from it
    /// (persist before advance). An error leaves log and state unchanged.
    fn install(&mut self, _snapshot: &raft::eraftpb::Snapshot) -> Result<(), LogError> {
        Ok(())
    }

    /// After [`StateMachine::restore`]: state derived from the installed segments while they
    /// were checked (see `PreparedSnapshot::state`). The default drops it.
    fn restore_state(&mut self, _state: Box<dyn std::any::Any + Send>) {}
}

/// Role information, published when it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleInfo {
    pub role: StateRole,
    pub leader: u64,
    pub term: u64,
}

/// What the shell must do after one round of Ready handling.
#[derive(Default)]
pub struct ReadyOutcome {
    /// Raft messages to hand to the transport now.
    pub messages: Vec<Message>,
    /// Writes for the disk writer; when done, call `on_synced(job.number)`.
    pub write: Option<WriteJob>,
    /// Set when the role, leader or term changed.
    pub role: Option<RoleInfo>,
    /// The highest index applied in this round, if any entry was applied.
    pub applied: Option<u64>,
}

/// A group's Raft progress, for `cluster status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GroupStatus {
    pub group: GroupId,
    pub role: String,
    pub leader: u64,
    pub term: u64,
    pub commit: u64,
    pub applied: u64,
    pub last_index: u64,
    /// Match index of each replica, as the leader sees it (empty on followers).
    #[serde(rename = "match")]
    pub match_index: std::collections::BTreeMap<u64, u64>,
    /// The group's voters and learners (its applied configuration).
    #[serde(default)]
    pub voters: Vec<u64>,
    #[serde(default)]
    pub learners: Vec<u64>,
    /// The outgoing voters while the configuration is joint (empty otherwise).
    #[serde(default)]
    pub voters_outgoing: Vec<u64>,
}

/// Whether appends wait for fsync before they count as persisted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Persisted means fsynced (the default).
    Fsync,
    /// Persisted means written to the page cache; a timer fsyncs.
    PageCache,
}

/// One Raft group: `RawNode` + state machine + the persisted-message backlog.
pub struct RaftCore<M: StateMachine> {
    node: RawNode<GroupStorage>,
    sm: M,
    group: GroupId,
    durability: Durability,
    /// Ready number and write sequence of the log writes of each job not yet answered.
    pending_persisted: std::collections::VecDeque<(u64, u64)>,
    /// Shared with every job: set when a write failed (see `raft::writer`).
    poison: Arc<AtomicBool>,
    last_role: Option<RoleInfo>,
    applied: u64,
    /// A new leader waits for its next tick to bring its heartbeats in phase.
    align_pending: bool,
    /// Ticks each follower has spent waiting for a snapshot (leader only).
    snapshot_wait: std::collections::HashMap<u64, usize>,
    /// The name the group's figures are published under (`__meta`, `topic/partition`).
    metrics_name: Option<String>,
    logger: Logger,
}

impl<M: StateMachine> RaftCore<M> {
    /// Publishes this group's role, term and election counts under `name`.
    pub fn set_metrics_name(&mut self, name: String) {
        self.metrics_name = Some(name);
    }

    /// Builds the core. `applied` is where the state machine starts: the core re-applies every
    /// committed entry after it, so a state machine rebuilt at start sees the whole retained log.
    pub fn new(
        group: GroupId,
        cfg: &raft::Config,
        storage: GroupStorage,
        sm: M,
        durability: Durability,
        logger: Logger,
    ) -> raft::Result<Self> {
        let applied = cfg.applied;
        let mut storage = storage;
        // From now on the log's writes are queued for the disk writer (see `handle_ready`).
        storage.log_mut().set_deferred(true).map_err(|e| raft::Error::Store(raft::StorageError::Other(Box::new(e))))?;
        // raft-rs's start-up and vote-counting lines, times thousands of groups, would flood the
        // log: partition groups get a filtered logger (`raft::quiet_log`), `__meta` all lines.
        let raft_logger = if group == crate::raft::META_GROUP {
            logger.clone()
        } else {
            crate::raft::quiet_log::for_partition(&logger)
        };
        let node = RawNode::new(cfg, storage, &raft_logger)?;
        Ok(RaftCore {
            node,
            sm,
            group,
            durability,
            pending_persisted: Default::default(),
            poison: Arc::new(AtomicBool::new(false)),
            last_role: None,
            applied,
            align_pending: false,
            snapshot_wait: Default::default(),
            metrics_name: None,
            logger,
        })
    }

    /// The state machine.
    pub fn sm(&self) -> &M {
        &self.sm
    }

    /// Raises the log's DeleteRecords floor (`log/records_start.rs`); true when it moved.
    pub fn set_records_start(&mut self, offset: i64) -> Result<bool, LogError> {
        self.node.mut_store().log_mut().set_records_start(offset)
    }

    /// The state machine, to change what it keeps beside the log (never the applied state's
    /// order: entries reach it only through the Ready loop).
    pub fn sm_mut(&mut self) -> &mut M {
        &mut self.sm
    }

    /// This node's id.
    pub fn id(&self) -> u64 {
        self.node.raft.id
    }

    /// True when raft-rs has a Ready to handle.
    pub fn has_ready(&self) -> bool {
        self.node.has_ready()
    }

    /// Starts an election (a pre-vote first when PreVote is on).
    pub fn campaign(&mut self) -> raft::Result<()> {
        self.node.campaign()
    }

    /// Asks for the leadership to move to `to` (a Raft leader transfer): on the leader it starts
    /// the transfer; on a follower raft-rs forwards the request to the known leader (dropped
    /// while no leader is known). The leader aborts a transfer that takes an election timeout.
    pub fn transfer_leader(&mut self, to: u64) {
        self.node.transfer_leader(to);
    }

    /// The group's configuration as raft-rs holds it now (applied conf changes).
    pub fn conf_state(&self) -> raft::eraftpb::ConfState {
        self.node.raft.prs().conf().to_conf_state()
    }

    /// What the membership planner needs (`raft::membership`): each replica's matched index, and
    /// whether a conf change is proposed and not applied yet.
    pub fn progress(&self) -> (std::collections::BTreeMap<u64, u64>, bool) {
        let r = &self.node.raft;
        (r.prs().iter().map(|(id, p)| (*id, p.matched)).collect(), r.pending_conf_index > r.raft_log.applied)
    }

    /// Proposes a membership change (leader only; one at a time, see `raft::membership`).
    pub fn propose_conf_change(&mut self, cc: ConfChangeV2) -> raft::Result<()> {
        self.node.propose_conf_change(Vec::new(), cc)
    }

    /// The connection to `id` dropped: raft-rs probes it again instead of leaving it paused.
    pub fn report_unreachable(&mut self, id: u64) {
        self.node.report_unreachable(id);
    }

    /// Writes `entry`, a copy from a peer, over this node's damaged frame of the same index and
    /// term (see `PartitionLog::repair`). True when it repaired something.
    pub fn repair_entry(&mut self, entry: &Entry) -> Result<bool, LogError> {
        self.node.mut_store().log_mut().repair(entry)
    }

    /// The log, for maintenance that changes files but never the raft log's (index, term)
    /// sequence: time-based rolls and installing compacted segments (`log::cleaner`).
    pub fn log_mut(&mut self) -> &mut crate::log::PartitionLog {
        self.node.mut_store().log_mut()
    }

    /// Deletes whole sealed segments by retention, never past index `applied` (what the state
    /// machine has confirmed); returns how many were deleted.
    pub fn apply_retention(
        &mut self,
        now_ms: i64,
        retention_ms: Option<i64>,
        retention_bytes: Option<u64>,
        applied: u64,
    ) -> Result<usize, LogError> {
        self.node.mut_store().log_mut().apply_retention(now_ms, retention_ms, retention_bytes, applied)
    }

    /// The applied index and its term: where a state-machine snapshot taken now ends.
    pub fn applied_point(&self) -> Option<(u64, u64)> {
        let term = self.node.raft.raft_log.term(self.applied).ok().filter(|t| *t > 0)?;
        Some((self.applied, term))
    }

    /// A state-machine snapshot ending at `index` is durable: hold it for followers behind the
    /// log start and delete the whole sealed segments it covers (raft-rs's `compact`: the log
    /// start moves, never past `index`). Returns how many segments were deleted.
    pub fn compact_to(&mut self, index: u64, term: u64, data: bytes::Bytes) -> Result<usize, LogError> {
        let applied = self.applied;
        let store = self.node.mut_store();
        if store.held_snapshot_index().is_some_and(|h| h > index) {
            return Ok(0);
        }
        store.hold_snapshot(index, term, data);
        store.log_mut().apply_retention(0, None, Some(0), index.min(applied))
    }

    /// The replicas the leader heard from within an election timeout (itself included), as
    /// raft-rs tracks them; empty when not leading.
    pub fn recently_active(&self) -> Vec<u64> {
        if !self.is_leader() {
            return Vec::new();
        }
        let me = self.id();
        let mut ids: Vec<u64> =
            self.node.raft.prs().iter().filter(|(id, pr)| **id == me || pr.recent_active).map(|(id, _)| *id).collect();
        ids.sort_unstable();
        ids
    }

    /// Messages raft-rs holds for the next Ready (tests).
    #[cfg(test)]
    pub(crate) fn queued_messages(&self) -> &[Message] {
        &self.node.raft.msgs
    }

    /// The group id.
    pub fn group(&self) -> GroupId {
        self.group
    }

    /// The index of the last applied entry.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Current role, leader and term.
    pub fn role(&self) -> RoleInfo {
        RoleInfo { role: self.node.raft.state, leader: self.node.raft.leader_id, term: self.node.raft.term }
    }

    /// True when this node leads the group.
    pub fn is_leader(&self) -> bool {
        self.node.raft.state == StateRole::Leader
    }

    /// The index of the last entry in the log (including entries not yet persisted).
    pub fn last_index(&self) -> u64 {
        self.node.raft.raft_log.last_index()
    }

    /// The commit index.
    pub fn commit_index(&self) -> u64 {
        self.node.raft.raft_log.committed
    }

    /// The group's storage.
    pub fn storage(&self) -> &GroupStorage {
        self.node.store()
    }

    /// The group's progress, for `cluster status`.
    pub fn status(&self) -> GroupStatus {
        let role = self.role();
        let match_index = if self.is_leader() {
            self.node.raft.prs().iter().map(|(id, pr)| (*id, pr.matched)).collect()
        } else {
            Default::default()
        };
        GroupStatus {
            group: self.group,
            role: format!("{:?}", role.role),
            leader: role.leader,
            term: role.term,
            commit: self.commit_index(),
            applied: self.applied,
            last_index: self.last_index(),
            match_index,
            voters: self.conf_state().voters,
            learners: self.conf_state().learners,
            voters_outgoing: self.conf_state().voters_outgoing,
        }
    }

    /// Advances the logical clock by one tick.
    pub fn tick(&mut self) -> bool {
        self.node.tick()
    }

    /// Advances the logical clock by node-wide tick `n`.
    pub fn tick_at(&mut self, n: u64) -> bool {
        let mut ready = self.node.tick();
        ready |= self.retry_lost_snapshots();
        if self.align_pending && self.is_leader() {
            self.align_pending = false;
            ready |= self.align_heartbeats(n);
        }
        ready
    }

    /// raft-rs pauses replication to a follower it sent a snapshot until the follower answers;
    /// a snapshot lost on the way (a dropped connection) would pause it for the whole term. A
    /// follower still waiting after two election timeouts is reported failed, so the snapshot
    /// is sent again.
    fn retry_lost_snapshots(&mut self) -> bool {
        if !self.is_leader() {
            self.snapshot_wait.clear();
            return false;
        }
        let limit = 2 * self.node.raft.election_timeout();
        let waiting: Vec<u64> = self
            .node
            .raft
            .prs()
            .iter()
            .filter(|(_, pr)| pr.state == raft::ProgressState::Snapshot)
            .map(|(id, _)| *id)
            .collect();
        self.snapshot_wait.retain(|id, _| waiting.contains(id));
        let mut retried = false;
        for id in waiting {
            let ticks = self.snapshot_wait.entry(id).or_default();
            *ticks += 1;
            if *ticks > limit {
                *ticks = 0;
                slog::warn!(self.logger, "no answer to a snapshot; sending it again"; "group" => self.group, "to" => id);
                self.node.report_snapshot(id, raft::SnapshotStatus::Failure);
                retried = true;
            }
        }
        retried
    }

    /// Keeps a received snapshot's prepared segments for the Ready that installs it.
    pub fn stage_snapshot(&mut self, p: crate::log::snapshot_install::PreparedSnapshot) {
        self.node.mut_store().stage_prepared(p);
    }

    /// A follower is pulling the files of the snapshot it was sent (`partition::snapshot`):
    /// it has not lost it, so its wait starts again.
    pub fn note_snapshot_progress(&mut self, follower: u64) {
        if let Some(ticks) = self.snapshot_wait.get_mut(&follower) {
            *ticks = 0;
        }
    }

    /// Moves the log's raft start (`log/raft_start.rs`) toward `target`, the end of the cleaned
    /// segments, never past the applied index nor, on a leader, past what a follower in contact
    /// still needs as entries (its match index + 1): only a replica that is down or far behind
    /// is sent a snapshot. Returns whether it moved.
    pub fn advance_raft_start(&mut self, target: u64) -> Result<bool, LogError> {
        let mut limit = target.min(self.applied + 1);
        if self.is_leader() {
            let me = self.id();
            for (id, pr) in self.node.raft.prs().iter() {
                if *id != me && pr.recent_active {
                    limit = limit.min(pr.matched + 1);
                }
            }
        }
        let log = self.node.mut_store().log_mut();
        match log.raft_start_candidate(limit) {
            Some(index) => log.set_raft_start(index),
            None => Ok(false),
        }
    }

    /// A new leader's heartbeat clock starts at zero whenever it was elected; on its next tick
    /// it is advanced so that its heartbeats fall on node-wide ticks that are multiples of the
    /// heartbeat tick, like every other leader's of this node. Then all groups' heartbeats to a
    /// peer leave on the same tick and share one frame. The extra ticks are fewer than one
    /// heartbeat interval, far below any election timeout.
    fn align_heartbeats(&mut self, n: u64) -> bool {
        let hb = self.node.raft.heartbeat_timeout() as u64;
        if hb <= 1 {
            return false;
        }
        let target = n % hb;
        let elapsed = self.node.raft.heartbeat_elapsed() as u64 % hb;
        let extra = (target + hb - elapsed) % hb;
        for _ in 0..extra {
            self.node.tick();
        }
        extra > 0
    }

    /// Steps a message from a peer into the group.
    pub fn step(&mut self, m: Message) -> raft::Result<()> {
        if m.get_msg_type() == MessageType::MsgTransferLeader && !self.transfer_wanted(m.from) {
            return Ok(());
        }
        self.node.step(m)
    }

    /// Proposes `data` and returns the (index, term) it was given in the leader's log.
    pub fn propose(&mut self, data: Vec<u8>) -> raft::Result<(u64, u64)> {
        self.node.propose(vec![], data)?;
        Ok((self.last_index(), self.node.raft.term))
    }

    /// Proposes `data` with a `context` that identifies it when applied. On a follower raft-rs
    /// forwards the proposal to the leader, so the index is not known here.
    pub fn propose_with_context(&mut self, context: Vec<u8>, data: Vec<u8>) -> raft::Result<()> {
        self.node.propose(context, data)
    }

    /// Handles one Ready, following the contract in the module docs.
    pub fn handle_ready(&mut self) -> Result<ReadyOutcome, LogError> {
        let mut out = ReadyOutcome::default();
        if !self.node.has_ready() {
            self.note_role(&mut out);
            return Ok(out);
        }
        let mut rd = self.node.ready();
        out.messages = rd.take_messages();
        let mut rewrites_from = None;

        if !rd.snapshot().is_empty() {
            let snap = rd.snapshot().clone();
            self.install_snapshot(&snap)?;
            rewrites_from = Some(snap.get_metadata().index + 1);
        }
        let entries = rd.take_entries();
        if let Some(first) = entries.first() {
            rewrites_from = Some(rewrites_from.map_or(first.index, |r: u64| r.min(first.index)));
        }
        let wrote_entries = !entries.is_empty();
        if wrote_entries {
            self.node.mut_store().log_mut().append(&entries)?;
        }
        if let Some(hs) = rd.hs() {
            self.record_hard_state(hs.clone())?;
        }
        self.apply_entries(rd.take_committed_entries(), &mut out)?;
        let (heartbeat_responses, persisted): (Vec<_>, Vec<_>) = rd
            .take_persisted_messages()
            .into_iter()
            .partition(|m| m.get_msg_type() == MessageType::MsgHeartbeatResponse);
        // A heartbeat response says only "I heard you" (term, no log position), so it need not
        // wait behind another group's fsync; etcd-raft sends it early for the same reason.
        out.messages.extend(heartbeat_responses);
        let number = rd.number();

        // Term and vote are made durable with the entries, whatever the fsync policy. A Ready
        // behind one still waiting for the writer waits too: `advance_append` would declare
        // every earlier Ready persisted.
        let (ops, seq) = self.node.mut_store().log_mut().take_writes();
        let snapshot = !rd.snapshot().is_empty();
        if !ops.is_empty() || snapshot || !self.pending_persisted.is_empty() {
            self.node.advance_append_async(rd);
            let store = self.node.mut_store();
            let (mut files, last_index) = if self.durability == Durability::Fsync && (wrote_entries || snapshot) {
                store.log_mut().take_dirty()
            } else {
                (Vec::new(), store.log().last_index())
            };
            files.extend(store.take_dirty_state());
            self.pending_persisted.push_back((number, seq));
            // Entries go to followers once they are in this node's page cache (contract, 2).
            let (held, now): (Vec<_>, Vec<_>) = std::mem::take(&mut out.messages)
                .into_iter()
                .partition(|m| m.get_msg_type() == MessageType::MsgAppend && !m.entries.is_empty());
            out.messages = now;
            let poison = self.poison.clone();
            out.write = Some(WriteJob {
                group: self.group,
                number,
                ops,
                files,
                held,
                persisted,
                last_index,
                rewrites_from,
                poison,
            });
        } else {
            out.messages.extend(persisted);
            let mut light = self.node.advance_append(rd);
            out.messages.extend(light.take_messages());
            self.apply_entries(light.take_committed_entries(), &mut out)?;
        }
        self.note_role(&mut out);
        Ok(out)
    }

    /// Installs a snapshot raft-rs handed out in a Ready (contract, 3).
    fn install_snapshot(&mut self, snap: &raft::eraftpb::Snapshot) -> Result<(), LogError> {
        let meta = snap.get_metadata();
        self.sm.install(snap)?;
        let next_offset = if self.node.store().log().kind() == crate::log::LogKind::Opaque {
            // `__meta`: the data is the encoded state; keep it to send on to other followers.
            self.node.mut_store().apply_snapshot(meta, 0)?;
            if !snap.data.is_empty() {
                self.node.mut_store().hold_snapshot(meta.index, meta.term, snap.data.clone());
            }
            self.sm.restore(meta.index, 0);
            0
        } else {
            let desc = SnapshotDescriptor::decode(&snap.data)
                .map_err(|e| LogError::Invalid(format!("undecodable snapshot {}: {e}", meta.index)))?;
            let store = self.node.mut_store();
            if desc.has_manifest() {
                // Only stepped once its segments are prepared (`partition::snapshot`).
                let mut p = store.take_prepared(meta.index).ok_or_else(|| {
                    LogError::Invalid(format!("the segments of snapshot {} were not prepared", meta.index))
                })?;
                store.install_prepared(meta, &p)?;
                self.sm.restore(meta.index, desc.next_offset);
                if let Some(state) = p.state.take() {
                    self.sm.restore_state(state);
                }
                crate::metrics::snapshot_installed(self.node.raft.id, desc.total_bytes());
            } else {
                store.apply_snapshot(meta, desc.next_offset)?;
                // The leader's DeleteRecords floor, when it lies past the snapshot.
                store.log_mut().set_records_start(desc.floor)?;
                self.sm.restore(meta.index, desc.next_offset);
            }
            desc.next_offset
        };
        slog::info!(self.logger, "snapshot installed"; "group" => self.group, "index" => meta.index,
            "term" => meta.term, "next_offset" => next_offset);
        self.applied = self.applied.max(meta.index);
        Ok(())
    }

    /// One round of a restart's replay, before the group's actor starts (on the blocking pool):
    /// while the group has not ticked, campaigned or stepped a message, a Ready holds nothing
    /// but committed entries (at most `max_committed_size_per_ready` bytes), which are applied
    /// here. Returns the last index applied, `None` once there is nothing left. The role is
    /// left unreported, so the actor's first round reports it.
    pub fn replay_round(&mut self) -> Result<Option<u64>, LogError> {
        if !self.node.has_ready() {
            return Ok(None);
        }
        let out = self.handle_ready()?;
        self.last_role = None;
        if out.write.is_some() || !out.messages.is_empty() {
            return Err(LogError::Invalid(format!("group {}: the replay at open met writes or messages", self.group)));
        }
        Ok(out.applied)
    }

    /// Called when the disk writer has done the job of Ready `number` (and every earlier one;
    /// their persisted messages are already sent). The shell then calls `handle_ready` again,
    /// since the leader may now commit. The entries of those jobs are read from the files from
    /// now on.
    pub fn on_synced(&mut self, number: u64) {
        let mut written = None;
        while let Some((n, _)) = self.pending_persisted.front() {
            if *n > number {
                break;
            }
            let (_, seq) = self.pending_persisted.pop_front().expect("front exists");
            written = Some(seq);
        }
        if let Some(seq) = written {
            self.node.mut_store().log_mut().written(seq);
        }
        self.node.on_persist_ready(number);
    }

    /// Marks the group's writes as failed: the writer skips every job of this core still queued.
    pub fn poison_writes(&self) {
        self.poison.store(true, Ordering::Release);
    }

    /// A job for the writer outside a Ready: what is queued, then an fsync of every dirty file
    /// (a periodic flush with `all == false`: only the `.log`s; before a stop: everything).
    pub fn flush_job(&mut self, all: bool) -> WriteRequest {
        let log = self.node.mut_store().log_mut();
        let (mut ops, _) = log.take_writes();
        let files = if all {
            ops.extend(log.sync_ops());
            Vec::new()
        } else {
            log.take_dirty().0
        };
        let done = Box::new(|_| {});
        WriteRequest { ops, files, poison: Some(self.poison.clone()), written: None, done }
    }

    fn record_hard_state(&mut self, hs: HardState) -> Result<(), LogError> {
        self.node.mut_store().set_hard_state(&hs, false)
    }

    fn apply_entries(&mut self, entries: Vec<Entry>, out: &mut ReadyOutcome) -> Result<(), LogError> {
        for entry in entries {
            let index = entry.index;
            if index <= self.applied {
                continue;
            }
            match entry.get_entry_type() {
                EntryType::EntryNormal => {
                    // Data, or a typed context without data (a partition's DeleteRecords, an entry
                    // the cleaner emptied, which still moves the state machine past its offsets).
                    if !entry.data.is_empty() || !entry.context.is_empty() {
                        self.sm.apply(&entry);
                    }
                }
                // Already in the persisted conf state raft-rs started from (a replay after a
                // restart, or a replica that joined with the leader's conf state).
                EntryType::EntryConfChange | EntryType::EntryConfChangeV2
                    if index <= self.node.store().conf_index() => {}
                EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => {
                    let cs = if entry.get_entry_type() == EntryType::EntryConfChange {
                        let mut cc = ConfChange::default();
                        protobuf::Message::merge_from_bytes(&mut cc, &entry.data)
                            .map(|_| self.node.apply_conf_change(&cc))
                    } else {
                        let mut cc = ConfChangeV2::default();
                        protobuf::Message::merge_from_bytes(&mut cc, &entry.data)
                            .map(|_| self.node.apply_conf_change(&cc))
                    };
                    match cs {
                        Ok(cs) => self.record_conf_state(cs, index)?,
                        Err(_) => {
                            slog::error!(self.logger, "undecodable conf change"; "group" => self.group, "index" => index)
                        }
                    }
                }
            }
            self.applied = index;
            out.applied = Some(index);
        }
        if let Some(a) = out.applied {
            self.node.advance_apply_to(a);
        }
        Ok(())
    }

    fn record_conf_state(&mut self, cs: raft::Result<raft::eraftpb::ConfState>, index: u64) -> Result<(), LogError> {
        match cs {
            Ok(cs) => {
                slog::info!(self.logger, "conf change applied"; "group" => self.group, "index" => index, "conf" => ?cs);
                self.node.mut_store().set_conf_state_at(&cs, index)
            }
            Err(e) => {
                slog::error!(self.logger, "conf change rejected"; "group" => self.group, "error" => %e);
                Ok(())
            }
        }
    }

    fn note_role(&mut self, out: &mut ReadyOutcome) {
        let now = self.role();
        if self.last_role == Some(now) {
            return;
        }
        let before = self.last_role.replace(now);
        out.role = Some(now);
        if now.role == StateRole::Leader && before.is_none_or(|b| b.role != StateRole::Leader) {
            self.align_pending = true;
        }
        if let Some(name) = &self.metrics_name {
            let campaigning = |r: StateRole| matches!(r, StateRole::Candidate | StateRole::PreCandidate);
            let won = now.role == StateRole::Leader && before.is_none_or(|b| b.role != StateRole::Leader);
            // An election that started and ended between two Readies still counts as started.
            let started = (campaigning(now.role) || won) && !before.is_some_and(|b| campaigning(b.role));
            let leader_changed = now.leader != 0 && before.is_none_or(|b| b.leader != now.leader);
            crate::metrics::registry().group(self.node.raft.id, name, |g| {
                g.role = format!("{:?}", now.role);
                g.term = now.term;
                g.leader = now.leader;
                g.elections_started += u64::from(started);
                g.elections_won += u64::from(won);
                g.leader_changes += u64::from(leader_changed);
            });
            if won {
                slog::info!(self.logger, "leader elected"; "group" => self.group, "name" => name.as_str(), "term" => now.term);
            }
        }
    }
}

/// Why a group could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("raft refused the stored state: {0}")]
    Raft(#[from] raft::Error),
}
