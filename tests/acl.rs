//! In-process authorization tests: nodes with `[authorizer] enabled`, requests dispatched
//! through the route table inside a scoped `principal::SESSION` (as the connection task scopes
//! it), so each request runs as a chosen principal. Covers the ACL matrix of issue 13 (READ on
//! topic `a` and group `g` only), PREFIXED and DENY rules, super-users, the audit line, and an
//! ACL change reaching every node of a 3-node cluster within a second.

mod common;

use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use chronik::broker::routes::dispatch;
use chronik::broker::BrokerCtx;
use chronik::config::Config;
use chronik::log::batch::build_batch;
use chronik::security::principal::{Principal, Session, SESSION};
use common::{cluster_configs, CapturedLog};

const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
const GROUP_AUTHORIZATION_FAILED: i16 = 30;
const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;

/// A node whose broker context the test can call into.
struct Node {
    ctx: Arc<BrokerCtx>,
    admin: Option<std::net::SocketAddr>,
    system: actix::System,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.system.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

type Started = (Arc<BrokerCtx>, actix::System, Option<std::net::SocketAddr>);

fn spawn(config: Config, log: CapturedLog) -> (mpsc::Receiver<Started>, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let system = actix::System::new();
        let drain = slog::LevelFilter::new(log, slog::Level::Info);
        let logger = slog::Logger::root(slog::Drain::fuse(drain), slog::o!("node" => config.node_id));
        let handle = system.block_on(chronik::node::start(config, logger)).expect("node starts");
        tx.send((handle.ctx.clone(), actix::System::current(), handle.admin_addr)).unwrap();
        let _keep = handle;
        system.run().unwrap();
    });
    (rx, thread)
}

fn secured(mut c: Config) -> Config {
    c.authorizer.enabled = true;
    c.authorizer.super_users = vec!["User:admin".into()];
    c.validate().unwrap();
    c
}

fn start(configs: Vec<Config>, log: &CapturedLog) -> Vec<Node> {
    let rxs: Vec<_> = configs.into_iter().map(|c| spawn(secured(c), log.clone())).collect();
    rxs.into_iter()
        .map(|(rx, thread)| {
            let (ctx, system, admin) = rx.recv_timeout(Duration::from_secs(60)).expect("node started");
            Node { ctx, system, admin, thread: Some(thread) }
        })
        .collect()
}

/// Runs request futures in the test thread, one principal per call.
struct Caller {
    rt: tokio::runtime::Runtime,
    correlation: i32,
}

impl Caller {
    fn new() -> Self {
        Caller { rt: tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap(), correlation: 0 }
    }

    /// Sends `req` through `node`'s route table as `User:user` from 127.0.0.1.
    fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        node: &Node,
        user: &str,
        key: ApiKey,
        v: i16,
        req: &Req,
    ) -> Resp {
        self.correlation += 1;
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(v)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("acl-test")));
        let mut body = BytesMut::new();
        header.encode(&mut body, key.request_header_version(v)).unwrap();
        req.encode(&mut body, v).unwrap();
        let session = Arc::new(Session {
            principal: Principal::user(user),
            listener: "PLAINTEXT".into(),
            host: "127.0.0.1".into(),
        });
        let fut = dispatch(&node.ctx, body.freeze()).expect("routed");
        let chain = self.rt.block_on(SESSION.scope(session, fut)).expect("handled").expect("a response");
        let mut buf = chain.to_bytes().unwrap();
        buf.advance(4);
        let h = ResponseHeader::decode(&mut buf, key.response_header_version(v)).unwrap();
        assert_eq!(h.correlation_id, self.correlation);
        Resp::decode(&mut buf, v).unwrap()
    }
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn acl(rt: i8, resource: &str, pattern: i8, who: &str, op: i8, permission: i8) -> create_acls_request::AclCreation {
    create_acls_request::AclCreation::default()
        .with_resource_type(rt)
        .with_resource_name(s(resource))
        .with_resource_pattern_type(pattern)
        .with_principal(s(who))
        .with_host(s("*"))
        .with_operation(op)
        .with_permission_type(permission)
}

// Kafka's codes: TOPIC 2, GROUP 3; LITERAL 3, PREFIXED 4; READ 3, WRITE 4; DENY 2, ALLOW 3.
const TOPIC: i8 = 2;
const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
const GROUP: i8 = 3;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const READ: i8 = 3;
const WRITE: i8 = 4;
const DENY: i8 = 2;
const ALLOW: i8 = 3;

