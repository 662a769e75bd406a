//! The syncer: the second stage of the node's disk writer (`writer.rs`), one thread that fsyncs
//! the files Raft groups have written, in groups.
//!
//! The writer thread carries out each job's writes and passes it on here as a [`SyncRequest`].
//! The syncer takes every request waiting in its mailbox, fsyncs each distinct file once (up to
//! [`PARALLEL_FSYNCS`] at a time: itself and its [`FsyncHelpers`], threads it starts the first
//! time a round has several files and keeps for its life), and
//! then answers every request, in arrival order (a request the writer already failed is answered
//! with its error, in its place). While one round of fsyncs runs, new requests pile up and share
//! the next round: that is the group commit across partitions; meanwhile the writer already
//! writes the next jobs. It runs on its own thread so that a slow disk never delays a tick, a
//! heartbeat or an apply.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use slog::Logger;

use crate::log::write::DiskFile;
use crate::raft::disk_error::{DiskError, DiskOp};

/// Called with the outcome once the request's files are durable.
pub type SyncDone = Box<dyn FnOnce(Result<(), DiskError>) + Send>;

/// One group's request: fsync these files, then call `done`.
pub struct SyncRequest {
    pub files: Vec<Arc<DiskFile>>,
    /// The group's failure flag (see `writer.rs`): set here when an fsync fails, before `done`
    /// is called, so the writer skips the group's later jobs at once.
    pub poison: Option<Arc<AtomicBool>>,
    /// The outcome of the writes before the fsync: an error is passed to `done` as it is, in
    /// order, and nothing is fsynced for this request.
    pub before: Result<(), DiskError>,
    pub done: SyncDone,
}

impl SyncRequest {
    /// A request that only fsyncs `files`.
    pub fn new(files: Vec<Arc<DiskFile>>, done: SyncDone) -> Self {
        SyncRequest { files, poison: None, before: Ok(()), done }
    }
}

/// Counters the syncer keeps (exposed for tests and metrics).
#[derive(Debug, Default, Clone, Copy)]
pub struct SyncStats {
    pub rounds: u64,
    pub requests: u64,
    pub fsyncs: u64,
    pub last_round: Duration,
}

/// A handle to the syncer thread; cheap to clone.
#[derive(Clone)]
pub struct Syncer {
    tx: mpsc::Sender<SyncRequest>,
    /// Requests queued and not yet answered (decremented after each `done` has run).
    pending: Arc<AtomicUsize>,
}

impl Syncer {
    /// Starts the syncer thread.
    pub fn start(node: u64, logger: Logger) -> Syncer {
        let (tx, rx) = mpsc::channel::<SyncRequest>();
        let pending = Arc::new(AtomicUsize::new(0));
        let answered = pending.clone();
        thread::Builder::new()
            .name("chronik-syncer".into())
            .spawn(move || run(node, rx, &answered, logger))
            .expect("spawn syncer thread");
        Syncer { tx, pending }
    }

    /// Queues a request. If the syncer is gone (shutdown), `done` is called with an error.
    pub fn sync(&self, req: SyncRequest) {
        self.pending.fetch_add(1, Ordering::AcqRel);
        if let Err(mpsc::SendError(req)) = self.tx.send(req) {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            (req.done)(Err(DiskError::stopped()));
        }
    }

    /// Whether every request queued so far has been answered (its `done` has returned): a
    /// request with nothing to fsync may then be answered by the caller itself, in order.
    pub fn idle(&self) -> bool {
        self.pending.load(Ordering::Acquire) == 0
    }
}

