//! Tests of `meta::members`: join and removal commands, the `__meta` voter planner, the refusals
//! and the evacuation plan.

use super::*;
use crate::meta::command::{Cmd, MetaCommand};
use crate::raft::membership::{next_step_keeping, GroupView, Step};

fn member(id: u64, addr: &str) -> Member {
    Member { node_id: id, raft_addr: addr.into(), kafka_addr: String::new() }
}

fn add_cmd(id: u64, addr: &str, own: bool) -> MetaCommand {
    MetaCommand::new(Cmd::AddNode(AddNode { member: Some(member(id, addr)), own }))
}

fn conf(voters: &[u64], learners: &[u64]) -> ConfState {
    ConfState { voters: voters.to_vec(), learners: learners.to_vec(), ..Default::default() }
}

#[test]
fn add_is_idempotent_and_refuses_another_address_or_a_removed_id() {
    let mut s = MetaState::new();
    assert_eq!(s.apply(&add_cmd(4, "h:4", false)), MetaResult::Done);
    assert_eq!(s.apply(&add_cmd(4, "h:4", false)), MetaResult::Done);
    let r = s.apply(&add_cmd(4, "h:5", false));
    assert!(matches!(&r, MetaResult::Rejected { message, .. } if message.contains("already a member at h:4")), "{r:?}");
    // The node itself may move.
    assert_eq!(s.apply(&add_cmd(4, "h:5", true)), MetaResult::Done);
    assert_eq!(s.members.nodes[&4].raft_addr, "h:5");
    s.apply(&MetaCommand::new(Cmd::RemoveNode(RemoveNode { node_id: 4 })));
    assert!(s.members.nodes.is_empty());
    assert!(matches!(s.apply(&add_cmd(4, "h:5", true)), MetaResult::Rejected { .. }));
    assert!(matches!(s.apply(&add_cmd(0, "h:1", false)), MetaResult::Rejected { .. }));
    // The snapshot carries members and removed ids.
    s.apply(&add_cmd(5, "h:6", false));
    let back = crate::meta::snapshot::decode(&crate::meta::snapshot::encode(&s)).unwrap();
    assert_eq!(back.members, s.members);
}

#[test]
fn a_removed_broker_cannot_register_again() {
    let mut s = crate::meta::test_image::image(&[None; 4], 1, 3);
    assert!(s.brokers.contains_key(&4));
    s.apply(&MetaCommand::new(Cmd::RemoveNode(RemoveNode { node_id: 4 })));
    assert!(!s.brokers.contains_key(&4));
    let reg = crate::meta::command::RegisterBroker { node_id: 4, host: "h".into(), port: 1, ..Default::default() };
    assert!(matches!(s.apply(&MetaCommand::new(Cmd::RegisterBroker(reg))), MetaResult::Rejected { .. }));
    assert!(!s.brokers.contains_key(&4));
}

#[test]
fn meta_keeps_at_most_max_voters_and_promotes_a_learner_when_a_voter_leaves() {
    let mut m = Members::default();
    for id in 1..=5 {
        m.nodes.insert(id, member(id, "x"));
    }
    let yes = |_| true;
    // Three seeds voting, 4 and 5 recorded: they become learners, voters stay 3.
    assert_eq!(meta_target(&conf(&[1, 2, 3], &[]), &m, 3, &yes), (vec![1, 2, 3], vec![4, 5]));
    // Voter 2 removed: a caught-up learner takes its place; one that is behind does not.
    m.removed.insert(2);
    assert_eq!(meta_target(&conf(&[1, 2, 3], &[4, 5]), &m, 3, &yes), (vec![1, 3, 4], vec![5]));
    assert_eq!(meta_target(&conf(&[1, 2, 3], &[4, 5]), &m, 3, &|id| id == 5), (vec![1, 3, 5], vec![4]));
    assert_eq!(meta_target(&conf(&[1, 2, 3], &[4, 5]), &m, 3, &|_| false), (vec![1, 3], vec![4, 5]));
    // Five seeds are never demoted to three.
    assert_eq!(meta_target(&conf(&[1, 3, 4, 5], &[]), &m, 3, &yes), (vec![1, 3, 4, 5], vec![]));
}

#[test]
fn the_planner_adds_kept_learners_and_replaces_a_voter_in_one_joint_change() {
    let matched: std::collections::BTreeMap<u64, u64> = [(1, 10), (2, 10), (3, 10), (4, 10)].into();
    let view = |cs| GroupView { leader: 1, conf: cs, matched: &matched, last_index: 10, pending: false, gap: 64 };
    let c = conf(&[1, 2, 3], &[]);
    assert_eq!(next_step_keeping(&view(&c), &[1, 2, 3], &[4]), Step::AddLearner(4));
    let c = conf(&[1, 2, 3], &[4]);
    assert_eq!(next_step_keeping(&view(&c), &[1, 2, 3], &[4]), Step::Done, "a kept learner stays");
    assert_eq!(next_step_keeping(&view(&c), &[1, 3, 4], &[]), Step::Promote { add: vec![4], remove: vec![2] });
    // Removing a learner.
    assert_eq!(next_step_keeping(&view(&c), &[1, 2, 3], &[]), Step::RemoveLearner(4));
}

#[test]
fn removal_refusals_keep_a_quorum_of_live_voters() {
    let m = Members::default();
    let live: BTreeSet<u64> = [1, 2, 3, 4].into();
    assert!(check_remove(&conf(&[1, 2, 3], &[4]), &m, 9, &live).unwrap_err().contains("not a member"));
    assert_eq!(check_remove(&conf(&[1, 2, 3], &[4]), &m, 4, &live), Ok(()));
    assert_eq!(check_remove(&conf(&[1, 2, 3], &[4]), &m, 1, &live), Ok(()));
    // 3 voters, node 3 dead: removing 1 leaves {2,3} with one live voter.
    let live: BTreeSet<u64> = [1, 2].into();
    assert!(check_remove(&conf(&[1, 2, 3], &[]), &m, 1, &live).unwrap_err().contains("no quorum"));
    // Removing the dead one is fine: {1,2} both live.
    assert_eq!(check_remove(&conf(&[1, 2, 3], &[]), &m, 3, &live), Ok(()));
    assert!(check_remove(&conf(&[1], &[]), &m, 1, &[1].into()).unwrap_err().contains("only"));
}

#[test]
fn evacuation_replaces_the_node_on_the_least_loaded_live_broker() {
    let s = crate::meta::test_image::image(&[None; 4], 4, 3);
    let live: BTreeSet<u64> = [1, 2, 3, 4].into();
    let plan = evacuate(&s, 1, &live).unwrap();
    let holding = s.topics["t"].partitions.iter().filter(|p| p.replicas.contains(&1)).count();
    assert_eq!(plan.len(), holding);
    for (_, replicas) in &plan {
        assert!(!replicas.contains(&1));
        assert_eq!(replicas.len(), 3);
        let distinct: BTreeSet<u64> = replicas.iter().copied().collect();
        assert_eq!(distinct.len(), 3);
    }
    // Nowhere to go: only the three replicas' nodes live.
    let live: BTreeSet<u64> = [1, 2, 3].into();
    let s3 = crate::meta::test_image::image(&[None; 3], 1, 3);
    assert!(evacuate(&s3, 1, &live).unwrap_err().contains("no live broker"));
}
