//! The follower's side of a snapshot transfer, free of actix: a `MsgSnapshot` whose descriptor
//! names segment files (`log::snapshot_descriptor`) is not stepped into raft at once; the
//! [`Receiver`] pulls the files from the leader one chunk at a time (one request in flight, so
//! a transfer holds at most one chunk in memory), has each chunk written into the staging
//! directory, then has the files checked and indexed, and only then hands the message back to
//! be stepped. The shell (`partition::snapshot`) carries out its [`Action`]s: peer requests,
//! disk work off the group actor, and the step.
//!
//! Rules: a duplicate `MsgSnapshot` (same snapshot index, term and manifest) for the transfer in
//! progress is ignored, except that a new sender (a new leader with the same files) becomes
//! the source; an older one is ignored; a newer one, or one for the same point whose files
//! differ (replicas compact independently), aborts the transfer and starts its own. A
//! chunk that is not the one asked for (late, duplicated) is ignored. A lost request or chunk
//! is asked for again after `resend_ticks`, and so is one the leader's replication quota holds
//! back (an empty answer with `throttled_ms`, which counts as an answer); with no answer for
//! `give_up_ticks`, an error chunk
//! (CRC, length, the leader cannot serve the file), or a failed write or check, the transfer is
//! abandoned and its staging directory removed: raft-rs on the leader sends the snapshot again.

use bytes::Bytes;
use raft::eraftpb::Message;

use crate::log::snapshot_descriptor::SnapshotDescriptor;
use crate::peer::frame::{SnapshotChunk, SnapshotChunkRequest};

/// Tunables of a receiver.
#[derive(Debug, Clone, Copy)]
pub struct ReceiverSettings {
    /// Most bytes asked for in one request.
    pub chunk_bytes: u64,
    /// Ticks without an answer before a request is sent again.
    pub resend_ticks: u32,
    /// Ticks without an answer before the transfer is abandoned.
    pub give_up_ticks: u32,
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send a chunk request to node `to`.
    Send { to: u64, req: SnapshotChunkRequest },
    /// Write `data` at `offset` of `file` in the staging directory of snapshot `index` (created
    /// if needed); fsync the file when `eof`. Answer with [`Receiver::on_written`].
    Write { index: u64, file: String, offset: u64, data: Bytes, eof: bool },
    /// Check and index the received files (`log::snapshot_install::prepare`); answer with
    /// [`Receiver::on_prepared`].
    Prepare { index: u64, term: u64, desc: Box<SnapshotDescriptor> },
    /// Remove the staging directory of snapshot `index`.
    Abort { index: u64, reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A request for `offset` of file `file` is out.
    Requesting,
    /// A chunk of `len` bytes is being written.
    Writing { len: u64, eof: bool },
    /// Every file is written: being checked.
    Preparing,
}

#[derive(Debug)]
struct Transfer {
    index: u64,
    term: u64,
    leader: u64,
    desc: SnapshotDescriptor,
    msg: Message,
    file: usize,
    offset: u64,
    phase: Phase,
    /// Ticks since the last answer / since the last request.
    idle: u32,
    since_request: u32,
}

/// The transfer of one partition group (at most one at a time).
#[derive(Debug)]
pub struct Receiver {
    group: u64,
    settings: ReceiverSettings,
    current: Option<Transfer>,
}

impl Receiver {
    pub fn new(group: u64, settings: ReceiverSettings) -> Self {
        Receiver { group, settings, current: None }
    }

    /// The (index, term) of the transfer in progress.
    pub fn in_progress(&self) -> Option<(u64, u64)> {
        self.current.as_ref().map(|t| (t.index, t.term))
    }

    fn request(&self, t: &Transfer) -> Action {
        let f = &t.desc.files[t.file];
        let req = SnapshotChunkRequest {
            group: self.group,
            index: t.index,
            term: t.term,
            file: f.name.clone(),
            offset: t.offset,
            max_len: self.settings.chunk_bytes.min(f.length - t.offset).max(1),
        };
        Action::Send { to: t.leader, req }
    }

    fn fail(&mut self, reason: String) -> Vec<Action> {
        match self.current.take() {
            Some(t) => vec![Action::Abort { index: t.index, reason }],
            None => Vec::new(),
        }
    }

