//! The transaction coordinator in running nodes: with a fake marker sink injected into the
//! coordinator actor, a commit writes one marker per partition and only then makes its offsets
//! visible, and failed markers are retried; a timed-out transaction is aborted and its producer
//! fenced; a new `__meta` leader completes the markers of a transaction the old one prepared; a
//! restarted node completes one from its `__meta` snapshot; with the real sink, a marker for a
//! partition led by another node crosses the peer link to it.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use chronik::txn::markers::{Marker, MarkerSink};
use chronik::txn::TxnMsg;
use common::{
    cluster_configs, create_topic, leader_of, spawn_node_logged, start_cluster, start_node, test_config, wait_brokers,
    CapturedLog, Client, StartingNode, TestNode,
};

type Seen = Arc<Mutex<Vec<(String, i32, Marker)>>>;

/// Records every marker; refuses the first `fail_first` with NOT_LEADER_OR_FOLLOWER.
struct FakeSink {
    seen: Seen,
    fail_first: usize,
    calls: AtomicUsize,
}

impl MarkerSink for FakeSink {
    fn send(&self, topic: &str, partition: i32, marker: Marker) -> BoxFuture<'static, Result<i64, i16>> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let result = if n < self.fail_first {
            Err(6)
        } else {
            self.seen.lock().unwrap().push((topic.to_string(), partition, marker));
            Ok(n as i64)
        };
        Box::pin(async move { result })
    }
}

fn fake_sink(node: &TestNode, fail_first: usize) -> Seen {
    let seen = Seen::default();
    node.txn.do_send(TxnMsg::SetSink(Arc::new(FakeSink {
        seen: seen.clone(),
        fail_first,
        calls: AtomicUsize::new(0),
    })));
    seen
}

fn tid(id: &str) -> TransactionalId {
    TransactionalId(StrBytes::from_string(id.to_string()))
}

fn init(c: &mut Client, id: &str, timeout_ms: i32) -> (i64, i16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let req = InitProducerIdRequest::default()
            .with_transactional_id(Some(tid(id)))
            .with_transaction_timeout_ms(timeout_ms)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        let r: InitProducerIdResponse = c.call(ApiKey::InitProducerId, 4, &req);
        match r.error_code {
            0 => return (r.producer_id.0, r.producer_epoch),
            // Not ready yet, or a previous transaction is being aborted.
            14 | 15 | 16 | 51 if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            e => panic!("InitProducerId {id}: error {e}"),
        }
    }
}

fn add(c: &mut Client, id: &str, (pid, epoch): (i64, i16), topic: &str, partitions: Vec<i32>) -> i16 {
    let req = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(tid(id))
        .with_v3_and_below_producer_id(ProducerId(pid))
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(vec![add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(partitions)]);
    let r: AddPartitionsToTxnResponse = c.call(ApiKey::AddPartitionsToTxn, 3, &req);
    let codes: Vec<i16> =
        r.results_by_topic_v3_and_below[0].results_by_partition.iter().map(|p| p.partition_error_code).collect();
    assert!(codes.iter().all(|c| *c == codes[0]), "{codes:?}");
    codes[0]
}

fn add_offsets_and_commit(c: &mut Client, id: &str, (pid, epoch): (i64, i16), group: &str, offset: i64) {
    let req = AddOffsetsToTxnRequest::default()
        .with_transactional_id(tid(id))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())));
    let r: AddOffsetsToTxnResponse = c.call(ApiKey::AddOffsetsToTxn, 3, &req);
    assert_eq!(r.error_code, 0);
    let req = TxnOffsetCommitRequest::default()
        .with_transactional_id(tid(id))
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_generation_id(-1)
        .with_topics(vec![txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("t")))
            .with_partitions(vec![txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)
                .with_committed_leader_epoch(-1)])]);
    let r: TxnOffsetCommitResponse = c.call(ApiKey::TxnOffsetCommit, 3, &req);
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
}

