//! Unit tests of the topic-config table and its validation: every key with its default, a
//! value of the wrong type and a value out of range or not in its set, the cross-field rules
//! and the list operations. Messages were compared with kafka-storage 4.4.0's `LogConfig`.

use super::*;

#[test]
fn every_default_is_valid_and_names_are_unique() {
    let mut seen = HashSet::new();
    for d in TOPIC_CONFIG_DEFS {
        assert!(seen.insert(d.name), "{} listed twice", d.name);
        assert_eq!(validate_topic_config(d.name, d.default), Ok(()), "{}", d.name);
        assert!(!d.doc.is_empty());
    }
    assert_eq!(TOPIC_CONFIG_DEFS.len(), 37, "Kafka 4.4 LogConfig has 37 non-internal topic configs");
}

/// A value of the wrong type for each key (or, for strings and lists, one not in the set).
fn wrong_type(d: &TopicConfigDef) -> &'static str {
    match d.kind {
        Kind::Int | Kind::Long | Kind::Double => "soon",
        Kind::Boolean => "yes",
        Kind::Str | Kind::List | Kind::Password => "bogus",
    }
}

/// A well-typed value outside the key's range, if its validator has one.
fn out_of_range(d: &TopicConfigDef) -> Option<String> {
    match d.rule {
        Rule::AtLeast(min) => Some((min - 1).to_string()),
        Rule::Between(_, hi) => Some((hi + 1).to_string()),
        Rule::Ratio => Some("1.5".into()),
        Rule::GzipLevel => Some("0".into()),
        Rule::NoTieredStorage => Some("true".into()),
        _ => None,
    }
}

#[test]
fn every_key_refuses_a_wrong_type_and_an_out_of_range_value_naming_the_key() {
    for d in TOPIC_CONFIG_DEFS {
        if d.rule == Rule::NoTieredStorage {
            continue;
        }
        let v = wrong_type(d);
        let err = validate_topic_config(d.name, v).expect_err(d.name);
        assert!(err.contains(d.name) && err.starts_with("Invalid value") && err.contains(v), "{err}");
        if let Some(v) = out_of_range(d) {
            let err = validate_topic_config(d.name, &v).expect_err(d.name);
            assert!(err.contains(d.name), "{err}");
        }
    }
}

#[test]
fn kafka_messages() {
    let e = |k, v| validate_topic_config(k, v).unwrap_err();
    assert_eq!(
        e("segment.bytes", "1048575"),
        "Invalid value 1048575 for configuration segment.bytes: Value must be at least 1048576"
    );
    assert_eq!(validate_topic_config("segment.bytes", "1048576"), Ok(()));
    assert_eq!(
        e("internal.segment.bytes", "abc"),
        "Invalid value abc for configuration internal.segment.bytes: Not a number of type INT"
    );
    assert_eq!(
        e("internal.segment.bytes", "2147483648"),
        "Invalid value 2147483648 for configuration internal.segment.bytes: Not a number of type INT"
    );
    assert_eq!(e("retention.ms", "abc"), "Invalid value abc for configuration retention.ms: Not a number of type LONG");
    assert_eq!(
        e("max.message.bytes", "99999999999"),
        "Invalid value 99999999999 for configuration max.message.bytes: Not a number of type INT"
    );
    assert_eq!(
        e("unclean.leader.election.enable", "yes"),
        "Invalid value yes for configuration unclean.leader.election.enable: Expected value to be either true or false"
    );
    assert_eq!(
        e("min.cleanable.dirty.ratio", "1.5"),
        "Invalid value 1.5 for configuration min.cleanable.dirty.ratio: Value must be no more than 1"
    );
    assert_eq!(
        e("cleanup.policy", "Compact"),
        "Invalid value Compact for configuration cleanup.policy: String must be one of: compact, delete"
    );
    assert_eq!(
        e("compression.type", "brotli"),
        "Invalid value brotli for configuration compression.type: String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer"
    );
    assert_eq!(
        e("compression.gzip.level", "0"),
        "Invalid value 0 for configuration compression.gzip.level: Value must be between 1 and 9 or equal to -1"
    );
    assert_eq!(
        e("compression.zstd.level", "23"),
        "Invalid value 23 for configuration compression.zstd.level: Value must be no more than 22"
    );
    assert_eq!(e("flush.ms", "-1"), "Invalid value -1 for configuration flush.ms: Value must be at least 0");
    assert_eq!(e("foo.bar", "1"), "Unknown topic config name: foo.bar");
    assert!(e("follower.replication.throttled.replicas", "bad").contains("must be the literal '*'"));
    assert!(e("remote.storage.enable", "true").contains("Tiered Storage functionality is disabled"));
}

#[test]
fn accepted_values() {
    for (k, v) in [
        ("cleanup.policy", "compact"),
        ("cleanup.policy", "compact,delete"),
        ("cleanup.policy", "delete,compact"),
        ("cleanup.policy", " compact , delete "),
        ("cleanup.policy", ""),
        ("retention.ms", " 5 "),
        ("retention.bytes", "-7"),
        ("unclean.leader.election.enable", "TRUE"),
        ("follower.replication.throttled.replicas", "*"),
        ("leader.replication.throttled.replicas", "0:1,1:2"),
        ("message.timestamp.type", "LogAppendTime"),
        ("compression.zstd.level", "-131072"),
        ("compression.gzip.level", "9"),
        ("min.cleanable.dirty.ratio", "0"),
        ("remote.storage.enable", "false"),
        ("local.retention.ms", "-2"),
    ] {
        assert_eq!(validate_topic_config(k, v), Ok(()), "{k}={v}");
    }
}

