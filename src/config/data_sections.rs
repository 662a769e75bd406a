//! The data and operator sections of the configuration with their serde
//! defaults: `[topics]` (defaults for new topics, retention), `[storage]`
//! (fsync policy, index and retention timers), `[cleaner]` (log compaction), `[meta]` (snapshots
//! of the `__meta` group), `[offsets]` (committed-offset expiry), `[admin]` (the operator HTTP
//! listener) and `[faults]` (test-only fault injection).

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::durations::{duration_str, opt_bytes, opt_duration_str};
use super::sections::parse_socket_addr;
use super::ConfigError;

/// `[topics]`: defaults for new topics, and retention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct TopicsConfig {
    /// Create topics on first produce/metadata request. Default: `true`.
    pub auto_create: bool,
    /// Partitions of an auto-created topic. Default: `1`.
    pub default_partitions: u32,
    /// Replicas of each partition of an auto-created topic. Default: `1`.
    pub default_replication_factor: u16,
    /// Delete segments older than this; `None` = keep forever. Default: `"7days"`.
    #[serde(with = "opt_duration_str")]
    pub retention: Option<Duration>,
    /// Delete old segments while a partition is larger; `None` = no limit. Default: `None` (written `-1`).
    #[serde(with = "opt_bytes")]
    pub retention_bytes: Option<u64>,
    /// Roll a new log segment at this size (at least 1 MiB, Kafka's floor). Default: `1073741824`.
    pub segment_bytes: u64,
}

impl Default for TopicsConfig {
    fn default() -> Self {
        TopicsConfig {
            auto_create: true,
            default_partitions: 1,
            default_replication_factor: 1,
            retention: Some(Duration::from_secs(7 * 24 * 3600)),
            retention_bytes: None,
            segment_bytes: 1_073_741_824,
        }
    }
}

/// When an acknowledged write is durable (`storage.fsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// An ack waits for the fsync of its batch; fsyncs are grouped across
    /// partitions (group commit).
    #[default]
    Always,
    /// Ack after the write; fsync every `storage.flush-interval`.
    Interval,
}

impl FsyncPolicy {
    /// The lowercase name used in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            FsyncPolicy::Always => "always",
            FsyncPolicy::Interval => "interval",
        }
    }
}

impl fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FsyncPolicy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl FromStr for FsyncPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "always" => Ok(FsyncPolicy::Always),
            "interval" => Ok(FsyncPolicy::Interval),
            other => Err(format!("unknown fsync policy {other:?}; expected \"always\" or \"interval\"")),
        }
    }
}

/// `[storage]`: local log storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct StorageConfig {
    /// Durability policy. Default: `"always"`.
    pub fsync: FsyncPolicy,
    /// Fsync period under `fsync = "interval"`. Default: `"1s"`.
    #[serde(with = "duration_str")]
    pub flush_interval: Duration,
    /// Bytes of log between two offset-index entries. Default: `4096`.
    pub index_interval_bytes: u64,
    /// How often retention is enforced. Default: `"1m"`.
    #[serde(with = "duration_str")]
    pub retention_check_interval: Duration,
    /// The fd budget: segment and Raft state files open at once, node-wide (RocksDB's
    /// `max_open_files`); idle ones are closed, least recently used first, and reopened when
    /// read or written (`log/file_cache.rs`). Default: `0`, half the soft `RLIMIT_NOFILE`
    /// (raised to the hard limit at start).
    pub max_open_files: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            fsync: FsyncPolicy::Always,
            flush_interval: Duration::from_secs(1),
            index_interval_bytes: 4096,
            retention_check_interval: Duration::from_secs(60),
            max_open_files: 0,
        }
    }
}

/// `[cleaner]`: the log cleaner (compaction of `cleanup.policy=compact` topics), and the broker
/// defaults of the topic configs of the same meaning (Kafka's `log.cleaner.*` and `log.cleaner`
/// topic defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct CleanerConfig {
    /// Run the log cleaner (`log.cleaner.enable`). Default: `true`.
    pub enabled: bool,
    /// Cleaner threads of the node (`log.cleaner.threads`). Default: `1`.
    pub threads: u32,
    /// I/O limit of all cleaner threads together, bytes read + written per second
    /// (`log.cleaner.io.max.bytes.per.second`); `None` = unlimited. Default: `None` (written `-1`).
    #[serde(with = "opt_bytes")]
    pub io_max_bytes_per_second: Option<u64>,
    /// Memory for the key maps of all cleaner threads (`log.cleaner.dedupe.buffer.size`): 24 bytes
    /// per key. Default: `134217728`.
    pub dedupe_buffer_size: u64,
    /// The cleaner threads' OS scheduling niceness (Linux `setpriority`, 0..=19; no Kafka
    /// equivalent): above 0 the cleaner yields the CPU to the produce, fetch and Raft threads
    /// when they want it and takes every idle cycle otherwise. Default: `10`.
    pub nice: i32,
    /// How long a partition waits between two checks for cleanable data
    /// (`log.cleaner.backoff.ms`). Default: `"15s"`.
    #[serde(with = "duration_str")]
    pub backoff: Duration,
    /// Default `min.cleanable.dirty.ratio` (`log.cleaner.min.cleanable.ratio`). Default: `0.5`.
    pub min_cleanable_ratio: f64,
    /// Default `delete.retention.ms` (`log.cleaner.delete.retention.ms`). Default: `"1day"`.
    #[serde(with = "duration_str")]
    pub delete_retention: Duration,
    /// Default `min.compaction.lag.ms` (`log.cleaner.min.compaction.lag.ms`). Default: `"0s"`.
    #[serde(with = "duration_str")]
    pub min_compaction_lag: Duration,
    /// Default `max.compaction.lag.ms` (`log.cleaner.max.compaction.lag.ms`); `None` = unlimited.
    /// Default: `None`.
    #[serde(with = "opt_duration_str")]
    pub max_compaction_lag: Option<Duration>,
}