fn create_acls(c: &mut Caller, node: &Node, acls: Vec<create_acls_request::AclCreation>) {
    let r: CreateAclsResponse =
        c.call(node, "admin", ApiKey::CreateAcls, 3, &CreateAclsRequest::default().with_creations(acls));
    assert!(r.results.iter().all(|r| r.error_code == 0), "{r:?}");
}

fn create_topic(c: &mut Caller, node: &Node, user: &str, topic: &str) -> i16 {
    let req = CreateTopicsRequest::default().with_timeout_ms(10_000).with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(name(topic))
            .with_num_partitions(1)
            .with_replication_factor(-1),
    ]);
    let r: CreateTopicsResponse = c.call(node, user, ApiKey::CreateTopics, 7, &req);
    r.topics[0].error_code
}

fn produce(c: &mut Caller, node: &Node, user: &str, topic: &str) -> i16 {
    let values: Vec<chronik::log::batch::KeyValue<'static>> = vec![(Some(&b"k"[..]), Some(&b"v"[..]))];
    let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![
        produce_request::TopicProduceData::default().with_name(name(topic)).with_partition_data(vec![
            produce_request::PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(Bytes::from(build_batch(0, -1, -1, -1, 1, &values)))),
        ]),
    ]);
    let r: ProduceResponse = c.call(node, user, ApiKey::Produce, 9, &req);
    r.responses[0].partition_responses[0].error_code
}

fn fetch(c: &mut Caller, node: &Node, user: &str, topic: &str) -> (i16, usize) {
    let req = FetchRequest::default().with_max_wait_ms(0).with_min_bytes(0).with_max_bytes(1 << 20).with_topics(vec![
        fetch_request::FetchTopic::default().with_topic(name(topic)).with_partitions(vec![
            fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20),
        ]),
    ]);
    let r: FetchResponse = c.call(node, user, ApiKey::Fetch, 12, &req);
    let p = &r.responses[0].partitions[0];
    (p.error_code, p.records.as_ref().map(|b| b.len()).unwrap_or(0))
}

fn commit(c: &mut Caller, node: &Node, user: &str, group: &str, topic: &str) -> i16 {
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(s(""))
        .with_topics(vec![offset_commit_request::OffsetCommitRequestTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![offset_commit_request::OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(1)])]);
    let r: OffsetCommitResponse = c.call(node, user, ApiKey::OffsetCommit, 8, &req);
    r.topics[0].partitions[0].error_code
}

fn metadata_topics(c: &mut Caller, node: &Node, user: &str, topics: Option<&[&str]>) -> Vec<(String, i16)> {
    let req = MetadataRequest::default().with_allow_auto_topic_creation(false).with_topics(topics.map(|ts| {
        ts.iter().map(|t| metadata_request::MetadataRequestTopic::default().with_name(Some(name(t)))).collect()
    }));
    let r: MetadataResponse = c.call(node, user, ApiKey::Metadata, 12, &req);
    r.topics.iter().map(|t| (t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default(), t.error_code)).collect()
}

fn alter_config(c: &mut Caller, node: &Node, user: &str, topic: &str) -> i16 {
    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
        incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s(topic))
            .with_configs(vec![incremental_alter_configs_request::AlterableConfig::default()
                .with_name(s("retention.ms"))
                .with_config_operation(0)
                .with_value(Some(s("60000")))]),
    ]);
    let r: IncrementalAlterConfigsResponse = c.call(node, user, ApiKey::IncrementalAlterConfigs, 1, &req);
    r.responses[0].error_code
}

