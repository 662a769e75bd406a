//! Consumer groups over the wire against an in-process node: two members join, sync,
//! heartbeat and leave; committed offsets are fetched back, survive a restart, and go away with
//! their topic; group membership survives a restart.

mod common;

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use common::{start_node, test_config, Client};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn gid(v: &str) -> GroupId {
    GroupId(s(v))
}

fn create_topic(c: &mut Client, topic: &str, partitions: i32) {
    let req = CreateTopicsRequest::default().with_timeout_ms(10_000).with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(TopicName(s(topic)))
            .with_num_partitions(partitions)
            .with_replication_factor(1),
    ]);
    let resp: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &req);
    assert_eq!(resp.topics[0].error_code, 0);
}

fn join(c: &mut Client, group: &str, member: &str) -> JoinGroupResponse {
    let req = JoinGroupRequest::default()
        .with_group_id(gid(group))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(20_000)
        .with_member_id(s(member))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(Bytes::from(format!("sub-{member}")))]);
    c.call(ApiKey::JoinGroup, 9, &req)
}

/// The v4+ join: MEMBER_ID_REQUIRED first, then the join with the given id (which parks).
fn member_id(c: &mut Client, group: &str) -> String {
    let r = join(c, group, "");
    assert_eq!(r.error_code, 79);
    r.member_id.to_string()
}

fn sync(c: &mut Client, group: &str, member: &str, generation: i32, assignments: &[(&str, &str)]) -> SyncGroupResponse {
    let req = SyncGroupRequest::default()
        .with_group_id(gid(group))
        .with_generation_id(generation)
        .with_member_id(s(member))
        .with_protocol_type(Some(s("consumer")))
        .with_protocol_name(Some(s("range")))
        .with_assignments(
            assignments
                .iter()
                .map(|(m, a)| {
                    sync_group_request::SyncGroupRequestAssignment::default()
                        .with_member_id(s(m))
                        .with_assignment(Bytes::from(a.to_string()))
                })
                .collect(),
        );
    c.call(ApiKey::SyncGroup, 5, &req)
}

fn heartbeat(c: &mut Client, group: &str, member: &str, generation: i32) -> i16 {
    let req =
        HeartbeatRequest::default().with_group_id(gid(group)).with_generation_id(generation).with_member_id(s(member));
    let r: HeartbeatResponse = c.call(ApiKey::Heartbeat, 4, &req);
    r.error_code
}

fn leave(c: &mut Client, group: &str, member: &str) -> i16 {
    let req = LeaveGroupRequest::default()
        .with_group_id(gid(group))
        .with_members(vec![leave_group_request::MemberIdentity::default().with_member_id(s(member))]);
    let r: LeaveGroupResponse = c.call(ApiKey::LeaveGroup, 5, &req);
    assert_eq!(r.error_code, 0);
    r.members[0].error_code
}

fn describe(c: &mut Client, group: &str) -> describe_groups_response::DescribedGroup {
    let r: DescribeGroupsResponse =
        c.call(ApiKey::DescribeGroups, 5, &DescribeGroupsRequest::default().with_groups(vec![gid(group)]));
    r.groups.into_iter().next().unwrap()
}

fn commit(c: &mut Client, group: &str, member: &str, generation: i32, offsets: &[(&str, i32, i64)]) -> Vec<i16> {
    let topics = offsets
        .iter()
        .map(|(t, p, o)| {
            offset_commit_request::OffsetCommitRequestTopic::default().with_name(TopicName(s(t))).with_partitions(vec![
                offset_commit_request::OffsetCommitRequestPartition::default()
                    .with_partition_index(*p)
                    .with_committed_offset(*o)
                    .with_committed_leader_epoch(1)
                    .with_committed_metadata(Some(s("meta"))),
            ])
        })
        .collect();
    let req = OffsetCommitRequest::default()
        .with_group_id(gid(group))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member))
        .with_topics(topics);
    let r: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, 9, &req);
    r.topics.iter().flat_map(|t| t.partitions.iter().map(|p| p.error_code)).collect()
}

