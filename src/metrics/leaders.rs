//! Figures of leadership moves asked for by a preferred leader election (ElectLeaders, the
//! leader balancer): per node, the Raft leader transfers its preferred replicas asked for. Kept
//! under their own lock in the [`Registry`].

use std::collections::BTreeMap;

use super::exposition::Family;
use super::{registry, Registry};

#[derive(Debug, Default)]
pub(super) struct Figures {
    /// Per node: leader transfers asked for.
    transfers: BTreeMap<u64, u64>,
}

/// A replica on `node` asked its group's leader to transfer the leadership to it.
pub fn leader_transfer_requested(node: u64) {
    let mut g = registry().leaders.lock().unwrap_or_else(|p| p.into_inner());
    *g.transfers.entry(node).or_default() += 1;
}

/// The leader transfers `node` asked for so far.
pub fn leader_transfers_requested(node: u64) -> u64 {
    let g = registry().leaders.lock().unwrap_or_else(|p| p.into_inner());
    g.transfers.get(&node).copied().unwrap_or_default()
}

/// The leader families, for the nodes `keep` accepts.
pub(super) fn families(r: &Registry, keep: &dyn Fn(u64) -> bool) -> Vec<Family> {
    let f = r.leaders.lock().unwrap_or_else(|p| p.into_inner());
    let mut transfers = Family::counter(
        "chronik_leader_transfers_requested_total",
        "Raft leader transfers a preferred replica asked for (preferred leader elections).",
    );
    for (n, count) in f.transfers.iter().filter(|(n, _)| keep(**n)) {
        let n = n.to_string();
        transfers.value(&[("node", n.as_str())], *count as f64);
    }
    vec![transfers]
}