/// The matrix of issue 13: a principal with only READ on topic `a` and group `g` can consume
/// `a` with `g`, and is refused with Kafka's codes for everything else.
#[test]
fn read_only_principal_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let log = CapturedLog::default();
    let nodes = start(vec![common::test_config(dir.path())], &log);
    let n = &nodes[0];
    let mut c = Caller::new();

    // The super-user sets the stage; no ACL is needed for it.
    assert_eq!(create_topic(&mut c, n, "admin", "a"), 0);
    assert_eq!(create_topic(&mut c, n, "admin", "b"), 0);
    assert_eq!(produce(&mut c, n, "admin", "a"), 0);
    assert_eq!(produce(&mut c, n, "admin", "b"), 0);
    create_acls(
        &mut c,
        n,
        vec![
            acl(TOPIC, "a", LITERAL, "User:reader", READ, ALLOW),
            acl(GROUP, "g", LITERAL, "User:reader", READ, ALLOW),
        ],
    );

    // Allowed: consume `a` with `g`.
    let (code, bytes) = fetch(&mut c, n, "reader", "a");
    assert_eq!(code, 0);
    assert!(bytes > 0, "the reader gets a's records");
    assert_eq!(commit(&mut c, n, "reader", "g", "a"), 0);
    let fc: FindCoordinatorResponse =
        c.call(n, "reader", ApiKey::FindCoordinator, 3, &FindCoordinatorRequest::default().with_key(s("g")));
    assert_eq!(fc.error_code, 0);
    let of: OffsetFetchResponse = c.call(
        n,
        "reader",
        ApiKey::OffsetFetch,
        7,
        &OffsetFetchRequest::default().with_group_id(GroupId(s("g"))).with_topics(None),
    );
    assert_eq!((of.error_code, of.topics.len(), of.topics[0].partitions[0].committed_offset), (0, 1, 1));
    // Metadata lists only `a`; asking for `b` by name is refused.
    assert_eq!(metadata_topics(&mut c, n, "reader", None), vec![("a".to_string(), 0)]);
    assert_eq!(metadata_topics(&mut c, n, "reader", Some(&["b"])), vec![("b".to_string(), TOPIC_AUTHORIZATION_FAILED)]);

    // Refused: produce to `a`, any access to `b`, another group, admin operations.
    assert_eq!(produce(&mut c, n, "reader", "a"), TOPIC_AUTHORIZATION_FAILED);
    assert_eq!(produce(&mut c, n, "reader", "b"), TOPIC_AUTHORIZATION_FAILED);
    assert_eq!(fetch(&mut c, n, "reader", "b"), (TOPIC_AUTHORIZATION_FAILED, 0));
    assert_eq!(commit(&mut c, n, "reader", "g", "b"), TOPIC_AUTHORIZATION_FAILED);
    assert_eq!(commit(&mut c, n, "reader", "other", "a"), GROUP_AUTHORIZATION_FAILED);
    let join = JoinGroupRequest::default()
        .with_group_id(GroupId(s("other")))
        .with_session_timeout_ms(10_000)
        .with_member_id(s(""))
        .with_protocol_type(s("consumer"));
    let j: JoinGroupResponse = c.call(n, "reader", ApiKey::JoinGroup, 3, &join);
    assert_eq!(j.error_code, GROUP_AUTHORIZATION_FAILED);
    assert_eq!(create_topic(&mut c, n, "reader", "c"), TOPIC_AUTHORIZATION_FAILED);
    let del = DeleteTopicsRequest::default().with_topic_names(vec![name("a")]).with_timeout_ms(10_000);
    let d: DeleteTopicsResponse = c.call(n, "reader", ApiKey::DeleteTopics, 4, &del);
    assert_eq!(d.responses[0].error_code, TOPIC_AUTHORIZATION_FAILED);
    assert_eq!(alter_config(&mut c, n, "reader", "a"), TOPIC_AUTHORIZATION_FAILED);
    // The issue-11 APIs ask too: DeleteRecords (DELETE topic), OffsetDelete (DELETE group),
    // DescribeTopicPartitions (DESCRIBE topic), ListConfigResources (DESCRIBE_CONFIGS cluster).
    let dr = DeleteRecordsRequest::default().with_timeout_ms(5_000).with_topics(vec![
        delete_records_request::DeleteRecordsTopic::default().with_name(name("a")).with_partitions(vec![
            delete_records_request::DeleteRecordsPartition::default().with_partition_index(0).with_offset(1),
        ]),
    ]);
    let r: DeleteRecordsResponse = c.call(n, "reader", ApiKey::DeleteRecords, 2, &dr);
    assert_eq!(r.topics[0].partitions[0].error_code, TOPIC_AUTHORIZATION_FAILED);
    let od = OffsetDeleteRequest::default().with_group_id(GroupId(s("g"))).with_topics(vec![
        offset_delete_request::OffsetDeleteRequestTopic::default()
            .with_name(name("a"))
            .with_partitions(vec![offset_delete_request::OffsetDeleteRequestPartition::default()]),
    ]);
    let r: OffsetDeleteResponse = c.call(n, "reader", ApiKey::OffsetDelete, 0, &od);
    assert_eq!(r.error_code, GROUP_AUTHORIZATION_FAILED);
    let dtp = DescribeTopicPartitionsRequest::default()
        .with_topics(vec![describe_topic_partitions_request::TopicRequest::default().with_name(name("b"))])
        .with_response_partition_limit(100);
    let r: DescribeTopicPartitionsResponse = c.call(n, "reader", ApiKey::DescribeTopicPartitions, 0, &dtp);
    assert_eq!(r.topics[0].error_code, TOPIC_AUTHORIZATION_FAILED);
    let all = DescribeTopicPartitionsRequest::default().with_response_partition_limit(100);
    let r: DescribeTopicPartitionsResponse = c.call(n, "reader", ApiKey::DescribeTopicPartitions, 0, &all);
    let listed: Vec<String> = r.topics.iter().filter_map(|t| t.name.as_ref().map(|n| n.0.to_string())).collect();
    assert!(listed.contains(&"a".to_string()) && !listed.contains(&"b".to_string()), "{listed:?}");
    let r: ListConfigResourcesResponse =
        c.call(n, "reader", ApiKey::ListConfigResources, 1, &ListConfigResourcesRequest::default());
    assert_eq!(r.error_code, CLUSTER_AUTHORIZATION_FAILED);
    let dg: DeleteGroupsResponse = c.call(
        n,
        "reader",
        ApiKey::DeleteGroups,
        2,
        &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("g"))]),
    );
    assert_eq!(dg.results[0].error_code, GROUP_AUTHORIZATION_FAILED);
    let dc: DescribeClusterResponse =
        c.call(n, "reader", ApiKey::DescribeCluster, 0, &DescribeClusterRequest::default());
    assert_eq!(dc.error_code, CLUSTER_AUTHORIZATION_FAILED);
    // ElectLeaders asks ALTER on the cluster: the top-level code and every partition's.
    let el = ElectLeadersRequest::default().with_timeout_ms(5_000).with_topic_partitions(Some(vec![
        elect_leaders_request::TopicPartitions::default().with_topic(name("a")).with_partitions(vec![0]),
    ]));
    let r: ElectLeadersResponse = c.call(n, "reader", ApiKey::ElectLeaders, 2, &el);
    assert_eq!(r.error_code, CLUSTER_AUTHORIZATION_FAILED);
    assert_eq!(r.replica_election_results[0].partition_result[0].error_code, CLUSTER_AUTHORIZATION_FAILED);
    // DescribeLogDirs asks DESCRIBE on the cluster: no results.
    let r: DescribeLogDirsResponse =
        c.call(n, "reader", ApiKey::DescribeLogDirs, 4, &DescribeLogDirsRequest::default().with_topics(None));
    assert_eq!((r.error_code, r.results.len()), (CLUSTER_AUTHORIZATION_FAILED, 0));
    // DescribeQuorum asks DESCRIBE on the cluster too.
    let dq = DescribeQuorumRequest::default().with_topics(vec![describe_quorum_request::TopicData::default()
        .with_topic_name(name("__cluster_metadata"))
        .with_partitions(vec![describe_quorum_request::PartitionData::default()])]);
    let r: DescribeQuorumResponse = c.call(n, "reader", ApiKey::DescribeQuorum, 2, &dq);
    assert_eq!((r.error_code, r.topics.len()), (CLUSTER_AUTHORIZATION_FAILED, 0));
    // Transactions, partition side: WriteTxnMarkers needs CLUSTER_ACTION on the cluster (nothing
    // is written), DescribeProducers READ on the topic.
    let marker =
        write_txn_markers_request::WritableTxnMarker::default().with_producer_id(ProducerId(1)).with_topics(vec![
            write_txn_markers_request::WritableTxnMarkerTopic::default()
                .with_name(name("a"))
                .with_partition_indexes(vec![0]),
        ]);
    let req = WriteTxnMarkersRequest::default().with_markers(vec![marker]);
    let r: WriteTxnMarkersResponse = c.call(n, "reader", ApiKey::WriteTxnMarkers, 1, &req);
    assert_eq!(r.markers[0].topics[0].partitions[0].error_code, CLUSTER_AUTHORIZATION_FAILED);
    let dp = |t: &str| {
        DescribeProducersRequest::default().with_topics(vec![describe_producers_request::TopicRequest::default()
            .with_name(name(t))
            .with_partition_indexes(vec![0])])
    };
    let r: DescribeProducersResponse = c.call(n, "reader", ApiKey::DescribeProducers, 0, &dp("b"));
    assert_eq!(r.topics[0].partitions[0].error_code, TOPIC_AUTHORIZATION_FAILED);
    let r: DescribeProducersResponse = c.call(n, "reader", ApiKey::DescribeProducers, 0, &dp("a"));
    assert_eq!(r.topics[0].partitions[0].error_code, 0, "READ on a is granted");
    // Transactional records need WRITE on the transactional id (checked before the topic).
    let mut txn = build_batch(0, 3, 0, 0, 1, &[(Some(&b"k"[..]), Some(&b"v"[..]))]);
    txn[21..23].copy_from_slice(&0x10i16.to_be_bytes());
    chronik::log::batch::finish_batch(&mut txn);
    let req = ProduceRequest::default()
        .with_transactional_id(Some(TransactionalId(s("tid"))))
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![produce_request::TopicProduceData::default().with_name(name("a")).with_partition_data(
            vec![produce_request::PartitionProduceData::default().with_index(0).with_records(Some(Bytes::from(txn)))],
        )]);
    let r: ProduceResponse = c.call(n, "reader", ApiKey::Produce, 9, &req);
    assert_eq!(r.responses[0].partition_responses[0].error_code, TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    let ca: CreateAclsResponse = c.call(
        n,
        "reader",
        ApiKey::CreateAcls,
        3,
        &CreateAclsRequest::default().with_creations(vec![acl(TOPIC, "b", LITERAL, "User:reader", READ, ALLOW)]),
    );
    assert_eq!(ca.results[0].error_code, CLUSTER_AUTHORIZATION_FAILED);
    let ip: InitProducerIdResponse = c.call(
        n,
        "reader",
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    );
    assert_eq!(ip.error_code, CLUSTER_AUTHORIZATION_FAILED, "idempotent producing needs WRITE somewhere");
    // Nothing changed: `a` still exists with its config, `b` untouched.
    assert!(!n.ctx.image().topics["a"].configs.contains_key("retention.ms"));
    // Every refusal left one audit line naming the principal and the resource, never a secret.
    let line = log.wait_for(&["authorization denied", "User:reader", "WRITE", "resource: a"], Duration::from_secs(5));
    assert!(line.contains("host: 127.0.0.1"), "{line}");
    // The anonymous principal sees nothing at all.
    assert!(metadata_topics(&mut c, n, "ANONYMOUS", None).is_empty());
}

