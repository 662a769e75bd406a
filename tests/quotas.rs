//! Client quotas in-process: AlterClientQuotas stores a `producer_byte_rate` for a client id in
//! `__meta`, DescribeClientQuotas reads it back, and produce requests from that client are
//! throttled so that its rate stays bounded. Throttling is Kafka's (KIP-219): the throttled
//! response leaves at once with `throttle_time_ms`, and the connection is muted (its next request
//! is not served) until the throttle time is over; other connections are not muted.
//! `request_percentage` (KIP-124) throttles the same way by the time handlers keep a thread busy.

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

/// Sets quota `key` = `value` for the test client's id ("chronik-test").
fn set_client_quota(c: &mut Client, key: &str, value: f64) {
    let alter =
        AlterClientQuotasRequest::default().with_entries(vec![alter_client_quotas_request::EntryData::default()
            .with_entity(vec![alter_client_quotas_request::EntityData::default()
                .with_entity_type(s("client-id"))
                .with_entity_name(Some(s("chronik-test")))])
            .with_ops(vec![alter_client_quotas_request::OpData::default().with_key(s(key)).with_value(value)])]);
    let r: AlterClientQuotasResponse = c.call(ApiKey::AlterClientQuotas, 1, &alter);
    assert_eq!(r.entries[0].error_code, 0);
}

fn create_topic(c: &mut Client, name: &str) {
    let create = CreateTopicsRequest::default().with_timeout_ms(10_000).with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(TopicName(s(name)))
            .with_num_partitions(1)
            .with_replication_factor(1),
    ]);
    let r: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &create);
    assert_eq!(r.topics[0].error_code, 0);
}

fn produce_request(topic: &str, batch: Vec<u8>) -> ProduceRequest {
    ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![
        produce_request::TopicProduceData::default().with_name(TopicName(s(topic))).with_partition_data(vec![
            produce_request::PartitionProduceData::default().with_index(0).with_records(Some(Bytes::from(batch))),
        ]),
    ])
}

#[test]
fn producer_byte_rate_throttles_a_client_id() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(test_config(dir.path()));
    let mut c = Client::connect(node.addr);
    create_topic(&mut c, "q");
    // The test client's id is "chronik-test": 20 kB/s for it.
    let rate = 20_000.0;
    set_client_quota(&mut c, "producer_byte_rate", rate);
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

    // Five ~10 kB batches: 50 kB at 20 kB/s with one second of burst. The connection is muted
    // after each throttled response, so the fifth request is served only once the first four
    // batches' budget is paid: at least (40 kB - 20 kB) / 20 kB = 1 s; the broker says so in
    // throttle_time_ms.
    let value = vec![7u8; 10_000];
    let records: Vec<chronik::log::batch::KeyValue> = vec![(None, Some(&value[..]))];
    let started = Instant::now();
    let mut throttles = Vec::new();
    let mut sent = 0usize;
    let mut last = 0usize;
    for _ in 0..5 {
        let batch = build_batch(0, -1, -1, -1, 1, &records);
        last = batch.len();
        sent += last;
        let r: ProduceResponse = c.call(ApiKey::Produce, 9, &produce_request("q", batch));
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
        throttles.push(r.throttle_time_ms);
    }
    let took = started.elapsed();
    assert_eq!(throttles[0], 0, "the first second's worth is a free burst: {throttles:?}");
    assert!(throttles[2..].iter().all(|t| *t > 0), "later batches are throttled: {throttles:?}");
    let bound = Duration::from_secs_f64((sent as f64 - last as f64 - rate) / rate);
    assert!(took >= bound, "{sent} B at {rate} B/s (+1 s burst) took {took:?}, less than {bound:?}");
    eprintln!("sent {sent} B in {took:?} under a {rate} B/s quota; throttle_time_ms {throttles:?}");
}

