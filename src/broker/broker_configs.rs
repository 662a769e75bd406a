//! The broker's own configs as Kafka names them, for DescribeConfigs on the BROKER resource:
//! one line per setting in [`broker_configs`] (Kafka's name, type, Kafka's default, chronik's
//! value from the TOML, documentation), then the broker synonym of every topic config
//! (`log.cleanup.policy`, ...) not listed there. A value that differs from Kafka's default
//! describes as STATIC_BROKER_CONFIG. All are read-only: chronik reads its configuration at
//! start only. Also the topic-config defaults the TOML changes ([`topic_defaults`]), which
//! topic configs describe as STATIC_BROKER_CONFIG.

use crate::config::Config;
use crate::meta::broker_config::UNLIMITED;
use crate::meta::topic_config::{default_value, BrokerTopicDefaults, Kind, Source, TOPIC_CONFIG_DEFS};

/// One broker config as DescribeConfigs shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConfigEntry {
    pub name: String,
    pub kind: Kind,
    /// chronik's value.
    pub value: Option<String>,
    /// Kafka's default.
    pub kafka_default: Option<String>,
    pub source: Source,
    pub doc: &'static str,
    /// A secret: described with `is_sensitive` and no value (the value is never kept here).
    pub sensitive: bool,
}

fn entry(name: &'static str, kind: Kind, kafka_default: &str, value: String, doc: &'static str) -> BrokerConfigEntry {
    let source = if value == kafka_default { Source::Default } else { Source::StaticBroker };
    let kafka_default = Some(kafka_default.to_string());
    BrokerConfigEntry { name: name.to_string(), kind, value: Some(value), kafka_default, source, doc, sensitive: false }
}