fn end(c: &mut Client, id: &str, (pid, epoch): (i64, i16), commit: bool) -> i16 {
    let req = EndTxnRequest::default()
        .with_transactional_id(tid(id))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_committed(commit);
    let r: EndTxnResponse = c.call(ApiKey::EndTxn, 4, &req);
    r.error_code
}

fn describe(c: &mut Client, id: &str) -> describe_transactions_response::TransactionState {
    let req = DescribeTransactionsRequest::default().with_transactional_ids(vec![tid(id)]);
    let r: DescribeTransactionsResponse = c.call(ApiKey::DescribeTransactions, 0, &req);
    r.transaction_states[0].clone()
}

fn wait_state(c: &mut Client, id: &str, want: &str) -> describe_transactions_response::TransactionState {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = describe(c, id);
        if s.error_code == 0 && s.transaction_state.as_str() == want {
            return s;
        }
        assert!(Instant::now() < deadline, "{id} never reached {want}: {s:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn committed(c: &mut Client, group: &str) -> i64 {
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_topics(Some(vec![offset_fetch_request::OffsetFetchRequestTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("t")))
            .with_partition_indexes(vec![0])]));
    // A node that has just become the coordinator answers COORDINATOR_LOAD_IN_PROGRESS (14),
    // COORDINATOR_NOT_AVAILABLE (15) or NOT_COORDINATOR (16) until it serves the group, and a
    // Kafka client retries those; any other error fails the test.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r: OffsetFetchResponse = c.call(ApiKey::OffsetFetch, 5, &req);
        if r.error_code == 0 {
            let p = &r.topics[0].partitions[0];
            assert_eq!(p.error_code, 0, "{group}: {r:?}");
            return p.committed_offset;
        }
        assert!([14, 15, 16].contains(&r.error_code), "{group}: OffsetFetch failed: {r:?}");
        assert!(Instant::now() < deadline, "{group}: the coordinator never served OffsetFetch: {r:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_commit_writes_every_marker_before_its_offsets_become_visible() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(test_config(dir.path()));
    let mut c = Client::connect(node.addr);
    create_topic(&mut c, "t", 3, 1, &[]);
    // The first two marker attempts fail: they are retried.
    let seen = fake_sink(&node, 2);
    let p = init(&mut c, "tx", 60_000);
    assert_eq!(add(&mut c, "tx", p, "t", vec![0, 1, 2]), 0);
    add_offsets_and_commit(&mut c, "tx", p, "g", 17);
    assert_eq!(committed(&mut c, "g"), -1, "pending until the commit completes");
    assert_eq!(end(&mut c, "tx", p, true), 0);
    let s = wait_state(&mut c, "tx", "CompleteCommit");
    assert!(s.topics.is_empty());
    assert_eq!(committed(&mut c, "g"), 17);
    let mut markers = seen.lock().unwrap().clone();
    markers.sort_by_key(|m| m.1);
    assert_eq!(markers.iter().map(|m| m.1).collect::<Vec<_>>(), vec![0, 1, 2], "one marker per partition");
    for (topic, _, m) in &markers {
        assert_eq!((topic.as_str(), m.producer_id, m.producer_epoch, m.commit), ("t", p.0, p.1, true));
        assert!(m.coordinator_epoch >= 1);
    }
    // An abort drops its offsets and writes abort markers.
    assert_eq!(add(&mut c, "tx", p, "t", vec![1]), 0);
    add_offsets_and_commit(&mut c, "tx", p, "g", 99);
    assert_eq!(end(&mut c, "tx", p, false), 0);
    wait_state(&mut c, "tx", "CompleteAbort");
    assert_eq!(committed(&mut c, "g"), 17);
    let last = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!((last.1, last.2.commit), (1, false));
    let metrics = chronik::metrics::registry().txn_figures(1);
    assert!(metrics.1 >= 1 && metrics.2 >= 1, "commits and aborts counted: {metrics:?}");
}

