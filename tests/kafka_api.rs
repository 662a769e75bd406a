//! In-process tests of the Kafka API layer: every advertised version of every API against a
//! running standalone node, request pipelining, long-poll fetch, idempotent produce and the
//! answers to bad requests.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use chronik::broker::routes::{route_for, ROUTES};
use chronik::log::batch::build_batch;
use common::{start_node, test_config, Client};

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn create_topic(c: &mut Client, topic: &str, partitions: i32) {
    let req = CreateTopicsRequest::default().with_timeout_ms(10_000).with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(name(topic))
            .with_num_partitions(partitions)
            .with_replication_factor(1),
    ]);
    let resp: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &req);
    assert_eq!(resp.topics[0].error_code, 0, "{:?}", resp.topics[0].error_message);
}

fn produce_req(topic: &str, partition: i32, batch: Vec<u8>, acks: i16) -> ProduceRequest {
    ProduceRequest::default().with_acks(acks).with_timeout_ms(10_000).with_topic_data(vec![
        produce_request::TopicProduceData::default().with_name(name(topic)).with_partition_data(vec![
            produce_request::PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(Bytes::from(batch))),
        ]),
    ])
}

fn fetch_req(topic: &str, offset: i64, max_wait_ms: i32, min_bytes: i32) -> FetchRequest {
    FetchRequest::default().with_max_wait_ms(max_wait_ms).with_min_bytes(min_bytes).with_max_bytes(1 << 20).with_topics(
        vec![fetch_request::FetchTopic::default().with_topic(name(topic)).with_partitions(vec![
            fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20),
        ])],
    )
}

/// DescribeAcls matching every ACL (null strings: the crate's defaults are empty strings).
fn any_acl() -> DescribeAclsRequest {
    DescribeAclsRequest::default()
        .with_resource_type_filter(1)
        .with_resource_name_filter(None)
        .with_pattern_type_filter(1)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_operation(1)
        .with_permission_type(1)
}

fn values(n: usize) -> Vec<chronik::log::batch::KeyValue<'static>> {
    (0..n).map(|_| (Some(&b"key"[..]), Some(&b"value"[..]))).collect()
}

