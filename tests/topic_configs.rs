//! In-process tests of Kafka's topic-config surface against a standalone node: CreateTopics
//! with every kind of bad value, DescribeConfigs of topics (sources, synonyms, documentation)
//! and of the BROKER resource, IncrementalAlterConfigs' list operations, and the produce rules
//! (per-topic max.message.bytes both ways, keys on compacted topics, LogAppendTime, timestamp
//! bounds, min.insync.replicas), the `[groups]` session-timeout bounds and group.max.size, and
//! `segment.bytes`' floor with the test-only `internal.segment.bytes`.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use chronik::log::batch::{build_batch, KeyValue};
use common::{start_node, test_config, Client};

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn create(c: &mut Client, topic: &str, configs: &[(&str, &str)], validate_only: bool) -> CreateTopicsResponse {
    let configs = configs
        .iter()
        .map(|(k, v)| create_topics_request::CreatableTopicConfig::default().with_name(s(k)).with_value(Some(s(v))))
        .collect();
    let req =
        CreateTopicsRequest::default().with_timeout_ms(10_000).with_validate_only(validate_only).with_topics(vec![
            create_topics_request::CreatableTopic::default()
                .with_name(name(topic))
                .with_num_partitions(1)
                .with_replication_factor(1)
                .with_configs(configs),
        ]);
    c.call(ApiKey::CreateTopics, 7, &req)
}

fn produce(c: &mut Client, topic: &str, batch: Vec<u8>, acks: i16) -> produce_response::PartitionProduceResponse {
    let req = ProduceRequest::default().with_acks(acks).with_timeout_ms(10_000).with_topic_data(vec![
        produce_request::TopicProduceData::default().with_name(name(topic)).with_partition_data(vec![
            produce_request::PartitionProduceData::default().with_index(0).with_records(Some(Bytes::from(batch))),
        ]),
    ]);
    let r: ProduceResponse = c.call(ApiKey::Produce, 9, &req);
    r.responses[0].partition_responses[0].clone()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn describe(
    c: &mut Client,
    kind: i8,
    resource: &str,
    version: i16,
) -> describe_configs_response::DescribeConfigsResult {
    let req = DescribeConfigsRequest::default()
        .with_include_synonyms(true)
        .with_include_documentation(version >= 3)
        .with_resources(vec![describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(kind)
            .with_resource_name(s(resource))]);
    let r: DescribeConfigsResponse = c.call(ApiKey::DescribeConfigs, version, &req);
    r.results[0].clone()
}

fn incremental(c: &mut Client, kind: i8, resource: &str, ops: &[(&str, i8, Option<&str>)]) -> (i16, String) {
    common::incremental_alter(c, kind, resource, ops)
}

#[test]
fn create_accepts_kafka_streams_configs_and_refuses_bad_values_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(test_config(dir.path()));
    let mut c = Client::connect(node.addr);
    let streams = [
        ("cleanup.policy", "compact"),
        ("message.timestamp.type", "CreateTime"),
        ("segment.bytes", "52428800"),
        ("unclean.leader.election.enable", "false"),
    ];
    let r = create(&mut c, "changelog", &streams, false);
    assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);
    let configs = r.topics[0].configs.as_ref().unwrap();
    let policy = configs.iter().find(|c| c.name.as_str() == "cleanup.policy").unwrap();
    assert_eq!((policy.value.as_deref(), policy.config_source), (Some("compact"), 1));
    assert_eq!(configs.len(), 37, "every topic config is returned");
    for (k, v) in [
        ("cleanup.policy", "compacted"),
        ("retention.ms", "soon"),
        ("min.insync.replicas", "0"),
        ("min.cleanable.dirty.ratio", "2"),
        ("no.such.config", "1"),
    ] {
        let r = create(&mut c, "bad", &[(k, v)], false);
        let msg = r.topics[0].error_message.as_deref().unwrap_or("").to_string();
        assert_eq!(r.topics[0].error_code, 40, "{k}={v}: {msg}");
        assert!(msg.contains(k), "{msg}");
    }
    let r = create(&mut c, "bad", &[("min.compaction.lag.ms", "10"), ("max.compaction.lag.ms", "5")], false);
    assert_eq!(r.topics[0].error_code, 40);
    // validate_only checks the same and answers the requested configs, creating nothing.
    let r = create(&mut c, "dry", &[("cleanup.policy", "delete,compact")], true);
    assert_eq!(r.topics[0].error_code, 0);
    let policy = r.topics[0].configs.as_ref().unwrap().iter().find(|c| c.name.as_str() == "cleanup.policy").cloned();
    assert_eq!(policy.and_then(|p| p.value).as_deref(), Some("delete,compact"));
    assert_eq!(create(&mut c, "dry", &[("retention.ms", "-5")], true).topics[0].error_code, 40);
    assert_eq!(describe(&mut c, 2, "dry", 4).error_code, 3, "validate_only created nothing");
}

