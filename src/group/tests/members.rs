//! Static membership, groups stored in `__meta` and restored, OffsetCommit checks,
//! DescribeGroups/ListGroups/DeleteGroups.

use std::time::Duration;

use bytes::Bytes;

use super::*;

fn static_join(h: &mut Harness, member: &str, instance: &str) -> Waiter {
    h.join(join_req(member, Some(instance), &["range"]))
}

#[test]
fn static_member_rejoin_takes_a_new_id_without_a_rebalance() {
    let mut h = Harness::new();
    let (a, wa) = h.join_new(&["range"]); // dynamic, the leader
    let ws = static_join(&mut h, "", "instance-s");
    h.advance(Duration::from_secs(6));
    assert_eq!(h.join_answer(wa).unwrap().generation_id, 1);
    let s_old = h.join_answer(ws).unwrap();
    assert_eq!(s_old.error, code::NONE, "static members skip MEMBER_ID_REQUIRED");
    assert!(s_old.member_id.starts_with("instance-s-"));
    let s_old = s_old.member_id;
    let ss = h.sync(&s_old, 1, &[]);
    let sa = h.sync(&a, 1, &[(&a, "A"), (&s_old, "S")]);
    assert!(h.sync_answer(sa).is_some());
    assert_eq!(h.sync_answer(ss).unwrap().assignment, Bytes::from("S"));

    // The static member restarts: same instance id, no member id.
    let w = static_join(&mut h, "", "instance-s");
    let r = h.join_answer(w).expect("answered at once");
    assert_eq!(r.error, code::NONE);
    assert_ne!(r.member_id, s_old);
    assert_eq!(r.generation_id, 1, "no new generation");
    assert_eq!(r.leader, a);
    assert!(r.members.is_empty() && !r.skip_assignment);
    assert_eq!(h.state(), GroupState::Stable, "no rebalance");
    assert_eq!(h.heartbeat(&a, 1), code::NONE);
    let s_new = r.member_id;
    let mut old = who(&s_old, 1);
    old.group_instance_id = Some("instance-s".into());
    let now = h.now();
    assert_eq!(h.c.heartbeat(now, &old), code::FENCED_INSTANCE_ID);
    let mut new = who(&s_new, 1);
    new.group_instance_id = Some("instance-s".into());
    assert_eq!(h.c.heartbeat(now, &new), code::NONE);
    let s = h.sync(&s_new, 1, &[]);
    assert_eq!(h.sync_answer(s).unwrap().assignment, Bytes::from("S"), "keeps its assignment");
    // The old member id is fenced from joining too.
    let w = static_join(&mut h, &s_old, "instance-s");
    assert_eq!(h.join_answer(w).unwrap().error, code::FENCED_INSTANCE_ID);
}

#[test]
fn a_static_leader_rejoining_gets_the_members_and_skips_assignment() {
    let mut h = Harness::new();
    let w = static_join(&mut h, "", "lead");
    h.advance(Duration::from_secs(3));
    let old = h.join_answer(w).unwrap().member_id;
    let s = h.sync(&old, 1, &[(&old, "L")]);
    assert!(h.sync_answer(s).is_some());
    let w = static_join(&mut h, "", "lead");
    let r = h.join_answer(w).unwrap();
    assert_eq!(r.leader, r.member_id, "leadership moves to the new member id");
    assert!(r.skip_assignment);
    assert_eq!(r.members.len(), 1);
    assert_eq!(h.state(), GroupState::Stable);
}

#[test]
fn static_members_that_do_not_rejoin_stay_until_their_session_expires() {
    let mut h = Harness::new();
    let (a, wa) = h.join_new(&["range"]);
    let ws = static_join(&mut h, "", "s");
    h.advance(Duration::from_secs(6));
    h.join_answer(wa).unwrap();
    let s = h.join_answer(ws).unwrap().member_id;
    let sa = h.sync(&a, 1, &[]);
    let ss = h.sync(&s, 1, &[]);
    assert!(h.sync_answer(sa).is_some() && h.sync_answer(ss).is_some());
    // A dynamic member joins; the static one is slow to rejoin but still heartbeats.
    let (_c, wc) = h.join_new(&["range"]);
    let wa = h.rejoin(&a);
    let mut sref = who(&s, 1);
    sref.group_instance_id = Some("s".into());
    for _ in 0..3 {
        h.advance(Duration::from_secs(9));
        let now = h.now();
        assert_eq!(h.c.heartbeat(now, &sref), code::REBALANCE_IN_PROGRESS);
    }
    h.advance(Duration::from_secs(4));
    let r = h.join_answer(wa).expect("the rebalance timeout completed the join");
    assert_eq!(r.generation_id, 2);
    assert_eq!(r.members.len(), 3, "the static member keeps its place");
    assert!(h.join_answer(wc).is_some());
}

#[test]
fn offset_commit_checks() {
    let mut h = Harness::new();
    let now = h.now();
    assert_eq!(h.c.validate_commit(now, &who("", -1)), Ok(()), "a group without members stores offsets");
    assert_eq!(h.c.validate_commit(now, &who("m", 3)), Err(code::ILLEGAL_GENERATION), "unknown group");
    let (l, f) = h.stable_pair();
    let now = h.now();
    assert_eq!(h.c.validate_commit(now, &who(&l, 1)), Ok(()));
    assert_eq!(h.c.validate_commit(now, &who("", -1)), Err(code::UNKNOWN_MEMBER_ID), "the group has members");
    assert_eq!(h.c.validate_commit(now, &who("x", 1)), Err(code::UNKNOWN_MEMBER_ID));
    // During PreparingRebalance, commits of the current generation are still accepted (a
    // consumer commits before it rejoins).
    h.join_new(&["range"]);
    assert_eq!(h.c.validate_commit(now, &who(&f, 1)), Ok(()));
}