#[test]
fn a_timed_out_transaction_is_aborted_and_its_producer_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.transactions.abort_timed_out_interval = Duration::from_millis(100);
    let node = start_node(config);
    let mut c = Client::connect(node.addr);
    create_topic(&mut c, "t", 2, 1, &[]);
    let seen = fake_sink(&node, 0);
    let p = init(&mut c, "slow", 300);
    assert_eq!(add(&mut c, "slow", p, "t", vec![0, 1]), 0);
    let s = wait_state(&mut c, "slow", "CompleteAbort");
    assert_eq!(s.producer_epoch, p.1 + 1, "the epoch was bumped");
    assert!(seen.lock().unwrap().iter().all(|m| !m.2.commit && m.2.producer_epoch == p.1 + 1));
    assert_eq!(seen.lock().unwrap().len(), 2);
    assert_eq!(end(&mut c, "slow", p, true), 90, "PRODUCER_FENCED");
    assert_eq!(add(&mut c, "slow", p, "t", vec![0]), 90);
}

#[test]
fn a_new_meta_leader_completes_the_markers_of_a_prepared_commit() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes: Vec<Option<TestNode>> =
        start_cluster(cluster_configs(dir.path(), 3)).into_iter().map(Some).collect();
    let live =
        |nodes: &[Option<TestNode>]| -> Vec<usize> { (0..nodes.len()).filter(|i| nodes[*i].is_some()).collect() };
    let first = coordinator_of(&nodes);
    let leader_addr = nodes[first].as_ref().unwrap().addr;
    let mut c = Client::connect(leader_addr);
    create_topic(&mut c, "t", 2, 3, &[]);
    // The other nodes accept markers; the coordinator's own sink refuses every one, so the
    // commit stays prepared until it is killed.
    let sinks: Vec<Option<Seen>> =
        nodes.iter().enumerate().map(|(i, n)| (i != first).then(|| fake_sink(n.as_ref().unwrap(), 0))).collect();
    let _refusing = fake_sink(nodes[first].as_ref().unwrap(), usize::MAX);
    let p = init(&mut c, "fo", 60_000);
    assert_eq!(add(&mut c, "fo", p, "t", vec![0, 1]), 0);
    add_offsets_and_commit(&mut c, "fo", p, "g", 5);
    assert_eq!(end(&mut c, "fo", p, true), 0);
    assert_eq!(describe(&mut c, "fo").transaction_state.as_str(), "PrepareCommit");
    // Kill the coordinator mid-commit.
    drop(c);
    nodes[first] = None;
    let next = coordinator_of(&nodes);
    assert_ne!(next, first);
    assert!(live(&nodes).contains(&next));
    let mut c = Client::connect(nodes[next].as_ref().unwrap().addr);
    wait_state(&mut c, "fo", "CompleteCommit");
    assert_eq!(committed(&mut c, "g"), 5);
    let seen = sinks[next].as_ref().unwrap().lock().unwrap().clone();
    let mut parts: Vec<i32> = seen.iter().map(|m| m.1).collect();
    parts.sort();
    parts.dedup();
    assert_eq!(parts, vec![0, 1], "the new coordinator wrote every marker");
    assert!(seen.iter().all(|m| m.2.commit && m.2.producer_id == p.0));
}