// `min_cleanable_ratio` is never NaN (`validate`), so equality is reflexive.
impl Eq for CleanerConfig {}

impl Default for CleanerConfig {
    fn default() -> Self {
        CleanerConfig {
            enabled: true,
            threads: 1,
            io_max_bytes_per_second: None,
            dedupe_buffer_size: 128 << 20,
            nice: 10,
            backoff: Duration::from_secs(15),
            min_cleanable_ratio: 0.5,
            delete_retention: Duration::from_secs(86_400),
            min_compaction_lag: Duration::ZERO,
            max_compaction_lag: None,
        }
    }
}

/// `[meta]`: snapshots and log compaction of the `__meta` Raft group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct MetaConfig {
    /// Snapshot the metadata state after this many applied entries. Default: `10000`.
    pub snapshot_entries: u64,
    /// ... or after this many bytes of applied entries, whichever comes first.
    /// Default: `16777216` (16 MiB).
    pub snapshot_bytes: u64,
    /// Roll a new `__meta` log segment at this size; compaction deletes whole segments, so the
    /// log keeps at most about one segment plus one snapshot interval. Default: `8388608`.
    pub segment_bytes: u64,
    /// The most voters `__meta` keeps: every other member is a learner, promoted when a voter
    /// leaves (KRaft's practice of 3 controllers). Seeds beyond it stay voters. Default: `3`.
    pub max_voters: u32,
}

impl Default for MetaConfig {
    fn default() -> Self {
        MetaConfig {
            snapshot_entries: 10_000,
            snapshot_bytes: 16 * 1024 * 1024,
            segment_bytes: 8 * 1024 * 1024,
            max_voters: 3,
        }
    }
}

/// `[offsets]`: committed offsets (Kafka's `offsets.retention.*` broker settings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct OffsetsConfig {
    /// Kafka's `offsets.retention.minutes`: how long the offsets of an empty group (or a
    /// standalone commit) are kept. Default: `"7days"`.
    #[serde(with = "duration_str")]
    pub retention: Duration,
    /// Kafka's `offsets.retention.check.interval.ms`: how often expired offsets are looked for.
    /// Default: `"10min"`.
    #[serde(with = "duration_str")]
    pub retention_check_interval: Duration,
}

impl Default for OffsetsConfig {
    fn default() -> Self {
        OffsetsConfig {
            retention: Duration::from_secs(7 * 24 * 3600),
            retention_check_interval: Duration::from_secs(600),
        }
    }
}

impl CleanerConfig {
    /// Ranges Kafka enforces on the same settings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(0.0..=1.0).contains(&self.min_cleanable_ratio) {
            return Err(ConfigError::invalid("cleaner.min-cleanable-ratio", "must be between 0 and 1"));
        }
        if self.threads == 0 {
            return Err(ConfigError::invalid("cleaner.threads", "must be at least 1"));
        }
        if self.dedupe_buffer_size < 24 * 1024 {
            return Err(ConfigError::invalid("cleaner.dedupe-buffer-size", "must be at least 24576 (1024 keys)"));
        }
        if !(0..=19).contains(&self.nice) {
            return Err(ConfigError::invalid("cleaner.nice", "must be between 0 and 19"));
        }
        if self.backoff.is_zero() {
            return Err(ConfigError::invalid("cleaner.backoff", "must be greater than 0"));
        }
        Ok(())
    }
}

/// `[admin]`: the operator HTTP listener (`/metrics`, and the admin API as it grows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct AdminConfig {
    /// Serve the admin listener. Default: `true`.
    pub enabled: bool,
    /// Address the admin listener binds, `IP:PORT` (port 0 picks a free one).
    /// Default: `"127.0.0.1:9300"`.
    pub listen: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig { enabled: true, listen: "127.0.0.1:9300".to_string() }
    }
}

impl AdminConfig {
    /// `listen` as a socket address.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        parse_socket_addr("admin.listen", &self.listen)
    }
}

/// `[faults]`: fault injection for tests; everything off by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct FaultsConfig {
    /// Delay before applying each committed raft entry. Default: `"0s"`.
    #[serde(with = "duration_str")]
    pub apply_delay: Duration,
    /// Delay before the node's disk writer carries out each write job (a slow disk, for the
    /// slow-follower tests). Default: `"0s"`.
    #[serde(with = "duration_str")]
    pub write_delay: Duration,
    /// Delay of each round of a partition's replay at open that applies committed entries (a
    /// slow disk under a large log; only rounds with record batches). Default: `"0s"`.
    #[serde(with = "duration_str")]
    pub replay_delay: Duration,
    /// Accept `chronik-server faults` requests that cut or delay this node's peer traffic at
    /// run time (tests only). Default: `false`.
    pub runtime: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsync_policy_parsing() {
        assert_eq!("Interval".parse::<FsyncPolicy>().unwrap(), FsyncPolicy::Interval);
        assert_eq!("always".parse::<FsyncPolicy>().unwrap(), FsyncPolicy::Always);
        assert!("never".parse::<FsyncPolicy>().is_err());
    }
}
