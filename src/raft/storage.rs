//! [`GroupStorage`]: raft-rs `Storage` over a [`PartitionLog`] plus the group's persisted raft
//! state (HardState + ConfState).
//!
//! Files beside the segments (both `crate::log::state_file`s: `magic | body | crc32c`):
//! * `raft-state` — magic `CRS1`, body `hs_len u32 | HardState (protobuf) | ConfState (protobuf)`;
//!   the ConfState bytes end with field 100 (a varint), the index of the entry that made the
//!   conf state (its *conf index*), when it is not 0; older files have none (0), older readers
//!   skip it as an unknown field. Conf change entries at or below it are already in the state and
//!   are not applied again when the log replays (`raft::core`).
//!   Replaced atomically and durably (tmp + fsync + rename + dir fsync) whenever term, vote or the
//!   conf state change.
//! * `raft-vote` — term and vote, the part of the HardState that must be durable before a vote
//!   or an append is acknowledged. Two 32-byte slots (`magic CRV1 | seq u64 | term u64 | vote u64`
//!   and a crc32c), written alternately in place and NOT fsynced here: the slot write is queued
//!   behind the log's writes (see `log/write.rs`), and the caller takes the file with
//!   [`GroupStorage::take_dirty_state`] and has the disk writer fsync it with the entries before
//!   any message that depends on it leaves. On open the valid slot with the higher
//!   sequence wins, so a torn write leaves the previous (never acted upon) state.
//! * `raft-commit` — magic `CRC1`, body `commit u64`; overwritten in place (a queued write) and
//!   never fsynced:
//!   commit-only updates are cheap, and losing or tearing one only makes the commit index go back
//!   to an older (still correct) value. On open the larger valid commit wins.
//!
//! The snapshot of a partition carries no state machine. raft-rs sees the log from its raft start
//! (`PartitionLog::raft_first_index`, see `log/raft_start.rs`): below it, entries are compacted
//! for raft even when the segments still hold them for Kafka reads. The snapshot's data is a
//! `log::snapshot_descriptor::SnapshotDescriptor`: when the log holds data below its raft start
//! (a compacted topic), the snapshot is taken at the raft start and names the segment files that
//! hold that data (a manifest built from memory), which the follower pulls in chunks and installs
//! ([`GroupStorage::stage_prepared`], [`GroupStorage::install_prepared`]); otherwise it is only
//! where the log restarts — the Kafka offset that follows the snapshot index (8 big-endian
//! bytes, what `raft::core` passes to `PartitionLog::reset_to`) and, when the DeleteRecords floor
//! lies past that offset, the floor (8 more bytes). An `Opaque` log (`__meta`) is compacted only
//! below a state-machine snapshot its owner took or installed and handed over with
//! [`GroupStorage::hold_snapshot`]; that one is what raft-rs sends (data: the encoded state).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, Storage, StorageError};
use slog::{warn, Logger};

use crate::log::file_cache::Opening;
use crate::log::snapshot_descriptor::SnapshotDescriptor;
use crate::log::snapshot_install::PreparedSnapshot;
use crate::log::write::{DiskFile, WriteOp};
use crate::log::{state_file, LogError, LogKind, LogOptions, OnDamage, PartitionLog, RecoveryReport};

pub const STATE_FILE: &str = "raft-state";
const VOTE_FILE: &str = "raft-vote";
const VOTE_MAGIC: &[u8; 4] = b"CRV1";
const VOTE_SLOT: u64 = 32;
const COMMIT_FILE: &str = "raft-commit";
const STATE_MAGIC: &[u8; 4] = b"CRS1";
const COMMIT_MAGIC: &[u8; 4] = b"CRC1";

/// The raft storage of one group: its log and its persisted raft state.
#[derive(Debug)]
pub struct GroupStorage {
    log: PartitionLog,
    state: RaftState,
    /// The hard state as last written durably.
    durable: HardState,
    state_path: PathBuf,
    commit_path: PathBuf,
    commit_file: Option<Arc<DiskFile>>,
    vote_file: Arc<DiskFile>,
    /// Sequence number of the last vote slot written.
    vote_seq: u64,
    /// The vote file has writes that are not fsynced yet.
    vote_dirty: bool,
    is_new: bool,
    /// The index of the entry that made the conf state (0: the initial one).
    conf_index: u64,
    /// The state-machine snapshot of an `Opaque` log: (index, term, data).
    held: Option<(u64, u64, Bytes)>,
    /// A received snapshot's segments, checked and indexed, waiting for raft-rs to hand the
    /// snapshot back in a Ready.
    prepared: Option<PreparedSnapshot>,
    logger: Logger,
}