    /// A `MsgSnapshot` whose descriptor `desc` has a manifest.
    pub fn on_snapshot(&mut self, msg: Message, desc: SnapshotDescriptor) -> Vec<Action> {
        let meta = msg.get_snapshot().get_metadata();
        let (index, term, from) = (meta.index, meta.term, msg.from);
        let mut out = Vec::new();
        if let Some(t) = &mut self.current {
            if (t.index, t.term) == (index, term) && t.desc == desc {
                if t.leader != from {
                    // The same snapshot from a new leader: pull the rest from it.
                    t.leader = from;
                    t.msg = msg;
                    t.since_request = 0;
                    if t.phase == Phase::Requesting {
                        let t = self.current.as_ref().expect("checked");
                        out.push(self.request(t));
                    }
                }
                return out;
            }
            if (t.index, t.term) > (index, term) {
                return out;
            }
            // Newer, or the same point from a replica whose files differ (each compacts alone).
            out = self.fail(format!("a newer or different snapshot at index {index} arrived"));
        }
        if desc.files.is_empty() {
            return out;
        }
        let t = Transfer {
            index,
            term,
            leader: from,
            desc,
            msg,
            file: 0,
            offset: 0,
            phase: Phase::Requesting,
            idle: 0,
            since_request: 0,
        };
        out.push(self.request(&t));
        self.current = Some(t);
        out
    }

    /// A chunk from node `from`.
    pub fn on_chunk(&mut self, from: u64, c: SnapshotChunk) -> Vec<Action> {
        let Some(t) = &mut self.current else {
            return Vec::new();
        };
        let f = &t.desc.files[t.file];
        if (c.index, c.term) != (t.index, t.term)
            || from != t.leader
            || t.phase != Phase::Requesting
            || c.file != f.name
            || c.offset != t.offset
        {
            return Vec::new();
        }
        if !c.error.is_empty() {
            return self.fail(format!("the leader cannot serve {}: {}", c.file, c.error));
        }
        if c.throttled_ms > 0 {
            // The leader's replication quota holds the chunk back: it is alive; ask again later.
            t.idle = 0;
            t.since_request = 0;
            return Vec::new();
        }
        let len = c.data.len() as u64;
        let end = c.offset + len;
        if len > self.settings.chunk_bytes || end > f.length || (c.eof != (end == f.length)) || (len == 0 && !c.eof) {
            let why =
                format!("chunk {}..{end} of {} (eof {}) does not fit its {} bytes", c.offset, c.file, c.eof, f.length);
            return self.fail(why);
        }
        t.phase = Phase::Writing { len, eof: c.eof };
        t.idle = 0;
        vec![Action::Write { index: t.index, file: c.file, offset: c.offset, data: c.data, eof: c.eof }]
    }

    /// The write of the last chunk of snapshot `index` is done (or failed).
    pub fn on_written(&mut self, index: u64, result: Result<(), String>) -> Vec<Action> {
        let Some(t) = self.current.as_mut().filter(|t| t.index == index) else {
            return Vec::new();
        };
        let Phase::Writing { len, eof } = t.phase else {
            return Vec::new();
        };
        if let Err(e) = result {
            return self.fail(format!("writing a chunk failed: {e}"));
        }
        t.offset += len;
        if eof {
            t.file += 1;
            t.offset = 0;
        }
        if t.file == t.desc.files.len() {
            t.phase = Phase::Preparing;
            return vec![Action::Prepare { index: t.index, term: t.term, desc: Box::new(t.desc.clone()) }];
        }
        t.phase = Phase::Requesting;
        t.since_request = 0;
        let t = self.current.as_ref().expect("checked");
        vec![self.request(t)]
    }

    /// The received files of snapshot `index` were checked: on success the transfer is over and
    /// the returned `MsgSnapshot` is to be stepped (with the prepared segments kept for it).
    pub fn on_prepared(&mut self, index: u64, result: Result<(), String>) -> (Option<Message>, Vec<Action>) {
        if !self.current.as_ref().is_some_and(|t| t.index == index && t.phase == Phase::Preparing) {
            return (None, Vec::new());
        }
        match result {
            Ok(()) => (self.current.take().map(|t| t.msg), Vec::new()),
            Err(e) => (None, self.fail(format!("the received files do not check: {e}"))),
        }
    }

    /// One Raft tick: resends a lost request, gives up on a silent leader.
    pub fn on_tick(&mut self) -> Vec<Action> {
        let (resend, give_up) = (self.settings.resend_ticks, self.settings.give_up_ticks);
        let Some(t) = &mut self.current else {
            return Vec::new();
        };
        if t.phase != Phase::Requesting {
            return Vec::new();
        }
        t.idle += 1;
        t.since_request += 1;
        if t.idle >= give_up {
            let leader = t.leader;
            return self.fail(format!("no chunk from node {leader} for {give_up} ticks"));
        }
        if t.since_request >= resend {
            t.since_request = 0;
            let t = self.current.as_ref().expect("checked");
            return vec![self.request(t)];
        }
        Vec::new()
    }
}

#[cfg(test)]
#[path = "snapshot_receiver_tests.rs"]
mod tests;
