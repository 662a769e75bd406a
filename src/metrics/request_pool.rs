//! Figures of each node's request memory pool (`net::request_pool`, Kafka's
//! `queued.max.request.bytes`): the bytes of client requests held now, the pool's size and how
//! many requests waited for room. Read from the pools themselves when rendered; kept under their
//! own lock in the [`Registry`].

use std::collections::BTreeMap;
use std::sync::Arc;

use super::exposition::Family;
use super::{registry, Registry};
use crate::net::request_pool::RequestPool;

#[derive(Debug, Default)]
pub(super) struct Figures {
    pools: BTreeMap<u64, Arc<RequestPool>>,
}

/// Registers `node`'s request pool (once, when its listeners start).
pub fn set_request_pool(node: u64, pool: Arc<RequestPool>) {
    let mut g = registry().request_pools.lock().unwrap_or_else(|p| p.into_inner());
    g.pools.insert(node, pool);
}

/// The request pool families, for the nodes `keep` accepts.
pub(super) fn families(r: &Registry, keep: &dyn Fn(u64) -> bool) -> Vec<Family> {
    let f = r.request_pools.lock().unwrap_or_else(|p| p.into_inner());
    let mut in_use = Family::gauge(
        "chronik_request_pool_bytes_in_use",
        "Bytes of client requests read and not yet finished (queued-max-request-bytes bounds them).",
    );
    let mut size = Family::gauge(
        "chronik_request_pool_bytes_max",
        "The request memory pool's size (queued-max-request-bytes); absent when unbounded.",
    );
    let mut waits = Family::counter(
        "chronik_request_pool_waits_total",
        "Requests whose connection waited for room in the request memory pool before reading them.",
    );
    for (n, pool) in f.pools.iter().filter(|(n, _)| keep(**n)) {
        let n = n.to_string();
        let l = [("node", n.as_str())];
        in_use.value(&l, pool.in_use() as f64);
        if let Some(c) = pool.capacity() {
            size.value(&l, c as f64);
        }
        waits.value(&l, pool.waits() as f64);
    }
    vec![in_use, size, waits]
}
