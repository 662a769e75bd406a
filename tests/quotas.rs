//! Client quotas in-process: AlterClientQuotas stores a `producer_byte_rate` for a client id in
//! `__meta`, DescribeClientQuotas reads it back, and produce requests from that client are
//! throttled (`throttle_time_ms` answered, response held) so that its rate stays bounded.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use chronik::log::batch::build_batch;
use common::{start_node, test_config, Client};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

#[test]
fn producer_byte_rate_throttles_a_client_id() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(test_config(dir.path()));
    let mut c = Client::connect(node.addr);
    let create = CreateTopicsRequest::default().with_timeout_ms(10_000).with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(TopicName(s("q")))
            .with_num_partitions(1)
            .with_replication_factor(1),
    ]);
    let r: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &create);
    assert_eq!(r.topics[0].error_code, 0);

    // The test client's id is "chronik-test": 20 kB/s for it.
    let rate = 20_000.0;
    let alter =
        AlterClientQuotasRequest::default().with_entries(vec![alter_client_quotas_request::EntryData::default()
            .with_entity(vec![alter_client_quotas_request::EntityData::default()
                .with_entity_type(s("client-id"))
                .with_entity_name(Some(s("chronik-test")))])
            .with_ops(vec![alter_client_quotas_request::OpData::default()
                .with_key(s("producer_byte_rate"))
                .with_value(rate)])]);
    let r: AlterClientQuotasResponse = c.call(ApiKey::AlterClientQuotas, 1, &alter);
    assert_eq!(r.entries[0].error_code, 0);
    let describe = DescribeClientQuotasRequest::default().with_strict(true).with_components(vec![
        describe_client_quotas_request::ComponentData::default()
            .with_entity_type(s("client-id"))
            .with_match_type(0)
            .with_match(Some(s("chronik-test"))),
    ]);
    let r: DescribeClientQuotasResponse = c.call(ApiKey::DescribeClientQuotas, 1, &describe);
    let entries = r.entries.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!((entries[0].values[0].key.as_str(), entries[0].values[0].value), ("producer_byte_rate", rate));

    // Five ~10 kB batches: 50 kB at 20 kB/s with one second of burst must take at least 1.5 s,
    // and the broker says so in throttle_time_ms.
    let value = vec![7u8; 10_000];
    let records: Vec<chronik::log::batch::KeyValue> = vec![(None, Some(&value[..]))];
    let started = Instant::now();
    let mut throttles = Vec::new();
    let mut sent = 0usize;
    for _ in 0..5 {
        let batch = build_batch(0, -1, -1, -1, 1, &records);
        sent += batch.len();
        let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![
            produce_request::TopicProduceData::default().with_name(TopicName(s("q"))).with_partition_data(vec![
                produce_request::PartitionProduceData::default().with_index(0).with_records(Some(Bytes::from(batch))),
            ]),
        ]);
        let r: ProduceResponse = c.call(ApiKey::Produce, 9, &req);
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
        throttles.push(r.throttle_time_ms);
    }
    let took = started.elapsed();
    assert_eq!(throttles[0], 0, "the first second's worth is a free burst: {throttles:?}");
    assert!(throttles[2..].iter().all(|t| *t > 0), "later batches are throttled: {throttles:?}");
    let bound = Duration::from_secs_f64((sent as f64 - rate) / rate);
    assert!(took >= bound, "{sent} B at {rate} B/s (+1 s burst) took {took:?}, less than {bound:?}");
    eprintln!("sent {sent} B in {took:?} under a {rate} B/s quota; throttle_time_ms {throttles:?}");
}