#[test]
fn every_advertised_version_of_every_api_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(test_config(dir.path()));
    let mut c = Client::connect(node.addr);
    create_topic(&mut c, "t", 1);
    create_topic(&mut c, "grow", 1);
    let mut produced = 0i64;
    let port = node.addr.port() as i32;
    // The consumer-group APIs run one group "jg" with one member through its life:
    // FindCoordinator, JoinGroup, SyncGroup, Heartbeat, OffsetCommit, OffsetFetch, DescribeGroups,
    // ListGroups, LeaveGroup, DeleteGroups (the order of the route table).
    let mut member = String::new();
    let mut generation = -1;
    for route in ROUTES {
        for v in route.min..=route.max {
            match route.key {
                ApiKey::ApiVersions => {
                    let r: ApiVersionsResponse = c.call(route.key, v, &ApiVersionsRequest::default());
                    assert_eq!(r.error_code, 0);
                    assert_eq!(r.api_keys.len(), ROUTES.len());
                }
                ApiKey::Metadata => {
                    let req = MetadataRequest::default().with_topics(Some(vec![
                        metadata_request::MetadataRequestTopic::default().with_name(Some(name("t"))),
                    ]));
                    let r: MetadataResponse = c.call(route.key, v, &req);
                    assert_eq!(r.brokers.len(), 1);
                    assert_eq!(r.topics[0].error_code, 0);
                    assert_eq!(r.topics[0].partitions[0].leader_id.0, 1);
                    if v >= 10 {
                        assert!(!r.topics[0].topic_id.is_nil(), "topic ids are real");
                    }
                }
                ApiKey::Produce => {
                    let r: ProduceResponse =
                        c.call(route.key, v, &produce_req("t", 0, build_batch(0, -1, -1, -1, 1000, &values(2)), -1));
                    let p = &r.responses[0].partition_responses[0];
                    assert_eq!(p.error_code, 0, "produce v{v}");
                    assert_eq!(p.base_offset, produced);
                    produced += 2;
                }
                ApiKey::Fetch => {
                    let r: FetchResponse = c.call(route.key, v, &fetch_req("t", 0, 0, 0));
                    let p = &r.responses[0].partitions[0];
                    assert_eq!(p.error_code, 0);
                    assert_eq!(p.high_watermark, produced);
                    assert!(!p.records.as_ref().unwrap().is_empty());
                }
                ApiKey::ListOffsets => {
                    let req = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![
                        list_offsets_request::ListOffsetsTopic::default().with_name(name("t")).with_partitions(vec![
                            list_offsets_request::ListOffsetsPartition::default().with_timestamp(-1),
                        ]),
                    ]);
                    let r: ListOffsetsResponse = c.call(route.key, v, &req);
                    assert_eq!(r.topics[0].partitions[0].error_code, 0);
                    assert_eq!(r.topics[0].partitions[0].offset, produced);
                }
                ApiKey::CreateTopics => {
                    let topic = format!("created-{v}");
                    let req = CreateTopicsRequest::default().with_timeout_ms(10_000).with_topics(vec![
                        create_topics_request::CreatableTopic::default()
                            .with_name(name(&topic))
                            .with_num_partitions(2)
                            .with_replication_factor(1),
                    ]);
                    let r: CreateTopicsResponse = c.call(route.key, v, &req);
                    assert_eq!(r.topics[0].error_code, 0, "create v{v}: {:?}", r.topics[0].error_message);
                }
                ApiKey::DeleteTopics => {
                    let topic = format!("created-{}", 2 + (v - route.min) % 6);
                    let req = if v >= 6 {
                        DeleteTopicsRequest::default().with_topics(vec![
                            delete_topics_request::DeleteTopicState::default().with_name(Some(name(&topic))),
                        ])
                    } else {
                        DeleteTopicsRequest::default().with_topic_names(vec![name(&topic)])
                    };
                    let r: DeleteTopicsResponse = c.call(route.key, v, &req.with_timeout_ms(10_000));
                    assert_eq!(r.responses[0].error_code, 0, "delete v{v}");
                }
                ApiKey::InitProducerId => {
                    let r: InitProducerIdResponse = c.call(
                        route.key,
                        v,
                        &InitProducerIdRequest::default()
                            .with_transactional_id(None)
                            .with_transaction_timeout_ms(60_000),
                    );
                    assert_eq!(r.error_code, 0);
                    assert!(r.producer_id.0 >= 0);
                    // With a transactional id: the same producer id, the epoch bumped each time.
                    let txn = InitProducerIdRequest::default()
                        .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("tx-init"))))
                        .with_transaction_timeout_ms(60_000)
                        .with_producer_id(ProducerId(-1))
                        .with_producer_epoch(-1);
                    // The coordinator may still be loading just after start (COORDINATOR_LOAD_IN_PROGRESS
                    // 14, COORDINATOR_NOT_AVAILABLE 15): retried, as Kafka's clients do.
                    let mut r: InitProducerIdResponse = c.call(route.key, v, &txn);
                    for _ in 0..100 {
                        if r.error_code != 14 && r.error_code != 15 {
                            break;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(100));
                        r = c.call(route.key, v, &txn);
                    }
                    assert_eq!((r.error_code, r.producer_epoch), (0, v), "transactional v{v}");
                    let too_long = txn.clone().with_transaction_timeout_ms(900_001);
                    let r: InitProducerIdResponse = c.call(route.key, v, &too_long);
                    assert_eq!(r.error_code, 50, "INVALID_TRANSACTION_TIMEOUT v{v}");
                    if v >= 2 {
                        // Flexible versions can carry an id longer than 32,767 bytes: refused.
                        let long = txn
                            .clone()
                            .with_transactional_id(Some(TransactionalId(StrBytes::from_string("x".repeat(40_000)))));
                        let r: InitProducerIdResponse = c.call(route.key, v, &long);
                        assert_eq!(r.error_code, 42, "a transactional id too long v{v}");
                        let l: ListTransactionsResponse =
                            c.call(ApiKey::ListTransactions, 0, &ListTransactionsRequest::default());
                        assert!(!l.transaction_states.is_empty());
                        assert!(
                            l.transaction_states.iter().all(|t| t.transactional_id.0.len() < 40_000),
                            "nothing stored"
                        );
                    }
                }
                ApiKey::DescribeConfigs => {
                    let req = DescribeConfigsRequest::default().with_resources(vec![
                        describe_configs_request::DescribeConfigsResource::default()
                            .with_resource_type(2)
                            .with_resource_name(StrBytes::from_static_str("t")),
                    ]);
                    let r: DescribeConfigsResponse = c.call(route.key, v, &req);
                    assert_eq!(r.results[0].error_code, 0);
                    assert!(r.results[0].configs.iter().any(|c| c.name.as_str() == "retention.ms"));
                }
                ApiKey::AlterConfigs => {
                    let req = AlterConfigsRequest::default().with_resources(vec![
                        alter_configs_request::AlterConfigsResource::default()
                            .with_resource_type(2)
                            .with_resource_name(StrBytes::from_static_str("t"))
                            .with_configs(vec![alter_configs_request::AlterableConfig::default()
                                .with_name(StrBytes::from_static_str("retention.ms"))
                                .with_value(Some(StrBytes::from_static_str("86400000")))]),
                    ]);
                    let r: AlterConfigsResponse = c.call(route.key, v, &req);
                    assert_eq!(r.responses[0].error_code, 0);
                }
                ApiKey::IncrementalAlterConfigs => {
                    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
                        incremental_alter_configs_request::AlterConfigsResource::default()
                            .with_resource_type(2)
                            .with_resource_name(StrBytes::from_static_str("t"))
                            .with_configs(vec![incremental_alter_configs_request::AlterableConfig::default()
                                .with_name(StrBytes::from_static_str("retention.bytes"))
                                .with_config_operation(0)
                                .with_value(Some(StrBytes::from_static_str("1000000000")))]),
                    ]);
                    let r: IncrementalAlterConfigsResponse = c.call(route.key, v, &req);
                    assert_eq!(r.responses[0].error_code, 0);
                }
                ApiKey::CreatePartitions => {
                    let count = 2 + v as i32;
                    let req = CreatePartitionsRequest::default().with_timeout_ms(10_000).with_topics(vec![
                        create_partitions_request::CreatePartitionsTopic::default()
                            .with_name(name("grow"))
                            .with_count(count),
                    ]);
                    let r: CreatePartitionsResponse = c.call(route.key, v, &req);
                    assert_eq!(r.results[0].error_code, 0, "{:?}", r.results[0].error_message);
                }
                ApiKey::ListConfigResources => {
                    let req = ListConfigResourcesRequest::default().with_resource_types(if v >= 1 {
                        vec![2, 4]
                    } else {
                        vec![]
                    });
                    let r: ListConfigResourcesResponse = c.call(route.key, v, &req);
                    assert_eq!(r.error_code, 0);
                    if v >= 1 {
                        let names: Vec<_> =
                            r.config_resources.iter().map(|c| (c.resource_type, c.resource_name.to_string())).collect();
                        assert!(
                            names.contains(&(2, "t".to_string())) && names.contains(&(4, "1".to_string())),
                            "{names:?}"
                        );
                    } else {
                        assert!(r.config_resources.is_empty(), "no client-metrics resources");
                    }
                }
                ApiKey::DescribeTopicPartitions => {
                    // "grow" has 5 partitions now; pages of 2 with the cursor, then the unknown topic.
                    let page = |cursor: Option<i32>| {
                        DescribeTopicPartitionsRequest::default()
                            .with_topics(
                                ["grow", "zzz-missing"]
                                    .iter()
                                    .map(|t| {
                                        describe_topic_partitions_request::TopicRequest::default().with_name(name(t))
                                    })
                                    .collect(),
                            )
                            .with_response_partition_limit(2)
                            .with_cursor(cursor.map(|p| {
                                describe_topic_partitions_request::Cursor::default()
                                    .with_topic_name(name("grow"))
                                    .with_partition_index(p)
                            }))
                    };
                    let mut seen = Vec::new();
                    let mut cursor = None;
                    for _ in 0..5 {
                        let r: DescribeTopicPartitionsResponse = c.call(route.key, v, &page(cursor));
                        let grow = r.topics.iter().find(|t| t.name == Some(name("grow"))).unwrap();
                        assert_eq!(grow.error_code, 0);
                        seen.extend(grow.partitions.iter().map(|p| p.partition_index));
                        assert!(grow.partitions.iter().all(|p| p.leader_id.0 == 1 && p.replica_nodes.len() == 1));
                        match &r.next_cursor {
                            Some(next) => cursor = Some(next.partition_index),
                            None => {
                                let missing = r.topics.last().unwrap();
                                assert_eq!((missing.name.clone(), missing.error_code), (Some(name("zzz-missing")), 3));
                                break;
                            }
                        }
                    }
                    assert_eq!(seen, vec![0, 1, 2, 3, 4], "every partition once, in order");
                    // All topics: the internal offsets topic is among them.
                    let all = DescribeTopicPartitionsRequest::default().with_response_partition_limit(2000);
                    let r: DescribeTopicPartitionsResponse = c.call(route.key, v, &all);
                    let internal: Vec<_> = r.topics.iter().filter(|t| t.is_internal).collect();
                    assert_eq!(internal.len(), 1);
                    assert_eq!(internal[0].name, Some(name("__consumer_offsets")));
                    assert!(r.next_cursor.is_none());
                    // A cursor naming a topic that is not asked for: INVALID_REQUEST.
                    let bad = page(None).with_cursor(Some(
                        describe_topic_partitions_request::Cursor::default().with_topic_name(name("elsewhere")),
                    ));
                    let r: DescribeTopicPartitionsResponse = c.call(route.key, v, &bad);
                    assert!(r.topics.iter().all(|t| t.error_code == 42) && r.topics.len() == 2);
                }
                ApiKey::WriteTxnMarkers => {
                    // An ABORT with no open transaction is written anyway (Kafka's idempotent abort).
                    let topic = |t: &'static str| {
                        write_txn_markers_request::WritableTxnMarkerTopic::default()
                            .with_name(name(t))
                            .with_partition_indexes(vec![0])
                    };
                    let marker = write_txn_markers_request::WritableTxnMarker::default()
                        .with_producer_id(ProducerId(77))
                        .with_producer_epoch(0)
                        .with_transaction_result(false)
                        .with_coordinator_epoch(5)
                        .with_topics(vec![topic("t"), topic("no-such-topic")]);
                    let req = WriteTxnMarkersRequest::default().with_markers(vec![marker]);
                    let r: WriteTxnMarkersResponse = c.call(route.key, v, &req);
                    let t = &r.markers[0].topics;
                    assert_eq!((t[0].partitions[0].error_code, t[1].partitions[0].error_code), (0, 3), "v{v}");
                    produced += 1; // the marker takes an offset
                }
                ApiKey::DescribeProducers => {
                    let req = DescribeProducersRequest::default().with_topics(vec![
                        describe_producers_request::TopicRequest::default()
                            .with_name(name("t"))
                            .with_partition_indexes(vec![0, 9]),
                    ]);
                    let r: DescribeProducersResponse = c.call(route.key, v, &req);
                    let p = &r.topics[0].partitions;
                    assert_eq!((p[0].error_code, p[1].error_code), (0, 3), "v{v}");
                    let s = &p[0].active_producers[0];
                    assert_eq!((s.producer_id.0, s.producer_epoch, s.coordinator_epoch), (77, 0, 5));
                    assert_eq!((s.last_sequence, s.current_txn_start_offset), (-1, -1));
                }
                ApiKey::DescribeCluster => {
                    let r: DescribeClusterResponse = c.call(route.key, v, &DescribeClusterRequest::default());
                    assert_eq!(r.error_code, 0);
                    assert_eq!(r.brokers.len(), 1);
                    assert_eq!(r.controller_id.0, 1);
                }
                ApiKey::FindCoordinator => {
                    if v >= 4 {
                        let req = FindCoordinatorRequest::default().with_key_type(0).with_coordinator_keys(vec![
                            StrBytes::from_static_str("a"),
                            StrBytes::from_static_str("b"),
                        ]);
                        let r: FindCoordinatorResponse = c.call(route.key, v, &req);
                        assert_eq!(r.coordinators.len(), 2);
                        for co in &r.coordinators {
                            assert_eq!((co.error_code, co.node_id.0, co.port), (0, 1, port), "v{v}");
                        }
                        let txn = FindCoordinatorRequest::default()
                            .with_key_type(1)
                            .with_coordinator_keys(vec![StrBytes::from_static_str("tx")]);
                        let r: FindCoordinatorResponse = c.call(route.key, v, &txn);
                        let co = &r.coordinators[0];
                        assert_eq!(
                            (co.error_code, co.node_id.0, co.port),
                            (0, 1, port),
                            "transaction coordinator v{v}"
                        );
                        let empty = FindCoordinatorRequest::default()
                            .with_key_type(1)
                            .with_coordinator_keys(vec![StrBytes::from_static_str("")]);
                        let r: FindCoordinatorResponse = c.call(route.key, v, &empty);
                        assert_eq!(r.coordinators[0].error_code, 42, "an empty transactional id");
                    } else {
                        let r: FindCoordinatorResponse = c.call(
                            route.key,
                            v,
                            &FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("jg")),
                        );
                        assert_eq!((r.error_code, r.node_id.0, r.port), (0, 1, port), "v{v}");
                        assert_eq!(r.host.as_str(), "127.0.0.1");
                    }
                }
                ApiKey::JoinGroup => {
                    let join = |member: &str| {
                        JoinGroupRequest::default()
                            .with_group_id(GroupId(StrBytes::from_static_str("jg")))
                            .with_session_timeout_ms(30_000)
                            .with_rebalance_timeout_ms(if v >= 1 { 30_000 } else { -1 })
                            .with_member_id(StrBytes::from_string(member.to_string()))
                            .with_protocol_type(StrBytes::from_static_str("consumer"))
                            .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default()
                                .with_name(StrBytes::from_static_str("range"))
                                .with_metadata(Bytes::from_static(b"subscription"))])
                    };
                    if v >= 4 {
                        let mut first = join("");
                        first.group_id = GroupId(StrBytes::from_string(format!("mir-{v}")));
                        let r: JoinGroupResponse = c.call(route.key, v, &first);
                        assert_eq!(r.error_code, 79, "MEMBER_ID_REQUIRED at v{v}");
                        assert!(r.member_id.as_str().starts_with("chronik-test-"));
                    }
                    // v0 creates the group (it waits for the initial rebalance delay); later
                    // versions rejoin with the same metadata and get the same generation back.
                    let r: JoinGroupResponse = c.call(route.key, v, &join(&member));
                    assert_eq!(r.error_code, 0, "join v{v}");
                    if v == 0 {
                        member = r.member_id.to_string();
                        generation = r.generation_id;
                    }
                    assert_eq!((r.member_id.as_str(), r.leader.as_str()), (member.as_str(), member.as_str()));
                    assert_eq!(r.generation_id, generation);
                    assert_eq!(r.protocol_name.as_ref().map(|p| p.as_str()), Some("range"));
                    assert_eq!(r.members.len(), 1);
                    assert_eq!(r.members[0].metadata, Bytes::from_static(b"subscription"));
                    if v >= 7 {
                        assert_eq!(r.protocol_type.as_ref().map(|p| p.as_str()), Some("consumer"));
                    }
                }
                ApiKey::SyncGroup => {
                    let mut req = SyncGroupRequest::default()
                        .with_group_id(GroupId(StrBytes::from_static_str("jg")))
                        .with_generation_id(generation)
                        .with_member_id(StrBytes::from_string(member.clone()))
                        .with_assignments(vec![sync_group_request::SyncGroupRequestAssignment::default()
                            .with_member_id(StrBytes::from_string(member.clone()))
                            .with_assignment(Bytes::from(format!("assignment-v{v}")))]);
                    if v >= 5 {
                        req = req
                            .with_protocol_type(Some(StrBytes::from_static_str("consumer")))
                            .with_protocol_name(Some(StrBytes::from_static_str("range")));
                    }
                    let r: SyncGroupResponse = c.call(route.key, v, &req);
                    assert_eq!(r.error_code, 0, "sync v{v}");
                    assert_eq!(r.assignment, Bytes::from_static(b"assignment-v0"), "the first sync assigned");
                    if v >= 5 {
                        assert_eq!(r.protocol_name.as_ref().map(|p| p.as_str()), Some("range"));
                    }
                }
                ApiKey::Heartbeat => {
                    let req = HeartbeatRequest::default()
                        .with_group_id(GroupId(StrBytes::from_static_str("jg")))
                        .with_generation_id(generation)
                        .with_member_id(StrBytes::from_string(member.clone()));
                    let r: HeartbeatResponse = c.call(route.key, v, &req);
                    assert_eq!(r.error_code, 0, "heartbeat v{v}");
                    let r: HeartbeatResponse = c.call(route.key, v, &req.with_generation_id(generation - 1));
                    assert_eq!(r.error_code, 22, "ILLEGAL_GENERATION at v{v}");
                }
                ApiKey::OffsetCommit => {
                    let req = OffsetCommitRequest::default()
                        .with_group_id(GroupId(StrBytes::from_static_str("jg")))
                        .with_generation_id_or_member_epoch(generation)
                        .with_member_id(StrBytes::from_string(member.clone()))
                        .with_topics(vec![offset_commit_request::OffsetCommitRequestTopic::default()
                            .with_name(name("t"))
                            .with_partitions(vec![
                                offset_commit_request::OffsetCommitRequestPartition::default()
                                    .with_partition_index(0)
                                    .with_committed_offset(100 + v as i64)
                                    .with_committed_leader_epoch(if v >= 6 { 5 } else { -1 })
                                    .with_committed_metadata(Some(StrBytes::from_string(format!("v{v}")))),
                                offset_commit_request::OffsetCommitRequestPartition::default()
                                    .with_partition_index(7)
                                    .with_committed_offset(1),
                            ])]);
                    let r: OffsetCommitResponse = c.call(route.key, v, &req);
                    let codes: Vec<i16> = r.topics[0].partitions.iter().map(|p| p.error_code).collect();
                    assert_eq!(codes, vec![0, 3], "commit v{v}: partition 7 does not exist");
                }
                ApiKey::OffsetFetch => {
                    if v >= 8 {
                        let req = OffsetFetchRequest::default().with_groups(vec![
                            offset_fetch_request::OffsetFetchRequestGroup::default()
                                .with_group_id(GroupId(StrBytes::from_static_str("jg")))
                                .with_topics(Some(vec![offset_fetch_request::OffsetFetchRequestTopics::default()
                                    .with_name(name("t"))
                                    .with_partition_indexes(vec![0, 1])])),
                            offset_fetch_request::OffsetFetchRequestGroup::default()
                                .with_group_id(GroupId(StrBytes::from_static_str("jg")))
                                .with_topics(None),
                            offset_fetch_request::OffsetFetchRequestGroup::default()
                                .with_group_id(GroupId(StrBytes::from_static_str("nobody")))
                                .with_topics(None),
                        ]);
                        let r: OffsetFetchResponse = c.call(route.key, v, &req);
                        assert_eq!(r.groups.len(), 3);
                        let p = &r.groups[0].topics[0].partitions;
                        assert_eq!((p[0].committed_offset, p[1].committed_offset), (109, -1));
                        assert_eq!(p[0].metadata.as_ref().map(|m| m.as_str()), Some("v9"));
                        assert_eq!(r.groups[1].topics.len(), 1, "all topics with offsets");
                        assert_eq!(r.groups[1].topics[0].partitions[0].committed_offset, 109);
                        assert!(r.groups[2].topics.is_empty());
                    } else {
                        let req = OffsetFetchRequest::default()
                            .with_group_id(GroupId(StrBytes::from_static_str("jg")))
                            .with_topics(Some(vec![offset_fetch_request::OffsetFetchRequestTopic::default()
                                .with_name(name("t"))
                                .with_partition_indexes(vec![0, 1])]));
                        let r: OffsetFetchResponse = c.call(route.key, v, &req);
                        let p = &r.topics[0].partitions;
                        assert_eq!((p[0].committed_offset, p[1].committed_offset), (109, -1), "fetch v{v}");
                        assert_eq!(p[0].committed_leader_epoch, if v >= 5 { 5 } else { -1 }, "fetch v{v}");
                        if v >= 2 {
                            let all: OffsetFetchResponse = c.call(
                                route.key,
                                v,
                                &OffsetFetchRequest::default()
                                    .with_group_id(GroupId(StrBytes::from_static_str("jg")))
                                    .with_topics(None),
                            );
                            assert_eq!(all.topics.len(), 1);
                            assert_eq!(all.topics[0].partitions[0].committed_offset, 109);
                        }
                    }
                }
                ApiKey::DescribeGroups => {
                    let req = DescribeGroupsRequest::default()
                        .with_groups(vec![
                            GroupId(StrBytes::from_static_str("jg")),
                            GroupId(StrBytes::from_static_str("nobody")),
                        ])
                        .with_include_authorized_operations(v >= 3);
                    let r: DescribeGroupsResponse = c.call(route.key, v, &req);
                    let g = &r.groups[0];
                    assert_eq!((g.error_code, g.group_state.as_str()), (0, "Stable"), "describe v{v}");
                    assert_eq!((g.protocol_type.as_str(), g.protocol_data.as_str()), ("consumer", "range"));
                    assert_eq!(g.members.len(), 1);
                    assert_eq!(g.members[0].member_assignment, Bytes::from_static(b"assignment-v0"));
                    assert_eq!(g.members[0].client_id.as_str(), "chronik-test");
                    assert_eq!(g.members[0].client_host.as_str(), "/127.0.0.1");
                    let unknown = &r.groups[1];
                    assert_eq!(unknown.group_state.as_str(), "Dead");
                    assert_eq!(unknown.error_code, if v >= 6 { 69 } else { 0 });
                }
                ApiKey::ListGroups => {
                    let mut req = ListGroupsRequest::default();
                    if v >= 4 {
                        req = req.with_states_filter(vec![StrBytes::from_static_str("stable")]);
                    }
                    if v >= 5 {
                        req = req.with_types_filter(vec![StrBytes::from_static_str("classic")]);
                    }
                    let r: ListGroupsResponse = c.call(route.key, v, &req);
                    assert_eq!(r.error_code, 0);
                    let jg = r.groups.iter().find(|g| g.group_id.as_str() == "jg").expect("jg listed");
                    assert_eq!(jg.protocol_type.as_str(), "consumer");
                    if v >= 4 {
                        assert_eq!(jg.group_state.as_str(), "Stable");
                        assert_eq!(r.groups.len(), 1, "only the stable group");
                    }
                }
                ApiKey::LeaveGroup => {
                    // Earlier versions leave an unknown member; the last one the real member.
                    let who = if v == route.max { member.clone() } else { "stranger".to_string() };
                    let mut req = LeaveGroupRequest::default().with_group_id(GroupId(StrBytes::from_static_str("jg")));
                    if v >= 3 {
                        req = req.with_members(vec![leave_group_request::MemberIdentity::default()
                            .with_member_id(StrBytes::from_string(who.clone()))]);
                    } else {
                        req = req.with_member_id(StrBytes::from_string(who.clone()));
                    }
                    let r: LeaveGroupResponse = c.call(route.key, v, &req);
                    let want = if who == member { 0 } else { 25 };
                    if v >= 3 {
                        assert_eq!(r.error_code, 0);
                        assert_eq!(r.members[0].error_code, want, "leave v{v}");
                        assert_eq!(r.members[0].member_id.as_str(), who);
                    } else {
                        assert_eq!(r.error_code, want, "leave v{v}");
                    }
                }
                ApiKey::DeleteGroups => {
                    let group = if v == 2 { "nobody" } else { "jg" };
                    let req = DeleteGroupsRequest::default()
                        .with_groups_names(vec![GroupId(StrBytes::from_static_str(group))]);
                    let r: DeleteGroupsResponse = c.call(route.key, v, &req);
                    // v0 deletes the now empty group and its offsets; then it is gone.
                    assert_eq!(r.results[0].error_code, if v == 0 { 0 } else { 69 }, "delete groups v{v}");
                }
                ApiKey::DeleteRecords => {
                    let part = |i: i32, offset: i64| {
                        delete_records_request::DeleteRecordsPartition::default()
                            .with_partition_index(i)
                            .with_offset(offset)
                    };
                    let req = DeleteRecordsRequest::default().with_timeout_ms(5_000).with_topics(vec![
                        delete_records_request::DeleteRecordsTopic::default()
                            .with_name(name("t"))
                            .with_partitions(vec![part(0, i64::MAX), part(0, 0)]),
                        delete_records_request::DeleteRecordsTopic::default()
                            .with_name(name("no-such-topic"))
                            .with_partitions(vec![part(0, 0)]),
                    ]);
                    let r: DeleteRecordsResponse = c.call(route.key, v, &req);
                    let p = &r.topics[0].partitions;
                    assert_eq!((p[0].error_code, p[0].low_watermark), (1, -1), "past the high watermark, v{v}");
                    assert_eq!((p[1].error_code, p[1].low_watermark), (0, 0), "below the start: no change, v{v}");
                    assert_eq!(r.topics[1].partitions[0].error_code, 3, "unknown topic, v{v}");
                }
                ApiKey::OffsetDelete => {
                    let od = |group: &'static str| {
                        OffsetDeleteRequest::default()
                            .with_group_id(GroupId(StrBytes::from_static_str(group)))
                            .with_topics(vec![offset_delete_request::OffsetDeleteRequestTopic::default()
                                .with_name(name("t"))
                                .with_partitions(vec![
                                    offset_delete_request::OffsetDeleteRequestPartition::default()
                                        .with_partition_index(0),
                                    offset_delete_request::OffsetDeleteRequestPartition::default()
                                        .with_partition_index(7),
                                ])])
                    };
                    // "jg" was deleted above: unknown now.
                    let r: OffsetDeleteResponse = c.call(route.key, v, &od("jg"));
                    assert_eq!(r.error_code, 69, "offset delete v{v} of an unknown group");
                    let commit = OffsetCommitRequest::default()
                        .with_group_id(GroupId(StrBytes::from_static_str("od")))
                        .with_generation_id_or_member_epoch(-1)
                        .with_topics(vec![offset_commit_request::OffsetCommitRequestTopic::default()
                            .with_name(name("t"))
                            .with_partitions(vec![offset_commit_request::OffsetCommitRequestPartition::default()
                                .with_partition_index(0)
                                .with_committed_offset(5)])]);
                    let _: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, 8, &commit);
                    let r: OffsetDeleteResponse = c.call(route.key, v, &od("od"));
                    let codes: Vec<i16> = r.topics[0].partitions.iter().map(|p| p.error_code).collect();
                    assert_eq!((r.error_code, codes), (0, vec![0, 3]), "offset delete v{v}");
                    // Its only offset is gone, and so is the group.
                    let r: OffsetDeleteResponse = c.call(route.key, v, &od("od"));
                    assert_eq!(r.error_code, 69, "offset delete v{v}: the group went with its last offset");
                }
                // Security: on this PLAINTEXT listener the SASL APIs are in the wrong state.
                ApiKey::SaslHandshake => {
                    let req = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN"));
                    let r: SaslHandshakeResponse = c.call(route.key, v, &req);
                    assert_eq!(r.error_code, 34, "sasl handshake v{v}");
                }
                ApiKey::SaslAuthenticate => {
                    let r: SaslAuthenticateResponse = c.call(route.key, v, &SaslAuthenticateRequest::default());
                    assert_eq!(r.error_code, 34, "sasl authenticate v{v}");
                }
                ApiKey::DescribeUserScramCredentials => {
                    let req = DescribeUserScramCredentialsRequest::default()
                        .with_users(Some(vec![describe_user_scram_credentials_request::UserName::default()
                            .with_name(StrBytes::from_static_str("alice"))]));
                    let r: DescribeUserScramCredentialsResponse = c.call(route.key, v, &req);
                    assert_eq!(r.results[0].error_code, 91, "describe scram v{v}: no credential yet");
                }
                ApiKey::AlterUserScramCredentials => {
                    let m = chronik::security::scram::Mechanism::Sha256;
                    let req = AlterUserScramCredentialsRequest::default().with_upsertions(vec![
                        alter_user_scram_credentials_request::ScramCredentialUpsertion::default()
                            .with_name(StrBytes::from_static_str("alice"))
                            .with_mechanism(1)
                            .with_iterations(4096)
                            .with_salt(bytes::Bytes::from_static(b"salt"))
                            .with_salted_password(bytes::Bytes::from(m.salted_password(b"pw", b"salt", 4096))),
                    ]);
                    let r: AlterUserScramCredentialsResponse = c.call(route.key, v, &req);
                    assert_eq!(r.results[0].error_code, 0, "alter scram v{v}");
                    let r: DescribeUserScramCredentialsResponse = c.call(
                        ApiKey::DescribeUserScramCredentials,
                        0,
                        &DescribeUserScramCredentialsRequest::default(),
                    );
                    assert_eq!(r.results.len(), 1);
                    assert_eq!(r.results[0].user.as_str(), "alice");
                    assert_eq!(
                        (r.results[0].credential_infos[0].mechanism, r.results[0].credential_infos[0].iterations),
                        (1, 4096)
                    );
                }
                ApiKey::DescribeAcls => {
                    // Before CreateAcls in the route table: no ACL yet, with any filter.
                    let r: DescribeAclsResponse = c.call(route.key, v, &any_acl());
                    assert_eq!((r.error_code, r.resources.len()), (0, 0), "describe acls v{v}");
                }
                ApiKey::CreateAcls => {
                    let creation = create_acls_request::AclCreation::default()
                        .with_resource_type(2)
                        .with_resource_name(StrBytes::from_string(format!("acl-v{v}")))
                        .with_resource_pattern_type(3)
                        .with_principal(StrBytes::from_static_str("User:alice"))
                        .with_host(StrBytes::from_static_str("*"))
                        .with_operation(3)
                        .with_permission_type(3);
                    let bad = creation.clone().with_resource_pattern_type(2);
                    let r: CreateAclsResponse =
                        c.call(route.key, v, &CreateAclsRequest::default().with_creations(vec![creation, bad]));
                    assert_eq!(r.results[0].error_code, 0, "create acls v{v}");
                    assert_eq!(r.results[1].error_code, 42, "create acls v{v}: MATCH is not a stored pattern");
                    let r: DescribeAclsResponse = c.call(ApiKey::DescribeAcls, 3, &any_acl());
                    assert_eq!(r.resources.len() as i16, v, "describe acls after create v{v}");
                }
                ApiKey::DeleteAcls => {
                    let filter = delete_acls_request::DeleteAclsFilter::default()
                        .with_resource_type_filter(2)
                        .with_resource_name_filter(Some(StrBytes::from_string(format!("acl-v{v}"))))
                        .with_pattern_type_filter(3)
                        .with_principal_filter(None)
                        .with_host_filter(None)
                        .with_operation(1)
                        .with_permission_type(1);
                    let r: DeleteAclsResponse =
                        c.call(route.key, v, &DeleteAclsRequest::default().with_filters(vec![filter]));
                    let f = &r.filter_results[0];
                    assert_eq!((f.error_code, f.matching_acls.len()), (0, 1), "delete acls v{v}");
                    assert_eq!(f.matching_acls[0].principal.as_str(), "User:alice");
                }
                ApiKey::DescribeClientQuotas => {
                    let req = DescribeClientQuotasRequest::default().with_components(vec![
                        describe_client_quotas_request::ComponentData::default()
                            .with_entity_type(StrBytes::from_static_str("client-id"))
                            .with_match_type(2)
                            .with_match(None),
                    ]);
                    let r: DescribeClientQuotasResponse = c.call(route.key, v, &req);
                    assert_eq!(r.error_code, 0, "describe client quotas v{v}");
                    // After AlterClientQuotas in the route table: its v0 and v1 each set one entity.
                    assert_eq!(r.entries.map(|e| e.len()), Some(2), "describe client quotas v{v}");
                }
                ApiKey::AlterClientQuotas => {
                    let entry = alter_client_quotas_request::EntryData::default()
                        .with_entity(vec![alter_client_quotas_request::EntityData::default()
                            .with_entity_type(StrBytes::from_static_str("client-id"))
                            .with_entity_name(Some(StrBytes::from_string(format!("quota-v{v}"))))])
                        .with_ops(vec![alter_client_quotas_request::OpData::default()
                            .with_key(StrBytes::from_static_str("consumer_byte_rate"))
                            .with_value(1e6)]);
                    let bad = entry.clone().with_ops(vec![alter_client_quotas_request::OpData::default()
                        .with_key(StrBytes::from_static_str("bogus"))
                        .with_value(1.0)]);
                    let r: AlterClientQuotasResponse =
                        c.call(route.key, v, &AlterClientQuotasRequest::default().with_entries(vec![entry, bad]));
                    assert_eq!((r.entries[0].error_code, r.entries[1].error_code), (0, 42), "alter client quotas v{v}");
                }
                ApiKey::DescribeLogDirs => {
                    let r: DescribeLogDirsResponse =
                        c.call(route.key, v, &DescribeLogDirsRequest::default().with_topics(None));
                    assert_eq!(r.results.len(), 1, "describe log dirs v{v}: one log dir");
                    let dir = &r.results[0];
                    assert_eq!(dir.error_code, 0, "describe log dirs v{v}");
                    let t = dir
                        .topics
                        .iter()
                        .find(|t| t.name.0.as_str() == "t")
                        .unwrap_or_else(|| panic!("topic t is on this node: {dir:?}"));
                    assert!(t.partitions.iter().any(|p| p.partition_size > 0), "describe log dirs v{v}: {t:?}");
                    assert!(t.partitions.iter().all(|p| p.offset_lag == 0 && !p.is_future_key));
                    if v >= 4 {
                        assert!(dir.total_bytes > 0 && dir.usable_bytes >= 0, "describe log dirs v{v}: {dir:?}");
                    }
                }
                ApiKey::DescribeQuorum => {
                    let req = DescribeQuorumRequest::default().with_topics(vec![
                        describe_quorum_request::TopicData::default()
                            .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
                            .with_partitions(vec![describe_quorum_request::PartitionData::default()]),
                    ]);
                    let r: DescribeQuorumResponse = c.call(route.key, v, &req);
                    assert_eq!(r.error_code, 0, "describe quorum v{v}");
                    let p = &r.topics[0].partitions[0];
                    assert_eq!((p.leader_id.0, p.current_voters.len()), (1, 1), "describe quorum v{v}: {p:?}");
                    assert!(p.leader_epoch >= 1 && p.high_watermark > 0, "describe quorum v{v}: {p:?}");
                    if v >= 2 {
                        assert_eq!(r.nodes.len(), 1, "describe quorum v{v}: the voter's endpoint");
                    }
                }
                ApiKey::ElectLeaders => {
                    // One node: the preferred replica leads every partition already.
                    let mut req =
                        ElectLeadersRequest::default().with_timeout_ms(5_000).with_topic_partitions(Some(vec![
                            elect_leaders_request::TopicPartitions::default()
                                .with_topic(TopicName(StrBytes::from_static_str("t")))
                                .with_partitions(vec![0]),
                            elect_leaders_request::TopicPartitions::default()
                                .with_topic(TopicName(StrBytes::from_static_str("no-such-topic")))
                                .with_partitions(vec![0]),
                        ]));
                    if v >= 1 {
                        req = req.with_election_type(0);
                    }
                    let r: ElectLeadersResponse = c.call(route.key, v, &req);
                    let codes: Vec<i16> =
                        r.replica_election_results.iter().map(|t| t.partition_result[0].error_code).collect();
                    assert_eq!(codes, vec![84, 3], "elect leaders v{v}: {r:?}");
                }
                ApiKey::AlterPartitionReassignments => {
                    // One broker: a cancel of none, and a target with an unknown broker.
                    let part = |replicas: Option<Vec<i32>>| {
                        alter_partition_reassignments_request::ReassignablePartition::default()
                            .with_partition_index(0)
                            .with_replicas(replicas.map(|r| r.into_iter().map(BrokerId).collect()))
                    };
                    let req = AlterPartitionReassignmentsRequest::default().with_timeout_ms(5_000).with_topics(vec![
                        alter_partition_reassignments_request::ReassignableTopic::default()
                            .with_name(name("t"))
                            .with_partitions(vec![part(None), part(Some(vec![1, 9]))]),
                    ]);
                    let r: AlterPartitionReassignmentsResponse = c.call(route.key, v, &req);
                    let codes: Vec<i16> = r.responses[0].partitions.iter().map(|p| p.error_code).collect();
                    assert_eq!((r.error_code, codes), (0, vec![85, 39]), "alter reassignments v{v}: {r:?}");
                }
                ApiKey::ListPartitionReassignments => {
                    let req = ListPartitionReassignmentsRequest::default().with_timeout_ms(5_000);
                    let r: ListPartitionReassignmentsResponse = c.call(route.key, v, &req);
                    assert_eq!((r.error_code, r.topics.len()), (0, 0), "list reassignments v{v}: {r:?}");
                }
                ApiKey::AddPartitionsToTxn
                | ApiKey::AddOffsetsToTxn
                | ApiKey::EndTxn
                | ApiKey::TxnOffsetCommit
                | ApiKey::DescribeTransactions
                | ApiKey::ListTransactions => txn_api(&mut c, route.key, v),
                other => panic!("no test for {other:?}"),
            }
        }
    }
    // The retention change and partition growth are visible.
    let req = DescribeConfigsRequest::default().with_resources(vec![
        describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("t")),
    ]);
    let r: DescribeConfigsResponse = c.call(ApiKey::DescribeConfigs, 4, &req);
    let get = |k: &str| {
        r.results[0].configs.iter().find(|c| c.name.as_str() == k).and_then(|c| c.value.clone()).map(|v| v.to_string())
    };
    assert_eq!(get("retention.bytes").as_deref(), Some("1000000000"));
}

