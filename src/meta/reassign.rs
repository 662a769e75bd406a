//! Partition reassignment in `__meta` (Kafka's model): per group in progress the original
//! replicas, the target, and the partition leader's last reported conf state. While one is in
//! progress the partition's replica list is the target followed by the replicas leaving (Kafka's
//! `target ∪ current`), so the nodes of both keep running the group; `adding` and `removing`
//! are derived as Kafka's `adding_replicas`/`removing_replicas`. The partition leader drives the
//! Raft membership change (`raft::membership`, `partition::reassign`) and reports its conf state
//! after every applied change (`ReassignProgress`); the report whose voters are the target (no
//! learner, not joint) completes it: the replica list becomes the target. A cancel makes the
//! original replicas the target, reverted the same way.

use crate::meta::state::{MetaResult, MetaState};
use crate::raft::GroupId;

/// One partition's reassignment; also its entry in the `__meta` snapshot (tag 20).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Reassignment {
    #[prost(uint64, tag = "1")]
    pub group: u64,
    /// The replicas before the reassignment started.
    #[prost(uint64, repeated, tag = "2")]
    pub original: Vec<u64>,
    #[prost(uint64, repeated, tag = "3")]
    pub target: Vec<u64>,
    /// Cancelled: the target is the original replicas again (not listed by
    /// ListPartitionReassignments any more).
    #[prost(bool, tag = "4")]
    pub cancelled: bool,
    /// The leader's last reported conf state and the index of the entry that made it: a replica
    /// that joins starts from it (`GroupStorage::initialize_conf`).
    #[prost(uint64, tag = "5")]
    pub conf_index: u64,
    #[prost(uint64, repeated, tag = "6")]
    pub voters: Vec<u64>,
    #[prost(uint64, repeated, tag = "7")]
    pub learners: Vec<u64>,
    #[prost(uint64, repeated, tag = "8")]
    pub voters_outgoing: Vec<u64>,
}

impl Reassignment {
    /// Kafka's `adding_replicas`: in the target, not in the original replicas.
    pub fn adding(&self) -> Vec<u64> {
        self.target.iter().copied().filter(|r| !self.original.contains(r)).collect()
    }

    /// Kafka's `removing_replicas`: in the original replicas, not in the target.
    pub fn removing(&self) -> Vec<u64> {
        self.original.iter().copied().filter(|r| !self.target.contains(r)).collect()
    }

    /// The leader's last reported conf state, if it names `node` (a replica that may join).
    pub fn conf_for(&self, node: u64) -> Option<(raft::eraftpb::ConfState, u64)> {
        let named = self.voters.iter().chain(&self.learners).chain(&self.voters_outgoing).any(|r| *r == node);
        (named && self.conf_index > 0).then(|| {
            let cs = raft::eraftpb::ConfState {
                voters: self.voters.clone(),
                learners: self.learners.clone(),
                voters_outgoing: self.voters_outgoing.clone(),
                ..Default::default()
            };
            (cs, self.conf_index)
        })
    }
}

/// Start (a target) or cancel (`cancel`) the reassignment of each group (AlterPartitionReassignments).
#[derive(Clone, PartialEq, prost::Message)]
pub struct AlterReassignments {
    #[prost(message, repeated, tag = "1")]
    pub items: Vec<ReassignItem>,
}

/// One partition of an [`AlterReassignments`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReassignItem {
    #[prost(uint64, tag = "1")]
    pub group: u64,
    #[prost(uint64, repeated, tag = "2")]
    pub target: Vec<u64>,
    #[prost(bool, tag = "3")]
    pub cancel: bool,
}

/// A partition leader's conf state after an applied conf change (or once it is the target).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReassignProgress {
    #[prost(uint64, tag = "1")]
    pub group: u64,
    #[prost(uint64, tag = "2")]
    pub conf_index: u64,
    #[prost(uint64, repeated, tag = "3")]
    pub voters: Vec<u64>,
    #[prost(uint64, repeated, tag = "4")]
    pub learners: Vec<u64>,
    #[prost(uint64, repeated, tag = "5")]
    pub voters_outgoing: Vec<u64>,
}

/// Why a target replica list is refused: Kafka's INVALID_REPLICA_ASSIGNMENT cases.
pub fn check_target(state: &MetaState, target: &[u64]) -> Result<(), String> {
    if target.is_empty() {
        return Err("The replica list must not be empty.".into());
    }
    let mut seen = std::collections::BTreeSet::new();
    for r in target {
        if !seen.insert(*r) {
            return Err(format!("The proposed assignment contains duplicate replicas: {target:?}."));
        }
        if !state.brokers.contains_key(r) {
            return Err(format!("The proposed assignment contains non-live brokers: {r}."));
        }
    }
    Ok(())
}

fn partition_mut(state: &mut MetaState, group: GroupId) -> Option<&mut crate::meta::state::PartitionInfo> {
    state.topics.values_mut().flat_map(|t| t.partitions.iter_mut()).find(|p| p.group == group)
}

