//! The node's log cleaner: `[cleaner] threads` OS threads (one by default) off every group actor,
//! fed through one mailbox ([`CleanerMsg`]). A partition actor sends a [`CleanJob`] (a read-only
//! description of its cleanable sealed segments) with a reply callback; a thread runs it
//! (`clean.rs`), paced by the shared I/O rate limit (`rate.rs`, sleeping on this thread only),
//! stores the partition's new checkpoint, counts the metrics and replies with the cleaned
//! segments' entry tables for the partition actor to install. A tick, a heartbeat or an apply
//! never waits for any of this. The threads run at a lower OS priority (`[cleaner] nice`), so a
//! busy machine spends its CPU on produce and fetch first and the cleaner takes what is idle.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use slog::Logger;

use crate::clock::SharedClock;

use super::clean::{clean, CleanJob, CleanOutcome};
use super::rate::Throttle;

/// How the cleaner runs (the `[cleaner]` section).
#[derive(Debug, Clone)]
pub struct CleanerOptions {
    pub threads: usize,
    pub io_max_bytes_per_second: Option<u64>,
    pub dedupe_buffer_size: usize,
    /// OS niceness of each thread (`[cleaner] nice`).
    pub nice: i32,
}

/// The answer to a job: what was cleaned, or why not.
pub type CleanReply = Result<CleanOutcome, String>;

/// The cleaner's one message enum.
pub enum CleanerMsg {
    /// Clean a partition; `reply` is called on the cleaner thread with the outcome.
    Clean { node: u64, name: String, job: Box<CleanJob>, reply: Box<dyn FnOnce(CleanReply) + Send> },
}

/// A handle on the node's cleaner threads (cloneable; the threads end when every handle is gone).
#[derive(Clone)]
pub struct Cleaner {
    tx: Sender<CleanerMsg>,
}

impl Cleaner {
    /// Starts the threads.
    pub fn start(opts: CleanerOptions, clock: SharedClock, logger: Logger) -> Cleaner {
        let (tx, rx) = channel::<CleanerMsg>();
        let rx = Arc::new(Mutex::new(rx));
        let throttle = Arc::new(Mutex::new(Throttle::new(opts.io_max_bytes_per_second, clock)));
        for i in 0..opts.threads.max(1) {
            let (rx, throttle, log) = (rx.clone(), throttle.clone(), logger.new(slog::o!("cleaner" => i)));
            let buffer = opts.dedupe_buffer_size / opts.threads.max(1);
            let nice = opts.nice;
            let spawned = std::thread::Builder::new().name(format!("log-cleaner-{i}")).spawn(move || {
                lower_priority(nice, &log);
                run(&rx, &throttle, buffer, &log)
            });
            if let Err(e) = spawned {
                slog::error!(logger, "cannot start a log cleaner thread"; "error" => %e);
            }
        }
        Cleaner { tx }
    }

    /// Queues a message; false when the cleaner has stopped.
    pub fn send(&self, msg: CleanerMsg) -> bool {
        self.tx.send(msg).is_ok()
    }
}

/// Sets this thread's niceness (`log::priority`): the cleaner then yields the CPU to every thread
/// at the default priority. A failure (a platform without per-thread priorities, a sandbox
/// refusing it) is logged and the cleaner runs anyway.
fn lower_priority(nice: i32, logger: &Logger) {
    match crate::log::priority::set_this_thread_nice(nice) {
        Ok(()) if nice != 0 => slog::debug!(logger, "cleaner thread niceness set"; "nice" => nice),
        Ok(()) => {}
        Err(e) => slog::warn!(logger, "cannot lower the cleaner thread's priority"; "nice" => nice, "error" => %e),
    }
}

fn run(rx: &Mutex<Receiver<CleanerMsg>>, throttle: &Mutex<Throttle>, buffer: usize, logger: &Logger) {
    loop {
        let msg = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
        let Ok(CleanerMsg::Clean { node, name, job, reply }) = msg else {
            return;
        };
        let mut pace = |bytes: u64| {
            let wait = throttle.lock().unwrap_or_else(|p| p.into_inner()).delay(bytes);
            if wait > Duration::ZERO {
                std::thread::sleep(wait);
            }
        };
        let started = std::time::Instant::now();
        let out = clean(&job, buffer, &mut pace).and_then(|o| {
            o.checkpoint.store(&job.dir)?;
            Ok(o)
        });
        match &out {
            Ok(o) => {
                // Wall-clock time of the run, throttle waits included (as Kafka's "processed in").
                let seconds = started.elapsed().as_secs_f64();
                crate::metrics::cleaner_run(node, o.bytes_read, o.bytes_written, o.records_removed, seconds);
                slog::info!(logger, "cleaned partition"; "partition" => &name, "segments" => o.cleaned.len(),
                    "read" => o.bytes_read, "written" => o.bytes_written, "records_removed" => o.records_removed,
                    "cleaned_offset" => o.checkpoint.cleaned_offset, "seconds" => format!("{seconds:.3}"));
            }
            Err(e) => {
                slog::warn!(logger, "cleaning failed; the segments stay as they are"; "partition" => &name, "error" => %e)
            }
        }
        reply(out.map_err(|e| e.to_string()));
    }
}
