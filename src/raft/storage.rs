//! [`GroupStorage`]: raft-rs `Storage` over a [`PartitionLog`] plus the group's persisted raft
//! state (HardState + ConfState).
//!
//! Files beside the segments (both `crate::log::state_file`s: `magic | body | crc32c`):
//! * `raft-state` — magic `CRS1`, body `hs_len u32 | HardState (protobuf) | ConfState (protobuf)`.
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
//! The snapshot of a partition carries no state machine: a follower only needs to know where the
//! log restarts — the snapshot metadata (index, term, conf state) and, for a `KafkaBatches` log,
//! the Kafka offset that follows the snapshot index as 8 big-endian bytes of data (what
//! `raft::core` passes to `PartitionLog::reset_to`), then, when the log's DeleteRecords floor lies
//! past that offset, the floor as 8 more bytes. An `Opaque` log (`__meta`) is compacted only
//! below a state-machine snapshot its owner took or installed and handed over with
//! [`GroupStorage::hold_snapshot`]; that one is what raft-rs sends (data: the encoded state).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, Storage, StorageError};
use slog::{warn, Logger};

use crate::log::write::{DiskFile, WriteOp};
use crate::log::{state_file, LogError, LogKind, LogOptions, OnDamage, PartitionLog, RecoveryReport};