#[test]
fn a_throttled_response_leaves_at_once_and_mutes_the_channel() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(test_config(dir.path()));
    let mut c = Client::connect(node.addr);
    create_topic(&mut c, "m");
    let rate = 10_000.0;
    set_client_quota(&mut c, "producer_byte_rate", rate);

    // One ~40 kB batch at 10 kB/s: the one-second burst covers 10 kB, the rest takes 3 s.
    let value = vec![7u8; 40_000];
    let records: Vec<chronik::log::batch::KeyValue> = vec![(None, Some(&value[..]))];
    let batch = build_batch(0, -1, -1, -1, 1, &records);
    let expected = ((batch.len() as f64 - rate) / rate * 1000.0).ceil() as i32;
    let sent_at = Instant::now();
    let r: ProduceResponse = c.call(ApiKey::Produce, 9, &produce_request("m", batch));
    let answered = sent_at.elapsed();
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    assert_eq!(r.throttle_time_ms, expected, "the budget's deficit, in ms");
    let throttle = Duration::from_millis(expected as u64);
    // Kafka answers at once (not after the throttle), then mutes the channel.
    assert!(answered < throttle, "the throttled response was held: {answered:?} >= {throttle:?}");

    // Another connection is not muted: it is answered while this one is.
    let mut other = Client::connect(node.addr);
    let _: ApiVersionsResponse = other.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    let other_answered = sent_at.elapsed();

    // The same connection's next request is served only once the throttle is over (the mute
    // began after the produce request was sent, so sent_at + throttle is a lower bound).
    let r: ApiVersionsResponse = c.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    let next_answered = sent_at.elapsed();
    assert_eq!(r.error_code, 0);
    assert!(other_answered < throttle, "another connection was held: {other_answered:?} >= {throttle:?}");
    assert!(next_answered >= throttle, "served at {next_answered:?}, before the throttle ended ({throttle:?})");
    eprintln!(
        "throttle_time_ms {expected}: produce answered after {answered:?}, other connection after \
         {other_answered:?}, next request on the muted connection after {next_answered:?}"
    );
}

#[test]
fn request_percentage_throttles_by_handler_time() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(test_config(dir.path()));
    let mut c = Client::connect(node.addr);
    // 0.1 % of one thread: 1 ms of handler time a second (and 1 ms of burst).
    set_client_quota(&mut c, "request_percentage", 0.1);
    let metadata = MetadataRequest::default().with_topics(None);
    // Each Metadata request costs some handler time; within a bounded number the budget runs out.
    let mut throttled = None;
    for i in 0..2_000 {
        let sent_at = Instant::now();
        let r: MetadataResponse = c.call(ApiKey::Metadata, 12, &metadata);
        if r.throttle_time_ms > 0 {
            throttled = Some((i, sent_at, r.throttle_time_ms));
            break;
        }
    }
    let (n, sent_at, ms) = throttled.expect("request_percentage never throttled 2000 Metadata requests");
    assert!(ms as u64 <= 11_000, "bounded by the quota window: {ms}");
    // The channel is muted for the throttle: the next request waits for it.
    let _: ApiVersionsResponse = c.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    let next = sent_at.elapsed();
    assert!(next >= Duration::from_millis(ms as u64), "served after {next:?}, throttle {ms} ms");
    // Without the quota nothing is throttled (the budget is only charged under a quota).
    let alter =
        AlterClientQuotasRequest::default().with_entries(vec![alter_client_quotas_request::EntryData::default()
            .with_entity(vec![alter_client_quotas_request::EntityData::default()
                .with_entity_type(s("client-id"))
                .with_entity_name(Some(s("chronik-test")))])
            .with_ops(vec![alter_client_quotas_request::OpData::default()
                .with_key(s("request_percentage"))
                .with_remove(true)])]);
    let r: AlterClientQuotasResponse = c.call(ApiKey::AlterClientQuotas, 1, &alter);
    assert_eq!(r.entries[0].error_code, 0);
    for _ in 0..20 {
        let r: MetadataResponse = c.call(ApiKey::Metadata, 12, &metadata);
        assert_eq!(r.throttle_time_ms, 0);
    }
    eprintln!("request_percentage=0.1: request {n} throttled for {ms} ms; the next one served after {next:?}");
}