/// Every broker config this node describes.
pub fn broker_configs(config: &Config) -> Vec<BrokerConfigEntry> {
    let (t, g, c, x) = (&config.topics, &config.groups, &config.cleaner, &config.transactions);
    let ms = |d: Option<std::time::Duration>| d.map_or(-1, |d| d.as_millis() as i64).to_string();
    #[rustfmt::skip]
    let mut out = vec![
        entry("auto.create.topics.enable", Kind::Boolean, "true", t.auto_create.to_string(),
            "Enable auto creation of topic on the server. ([topics] auto-create)"),
        entry("num.partitions", Kind::Int, "1", t.default_partitions.to_string(),
            "The default number of log partitions per topic. ([topics] default-partitions)"),
        entry("default.replication.factor", Kind::Int, "1", t.default_replication_factor.to_string(),
            "The replication factor for automatically created topics. ([topics] default-replication-factor)"),
        entry("message.max.bytes", Kind::Int, "1048588", config.kafka.max_message_bytes.to_string(),
            "The largest record batch size allowed by Kafka (after compression if compression is enabled). ([kafka] max-message-bytes)"),
        entry("socket.request.max.bytes", Kind::Int, "104857600", config.kafka.max_request_size.to_string(),
            "The maximum number of bytes in a socket request. ([kafka] max-request-size)"),
        entry("log.retention.ms", Kind::Long, "604800000", ms(t.retention),
            "The number of milliseconds to keep a log file before deleting it. ([topics] retention)"),
        entry("log.retention.bytes", Kind::Long, "-1", t.retention_bytes.map_or(-1, |b| b as i64).to_string(),
            "The maximum size of the log before deleting it. ([topics] retention-bytes)"),
        entry("log.segment.bytes", Kind::Int, "1073741824", t.segment_bytes.to_string(),
            "The maximum size of a single log file. ([topics] segment-bytes)"),
        entry("log.retention.check.interval.ms", Kind::Long, "300000", config.storage.retention_check_interval.as_millis().to_string(),
            "The frequency in milliseconds that the log cleaner checks whether any log is eligible for deletion. ([storage] retention-check-interval)"),
        entry("log.index.interval.bytes", Kind::Int, "4096", config.storage.index_interval_bytes.to_string(),
            "The interval with which we add an entry to the offset index. ([storage] index-interval-bytes)"),
        entry("broker.id", Kind::Int, "-1", config.node_id.to_string(), "The broker id for this server. (node-id)"),
        entry("node.id", Kind::Int, "-1", config.node_id.to_string(), "The node ID associated with the roles this process is playing. (node-id)"),
        entry("log.dirs", Kind::Str, "/tmp/kraft-combined-logs", config.data_dir.display().to_string(),
            "The directories in which the log data is kept. (data-dir)"),
        entry("group.min.session.timeout.ms", Kind::Int, "6000", g.min_session_timeout.as_millis().to_string(),
            "The minimum allowed session timeout for registered consumers. ([groups] min-session-timeout)"),
        entry("group.max.session.timeout.ms", Kind::Int, "1800000", g.max_session_timeout.as_millis().to_string(),
            "The maximum allowed session timeout for registered consumers. ([groups] max-session-timeout)"),
        entry("group.initial.rebalance.delay.ms", Kind::Int, "3000", g.initial_rebalance_delay.as_millis().to_string(),
            "The amount of time the group coordinator will wait for more consumers to join a new group before performing the first rebalance. ([groups] initial-rebalance-delay)"),
        entry("group.max.size", Kind::Int, "2147483647", g.max_size.to_string(),
            "The maximum number of consumers that a single consumer group can accommodate. ([groups] max-size)"),
        entry("offsets.retention.minutes", Kind::Int, "10080", (config.offsets.retention.as_secs() / 60).to_string(),
            "For subscribed consumers, committed offset of a specific partition will be expired and discarded when 1) this retention period has elapsed after the consumer group loses all its consumers (i.e. becomes empty); 2) this retention period has elapsed since the last time an offset is committed for the partition and the group is no longer subscribed to the corresponding topic. ([offsets] retention)"),
        entry("offsets.retention.check.interval.ms", Kind::Long, "600000", config.offsets.retention_check_interval.as_millis().to_string(),
            "Frequency at which to check for stale offsets. ([offsets] retention-check-interval)"),
        entry("auto.leader.rebalance.enable", Kind::Boolean, "true", config.leaders.auto_rebalance_enable.to_string(),
            "Enables auto leader balancing. A background thread checks the distribution of partition leaders at regular intervals, configurable by leader.imbalance.check.interval.seconds. If the leader imbalance exceeds leader.imbalance.per.broker.percentage, leader rebalance to the preferred leader for partitions is triggered. ([leaders] auto-rebalance-enable)"),
        entry("leader.imbalance.check.interval.seconds", Kind::Long, "300", config.leaders.imbalance_check_interval.as_secs().to_string(),
            "The frequency with which the partition rebalance check is triggered by the controller ([leaders] imbalance-check-interval)"),
        entry("leader.imbalance.per.broker.percentage", Kind::Int, "10", config.leaders.imbalance_per_broker_percentage.to_string(),
            "The ratio of leader imbalance allowed per broker. The controller would trigger a leader balance if it goes above this value per broker. The value is specified in percentage. ([leaders] imbalance-per-broker-percentage)"),
        entry("transaction.max.timeout.ms", Kind::Int, "900000", x.max_timeout.as_millis().to_string(),
            "The maximum allowed timeout for transactions. If a client’s requested transaction time exceed this, then the broker will return an error in InitProducerIdRequest. ([transactions] max-timeout)"),
        entry("transactional.id.expiration.ms", Kind::Int, "604800000", x.id_expiration.as_millis().to_string(),
            "The time in ms that the transaction coordinator will wait without receiving any transaction status updates for the current transaction before expiring its transactional id. ([transactions] id-expiration)"),
        entry("transaction.abort.timed.out.transaction.cleanup.interval.ms", Kind::Int, "10000",
            x.abort_timed_out_interval.as_millis().to_string(),
            "The interval at which to rollback transactions that have timed out. ([transactions] abort-timed-out-interval)"),
        entry("transaction.remove.expired.transaction.cleanup.interval.ms", Kind::Int, "3600000",
            x.remove_expired_interval.as_millis().to_string(),
            "The interval at which to remove transactions that have expired due to transactional.id.expiration.ms passing. ([transactions] remove-expired-interval)"),
        entry("transaction.partition.verification.enable", Kind::Boolean, "true", x.partition_verification.to_string(),
            "Enable verification that checks that the partition has been added to the transaction before writing transactional records to the partition. ([transactions] partition-verification)"),
        entry("log.cleaner.enable", Kind::Boolean, "true", c.enabled.to_string(),
            "Enable the log cleaner process to run on the server. ([cleaner] enabled)"),
        entry("log.cleaner.threads", Kind::Int, "1", c.threads.to_string(),
            "The number of background threads to use for log cleaning. ([cleaner] threads)"),
        entry("leader.replication.throttled.rate", Kind::Long, UNLIMITED, UNLIMITED.to_string(),
            "A long representing the upper bound (bytes/sec) on replication traffic for leaders enumerated in the property leader.replication.throttled.replicas (for each topic). (dynamic: IncrementalAlterConfigs)"),
        entry("follower.replication.throttled.rate", Kind::Long, UNLIMITED, UNLIMITED.to_string(),
            "A long representing the upper bound (bytes/sec) on replication traffic for followers enumerated in the property follower.replication.throttled.replicas (for each topic). (dynamic: IncrementalAlterConfigs)"),
        entry("replica.alter.log.dirs.io.max.bytes.per.second", Kind::Long, UNLIMITED, UNLIMITED.to_string(),
            "A long representing the upper bound (bytes/sec) on disk IO used for moving replica between log directories on the same broker. chronik keeps one data directory per node: stored, nothing to throttle. (dynamic: IncrementalAlterConfigs)"),
        entry("log.cleaner.io.max.bytes.per.second", Kind::Double, "1.7976931348623157E308",
            c.io_max_bytes_per_second.map_or("1.7976931348623157E308".to_string(), |b| format!("{b:.1}")),
            "The log cleaner will be throttled so that the sum of its read and write i/o will be less than this value on average. ([cleaner] io-max-bytes-per-second)"),
        entry("log.cleaner.dedupe.buffer.size", Kind::Long, "134217728", c.dedupe_buffer_size.to_string(),
            "The total memory used for log deduplication across all cleaner threads. ([cleaner] dedupe-buffer-size)"),
        entry("log.cleaner.backoff.ms", Kind::Long, "15000", c.backoff.as_millis().to_string(),
            "The amount of time to sleep when there are no logs to clean. ([cleaner] backoff)"),
    ];
    out.extend(security_configs(config));
    let defaults = topic_defaults(config);
    for d in TOPIC_CONFIG_DEFS {
        let Some(name) = d.synonym else { continue };
        if out.iter().any(|e| e.name == name) {
            continue;
        }
        let value = defaults.get(d.name).cloned().unwrap_or_else(|| d.default.to_string());
        let source = if value == d.default { Source::Default } else { Source::StaticBroker };
        out.push(BrokerConfigEntry {
            name: name.to_string(),
            kind: d.kind,
            value: Some(value),
            kafka_default: Some(d.default.to_string()),
            source,
            doc: d.doc,
            sensitive: false,
        });
    }
    out
}