#[test]
fn describe_topic_and_broker_configs() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.groups.min_session_timeout = Duration::from_secs(1);
    config.topics.retention = Some(Duration::from_secs(3600));
    let node = start_node(config);
    let mut c = Client::connect(node.addr);
    assert_eq!(create(&mut c, "t", &[("max.message.bytes", "2000000")], false).topics[0].error_code, 0);
    let r = describe(&mut c, 2, "t", 4);
    assert_eq!(r.error_code, 0);
    assert_eq!(r.configs.len(), 37);
    let get = |n: &str| r.configs.iter().find(|c| c.name.as_str() == n).unwrap().clone();
    let m = get("max.message.bytes");
    assert_eq!((m.value.as_deref(), m.config_source, m.config_type, m.read_only), (Some("2000000"), 1, 3, false));
    let syn: Vec<_> = m.synonyms.iter().map(|s| (s.name.to_string(), s.source)).collect();
    assert_eq!(syn, [("max.message.bytes".to_string(), 1), ("message.max.bytes".to_string(), 5)]);
    let ret = get("retention.ms");
    assert_eq!(
        (ret.value.as_deref(), ret.config_source),
        (Some("3600000"), 4),
        "the TOML sets it: STATIC_BROKER_CONFIG"
    );
    let pol = get("cleanup.policy");
    assert_eq!((pol.value.as_deref(), pol.config_source, pol.config_type), (Some("delete"), 5, 7));
    assert!(pol.documentation.as_deref().is_some_and(|d| d.contains("retention policy")));
    // Before v3 there is no type or documentation.
    let old = describe(&mut c, 2, "t", 1);
    assert!(old.configs.iter().all(|c| c.config_type == 0 && c.documentation.as_deref().unwrap_or("").is_empty()));

    for resource in ["1", ""] {
        let b = describe(&mut c, 4, resource, 4);
        assert_eq!(b.error_code, 0, "{resource:?}");
        let get = |n: &str| b.configs.iter().find(|c| c.name.as_str() == n).unwrap_or_else(|| panic!("{n}")).clone();
        let min = get("group.min.session.timeout.ms");
        assert_eq!((min.value.as_deref(), min.config_source, min.read_only), (Some("1000"), 4, true));
        let max = get("group.max.session.timeout.ms");
        assert_eq!((max.value.as_deref(), max.config_source), (Some("1800000"), 5));
        assert_eq!(get("log.cleanup.policy").value.as_deref(), Some("delete"));
        assert_eq!(get("auto.create.topics.enable").value.as_deref(), Some("true"));
    }
    assert_eq!(describe(&mut c, 4, "7", 4).error_code, 42, "another broker's id");
    let (code, msg) = incremental(&mut c, 4, "1", &[("log.retention.ms", 0, Some("1"))]);
    assert_eq!(code, 42);
    assert!(msg.contains("static"), "{msg}");

    // The replication throttle rates are dynamic: this broker's own value, else the cluster
    // default, else Kafka's default (Long.MAX_VALUE), each with its source.
    let (leader, follower) = ("leader.replication.throttled.rate", "follower.replication.throttled.rate");
    let rate = |c: &mut Client, resource: &str, n: &str| {
        let b = describe(c, 4, resource, 4);
        let e = b.configs.iter().find(|c| c.name.as_str() == n).unwrap().clone();
        (e.value.map(|v| v.to_string()).unwrap_or_default(), e.config_source, e.read_only)
    };
    assert_eq!(rate(&mut c, "1", leader), ("9223372036854775807".to_string(), 5, false));
    assert_eq!(incremental(&mut c, 4, "1", &[(leader, 0, Some("1000000"))]).0, 0);
    assert_eq!(incremental(&mut c, 4, "", &[(leader, 0, Some("5")), (follower, 0, Some("7"))]).0, 0);
    assert_eq!(rate(&mut c, "1", leader), ("1000000".to_string(), 2, false), "DYNAMIC_BROKER_CONFIG");
    assert_eq!(rate(&mut c, "1", follower), ("7".to_string(), 3, false), "DYNAMIC_DEFAULT_BROKER_CONFIG");
    assert_eq!(rate(&mut c, "", leader), ("5".to_string(), 3, false), "the default resource shows the default");
    let (code, msg) = incremental(&mut c, 4, "1", &[(leader, 0, Some("-1"))]);
    assert_eq!(
        (code, msg.as_str()),
        (40, "Invalid value -1 for configuration leader.replication.throttled.rate: Value must be at least 0")
    );
    assert_eq!(incremental(&mut c, 4, "1", &[(leader, 1, None)]).0, 0);
    assert_eq!(rate(&mut c, "1", leader), ("5".to_string(), 3, false), "back to the default");
    assert_eq!(incremental(&mut c, 4, "", &[(leader, 1, None), (follower, 1, None)]).0, 0);
    assert_eq!(rate(&mut c, "1", follower), ("9223372036854775807".to_string(), 5, false));
}

