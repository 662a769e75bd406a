//! Membership of the cluster, kept in `__meta`: every node's id, Raft (peer) address and Kafka
//! address ([`Member`]), the ids removed for good, the commands that change them ([`AddNode`],
//! [`RemoveNode`]), and the pure planner of `__meta`'s own configuration ([`meta_target`]): at
//! most `meta.max-voters` voters, every other member a learner, a learner promoted when a voter
//! leaves. The `__meta` leader drives its configuration toward that target with the planner
//! partition reassignment uses (`raft::membership::next_step_keeping`), one conf change per
//! entry. Peers learn each other's addresses from [`Members::nodes`] (the node actor hands them
//! to the peer transport); the configured `raft.peers` are only the seeds.

use std::collections::{BTreeMap, BTreeSet};

use raft::eraftpb::ConfState;

use crate::meta::state::{MetaResult, MetaState};

/// One node of the cluster; also its entry in the `__meta` snapshot (tag 21).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Member {
    #[prost(uint64, tag = "1")]
    pub node_id: u64,
    /// Its Raft (peer) address, `host:port`.
    #[prost(string, tag = "2")]
    pub raft_addr: String,
    /// Its advertised Kafka address, `host:port` (empty until it said).
    #[prost(string, tag = "3")]
    pub kafka_addr: String,
}

/// The members and the ids removed for good (a removed id is never a member again: a dead
/// node is replaced by a new id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Members {
    pub nodes: BTreeMap<u64, Member>,
    pub removed: BTreeSet<u64>,
}

/// Record a node (`--join`, `cluster add-node`, or a node's own announcement at start).
#[derive(Clone, PartialEq, prost::Message)]
pub struct AddNode {
    #[prost(message, optional, tag = "1")]
    pub member: Option<Member>,
    /// The node itself announces its address (at every start): it may change its address. A
    /// join or an operator's add-node may not take an id another address holds.
    #[prost(bool, tag = "2")]
    pub own: bool,
}

/// Remove a node from the cluster for good (after `cluster decommission` moved its replicas,
/// or `cluster remove-node` of a dead node).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RemoveNode {
    #[prost(uint64, tag = "1")]
    pub node_id: u64,
}

fn reject(message: String) -> MetaResult {
    MetaResult::Rejected { code: crate::error::code::INVALID_REQUEST, message }
}

/// Why `m` may not be added: a removed id, or an id another address holds.
pub fn check_add(members: &Members, m: &Member, own: bool) -> Result<(), String> {
    if m.node_id == 0 || m.raft_addr.is_empty() {
        return Err("a node needs an id above 0 and a Raft address".into());
    }
    if members.removed.contains(&m.node_id) {
        return Err(format!("node {} was removed from the cluster; join with a new id", m.node_id));
    }
    match members.nodes.get(&m.node_id) {
        Some(old) if !own && old.raft_addr != m.raft_addr => {
            Err(format!("node id {} is already a member at {}, not {}", m.node_id, old.raft_addr, m.raft_addr))
        }
        _ => Ok(()),
    }
}

/// Applies [`AddNode`]: idempotent for the same address.
pub fn add(state: &mut MetaState, a: &AddNode) -> MetaResult {
    let Some(m) = &a.member else { return reject("AddNode without a member".into()) };
    if let Err(e) = check_add(&state.members, m, a.own) {
        return reject(e);
    }
    let old_kafka = state.members.nodes.get(&m.node_id).map(|o| o.kafka_addr.clone()).unwrap_or_default();
    let kafka_addr = if m.kafka_addr.is_empty() { old_kafka } else { m.kafka_addr.clone() };
    state.members.nodes.insert(m.node_id, Member { kafka_addr, ..m.clone() });
    MetaResult::Done
}

/// Applies [`RemoveNode`]: the node leaves the members and the brokers, and its id is never
/// a member again. Its replicas were moved before (`decommission`) or are replaced by the
/// reassignments proposed with it (`remove-node`).
pub fn remove(state: &mut MetaState, r: &RemoveNode) -> MetaResult {
    state.members.nodes.remove(&r.node_id);
    state.members.removed.insert(r.node_id);
    state.brokers.remove(&r.node_id);
    MetaResult::Done
}

/// Every member as `__meta` sees it: the nodes of its configuration and the recorded members,
/// less the removed ids.
pub fn all_members(conf: &ConfState, members: &Members) -> BTreeSet<u64> {
    crate::raft::membership::members(conf)
        .into_iter()
        .chain(members.nodes.keys().copied())
        .filter(|id| !members.removed.contains(id))
        .collect()
}