/// Applies [`AlterReassignments`]: items that no longer check out are skipped.
pub fn alter(state: &mut MetaState, a: &AlterReassignments) -> MetaResult {
    for item in &a.items {
        let Some(current) = partition_mut(state, item.group).map(|p| p.replicas.clone()) else { continue };
        if item.cancel {
            if let Some(r) = state.reassignments.get_mut(&item.group).filter(|r| !r.cancelled) {
                r.target = r.original.clone();
                r.cancelled = true;
            }
            continue;
        }
        if check_target(state, &item.target).is_err() {
            continue;
        }
        let r = state.reassignments.entry(item.group).or_insert_with(|| Reassignment {
            group: item.group,
            original: current.clone(),
            ..Default::default()
        });
        r.target = item.target.clone();
        r.cancelled = false;
        let mut replicas = item.target.clone();
        replicas.extend(current.iter().filter(|c| !item.target.contains(c)));
        if let Some(p) = partition_mut(state, item.group) {
            p.replicas = replicas;
        }
    }
    MetaResult::Done
}

/// Applies [`ReassignProgress`]: keeps the newest conf state, and completes the reassignment
/// when the group's voters are the target.
pub fn progress(state: &mut MetaState, p: &ReassignProgress) -> MetaResult {
    let Some(r) = state.reassignments.get_mut(&p.group) else { return MetaResult::Done };
    if p.conf_index < r.conf_index {
        return MetaResult::Done;
    }
    r.conf_index = p.conf_index;
    r.voters = p.voters.clone();
    r.learners = p.learners.clone();
    r.voters_outgoing = p.voters_outgoing.clone();
    let mut voters = p.voters.clone();
    voters.sort_unstable();
    let mut target = r.target.clone();
    target.sort_unstable();
    if voters == target && p.learners.is_empty() && p.voters_outgoing.is_empty() {
        let target = r.target.clone();
        state.reassignments.remove(&p.group);
        if let Some(part) = partition_mut(state, p.group) {
            part.replicas = target;
        }
    }
    MetaResult::Done
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::command::{Cmd, MetaCommand};

    fn state() -> MetaState {
        crate::meta::test_image::image(&[None; 4], 1, 3)
    }

    fn alter_cmd(group: u64, target: &[u64], cancel: bool) -> MetaCommand {
        let items = vec![ReassignItem { group, target: target.to_vec(), cancel }];
        MetaCommand::new(Cmd::AlterReassignments(AlterReassignments { items }))
    }

    fn report(group: u64, idx: u64, voters: &[u64], learners: &[u64], out: &[u64]) -> MetaCommand {
        MetaCommand::new(Cmd::ReassignProgress(ReassignProgress {
            group,
            conf_index: idx,
            voters: voters.to_vec(),
            learners: learners.to_vec(),
            voters_outgoing: out.to_vec(),
        }))
    }

    #[test]
    fn a_reassignment_shows_the_union_then_completes_on_the_targets_conf() {
        let mut s = state();
        let p = s.topics["t"].partitions[0].clone();
        let original = p.replicas.clone();
        let new = *[1, 2, 3, 4].iter().find(|b| !original.contains(b)).unwrap();
        let mut target: Vec<u64> = original[1..].to_vec();
        target.push(new);
        s.apply(&alter_cmd(p.group, &target, false));
        let r = s.reassignments[&p.group].clone();
        assert_eq!((r.adding(), r.removing()), (vec![new], vec![original[0]]));
        let mut union = target.clone();
        union.push(original[0]);
        assert_eq!(s.topics["t"].partitions[0].replicas, union);
        // The learner's conf, reported by the leader: the new replica may join from it.
        s.apply(&report(p.group, 7, &original, &[new], &[]));
        assert_eq!(s.reassignments[&p.group].conf_for(new).unwrap().1, 7);
        // An older report never overwrites a newer one.
        s.apply(&report(p.group, 5, &original, &[], &[]));
        assert_eq!(s.reassignments[&p.group].conf_index, 7);
        s.apply(&report(p.group, 9, &target, &[], &original));
        assert!(s.reassignments.contains_key(&p.group), "joint is not done");
        s.apply(&report(p.group, 10, &target, &[], &[]));
        assert!(s.reassignments.is_empty());
        assert_eq!(s.topics["t"].partitions[0].replicas, target);
        // The snapshot carries it (checked in meta::snapshot's round trip too).
        s.apply(&alter_cmd(p.group, &original, false));
        let back = crate::meta::snapshot::decode(&crate::meta::snapshot::encode(&s)).unwrap();
        assert_eq!(back.reassignments, s.reassignments);
    }

    #[test]
    fn cancel_reverts_to_the_original_and_bad_targets_are_skipped() {
        let mut s = state();
        let p = s.topics["t"].partitions[0].clone();
        assert!(check_target(&s, &[]).is_err());
        assert!(check_target(&s, &[1, 1, 2]).unwrap_err().contains("duplicate"));
        assert!(check_target(&s, &[1, 9]).unwrap_err().contains("9"));
        s.apply(&alter_cmd(p.group, &[1, 9, 2], false));
        assert!(s.reassignments.is_empty());
        s.apply(&alter_cmd(p.group, &[4, 3, 2], false));
        s.apply(&alter_cmd(p.group, &[], true));
        let r = &s.reassignments[&p.group];
        assert!(r.cancelled);
        assert_eq!(r.target, p.replicas);
        let mut sorted = p.replicas.clone();
        sorted.sort_unstable();
        s.apply(&report(p.group, 3, &sorted, &[], &[]));
        assert!(s.reassignments.is_empty());
        assert_eq!(s.topics["t"].partitions[0].replicas, p.replicas);
    }
}