fn encode_vote(seq: u64, term: u64, vote: u64) -> [u8; VOTE_SLOT as usize] {
    let mut b = [0u8; VOTE_SLOT as usize];
    b[..4].copy_from_slice(VOTE_MAGIC);
    b[4..12].copy_from_slice(&seq.to_be_bytes());
    b[12..20].copy_from_slice(&term.to_be_bytes());
    b[20..28].copy_from_slice(&vote.to_be_bytes());
    let crc = crc32c::crc32c(&b[..28]);
    b[28..].copy_from_slice(&crc.to_be_bytes());
    b
}

/// The valid slot with the highest sequence: (seq, term, vote).
fn read_vote(f: &DiskFile) -> Option<(u64, u64, u64)> {
    let mut best: Option<(u64, u64, u64)> = None;
    for slot in 0..2u64 {
        let mut b = [0u8; VOTE_SLOT as usize];
        if f.read_exact_at(&mut b, slot * VOTE_SLOT).is_err() || &b[..4] != VOTE_MAGIC {
            continue;
        }
        if crc32c::crc32c(&b[..28]).to_be_bytes() != b[28..32] {
            continue;
        }
        let n = |r: std::ops::Range<usize>| u64::from_be_bytes(b[r].try_into().expect("8 bytes"));
        let v = (n(4..12), n(12..20), n(20..28));
        if best.is_none_or(|x| v.0 > x.0) {
            best = Some(v);
        }
    }
    best
}

/// The ConfState field that carries the conf index (see the module docs).
const CONF_INDEX_FIELD: u32 = 100;

fn encode_state(hs: &HardState, cs: &ConfState, conf_index: u64) -> Vec<u8> {
    let hs = hs.write_to_bytes().unwrap_or_default();
    let mut cs = cs.write_to_bytes().unwrap_or_default();
    if conf_index > 0 {
        let mut out = protobuf::CodedOutputStream::vec(&mut cs);
        let _ = out.write_uint64(CONF_INDEX_FIELD, conf_index);
        let _ = out.flush();
    }
    let mut b = Vec::with_capacity(4 + hs.len() + cs.len());
    b.extend_from_slice(&(hs.len() as u32).to_be_bytes());
    b.extend_from_slice(&hs);
    b.extend_from_slice(&cs);
    b
}

fn decode_state(path: &Path, b: &[u8]) -> Result<(RaftState, u64), LogError> {
    let corrupt = |reason: String| LogError::CorruptState { path: path.to_path_buf(), reason };
    let hs_end = b
        .get(..4)
        .map(|l| 4 + u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize)
        .filter(|&end| end <= b.len())
        .ok_or_else(|| corrupt("lengths do not add up".into()))?;
    let hs = HardState::parse_from_bytes(&b[4..hs_end]).map_err(|e| corrupt(format!("hard state: {e}")))?;
    let mut cs = ConfState::parse_from_bytes(&b[hs_end..]).map_err(|e| corrupt(format!("conf state: {e}")))?;
    let conf_index = cs.get_unknown_fields().get(CONF_INDEX_FIELD).and_then(|v| v.varint.last().copied()).unwrap_or(0);
    *cs.mut_unknown_fields() = Default::default();
    Ok((RaftState::new(hs, cs), conf_index))
}

/// The commit stored in `raft-commit`, if the file exists and is intact.
fn read_commit(path: &Path) -> Option<u64> {
    let b = state_file::read(path, COMMIT_MAGIC).ok()??;
    Some(u64::from_be_bytes(b.try_into().ok()?))
}

fn to_raft(e: LogError) -> raft::Error {
    match e {
        LogError::Compacted { .. } => raft::Error::Store(StorageError::Compacted),
        LogError::Unavailable { .. } => raft::Error::Store(StorageError::Unavailable),
        e => raft::Error::Store(StorageError::Other(Box::new(e))),
    }
}