/// PREFIXED allows, a DENY inside the prefix wins, DENY of READ leaves DESCRIBE, and removing
/// ACLs takes their effect away at once.
#[test]
fn prefixed_deny_and_removal() {
    let dir = tempfile::tempdir().unwrap();
    let log = CapturedLog::default();
    let nodes = start(vec![common::test_config(dir.path())], &log);
    let n = &nodes[0];
    let mut c = Caller::new();
    for t in ["pay-in", "pay-secret", "other"] {
        assert_eq!(create_topic(&mut c, n, "admin", t), 0);
    }
    create_acls(
        &mut c,
        n,
        vec![
            acl(TOPIC, "pay-", PREFIXED, "User:writer", WRITE, ALLOW),
            acl(TOPIC, "pay-secret", LITERAL, "User:writer", WRITE, DENY),
            acl(TOPIC, "*", LITERAL, "User:*", READ, ALLOW),
            acl(TOPIC, "other", LITERAL, "User:writer", READ, DENY),
        ],
    );
    assert_eq!(produce(&mut c, n, "writer", "pay-in"), 0);
    assert_eq!(produce(&mut c, n, "writer", "pay-secret"), TOPIC_AUTHORIZATION_FAILED);
    assert_eq!(produce(&mut c, n, "writer", "other"), TOPIC_AUTHORIZATION_FAILED);
    assert_eq!(fetch(&mut c, n, "writer", "pay-in").0, 0, "User:* READ on every topic");
    assert_eq!(fetch(&mut c, n, "writer", "other").0, TOPIC_AUTHORIZATION_FAILED, "DENY wins");
    assert_eq!(fetch(&mut c, n, "someone", "other").0, 0);
    let listed = metadata_topics(&mut c, n, "writer", None);
    // READ on `*` covers the internal offsets topic too, as in Kafka.
    assert_eq!(listed.len(), 4, "DENY READ does not deny DESCRIBE: {listed:?}");
    assert!(listed.contains(&("__consumer_offsets".to_string(), 0)), "{listed:?}");

    // DescribeAcls sees the four bindings; DeleteAcls of the PREFIXED one takes WRITE away.
    let any = DescribeAclsRequest::default()
        .with_resource_type_filter(1)
        .with_resource_name_filter(None)
        .with_pattern_type_filter(1)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_operation(1)
        .with_permission_type(1);
    let r: DescribeAclsResponse = c.call(n, "admin", ApiKey::DescribeAcls, 3, &any);
    assert_eq!(r.resources.iter().map(|r| r.acls.len()).sum::<usize>(), 4);
    let filter = delete_acls_request::DeleteAclsFilter::default()
        .with_resource_type_filter(TOPIC)
        .with_resource_name_filter(Some(s("pay-")))
        .with_pattern_type_filter(PREFIXED)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_operation(1)
        .with_permission_type(1);
    let r: DeleteAclsResponse =
        c.call(n, "admin", ApiKey::DeleteAcls, 3, &DeleteAclsRequest::default().with_filters(vec![filter]));
    assert_eq!(r.filter_results[0].matching_acls.len(), 1);
    assert_eq!(produce(&mut c, n, "writer", "pay-in"), TOPIC_AUTHORIZATION_FAILED);
    // A non-super-user may not read the ACLs.
    let r: DescribeAclsResponse = c.call(n, "writer", ApiKey::DescribeAcls, 3, &any);
    assert_eq!(r.error_code, CLUSTER_AUTHORIZATION_FAILED);
}