#[test]
fn unsupported_api_versions_request_gets_error_35_in_v0_layout() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(test_config(dir.path()));
    let mut c = Client::connect(node.addr);
    // api key 18, version 99, correlation id 7, null client id, no body
    c.send_raw(&[0, 18, 0, 99, 0, 0, 0, 7, 0xff, 0xff]);
    let mut buf = c.recv_raw().unwrap();
    use bytes::Buf;
    assert_eq!(buf.get_i32(), 7);
    let resp = <ApiVersionsResponse as kafka_protocol::protocol::Decodable>::decode(&mut buf, 0).unwrap();
    assert_eq!(resp.error_code, 35);
    assert!(resp.api_keys.iter().any(|k| k.api_key == 18));
}

#[test]
fn unknown_api_key_and_bad_frames_close_only_that_connection() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(test_config(dir.path()));
    let mut c = Client::connect(node.addr);
    c.send_raw(&[0x27, 0x0f, 0, 0, 0, 0, 0, 1, 0xff, 0xff]);
    assert!(c.closed_by_broker(), "unknown api key closes");

    let mut c = Client::connect(node.addr);
    use std::io::Write;
    c.stream.write_all(&(200 * 1024 * 1024i32).to_be_bytes()).unwrap();
    assert!(c.closed_by_broker(), "oversized frame closes");

    let mut c = Client::connect(node.addr);
    c.stream.write_all(&[0, 0, 0, 100, 0, 3]).unwrap();
    c.stream.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(c.closed_by_broker(), "truncated frame closes");

    let mut c = Client::connect(node.addr);
    let r: ApiVersionsResponse = c.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert_eq!(r.error_code, 0, "the broker is still serving");
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(test_config(dir.path()));
    let mut c = Client::connect(node.addr);
    create_topic(&mut c, "p", 1);
    let mut sent = Vec::new();
    for i in 0..30 {
        let id = if i % 3 == 0 {
            c.send(ApiKey::Produce, 9, &produce_req("p", 0, build_batch(0, -1, -1, -1, 1, &values(1)), -1))
        } else if i % 3 == 1 {
            c.send(ApiKey::Metadata, 12, &MetadataRequest::default())
        } else {
            c.send(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        };
        sent.push((id, i % 3));
    }
    for (id, kind) in sent {
        let got = match kind {
            0 => c.recv::<ProduceResponse>(ApiKey::Produce, 9).0,
            1 => c.recv::<MetadataResponse>(ApiKey::Metadata, 12).0,
            _ => c.recv::<ApiVersionsResponse>(ApiKey::ApiVersions, 3).0,
        };
        assert_eq!(got, id);
    }
}

