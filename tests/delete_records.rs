//! DeleteRecords (key 21) on an in-process three-node cluster: the log start moves through the
//! partition's Raft group on every replica, survives a restart, reaches a follower that was down;
//! ListOffsets EARLIEST and Fetch follow it; Kafka's errors (out of range, unknown, not leader, a
//! compacted topic, a timeout) for bad requests.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use chronik::log::batch::{build_batch, BatchHeader};
use common::{cluster_configs, leader_of, start_cluster, Client, TestNode};

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// Now, as batch timestamps: time retention (7 days by default) must not delete the segments.
fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn produce(c: &mut Client, topic: &str, n: usize) {
    let recs: Vec<chronik::log::batch::KeyValue> = (0..n).map(|_| (None, Some(&b"record"[..]))).collect();
    let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![
        produce_request::TopicProduceData::default().with_name(name(topic)).with_partition_data(vec![
            produce_request::PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(Bytes::from(build_batch(0, -1, -1, -1, now_ms(), &recs)))),
        ]),
    ]);
    let r: ProduceResponse = c.call(ApiKey::Produce, 9, &req);
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
}

/// DeleteRecords of one partition: (error code, low watermark).
fn delete_records(c: &mut Client, topic: &str, partition: i32, offset: i64) -> (i16, i64) {
    delete_records_within(c, topic, partition, offset, 10_000)
}

fn delete_records_within(c: &mut Client, topic: &str, partition: i32, offset: i64, timeout_ms: i32) -> (i16, i64) {
    let req = DeleteRecordsRequest::default().with_timeout_ms(timeout_ms).with_topics(vec![
        delete_records_request::DeleteRecordsTopic::default().with_name(name(topic)).with_partitions(vec![
            delete_records_request::DeleteRecordsPartition::default()
                .with_partition_index(partition)
                .with_offset(offset),
        ]),
    ]);
    let r: DeleteRecordsResponse = c.call(ApiKey::DeleteRecords, 2, &req);
    let p = &r.topics[0].partitions[0];
    (p.error_code, p.low_watermark)
}

fn earliest(c: &mut Client, topic: &str) -> (i16, i64) {
    let req = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![
        list_offsets_request::ListOffsetsTopic::default().with_name(name(topic)).with_partitions(vec![
            list_offsets_request::ListOffsetsPartition::default().with_partition_index(0).with_timestamp(-2),
        ]),
    ]);
    let r: ListOffsetsResponse = c.call(ApiKey::ListOffsets, 7, &req);
    let p = &r.topics[0].partitions[0];
    (p.error_code, p.offset)
}

/// One Fetch at `offset`: (error, log start offset, base offset of the first batch returned).
fn fetch(c: &mut Client, topic: &str, offset: i64) -> (i16, i64, Option<i64>) {
    let req = FetchRequest::default().with_max_wait_ms(0).with_max_bytes(1 << 20).with_topics(vec![
        fetch_request::FetchTopic::default().with_topic(name(topic)).with_partitions(vec![
            fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20),
        ]),
    ]);
    let r: FetchResponse = c.call(ApiKey::Fetch, 11, &req);
    let p = &r.responses[0].partitions[0];
    let first = p.records.as_deref().filter(|b| !b.is_empty()).map(|b| BatchHeader::parse(b).unwrap().base_offset);
    (p.error_code, p.log_start_offset, first)
}

/// (node, log start, high watermark, checksum) of every replica of `topic`, sorted by node.
fn replicas(node: &TestNode, topic: &str) -> Vec<(u64, i64, i64, String)> {
    common::replica_status(node, topic, ["log_start", "high_watermark"])
}