/// The security configs with Kafka's names (listeners, SASL, TLS). Secrets (the PLAIN users'
/// passwords, the TLS private keys) are listed as sensitive, with no value.
fn security_configs(config: &Config) -> Vec<BrokerConfigEntry> {
    let plain = |name: &str, kind: Kind, value: String, kafka_default: &str, doc: &'static str| {
        let source = if value == kafka_default { Source::Default } else { Source::StaticBroker };
        let kafka_default = Some(kafka_default.to_string());
        BrokerConfigEntry {
            name: name.to_string(),
            kind,
            value: Some(value),
            kafka_default,
            source,
            doc,
            sensitive: false,
        }
    };
    let secret = |name: String, doc: &'static str| BrokerConfigEntry {
        name,
        kind: Kind::Password,
        value: None,
        kafka_default: None,
        source: Source::StaticBroker,
        doc,
        sensitive: true,
    };
    let k = &config.kafka;
    let map = k.listener_security_protocol_map.iter().map(|(n, p)| format!("{n}:{p}")).collect::<Vec<_>>();
    let client_auth = match config.tls.client_auth {
        crate::config::ClientAuth::None => "none",
        crate::config::ClientAuth::Requested => "requested",
        crate::config::ClientAuth::Required => "required",
    };
    #[rustfmt::skip]
    let mut out = vec![
        plain("listeners", Kind::List, k.listeners.join(","), "PLAINTEXT://:9092",
            "Listener List - Comma-separated list of URIs we will listen on and the listener names. ([kafka] listeners)"),
        plain("advertised.listeners", Kind::List, k.advertised_listeners.join(","), "",
            "Listeners to publish to ZooKeeper/KRaft for clients to use. ([kafka] advertised-listeners)"),
        plain("listener.security.protocol.map", Kind::List, map.join(","),
            "SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT",
            "Map between listener names and security protocols. ([kafka] listener-security-protocol-map)"),
        plain("sasl.enabled.mechanisms", Kind::List, config.sasl.enabled_mechanisms.join(","), "GSSAPI",
            "The list of SASL mechanisms enabled in the Kafka server. ([sasl] enabled-mechanisms)"),
        plain("connections.max.reauth.ms", Kind::Long, k.connections_max_reauth_ms.to_string(), "0",
            "The maximum session lifetime before a client must re-authenticate (0: none). ([kafka] connections-max-reauth-ms)"),
        plain("queued.max.request.bytes", Kind::Long, k.queued_max_request_bytes.to_string(), "-1",
            "The number of queued bytes allowed before no more requests are read. ([kafka] queued-max-request-bytes; chronik's default is 268435456)"),
        plain("ssl.client.auth", Kind::Str, client_auth.to_string(), "none",
            "Whether the broker requests or requires client authentication. ([tls] client-auth)"),
    ];
    if let Some(p) = &config.tls.cert_file {
        out.push(plain(
            "ssl.keystore.certificate.chain.location",
            Kind::Str,
            p.display().to_string(),
            "",
            "The PEM certificate chain of the broker. ([tls] cert-file)",
        ));
    }
    if config.tls.key_file.is_some() {
        out.push(secret("ssl.keystore.key".to_string(), "The private key of the broker. ([tls] key-file)"));
    }
    if config.raft.tls_key_file.is_some() {
        out.push(secret("raft.tls.key".to_string(), "The private key for peer TLS. ([raft] tls-key-file)"));
    }
    if !config.sasl.plain_users.is_empty() {
        for l in k.resolved_listeners().unwrap_or_default().iter().filter(|l| l.protocol.sasl()) {
            let name = format!("listener.name.{}.plain.sasl.jaas.config", l.name.to_ascii_lowercase());
            out.push(secret(name, "The PLAIN users of the listener. ([sasl] plain-users)"));
        }
    }
    out
}

