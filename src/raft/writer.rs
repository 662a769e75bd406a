//! The disk writer: the one thread per node that writes what Raft groups decided to write.
//!
//! A group's actor computes an append, a truncation or a hard-state change in memory and queues
//! the writes ([`WriteOp`]s: positional writes of `Bytes` slices, cuts, fsyncs of sealed
//! segments and directories; see `log/write.rs`). After each Ready it hands them here as one
//! [`WriteRequest`], with the files to fsync afterwards. The writer thread carries out the
//! requests in arrival order (so each group's writes land in the order the group made them),
//! then passes each to the syncer thread (`syncer.rs`), which fsyncs with group commit and calls
//! `done` in the same order. Writing the next requests overlaps the previous round's fsyncs.
//! A request with nothing to fsync (the page-cache policy's usual case) is answered by the
//! writer itself when the syncer has answered everything before it: same order, one thread
//! wake-up less per Ready.
//!
//! Neither thread is a group's actor: a write that blocks (dirty-page throttling, a slow disk)
//! delays acknowledgements, never a tick or a heartbeat. `done` only sends a message back.
//!
//! Errors: when a request's write (or, in the syncer, its fsync) fails, it is answered with the
//! error and its group's `poison` flag is set; every later request carrying the same flag is skipped and answered with an error,
//! so no write of a failed group lands after the failure. A group that reopens its storage first
//! waits for a [`DiskWriter::barrier`]: once it is answered, nothing queued before it can land.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use slog::Logger;

use crate::log::write::{DiskFile, WriteOp};
use crate::raft::disk_error::{DiskError, DiskOp};
use crate::raft::syncer::{SyncDone, SyncRequest, Syncer};

/// One group's writes of one Ready (or a flush, or a barrier).
pub struct WriteRequest {
    /// Carried out in order.
    pub ops: Vec<WriteOp>,
    /// fsynced after the ops (with group commit).
    pub files: Vec<Arc<DiskFile>>,
    /// The group's failure flag: set by the writer when an op fails (or by the group when it
    /// fails); while set, the group's requests are skipped with an error.
    pub poison: Option<Arc<AtomicBool>>,
    /// Called on the writer thread once the ops are done (before the fsync), if they succeeded.
    pub written: Option<Box<dyn FnOnce() + Send>>,
    /// Called, on the syncer thread, once the writes (and fsyncs) are done or failed.
    pub done: SyncDone,
}

enum Msg {
    Write(WriteRequest),
    Shutdown(mpsc::Sender<()>),
}

/// A handle to the node's disk writer; cheap to clone.
#[derive(Clone)]
pub struct DiskWriter {
    tx: mpsc::Sender<Msg>,
    queued: Arc<Queued>,
}

/// What the writer holds now: requests submitted and not yet answered (waiting to be written,
/// or written and waiting for their fsync) and the bytes they write: the node's bytes in
/// flight to the disk (metrics `chronik_disk_queue_requests`, `chronik_disk_queue_bytes`).
#[derive(Debug, Default)]
pub struct Queued {
    requests: AtomicU64,
    bytes: AtomicU64,
}

impl Queued {
    /// (requests, bytes) held now.
    pub fn now(&self) -> (u64, u64) {
        (self.requests.load(Ordering::Relaxed), self.bytes.load(Ordering::Relaxed))
    }
}

/// Owned by the node: when dropped, waits (up to 30 s) until every request queued before has
/// been written and fsynced, so that a node restarted in the same process never sees a late
/// write of its previous life.
pub struct WriterGuard {
    tx: mpsc::Sender<Msg>,
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        let (ack, done) = mpsc::channel();
        if self.tx.send(Msg::Shutdown(ack)).is_ok() {
            let _ = done.recv_timeout(Duration::from_secs(30));
        }
    }
}

impl DiskWriter {
    /// Starts the writer thread and its syncer thread.
    pub fn start(node: u64, logger: Logger) -> (DiskWriter, WriterGuard) {
        Self::start_with_delay(node, logger, Duration::ZERO)
    }

    /// [`Self::start`], sleeping `delay` before each request's writes (`faults.write-delay`:
    /// a slow disk).
    pub fn start_with_delay(node: u64, logger: Logger, delay: Duration) -> (DiskWriter, WriterGuard) {
        let syncer = Syncer::start(node, logger.clone());
        let (tx, rx) = mpsc::channel::<Msg>();
        thread::Builder::new()
            .name("chronik-writer".into())
            .spawn(move || run(node, rx, syncer, delay, logger))
            .expect("spawn writer thread");
        (DiskWriter { tx: tx.clone(), queued: Arc::default() }, WriterGuard { tx })
    }

