//! Helpers for tests on partition 0 of a topic (reassignment, membership): create it on given
//! replicas, ask its leader and replicas, produce one acks=all record, read back every batch.

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::Client;
use chronik::log::batch::{build_batch, BatchHeader};

pub fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

pub fn create_on(c: &mut Client, topic: &str, replicas: &[i32]) {
    let a = create_topics_request::CreatableReplicaAssignment::default()
        .with_partition_index(0)
        .with_broker_ids(replicas.iter().map(|b| BrokerId(*b)).collect());
    let req = CreateTopicsRequest::default().with_timeout_ms(20_000).with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(name(topic))
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_assignments(vec![a]),
    ]);
    let r: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &req);
    assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);
}

/// (leader, replicas) of partition 0 of `topic` as `c`'s node sees it ((-1, []) if unknown).
pub fn partition(c: &mut Client, topic: &str) -> (i32, Vec<i32>) {
    let req = MetadataRequest::default()
        .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default().with_name(Some(name(topic)))]));
    let r: MetadataResponse = c.call(ApiKey::Metadata, 12, &req);
    match r.topics[0].partitions.first() {
        Some(p) => (p.leader_id.0, p.replica_nodes.iter().map(|b| b.0).collect()),
        None => (-1, Vec::new()),
    }
}

/// Produces one record (acks=all) to whichever node leads; the base offset when acknowledged.
pub fn produce_one(c: &mut Client, topic: &str, i: usize) -> Option<i64> {
    let value = format!("r{i}");
    let recs: Vec<chronik::log::batch::KeyValue> = vec![(None, Some(value.as_bytes()))];
    let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(5_000).with_topic_data(vec![
        produce_request::TopicProduceData::default().with_name(name(topic)).with_partition_data(vec![
            produce_request::PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(Bytes::from(build_batch(0, -1, -1, -1, 1, &recs)))),
        ]),
    ]);
    let r: ProduceResponse = c.call(ApiKey::Produce, 9, &req);
    let p = &r.responses[0].partition_responses[0];
    (p.error_code == 0).then_some(p.base_offset)
}

/// Every batch base offset of partition 0 from the node `c` talks to (it must lead).
pub fn read_bases(c: &mut Client, topic: &str) -> Vec<i64> {
    let mut out = Vec::new();
    let mut offset = 0;
    for _ in 0..10_000 {
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
        assert_eq!(p.error_code, 0, "fetch at {offset}");
        let mut rest: &[u8] = p.records.as_deref().unwrap_or(&[]);
        if rest.is_empty() {
            assert_eq!(offset, p.high_watermark);
            return out;
        }
        while !rest.is_empty() {
            let h = BatchHeader::parse(rest).unwrap();
            out.push(h.base_offset);
            offset = h.next_offset();
            rest = &rest[h.total_len()..];
        }
    }
    panic!("read did not end");
}

/// A producer thread writing acks=all records to partition 0 of `topic` until `stop` (at most
/// 3000 records), following the leader that node `via` names (`addrs[i]` is node i+1's Kafka
/// address): the acknowledged base offsets. `via` must stay reachable.
pub fn producer(
    addrs: Vec<std::net::SocketAddr>,
    via: std::net::SocketAddr,
    topic: &'static str,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<Vec<i64>> {
    use std::sync::atomic::Ordering;
    std::thread::spawn(move || {
        let mut acked = Vec::new();
        let mut i = 0;
        while !stop.load(Ordering::Relaxed) && i < 3000 {
            let (leader, _) = partition(&mut Client::connect(via), topic);
            let Some(addr) = usize::try_from(leader - 1).ok().and_then(|l| addrs.get(l)) else {
                std::thread::sleep(std::time::Duration::from_millis(20));
                continue;
            };
            let mut c = Client::connect(*addr);
            for _ in 0..20 {
                i += 1;
                match produce_one(&mut c, topic, i) {
                    Some(base) => acked.push(base),
                    None => break,
                }
            }
        }
        acked
    })
}