#[test]
fn fetch_long_poll_wakes_on_produce_and_times_out_when_idle() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(test_config(dir.path()));
    let mut c = Client::connect(node.addr);
    create_topic(&mut c, "lp", 1);
    // Idle: the fetch waits out max_wait and returns nothing.
    let r: FetchResponse = c.call(ApiKey::Fetch, 12, &fetch_req("lp", 0, 300, 1));
    assert!(r.responses[0].partitions[0].records.as_ref().unwrap().is_empty());
    // A waiting fetch is answered by a produce from another connection.
    let addr = node.addr;
    let producer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        let mut p = Client::connect(addr);
        let r: ProduceResponse =
            p.call(ApiKey::Produce, 9, &produce_req("lp", 0, build_batch(0, -1, -1, -1, 1, &values(3)), -1));
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    });
    let started = Instant::now();
    let r: FetchResponse = c.call(ApiKey::Fetch, 12, &fetch_req("lp", 0, 20_000, 1));
    producer.join().unwrap();
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.high_watermark, 3);
    assert!(!p.records.as_ref().unwrap().is_empty());
    assert!(started.elapsed() < Duration::from_secs(20), "answered by the produce, not by max_wait");
}

#[test]
fn idempotent_retry_is_not_appended_twice_and_gap_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(test_config(dir.path()));
    let mut c = Client::connect(node.addr);
    create_topic(&mut c, "idem", 1);
    let pid: InitProducerIdResponse = c.call(
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest::default().with_transactional_id(None).with_transaction_timeout_ms(60_000),
    );
    let pid = pid.producer_id.0;
    let first = build_batch(0, pid, 0, 0, 1, &values(5));
    let r1: ProduceResponse = c.call(ApiKey::Produce, 9, &produce_req("idem", 0, first.clone(), -1));
    let r2: ProduceResponse = c.call(ApiKey::Produce, 9, &produce_req("idem", 0, first, -1));
    assert_eq!(r1.responses[0].partition_responses[0].base_offset, 0);
    assert_eq!(r2.responses[0].partition_responses[0].error_code, 0);
    assert_eq!(
        r2.responses[0].partition_responses[0].base_offset, 0,
        "duplicate acknowledged with its original offset"
    );
    let gap = build_batch(0, pid, 0, 7, 1, &values(1));
    let r3: ProduceResponse = c.call(ApiKey::Produce, 9, &produce_req("idem", 0, gap, -1));
    assert_eq!(r3.responses[0].partition_responses[0].error_code, 45, "OUT_OF_ORDER_SEQUENCE_NUMBER");
    let next = build_batch(0, pid, 0, 5, 1, &values(1));
    let r4: ProduceResponse = c.call(ApiKey::Produce, 9, &produce_req("idem", 0, next, -1));
    assert_eq!(r4.responses[0].partition_responses[0].base_offset, 5);
}

