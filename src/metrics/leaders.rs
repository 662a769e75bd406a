//! Figures of leadership moves asked for by a preferred leader election (ElectLeaders, the
//! leader balancer): per node, the Raft leader transfers its preferred replicas asked for, and
//! the automatic balancer's rounds and the elections they asked for. Kept under their own lock
//! in the [`Registry`].

use std::collections::BTreeMap;

use super::exposition::Family;
use super::{registry, Registry};

#[derive(Debug, Default)]
pub(super) struct Figures {
    /// Per node: leader transfers asked for.
    transfers: BTreeMap<u64, u64>,
    /// Per node: balancer rounds run (as `__meta` leader) and elections they asked for.
    rounds: BTreeMap<u64, (u64, u64)>,
}

/// The balancer on `node` ran a round that asked for `elections` preferred leader elections.
pub fn balancer_round(node: u64, elections: usize) {
    let mut g = registry().leaders.lock().unwrap_or_else(|p| p.into_inner());
    let r = g.rounds.entry(node).or_default();
    r.0 += 1;
    r.1 += elections as u64;
}

/// The balancer rounds `node` ran and the elections they asked for.
pub fn balancer_figures(node: u64) -> (u64, u64) {
    let g = registry().leaders.lock().unwrap_or_else(|p| p.into_inner());
    g.rounds.get(&node).copied().unwrap_or_default()
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
    let mut rounds = Family::counter(
        "chronik_leader_balancer_rounds_total",
        "Rounds of the automatic leader balancer this node ran as the __meta leader.",
    );
    let mut elections = Family::counter(
        "chronik_leader_balancer_elections_total",
        "Preferred leader elections the automatic leader balancer asked for.",
    );
    for (n, (r, e)) in f.rounds.iter().filter(|(n, _)| keep(**n)) {
        let n = n.to_string();
        rounds.value(&[("node", n.as_str())], *r as f64);
        elections.value(&[("node", n.as_str())], *e as f64);
    }
    vec![transfers, rounds, elections]
}