/// Waits until all three replicas report `log_start` and `hw` with equal checksums.
fn wait_replicas(node: &TestNode, topic: &str, log_start: i64, hw: i64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = replicas(node, topic);
        if r.len() == 3 && r.iter().all(|x| x.1 == log_start && x.2 == hw && x.3 == r[0].3) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: replicas never agreed on log start {log_start}, hw {hw}: {r:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn delete_records_moves_the_log_start_on_every_replica_and_survives_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut configs = cluster_configs(dir.path(), 3);
    for c in &mut configs {
        c.storage.retention_check_interval = Duration::from_millis(100);
    }
    let mut nodes: Vec<Option<TestNode>> = start_cluster(configs.clone()).into_iter().map(Some).collect();
    let node = |nodes: &[Option<TestNode>], id: u64| nodes[(id - 1) as usize].as_ref().unwrap().addr;
    let mut c1 = Client::connect(node(&nodes, 1));
    common::create_topic(&mut c1, "dr", 1, 3, &[("internal.segment.bytes", "1024")]);
    let leader = leader_of(nodes[0].as_ref().unwrap(), "dr");
    let (down, restarted) = (leader % 3 + 1, (leader + 1) % 3 + 1);
    let mut lc = Client::connect(node(&nodes, leader));
    // Batches [0,8) [8,16) ... [88,96). One follower is down from offset 8 on: it misses the
    // entries of the segments that retention deletes below the new start, so it catches up from
    // a snapshot, then the entries after it (the DeleteRecords entry among them).
    produce(&mut lc, "dr", 8);
    wait_replicas(nodes[0].as_ref().unwrap(), "dr", 0, 8, "before");
    drop(nodes[(down - 1) as usize].take());
    for _ in 1..12 {
        produce(&mut lc, "dr", 8);
    }

    // Errors change nothing: past the high watermark, a negative offset, an unknown topic,
    // a node that does not lead.
    assert_eq!(delete_records(&mut lc, "dr", 0, 97), (1, -1), "OFFSET_OUT_OF_RANGE");
    assert_eq!(delete_records(&mut lc, "dr", 0, -5).0, 1);
    assert_eq!(delete_records(&mut lc, "nope", 0, 1).0, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    assert_eq!(delete_records(&mut lc, "dr", 7, 1).0, 3);
    let mut fc = Client::connect(node(&nodes, restarted));
    assert_eq!(delete_records(&mut fc, "dr", 0, 10).0, 6, "NOT_LEADER_OR_FOLLOWER");
    assert_eq!(earliest(&mut lc, "dr"), (0, 0));

    // Inside the batch [48, 56): the new start is 50.
    assert_eq!(delete_records(&mut lc, "dr", 0, 50), (0, 50));
    assert_eq!(earliest(&mut lc, "dr"), (0, 50));
    assert_eq!(fetch(&mut lc, "dr", 10).0, 1, "below the start: OFFSET_OUT_OF_RANGE");
    assert_eq!(fetch(&mut lc, "dr", 49).0, 1);
    assert_eq!(fetch(&mut lc, "dr", 50), (0, 50, Some(48)), "the straddling batch whole, log_start_offset 50");
    assert_eq!(delete_records(&mut lc, "dr", 0, 20), (0, 50), "below the start: nothing moves");

    // Segments wholly below the start are deleted on the leader (retention, below applied).
    let gdir = |id: u64| {
        let groups = configs[(id - 1) as usize].data_dir.join("groups");
        std::fs::read_dir(&groups).unwrap().map(|e| e.unwrap().path()).find(|p| p.join("records-start").exists())
    };
    let leader_dir = gdir(leader).expect("the leader stored the new start in records-start");
    let segments = || -> Vec<u64> {
        let mut v: Vec<u64> = std::fs::read_dir(&leader_dir)
            .unwrap()
            .filter_map(|e| e.unwrap().file_name().to_str()?.strip_suffix(".log")?.parse().ok())
            .collect();
        v.sort();
        v
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while segments().first() == Some(&1) {
        assert!(Instant::now() < deadline, "the segments below the new start were never deleted: {:?}", segments());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(earliest(&mut lc, "dr"), (0, 50), "the straddling segment stays and serves from 50");
    assert_eq!(fetch(&mut lc, "dr", 50), (0, 50, Some(48)));

    // A follower that applied it restarts and keeps it; the one that was down catches up.
    let log = common::CapturedLog::default();
    nodes[(down - 1) as usize] =
        Some(common::spawn_node_logged(configs[(down - 1) as usize].clone(), Some(log.clone())).wait());
    wait_replicas(nodes[(leader - 1) as usize].as_ref().unwrap(), "dr", 50, 96, "the follower that was down");
    log.wait_for(&["log reset", "topic: dr"], Duration::from_secs(5)); // it was sent a snapshot
    assert!(gdir(down).is_some(), "the follower that was down stored the new start");
    drop(nodes[(restarted - 1) as usize].take());
    nodes[(restarted - 1) as usize] = Some(common::spawn_node(configs[(restarted - 1) as usize].clone()).wait());
    wait_replicas(nodes[(leader - 1) as usize].as_ref().unwrap(), "dr", 50, 96, "after a restart");

    // -1 deletes up to the high watermark; new records follow.
    assert_eq!(delete_records(&mut lc, "dr", 0, -1), (0, 96));
    produce(&mut lc, "dr", 4);
    assert_eq!(fetch(&mut lc, "dr", 96), (0, 96, Some(96)));
    wait_replicas(nodes[(leader - 1) as usize].as_ref().unwrap(), "dr", 96, 100, "after -1");

    // A compacted topic refuses it, as Kafka does (its cleanup.policy lacks delete).
    let req = CreateTopicsRequest::default().with_timeout_ms(20_000).with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(name("compacted"))
            .with_num_partitions(1)
            .with_replication_factor(3)
            .with_configs(vec![create_topics_request::CreatableTopicConfig::default()
                .with_name(StrBytes::from_static_str("cleanup.policy"))
                .with_value(Some(StrBytes::from_static_str("compact")))]),
    ]);
    let r: CreateTopicsResponse = c1.call(ApiKey::CreateTopics, 7, &req);
    assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);
    let compacted_leader = leader_of(nodes[0].as_ref().unwrap(), "compacted");
    let mut cc = Client::connect(node(&nodes, compacted_leader));
    assert_eq!(delete_records(&mut cc, "compacted", 0, 0), (44, -1), "POLICY_VIOLATION");

    // A leader cut off from its followers cannot commit the entry: REQUEST_TIMED_OUT after the
    // request's timeout (as in Kafka, a timed-out request may still take effect later).
    let lead = nodes[(leader - 1) as usize].as_ref().unwrap();
    (1..=3u64).filter(|p| *p != leader).for_each(|p| lead.faults.partition(p, true));
    assert_eq!(delete_records_within(&mut lc, "dr", 0, 98, 200), (7, -1));
    (1..=3u64).for_each(|p| lead.faults.partition(p, false));
}