/// The configuration `__meta` moves toward: (voters, learners). The voters that are still
/// members stay voters; while fewer than `max_voters`, learners that `caught_up` are promoted
/// (lowest id first); every other member is a learner. Voters are never demoted to keep the
/// count: a cluster started with more seeds than `max_voters` keeps them.
pub fn meta_target(
    conf: &ConfState,
    members: &Members,
    max_voters: usize,
    caught_up: &dyn Fn(u64) -> bool,
) -> (Vec<u64>, Vec<u64>) {
    let all = all_members(conf, members);
    let mut voters: Vec<u64> = conf.voters.iter().copied().filter(|v| all.contains(v)).collect();
    voters.sort_unstable();
    for id in &all {
        if voters.len() >= max_voters.max(1) {
            break;
        }
        if !voters.contains(id) && conf.learners.contains(id) && caught_up(*id) {
            voters.push(*id);
        }
    }
    let learners = all.iter().copied().filter(|id| !voters.contains(id)).collect();
    (voters, learners)
}

/// Why node `id` may not leave the cluster now (`cluster decommission|remove-node`): unknown,
/// or `__meta` would be left without a quorum of live voters. `live` are the nodes `__meta`'s
/// leader heard from recently.
pub fn check_remove(conf: &ConfState, members: &Members, id: u64, live: &BTreeSet<u64>) -> Result<(), String> {
    if !all_members(conf, members).contains(&id) {
        return Err(format!("node {id} is not a member of the cluster"));
    }
    if !conf.voters.contains(&id) {
        return Ok(());
    }
    // The voters after the removal: the others, plus a live learner promoted in its place.
    let mut after: Vec<u64> = conf.voters.iter().copied().filter(|v| *v != id).collect();
    if let Some(l) = conf.learners.iter().find(|l| live.contains(l) && !members.removed.contains(l)) {
        after.push(*l);
    }
    if after.is_empty() {
        return Err(format!("node {id} is the only __meta voter"));
    }
    let live_after = after.iter().filter(|v| live.contains(v)).count();
    if live_after <= after.len() / 2 {
        return Err(format!(
            "removing node {id} would leave __meta with {live_after} live voter(s) of {}: no quorum",
            after.len()
        ));
    }
    // While the change runs, the joint configuration needs a majority of the old voters too.
    let live_now = conf.voters.iter().filter(|v| **v != id && live.contains(v)).count();
    if live_now <= conf.voters.len() / 2 {
        return Err(format!(
            "__meta has {live_now} other live voter(s) of {}: a change cannot commit",
            conf.voters.len()
        ));
    }
    Ok(())
}

/// Where the replicas of node `gone` go: for each partition (group, replicas) holding it, the
/// replica list with `gone` replaced by the live broker outside it that holds the fewest
/// replicas (ties: lowest id), preferring a broker of the same rack as `gone` when racks are
/// set; `Err` names a partition with nowhere to go.
pub fn evacuate(
    state: &MetaState,
    gone: u64,
    live: &BTreeSet<u64>,
) -> Result<Vec<(crate::raft::GroupId, Vec<u64>)>, String> {
    let mut load: BTreeMap<u64, usize> = live.iter().filter(|b| **b != gone).map(|b| (*b, 0)).collect();
    for p in state.topics.values().flat_map(|t| &t.partitions) {
        for r in &p.replicas {
            if let Some(n) = load.get_mut(r) {
                *n += 1;
            }
        }
    }
    let rack = |b: u64| state.brokers.get(&b).and_then(|i| i.rack.clone());
    let mut plan = Vec::new();
    for (topic, t) in &state.topics {
        for (i, p) in t.partitions.iter().enumerate() {
            if !p.replicas.contains(&gone) {
                continue;
            }
            let pick = load
                .iter()
                .filter(|(b, _)| !p.replicas.contains(b))
                .min_by_key(|(b, n)| (rack(**b) != rack(gone), **n, **b))
                .map(|(b, _)| *b);
            let Some(to) = pick else {
                return Err(format!(
                    "partition {topic}-{i} has no live broker outside its replicas {:?} to move to",
                    p.replicas
                ));
            };
            *load.get_mut(&to).expect("picked from load") += 1;
            let replicas = p.replicas.iter().map(|r| if *r == gone { to } else { *r }).collect();
            plan.push((p.group, replicas));
        }
    }
    Ok(plan)
}

#[cfg(test)]
#[path = "members_tests.rs"]
mod tests;
