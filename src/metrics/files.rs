//! Figures of the fd budget (`log::file_cache`): the descriptors the process holds, and the
//! cache of open segment and Raft state files (its size, how many are open, hits, misses and
//! closes). Process-wide (the descriptor limit is per process): every node this process runs
//! shows the same figures under its `node` label. Read from the cache when rendered.

use super::exposition::Family;
use super::Registry;
use crate::log::file_cache::{open_fds, FileCache};

/// The fd budget families, for the nodes `keep` accepts.
pub(super) fn families(r: &Registry, keep: &dyn Fn(u64) -> bool) -> Vec<Family> {
    let nodes: Vec<String> = super::pollers::node_ids(r, keep).iter().map(u64::to_string).collect();
    let fig = FileCache::global().figures();
    let fds_now = open_fds();
    let mut fds = Family::gauge(
        "chronik_open_files",
        "File descriptors the process holds now (/proc/self/fd): files, sockets, event loops.",
    );
    if let Some(n) = fds_now {
        nodes.iter().for_each(|node| fds.value(&[("node", node)], n as f64));
    }
    let mut cap = Family::gauge(
        "chronik_file_cache_capacity",
        "The fd budget (storage.max-open-files): segment and Raft state files kept open at once.",
    );
    nodes.iter().for_each(|node| cap.value(&[("node", node)], fig.capacity as f64));
    let mut open = Family::gauge(
        "chronik_file_cache_open",
        "Segment and Raft state files open now in the fd budget's cache (files in use or with an fsync owed may exceed it).",
    );
    nodes.iter().for_each(|node| open.value(&[("node", node)], fig.open as f64));
    let mut hits = Family::counter(
        "chronik_file_cache_hits_total",
        "Uses of a segment or Raft state file that found its descriptor open.",
    );
    nodes.iter().for_each(|node| hits.value(&[("node", node)], fig.hits as f64));
    let mut misses = Family::counter(
        "chronik_file_cache_misses_total",
        "Uses of a segment or Raft state file that had to open it again (the cache had closed it).",
    );
    nodes.iter().for_each(|node| misses.value(&[("node", node)], fig.misses as f64));
    let mut evictions = Family::counter(
        "chronik_file_cache_evictions_total",
        "Descriptors the fd budget's cache closed (least recently used first).",
    );
    nodes.iter().for_each(|node| evictions.value(&[("node", node)], fig.evictions as f64));
    vec![fds, cap, open, hits, misses, evictions]
}
