//! Figures of partition snapshots that carry segment files (`partition::snapshot`): per node,
//! chunks and bytes a leader served to followers, and snapshots a follower installed. Kept
//! under their own lock in the [`Registry`].

use std::collections::BTreeMap;

use super::exposition::Family;
use super::{registry, Registry};

/// Per node: (chunks sent, bytes sent, snapshots installed, bytes installed).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotFigures {
    pub chunks_sent: u64,
    pub bytes_sent: u64,
    pub installed: u64,
    pub bytes_installed: u64,
}

#[derive(Debug, Default)]
pub(super) struct Figures {
    nodes: BTreeMap<u64, SnapshotFigures>,
}

fn with<T>(f: impl FnOnce(&mut SnapshotFigures) -> T, node: u64) -> T {
    let r = registry();
    let mut g = r.snapshots.lock().unwrap_or_else(|p| p.into_inner());
    f(g.nodes.entry(node).or_default())
}

/// `node` served one chunk of `bytes` of a snapshot's files.
pub fn snapshot_chunk_sent(node: u64, bytes: u64) {
    with(
        |s| {
            s.chunks_sent += 1;
            s.bytes_sent += bytes;
        },
        node,
    );
}

/// `node` installed a snapshot whose files hold `bytes`.
pub fn snapshot_installed(node: u64, bytes: u64) {
    with(
        |s| {
            s.installed += 1;
            s.bytes_installed += bytes;
        },
        node,
    );
}

/// The figures of `node` so far.
pub fn snapshot_figures(node: u64) -> SnapshotFigures {
    with(|s| *s, node)
}

/// The snapshot families, for the nodes `keep` accepts.
pub(super) fn families(r: &Registry, keep: &dyn Fn(u64) -> bool) -> Vec<Family> {
    let f = r.snapshots.lock().unwrap_or_else(|p| p.into_inner());
    let mut chunks = Family::counter(
        "chronik_snapshot_chunks_sent_total",
        "Chunks of snapshot segment files a leader served to followers.",
    );
    let mut bytes =
        Family::counter("chronik_snapshot_bytes_sent_total", "Bytes of snapshot segment files a leader served.");
    let mut installed = Family::counter(
        "chronik_snapshot_installed_total",
        "Snapshots with segment files a follower received and installed.",
    );
    for (n, s) in f.nodes.iter().filter(|(n, _)| keep(**n)) {
        let n = n.to_string();
        let l = [("node", n.as_str())];
        chunks.value(&l, s.chunks_sent as f64);
        bytes.value(&l, s.bytes_sent as f64);
        installed.value(&l, s.installed as f64);
    }
    vec![chunks, bytes, installed]
}
