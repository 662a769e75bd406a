//! Offset expiry (`[offsets] retention`) against an in-process node: offsets committed outside a
//! group expire after their commit; a Stable consumer group keeps the offsets of the topics it
//! is subscribed to while those of other topics expire; once the group is empty its offsets
//! expire too, and the group with them.

mod common;

use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};

use common::{start_node, test_config, Client};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn subscription(topics: &[&str]) -> Bytes {
    let sub = ConsumerProtocolSubscription::default().with_topics(topics.iter().map(|t| s(t)).collect());
    let mut b = BytesMut::new();
    b.put_i16(1);
    sub.encode(&mut b, 1).unwrap();
    b.freeze()
}

fn join(c: &mut Client, group: &str, member: &str) -> JoinGroupResponse {
    let req = JoinGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(20_000)
        .with_member_id(s(member))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(subscription(&["sub"]))]);
    c.call(ApiKey::JoinGroup, 9, &req)
}

fn commit(c: &mut Client, group: &str, member: &str, generation: i32, topic: &str, offset: i64) -> i16 {
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member))
        .with_topics(vec![offset_commit_request::OffsetCommitRequestTopic::default()
            .with_name(TopicName(s(topic)))
            .with_partitions(vec![offset_commit_request::OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)])]);
    let r: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, 9, &req);
    r.topics[0].partitions[0].error_code
}

fn fetch(c: &mut Client, group: &str, topic: &str) -> i64 {
    let req = OffsetFetchRequest::default().with_groups(vec![offset_fetch_request::OffsetFetchRequestGroup::default()
        .with_group_id(GroupId(s(group)))
        .with_topics(Some(vec![offset_fetch_request::OffsetFetchRequestTopics::default()
            .with_name(TopicName(s(topic)))
            .with_partition_indexes(vec![0])]))]);
    let r: OffsetFetchResponse = c.call(ApiKey::OffsetFetch, 8, &req);
    r.groups[0].topics[0].partitions[0].committed_offset
}

fn heartbeat(c: &mut Client, group: &str, member: &str, generation: i32) -> i16 {
    let req = HeartbeatRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id(generation)
        .with_member_id(s(member));
    let r: HeartbeatResponse = c.call(ApiKey::Heartbeat, 4, &req);
    r.error_code
}

#[test]
fn offsets_expire_by_kafkas_rules() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.offsets.retention = Duration::from_millis(1500);
    config.offsets.retention_check_interval = Duration::from_millis(100);
    let node = start_node(config);
    let mut c = Client::connect(node.addr);
    for t in ["sub", "other"] {
        common::create_topic(&mut c, t, 1, 1, &[]);
    }
    // A consumer group with one member subscribed to "sub".
    let first = join(&mut c, "live", "");
    assert_eq!(first.error_code, 79, "MEMBER_ID_REQUIRED");
    let member = first.member_id.to_string();
    let joined = join(&mut c, "live", &member);
    assert_eq!(joined.error_code, 0);
    let generation = joined.generation_id;
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(s("live")))
        .with_generation_id(generation)
        .with_member_id(s(&member))
        .with_protocol_type(Some(s("consumer")))
        .with_protocol_name(Some(s("range")))
        .with_assignments(vec![sync_group_request::SyncGroupRequestAssignment::default()
            .with_member_id(s(&member))
            .with_assignment(Bytes::from_static(b"a"))]);
    let r: SyncGroupResponse = c.call(ApiKey::SyncGroup, 5, &sync);
    assert_eq!(r.error_code, 0);
    assert_eq!(commit(&mut c, "live", &member, generation, "sub", 10), 0);
    assert_eq!(commit(&mut c, "live", &member, generation, "other", 20), 0);
    assert_eq!(commit(&mut c, "simple", "", -1, "sub", 30), 0);

    // The simple commit and the unsubscribed topic's offset expire; the subscribed one stays
    // while the member heartbeats.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert_eq!(heartbeat(&mut c, "live", &member, generation), 0);
        let now = (fetch(&mut c, "simple", "sub"), fetch(&mut c, "live", "other"));
        if now == (-1, -1) {
            break;
        }
        assert!(Instant::now() < deadline, "offsets did not expire: {now:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(fetch(&mut c, "live", "sub"), 10, "the subscribed topic's offset is kept");
    std::thread::sleep(Duration::from_millis(2000));
    assert_eq!(heartbeat(&mut c, "live", &member, generation), 0);
    assert_eq!(fetch(&mut c, "live", "sub"), 10, "still kept well past the retention");

    // The member leaves: the group is Empty, and retention after that its offsets go.
    let leave = LeaveGroupRequest::default()
        .with_group_id(GroupId(s("live")))
        .with_members(vec![leave_group_request::MemberIdentity::default().with_member_id(s(&member))]);
    let r: LeaveGroupResponse = c.call(ApiKey::LeaveGroup, 5, &leave);
    assert_eq!(r.error_code, 0);
    let left = Instant::now();
    let deadline = left + Duration::from_secs(20);
    while fetch(&mut c, "live", "sub") != -1 {
        assert!(Instant::now() < deadline, "the empty group's offsets did not expire");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(left.elapsed() >= Duration::from_millis(1000), "not before the retention since it became empty");
}
