//! Figures of each node's poller threads (`raft::pollers`): how many partition groups run on
//! each; and of hibernation (`raft::hibernate`): quiet groups and ticks delivered. Read from the node's counters when rendered; kept under their own lock in the
//! [`Registry`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::exposition::Family;
use super::{registry, Registry};

#[derive(Debug, Default)]
pub(super) struct Figures {
    nodes: BTreeMap<u64, Arc<Vec<AtomicU64>>>,
    /// Per node: (quiet groups, ticks delivered to groups).
    quiet: BTreeMap<u64, (Arc<AtomicU64>, Arc<AtomicU64>)>,
}

/// Registers `node`'s hibernation counters (once, when the node starts).
pub fn set_liveness(node: u64, l: &crate::peer::liveness::Liveness) {
    let mut g = registry().pollers.lock().unwrap_or_else(|p| p.into_inner());
    g.quiet.insert(node, (l.quiet_counter(), l.ticked().clone()));
}

/// Registers `node`'s per-poller group counters (once, when the node starts).
pub fn set_pollers(node: u64, groups: Arc<Vec<AtomicU64>>) {
    let mut g = registry().pollers.lock().unwrap_or_else(|p| p.into_inner());
    g.nodes.insert(node, groups);
}

/// `node`'s quiet groups and the ticks its ticker delivered so far (tests, benchmarks).
pub fn hibernation(node: u64) -> Option<(u64, u64)> {
    let g = registry().pollers.lock().unwrap_or_else(|p| p.into_inner());
    g.quiet.get(&node).map(|(q, t)| (q.load(Ordering::Relaxed), t.load(Ordering::Relaxed)))
}

/// The nodes whose pollers are registered (the nodes this process runs), that `keep` accepts.
pub(super) fn node_ids(r: &Registry, keep: &dyn Fn(u64) -> bool) -> Vec<u64> {
    let f = r.pollers.lock().unwrap_or_else(|p| p.into_inner());
    f.nodes.keys().copied().filter(|n| keep(*n)).collect()
}

/// The poller family, for the nodes `keep` accepts.
pub(super) fn families(r: &Registry, keep: &dyn Fn(u64) -> bool) -> Vec<Family> {
    let f = r.pollers.lock().unwrap_or_else(|p| p.into_inner());
    let mut groups = Family::gauge(
        "chronik_poller_groups",
        "Partition groups running on each poller thread (raft.threads); a group always runs on the same one.",
    );
    for (n, counters) in f.nodes.iter().filter(|(n, _)| keep(**n)) {
        let n = n.to_string();
        for (i, c) in counters.iter().enumerate() {
            let i = i.to_string();
            groups.value(&[("node", n.as_str()), ("poller", i.as_str())], c.load(Ordering::Relaxed) as f64);
        }
    }
    let mut quiet = Family::gauge(
        "chronik_hibernating_groups",
        "Partition groups that are quiet (raft.hibernate): they neither tick nor heartbeat until woken.",
    );
    let mut ticks = Family::counter(
        "chronik_group_ticks_total",
        "Ticks the node's ticker delivered to its Raft groups (quiet groups get none).",
    );
    for (n, (q, t)) in f.quiet.iter().filter(|(n, _)| keep(**n)) {
        let n = n.to_string();
        quiet.value(&[("node", n.as_str())], q.load(Ordering::Relaxed) as f64);
        ticks.value(&[("node", n.as_str())], t.load(Ordering::Relaxed) as f64);
    }
    vec![groups, quiet, ticks]
}