/// Committed offsets of `partitions` of `topic` (OffsetFetch v8, multi-group form).
fn fetch(c: &mut Client, group: &str, topic: &str, partitions: &[i32]) -> Vec<i64> {
    let req = OffsetFetchRequest::default().with_groups(vec![offset_fetch_request::OffsetFetchRequestGroup::default()
        .with_group_id(gid(group))
        .with_topics(Some(vec![offset_fetch_request::OffsetFetchRequestTopics::default()
            .with_name(TopicName(s(topic)))
            .with_partition_indexes(partitions.to_vec())]))]);
    let r: OffsetFetchResponse = c.call(ApiKey::OffsetFetch, 8, &req);
    assert_eq!(r.groups[0].error_code, 0);
    r.groups[0].topics[0].partitions.iter().map(|p| p.committed_offset).collect()
}

#[test]
fn two_members_join_sync_heartbeat_and_leave() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(test_config(dir.path()));
    let mut a = Client::connect(node.addr);
    let mut b = Client::connect(node.addr);
    create_topic(&mut a, "gt", 2);
    let id_a = member_id(&mut a, "g2");
    let id_b = member_id(&mut b, "g2");
    assert_ne!(id_a, id_b);

    // Both join; their JoinGroup requests park until the join completes.
    let (ra, rb) = std::thread::scope(|scope| {
        let ja = scope.spawn(|| join(&mut a, "g2", &id_a));
        let rb = join(&mut b, "g2", &id_b);
        (ja.join().unwrap(), rb)
    });
    assert_eq!((ra.error_code, rb.error_code), (0, 0));
    assert_eq!(ra.generation_id, rb.generation_id);
    assert_eq!(ra.leader, rb.leader);
    let generation = ra.generation_id;
    let leader_is_a = ra.leader.as_str() == id_a;
    assert_eq!(ra.members.len() + rb.members.len(), 2, "only the leader gets the member list");

    // The follower's SyncGroup waits for the leader's assignment.
    let (ra, rb) = std::thread::scope(|scope| {
        let assignments = [(id_a.as_str(), "partition-0"), (id_b.as_str(), "partition-1")];
        let (leader, follower) = if leader_is_a { (&mut a, &mut b) } else { (&mut b, &mut a) };
        let (lid, fid) = if leader_is_a { (&id_a, &id_b) } else { (&id_b, &id_a) };
        let f = scope.spawn(move || sync(follower, "g2", fid, generation, &[]));
        std::thread::sleep(Duration::from_millis(200));
        let l = sync(leader, "g2", lid, generation, &assignments);
        let f = f.join().unwrap();
        if leader_is_a {
            (l, f)
        } else {
            (f, l)
        }
    });
    assert_eq!((ra.error_code, rb.error_code), (0, 0));
    assert_eq!(ra.assignment, Bytes::from_static(b"partition-0"));
    assert_eq!(rb.assignment, Bytes::from_static(b"partition-1"));
    assert_eq!(heartbeat(&mut a, "g2", &id_a, generation), 0);
    assert_eq!(heartbeat(&mut b, "g2", &id_b, generation), 0);
    let d = describe(&mut a, "g2");
    assert_eq!(d.group_state.as_str(), "Stable");
    assert_eq!(d.members.len(), 2);

    // Commits of the current generation are accepted; stale ones are not.
    assert_eq!(commit(&mut a, "g2", &id_a, generation, &[("gt", 0, 10)]), vec![0]);
    assert_eq!(commit(&mut b, "g2", &id_b, generation - 1, &[("gt", 1, 10)]), vec![22]);

    // B leaves: A is told to rejoin and becomes the only member of the next generation.
    assert_eq!(leave(&mut b, "g2", &id_b), 0);
    assert_eq!(heartbeat(&mut a, "g2", &id_a, generation), 27, "REBALANCE_IN_PROGRESS");
    let r = join(&mut a, "g2", &id_a);
    assert_eq!(r.error_code, 0);
    assert_eq!(r.generation_id, generation + 1);
    assert_eq!(r.members.len(), 1);
    let s = sync(&mut a, "g2", &id_a, r.generation_id, &[(id_a.as_str(), "both")]);
    assert_eq!(s.assignment, Bytes::from_static(b"both"));
    assert_eq!(heartbeat(&mut b, "g2", &id_b, generation), 25, "UNKNOWN_MEMBER_ID after leaving");

    assert_eq!(leave(&mut a, "g2", &id_a), 0);
    let d = describe(&mut a, "g2");
    assert_eq!(d.group_state.as_str(), "Empty");
    assert!(d.members.is_empty());
    assert_eq!(fetch(&mut a, "g2", "gt", &[0, 1]), vec![10, -1]);
}