#[test]
fn corrupt_and_oversized_batches_are_rejected_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(test_config(dir.path()));
    let mut c = Client::connect(node.addr);
    create_topic(&mut c, "bad", 1);
    let mut batch = build_batch(0, -1, -1, -1, 1, &values(2));
    let last = batch.len() - 1;
    batch[last] ^= 0xff;
    let r: ProduceResponse = c.call(ApiKey::Produce, 9, &produce_req("bad", 0, batch, -1));
    assert_eq!(r.responses[0].partition_responses[0].error_code, 2, "CORRUPT_MESSAGE");
    let big = vec![7u8; 1_200_000];
    let recs = [(None, Some(&big[..]))];
    let r: ProduceResponse =
        c.call(ApiKey::Produce, 9, &produce_req("bad", 0, build_batch(0, -1, -1, -1, 1, &recs), -1));
    assert_eq!(r.responses[0].partition_responses[0].error_code, 10, "MESSAGE_TOO_LARGE");
    let r: ProduceResponse =
        c.call(ApiKey::Produce, 9, &produce_req("bad/name", 0, build_batch(0, -1, -1, -1, 1, &values(1)), -1));
    assert_eq!(r.responses[0].partition_responses[0].error_code, 17, "INVALID_TOPIC_EXCEPTION");
    let r: FetchResponse = c.call(ApiKey::Fetch, 12, &fetch_req("bad", 0, 0, 0));
    assert_eq!(r.responses[0].partitions[0].high_watermark, 0, "nothing was written");
}