const STATE_FILE: &str = "raft-state";
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
    /// The state-machine snapshot of an `Opaque` log: (index, term, data).
    held: Option<(u64, u64, Bytes)>,
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
fn read_vote(f: &File) -> Option<(u64, u64, u64)> {
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

fn encode_state(hs: &HardState, cs: &ConfState) -> Vec<u8> {
    let hs = hs.write_to_bytes().unwrap_or_default();
    let cs = cs.write_to_bytes().unwrap_or_default();
    let mut b = Vec::with_capacity(4 + hs.len() + cs.len());
    b.extend_from_slice(&(hs.len() as u32).to_be_bytes());
    b.extend_from_slice(&hs);
    b.extend_from_slice(&cs);
    b
}

fn decode_state(path: &Path, b: &[u8]) -> Result<RaftState, LogError> {
    let corrupt = |reason: String| LogError::CorruptState { path: path.to_path_buf(), reason };
    let hs_end = b
        .get(..4)
        .map(|l| 4 + u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize)
        .filter(|&end| end <= b.len())
        .ok_or_else(|| corrupt("lengths do not add up".into()))?;
    let hs = HardState::parse_from_bytes(&b[4..hs_end]).map_err(|e| corrupt(format!("hard state: {e}")))?;
    let cs = ConfState::parse_from_bytes(&b[hs_end..]).map_err(|e| corrupt(format!("conf state: {e}")))?;
    Ok(RaftState::new(hs, cs))
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
        let (mut state, is_new) = match state_file::read(&state_path, STATE_MAGIC)? {
            Some(b) => (decode_state(&state_path, &b)?, false),
            None => (RaftState::default(), true),
        };
        let vote_path = dir.join(VOTE_FILE);
        let existed = vote_path.exists();
        let vote_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&vote_path)
            .map_err(|e| LogError::io(&vote_path, e))?;
        if !existed {
            // The file must exist durably before in-place writes to it can be trusted.
            vote_file.sync_all().map_err(|e| LogError::io(&vote_path, e))?;
            crate::log::sync_dir(dir)?;
        }
        let vote_file = DiskFile::new(vote_file, vote_path);
        let mut vote_seq = 0;
        if let Some((seq, term, vote)) = read_vote(&vote_file.file) {
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
        let (lo, hi) = (log.first_index() - 1, log.last_index());
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
            held: None,
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
        let body = encode_state(&self.state.hard_state, &self.state.conf_state);
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
            let f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&self.commit_path)
                .map_err(|e| LogError::io(&self.commit_path, e))?;
            self.commit_file = Some(DiskFile::new(f, self.commit_path.clone()));
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

    /// Installs a snapshot received from the leader: the log restarts after `meta.index`, with
    /// `next_offset` as its Kafka log start offset; conf state and commit follow the snapshot.
    pub fn apply_snapshot(&mut self, meta: &SnapshotMetadata, next_offset: i64) -> Result<(), LogError> {
        if meta.index < self.log.first_index() {
            return Err(LogError::Compacted { index: meta.index, first_index: self.log.first_index() });
        }
        self.log.reset_to(meta.index, meta.term, next_offset)?;
        let hs = &mut self.state.hard_state;
        hs.term = hs.term.max(meta.term);
        hs.commit = hs.commit.max(meta.index);
        self.state.conf_state = meta.get_conf_state().clone();
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
        match self.log.entries_with(low, high, max_size.into(), policy) {
            Ok(ents) if ents.is_empty() && low < high => {
                Err(raft::Error::Store(StorageError::LogTemporarilyUnavailable))
            }
            other => other.map_err(to_raft),
        }
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        match self.log.term(idx) {
            Some(t) => Ok(t),
            None if idx < self.log.first_index() => Err(raft::Error::Store(StorageError::Compacted)),
            None => Err(raft::Error::Store(StorageError::Unavailable)),
        }
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.log.first_index())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.log.last_index())
    }

    /// A snapshot at the log start (`first_index - 1`), or at `request_index` when that is later
    /// and still in the log. Temporarily unavailable only when the index would be 0 (raft
    /// rejects empty snapshots) or `request_index` is beyond the log.
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
        let index = (self.log.first_index() - 1).max(request_index);
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
            let next_offset = self.log.offset_after_index(index);
            let mut data = next_offset.to_be_bytes().to_vec();
            // A DeleteRecords floor past the snapshot travels with it (8 more bytes).
            if self.log.records_start() > next_offset {
                data.extend_from_slice(&self.log.records_start().to_be_bytes());
            }
            snap.data = data.into();
        }
        Ok(snap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::{Config, RawNode};

    fn logger() -> Logger {
        Logger::root(slog::Discard, slog::o!())
    }

    /// One entry per segment, so that retention can compact at any index like MemStorage.
    fn opts() -> LogOptions {
        LogOptions { segment_bytes: 1, index_interval_bytes: 4096, kind: LogKind::KafkaBatches }
    }

    fn new_entry(index: u64, term: u64) -> Entry {
        Entry { term, index, ..Default::default() }
    }

    fn ctx() -> GetEntriesContext {
        GetEntriesContext::empty(false)
    }

    fn size_of(e: &Entry) -> u64 {
        u64::from(e.compute_size())
    }

    #[test]
    fn term_and_vote_survive_reopen_and_a_torn_slot_falls_back() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut s, _) = GroupStorage::open(dir.path(), opts(), &logger()).unwrap();
            s.initialize_voters(&[1, 2, 3]).unwrap();
            let hs = HardState { term: 4, vote: 2, commit: 0, ..Default::default() };
            s.set_hard_state(&hs, false).unwrap();
            assert!(s.has_dirty_state());
            let f = s.take_dirty_state().expect("vote file to sync");
            f.file.sync_all().unwrap();
            assert!(!s.has_dirty_state());
            let hs = HardState { term: 5, vote: 3, commit: 0, ..Default::default() };
            s.set_hard_state(&hs, false).unwrap();
        }
        let (s, _) = GroupStorage::open(dir.path(), opts(), &logger()).unwrap();
        let hs = s.initial_state().unwrap().hard_state;
        assert_eq!((hs.term, hs.vote), (5, 3));
        drop(s);
        // Tear the newer slot (sequence 2, slot 0): the older state comes back.
        let f = OpenOptions::new().write(true).open(dir.path().join(VOTE_FILE)).unwrap();
        f.write_all_at(&[0xff; 8], 8).unwrap();
        let (s, _) = GroupStorage::open(dir.path(), opts(), &logger()).unwrap();
        let hs = s.initial_state().unwrap().hard_state;
        assert_eq!((hs.term, hs.vote), (4, 2));
    }

    fn store_err(e: StorageError) -> raft::Error {
        raft::Error::Store(e)
    }

    /// Storage holding `ents` (MemStorage's tests start at index 3: the log is reset to 2 first).
    fn storage_with(dir: &Path, ents: &[Entry]) -> GroupStorage {
        let (mut s, _) = GroupStorage::open(dir, opts(), &logger()).unwrap();
        let first = ents[0].index;
        s.log_mut().reset_to(first - 1, first - 1, 0).unwrap();
        s.log_mut().append(ents).unwrap();
        s
    }

    /// Entries `lo..hi`, entry `i` having term `i`.
    fn run(lo: u64, hi: u64) -> Vec<Entry> {
        (lo..hi).map(|i| new_entry(i, i)).collect()
    }

    fn three() -> Vec<Entry> {
        run(3, 6)
    }

    #[test]
    fn storage_term() {
        let dir = tempfile::tempdir().unwrap();
        let s = storage_with(dir.path(), &three());
        // Unlike MemStorage, the term of first_index - 1 is remembered.
        let tests = [
            (1, Err(store_err(StorageError::Compacted))),
            (2, Ok(2)),
            (3, Ok(3)),
            (4, Ok(4)),
            (5, Ok(5)),
            (6, Err(store_err(StorageError::Unavailable))),
        ];
        for (idx, want) in tests {
            assert_eq!(s.term(idx), want, "term({idx})");
        }
    }

    #[test]
    fn storage_entries() {
        let dir = tempfile::tempdir().unwrap();
        let s = storage_with(dir.path(), &run(3, 7));
        let max = u64::MAX;
        let sz = |i: u64| size_of(&new_entry(i, i));
        let tests = vec![
            (2, 6, max, Err(store_err(StorageError::Compacted))),
            (3, 4, max, Ok(run(3, 4))),
            (4, 5, max, Ok(run(4, 5))),
            (4, 6, max, Ok(run(4, 6))),
            (4, 7, max, Ok(run(4, 7))),
            // even if maxsize is zero, the first entry should be returned
            (4, 7, 0, Ok(run(4, 5))),
            (4, 7, sz(4) + sz(5), Ok(run(4, 6))),
            (4, 7, sz(4) + sz(5) + sz(6) / 2, Ok(run(4, 6))),
            (4, 7, sz(4) + sz(5) + sz(6) - 1, Ok(run(4, 6))),
            (4, 7, sz(4) + sz(5) + sz(6), Ok(run(4, 7))),
            // Beyond the log: an error instead of MemStorage's panic.
            (4, 8, max, Err(store_err(StorageError::Unavailable))),
            (4, 4, max, Ok(vec![])),
        ];
        for (i, (lo, hi, maxsize, want)) in tests.into_iter().enumerate() {
            assert_eq!(s.entries(lo, hi, maxsize, ctx()), want, "#{i}");
        }
        // None means no limit.
        assert_eq!(s.entries(3, 7, None, ctx()).unwrap(), run(3, 7));
    }

    #[test]
    fn storage_first_last_index_and_compact() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = storage_with(dir.path(), &three());
        assert_eq!((s.first_index(), s.last_index()), (Ok(3), Ok(5)));
        s.log_mut().append(&[new_entry(6, 5)]).unwrap();
        assert_eq!(s.last_index(), Ok(6));
        // MemStorage's compact(idx) is retention of every segment up to idx - 1 (one entry each).
        // (compact index, first index, its term, entries left)
        for (idx, windex, wterm, wlen) in [(2, 3, 3, 3), (3, 3, 3, 3), (4, 4, 4, 2), (5, 5, 5, 1)] {
            let dir = tempfile::tempdir().unwrap();
            let mut s = storage_with(dir.path(), &three());
            s.log_mut().apply_retention(0, None, Some(0), idx - 1).unwrap();
            let index = s.first_index().unwrap();
            assert_eq!(index, windex, "compact {idx}");
            let term = s.entries(index, index + 1, 1, ctx()).unwrap()[0].term;
            assert_eq!(term, wterm, "compact {idx}");
            let last = s.last_index().unwrap();
            assert_eq!(s.entries(index, last + 1, 100, ctx()).unwrap().len(), wlen);
        }
    }

    #[test]
    fn storage_create_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = storage_with(dir.path(), &three());
        let cs = ConfState { voters: vec![1, 2, 3], ..Default::default() };
        s.set_conf_state(&cs).unwrap();
        let snap = |s: &GroupStorage, req| {
            s.snapshot(req, 0).map(|sn| {
                let m = sn.get_metadata();
                (m.index, m.term, m.get_conf_state().voters.clone(), sn.data.to_vec())
            })
        };
        let zero = 0i64.to_be_bytes().to_vec();
        assert_eq!(snap(&s, 0), Ok((2, 2, vec![1, 2, 3], zero.clone())));
        assert_eq!(snap(&s, 4), Ok((4, 4, vec![1, 2, 3], zero.clone())));
        let unavailable = Err(store_err(StorageError::SnapshotTemporarilyUnavailable));
        assert_eq!(snap(&s, 6), unavailable);
        s.log_mut().apply_retention(0, None, Some(0), 4).unwrap();
        assert_eq!(snap(&s, 0), Ok((4, 4, vec![1, 2, 3], zero)));
        // A brand-new log has nothing to snapshot (raft rejects index 0).
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = GroupStorage::open(dir.path(), opts(), &logger()).unwrap();
        assert_eq!(snap(&s, 0), unavailable);
    }

    #[test]
    fn snapshot_data_is_the_next_offset() {
        let dir = tempfile::tempdir().unwrap();
        let o = LogOptions { segment_bytes: 300, ..opts() };
        let (mut s, _) = GroupStorage::open(dir.path(), o.clone(), &logger()).unwrap();
        s.log_mut().reset_to(9, 2, 500).unwrap();
        let b = crate::log::offsets::make_batch(500, 7, 0, 100);
        let e = Entry { index: 10, term: 2, data: b.into(), ..Default::default() };
        s.log_mut().append(&[e, new_entry(11, 2)]).unwrap();
        let data = |s: &GroupStorage, req| s.snapshot(req, 0).unwrap().data.to_vec();
        assert_eq!(data(&s, 0), 500i64.to_be_bytes());
        assert_eq!(data(&s, 10), 507i64.to_be_bytes());
        // A DeleteRecords floor past the snapshot's offset travels with it.
        s.log_mut().set_records_start(503).unwrap();
        assert_eq!(data(&s, 0), [500i64.to_be_bytes(), 503i64.to_be_bytes()].concat());
        assert_eq!(data(&s, 10), 507i64.to_be_bytes());
        // The __meta group's opaque log: no offset.
        let dir = tempfile::tempdir().unwrap();
        let opaque = LogOptions { kind: LogKind::Opaque, ..o };
        let (mut s, _) = GroupStorage::open(dir.path(), opaque, &logger()).unwrap();
        s.log_mut().append(&[new_entry(1, 1)]).unwrap();
        assert!(data(&s, 1).is_empty());
    }

    #[test]
    fn storage_append() {
        let e = |pairs: &[(u64, u64)]| -> Vec<Entry> { pairs.iter().map(|&(i, t)| new_entry(i, t)).collect() };
        let tests = vec![
            (three(), Some(three())),
            (e(&[(3, 3), (4, 6), (5, 6)]), Some(e(&[(3, 3), (4, 6), (5, 6)]))),
            (e(&[(3, 3), (4, 4), (5, 5), (6, 5)]), Some(e(&[(3, 3), (4, 4), (5, 5), (6, 5)]))),
            // overwriting compacted raft logs is an error
            (e(&[(2, 3), (3, 3), (4, 5)]), None),
            // truncate the existing entries and append
            (e(&[(4, 5)]), Some(e(&[(3, 3), (4, 5)]))),
            // direct append
            (e(&[(6, 6)]), Some(run(3, 7))),
            // a gap is an error
            (e(&[(7, 6)]), None),
        ];
        for (i, (ents, want)) in tests.into_iter().enumerate() {
            let dir = tempfile::tempdir().unwrap();
            let mut s = storage_with(dir.path(), &three());
            let res = s.log_mut().append(&ents);
            match want {
                Some(want) => {
                    res.unwrap();
                    let last = s.last_index().unwrap();
                    assert_eq!(s.entries(3, last + 1, None, ctx()).unwrap(), want, "#{i}");
                }
                None => {
                    assert!(res.is_err(), "#{i}");
                    let now = s.entries(3, 6, None, ctx()).unwrap();
                    assert_eq!(now, three(), "#{i} unchanged");
                }
            }
        }
    }

    #[test]
    fn storage_apply_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = GroupStorage::open(dir.path(), opts(), &logger()).unwrap();
        let mut meta = SnapshotMetadata { index: 4, term: 4, ..Default::default() };
        meta.mut_conf_state().voters = vec![1, 2, 3];
        s.apply_snapshot(&meta, 40).unwrap();
        assert_eq!((s.first_index(), s.last_index(), s.term(4)), (Ok(5), Ok(4), Ok(4)));
        assert_eq!((s.hard_state().commit, s.hard_state().term), (4, 4));
        assert_eq!(s.conf_state().voters, vec![1, 2, 3]);
        assert_eq!(s.log().next_offset(), 40);
        // Out of date.
        meta.index = 3;
        meta.term = 3;
        assert!(s.apply_snapshot(&meta, 0).is_err());
        drop(s);
        let (s, _) = GroupStorage::open(dir.path(), opts(), &logger()).unwrap();
        let st = s.initial_state().unwrap();
        assert_eq!((st.hard_state.commit, st.hard_state.term), (4, 4));
        assert_eq!((s.first_index(), s.term(4)), (Ok(5), Ok(4)));
    }

    #[test]
    fn hard_state_persists_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = GroupStorage::open(dir.path(), opts(), &logger()).unwrap();
        assert!(s.is_new());
        assert!(!s.initial_state().unwrap().initialized());
        s.initialize_voters(&[1, 2, 3]).unwrap();
        assert!(!s.is_new());
        assert!(s.initialize_voters(&[1]).is_err());
        s.log_mut().append(&[new_entry(1, 2), new_entry(2, 2), new_entry(3, 2)]).unwrap();
        let mut hs = HardState { term: 2, vote: 1, commit: 1, ..Default::default() };
        s.set_hard_state(&hs, true).unwrap();
        // Commit-only change: not fsynced, but written.
        hs.commit = 3;
        s.set_hard_state(&hs, false).unwrap();
        s.log_mut().sync().unwrap();
        drop(s);
        let (s, _) = GroupStorage::open(dir.path(), opts(), &logger()).unwrap();
        assert!(!s.is_new());
        let st = s.initial_state().unwrap();
        let h = &st.hard_state;
        assert_eq!((h.term, h.vote, h.commit), (2, 1, 3));
        assert_eq!(st.conf_state.voters, vec![1, 2, 3]);
        assert_eq!(s.hard_state(), &st.hard_state);
    }

    #[test]
    fn term_or_vote_change_is_always_durable() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = GroupStorage::open(dir.path(), opts(), &logger()).unwrap();
        let hs = HardState { term: 5, vote: 2, ..Default::default() };
        s.set_hard_state(&hs, false).unwrap();
        // A damaged commit file is ignored.
        std::fs::write(dir.path().join(COMMIT_FILE), b"garbage").unwrap();
        drop(s);
        let (s, _) = GroupStorage::open(dir.path(), opts(), &logger()).unwrap();
        assert_eq!((s.hard_state().term, s.hard_state().vote), (5, 2));
    }

    #[test]
    fn commit_is_clamped_into_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = GroupStorage::open(dir.path(), opts(), &logger()).unwrap();
        s.initialize_voters(&[1]).unwrap();
        s.log_mut().append(&[new_entry(1, 1), new_entry(2, 1), new_entry(3, 1)]).unwrap();
        let hs = HardState { term: 1, commit: 3, ..Default::default() };
        s.set_hard_state(&hs, true).unwrap();
        s.log_mut().sync().unwrap();
        drop(s);
        // Torn tail: the last entry's segment loses its frame.
        let last_seg = dir.path().join(format!("{:020}.log", 3));
        let len = std::fs::metadata(&last_seg).unwrap().len();
        let f = OpenOptions::new().write(true).open(&last_seg).unwrap();
        f.set_len(len - 1).unwrap();
        drop(f);
        let (s, rep) = GroupStorage::open(dir.path(), opts(), &logger()).unwrap();
        assert!(rep.truncated_bytes > 0);
        assert_eq!(s.last_index(), Ok(2));
        assert_eq!(s.initial_state().unwrap().hard_state.commit, 2);
    }

    #[test]
    fn corrupt_state_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = GroupStorage::open(dir.path(), opts(), &logger()).unwrap();
        s.initialize_voters(&[1]).unwrap();
        drop(s);
        let p = dir.path().join(STATE_FILE);
        let mut raw = std::fs::read(&p).unwrap();
        let n = raw.len();
        raw[n - 6] ^= 0xFF;
        std::fs::write(&p, &raw).unwrap();
        let err = GroupStorage::open(dir.path(), opts(), &logger()).err().unwrap();
        assert!(matches!(err, LogError::CorruptState { .. }), "{err}");
        std::fs::write(&p, b"CRS1").unwrap();
        assert!(GroupStorage::open(dir.path(), opts(), &logger()).is_err());
    }

    /// Runs ready/advance until quiet, persisting like a broker would; returns applied entries.
    fn drive(node: &mut RawNode<GroupStorage>) -> usize {
        let mut applied = 0;
        while node.has_ready() {
            let mut rd = node.ready();
            applied += rd.take_committed_entries().len();
            let store = node.mut_store();
            store.log_mut().append(rd.entries()).unwrap();
            if let Some(hs) = rd.hs() {
                store.set_hard_state(hs, true).unwrap();
            }
            let (files, _) = store.log_mut().take_dirty();
            files.iter().for_each(|f| f.file.sync_data().unwrap());
            let mut light = node.advance(rd);
            if let Some(c) = light.commit_index() {
                let mut hs = node.store().hard_state().clone();
                hs.commit = c;
                node.mut_store().set_hard_state(&hs, false).unwrap();
            }
            applied += light.take_committed_entries().len();
            node.advance_apply();
        }
        applied
    }

    /// A single-voter raft group elected and fed proposals through GroupStorage, then restarted.
    #[test]
    fn raw_node_commits_through_group_storage() {
        let dir = tempfile::tempdir().unwrap();
        let o = LogOptions { segment_bytes: 300, ..opts() };
        let cfg = Config { id: 1, ..Default::default() };
        let (mut s, _) = GroupStorage::open(dir.path(), o.clone(), &logger()).unwrap();
        s.initialize_voters(&[1]).unwrap();
        let mut node = RawNode::new(&cfg, s, &logger()).unwrap();
        node.campaign().unwrap();
        assert_eq!(drive(&mut node), 1, "the leader's no-op");
        for i in 0..3 {
            let batch = crate::log::offsets::make_batch(i * 2, 2, 100 + i, 30);
            node.propose(vec![], batch).unwrap();
            drive(&mut node);
        }
        let log = node.store().log();
        assert_eq!(log.last_index(), 4);
        assert_eq!(node.store().hard_state().commit, 4);
        assert_eq!(log.offset_after_index(4), 6);
        assert_eq!(log.offset_for_timestamp(101), Some((2, 101)));
        drop(node);
        let (s, rep) = GroupStorage::open(dir.path(), o, &logger()).unwrap();
        assert_eq!(rep.truncated_bytes, 0);
        assert_eq!(s.initial_state().unwrap().hard_state.commit, 4);
        let mut node = RawNode::new(&cfg, s, &logger()).unwrap();
        node.campaign().unwrap();
        drive(&mut node);
        assert_eq!(node.raft.term, 2);
        assert_eq!(node.store().log().last_index(), 5);
        assert_eq!(node.store().hard_state().commit, 5);
        assert_eq!(node.store().log().read(0, usize::MAX, 6).unwrap().len(), 3 * 91);
    }
}