/// The topic-config defaults that `config` sets to something other than Kafka's default.
pub fn topic_defaults(config: &Config) -> BrokerTopicDefaults {
    let retention_ms = config.topics.retention.map_or(-1, |d| d.as_millis() as i64);
    let retention_bytes = config.topics.retention_bytes.map_or(-1, |b| b as i64);
    let c = &config.cleaner;
    let ms = |d: std::time::Duration| d.as_millis().min(i64::MAX as u128).to_string();
    let pairs: [(&'static str, String); 8] = [
        ("retention.ms", retention_ms.to_string()),
        ("retention.bytes", retention_bytes.to_string()),
        ("segment.bytes", config.topics.segment_bytes.to_string()),
        ("max.message.bytes", config.kafka.max_message_bytes.to_string()),
        // The [cleaner] keys that are broker defaults of topic configs (log.cleaner.*).
        ("min.cleanable.dirty.ratio", format!("{:?}", c.min_cleanable_ratio)),
        ("delete.retention.ms", ms(c.delete_retention)),
        ("min.compaction.lag.ms", ms(c.min_compaction_lag)),
        ("max.compaction.lag.ms", c.max_compaction_lag.map_or(i64::MAX.to_string(), ms)),
    ];
    pairs.into_iter().filter(|(k, v)| default_value(k) != Some(v.as_str())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_describe_as_default_and_toml_values_as_static() {
        let mut c = Config::default();
        let find = |c: &Config, n: &str| broker_configs(c).into_iter().find(|e| e.name == n).expect(n);
        assert_eq!(find(&c, "num.partitions").source, Source::Default);
        assert_eq!(find(&c, "log.cleanup.policy").value.as_deref(), Some("delete"));
        c.topics.default_partitions = 3;
        let e = find(&c, "num.partitions");
        assert_eq!((e.value.as_deref(), e.source), (Some("3"), Source::StaticBroker));
        assert!(topic_defaults(&Config::default()).is_empty(), "chronik's defaults are Kafka's");
        c.topics.retention = None;
        assert_eq!(topic_defaults(&c).get("retention.ms").map(String::as_str), Some("-1"));
        c.cleaner.min_cleanable_ratio = 0.1;
        let e = find(&c, "log.cleaner.min.cleanable.ratio");
        assert_eq!((e.value.as_deref(), e.source), (Some("0.1"), Source::StaticBroker));
        assert_eq!(topic_defaults(&c).get("min.cleanable.dirty.ratio").map(String::as_str), Some("0.1"));
        assert_eq!(find(&c, "offsets.retention.minutes").value.as_deref(), Some("10080"));
        assert_eq!(find(&c, "transaction.max.timeout.ms").value.as_deref(), Some("900000"));
        assert_eq!(find(&c, "transactional.id.expiration.ms").value.as_deref(), Some("604800000"));
        assert_eq!(find(&c, "log.cleaner.backoff.ms").source, Source::Default);
        let names: std::collections::HashSet<_> = broker_configs(&c).iter().map(|e| e.name.clone()).collect();
        assert_eq!(names.len(), broker_configs(&c).len(), "no name twice");
    }
}