#[test]
fn produce_request_v0_to_v2_is_advertised_but_refused() {
    let r = route_for(ApiKey::Produce as i16).unwrap();
    assert_eq!((r.advertised_min, r.min), (0, 3));
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(test_config(dir.path()));
    let mut c = Client::connect(node.addr);
    c.send_raw(&[0, 0, 0, 2, 0, 0, 0, 1, 0xff, 0xff, 0, 1, 0, 0, 0x13, 0x88, 0, 0, 0, 0]);
    assert!(c.closed_by_broker());
}

#[test]
fn runtime_fault_injection_is_refused_unless_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(test_config(dir.path()));
    let change = chronik::admin::FaultChange { cut: vec![2], ..Default::default() };
    let err = chronik::admin::send_faults(&node.admin.to_string(), &change).unwrap_err();
    assert!(err.to_string().contains("faults.runtime is off"), "{err}");
    drop(node);
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.faults.runtime = true;
    let node = start_node(config);
    chronik::admin::send_faults(&node.admin.to_string(), &change).unwrap();
    assert!(node.faults.dropping_to(2) && node.faults.dropping_from(2));
}

fn list_offset(c: &mut Client, topic: &str, ts: i64) -> (i64, i64) {
    let req = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![
        list_offsets_request::ListOffsetsTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![list_offsets_request::ListOffsetsPartition::default().with_timestamp(ts)]),
    ]);
    let r: ListOffsetsResponse = c.call(ApiKey::ListOffsets, 7, &req);
    let p = &r.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    (p.offset, p.timestamp)
}