#[test]
fn incremental_alter_list_operations_and_validation() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(test_config(dir.path()));
    let mut c = Client::connect(node.addr);
    assert_eq!(create(&mut c, "t", &[], false).topics[0].error_code, 0);
    let policy = |c: &mut Client| {
        let r = describe(c, 2, "t", 4);
        r.configs
            .iter()
            .find(|c| c.name.as_str() == "cleanup.policy")
            .and_then(|c| c.value.clone())
            .unwrap()
            .to_string()
    };
    assert_eq!(incremental(&mut c, 2, "t", &[("cleanup.policy", 2, Some("compact"))]).0, 0);
    assert_eq!(policy(&mut c), "delete,compact");
    assert_eq!(incremental(&mut c, 2, "t", &[("cleanup.policy", 3, Some("delete"))]).0, 0);
    assert_eq!(policy(&mut c), "compact");
    let (code, msg) = incremental(&mut c, 2, "t", &[("retention.ms", 2, Some("5"))]);
    assert_eq!((code, msg.as_str()), (40, "Can't APPEND to key retention.ms because its type is not LIST."));
    let (code, msg) = incremental(&mut c, 2, "t", &[("segment.ms", 0, Some("0"))]);
    assert_eq!(code, 40);
    assert!(msg.contains("segment.ms"), "{msg}");
    // The cross-field rule sees the topic's current values.
    assert_eq!(incremental(&mut c, 2, "t", &[("max.compaction.lag.ms", 0, Some("100"))]).0, 0);
    let (code, msg) = incremental(&mut c, 2, "t", &[("min.compaction.lag.ms", 0, Some("200"))]);
    assert_eq!(code, 40, "{msg}");
    assert_eq!(incremental(&mut c, 2, "t", &[("max.compaction.lag.ms", 1, None)]).0, 0);
    assert_eq!(incremental(&mut c, 2, "t", &[("min.compaction.lag.ms", 0, Some("200"))]).0, 0);
}

/// The `.log` segment files of a partition directory, with their sizes.
fn segment_sizes(dir: &std::path::Path) -> Vec<u64> {
    let mut v: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.metadata().unwrap().len()))
        .collect();
    v.sort();
    v.into_iter().map(|(_, len)| len).collect()
}