/// The live node that coordinates transactions: FindCoordinator TRANSACTION names it and it
/// answers DescribeTransactions as coordinator.
fn coordinator_of(nodes: &[Option<TestNode>]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for (i, n) in nodes.iter().enumerate() {
            let Some(n) = n else { continue };
            let mut c = Client::connect(n.addr);
            let req = FindCoordinatorRequest::default()
                .with_key_type(1)
                .with_coordinator_keys(vec![StrBytes::from_static_str("any")]);
            let r: FindCoordinatorResponse = c.call(ApiKey::FindCoordinator, 4, &req);
            let co = &r.coordinators[0];
            let alive = nodes.iter().flatten().any(|m| m.addr.port() as i32 == co.port);
            if co.error_code == 0 && alive {
                // The node named answers DescribeTransactions as coordinator.
                let j = nodes.iter().position(|m| m.as_ref().is_some_and(|m| m.addr.port() as i32 == co.port));
                let j = j.unwrap_or(i);
                let mut cj = Client::connect(nodes[j].as_ref().unwrap().addr);
                if describe(&mut cj, "probe").error_code == 105 {
                    return j;
                }
            }
        }
        assert!(Instant::now() < deadline, "no transaction coordinator");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_restarted_node_completes_a_prepared_commit_from_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.meta.snapshot_entries = 2;
    let node = start_node(config.clone());
    // Before the restart every marker is refused, so the commit stays prepared.
    let _refusing = fake_sink(&node, usize::MAX);
    let mut c = Client::connect(node.addr);
    create_topic(&mut c, "t", 2, 1, &[]);
    let p = init(&mut c, "rs", 60_000);
    assert_eq!(add(&mut c, "rs", p, "t", vec![0, 1]), 0);
    add_offsets_and_commit(&mut c, "rs", p, "g", 8);
    assert_eq!(end(&mut c, "rs", p, true), 0);
    assert_eq!(describe(&mut c, "rs").transaction_state.as_str(), "PrepareCommit");
    drop(c);
    drop(node);
    let snapshots = std::fs::read_dir(dir.path().join("meta"))
        .map(|d| d.flatten().filter(|e| e.file_name().to_string_lossy().starts_with("meta-snapshot-")).count())
        .unwrap_or(0);
    assert!(snapshots >= 1, "a __meta snapshot was written");
    let node = start_node(config);
    let seen = fake_sink(&node, 0);
    let mut c = Client::connect(node.addr);
    wait_state(&mut c, "rs", "CompleteCommit");
    assert_eq!(committed(&mut c, "g"), 8);
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[test]
fn a_marker_for_a_partition_led_elsewhere_goes_to_its_leader_over_the_peer_link() {
    let dir = tempfile::tempdir().unwrap();
    let log = CapturedLog::default();
    let starting: Vec<StartingNode> =
        cluster_configs(dir.path(), 3).into_iter().map(|c| spawn_node_logged(c, Some(log.clone()))).collect();
    let nodes: Vec<TestNode> = starting.into_iter().map(StartingNode::wait).collect();
    wait_brokers(&nodes, 3);
    let opt: Vec<Option<TestNode>> = nodes.into_iter().map(Some).collect();
    let co = coordinator_of(&opt);
    let coordinator_id = co as u64 + 1;
    let mut c = Client::connect(opt[co].as_ref().unwrap().addr);
    // Single-replica topics land on different nodes: take one led by another node.
    let mut remote = None;
    for i in 0..3 {
        let topic = format!("r{i}");
        create_topic(&mut c, &topic, 1, 1, &[]);
        let leader = leader_of(opt[co].as_ref().unwrap(), &topic);
        if leader != coordinator_id {
            remote = Some((topic, leader));
            break;
        }
    }
    let (topic, leader) = remote.expect("a topic led by another node");
    let p = init(&mut c, "remote", 60_000);
    assert_eq!(add(&mut c, "remote", p, &topic, vec![0]), 0);
    assert_eq!(end(&mut c, "remote", p, true), 0);
    // The commit completes only once the marker is written on the partition's leader, another
    // node: the request crossed the peer link and its answer came back.
    wait_state(&mut c, "remote", "CompleteCommit");
    let leader_node = opt[leader as usize - 1].as_ref().expect("the leader node");
    let mut l = Client::connect(leader_node.addr);
    assert_eq!(end_offset(&mut l, &topic, 0), (0, 1), "the COMMIT marker is offset 0 on node {leader}");
    assert!(log.lines_with(&["transaction marker failed", &format!("topic: {topic}")]).is_empty());
}

/// TxnOffsetCommit checks the member and generation as OffsetCommit does: the group's member at
/// its generation commits; another generation is ILLEGAL_GENERATION, an unknown member
/// UNKNOWN_MEMBER_ID, and nothing is kept for them.
#[test]
fn txn_offset_commit_checks_the_groups_generation() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.groups.initial_rebalance_delay = Duration::ZERO;
    let node = start_node(config);
    let mut c = Client::connect(node.addr);
    create_topic(&mut c, "t", 1, 1, &[]);
    let join = |c: &mut Client, member: &str| -> JoinGroupResponse {
        let req = JoinGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("eg")))
            .with_session_timeout_ms(30_000)
            .with_rebalance_timeout_ms(30_000)
            .with_member_id(StrBytes::from_string(member.to_string()))
            .with_protocol_type(StrBytes::from_static_str("consumer"))
            .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default()
                .with_name(StrBytes::from_static_str("range"))
                .with_metadata(bytes::Bytes::from_static(b"sub"))]);
        c.call(ApiKey::JoinGroup, 5, &req)
    };
    let first = join(&mut c, "");
    let joined = if first.error_code == 79 { join(&mut c, first.member_id.as_str()) } else { first };
    assert_eq!(joined.error_code, 0);
    let (member, generation) = (joined.member_id.to_string(), joined.generation_id);
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("eg")))
        .with_generation_id(generation)
        .with_member_id(StrBytes::from_string(member.clone()))
        .with_assignments(vec![sync_group_request::SyncGroupRequestAssignment::default()
            .with_member_id(StrBytes::from_string(member.clone()))
            .with_assignment(bytes::Bytes::from_static(b"a"))]);
    let r: SyncGroupResponse = c.call(ApiKey::SyncGroup, 3, &sync);
    assert_eq!(r.error_code, 0);

    let p = init(&mut c, "gen", 60_000);
    let add = AddOffsetsToTxnRequest::default()
        .with_transactional_id(tid("gen"))
        .with_producer_id(ProducerId(p.0))
        .with_producer_epoch(p.1)
        .with_group_id(GroupId(StrBytes::from_static_str("eg")));
    let r: AddOffsetsToTxnResponse = c.call(ApiKey::AddOffsetsToTxn, 3, &add);
    assert_eq!(r.error_code, 0);
    let commit = |c: &mut Client, member: &str, generation: i32, offset: i64| -> i16 {
        let req = TxnOffsetCommitRequest::default()
            .with_transactional_id(tid("gen"))
            .with_group_id(GroupId(StrBytes::from_static_str("eg")))
            .with_producer_id(ProducerId(p.0))
            .with_producer_epoch(p.1)
            .with_generation_id(generation)
            .with_member_id(StrBytes::from_string(member.to_string()))
            .with_topics(vec![txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("t")))
                .with_partitions(vec![txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(offset)
                    .with_committed_leader_epoch(-1)])]);
        let r: TxnOffsetCommitResponse = c.call(ApiKey::TxnOffsetCommit, 3, &req);
        r.topics[0].partitions[0].error_code
    };
    assert_eq!(commit(&mut c, &member, generation + 1, 50), 22, "ILLEGAL_GENERATION");
    assert_eq!(commit(&mut c, "someone-else", generation, 60), 25, "UNKNOWN_MEMBER_ID");
    assert_eq!(commit(&mut c, &member, generation, 3), 0);
    let _sink = fake_sink(&node, 0);
    assert_eq!(end(&mut c, "gen", p, true), 0);
    wait_state(&mut c, "gen", "CompleteCommit");
    let req =
        OffsetFetchRequest::default().with_group_id(GroupId(StrBytes::from_static_str("eg"))).with_topics(Some(vec![
            offset_fetch_request::OffsetFetchRequestTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("t")))
                .with_partition_indexes(vec![0]),
        ]));
    let r: OffsetFetchResponse = c.call(ApiKey::OffsetFetch, 5, &req);
    assert_eq!(r.topics[0].partitions[0].committed_offset, 3, "only the member's own commit was kept");
}