#[test]
fn list_offsets_by_timestamp_earliest_latest_and_max() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(test_config(dir.path()));
    let mut c = Client::connect(node.addr);
    create_topic(&mut c, "ts", 1);
    for ts in [1000, 2000, 3000] {
        let r: ProduceResponse =
            c.call(ApiKey::Produce, 9, &produce_req("ts", 0, build_batch(0, -1, -1, -1, ts, &values(2)), -1));
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    }
    assert_eq!(list_offset(&mut c, "ts", -2).0, 0, "earliest");
    assert_eq!(list_offset(&mut c, "ts", -1).0, 6, "latest is the high watermark");
    assert_eq!(list_offset(&mut c, "ts", 1500), (2, 2000), "first batch at or after the timestamp");
    assert_eq!(list_offset(&mut c, "ts", 3000), (4, 3000));
    assert_eq!(list_offset(&mut c, "ts", 9999).0, -1, "nothing that late");
    assert_eq!(list_offset(&mut c, "ts", -3), (5, 3000), "max timestamp");
}

#[test]
fn acks_zero_is_not_answered_but_written() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(test_config(dir.path()));
    let mut c = Client::connect(node.addr);
    create_topic(&mut c, "fire", 1);
    c.send(ApiKey::Produce, 9, &produce_req("fire", 0, build_batch(0, -1, -1, -1, 1, &values(4)), 0));
    // The next answer on the connection belongs to the next request.
    let id = c.send(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    let (got, _): (i32, ApiVersionsResponse) = c.recv(ApiKey::ApiVersions, 3);
    assert_eq!(got, id, "no response was sent for acks=0");
    let r: FetchResponse = c.call(ApiKey::Fetch, 12, &fetch_req("fire", 0, 5_000, 1));
    assert_eq!(r.responses[0].partitions[0].high_watermark, 4);
}

#[test]
fn producer_state_and_data_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    let batch;
    {
        let node = start_node(config.clone());
        let mut c = Client::connect(node.addr);
        create_topic(&mut c, "keep", 1);
        let pid: InitProducerIdResponse = c.call(
            ApiKey::InitProducerId,
            4,
            &InitProducerIdRequest::default().with_transactional_id(None).with_transaction_timeout_ms(60_000),
        );
        batch = build_batch(0, pid.producer_id.0, 0, 0, 1, &values(3));
        let r: ProduceResponse = c.call(ApiKey::Produce, 9, &produce_req("keep", 0, batch.clone(), -1));
        assert_eq!(r.responses[0].partition_responses[0].base_offset, 0);
    }
    let node = start_node(config);
    let mut c = Client::connect(node.addr);
    let r: ProduceResponse = c.call(ApiKey::Produce, 9, &produce_req("keep", 0, batch, -1));
    let p = &r.responses[0].partition_responses[0];
    assert_eq!((p.error_code, p.base_offset), (0, 0), "the retried batch is known after the restart");
    let r: FetchResponse = c.call(ApiKey::Fetch, 12, &fetch_req("keep", 0, 0, 0));
    assert_eq!(r.responses[0].partitions[0].high_watermark, 3, "and it was not appended twice");
}

#[test]
fn retention_by_size_deletes_segments_and_moves_the_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.storage.retention_check_interval = std::time::Duration::from_millis(100);
    let node = start_node(config);
    let mut c = Client::connect(node.addr);
    let req = CreateTopicsRequest::default().with_timeout_ms(10_000).with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(name("small"))
            .with_num_partitions(1)
            .with_replication_factor(1)
            .with_configs(vec![
                create_topics_request::CreatableTopicConfig::default()
                    .with_name(StrBytes::from_static_str("internal.segment.bytes"))
                    .with_value(Some(StrBytes::from_static_str("2048"))),
                create_topics_request::CreatableTopicConfig::default()
                    .with_name(StrBytes::from_static_str("retention.bytes"))
                    .with_value(Some(StrBytes::from_static_str("4096"))),
            ]),
    ]);
    let r: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &req);
    assert_eq!(r.topics[0].error_code, 0);
    for _ in 0..30 {
        let r: ProduceResponse =
            c.call(ApiKey::Produce, 9, &produce_req("small", 0, build_batch(0, -1, -1, -1, 1, &values(10)), -1));
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (earliest, _) = list_offset(&mut c, "small", -2);
        if earliest > 0 {
            // Reading below the log start is out of range; from it, data comes back.
            let r: FetchResponse = c.call(ApiKey::Fetch, 12, &fetch_req("small", 0, 0, 0));
            assert_eq!(r.responses[0].partitions[0].error_code, 1, "OFFSET_OUT_OF_RANGE below the log start");
            let r: FetchResponse = c.call(ApiKey::Fetch, 12, &fetch_req("small", earliest, 0, 0));
            assert!(!r.responses[0].partitions[0].records.as_ref().unwrap().is_empty());
            break;
        }
        assert!(Instant::now() < deadline, "retention never moved the log start");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A transactional producer's id and epoch, from InitProducerId v4.
fn init_txn(c: &mut Client, id: &str) -> (i64, i16) {
    let req = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(StrBytes::from_string(id.to_string()))))
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let r: InitProducerIdResponse = c.call(ApiKey::InitProducerId, 4, &req);
    assert_eq!(r.error_code, 0, "init {id}");
    (r.producer_id.0, r.producer_epoch)
}

fn add_partitions(c: &mut Client, id: &str, (pid, epoch): (i64, i16), partitions: Vec<i32>) -> Vec<i16> {
    let topic = add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
        .with_name(name("t"))
        .with_partitions(partitions);
    let req = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(TransactionalId(StrBytes::from_string(id.to_string())))
        .with_v3_and_below_producer_id(ProducerId(pid))
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(vec![topic]);
    let r: AddPartitionsToTxnResponse = c.call(ApiKey::AddPartitionsToTxn, 3, &req);
    r.results_by_topic_v3_and_below[0].results_by_partition.iter().map(|p| p.partition_error_code).collect()
}

