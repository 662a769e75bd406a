//! The partition actor's side of snapshots that carry segment files (a compacted topic's
//! prefix below the raft start, see `log/raft_start.rs` and `log/snapshot_descriptor.rs`).
//!
//! Follower: a `MsgSnapshot` with a manifest goes to the [`Receiver`] core instead of raft-rs;
//! its disk work (writing a chunk into `snapshot-<index>.tmp/`, fsyncing a finished file,
//! checking and indexing the files, removing the staging directory) runs on tokio's blocking
//! pool, one operation at a time and in order, and answers with [`SnapshotIo`]. Once the
//! files are prepared, they are kept in the group's storage and the message is stepped: raft-rs
//! hands the snapshot back in a Ready and `raft::core` installs the segments (renames only).
//!
//! Leader (any replica that holds the files): a chunk request is answered off the group actor
//! too. The first request of a transfer opens every file of the snapshot's manifest and the
//! handles are kept for the transfer, so a cleaner swap meanwhile cannot change the bytes under
//! it; they are dropped once the last file's end is served, or after [`IDLE_TRANSFER`]. Each
//! request tells raft that the follower is still receiving its snapshot
//! (`RaftCore::note_snapshot_progress`), so the snapshot is not declared lost mid-transfer.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use raft::eraftpb::{Message, MessageType};

use super::{PartitionActor, PartitionMsg};
use crate::log::snapshot_descriptor::SnapshotDescriptor;
use crate::log::snapshot_install::{prepare, staging_dir, PreparedSnapshot};
use crate::partition::producer_state::ProducerStateTable;
use crate::partition::snapshot_receiver::{Action, Receiver, ReceiverSettings};
use crate::peer::frame::{SnapshotChunk, SnapshotChunkRequest, SnapshotPeerMsg};

/// A transfer whose follower has asked for nothing this long loses its open files.
pub const IDLE_TRANSFER: Duration = Duration::from_secs(60);

/// The answers of the receiver's disk work.
pub enum SnapshotIo {
    Written { index: u64, result: Result<(), String> },
    Prepared { index: u64, result: Result<Box<PreparedSnapshot>, String> },
    Removed,
}

/// Files of one transfer served by this node.
struct Served {
    files: HashMap<String, Arc<File>>,
    last_file: String,
    touched: Instant,
}

/// A partition's snapshot transfers, both ways.
pub struct Snapshots {
    receiver: Receiver,
    disk: VecDeque<Action>,
    disk_busy: bool,
    served: Arc<Mutex<HashMap<(u64, u64), Served>>>,
    chunk_bytes: u64,
}

impl Snapshots {
    /// No transfer either way and no disk work queued (a group with one does not hibernate).
    pub fn is_idle(&self) -> bool {
        self.disk.is_empty()
            && !self.disk_busy
            && self.receiver.in_progress().is_none()
            && self.served.try_lock().is_ok_and(|s| s.is_empty())
    }

    pub fn new(group: u64, settings: &crate::raft::GroupSettings) -> Self {
        let election = settings.election_tick.max(1) as u32;
        let rs = ReceiverSettings {
            chunk_bytes: settings.snapshot_chunk_bytes.max(1),
            resend_ticks: (settings.heartbeat_tick.max(1) as u32 * 4).max(4),
            give_up_ticks: 2 * election,
        };
        Snapshots {
            receiver: Receiver::new(group, rs),
            disk: VecDeque::new(),
            disk_busy: false,
            served: Default::default(),
            chunk_bytes: settings.snapshot_chunk_bytes.max(1),
        }
    }
}