impl GroupStorage {
    /// Opens the log in `dir` and the raft state beside it. A persisted commit beyond the log
    /// (torn tail) or before its start is clamped into `[first_index - 1, last_index]`.
    pub fn open(dir: &Path, opts: LogOptions, logger: &Logger) -> Result<(Self, RecoveryReport), LogError> {
        std::fs::create_dir_all(dir).map_err(|e| LogError::io(dir, e))?;
        let state_path = dir.join(STATE_FILE);
        let commit_path = dir.join(COMMIT_FILE);
        let ((mut state, conf_index), is_new) = match state_file::read(&state_path, STATE_MAGIC)? {
            Some(b) => (decode_state(&state_path, &b)?, false),
            None => ((RaftState::default(), 0), true),
        };
        let vote_path = dir.join(VOTE_FILE);
        let existed = vote_path.exists();
        // Managed handles (`log/file_cache.rs`): an idle group's state files do not hold
        // descriptors; the vote file keeps its own while a write to it is not fsynced.
        let vote_file = DiskFile::managed(&vote_path, Opening::Create, true)?;
        if !existed && !crate::log::syncs_deferred() {
            // The file must exist durably before in-place writes to it can be trusted (a batch
            // of new groups makes it durable with the batch: `partition::create`).
            vote_file.sync_all().map_err(|e| LogError::io(&vote_path, e))?;
            crate::log::sync_dir(dir)?;
        }
        let mut vote_seq = 0;
        if let Some((seq, term, vote)) = read_vote(&vote_file) {
            vote_seq = seq;
            let hs = &mut state.hard_state;
            if term > hs.term || (term == hs.term && vote != 0) {
                hs.term = term;
                hs.vote = vote;
            }
        }
        let durable = state.hard_state.clone();
        let hs = &mut state.hard_state;
        if let Some(c) = read_commit(&commit_path) {
            hs.commit = hs.commit.max(c);
        }
        // The commit tells a damaged committed frame from a torn tail (see PartitionLog).
        let (log, report) = PartitionLog::open_committed(dir, opts, hs.commit, logger)?;
        let logger = logger.new(slog::o!("group_dir" => dir.display().to_string()));
        let (lo, hi) = (log.raft_first_index() - 1, log.last_index());
        if hs.commit > hi {
            warn!(logger, "persisted commit is beyond the log, clamping";
                "commit" => hs.commit, "last_index" => hi);
            hs.commit = hi;
        } else if hs.commit < lo {
            warn!(logger, "persisted commit is before the log start, raising";
                "commit" => hs.commit, "first_index" => lo + 1);
            hs.commit = lo;
        }
        let s = GroupStorage {
            log,
            state,
            durable,
            state_path,
            commit_path,
            commit_file: None,
            vote_file,
            vote_seq,
            vote_dirty: false,
            is_new,
            conf_index,
            held: None,
            prepared: None,
            logger,
        };
        Ok((s, report))
    }

    /// No raft state has been persisted yet.
    pub fn is_new(&self) -> bool {
        self.is_new
    }

    /// Sets and persists the conf state of a new group.
    pub fn initialize_voters(&mut self, voters: &[u64]) -> Result<(), LogError> {
        if !self.is_new || self.state.initialized() {
            return Err(LogError::Invalid("group storage is already initialized".into()));
        }
        let cs = ConfState { voters: voters.to_vec(), ..Default::default() };
        self.set_conf_state(&cs)
    }

    fn write_state(&mut self) -> Result<(), LogError> {
        let body = encode_state(&self.state.hard_state, &self.state.conf_state, self.conf_index);
        state_file::store(&self.state_path, STATE_MAGIC, &body)?;
        self.durable = self.state.hard_state.clone();
        self.is_new = false;
        Ok(())
    }

    /// Stores the hard state. A changed term or vote goes to the next `raft-vote` slot, in place
    /// and without fsync: the caller must fsync [`GroupStorage::take_dirty_state`] before it
    /// acts on it. `durable` forces that write even when term and vote are unchanged. The commit
    /// alone is written in place and never fsynced.
    pub fn set_hard_state(&mut self, hs: &HardState, durable: bool) -> Result<(), LogError> {
        self.state.hard_state = hs.clone();
        if durable || hs.term != self.durable.term || hs.vote != self.durable.vote {
            self.vote_seq += 1;
            let slot = (self.vote_seq % 2) * VOTE_SLOT;
            let b = encode_vote(self.vote_seq, hs.term, hs.vote);
            let op = WriteOp::Write { to: self.vote_file.clone(), pos: slot, bufs: vec![Bytes::copy_from_slice(&b)] };
            self.log.queue_op(op)?;
            self.vote_dirty = true;
            self.durable.term = hs.term;
            self.durable.vote = hs.vote;
        }
        let b = state_file::encode(COMMIT_MAGIC, &hs.commit.to_be_bytes());
        if self.commit_file.is_none() {
            self.commit_file = Some(DiskFile::managed(&self.commit_path, Opening::Create, false)?);
        }
        if let Some(f) = &self.commit_file {
            let op = WriteOp::Write { to: f.clone(), pos: 0, bufs: vec![Bytes::from(b)] };
            self.log.queue_op(op)?;
        }
        Ok(())
    }

