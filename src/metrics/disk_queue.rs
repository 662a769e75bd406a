//! Figures of each node's disk queue (`raft::writer`): the write requests the disk writer holds
//! (queued, or written and waiting for their fsync) and the bytes they write. With the request
//! pool (`request_pool.rs`) they are the node's bytes in flight. Read from the writer's counters
//! when rendered; kept under their own lock in the [`Registry`].

use std::collections::BTreeMap;
use std::sync::Arc;

use super::exposition::Family;
use super::{registry, Registry};
use crate::raft::writer::Queued;

#[derive(Debug, Default)]
pub(super) struct Figures {
    queues: BTreeMap<u64, Arc<Queued>>,
}

/// Registers `node`'s disk writer queue (once, when the node starts).
pub fn set_disk_queue(node: u64, queued: Arc<Queued>) {
    let mut g = registry().disk_queues.lock().unwrap_or_else(|p| p.into_inner());
    g.queues.insert(node, queued);
}

/// The disk queue families, for the nodes `keep` accepts.
pub(super) fn families(r: &Registry, keep: &dyn Fn(u64) -> bool) -> Vec<Family> {
    let f = r.disk_queues.lock().unwrap_or_else(|p| p.into_inner());
    let mut requests = Family::gauge(
        "chronik_disk_queue_requests",
        "Write requests the disk writer holds: waiting to be written, or written and waiting for their fsync.",
    );
    let mut bytes = Family::gauge(
        "chronik_disk_queue_bytes",
        "Bytes the write requests the disk writer holds write (log entries not yet durable).",
    );
    for (n, q) in f.queues.iter().filter(|(n, _)| keep(**n)) {
        let n = n.to_string();
        let l = [("node", n.as_str())];
        let (r, b) = q.now();
        requests.value(&l, r as f64);
        bytes.value(&l, b as f64);
    }
    vec![requests, bytes]
}