/// Writes one chunk into the staging directory.
fn write_chunk(dir: PathBuf, index: u64, file: &str, offset: u64, data: &[u8], eof: bool) -> Result<(), String> {
    if crate::log::segment::parse_log_name(file).is_none() {
        return Err(format!("{file} is not a segment file name"));
    }
    let staging = staging_dir(&dir, index);
    std::fs::create_dir_all(&staging).map_err(|e| e.to_string())?;
    let path = staging.join(file);
    let f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(offset == 0)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all_at(data, offset).map_err(|e| format!("{}: {e}", path.display()))?;
    if eof {
        f.sync_all().map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// Reads the chunk `req` asks for from the transfer's open files (opening them on its first
/// request), at most `max_len` bytes.
fn read_chunk(
    served: &Mutex<HashMap<(u64, u64), Served>>,
    key: (u64, u64),
    open: Option<Vec<(String, PathBuf)>>,
    req: &SnapshotChunkRequest,
    max_len: u64,
) -> Result<(bytes::Bytes, bool), String> {
    let mut map = served.lock().unwrap_or_else(|p| p.into_inner());
    map.retain(|_, s| s.touched.elapsed() < IDLE_TRANSFER);
    let s = match map.entry(key) {
        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::hash_map::Entry::Vacant(e) => {
            let Some(paths) = open else {
                return Err("the transfer is not open".into());
            };
            let mut files = HashMap::new();
            for (name, path) in &paths {
                let f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
                files.insert(name.clone(), Arc::new(f));
            }
            let last_file = paths.last().map(|p| p.0.clone()).unwrap_or_default();
            e.insert(Served { files, last_file, touched: Instant::now() })
        }
    };
    s.touched = Instant::now();
    let f = s.files.get(&req.file).ok_or_else(|| format!("{} is not a file of snapshot {}", req.file, req.index))?;
    let len = f.metadata().map_err(|e| e.to_string())?.len();
    if req.offset > len {
        return Err(format!("offset {} is past the {len} bytes of {}", req.offset, req.file));
    }
    let n = max_len.min(len - req.offset);
    let mut buf = vec![0u8; n as usize];
    f.read_exact_at(&mut buf, req.offset).map_err(|e| e.to_string())?;
    let eof = req.offset + n == len;
    if eof && req.file == s.last_file {
        map.remove(&key);
    }
    Ok((buf.into(), eof))
}

impl PartitionActor {
    /// Moves the raft start toward the end of the cleaned segments (`RaftCore::advance_raft_start`).
    pub(super) fn advance_raft_start(&mut self) {
        let target = self.cleaning.raft_start_target;
        if target == 0 {
            return;
        }
        if let Err(e) = self.core.raft.advance_raft_start(target) {
            slog::warn!(self.logger, "moving the raft start failed"; "error" => %e);
        }
    }

    /// A `MsgSnapshot` whose data names segment files is taken over by the receiver (None);
    /// anything else is given back to be stepped.
    pub(super) fn take_snapshot_msg(&mut self, m: Message, ctx: &mut Context<Self>) -> Option<Message> {
        if m.get_msg_type() != MessageType::MsgSnapshot {
            return Some(m);
        }
        let desc = match SnapshotDescriptor::decode(&m.get_snapshot().data) {
            Ok(d) if d.has_manifest() => d,
            _ => return Some(m),
        };
        let meta = m.get_snapshot().get_metadata();
        if meta.index <= self.core.raft.commit_index() {
            // raft-rs would ignore it (and answer so): no transfer.
            return Some(m);
        }
        let (from, index, term, files, bytes) = (m.from, meta.index, meta.term, desc.files.len(), desc.total_bytes());
        let before = self.snapshots.receiver.in_progress();
        let actions = self.snapshots.receiver.on_snapshot(m, desc);
        if self.snapshots.receiver.in_progress() != before {
            slog::info!(self.logger, "snapshot transfer started"; "from" => from, "index" => index, "term" => term,
                "files" => files, "bytes" => bytes);
        }
        self.run_snapshot_actions(actions, ctx);
        None
    }

    /// A chunk request (serve it) or a chunk (to the receiver) from node `from`.
    pub(super) fn on_snapshot_peer(&mut self, from: u64, msg: SnapshotPeerMsg, ctx: &mut Context<Self>) {
        match msg {
            SnapshotPeerMsg::Request(req) => self.serve_chunk(from, req),
            SnapshotPeerMsg::Chunk(c) => {
                let actions = self.snapshots.receiver.on_chunk(from, c);
                self.run_snapshot_actions(actions, ctx);
            }
        }
    }

    /// One tick: the receiver's time-outs, and the served transfers' open files dropped after
    /// [`IDLE_TRANSFER`] (skipped while a chunk is being read: never wait on the tick).
    pub(super) fn snapshot_tick(&mut self, ctx: &mut Context<Self>) {
        if let Ok(mut served) = self.snapshots.served.try_lock() {
            served.retain(|_, s| s.touched.elapsed() < IDLE_TRANSFER);
        }
        let actions = self.snapshots.receiver.on_tick();
        if let Some(Action::Send { to, req }) = actions.first() {
            slog::info!(self.logger, "asking again for a snapshot chunk"; "to" => to, "index" => req.index,
                "file" => req.file.as_str(), "offset" => req.offset);
        }
        self.run_snapshot_actions(actions, ctx);
    }

    /// The answer of the receiver's disk work.
    pub(super) fn on_snapshot_io(&mut self, io: SnapshotIo, ctx: &mut Context<Self>) {
        self.snapshots.disk_busy = false;
        let actions = match io {
            SnapshotIo::Written { index, result } => self.snapshots.receiver.on_written(index, result),
            SnapshotIo::Prepared { index, result: Ok(p) } => {
                let (msg, mut actions) = self.snapshots.receiver.on_prepared(index, Ok(()));
                match msg {
                    Some(m) => {
                        slog::info!(self.logger, "snapshot files received and checked"; "index" => index, "segments" => p.segments.len());
                        self.core.raft.stage_snapshot(*p);
                        if let Err(e) = self.core.raft.step(m) {
                            slog::warn!(self.logger, "raft rejected a received snapshot"; "index" => index, "error" => %e);
                        }
                        self.schedule_drive(ctx);
                    }
                    None => actions.push(Action::Abort { index, reason: "the transfer was replaced".into() }),
                }
                actions
            }
            SnapshotIo::Prepared { index, result: Err(e) } => self.snapshots.receiver.on_prepared(index, Err(e)).1,
            SnapshotIo::Removed => Vec::new(),
        };
        self.run_snapshot_actions(actions, ctx);
    }

    fn run_snapshot_actions(&mut self, actions: Vec<Action>, ctx: &mut Context<Self>) {
        for a in actions {
            match a {
                Action::Send { to, req } => self.links.transport.send_snapshot(to, SnapshotPeerMsg::Request(req)),
                Action::Abort { index, ref reason } => {
                    slog::warn!(self.logger, "snapshot transfer abandoned"; "index" => index, "reason" => reason.as_str());
                    self.snapshots.disk.push_back(a);
                }
                other => self.snapshots.disk.push_back(other),
            }
        }
        self.pump_snapshot_disk(ctx);
    }

    /// Starts the next disk operation of the receiver, if none is running.
    fn pump_snapshot_disk(&mut self, ctx: &mut Context<Self>) {
        if self.snapshots.disk_busy {
            return;
        }
        let Some(action) = self.snapshots.disk.pop_front() else {
            return;
        };
        self.snapshots.disk_busy = true;
        let addr = ctx.address();
        let dir = self.dir.clone();
        let interval = self.reopen.settings.index_interval_bytes;
        tokio::task::spawn_blocking(move || {
            let io = match action {
                Action::Write { index, file, offset, data, eof } => {
                    SnapshotIo::Written { index, result: write_chunk(dir, index, &file, offset, &data, eof) }
                }
                Action::Prepare { index, term, desc } => {
                    let mut producers = ProducerStateTable::new();
                    let mut on_batch = |h: &[u8]| crate::partition::txn::apply_stored(&mut producers, h);
                    let result = prepare(&dir, &desc, index, term, interval, &mut on_batch).map_err(|e| e.to_string());
                    let result = result.map(|mut p| {
                        p.state = Some(Box::new(producers));
                        Box::new(p)
                    });
                    SnapshotIo::Prepared { index, result }
                }
                Action::Abort { index, .. } => {
                    let _ = std::fs::remove_dir_all(staging_dir(&dir, index));
                    SnapshotIo::Removed
                }
                Action::Send { .. } => SnapshotIo::Removed,
            };
            addr.do_send(PartitionMsg::SnapshotIo(io));
        });
    }

    /// Answers a chunk request off the group actor.
    fn serve_chunk(&mut self, from: u64, req: SnapshotChunkRequest) {
        self.core.raft.note_snapshot_progress(from);
        let key = (from, req.index);
        let open_now = !self.snapshots.served.lock().unwrap_or_else(|p| p.into_inner()).contains_key(&key);
        let log = self.core.raft.storage().log();
        let open = if open_now {
            log.snapshot_manifest(req.index)
                .map(|files| files.into_iter().map(|f| (f.name.clone(), log.dir().join(&f.name))).collect::<Vec<_>>())
        } else {
            None
        };
        let served = self.snapshots.served.clone();
        let transport = self.links.transport.clone();
        let max_len = req.max_len.min(self.snapshots.chunk_bytes).max(1);
        let me = transport.me();
        tokio::task::spawn_blocking(move || {
            let (data, eof, error) = match read_chunk(&served, key, open, &req, max_len) {
                Ok((data, eof)) => (data, eof, String::new()),
                Err(e) => (bytes::Bytes::new(), false, e),
            };
            if error.is_empty() {
                crate::metrics::snapshot_chunk_sent(me, data.len() as u64);
            }
            let SnapshotChunkRequest { group, index, term, file, offset, .. } = req;
            let chunk = SnapshotChunk { group, index, term, file, offset, data, eof, error, throttled_ms: 0 };
            transport.send_snapshot(from, SnapshotPeerMsg::Chunk(chunk));
        });
    }
}
