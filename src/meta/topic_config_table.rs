//! The table of every topic config of Kafka 4.4's `LogConfig`: name, type, default, validator,
//! broker synonym, whether chronik applies it, and the first sentence of Kafka's documentation.
//! Data only; [`super::topic_config`] validates against it and the DescribeConfigs handler
//! describes from it. Names, types, defaults and ranges were read from
//! `org.apache.kafka.storage.internals.log.LogConfig` of kafka-storage 4.4.0, including its one
//! internal config (`defineInternal`), `internal.segment.bytes`.

use super::topic_config::{Kind, Rule, Status, TopicConfigDef};

const fn def(
    name: &'static str,
    kind: Kind,
    default: &'static str,
    rule: Rule,
    synonym: Option<&'static str>,
    status: Status,
    doc: &'static str,
) -> TopicConfigDef {
    TopicConfigDef { name, kind, default, rule, synonym, status, doc }
}

use Kind::*;
use Rule::*;
use Status::*;

/// `i64::MAX` as Kafka prints it (the default of several `LONG` configs).
const LONG_MAX: &str = "9223372036854775807";

/// Every topic config, in `LogConfig`'s definition order.
#[rustfmt::skip]
pub const TOPIC_CONFIG_DEFS: &[TopicConfigDef] = &[
    def("segment.bytes", Int, "1073741824", AtLeast(1_048_576), Some("log.segment.bytes"), Applied,
        "This configuration controls the segment file size for the log."),
    def("segment.ms", Long, "604800000", AtLeast(1), Some("log.roll.ms"), Cleaner,
        "This configuration controls the period of time after which Kafka will force the log to roll even if the segment file isn't full to ensure that retention can delete or compact old data."),
    def("segment.jitter.ms", Long, "0", AtLeast(0), Some("log.roll.jitter.ms"), NotApplied,
        "The maximum random jitter subtracted from the scheduled segment roll time to avoid thundering herds of segment rolling"),
    def("segment.index.bytes", Int, "10485760", AtLeast(4), Some("log.index.size.max.bytes"), NotApplied,
        "This configuration controls the size of the index that maps offsets to file positions."),
    def("flush.messages", Long, LONG_MAX, AtLeast(1), Some("log.flush.interval.messages"), NotApplied,
        "This setting allows specifying an interval at which we will force an fsync of data written to the log."),
    def("flush.ms", Long, LONG_MAX, AtLeast(0), Some("log.flush.interval.ms"), NotApplied,
        "This setting allows specifying a time interval at which we will force an fsync of data written to the log."),
    def("retention.bytes", Long, "-1", Unbounded, Some("log.retention.bytes"), Applied,
        "This configuration controls the maximum size a partition (which consists of log segments) can grow to before we will discard old log segments to free up space if we are using the \"delete\" retention policy."),
    def("retention.ms", Long, "604800000", AtLeast(-1), Some("log.retention.ms"), Applied,
        "This configuration controls the maximum time we will retain a log before we will discard old log segments to free up space if we are using the \"delete\" retention policy."),
    def("max.message.bytes", Int, "1048588", AtLeast(0), Some("message.max.bytes"), Applied,
        "The largest record batch size allowed by Kafka (after compression if compression is enabled)."),
    def("max.decompressed.message.bytes", Int, "2147483639", Between(1, 2_147_483_639), Some("max.decompressed.message.bytes"), NotApplied,
        "The maximum decompressed size, in bytes, of a single record the broker will accept; larger records are rejected with an InvalidRecordException."),
    def("index.interval.bytes", Int, "4096", AtLeast(0), Some("log.index.interval.bytes"), NotApplied,
        "This setting controls how frequently Kafka adds entries to its offset index and, conditionally, to its time index."),
    def("delete.retention.ms", Long, "86400000", AtLeast(0), Some("log.cleaner.delete.retention.ms"), Cleaner,
        "The amount of time to retain delete tombstone markers for log compacted topics."),
    def("min.compaction.lag.ms", Long, "0", AtLeast(0), Some("log.cleaner.min.compaction.lag.ms"), Cleaner,
        "The minimum time a message will remain uncompacted in the log."),
    def("max.compaction.lag.ms", Long, LONG_MAX, AtLeast(1), Some("log.cleaner.max.compaction.lag.ms"), Cleaner,
        "The maximum time a message will remain ineligible for compaction in the log."),
    def("file.delete.delay.ms", Long, "60000", AtLeast(0), Some("log.segment.delete.delay.ms"), NotApplied,
        "The time to wait before deleting a file from the filesystem"),
    def("min.cleanable.dirty.ratio", Double, "0.5", Ratio, Some("log.cleaner.min.cleanable.ratio"), Cleaner,
        "This configuration controls how frequently the log compactor will attempt to clean the log (assuming log compaction is enabled)."),
    def("cleanup.policy", List, "delete", ListOf(&["compact", "delete"]), Some("log.cleanup.policy"), Applied,
        "This config designates the retention policy to use on log segments."),
    def("unclean.leader.election.enable", Boolean, "false", Unbounded, Some("unclean.leader.election.enable"), NeverUnclean,
        "Indicates whether to enable replicas not in the ISR set to be elected as leader as a last resort, even though doing so may result in data loss."),
    def("min.insync.replicas", Int, "1", AtLeast(1), Some("min.insync.replicas"), Applied,
        "Specifies the minimum number of in-sync replicas (including the leader) required for a write to succeed when a producer sets acks to \"all\" (or \"-1\")."),
    def("compression.type", Str, "producer", OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]), Some("compression.type"), Applied,
        "Specify the final compression type for a given topic."),
    def("compression.gzip.level", Int, "-1", GzipLevel, Some("compression.gzip.level"), Applied,
        "The compression level to use if compression.type is set to gzip."),
    def("compression.lz4.level", Int, "9", Between(1, 17), Some("compression.lz4.level"), NotApplied,
        "The compression level to use if compression.type is set to lz4."),
    def("compression.zstd.level", Int, "3", Between(-131_072, 22), Some("compression.zstd.level"), NotApplied,
        "The compression level to use if compression.type is set to zstd."),
    def("preallocate", Boolean, "false", Unbounded, Some("log.preallocate"), NotApplied,
        "True if we should preallocate the file on disk when creating a new log segment."),
    def("message.timestamp.type", Str, "CreateTime", OneOf(&["CreateTime", "LogAppendTime"]), Some("log.message.timestamp.type"), Applied,
        "Define whether the timestamp in the message is message create time or log append time."),
    def("message.timestamp.before.max.ms", Long, LONG_MAX, AtLeast(0), Some("log.message.timestamp.before.max.ms"), Applied,
        "This configuration sets the allowable timestamp difference between the broker's timestamp and the message timestamp."),
    def("message.timestamp.after.max.ms", Long, "3600000", AtLeast(0), Some("log.message.timestamp.after.max.ms"), Applied,
        "This configuration sets the allowable timestamp difference between the message timestamp and the broker's timestamp."),
    def("leader.replication.throttled.replicas", List, "", ThrottledReplicas, None, Applied,
        "A list of replicas for which log replication should be throttled on the leader side."),
    def("follower.replication.throttled.replicas", List, "", ThrottledReplicas, None, Applied,
        "A list of replicas for which log replication should be throttled on the follower side."),
    def("remote.storage.enable", Boolean, "false", NoTieredStorage, None, NotApplied,
        "To enable tiered storage for a topic, set this configuration to true."),
    def("local.retention.ms", Long, "-2", AtLeast(-2), Some("log.local.retention.ms"), NotApplied,
        "The number of milliseconds to keep the local log segment before it gets deleted."),
    def("local.retention.bytes", Long, "-2", AtLeast(-2), Some("log.local.retention.bytes"), NotApplied,
        "The maximum size of local log segments that can grow for a partition before it deletes the old segments."),
    def("remote.log.copy.disable", Boolean, "false", Unbounded, None, NotApplied,
        "Determines whether tiered data for a topic should become read only, and no more data uploading on a topic."),
    def("remote.copy.lag.ms", Long, "0", AtLeast(-1), Some("log.remote.copy.lag.ms"), NotApplied,
        "Controls one of the two upload eligibility checks (time and size) for copying segments to remote storage."),
    def("remote.copy.lag.bytes", Long, "-1", AtLeast(-1), Some("log.remote.copy.lag.bytes"), NotApplied,
        "Controls one of the two upload eligibility checks (time and size) for copying segments to remote storage."),
    def("remote.log.delete.on.disable", Boolean, "false", Unbounded, None, NotApplied,
        "Determines whether tiered data for a topic should be deleted after tiered storage is disabled on a topic."),
    def("errors.deadletterqueue.group.enable", Boolean, "false", Unbounded, None, NotApplied,
        "Enable this topic to be used as a dead-letter queue for share groups."),
];

/// Kafka's internal topic configs (`ConfigDef.defineInternal`, left out of
/// `LogConfig.nonInternalConfigNames`): accepted by CreateTopics, AlterConfigs and
/// IncrementalAlterConfigs like the others, but with no default, so CreateTopics and
/// DescribeConfigs list one only on a topic that sets it (Kafka describes the originals that
/// are set plus the non-internal values). `default` is unused.
#[rustfmt::skip]
pub const INTERNAL_TOPIC_CONFIG_DEFS: &[TopicConfigDef] = &[
    // No validator in Kafka: any INT. It replaces segment.bytes (`LogConfig.segmentSize()`),
    // so tests can roll segments below segment.bytes' floor of 1048576.
    def("internal.segment.bytes", Int, "", Unbounded, None, Applied,
        "The maximum size of a single log file. This should be used for testing only."),
];