/// (error, end offset) of `topic` partition `partition` from ListOffsets latest (v2).
fn end_offset(c: &mut Client, topic: &str, partition: i32) -> (i16, i64) {
    let req = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![
        list_offsets_request::ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(vec![list_offsets_request::ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_timestamp(-1)]),
    ]);
    let r: ListOffsetsResponse = c.call(ApiKey::ListOffsets, 2, &req);
    let p = &r.topics[0].partitions[0];
    (p.error_code, p.offset)
}

/// One transactional batch of one record from `(pid, epoch)` at sequence `seq`, produced
/// (acks=all, Produce v9) to `topic` partition `partition` as `id`: the partition's error.
fn produce_txn(c: &mut Client, id: &str, (pid, epoch): (i64, i16), seq: i32, topic: &str, partition: i32) -> i16 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let mut b = chronik::log::batch::build_batch(0, pid, epoch, seq, now, &[(None, Some(&b"v"[..]))]);
    b[21..23].copy_from_slice(&0x10i16.to_be_bytes());
    chronik::log::batch::finish_batch(&mut b);
    let req = ProduceRequest::default()
        .with_transactional_id(Some(tid(id)))
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![produce_request::PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(bytes::Bytes::from(b)))])]);
    let r: ProduceResponse = c.call(ApiKey::Produce, 9, &req);
    r.responses[0].partition_responses[0].error_code
}

