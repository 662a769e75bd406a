//! `__consumer_offsets` is listed in Metadata as an internal topic with one partition led by the
//! group coordinator; reading it answers an empty partition; producing to it, creating it and
//! deleting it are refused with Kafka's errors.

mod common;

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use chronik::log::batch::build_batch;
use common::{start_node, test_config, Client};

fn name() -> TopicName {
    TopicName(StrBytes::from_static_str("__consumer_offsets"))
}

#[test]
fn consumer_offsets_is_an_internal_topic_that_reads_empty_and_refuses_changes() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(test_config(dir.path()));
    let mut c = Client::connect(node.addr);
    for (v, req) in [
        (12, MetadataRequest::default().with_topics(None)),
        (
            12,
            MetadataRequest::default()
                .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default().with_name(Some(name()))])),
        ),
        (1, MetadataRequest::default().with_topics(None)),
    ] {
        let r: MetadataResponse = c.call(ApiKey::Metadata, v, &req);
        let t = r.topics.iter().find(|t| t.name.as_ref() == Some(&name())).expect("listed");
        assert_eq!((t.error_code, t.is_internal, t.partitions.len()), (0, true, 1), "v{v}");
        assert_eq!(t.partitions[0].leader_id.0, 1, "led by the coordinator");
        if v >= 10 {
            assert!(!t.topic_id.is_nil());
        }
    }
    // Reading: an empty partition.
    let fetch = FetchRequest::default().with_max_wait_ms(10).with_topics(vec![fetch_request::FetchTopic::default()
        .with_topic(name())
        .with_partitions(vec![fetch_request::FetchPartition::default()
            .with_partition(0)
            .with_partition_max_bytes(1 << 20)])]);
    let r: FetchResponse = c.call(ApiKey::Fetch, 12, &fetch);
    let p = &r.responses[0].partitions[0];
    assert_eq!((p.error_code, p.high_watermark, p.records.as_ref().map_or(0, |b| b.len())), (0, 0, 0));
    let lo = ListOffsetsRequest::default().with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
        .with_name(name())
        .with_partitions(vec![list_offsets_request::ListOffsetsPartition::default().with_timestamp(-1)])]);
    let r: ListOffsetsResponse = c.call(ApiKey::ListOffsets, 7, &lo);
    assert_eq!((r.topics[0].partitions[0].error_code, r.topics[0].partitions[0].offset), (0, 0));
    // Producing: INVALID_TOPIC_EXCEPTION.
    let recs: Vec<chronik::log::batch::KeyValue> = vec![(None, Some(&b"x"[..]))];
    let produce = ProduceRequest::default().with_acks(1).with_timeout_ms(5000).with_topic_data(vec![
        produce_request::TopicProduceData::default().with_name(name()).with_partition_data(vec![
            produce_request::PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(Bytes::from(build_batch(0, -1, -1, -1, 1, &recs)))),
        ]),
    ]);
    let r: ProduceResponse = c.call(ApiKey::Produce, 9, &produce);
    assert_eq!(r.responses[0].partition_responses[0].error_code, 17, "INVALID_TOPIC_EXCEPTION");
    // Creating: it exists. Deleting: prohibited.
    let create = CreateTopicsRequest::default().with_timeout_ms(5000).with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(name())
            .with_num_partitions(1)
            .with_replication_factor(1),
    ]);
    let r: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &create);
    assert_eq!(r.topics[0].error_code, 36, "TOPIC_ALREADY_EXISTS");
    let delete = DeleteTopicsRequest::default().with_timeout_ms(5000).with_topic_names(vec![name()]);
    let r: DeleteTopicsResponse = c.call(ApiKey::DeleteTopics, 5, &delete);
    assert_eq!(r.responses[0].error_code, 42, "INVALID_REQUEST");
    // DescribeConfigs (kafka-topics --describe asks for it): no error, no configs.
    let dc = DescribeConfigsRequest::default().with_resources(vec![
        describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("__consumer_offsets")),
    ]);
    let r: DescribeConfigsResponse = c.call(ApiKey::DescribeConfigs, 4, &dc);
    assert_eq!((r.results[0].error_code, r.results[0].configs.len()), (0, 0));
    // Still listed, still internal, and no real topic was made.
    let r: MetadataResponse = c.call(ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(None));
    assert_eq!(r.topics.iter().filter(|t| t.name.as_ref() == Some(&name())).count(), 1);
}