#[test]
fn committed_offsets_survive_a_restart_and_go_with_their_topic() {
    let dir = tempfile::tempdir().unwrap();
    {
        let node = start_node(test_config(dir.path()));
        let mut c = Client::connect(node.addr);
        create_topic(&mut c, "kept", 3);
        create_topic(&mut c, "dropped", 1);
        // A consumer that assigns partitions itself commits with generation -1.
        assert_eq!(commit(&mut c, "cg", "", -1, &[("kept", 0, 5), ("kept", 2, 42), ("dropped", 0, 7)]), vec![0, 0, 0]);
        assert_eq!(commit(&mut c, "cg", "", -1, &[("kept", 0, 6)]), vec![0]);
        assert_eq!(fetch(&mut c, "cg", "kept", &[0, 1, 2]), vec![6, -1, 42]);
        assert_eq!(commit(&mut c, "cg", "", -1, &[("nope", 0, 1)]), vec![3], "UNKNOWN_TOPIC_OR_PARTITION");
    }
    // A new process on the same data directory.
    let node = start_node(test_config(dir.path()));
    let mut c = Client::connect(node.addr);
    assert_eq!(fetch(&mut c, "cg", "kept", &[0, 1, 2]), vec![6, -1, 42]);
    assert_eq!(fetch(&mut c, "cg", "dropped", &[0]), vec![7]);
    let r: ListGroupsResponse = c.call(ApiKey::ListGroups, 5, &ListGroupsRequest::default());
    let g = r.groups.iter().find(|g| g.group_id.as_str() == "cg").expect("a group with offsets is listed");
    assert_eq!(g.group_state.as_str(), "Empty");
    assert_eq!(describe(&mut c, "cg").group_state.as_str(), "Empty");

    // Deleting a topic drops its committed offsets.
    let del = DeleteTopicsRequest::default().with_timeout_ms(10_000).with_topic_names(vec![TopicName(s("dropped"))]);
    let r: DeleteTopicsResponse = c.call(ApiKey::DeleteTopics, 5, &del);
    assert_eq!(r.responses[0].error_code, 0);
    assert_eq!(fetch(&mut c, "cg", "dropped", &[0]), vec![-1]);
    assert_eq!(fetch(&mut c, "cg", "kept", &[0]), vec![6]);

    // DeleteGroups removes the rest.
    let r: DeleteGroupsResponse =
        c.call(ApiKey::DeleteGroups, 2, &DeleteGroupsRequest::default().with_groups_names(vec![gid("cg")]));
    assert_eq!(r.results[0].error_code, 0);
    assert_eq!(fetch(&mut c, "cg", "kept", &[0, 2]), vec![-1, -1]);
}

#[test]
fn group_membership_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (id, generation) = {
        let node = start_node(test_config(dir.path()));
        let mut c = Client::connect(node.addr);
        create_topic(&mut c, "r", 1);
        let id = member_id(&mut c, "rg");
        let r = join(&mut c, "rg", &id);
        let s = sync(&mut c, "rg", &id, r.generation_id, &[(id.as_str(), "x")]);
        assert_eq!(s.error_code, 0);
        assert_eq!(commit(&mut c, "rg", &id, r.generation_id, &[("r", 0, 3)]), vec![0]);
        (id, r.generation_id)
    };
    let node = start_node(test_config(dir.path()));
    let mut c = Client::connect(node.addr);
    // The member keeps its id, generation and assignment: it never notices the restart.
    assert_eq!(heartbeat(&mut c, "rg", &id, generation), 0);
    assert_eq!(commit(&mut c, "rg", &id, generation, &[("r", 0, 4)]), vec![0]);
    assert_eq!(fetch(&mut c, "rg", "r", &[0]), vec![4]);
    let s = sync(&mut c, "rg", &id, generation, &[]);
    assert_eq!(s.assignment, Bytes::from_static(b"x"));
    let d = describe(&mut c, "rg");
    assert_eq!((d.group_state.as_str(), d.members.len()), ("Stable", 1));
    assert_eq!(heartbeat(&mut c, "rg", "someone-else", generation), 25);
}