fn run(node: u64, rx: mpsc::Receiver<SyncRequest>, pending: &AtomicUsize, logger: Logger) {
    let mut stats = SyncStats::default();
    let mut helpers = FsyncHelpers::default();
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let started = Instant::now();
        let fsyncs = stats.fsyncs;
        let results = sync_round(&batch, &mut stats, &mut helpers, &mut |e| e.report(node, &logger));
        // Poison first: the writer skips a failed group's later jobs before any answer is out.
        for (req, result) in batch.iter().zip(&results) {
            if let (Err(_), Some(p)) = (result, &req.poison) {
                p.store(true, Ordering::Release);
            }
        }
        stats.rounds += 1;
        stats.requests += batch.len() as u64;
        stats.last_round = started.elapsed();
        if stats.fsyncs > fsyncs {
            crate::metrics::registry().fsync(node, stats.last_round);
        }
        for (req, result) in batch.into_iter().zip(results) {
            (req.done)(result);
            pending.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// At most this many fsyncs of one round run at the same time. ext4 (jbd2) joins concurrent
/// fsyncs into one journal commit: measured on this machine, 6 files of 64 KB each fsynced
/// one after another make 41-44 rounds/s, the same fsynced by 6 threads at once 589-630
/// (`docs/benchmarks.md`, "Parallel fsyncs").
pub const PARALLEL_FSYNCS: usize = 8;

/// One helper's share of a round: fsync `files`, answer with each outcome, in order.
struct FsyncJob {
    files: Vec<Arc<DiskFile>>,
    chunk: usize,
    reply: mpsc::Sender<(usize, Vec<std::io::Result<()>>)>,
}

/// The syncer's fsync threads (`chronik-fsync`), up to [`PARALLEL_FSYNCS`] - 1 beside the
/// syncer itself. They are started the first time a round needs them (a node whose rounds
/// have one file, or none, never starts any) and live as long as the syncer: starting threads
/// for every round cost the durable produce path about 5 % of the broker's CPU (thread
/// creation in a profile of 1,500 rounds/s). Each helper ends when the syncer drops its sender.
#[derive(Default)]
struct FsyncHelpers {
    senders: Vec<mpsc::Sender<FsyncJob>>,
}

impl FsyncHelpers {
    /// Sends `files` to helper `i` (started now if it is not yet); gives the files back when
    /// no helper can take them (its thread could not be started or is gone).
    fn send(&mut self, i: usize, job: FsyncJob) -> Result<(), FsyncJob> {
        while self.senders.len() <= i {
            let (tx, rx) = mpsc::channel::<FsyncJob>();
            let spawned = thread::Builder::new().name("chronik-fsync".into()).spawn(move || {
                for job in rx {
                    let outcomes = job.files.iter().map(|f| f.sync_data()).collect();
                    let _ = job.reply.send((job.chunk, outcomes));
                }
            });
            if spawned.is_err() {
                return Err(job);
            }
            self.senders.push(tx);
        }
        self.senders[i].send(job).map_err(|mpsc::SendError(job)| job)
    }
}

/// Fsyncs each distinct file (by device and inode) of the batch once, up to
/// [`PARALLEL_FSYNCS`] at a time (the first share on this thread, the others on `helpers`);
/// returns each request's outcome (its writer's error, or the first error among its files).
/// Each failure of this round's own goes to `report` once.
fn sync_round(
    batch: &[SyncRequest],
    stats: &mut SyncStats,
    helpers: &mut FsyncHelpers,
    report: &mut dyn FnMut(&DiskError),
) -> Vec<Result<(), DiskError>> {
    // Each request's files as keys (or the error of the stat that names them); the distinct
    // files, in first-seen order.
    let mut distinct: Vec<((u64, u64), &Arc<DiskFile>)> = Vec::new();
    let mut known: HashSet<(u64, u64)> = HashSet::new();
    let keyed: Vec<Result<Vec<(u64, u64)>, DiskError>> = batch
        .iter()
        .map(|req| {
            req.before.clone()?;
            req.files
                .iter()
                .map(|f| {
                    let key = f.metadata().map(|m| (m.dev(), m.ino())).map_err(|e| {
                        let e = DiskError::io(DiskOp::Fsync, &f.path, &e);
                        report(&e);
                        e
                    })?;
                    if known.insert(key) {
                        distinct.push((key, f));
                    }
                    Ok(key)
                })
                .collect()
        })
        .collect();
    stats.fsyncs += distinct.len() as u64;
    let files: Vec<Arc<DiskFile>> = distinct.iter().map(|(_, f)| Arc::clone(f)).collect();
    let outcomes = fsync_all(&files, helpers);
    let mut seen: HashMap<(u64, u64), Result<(), DiskError>> = HashMap::new();
    for (((key, _), r), f) in distinct.iter().zip(outcomes).zip(&files) {
        let r = r.map_err(|e| DiskError::io(DiskOp::Fsync, &f.path, &e));
        if let Err(e) = &r {
            report(e);
        }
        seen.insert(*key, r);
    }
    keyed
        .into_iter()
        .map(|keys| {
            for k in keys? {
                seen[&k].clone()?;
            }
            Ok(())
        })
        .collect()
}

/// fdatasyncs `files`, in shares of at most `ceil(n / PARALLEL_FSYNCS)` files run at the same
/// time: share 0 here, share `k` on helper `k - 1` (or here too, after share 0, when the
/// helper cannot take it). Returns each file's outcome, in order; a share whose helper
/// vanished before answering fails with "fsync thread panicked".
fn fsync_all(files: &[Arc<DiskFile>], helpers: &mut FsyncHelpers) -> Vec<std::io::Result<()>> {
    if files.len() <= 1 {
        return files.iter().map(|f| f.sync_data()).collect();
    }
    let per = files.len().div_ceil(PARALLEL_FSYNCS);
    let shares: Vec<&[Arc<DiskFile>]> = files.chunks(per).collect();
    let (reply, answers) = mpsc::channel();
    let mut here = vec![0];
    let mut sent = 0;
    for (k, share) in shares.iter().enumerate().skip(1) {
        match helpers.send(k - 1, FsyncJob { files: share.to_vec(), chunk: k, reply: reply.clone() }) {
            Ok(()) => sent += 1,
            Err(_) => here.push(k),
        }
    }
    drop(reply);
    let mut outcomes: Vec<Option<Vec<std::io::Result<()>>>> = shares.iter().map(|_| None).collect();
    for k in here {
        outcomes[k] = Some(shares[k].iter().map(|f| f.sync_data()).collect());
    }
    for (k, share) in answers.iter().take(sent) {
        outcomes[k] = Some(share);
    }
    outcomes
        .into_iter()
        .zip(&shares)
        .flat_map(|(o, share)| o.unwrap_or_else(|| share.iter().map(|_| Err(panicked())).collect()))
        .collect()
}

/// The error of an fsync whose thread panicked (never expected: `sync_data` does not panic).
fn panicked() -> std::io::Error {
    std::io::Error::other("fsync thread panicked")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[test]
    fn answers_every_request_in_order_and_dedups_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = File::create(dir.path().join("a")).unwrap();
        f.write_all(b"x").unwrap();
        let f = DiskFile::new(f, dir.path().join("a"));
        let syncer = Syncer::start(0, slog::Logger::root(slog::Discard, slog::o!()));
        let order = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        for i in 0..10 {
            let order = order.clone();
            let tx = tx.clone();
            syncer.sync(SyncRequest::new(
                vec![f.clone(), f.clone()],
                Box::new(move |r| {
                    order.lock().unwrap().push(i);
                    tx.send(r).unwrap();
                }),
            ));
        }
        for _ in 0..10 {
            assert!(rx.recv_timeout(Duration::from_secs(10)).unwrap().is_ok());
        }
        assert_eq!(*order.lock().unwrap(), (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn a_failed_fsync_poisons_its_group_before_it_is_answered() {
        // fsync of a socket fails (EINVAL): a deterministic fsync error.
        let (sock, _peer) = std::os::unix::net::UnixStream::pair().unwrap();
        let bad = DiskFile::new(File::from(std::os::fd::OwnedFd::from(sock)), "socket".into());
        let dir = tempfile::tempdir().unwrap();
        let good = DiskFile::new(File::create(dir.path().join("a")).unwrap(), dir.path().join("a"));
        let syncer = Syncer::start(0, slog::Logger::root(slog::Discard, slog::o!()));
        let (sick, healthy) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let (tx, rx) = mpsc::channel();
        for (file, poison) in [(bad, &sick), (good, &healthy)] {
            let (tx, seen) = (tx.clone(), poison.clone());
            let done: SyncDone = Box::new(move |r| tx.send((r.is_ok(), seen.load(Ordering::Acquire))).unwrap());
            syncer.sync(SyncRequest { poison: Some(poison.clone()), ..SyncRequest::new(vec![file], done) });
        }
        let got: Vec<_> = (0..2).map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap()).collect();
        assert_eq!(got, vec![(false, true), (true, false)], "(ok, poisoned when answered) per request");
        let mut stats = SyncStats::default();
        let mut errors = Vec::new();
        let (sock, _peer) = std::os::unix::net::UnixStream::pair().unwrap();
        let bad = DiskFile::new(File::from(std::os::fd::OwnedFd::from(sock)), "socket".into());
        let reqs: Vec<_> = (0..2).map(|_| SyncRequest::new(vec![bad.clone()], Box::new(|_| {}))).collect();
        let results = sync_round(&reqs, &mut stats, &mut FsyncHelpers::default(), &mut |e| errors.push(e.clone()));
        assert_eq!(errors.len(), 1, "one failed fsync is reported once");
        assert_eq!((errors[0].op, errors[0].os_code), (DiskOp::Fsync, Some(22)), "EINVAL");
        assert!(results.iter().all(|r| r.as_ref().unwrap_err() == &errors[0]));
    }

    #[test]
    fn dedup_counts_one_fsync_per_file_per_round() {
        let dir = tempfile::tempdir().unwrap();
        let f = DiskFile::new(File::create(dir.path().join("a")).unwrap(), dir.path().join("a"));
        let mut reqs: Vec<SyncRequest> = (0..3).map(|_| SyncRequest::new(vec![f.clone()], Box::new(|_| {}))).collect();
        reqs[1].before = Err(DiskError::skipped());
        let mut stats = SyncStats::default();
        let mut reported = 0;
        let results = sync_round(&reqs, &mut stats, &mut FsyncHelpers::default(), &mut |_| reported += 1);
        assert_eq!(results, vec![Ok(()), Err(DiskError::skipped()), Ok(())]);
        assert_eq!((stats.fsyncs, reported), (1, 0));
    }

    #[test]
    fn a_round_of_many_files_fsyncs_each_once_in_parallel_and_keeps_each_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<_> = (0..20)
            .map(|i| {
                let p = dir.path().join(format!("f{i}"));
                DiskFile::new(File::create(&p).unwrap(), p)
            })
            .collect();
        let (sock, _peer) = std::os::unix::net::UnixStream::pair().unwrap();
        let bad = DiskFile::new(File::from(std::os::fd::OwnedFd::from(sock)), "socket".into());
        // Request k names files k and k+1 (shared between neighbours); request 5 also the bad one.
        let mut reqs: Vec<SyncRequest> =
            (0..19).map(|k| SyncRequest::new(vec![files[k].clone(), files[k + 1].clone()], Box::new(|_| {}))).collect();
        reqs[5].files.push(bad.clone());
        reqs[7].files.push(bad);
        let mut stats = SyncStats::default();
        let mut reported = Vec::new();
        let results = sync_round(&reqs, &mut stats, &mut FsyncHelpers::default(), &mut |e| reported.push(e.clone()));
        assert_eq!(stats.fsyncs, 21, "20 files and the socket, once each");
        assert_eq!(reported.len(), 1, "the failed fsync is reported once");
        for (k, r) in results.iter().enumerate() {
            assert_eq!(r.is_ok(), k != 5 && k != 7, "request {k}: {r:?}");
        }
    }

    #[test]
    fn fsync_helpers_start_once_and_serve_every_later_round() {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<_> = (0..2 * PARALLEL_FSYNCS)
            .map(|i| {
                let p = dir.path().join(format!("f{i}"));
                DiskFile::new(File::create(&p).unwrap(), p)
            })
            .collect();
        let mut helpers = FsyncHelpers::default();
        assert!(fsync_all(&files[..1], &mut helpers).iter().all(Result::is_ok));
        assert_eq!(helpers.senders.len(), 0, "a one-file round starts no helper");
        for _ in 0..3 {
            let outcomes = fsync_all(&files, &mut helpers);
            assert_eq!(outcomes.len(), files.len());
            assert!(outcomes.iter().all(Result::is_ok));
            assert_eq!(
                helpers.senders.len(),
                PARALLEL_FSYNCS - 1,
                "2 files per share: 8 shares, 7 helpers, started once, then reused"
            );
        }
        // A helper that is gone: its share is fsynced on the syncer's thread instead.
        let (dead, gone) = mpsc::channel();
        drop(gone);
        helpers.senders[0] = dead;
        let outcomes = fsync_all(&files, &mut helpers);
        assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    }
}