    /// Stores the conf state, durably.
    /// True when term or vote were written and not fsynced yet.
    pub fn has_dirty_state(&self) -> bool {
        self.vote_dirty
    }

    /// The vote file's handle if it has unsynced writes (clearing the flag), for the writer.
    pub fn take_dirty_state(&mut self) -> Option<Arc<DiskFile>> {
        if !self.vote_dirty {
            return None;
        }
        self.vote_dirty = false;
        Some(self.vote_file.clone())
    }

    pub fn set_conf_state(&mut self, cs: &ConfState) -> Result<(), LogError> {
        self.state.conf_state = cs.clone();
        self.write_state()
    }

    /// Persists `cs`, made by the conf change entry at `index`.
    pub fn set_conf_state_at(&mut self, cs: &ConfState, index: u64) -> Result<(), LogError> {
        self.conf_index = self.conf_index.max(index);
        self.set_conf_state(cs)
    }

    /// The index of the entry that made the conf state (0: the initial one).
    pub fn conf_index(&self) -> u64 {
        self.conf_index
    }

    /// Sets and persists the conf state of a new replica that joins an existing group: `cs` as the
    /// group's leader applied it at `index` (every conf change up to it is in `cs`).
    pub fn initialize_conf(&mut self, cs: &ConfState, index: u64) -> Result<(), LogError> {
        if !self.is_new || self.state.initialized() {
            return Err(LogError::Invalid("group storage is already initialized".into()));
        }
        self.set_conf_state_at(cs, index)
    }

    /// Installs a snapshot received from the leader: the log restarts after `meta.index`, with
    /// `next_offset` as its Kafka log start offset; conf state and commit follow the snapshot.
    pub fn apply_snapshot(&mut self, meta: &SnapshotMetadata, next_offset: i64) -> Result<(), LogError> {
        if meta.index < self.log.raft_first_index() {
            return Err(LogError::Compacted { index: meta.index, first_index: self.log.raft_first_index() });
        }
        self.log.reset_to(meta.index, meta.term, next_offset)?;
        self.snapshot_installed(meta)
    }

    /// Keeps a received snapshot's prepared segments until raft-rs hands the snapshot back
    /// (replacing, and removing the staging directory of, one kept before).
    pub fn stage_prepared(&mut self, p: PreparedSnapshot) {
        if let Some(old) = self.prepared.take() {
            if old.staging != p.staging {
                let _ = std::fs::remove_dir_all(&old.staging);
            }
        }
        self.prepared = Some(p);
    }

    /// The prepared segments of the snapshot at `index`, if they are kept.
    pub fn take_prepared(&mut self, index: u64) -> Option<PreparedSnapshot> {
        match self.prepared.take() {
            Some(p) if p.index == index => Some(p),
            other => {
                self.prepared = other;
                None
            }
        }
    }

    /// Installs a snapshot whose segments were received and prepared: they replace the log
    /// (see `log::snapshot_install`), raft restarts after `meta.index`; conf state and commit
    /// follow the snapshot.
    pub fn install_prepared(&mut self, meta: &SnapshotMetadata, p: &PreparedSnapshot) -> Result<(), LogError> {
        if meta.index < self.log.raft_first_index() || (p.index, p.term) != (meta.index, meta.term) {
            return Err(LogError::Invalid(format!(
                "prepared snapshot {}/{} does not match {}/{} or is behind the log",
                p.index, p.term, meta.index, meta.term
            )));
        }
        self.log.install_snapshot(p)?;
        self.snapshot_installed(meta)
    }

    fn snapshot_installed(&mut self, meta: &SnapshotMetadata) -> Result<(), LogError> {
        let hs = &mut self.state.hard_state;
        hs.term = hs.term.max(meta.term);
        hs.commit = hs.commit.max(meta.index);
        self.state.conf_state = meta.get_conf_state().clone();
        self.conf_index = self.conf_index.max(meta.index);
        self.write_state()
    }