/// FindCoordinator on `node` until it names a coordinator (other than `not`).
fn find_coordinator(node: &common::TestNode, not: i32, timeout: Duration) -> i32 {
    let deadline = std::time::Instant::now() + timeout;
    let mut c = Client::connect(node.addr);
    loop {
        let r: FindCoordinatorResponse = c.call(
            ApiKey::FindCoordinator,
            4,
            &FindCoordinatorRequest::default().with_key_type(0).with_coordinator_keys(vec![s("cl")]),
        );
        let co = &r.coordinators[0];
        if co.error_code == 0 && co.node_id.0 != not {
            return co.node_id.0;
        }
        assert!(std::time::Instant::now() < deadline, "no coordinator from {}: {r:?}", node.addr);
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn in_a_cluster_the_meta_leader_coordinates_and_a_new_leader_takes_over() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = common::start_cluster(common::cluster_configs(dir.path(), 3));
    let coordinator = find_coordinator(&nodes[0], -1, Duration::from_secs(20));
    for n in &nodes[1..] {
        assert_eq!(find_coordinator(n, -1, Duration::from_secs(20)), coordinator, "every node names the same");
    }
    let cn = &nodes[(coordinator - 1) as usize];
    let other = &nodes[(coordinator % 3) as usize];
    let mut c = Client::connect(cn.addr);
    let req = CreateTopicsRequest::default().with_timeout_ms(20_000).with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(TopicName(s("ct")))
            .with_num_partitions(1)
            .with_replication_factor(3),
    ]);
    let r: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &req);
    assert_eq!(r.topics[0].error_code, 0);

    // A member joins through the coordinator and commits.
    let id = member_id(&mut c, "cl");
    let j = join(&mut c, "cl", &id);
    assert_eq!(j.error_code, 0);
    let gen = j.generation_id;
    assert_eq!(sync(&mut c, "cl", &id, gen, &[(id.as_str(), "all")]).error_code, 0);
    assert_eq!(commit(&mut c, "cl", &id, gen, &[("ct", 0, 42)]), vec![0]);

    // Another node is not the coordinator.
    let mut o = Client::connect(other.addr);
    assert_eq!(join(&mut o, "cl", "").error_code, 16, "NOT_COORDINATOR");
    assert_eq!(heartbeat(&mut o, "cl", &id, gen), 16);
    assert_eq!(commit(&mut o, "cl", &id, gen, &[("ct", 0, 43)]), vec![16]);
    let r: OffsetFetchResponse = o.call(
        ApiKey::OffsetFetch,
        8,
        &OffsetFetchRequest::default()
            .with_groups(vec![offset_fetch_request::OffsetFetchRequestGroup::default().with_group_id(gid("cl"))]),
    );
    assert_eq!(r.groups[0].error_code, 16);

    // Cut the coordinator off: a new __meta leader becomes the coordinator, with the group's
    // membership and offsets read back from __meta.
    for (i, n) in nodes.iter().enumerate() {
        let nid = i as u64 + 1;
        for peer in 1..=3u64 {
            if peer != nid && (nid == coordinator as u64 || peer == coordinator as u64) {
                n.faults.partition(peer, true);
            }
        }
    }
    let new = find_coordinator(other, coordinator, Duration::from_secs(30));
    let mut n = Client::connect(nodes[(new - 1) as usize].addr);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let hb = loop {
        let hb = heartbeat(&mut n, "cl", &id, gen);
        if hb != 14 && hb != 16 && hb != 15 {
            break hb;
        }
        assert!(std::time::Instant::now() < deadline, "the new coordinator did not load: {hb}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(hb, 0, "the member carries on with the new coordinator");
    assert_eq!(fetch(&mut n, "cl", "ct", &[0]), vec![42]);
    assert_eq!(commit(&mut n, "cl", &id, gen, &[("ct", 0, 44)]), vec![0]);
    assert_eq!(fetch(&mut n, "cl", "ct", &[0]), vec![44]);
    for n in &nodes {
        for peer in 1..=3u64 {
            n.faults.partition(peer, false);
        }
    }
}