    /// Queues a request. If the writer is gone (shutdown), `done` is called with an error.
    /// It counts in [`Queued`] until `done` is called.
    pub fn submit(&self, mut req: WriteRequest) {
        let bytes: u64 = req.ops.iter().map(WriteOp::len).sum();
        self.queued.requests.fetch_add(1, Ordering::Relaxed);
        self.queued.bytes.fetch_add(bytes, Ordering::Relaxed);
        let (queued, done) = (self.queued.clone(), req.done);
        req.done = Box::new(move |r| {
            queued.requests.fetch_sub(1, Ordering::Relaxed);
            queued.bytes.fetch_sub(bytes, Ordering::Relaxed);
            done(r)
        });
        if let Err(mpsc::SendError(Msg::Write(req))) = self.tx.send(Msg::Write(req)) {
            (req.done)(Err(DiskError::stopped()));
        }
    }

    /// The requests and bytes this writer holds (see [`Queued`]).
    pub fn queued(&self) -> Arc<Queued> {
        self.queued.clone()
    }

    /// Calls `done` once every request queued before this one has been answered.
    pub fn barrier(&self, done: impl FnOnce() + Send + 'static) {
        let done = Box::new(move |_| done());
        self.submit(WriteRequest { ops: Vec::new(), files: Vec::new(), poison: None, written: None, done });
    }
}

fn run(node: u64, rx: mpsc::Receiver<Msg>, syncer: Syncer, delay: Duration, logger: Logger) {
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Write(mut req) => {
                if !delay.is_zero() {
                    thread::sleep(delay);
                }
                let before = write(node, &req, &logger);
                if let Some(written) = req.written.take().filter(|_| before.is_ok()) {
                    written();
                }
                let files = if before.is_ok() { req.files } else { Vec::new() };
                if files.is_empty() && syncer.idle() {
                    (req.done)(before);
                } else {
                    syncer.sync(SyncRequest { files, poison: req.poison, before, done: req.done });
                }
            }
            Msg::Shutdown(ack) => {
                syncer.sync(SyncRequest::new(
                    Vec::new(),
                    Box::new(move |_| {
                        let _ = ack.send(());
                    }),
                ));
            }
        }
    }
}