/// `segment.bytes` has Kafka 4.4's floor (1048576, INVALID_CONFIG with Kafka's message) on
/// CreateTopics, IncrementalAlterConfigs and AlterConfigs; the test-only
/// `internal.segment.bytes` is accepted with any INT, described only where set, and the
/// partition actually rolls its segments at that size and refuses a batch larger than one.
#[test]
fn segment_bytes_floor_and_internal_segment_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(test_config(dir.path()));
    let mut c = Client::connect(node.addr);
    // First topic created: group 1, so its directory is groups/1.
    let r = create(&mut c, "small", &[("internal.segment.bytes", "1024")], false);
    assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);
    let configs = r.topics[0].configs.as_ref().unwrap();
    assert_eq!(configs.len(), 38, "the 37 configs and the internal one that is set");
    let internal = configs.iter().find(|c| c.name.as_str() == "internal.segment.bytes").unwrap();
    assert_eq!((internal.value.as_deref(), internal.config_source), (Some("1024"), 1));

    let kafka_msg = "Invalid value 1048575 for configuration segment.bytes: Value must be at least 1048576";
    let r = create(&mut c, "bad", &[("segment.bytes", "1048575")], false);
    assert_eq!((r.topics[0].error_code, r.topics[0].error_message.as_deref()), (40, Some(kafka_msg)));
    assert_eq!(create(&mut c, "floor", &[("segment.bytes", "1048576")], true).topics[0].error_code, 0);
    let (code, msg) = incremental(&mut c, 2, "small", &[("segment.bytes", 0, Some("1048575"))]);
    assert_eq!((code, msg.as_str()), (40, kafka_msg));
    let legacy =
        AlterConfigsRequest::default().with_resources(vec![alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s("small"))
            .with_configs(vec![alter_configs_request::AlterableConfig::default()
                .with_name(s("segment.bytes"))
                .with_value(Some(s("1000")))])]);
    let r: AlterConfigsResponse = c.call(ApiKey::AlterConfigs, 2, &legacy);
    assert_eq!(r.responses[0].error_code, 40);
    assert!(r.responses[0].error_message.as_deref().unwrap_or("").contains("segment.bytes"));

    // The internal config: any INT (Kafka has no validator for it), a non-INT is refused.
    let (code, msg) = incremental(&mut c, 2, "small", &[("internal.segment.bytes", 0, Some("1k"))]);
    assert_eq!(
        (code, msg.as_str()),
        (40, "Invalid value 1k for configuration internal.segment.bytes: Not a number of type INT")
    );
    assert_eq!(create(&mut c, "zero", &[("internal.segment.bytes", "0")], true).topics[0].error_code, 0);

    // Described (first, as Kafka lists the set originals) only on the topic that sets it.
    let d = describe(&mut c, 2, "small", 4);
    assert_eq!(d.configs.len(), 38);
    let i = &d.configs[0];
    assert_eq!(
        (i.name.as_str(), i.value.as_deref(), i.config_source, i.config_type),
        ("internal.segment.bytes", Some("1024"), 1, 3)
    );
    let syn: Vec<_> = i.synonyms.iter().map(|s| (s.name.to_string(), s.source)).collect();
    assert_eq!(syn, [("internal.segment.bytes".to_string(), 1)]);
    assert!(i.documentation.as_deref().is_some_and(|d| d.contains("testing only")));
    let seg = d.configs.iter().find(|c| c.name.as_str() == "segment.bytes").unwrap();
    assert_eq!((seg.value.as_deref(), seg.config_source), (Some("1073741824"), 5), "segment.bytes is untouched");
    assert_eq!(create(&mut c, "plain", &[], false).topics[0].error_code, 0);
    let d = describe(&mut c, 2, "plain", 4);
    assert_eq!(d.configs.len(), 37);
    assert!(d.configs.iter().all(|c| c.name.as_str() != "internal.segment.bytes"));

    // The partition rolls at 1024 bytes: 40 batches of about 150 bytes make several
    // segments, none (but one holding a single larger entry) above 1 KiB.
    let value = vec![b'v'; 100];
    for _ in 0..40 {
        let batch = build_batch(0, -1, -1, -1, now_ms(), &[(Some(b"k".as_slice()), Some(value.as_slice()))]);
        assert_eq!(produce(&mut c, "small", batch, -1).error_code, 0);
    }
    let sizes = segment_sizes(&dir.path().join("groups").join("1"));
    let total: u64 = sizes.iter().sum();
    assert!(total > 40 * 150, "every batch is on disk: {sizes:?}");
    assert!(sizes.len() as u64 >= total / 1024, "rolled about every KiB: {sizes:?}");
    assert!(sizes.iter().all(|s| *s <= 1024), "no segment past internal.segment.bytes: {sizes:?}");
    let plain = segment_sizes(&dir.path().join("groups").join("2"));
    assert_eq!(plain.len(), 1, "a topic without it keeps one segment: {plain:?}");

    // A batch larger than one segment is refused, as Kafka's UnifiedLog.append does.
    let big = vec![b'v'; 1100];
    let batch = build_batch(0, -1, -1, -1, now_ms(), &[(Some(b"k".as_slice()), Some(big.as_slice()))]);
    assert_eq!(produce(&mut c, "small", batch.clone(), -1).error_code, 18, "RECORD_BATCH_TOO_LARGE");
    assert_eq!(produce(&mut c, "plain", batch, -1).error_code, 0);

    // A new size applies from the next roll, without a restart (Kafka's segment.bytes is
    // dynamic too): the segments written after the change grow past 1 KiB up to 4 KiB.
    assert_eq!(incremental(&mut c, 2, "small", &[("internal.segment.bytes", 0, Some("4096"))]).0, 0);
    // (The change reaches the partition through __meta's apply, so a few batches may still roll
    // at 1 KiB right after the answer.)
    let before = sizes.len();
    let big_sealed =
        |v: &[u64]| v.get(before..v.len().saturating_sub(1)).map_or(0, |s| s.iter().filter(|s| **s > 1024).count());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut grown = Vec::new();
    while Instant::now() < deadline && big_sealed(&grown) < 2 {
        let batch = build_batch(0, -1, -1, -1, now_ms(), &[(Some(b"k".as_slice()), Some(value.as_slice()))]);
        assert_eq!(produce(&mut c, "small", batch, -1).error_code, 0);
        grown = segment_sizes(&dir.path().join("groups").join("1"));
    }
    assert!(big_sealed(&grown) >= 2, "segments sealed after the change grew past 1 KiB: {grown:?}");
    assert!(grown.iter().all(|s| *s <= 4096), "none past the new size: {grown:?}");

    // Deleting it puts segment.bytes back in charge and hides it again.
    assert_eq!(incremental(&mut c, 2, "small", &[("internal.segment.bytes", 1, None)]).0, 0);
    assert_eq!(describe(&mut c, 2, "small", 4).configs.len(), 37);
}