#[test]
fn describe_list_and_delete() {
    let mut h = Harness::new();
    let (l, _f) = h.stable_pair();
    let d = h.c.describe("g").unwrap();
    assert_eq!(d.state, GroupState::Stable);
    assert_eq!((d.protocol_type.as_str(), d.protocol.as_str()), ("consumer", "range"));
    assert_eq!(d.members.len(), 2);
    let m = d.members.iter().find(|m| m.member_id == l).unwrap();
    assert_eq!(m.assignment, Bytes::from("for-leader"));
    assert_eq!(m.metadata, Bytes::from("meta-range"));
    assert_eq!(m.client_host, "/127.0.0.1");
    assert!(h.c.describe("other").is_none());
    let list = h.c.list();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].state, GroupState::Stable);

    assert_eq!(h.c.delete("g", true), code::NON_EMPTY_GROUP);
    assert_eq!(h.c.delete("nope", false), code::GROUP_ID_NOT_FOUND);
    assert_eq!(h.c.delete("offsets-only", true), code::NONE);
    let now = h.now();
    let members: Vec<_> = h.c.group("g").unwrap().member_ids();
    let leaving: Vec<_> =
        members.into_iter().map(|member_id| LeavingMember { member_id, group_instance_id: None }).collect();
    h.c.leave(now, "g", &leaving);
    assert_eq!(h.state(), GroupState::Empty);
    let d = h.c.describe("g").unwrap();
    assert!(d.members.is_empty() && d.protocol.is_empty());
    assert_eq!(h.c.delete("g", false), code::NONE);
    assert!(h.c.group("g").is_none());
}

#[test]
fn empty_groups_are_forgotten_after_a_while() {
    let mut h = Harness::new();
    let (a, wa) = h.join_new(&["range"]);
    h.advance(Duration::from_secs(3));
    h.join_answer(wa).unwrap();
    let now = h.now();
    h.c.leave(now, "g", &[LeavingMember { member_id: a, group_instance_id: None }]);
    h.advance(Duration::from_secs(599));
    assert!(h.c.group("g").is_some());
    h.advance(Duration::from_secs(2));
    assert!(h.c.group("g").is_none());
}

#[test]
fn a_rebalance_is_stored_and_a_restarted_coordinator_restores_it() {
    let mut h = Harness::new();
    let (l, f) = h.stable_pair();
    let snap = h.stored.last().expect("the completed sync stored the group").clone();
    assert_eq!((snap.generation, snap.protocol.as_str(), snap.leader.as_str()), (1, "range", l.as_str()));
    assert_eq!(snap.members.len(), 2);
    let fm = snap.members.iter().find(|m| m.member_id == f).unwrap();
    assert_eq!(fm.assignment, Bytes::from("for-follower"));
    assert_eq!(fm.subscription, Bytes::from("meta-range"));
    assert_eq!(fm.session_timeout_ms, 10_000);

    // A new coordinator (after a restart) reads the group back: the members carry on.
    let mut r = Harness::new();
    let now = r.now();
    r.c.restore(now, &snap);
    assert_eq!(r.state(), GroupState::Stable);
    assert_eq!(r.heartbeat(&l, 1), code::NONE);
    assert_eq!(r.heartbeat(&f, 1), code::NONE);
    assert_eq!(r.c.validate_commit(now, &who(&f, 1)), Ok(()));
    let s = r.sync(&f, 1, &[]);
    assert_eq!(r.sync_answer(s).unwrap().assignment, Bytes::from("for-follower"));
    // Restoring again does not replace the live group.
    let mut older = snap.clone();
    older.generation = 0;
    r.c.restore(now, &older);
    assert_eq!(r.c.group("g").unwrap().generation(), 1);
    // A member that never comes back expires; the other rejoins into generation 2.
    for _ in 0..11 {
        r.advance(Duration::from_secs(1));
        assert_ne!(r.heartbeat(&l, 1), code::UNKNOWN_MEMBER_ID);
    }
    let w = r.rejoin(&l);
    let j = r.join_answer(w).unwrap();
    assert_eq!((j.generation_id, j.members.len()), (2, 1));
}

#[test]
fn an_emptied_group_is_stored_with_its_generation() {
    let mut h = Harness::new();
    let (l, f) = h.stable_pair();
    let now = h.now();
    let leaving = [
        LeavingMember { member_id: l, group_instance_id: None },
        LeavingMember { member_id: f, group_instance_id: None },
    ];
    h.c.leave(now, "g", &leaving);
    h.collect();
    let snap = h.stored.last().unwrap().clone();
    assert_eq!((snap.generation, snap.members.len(), snap.protocol.as_str()), (2, 0, ""));
    let mut r = Harness::new();
    r.c.restore(now, &snap);
    assert_eq!(r.state(), GroupState::Empty);
    assert_eq!(r.c.group("g").unwrap().generation(), 2, "generations keep counting up");
}

#[test]
fn a_static_member_replacement_is_stored_before_it_is_answered() {
    let mut h = Harness::new();
    let w = static_join(&mut h, "", "s");
    h.advance(Duration::from_secs(3));
    let old = h.join_answer(w).unwrap().member_id;
    let s = h.sync(&old, 1, &[(&old, "S")]);
    assert!(h.sync_answer(s).is_some());
    let before = h.stored.len();
    let w = static_join(&mut h, "", "s");
    let r = h.join_answer(w).unwrap();
    assert_eq!(h.stored.len(), before + 1);
    let snap = h.stored.last().unwrap();
    assert_eq!(snap.members[0].member_id, r.member_id);
    assert_eq!(snap.members[0].group_instance_id.as_deref(), Some("s"));
    assert_eq!(snap.members[0].assignment, Bytes::from("S"));
}