/// Carries out one request's ops, honouring and setting its poison flag.
fn write(node: u64, req: &WriteRequest, logger: &Logger) -> Result<(), DiskError> {
    if req.poison.as_ref().is_some_and(|p| p.load(Ordering::Acquire)) {
        return Err(DiskError::skipped());
    }
    for op in &req.ops {
        if let Err(e) = op.run() {
            let kind = match op {
                WriteOp::Write { .. } => DiskOp::Write,
                WriteOp::SetLen { .. } => DiskOp::Truncate,
                WriteOp::Sync { .. } => DiskOp::Fsync,
            };
            let e = DiskError::from_log(kind, &e);
            e.report(node, logger);
            if let Some(p) = &req.poison {
                p.store(true, Ordering::Release);
            }
            return Err(e);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::fs::OpenOptions;

    fn logger() -> Logger {
        Logger::root(slog::Discard, slog::o!())
    }

    fn file(dir: &std::path::Path, name: &str, writable: bool) -> Arc<DiskFile> {
        let p = dir.join(name);
        std::fs::write(&p, b"").unwrap();
        let f = OpenOptions::new().read(true).write(writable).open(&p).unwrap();
        DiskFile::new(f, p)
    }

    fn request(
        ops: Vec<WriteOp>,
        poison: &Arc<AtomicBool>,
        tx: &mpsc::Sender<(u32, Result<(), DiskError>)>,
        n: u32,
    ) -> WriteRequest {
        let tx = tx.clone();
        WriteRequest {
            files: ops
                .iter()
                .filter_map(|o| if let WriteOp::Write { to, .. } = o { Some(to.clone()) } else { None })
                .collect(),
            ops,
            poison: Some(poison.clone()),
            written: None,
            done: Box::new(move |r| tx.send((n, r)).unwrap()),
        }
    }

    #[test]
    fn writes_in_order_then_answers_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let f = file(dir.path(), "a", true);
        let (w, guard) = DiskWriter::start(0, logger());
        let (tx, rx) = mpsc::channel();
        let poison = Arc::new(AtomicBool::new(false));
        for i in 0..20u32 {
            let op =
                WriteOp::Write { to: f.clone(), pos: u64::from(i) * 2, bufs: vec![Bytes::from(format!("{i:02}"))] };
            w.submit(request(vec![op], &poison, &tx, i));
        }
        w.submit(request(vec![WriteOp::SetLen { to: f.clone(), len: 10 }], &poison, &tx, 20));
        let got: Vec<_> = (0..21).map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap()).collect();
        assert_eq!(got, (0..21).map(|i| (i, Ok(()))).collect::<Vec<_>>());
        drop(guard);
        assert_eq!(std::fs::read(&f.path).unwrap(), b"0001020304");
    }

    #[test]
    fn the_queue_counts_requests_and_bytes_until_they_are_answered() {
        let dir = tempfile::tempdir().unwrap();
        let f = file(dir.path(), "a", true);
        let (w, _guard) = DiskWriter::start(0, logger());
        let (tx, rx) = mpsc::channel();
        let poison = Arc::new(AtomicBool::new(false));
        // The first request holds the writer thread (in its `written` call) until released.
        let (release, held) = mpsc::channel::<()>();
        let write = |i: u64| WriteOp::Write { to: f.clone(), pos: i * 100, bufs: vec![Bytes::from(vec![7u8; 100])] };
        let mut first = request(vec![write(0)], &poison, &tx, 0);
        first.written = Some(Box::new(move || held.recv().unwrap()));
        w.submit(first);
        w.submit(request(vec![write(1), write(2)], &poison, &tx, 1));
        w.submit(request(vec![WriteOp::SetLen { to: f.clone(), len: 300 }], &poison, &tx, 2));
        assert_eq!(w.queued().now(), (3, 300), "3 requests writing 100 + 200 bytes are held");
        release.send(()).unwrap();
        for n in 0..3 {
            assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), (n, Ok(())));
        }
        assert_eq!(w.queued().now(), (0, 0), "every request answered");
    }

    #[test]
    fn requests_without_fsyncs_answered_by_the_writer_keep_the_order() {
        // Every third request has a file to fsync (through the syncer); the others have none
        // and are answered by the writer whenever the syncer has caught up. Order holds.
        let dir = tempfile::tempdir().unwrap();
        let f = file(dir.path(), "a", true);
        let (w, _guard) = DiskWriter::start(0, logger());
        let (tx, rx) = mpsc::channel();
        let poison = Arc::new(AtomicBool::new(false));
        for i in 0..300u32 {
            let op = WriteOp::Write { to: f.clone(), pos: u64::from(i), bufs: vec![Bytes::from_static(b"x")] };
            let mut req = request(vec![op], &poison, &tx, i);
            if i % 3 != 0 {
                req.files.clear();
            }
            w.submit(req);
        }
        let got: Vec<_> = (0..300).map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap()).collect();
        assert_eq!(got, (0..300).map(|i| (i, Ok(()))).collect::<Vec<_>>());
    }

    #[test]
    fn a_job_sends_its_held_then_its_persisted_messages_and_a_failed_one_sends_none() {
        use crate::raft::core::WriteJob;
        use raft::eraftpb::{Message, MessageType};
        let dir = tempfile::tempdir().unwrap();
        let (ok, ro) = (file(dir.path(), "ok", true), file(dir.path(), "ro", false));
        let (w, _guard) = DiskWriter::start(0, logger());
        let (tx, rx) = mpsc::channel::<String>();
        let msg = |t: MessageType| {
            let mut m = Message::default();
            m.set_msg_type(t);
            m
        };
        for (name, to) in [("good", &ok), ("bad", &ro)] {
            let job = WriteJob {
                group: 1,
                number: 1,
                ops: vec![WriteOp::Write { to: to.clone(), pos: 0, bufs: vec![Bytes::from_static(b"x")] }],
                files: Vec::new(),
                held: vec![msg(MessageType::MsgAppend)],
                persisted: vec![msg(MessageType::MsgAppendResponse)],
                last_index: 1,
                rewrites_from: Some(1),
                poison: Arc::new(AtomicBool::new(false)),
            };
            let (sent, answered) = (tx.clone(), tx.clone());
            job.submit(
                &w,
                move |ms: Vec<Message>| {
                    ms.iter().for_each(|m| sent.send(format!("{name} {:?}", m.get_msg_type())).unwrap())
                },
                move |_, r| answered.send(format!("{name} done {}", r.is_ok())).unwrap(),
            );
        }
        let got: Vec<_> = (0..4).map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap()).collect();
        assert_eq!(got, ["good MsgAppend", "good MsgAppendResponse", "good done true", "bad done false"]);
    }

    #[test]
    fn a_failed_write_fails_its_request_and_every_later_one_of_its_group() {
        let dir = tempfile::tempdir().unwrap();
        let ro = file(dir.path(), "readonly", false);
        let ok = file(dir.path(), "ok", true);
        let (w, _guard) = DiskWriter::start(0, logger());
        let (tx, rx) = mpsc::channel();
        let (sick, healthy) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let write =
            |to: &Arc<DiskFile>| WriteOp::Write { to: to.clone(), pos: 0, bufs: vec![Bytes::from_static(b"x")] };
        w.submit(request(vec![write(&ro)], &sick, &tx, 0));
        w.submit(request(vec![write(&ok)], &sick, &tx, 1));
        w.submit(request(vec![write(&ok)], &healthy, &tx, 2));
        let (fired_tx, fired) = mpsc::channel();
        w.barrier(move || fired_tx.send(()).unwrap());
        let got: Vec<_> = (0..3).map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap()).collect();
        assert_eq!(got[0].0, 0);
        let e = got[0].1.as_ref().unwrap_err();
        assert_eq!((e.op, e.path.as_path()), (DiskOp::Write, ro.path.as_path()), "{got:?}");
        assert_eq!(got[1], (1, Err(DiskError::skipped())));
        assert_eq!(got[2], (2, Ok(())));
        assert!(sick.load(Ordering::Acquire) && !healthy.load(Ordering::Acquire));
        fired.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(std::fs::read(&ok.path).unwrap(), b"x", "only the healthy group's write landed");
    }
}