#[test]
fn produce_enforces_topic_configs() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.kafka.max_message_bytes = 100_000;
    let node = start_node(config);
    let mut c = Client::connect(node.addr);
    let big = vec![7u8; 200_000];
    let one = |v: &[u8]| build_batch(0, -1, -1, -1, now_ms(), &[(Some(b"k".as_slice()), Some(v))]);
    // max.message.bytes above the broker's message.max.bytes takes the bigger batch...
    assert_eq!(create(&mut c, "wide", &[("max.message.bytes", "1000000")], false).topics[0].error_code, 0);
    assert_eq!(produce(&mut c, "wide", one(&big), -1).error_code, 0);
    // ...the broker's limit holds for a topic without the setting, and a lower one per topic.
    assert_eq!(create(&mut c, "plain", &[], false).topics[0].error_code, 0);
    assert_eq!(produce(&mut c, "plain", one(&big), -1).error_code, 10);
    assert_eq!(create(&mut c, "narrow", &[("max.message.bytes", "1000")], false).topics[0].error_code, 0);
    assert_eq!(produce(&mut c, "narrow", one(&[1u8; 2000]), -1).error_code, 10);
    assert_eq!(produce(&mut c, "narrow", one(b"small"), -1).error_code, 0);

    // Compacted topics refuse records without a key.
    assert_eq!(create(&mut c, "compacted", &[("cleanup.policy", "compact")], false).topics[0].error_code, 0);
    let keyless: Vec<KeyValue<'_>> = vec![(Some(b"k"), Some(b"v")), (None, Some(b"v"))];
    let r = produce(&mut c, "compacted", build_batch(0, -1, -1, -1, now_ms(), &keyless), -1);
    assert_eq!(r.error_code, 87, "{:?}", r.error_message);
    assert_eq!(produce(&mut c, "compacted", one(b"v"), -1).error_code, 0);
    assert_eq!(produce(&mut c, "plain", build_batch(0, -1, -1, -1, now_ms(), &keyless), -1).error_code, 0);

    // LogAppendTime: the answer carries the leader's time, and the stored batch says so.
    assert_eq!(create(&mut c, "lat", &[("message.timestamp.type", "LogAppendTime")], false).topics[0].error_code, 0);
    let before = now_ms();
    let r = produce(&mut c, "lat", build_batch(0, -1, -1, -1, 5, &[(Some(b"k"), Some(b"v"))]), -1);
    assert_eq!(r.error_code, 0);
    assert!(r.log_append_time_ms >= before && r.log_append_time_ms <= now_ms(), "{}", r.log_append_time_ms);
    let req = FetchRequest::default().with_max_wait_ms(0).with_max_bytes(1 << 20).with_topics(vec![
        fetch_request::FetchTopic::default().with_topic(name("lat")).with_partitions(vec![
            fetch_request::FetchPartition::default().with_partition(0).with_partition_max_bytes(1 << 20),
        ]),
    ]);
    let f: FetchResponse = c.call(ApiKey::Fetch, 12, &req);
    let records = f.responses[0].partitions[0].records.clone().unwrap();
    let h = chronik::log::batch::BatchHeader::parse(&records).unwrap();
    assert!(h.is_log_append_time());
    assert_eq!(h.max_timestamp, r.log_append_time_ms);
    assert_eq!(produce(&mut c, "plain", one(b"v"), -1).log_append_time_ms, -1);

    // CreateTime bounds.
    let bounds = [("message.timestamp.before.max.ms", "60000"), ("message.timestamp.after.max.ms", "60000")];
    assert_eq!(create(&mut c, "bounded", &bounds, false).topics[0].error_code, 0);
    let at = |ts| build_batch(0, -1, -1, -1, ts, &[(Some(b"k".as_slice()), Some(b"v".as_slice()))]);
    assert_eq!(produce(&mut c, "bounded", at(now_ms() - 3_600_000), -1).error_code, 32);
    assert_eq!(produce(&mut c, "bounded", at(now_ms() + 3_600_000), -1).error_code, 32);
    assert_eq!(produce(&mut c, "bounded", at(now_ms()), -1).error_code, 0);

    // min.insync.replicas above the replicas in sync: acks=all refused, acks=1 accepted.
    assert_eq!(create(&mut c, "isr", &[("min.insync.replicas", "2")], false).topics[0].error_code, 0);
    assert_eq!(produce(&mut c, "isr", one(b"v"), -1).error_code, 19);
    assert_eq!(produce(&mut c, "isr", one(b"v"), 1).error_code, 0);
    assert_eq!(incremental(&mut c, 2, "isr", &[("min.insync.replicas", 1, None)]).0, 0);
    assert_eq!(produce(&mut c, "isr", one(b"v"), -1).error_code, 0);
}

