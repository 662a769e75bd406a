//! The log cleaner's figures (`log::cleaner`): per node, bytes read and written and runs; per
//! partition, the dirty ratio and the cleaner lag the group actor computes when it plans a run.
//! Kept under their own lock in the [`Registry`] so the cleaner thread never takes the main one.

use std::collections::BTreeMap;

use super::exposition::Family;
use super::{registry, Registry};

#[derive(Debug, Default)]
pub(super) struct Figures {
    /// node → (bytes read, bytes written, runs, records removed, seconds)
    nodes: BTreeMap<u64, (u64, u64, u64, u64, f64)>,
    /// (node, group) → (dirty ratio, lag seconds)
    partitions: BTreeMap<(u64, String), (f64, f64)>,
}

impl Registry {
    fn cleaner_with<T>(&self, f: impl FnOnce(&mut Figures) -> T) -> T {
        f(&mut self.cleaner.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

fn with<T>(f: impl FnOnce(&mut Figures) -> T) -> T {
    registry().cleaner_with(f)
}

/// One cleaning run on `node` read `read` bytes, wrote `written`, removed `records` and took
/// `seconds`.
pub fn cleaner_run(node: u64, read: u64, written: u64, records: u64, seconds: f64) {
    with(|f| {
        let e = f.nodes.entry(node).or_default();
        e.0 += read;
        e.1 += written;
        e.2 += 1;
        e.3 += records;
        e.4 += seconds;
    });
}

/// Bytes the cleaner of `node` has read (cleaned) so far.
pub fn cleaner_bytes_read(node: u64) -> u64 {
    with(|f| f.nodes.get(&node).map_or(0, |e| e.0))
}

/// The dirty ratio and cleaner lag of a compacted partition (`group`: `topic/partition`).
pub fn cleaner_partition(node: u64, group: &str, dirty_ratio: f64, lag_seconds: f64) {
    with(|f| f.partitions.insert((node, group.to_string()), (dirty_ratio, lag_seconds)));
}

/// Forgets a partition (stopped, or no longer compacted).
pub fn cleaner_forget(node: u64, group: &str) {
    with(|f| f.partitions.remove(&(node, group.to_string())));
}

/// The cleaner families, for the nodes `keep` accepts.
pub(super) fn families(r: &Registry, keep: &dyn Fn(u64) -> bool) -> Vec<Family> {
    r.cleaner_with(|f| {
        let mut read = Family::counter(
            "chronik_cleaner_bytes_read_total",
            "Bytes of sealed segments the log cleaner read (cleaned).",
        );
        let mut written =
            Family::counter("chronik_cleaner_bytes_written_total", "Bytes of cleaned segments the log cleaner wrote.");
        let mut runs = Family::counter("chronik_cleaner_runs_total", "Cleaning runs of the log cleaner.");
        let mut removed = Family::counter("chronik_cleaner_records_removed_total", "Records the log cleaner removed.");
        let mut seconds = Family::counter(
            "chronik_cleaner_seconds_total",
            "Wall-clock seconds the log cleaner's runs took, throttle waits included.",
        );
        for (n, (r, w, k, x, s)) in f.nodes.iter().filter(|(n, _)| keep(**n)) {
            let l = [("node", n.to_string())];
            let l = [(l[0].0, l[0].1.as_str())];
            read.value(&l, *r as f64);
            written.value(&l, *w as f64);
            runs.value(&l, *k as f64);
            removed.value(&l, *x as f64);
            seconds.value(&l, *s);
        }
        let mut ratio = Family::gauge(
            "chronik_cleaner_dirty_ratio",
            "Dirty bytes / cleanable bytes of a compacted partition (Kafka's cleanable ratio).",
        );
        let mut lag = Family::gauge(
            "chronik_cleaner_lag_seconds",
            "Age of the oldest uncleaned batch in the cleanable part of a compacted partition.",
        );
        for ((n, g), (r, s)) in f.partitions.iter().filter(|((n, _), _)| keep(*n)) {
            let n = n.to_string();
            let l = [("node", n.as_str()), ("group", g.as_str())];
            ratio.value(&l, *r);
            lag.value(&l, *s);
        }
        vec![read, written, runs, removed, seconds, ratio, lag]
    })
}
