//! Figures of each node's replication throttles (`peer::throttle`): the bytes counted against
//! the leader and the follower quota. Read from the node's shared throttle when rendered; kept
//! under their own lock in the [`Registry`].

use std::collections::BTreeMap;
use std::sync::Arc;

use super::exposition::Family;
use super::{registry, Registry};
use crate::peer::throttle::ReplicationThrottle;

#[derive(Debug, Default)]
pub(super) struct Figures {
    nodes: BTreeMap<u64, Arc<ReplicationThrottle>>,
}

/// Registers `node`'s replication throttle (once, when the node starts).
pub fn set_throttle(node: u64, throttle: Arc<ReplicationThrottle>) {
    let mut f = registry().throttles.lock().unwrap_or_else(|p| p.into_inner());
    f.nodes.insert(node, throttle);
}

/// The throttle family, for the nodes `keep` accepts.
pub(super) fn families(r: &Registry, keep: &dyn Fn(u64) -> bool) -> Vec<Family> {
    let f = r.throttles.lock().unwrap_or_else(|p| p.into_inner());
    let mut bytes = Family::counter(
        "chronik_replication_throttled_bytes_total",
        "Catch-up replication bytes (appends, and snapshot chunks on the leader side) counted against \
         Kafka's replication throttle quotas \
         (leader.replication.throttled.rate, follower.replication.throttled.rate), by side.",
    );
    for (n, t) in f.nodes.iter().filter(|(n, _)| keep(**n)) {
        let n = n.to_string();
        let (leader, follower) = t.throttled_bytes();
        bytes.value(&[("node", n.as_str()), ("side", "leader")], leader as f64);
        bytes.value(&[("node", n.as_str()), ("side", "follower")], follower as f64);
    }
    vec![bytes]
}