#[test]
fn session_timeout_bounds_come_from_the_groups_section() {
    let join = |c: &mut Client, session_ms: i32| {
        let req = JoinGroupRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_session_timeout_ms(session_ms)
            .with_rebalance_timeout_ms(10_000)
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(Bytes::new())]);
        let r: JoinGroupResponse = c.call(ApiKey::JoinGroup, 5, &req);
        r.error_code
    };
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(test_config(dir.path()));
    let mut c = Client::connect(node.addr);
    assert_eq!(join(&mut c, 3000), 26, "Kafka's default minimum is 6 s");
    drop(node);
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.groups.min_session_timeout = Duration::from_secs(1);
    config.groups.initial_rebalance_delay = Duration::ZERO;
    let node = start_node(config);
    let mut c = Client::connect(node.addr);
    // MEMBER_ID_REQUIRED: the session timeout passed, the join goes on as usual.
    assert_eq!(join(&mut c, 3000), 79);
    assert_eq!(join(&mut c, 500), 26);
    drop(node);

    // group.max.size: the second new member of a group limited to one is refused.
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.groups.max_size = 1;
    let node = start_node(config);
    let mut c = Client::connect(node.addr);
    assert_eq!(join(&mut c, 10_000), 79);
    assert_eq!(join(&mut c, 10_000), 81, "GROUP_MAX_SIZE_REACHED");
}

