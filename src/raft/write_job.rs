//! The writes of one Ready, as the group's core hands them to the node's disk writer: the
//! writes and fsyncs, the messages that wait for them (a leader's appends until written, the
//! persisted messages until done), and what recovery needs to know of them. Made by
//! `RaftCore::handle_ready` (`raft/core.rs`, the Ready contract), carried out by
//! `raft/writer.rs` and `raft/syncer.rs`.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use raft::eraftpb::Message;

use crate::log::write::{DiskFile, WriteOp};
use crate::log::LogError;
use crate::raft::writer::{DiskWriter, WriteRequest};
use crate::raft::GroupId;

/// The writes of one Ready for the disk writer, and the files to fsync after them.
pub struct WriteJob {
    pub group: GroupId,
    /// The Ready's number: pass it to [`RaftCore::on_synced`] once the job is done.
    pub number: u64,
    /// Carried out in order by the writer.
    pub ops: Vec<WriteOp>,
    /// fsynced after the ops.
    pub files: Vec<Arc<DiskFile>>,
    /// A leader's appends with entries: they go to the followers once this job's writes are
    /// done (page cache, before the fsync), sent by the writer thread itself.
    pub held: Vec<Message>,
    /// The Ready's persisted messages (append and vote responses): they leave once this job is
    /// done (written, and fsynced where the policy asks), sent by the writer's side itself.
    pub persisted: Vec<Message>,
    /// The last log index written when the job was made: durable once the job is done (with
    /// fsync durability).
    pub last_index: u64,
    /// The first log index this job (re)writes: its first entry, or the index after an
    /// installed snapshot. Anything the log held from there on is replaced (a follower's
    /// truncation), so it stops counting as durable (see `raft::recovery`).
    pub rewrites_from: Option<u64>,
    /// The group's failure flag (see `raft::writer`).
    pub poison: Arc<AtomicBool>,
}

impl WriteJob {
    /// Hands the job to the writer; `done(number, result)` runs on the writer's side when the
    /// writes (and fsyncs) are done (it should only `do_send` back to the group).
    /// `send` hands messages to the transport, on the writer's side (TiKV's write worker sends
    /// messages itself the same way: no hop back through the group's actor): the held appends
    /// once the writes are done, before the fsync; the persisted messages once the job is
    /// done, just before `done`. A job the writer skips (its group failed) or whose write
    /// fails sends neither.
    pub fn submit(
        self,
        writer: &DiskWriter,
        send: impl Fn(Vec<Message>) + Send + Sync + 'static,
        done: impl FnOnce(u64, Result<(), crate::raft::disk_error::DiskError>) + Send + 'static,
    ) {
        let number = self.number;
        let (held, persisted) = (self.held, self.persisted);
        let send = Arc::new(send);
        let written: Option<Box<dyn FnOnce() + Send>> = if held.is_empty() {
            None
        } else {
            let send = send.clone();
            Some(Box::new(move || send(held)))
        };
        writer.submit(WriteRequest {
            ops: self.ops,
            files: self.files,
            poison: Some(self.poison),
            written,
            done: Box::new(move |r| {
                if r.is_ok() && !persisted.is_empty() {
                    send(persisted);
                }
                done(number, r)
            }),
        });
    }

    /// Carries the job out on this thread (tests, tools): the writes, then the fsyncs.
    pub fn run_now(&self) -> Result<(), LogError> {
        crate::log::write::run_all(&self.ops)?;
        for f in &self.files {
            f.sync_data().map_err(|e| LogError::io(&f.path, e))?;
        }
        Ok(())
    }
}