/// The transaction APIs at version `v` (the coordinator side: markers are not written on this
/// branch, so a completed transaction stays PrepareCommit/PrepareAbort).
fn txn_api(c: &mut Client, key: ApiKey, v: i16) {
    let tid = |s: &str| TransactionalId(StrBytes::from_string(s.to_string()));
    match key {
        ApiKey::AddPartitionsToTxn => {
            let id = format!("tx-apt-{v}");
            let (pid, epoch) = init_txn(c, &id);
            let topic = |parts: Vec<i32>| {
                add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                    .with_name(name("t"))
                    .with_partitions(parts)
            };
            if v < 4 {
                let req = AddPartitionsToTxnRequest::default()
                    .with_v3_and_below_transactional_id(tid(&id))
                    .with_v3_and_below_producer_id(ProducerId(pid))
                    .with_v3_and_below_producer_epoch(epoch)
                    .with_v3_and_below_topics(vec![topic(vec![0])]);
                let r: AddPartitionsToTxnResponse = c.call(key, v, &req);
                assert_eq!(r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code, 0);
                // A stale epoch: PRODUCER_FENCED (INVALID_PRODUCER_EPOCH before v2).
                let stale = req.with_v3_and_below_producer_epoch(epoch - 1);
                let r: AddPartitionsToTxnResponse = c.call(key, v, &stale);
                let code = r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code;
                assert_eq!(code, if v < 2 { 47 } else { 90 }, "stale epoch v{v}");
            } else {
                let txn = |verify: bool, parts: Vec<i32>| {
                    add_partitions_to_txn_request::AddPartitionsToTxnTransaction::default()
                        .with_transactional_id(tid(&id))
                        .with_producer_id(ProducerId(pid))
                        .with_producer_epoch(epoch)
                        .with_verify_only(verify)
                        .with_topics(vec![topic(parts)])
                };
                let add = AddPartitionsToTxnRequest::default().with_transactions(vec![txn(false, vec![0])]);
                let r: AddPartitionsToTxnResponse = c.call(key, v, &add);
                assert_eq!(r.error_code, 0);
                assert_eq!(
                    r.results_by_transaction[0].topic_results[0].results_by_partition[0].partition_error_code,
                    0
                );
                // KIP-890 verification: partition 0 is in the transaction; partition 5 does not
                // exist and is not in it.
                let verify = AddPartitionsToTxnRequest::default().with_transactions(vec![txn(true, vec![0, 5])]);
                let r: AddPartitionsToTxnResponse = c.call(key, v, &verify);
                let codes: Vec<i16> = r.results_by_transaction[0].topic_results[0]
                    .results_by_partition
                    .iter()
                    .map(|p| p.partition_error_code)
                    .collect();
                assert_eq!(codes, vec![0, 120], "verify v{v}");
            }
            // An unknown partition: nothing is added, the others are not attempted.
            let other = format!("tx-apt-unknown-{v}");
            let producer = init_txn(c, &other);
            assert_eq!(add_partitions(c, &other, producer, vec![0, 9]), vec![55, 3]);
        }
        ApiKey::AddOffsetsToTxn => {
            let id = format!("tx-aot-{v}");
            let (pid, epoch) = init_txn(c, &id);
            let req = AddOffsetsToTxnRequest::default()
                .with_transactional_id(tid(&id))
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch)
                .with_group_id(GroupId(StrBytes::from_static_str("txg")));
            let r: AddOffsetsToTxnResponse = c.call(key, v, &req);
            assert_eq!(r.error_code, 0, "add offsets v{v}");
            let r: AddOffsetsToTxnResponse = c.call(key, v, &req.clone().with_producer_id(ProducerId(pid + 1000)));
            assert_eq!(r.error_code, 49, "INVALID_PRODUCER_ID_MAPPING v{v}");
        }
        ApiKey::EndTxn => {
            let id = format!("tx-end-{v}");
            let producer = init_txn(c, &id);
            let req = EndTxnRequest::default()
                .with_transactional_id(tid(&id))
                .with_producer_id(ProducerId(producer.0))
                .with_producer_epoch(producer.1)
                .with_committed(true);
            let r: EndTxnResponse = c.call(key, v, &req);
            assert_eq!(r.error_code, 48, "EndTxn without a transaction: INVALID_TXN_STATE v{v}");
            assert_eq!(add_partitions(c, &id, producer, vec![0]), vec![0]);
            let r: EndTxnResponse = c.call(key, v, &req.clone().with_producer_epoch(producer.1 + 1));
            assert_eq!(r.error_code, if v < 2 { 47 } else { 90 }, "a wrong epoch v{v}");
            let r: EndTxnResponse = c.call(key, v, &req.clone().with_committed(false));
            assert_eq!(r.error_code, 0, "abort v{v}");
            if v >= 5 {
                assert_eq!((r.producer_id.0, r.producer_epoch), producer);
            }
            let r: EndTxnResponse = c.call(key, v, &req);
            assert_eq!(r.error_code, 48, "commit after abort v{v}");
        }
        ApiKey::TxnOffsetCommit => {
            let id = format!("tx-toc-{v}");
            let (pid, epoch) = init_txn(c, &id);
            let add = AddOffsetsToTxnRequest::default()
                .with_transactional_id(tid(&id))
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch)
                .with_group_id(GroupId(StrBytes::from_static_str("txg")));
            let r: AddOffsetsToTxnResponse = c.call(ApiKey::AddOffsetsToTxn, 3, &add);
            assert_eq!(r.error_code, 0);
            let part = |i: i32| {
                txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                    .with_partition_index(i)
                    .with_committed_offset(42)
                    .with_committed_leader_epoch(-1)
            };
            let mut req = TxnOffsetCommitRequest::default()
                .with_transactional_id(tid(&id))
                .with_group_id(GroupId(StrBytes::from_static_str("txg")))
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch)
                .with_topics(vec![txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                    .with_name(name("t"))
                    .with_partitions(vec![part(0), part(7)])]);
            if v >= 3 {
                req = req.with_generation_id(-1);
            }
            let r: TxnOffsetCommitResponse = c.call(key, v, &req);
            let codes: Vec<i16> = r.topics[0].partitions.iter().map(|p| p.error_code).collect();
            assert_eq!(codes, vec![0, 3], "txn offset commit v{v}");
            // Pending: the group has no committed offset until the transaction commits.
            let fetch = OffsetFetchRequest::default()
                .with_group_id(GroupId(StrBytes::from_static_str("txg")))
                .with_topics(Some(vec![offset_fetch_request::OffsetFetchRequestTopic::default()
                    .with_name(name("t"))
                    .with_partition_indexes(vec![0])]));
            let r: OffsetFetchResponse = c.call(ApiKey::OffsetFetch, 5, &fetch);
            assert_eq!(r.topics[0].partitions[0].committed_offset, -1);
            if v >= 3 {
                // A generation the group does not have.
                let r: TxnOffsetCommitResponse = c.call(
                    key,
                    v,
                    &req.clone().with_generation_id(7).with_member_id(StrBytes::from_static_str("someone")),
                );
                assert!(r.topics[0].partitions.iter().all(|p| p.error_code != 0), "v{v}: {r:?}");
            }
        }
        ApiKey::DescribeTransactions => {
            let req = DescribeTransactionsRequest::default().with_transactional_ids(vec![
                tid("tx-end-0"),
                tid("tx-aot-0"),
                tid("no-such-txn"),
            ]);
            // The aborted transaction's markers are written by the coordinator after EndTxn
            // answered: PrepareAbort until they are, then CompleteAbort with no partitions.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            let r = loop {
                let r: DescribeTransactionsResponse = c.call(key, v, &req);
                if r.transaction_states[0].transaction_state.as_str() != "PrepareAbort" {
                    break r;
                }
                assert!(std::time::Instant::now() < deadline, "the abort's markers were never completed");
                std::thread::sleep(std::time::Duration::from_millis(50));
            };
            let s = &r.transaction_states;
            assert_eq!((s[0].error_code, s[0].transaction_state.as_str()), (0, "CompleteAbort"));
            assert_eq!(s[0].transaction_timeout_ms, 60_000);
            assert!(s[0].transaction_start_time_ms > 0);
            assert!(s[0].topics.is_empty(), "a completed transaction has no partitions: {:?}", s[0].topics);
            assert_eq!((s[1].error_code, s[1].transaction_state.as_str()), (0, "Ongoing"));
            assert!(s[1].topics.is_empty(), "a group is not a partition");
            assert_eq!(s[2].error_code, 105, "TRANSACTIONAL_ID_NOT_FOUND");
        }
        ApiKey::ListTransactions => {
            let all: ListTransactionsResponse = c.call(key, v, &ListTransactionsRequest::default());
            assert_eq!(all.error_code, 0);
            assert!(all.transaction_states.iter().any(|t| t.transactional_id.0.as_str() == "tx-init"));
            let mut req = ListTransactionsRequest::default().with_state_filters(vec![
                StrBytes::from_static_str("CompleteAbort"),
                StrBytes::from_static_str("Bogus"),
            ]);
            if v >= 1 {
                req = req.with_duration_filter(-1);
            }
            let r: ListTransactionsResponse = c.call(key, v, &req);
            assert_eq!(r.unknown_state_filters, vec![StrBytes::from_static_str("Bogus")]);
            assert!(!r.transaction_states.is_empty());
            assert!(r.transaction_states.iter().all(|t| t.transaction_state.as_str() == "CompleteAbort"));
        }
        other => panic!("not a transaction API: {other:?}"),
    }
}
