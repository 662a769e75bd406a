//! The syncer: one worker per node that fsyncs the files Raft groups have written, in groups.
//!
//! Groups write entries to the page cache on their own actor and send a [`SyncRequest`] here.
//! The worker takes every request waiting in its mailbox, fsyncs each distinct file once, and then
//! answers every request, in arrival order. While one round of fsyncs runs, new requests pile up
//! and share the next round: that is the group commit across partitions. It runs on its own
//! thread so that a slow disk never delays a tick, a heartbeat or an apply.

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use slog::Logger;

/// Called with the outcome once the request's files are durable.
pub type SyncDone = Box<dyn FnOnce(Result<(), String>) + Send>;

/// One group's request: fsync these files, then call `done`.
pub struct SyncRequest {
    pub files: Vec<File>,
    pub done: SyncDone,
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
}

impl Syncer {
    /// Starts the syncer thread.
    pub fn start(node: u64, logger: Logger) -> Syncer {
        let (tx, rx) = mpsc::channel::<SyncRequest>();
        thread::Builder::new()
            .name("chronik-syncer".into())
            .spawn(move || run(node, rx, logger))
            .expect("spawn syncer thread");
        Syncer { tx }
    }

    /// Queues a request. If the syncer is gone (shutdown), `done` is called with an error.
    pub fn sync(&self, req: SyncRequest) {
        if let Err(mpsc::SendError(req)) = self.tx.send(req) {
            (req.done)(Err("syncer stopped".into()));
        }
    }
}

fn run(node: u64, rx: mpsc::Receiver<SyncRequest>, logger: Logger) {
    let mut stats = SyncStats::default();
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let started = Instant::now();
        let result = sync_round(&batch, &mut stats);
        stats.rounds += 1;
        stats.requests += batch.len() as u64;
        stats.last_round = started.elapsed();
        crate::metrics::registry().fsync(node, stats.last_round);
        if let Err(e) = &result {
            slog::error!(logger, "fsync failed"; "error" => e);
        }
        for req in batch {
            (req.done)(result.clone());
        }
    }
}

/// Fsyncs each distinct file (by device and inode) of the batch once.
fn sync_round(batch: &[SyncRequest], stats: &mut SyncStats) -> Result<(), String> {
    let mut seen = HashSet::new();
    for req in batch {
        for f in &req.files {
            let key = f.metadata().map(|m| (m.dev(), m.ino())).map_err(|e| e.to_string())?;
            if seen.insert(key) {
                f.sync_data().map_err(|e| e.to_string())?;
                stats.fsyncs += 1;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[test]
    fn answers_every_request_in_order_and_dedups_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = File::create(dir.path().join("a")).unwrap();
        f.write_all(b"x").unwrap();
        let syncer = Syncer::start(0, slog::Logger::root(slog::Discard, slog::o!()));
        let order = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        for i in 0..10 {
            let order = order.clone();
            let tx = tx.clone();
            syncer.sync(SyncRequest {
                files: vec![f.try_clone().unwrap(), f.try_clone().unwrap()],
                done: Box::new(move |r| {
                    order.lock().unwrap().push(i);
                    tx.send(r).unwrap();
                }),
            });
        }
        for _ in 0..10 {
            assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), Ok(()));
        }
        assert_eq!(*order.lock().unwrap(), (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn dedup_counts_one_fsync_per_file_per_round() {
        let dir = tempfile::tempdir().unwrap();
        let f = File::create(dir.path().join("a")).unwrap();
        let reqs: Vec<SyncRequest> =
            (0..3).map(|_| SyncRequest { files: vec![f.try_clone().unwrap()], done: Box::new(|_| {}) }).collect();
        let mut stats = SyncStats::default();
        sync_round(&reqs, &mut stats).unwrap();
        assert_eq!(stats.fsyncs, 1);
    }
}