#[test]
fn cross_field_rules() {
    let m = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let err =
        validate_topic_configs(&m(&[("min.compaction.lag.ms", "10"), ("max.compaction.lag.ms", "5")])).unwrap_err();
    assert_eq!(err, "conflict topic config setting min.compaction.lag.ms (10) > max.compaction.lag.ms (5)");
    assert!(validate_topic_configs(&m(&[("min.compaction.lag.ms", "5"), ("max.compaction.lag.ms", "5")])).is_ok());
    assert!(validate_topic_configs(&m(&[("min.compaction.lag.ms", "999999999")])).is_ok(), "default max is i64::MAX");
    assert!(validate_topic_configs(&m(&[("cleanup.policy", "compact"), ("retention.ms", "x")])).is_err());
}

#[test]
fn list_operations() {
    let op = apply_list_op;
    assert_eq!(op("cleanup.policy", None, "compact", ListOp::Append).unwrap(), "delete,compact");
    assert_eq!(op("cleanup.policy", Some("compact"), "compact", ListOp::Append).unwrap(), "compact");
    assert_eq!(op("cleanup.policy", Some("compact,delete"), "delete", ListOp::Subtract).unwrap(), "compact");
    assert_eq!(op("cleanup.policy", None, "delete", ListOp::Subtract).unwrap(), "");
    assert_eq!(
        op("retention.ms", None, "1", ListOp::Append).unwrap_err(),
        "Can't APPEND to key retention.ms because its type is not LIST."
    );
    assert!(op("nope", None, "1", ListOp::Subtract).is_err());
}

#[test]
fn effective_values_and_sources() {
    let topic: BTreeMap<String, String> = [("retention.ms".to_string(), "10".to_string())].into();
    let broker: BrokerTopicDefaults = [("retention.bytes", "100".to_string())].into();
    assert_eq!(effective("retention.ms", &topic, &broker), Some(("10".into(), Source::Topic)));
    assert_eq!(effective("retention.bytes", &topic, &broker), Some(("100".into(), Source::StaticBroker)));
    assert_eq!(effective("segment.bytes", &topic, &broker), Some(("1073741824".into(), Source::Default)));
}

/// `internal.segment.bytes` as Kafka 4.4 has it (checked against a running Kafka 4.4 broker):
/// any INT is accepted (no validator, so 0 and negative values too), it has no default, so it
/// is neither effective nor described until a topic sets it, and it replaces `segment.bytes`.
#[test]
fn internal_segment_bytes() {
    assert_eq!(INTERNAL_TOPIC_CONFIG_DEFS.len(), 1);
    assert!(TOPIC_CONFIG_DEFS.iter().all(|d| d.name != "internal.segment.bytes"), "not a public config");
    for v in ["1024", "1", "0", "-5", "2147483647"] {
        assert_eq!(validate_topic_config("internal.segment.bytes", v), Ok(()), "{v}");
    }
    let none = BTreeMap::new();
    let broker = BrokerTopicDefaults::new();
    assert_eq!(effective("internal.segment.bytes", &none, &broker), None, "no default: not described");
    assert_eq!(default_value("internal.segment.bytes"), None);
    let set: BTreeMap<String, String> = [("internal.segment.bytes".to_string(), "1024".to_string())].into();
    assert_eq!(effective("internal.segment.bytes", &set, &broker), Some(("1024".into(), Source::Topic)));
    let described: Vec<&str> = described_defs().map(|d| d.name).collect();
    assert_eq!(described.len(), 38);
    assert_eq!(described[0], "internal.segment.bytes", "Kafka lists the set originals first");

    let cfg = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };
    assert_eq!(segment_bytes(&cfg(&[]), 1 << 30), 1 << 30, "the broker's topics.segment-bytes");
    assert_eq!(segment_bytes(&cfg(&[("segment.bytes", "2097152")]), 1 << 30), 2_097_152);
    let both = cfg(&[("segment.bytes", "2097152"), ("internal.segment.bytes", "1024")]);
    assert_eq!(segment_bytes(&both, 1 << 30), 1024, "the internal key wins");
    assert_eq!(segment_bytes(&cfg(&[("internal.segment.bytes", "-5")]), 1 << 30), 1, "rolls after every entry");
    assert_eq!(segment_size(&cfg(&[("internal.segment.bytes", "-5")]), 1 << 30), -5, "as configured");
}

#[test]
fn the_configuration_doc_lists_every_topic_config_with_its_status() {
    let doc = include_str!("../../docs/configuration.md");
    for d in described_defs() {
        let row = doc.lines().find(|l| l.starts_with(&format!("| `{}` |", d.name)));
        let row = row.unwrap_or_else(|| panic!("docs/configuration.md has no row for {}", d.name));
        let default = default_value(d.name).map_or("none".to_string(), |v| format!("`{v}`"));
        assert!(row.contains(&default), "{row}");
        assert!(row.contains(d.status.describe()), "{row}");
    }
}