    /// Keeps the state-machine snapshot at `index` (not older than one already held) for
    /// followers behind the log start; the log may then be compacted up to `index`.
    pub fn hold_snapshot(&mut self, index: u64, term: u64, data: Bytes) {
        if self.held.as_ref().is_none_or(|h| h.0 < index) {
            self.held = Some((index, term, data));
        }
        let hs = &mut self.state.hard_state;
        hs.commit = hs.commit.max(index.min(self.log.last_index()));
    }

    /// The index of the held state-machine snapshot.
    pub fn held_snapshot_index(&self) -> Option<u64> {
        self.held.as_ref().map(|h| h.0)
    }

    pub fn hard_state(&self) -> &HardState {
        &self.state.hard_state
    }

    pub fn conf_state(&self) -> &ConfState {
        &self.state.conf_state
    }

    pub fn log(&self) -> &PartitionLog {
        &self.log
    }

    pub fn log_mut(&mut self) -> &mut PartitionLog {
        &mut self.log
    }
}

impl Storage for GroupStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(self.state.clone())
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        // A damaged entry (a frame failing its CRC) is never handed to a follower: replication
        // sends the entries before it and then waits. Everything else raft reads for itself
        // (committed entries to apply, pending conf changes) gets a placeholder in its place, so
        // that raft-rs, which panics on any other storage error there, goes on.
        let policy = if context.can_async() { OnDamage::Stop } else { OnDamage::Placeholder };
        let first = self.log.raft_first_index();
        if low < first {
            return Err(to_raft(LogError::Compacted { index: low, first_index: first }));
        }
        match self.log.entries_with(low, high, max_size.into(), policy) {
            Ok(ents) if ents.is_empty() && low < high => {
                Err(raft::Error::Store(StorageError::LogTemporarilyUnavailable))
            }
            other => other.map_err(to_raft),
        }
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        if idx.saturating_add(1) < self.log.raft_first_index() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        match self.log.term(idx) {
            Some(t) => Ok(t),
            None if idx < self.log.first_index() => Err(raft::Error::Store(StorageError::Compacted)),
            None => Err(raft::Error::Store(StorageError::Unavailable)),
        }
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.log.raft_first_index())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.log.last_index())
    }

    /// A snapshot at the raft start (`first_index - 1`), or at `request_index` when that is later
    /// and still in the log. Temporarily unavailable when the index would be 0 (raft rejects
    /// empty snapshots), `request_index` is beyond the log, or the segments below the raft start
    /// cannot be named (not all written or a damaged entry: raft-rs asks again later). Built from
    /// memory only: this runs on the group actor.
    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        if let Some((index, term, data)) = self.held.as_ref().filter(|h| h.0 >= request_index) {
            let mut snap = Snapshot::default();
            let meta = snap.mut_metadata();
            meta.index = *index;
            meta.term = *term;
            meta.set_conf_state(self.state.conf_state.clone());
            snap.data = data.clone();
            return Ok(snap);
        }
        let raft_first = self.log.raft_first_index();
        let index = (raft_first - 1).max(request_index);
        let term = match self.log.term(index) {
            Some(t) if index > 0 => t,
            _ => {
                warn!(self.logger, "no snapshot available"; "request_index" => request_index);
                return Err(raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable));
            }
        };
        let mut snap = Snapshot::default();
        let meta = snap.mut_metadata();
        meta.index = index;
        meta.term = term;
        meta.set_conf_state(self.state.conf_state.clone());
        if self.log.kind() == LogKind::KafkaBatches {
            // A DeleteRecords floor past the snapshot travels with it.
            let mut desc = SnapshotDescriptor::legacy(self.log.offset_after_index(index), self.log.records_start());
            if raft_first > self.log.first_index() && index + 1 == raft_first {
                let Some(files) = self.log.snapshot_manifest(index) else {
                    warn!(self.logger, "the segments below the raft start cannot be sent yet"; "index" => index);
                    return Err(raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable));
                };
                let (start_index, prev_term, start_offset) = self.log.data_start();
                desc.files = files;
                desc.start_index = start_index;
                desc.prev_term = prev_term;
                desc.start_offset = start_offset;
                desc.log_start_offset = self.log.log_start_offset();
            }
            snap.data = desc.encode().into();
        }
        Ok(snap)
    }
}

#[cfg(test)]
#[path = "storage_tests.rs"]
mod tests;