/// KIP-890 verification (`transaction.partition.verification.enable`, on by default): a leader
/// takes a transactional batch only for a partition in the producer's ongoing transaction. A
/// batch for a partition never added gets INVALID_TXN_STATE, one from an unknown producer
/// INVALID_PRODUCER_ID_MAPPING, one from a fenced epoch INVALID_PRODUCER_EPOCH; nothing of them
/// is written. After the commit, a late batch of the finished transaction is refused too.
#[test]
fn a_transactional_batch_needs_its_partition_in_the_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(test_config(dir.path()));
    let mut c = Client::connect(node.addr);
    create_topic(&mut c, "v", 2, 1, &[]);
    let p = init(&mut c, "ver", 60_000);
    assert_eq!(add(&mut c, "ver", p, "v", vec![0]), 0);
    assert_eq!(produce_txn(&mut c, "ver", p, 0, "v", 0), 0, "partition 0 is in the transaction");
    assert_eq!(produce_txn(&mut c, "ver", p, 0, "v", 1), 48, "INVALID_TXN_STATE: partition 1 was never added");
    assert_eq!(produce_txn(&mut c, "ver", (p.0 + 1000, 0), 0, "v", 0), 49, "INVALID_PRODUCER_ID_MAPPING");
    assert_eq!(produce_txn(&mut c, "nobody", p, 1, "v", 0), 49, "no such transactional id");
    assert_eq!(end(&mut c, "ver", p, true), 0);
    wait_state(&mut c, "ver", "CompleteCommit");
    assert_eq!(produce_txn(&mut c, "ver", p, 1, "v", 0), 48, "a late batch of the committed transaction");
    // A new producer session fences the old epoch.
    let p2 = init(&mut c, "ver", 60_000);
    assert!(p2.1 > p.1 || p2.0 != p.0);
    assert_eq!(produce_txn(&mut c, "ver", p, 2, "v", 0), 47, "INVALID_PRODUCER_EPOCH for the fenced epoch");
    // Partition 1 never took a record: its end offset is 0; partition 0 has the record + marker.
    assert_eq!((end_offset(&mut c, "v", 0), end_offset(&mut c, "v", 1)), ((0, 2), (0, 0)));
}