/// An ACL created on one node applies on every node of a 3-node cluster within a second.
#[test]
fn acl_changes_apply_on_every_node_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let log = CapturedLog::default();
    let nodes = start(cluster_configs(dir.path(), 3), &log);
    let mut c = Caller::new();
    // Wait until the cluster has a __meta leader (topic creation succeeds through any node).
    let deadline = Instant::now() + Duration::from_secs(30);
    while create_topic(&mut c, &nodes[0], "admin", "shared") != 0 {
        assert!(Instant::now() < deadline, "no topic in 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    for n in &nodes {
        assert!(metadata_topics(&mut c, n, "viewer", None).is_empty());
    }
    let added = Instant::now();
    create_acls(&mut c, &nodes[1], vec![acl(TOPIC, "shared", LITERAL, "User:viewer", READ, ALLOW)]);
    for (i, n) in nodes.iter().enumerate() {
        loop {
            if metadata_topics(&mut c, n, "viewer", None).len() == 1 {
                break;
            }
            assert!(added.elapsed() < Duration::from_secs(1), "node {} did not apply the ACL within 1 s", i + 1);
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    eprintln!("ACL visible on all 3 nodes {:?} after CreateAcls was sent", added.elapsed());
}

/// With the authorizer on, the admin API's status needs CLUSTER DESCRIBE and fault changes
/// CLUSTER ALTER, asked as `User:ANONYMOUS` from the HTTP client's address.
#[test]
fn admin_api_needs_cluster_describe_and_alter() {
    use chronik::admin::client::{fetch_status, send_faults, AdminError};
    let dir = tempfile::tempdir().unwrap();
    let log = CapturedLog::default();
    let mut config = common::test_config(dir.path());
    config.faults.runtime = true;
    let nodes = start(vec![config], &log);
    let n = &nodes[0];
    let admin = n.admin.expect("admin API").to_string();
    fn status<T>(r: Result<T, AdminError>) -> u16 {
        match r {
            Ok(_) => 200,
            Err(AdminError::Status { status, .. }) => status,
            Err(e) => panic!("{e}"),
        }
    }
    let no_change = chronik::admin::FaultChange::default();
    assert_eq!(status(fetch_status(&admin)), 403);
    assert_eq!(status(send_faults(&admin, &no_change)), 403);
    let mut c = Caller::new();
    let describe = 8;
    let grant = acl(4, "kafka-cluster", LITERAL, "User:ANONYMOUS", describe, ALLOW).with_host(s("127.0.0.1"));
    create_acls(&mut c, n, vec![grant]);
    assert_eq!(status(fetch_status(&admin)), 200);
    assert_eq!(status(send_faults(&admin, &no_change)), 403, "DESCRIBE does not grant ALTER");
    log.wait_for(&["authorization denied", "User:ANONYMOUS", "ALTER", "CLUSTER"], Duration::from_secs(5));
}

/// TRANSACTIONAL_ID (resource type 5): WRITE to use an id (InitProducerId, AddPartitionsToTxn,
/// EndTxn), DESCRIBE to find its coordinator and describe it; ListTransactions shows only what
/// the principal may DESCRIBE.
#[test]
fn transactional_ids_need_write_and_describe() {
    const TRANSACTIONAL_ID: i8 = 5;
    const DESCRIBE: i8 = 8;
    const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
    let dir = tempfile::tempdir().unwrap();
    let log = CapturedLog::default();
    let nodes = start(vec![common::test_config(dir.path())], &log);
    let n = &nodes[0];
    let mut c = Caller::new();
    assert_eq!(create_topic(&mut c, n, "admin", "tt"), 0);
    create_acls(
        &mut c,
        n,
        vec![
            acl(TRANSACTIONAL_ID, "app-", PREFIXED, "User:app", WRITE, ALLOW),
            acl(TOPIC, "tt", LITERAL, "User:app", WRITE, ALLOW),
            acl(TRANSACTIONAL_ID, "app-seen", LITERAL, "User:viewer", DESCRIBE, ALLOW),
        ],
    );
    let init = |c: &mut Caller, user: &str, id: &str| -> InitProducerIdResponse {
        let req = InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(s(id))))
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        // The coordinator may still be loading right after the start.
        for _ in 0..100 {
            let r: InitProducerIdResponse = c.call(n, user, ApiKey::InitProducerId, 4, &req);
            if r.error_code != 14 && r.error_code != 15 {
                return r;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the transaction coordinator never became ready");
    };
    assert_eq!(init(&mut c, "stranger", "app-1").error_code, TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    let ok = init(&mut c, "app", "app-seen");
    assert_eq!(ok.error_code, 0);
    assert_eq!(init(&mut c, "app", "other-id").error_code, TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    let add = |c: &mut Caller, user: &str| -> i16 {
        let req = AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(TransactionalId(s("app-seen")))
            .with_v3_and_below_producer_id(ok.producer_id)
            .with_v3_and_below_producer_epoch(ok.producer_epoch)
            .with_v3_and_below_topics(vec![add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                .with_name(name("tt"))
                .with_partitions(vec![0])]);
        let r: AddPartitionsToTxnResponse = c.call(n, user, ApiKey::AddPartitionsToTxn, 3, &req);
        r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
    };
    assert_eq!(add(&mut c, "viewer"), TRANSACTIONAL_ID_AUTHORIZATION_FAILED, "DESCRIBE is not WRITE");
    assert_eq!(add(&mut c, "app"), 0);
    // FindCoordinator and DescribeTransactions need DESCRIBE (WRITE implies it).
    let find = |c: &mut Caller, user: &str| -> i16 {
        let req = FindCoordinatorRequest::default().with_key_type(1).with_coordinator_keys(vec![s("app-seen")]);
        let r: FindCoordinatorResponse = c.call(n, user, ApiKey::FindCoordinator, 4, &req);
        r.coordinators[0].error_code
    };
    assert_eq!(find(&mut c, "viewer"), 0);
    assert_eq!(find(&mut c, "app"), 0);
    assert_eq!(find(&mut c, "stranger"), TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    let describe = |c: &mut Caller, user: &str| -> (i16, String) {
        let req = DescribeTransactionsRequest::default().with_transactional_ids(vec![TransactionalId(s("app-seen"))]);
        let r: DescribeTransactionsResponse = c.call(n, user, ApiKey::DescribeTransactions, 0, &req);
        let t = &r.transaction_states[0];
        (t.error_code, t.transaction_state.to_string())
    };
    assert_eq!(describe(&mut c, "viewer"), (0, "Ongoing".to_string()));
    assert_eq!(describe(&mut c, "stranger").0, TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    let list = |c: &mut Caller, user: &str| -> usize {
        let r: ListTransactionsResponse =
            c.call(n, user, ApiKey::ListTransactions, 1, &ListTransactionsRequest::default());
        r.transaction_states.len()
    };
    assert_eq!(list(&mut c, "viewer"), 1);
    assert_eq!(list(&mut c, "stranger"), 0);
    assert_eq!(list(&mut c, "admin"), 1);
}