/// Polls `f` every 100 ms until it returns true or `timeout` passes (then fails with `what`).
fn eventually(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !f() {
        assert!(std::time::Instant::now() < deadline, "{what} within {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn min_insync_replicas_on_three_nodes_follows_the_replicas_in_sync() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = common::start_cluster(common::cluster_configs(dir.path(), 3));
    let mut c1 = Client::connect(nodes[0].addr);
    let req = CreateTopicsRequest::default().with_timeout_ms(20_000).with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(name("isr3"))
            .with_num_partitions(1)
            .with_replication_factor(3)
            .with_configs(vec![create_topics_request::CreatableTopicConfig::default()
                .with_name(s("min.insync.replicas"))
                .with_value(Some(s("3")))]),
    ]);
    let r: CreateTopicsResponse = c1.call(ApiKey::CreateTopics, 7, &req);
    assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);
    let md = MetadataRequest::default()
        .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default().with_name(Some(name("isr3")))]));
    let mut leader = 0;
    eventually(Duration::from_secs(20), "a leader", || {
        let r: MetadataResponse = c1.call(ApiKey::Metadata, 12, &md);
        leader = r.topics[0].partitions.first().map_or(0, |p| p.leader_id.0);
        leader > 0
    });
    let mut lc = Client::connect(nodes[leader as usize - 1].addr);
    let batch = || build_batch(0, -1, -1, -1, now_ms(), &[(Some(b"k".as_slice()), Some(b"v".as_slice()))]);
    eventually(Duration::from_secs(20), "acks=all with every replica in sync", || {
        produce(&mut lc, "isr3", batch(), -1).error_code == 0
    });
    // Cut one follower off: once the leader no longer counts it in sync, acks=all is refused
    // with NOT_ENOUGH_REPLICAS while acks=1 still commits on the majority.
    let cut = (leader as u64) % 3 + 1;
    for (i, n) in nodes.iter().enumerate() {
        let id = i as u64 + 1;
        if id == cut {
            (1..=3).filter(|p| *p != id).for_each(|p| n.faults.partition(p, true));
        } else {
            n.faults.partition(cut, true);
        }
    }
    eventually(Duration::from_secs(30), "NOT_ENOUGH_REPLICAS with a follower cut off", || {
        let code = produce(&mut lc, "isr3", batch(), -1).error_code;
        assert!(code == 0 || code == 19 || code == 20, "unexpected error {code}");
        code == 19
    });
    assert_eq!(produce(&mut lc, "isr3", batch(), 1).error_code, 0);
    for n in &nodes {
        (1..=3u64).for_each(|p| n.faults.partition(p, false));
    }
    eventually(Duration::from_secs(30), "acks=all again once the follower is back", || {
        produce(&mut lc, "isr3", batch(), -1).error_code == 0
    });
}
