//! Configuration of `chronik-server`: the typed [`Config`] tree with its
//! defaults, loading it in layers (built-in defaults, then an optional TOML
//! file, then `CHRONIK_*` environment variables; command-line flags are layered
//! on top by `crate::cli`), cross-field validation with messages that name the
//! offending key, derivation of raft-rs tick counts from wall-clock durations,
//! and rendering the effective configuration for the start-up log. Nothing
//! else in chronik parses configuration text.
//!
//! Durations are humantime strings (`"150ms"`, `"3s"`, `"7days"`), sizes are
//! plain integers of bytes, and every key is kebab-case. Unknown keys are
//! errors, whether they come from the file or from the environment.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Prefix of environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "CHRONIK";
/// Separator between section and key in environment variable names.
pub const ENV_SEPARATOR: &str = "__";
/// Smallest accepted `topics.segment-bytes` (small so that tests can roll segments).
pub const MIN_SEGMENT_BYTES: u64 = 1024;
/// `raft.election-timeout` must be at least this many `raft.heartbeat-interval`s.
pub const MIN_ELECTION_HEARTBEAT_RATIO: u32 = 5;

/// Everything that can go wrong while loading or validating configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file given on the command line does not exist.
    #[error("configuration file `{}` does not exist", path.display())]
    FileNotFound { path: PathBuf },
    /// A source could not be read or parsed, a key is unknown, or a value has
    /// the wrong type or syntax. `message` names the key.
    #[error("cannot load configuration from {sources}: {}{message}", key.as_ref().map(|k| format!("`{k}`: ")).unwrap_or_default())]
    Load {
        /// The sources being loaded (file name, environment variable names).
        sources: String,
        /// The key at fault, when known (`raft.tick-interval`).
        key: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A value (or a combination of values) is not acceptable.
    #[error("invalid configuration: `{key}` {message}")]
    Invalid { key: String, message: String },
}

impl ConfigError {
    /// Shorthand for [`ConfigError::Invalid`].
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid { key: key.into(), message: message.into() }
    }
}

// ---------------------------------------------------------------------------
// Serde helpers
// ---------------------------------------------------------------------------

/// Serde helper for `Duration` fields written as humantime strings
/// (`"50ms"`, `"3s"`, `"7days"`). Use with `#[serde(with = "duration_str")]`.
pub mod duration_str {
    use std::fmt;
    use std::time::Duration;

    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    /// Writes `d` as a humantime string, e.g. `"150ms"`.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    /// Reads a humantime string such as `"150ms"`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(DurationVisitor)
    }

    /// Parses a humantime string; the error explains what was wrong.
    pub fn parse(v: &str) -> Result<Duration, String> {
        humantime::parse_duration(v.trim()).map_err(|e| {
            format!("invalid duration {v:?} ({e}); write a number with a unit, e.g. \"150ms\", \"3s\", \"7days\"")
        })
    }

    struct DurationVisitor;

    impl Visitor<'_> for DurationVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration string with a unit, such as \"150ms\", \"3s\" or \"7days\"")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            parse(v).map_err(E::custom)
        }
    }
}

/// Serde helper for an optional duration where `"-1"`, `-1`, `"none"` and
/// `"unlimited"` mean "no limit" (`None`). Serializes `None` as `"unlimited"`.
pub mod opt_duration_str {
    use std::fmt;
    use std::time::Duration;

    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    /// Writes `Some(d)` as a humantime string and `None` as `"unlimited"`.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::duration_str::serialize(d, s),
            None => s.serialize_str("unlimited"),
        }
    }

    /// Reads a humantime string or one of the "unlimited" spellings.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        d.deserialize_any(OptDurationVisitor)
    }

    struct OptDurationVisitor;

    impl Visitor<'_> for OptDurationVisitor {
        type Value = Option<Duration>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration string such as \"7days\", or \"unlimited\" / \"none\" / -1")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            if super::is_unlimited(v) {
                return Ok(None);
            }
            super::duration_str::parse(v).map(Some).map_err(E::custom)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            if v == -1 {
                Ok(None)
            } else {
                Err(E::custom(format!(
                    "invalid duration {v}: write a string with a unit such as \"7days\", or -1 for unlimited"
                )))
            }
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
}

/// Serde helper for an optional byte count where `-1`, `"-1"`, `"none"` and
/// `"unlimited"` mean "no limit" (`None`). Serializes `None` as `-1`.
pub mod opt_bytes {
    use std::fmt;

    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    /// Writes `Some(n)` as `n` and `None` as `-1`.
    pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(n) => s.serialize_u64(*n),
            None => s.serialize_i64(-1),
        }
    }

    /// Reads a non-negative integer or one of the "unlimited" spellings.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        d.deserialize_any(OptBytesVisitor)
    }

    struct OptBytesVisitor;

    impl Visitor<'_> for OptBytesVisitor {
        type Value = Option<u64>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number of bytes, or -1 / \"unlimited\" / \"none\"")
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            match v {
                -1 => Ok(None),
                v if v >= 0 => Ok(Some(v as u64)),
                v => Err(E::custom(format!("invalid byte count {v}: use a non-negative number, or -1 for unlimited"))),
            }
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            if super::is_unlimited(v) {
                return Ok(None);
            }
            v.trim().parse::<u64>().map(Some).map_err(|_| {
                E::custom(format!("invalid byte count {v:?}: use a non-negative number of bytes, or -1 for unlimited"))
            })
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
}

/// Serde helper for an optional string where an empty string or `"none"`
/// means `None` (useful from the environment, where a key cannot be removed).
mod opt_string {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        let v = Option::<String>::deserialize(d)?;
        Ok(v.filter(|s| {
            let s = s.trim();
            !s.is_empty() && !s.eq_ignore_ascii_case("none")
        }))
    }
}

/// Serde helper for `raft.peers`: a list of `{ id, addr }` tables, or (handy
/// from the environment) a string `"2@127.0.0.1:9193,3@127.0.0.1:9194"`.
mod peers_de {
    use std::fmt;

    use serde::de::{self, SeqAccess, Visitor};
    use serde::Deserializer;

    use super::PeerConfig;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PeerConfig>, D::Error> {
        d.deserialize_any(PeersVisitor)
    }

    struct PeersVisitor;

    impl<'de> Visitor<'de> for PeersVisitor {
        type Value = Vec<PeerConfig>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of { id = N, addr = \"HOST:PORT\" } tables, or a string \"ID@HOST:PORT,...\"")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            super::parse_peer_list(v).map_err(E::custom)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut peers = Vec::new();
            while let Some(p) = seq.next_element::<PeerConfig>()? {
                peers.push(p);
            }
            Ok(peers)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
    }
}

fn is_unlimited(v: &str) -> bool {
    let v = v.trim();
    v == "-1" || v.eq_ignore_ascii_case("none") || v.eq_ignore_ascii_case("unlimited")
}

// ---------------------------------------------------------------------------
// The configuration tree
// ---------------------------------------------------------------------------

/// The complete configuration of one chronik node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    /// This node's id: raft id of its replicas and Kafka broker id. Default: `1`.
    pub node_id: u64,
    /// Directory holding all logs and raft state. Default: `"./data"`.
    pub data_dir: PathBuf,
    /// Log verbosity. Default: `"info"`.
    pub log_level: LogLevel,
    /// The Kafka protocol listener.
    pub kafka: KafkaConfig,
    /// Raft replication (peer traffic, timing, membership).
    pub raft: RaftConfig,
    /// Topic defaults and retention.
    pub topics: TopicsConfig,
    /// Local storage behaviour.
    pub storage: StorageConfig,
    /// Metrics endpoint.
    pub metrics: MetricsConfig,
    /// Test-only fault injection.
    pub faults: FaultsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            node_id: 1,
            data_dir: PathBuf::from("./data"),
            log_level: LogLevel::default(),
            kafka: KafkaConfig::default(),
            raft: RaftConfig::default(),
            topics: TopicsConfig::default(),
            storage: StorageConfig::default(),
            metrics: MetricsConfig::default(),
            faults: FaultsConfig::default(),
        }
    }
}

/// Log verbosity (`log-level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    #[default]
    Info,
    Warn,
    Error,
}

impl<'de> Deserialize<'de> for LogLevel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl LogLevel {
    /// All levels, most verbose first.
    pub const ALL: [LogLevel; 5] = [LogLevel::Trace, LogLevel::Debug, LogLevel::Info, LogLevel::Warn, LogLevel::Error];

    /// The lowercase name used in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LogLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim().to_ascii_lowercase();
        if s == "warning" {
            return Ok(LogLevel::Warn);
        }
        LogLevel::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| format!("unknown log level {s:?}; expected one of trace, debug, info, warn, error"))
    }
}

/// `[kafka]`: the Kafka protocol listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct KafkaConfig {
    /// Address the Kafka listener binds. Default: `"127.0.0.1:9092"`.
    pub listen: String,
    /// Host given to clients in metadata responses; `None` derives it from
    /// `listen` (127.0.0.1 when listen's host is 0.0.0.0, ::1 for ::).
    #[serde(deserialize_with = "opt_string::deserialize", skip_serializing_if = "Option::is_none")]
    pub advertised_host: Option<String>,
    /// Port given to clients in metadata responses; `None` uses listen's port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advertised_port: Option<u16>,
    /// Largest accepted request frame, in bytes. Default: `104857600`.
    pub max_request_size: u64,
    /// Largest accepted record batch, in bytes (Kafka's `message.max.bytes`);
    /// the only place this limit is configured. Default: `1048588`.
    pub max_message_bytes: u64,
    /// Maximum simultaneous client connections. Default: `10000`.
    pub max_connections: usize,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            listen: "127.0.0.1:9092".to_string(),
            advertised_host: None,
            advertised_port: None,
            max_request_size: 104_857_600,
            max_message_bytes: 1_048_588,
            max_connections: 10_000,
        }
    }
}

impl KafkaConfig {
    /// `listen` as a socket address.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        parse_socket_addr("kafka.listen", &self.listen)
    }

    /// The advertised host: `advertised-host` if set, else listen's host, with
    /// an unspecified address (0.0.0.0 / ::) replaced by loopback.
    pub fn effective_advertised_host(&self) -> Result<String, ConfigError> {
        if let Some(h) = &self.advertised_host {
            return Ok(h.clone());
        }
        let addr = self.listen_addr()?;
        Ok(match addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => Ipv4Addr::LOCALHOST.to_string(),
            IpAddr::V6(ip) if ip.is_unspecified() => Ipv6Addr::LOCALHOST.to_string(),
            ip => ip.to_string(),
        })
    }

    /// The advertised port: `advertised-port` if set, else listen's port.
    pub fn effective_advertised_port(&self) -> Result<u16, ConfigError> {
        match self.advertised_port {
            Some(p) => Ok(p),
            None => Ok(self.listen_addr()?.port()),
        }
    }
}

/// `[raft]`: replication between nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct RaftConfig {
    /// Address the raft peer listener binds. Default: `"127.0.0.1:9192"`.
    pub listen: String,
    /// Period of the raft tick loop. Default: `"50ms"`.
    #[serde(with = "duration_str")]
    pub tick_interval: Duration,
    /// Leader heartbeat period. Default: `"150ms"`.
    #[serde(with = "duration_str")]
    pub heartbeat_interval: Duration,
    /// Base election timeout; raft-rs randomizes it in [t, 2t). Default: `"3s"`.
    #[serde(with = "duration_str")]
    pub election_timeout: Duration,
    /// Pre-vote before campaigning. Default: `true`.
    pub pre_vote: bool,
    /// Leaders step down without a live quorum. Default: `true`.
    pub check_quorum: bool,
    /// Maximum in-flight append messages per follower. Default: `256`.
    pub max_inflight_msgs: usize,
    /// Maximum bytes of entries per append message. Default: `1048576`.
    pub max_size_per_msg: u64,
    /// The other nodes of the cluster (never this node). Default: none.
    #[serde(deserialize_with = "peers_de::deserialize")]
    pub peers: Vec<PeerConfig>,
}

impl Default for RaftConfig {
    fn default() -> Self {
        RaftConfig {
            listen: "127.0.0.1:9192".to_string(),
            tick_interval: Duration::from_millis(50),
            heartbeat_interval: Duration::from_millis(150),
            election_timeout: Duration::from_secs(3),
            pre_vote: true,
            check_quorum: true,
            max_inflight_msgs: 256,
            max_size_per_msg: 1_048_576,
            peers: Vec::new(),
        }
    }
}

impl RaftConfig {
    /// `listen` as a socket address.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        parse_socket_addr("raft.listen", &self.listen)
    }

    /// Tick counts for raft-rs derived from the three durations.
    pub fn ticks(&self) -> Result<RaftTicks, ConfigError> {
        derive_ticks(self.tick_interval, self.heartbeat_interval, self.election_timeout)
    }
}

/// One other member of the cluster: `{ id = 2, addr = "127.0.0.1:9193" }`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PeerConfig {
    /// The peer's node id.
    pub id: u64,
    /// The peer's raft address, `HOST:PORT` (an IP or a resolvable name).
    pub addr: String,
}

impl PeerConfig {
    /// Parses `"ID@HOST:PORT"`.
    pub fn parse(spec: &str) -> Result<PeerConfig, String> {
        let spec = spec.trim();
        let (id, addr) = spec
            .split_once('@')
            .ok_or_else(|| format!("peer {spec:?} must look like ID@HOST:PORT, e.g. 2@127.0.0.1:9193"))?;
        let id = id
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("peer {spec:?} has an invalid id {id:?}; expected a positive integer"))?;
        let addr = addr.trim();
        check_host_port(addr).map_err(|e| format!("peer {spec:?}: {e}"))?;
        Ok(PeerConfig { id, addr: addr.to_string() })
    }
}

impl fmt::Display for PeerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.id, self.addr)
    }
}

/// Parses a comma-separated list `"1@host:port,2@host:port"` (empty items are
/// ignored, so `""` is an empty list).
pub fn parse_peer_list(s: &str) -> Result<Vec<PeerConfig>, String> {
    s.split(',').map(str::trim).filter(|p| !p.is_empty()).map(PeerConfig::parse).collect()
}

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
    /// Roll a new log segment at this size. Default: `1073741824`.
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
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            fsync: FsyncPolicy::Always,
            flush_interval: Duration::from_secs(1),
            index_interval_bytes: 4096,
            retention_check_interval: Duration::from_secs(60),
        }
    }
}

/// `[metrics]`: the Prometheus endpoint (off unless `listen` is set).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address of the metrics HTTP endpoint; `None` disables it. Default: `None`.
    #[serde(deserialize_with = "opt_string::deserialize", skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
}

/// `[faults]`: fault injection for tests; everything off by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct FaultsConfig {
    /// Delay before applying each committed raft entry. Default: `"0s"`.
    #[serde(with = "duration_str")]
    pub apply_delay: Duration,
    /// Accept `chronik-server faults` requests that cut or delay this node's peer traffic at
    /// run time (tests only). Default: `false`.
    pub runtime: bool,
}

// ---------------------------------------------------------------------------
// Tick derivation
// ---------------------------------------------------------------------------

/// Tick counts handed to raft-rs, derived from durations by [`derive_ticks`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaftTicks {
    /// Ticks between leader heartbeats (`raft::Config::heartbeat_tick`).
    pub heartbeat_tick: usize,
    /// Base election ticks (`raft::Config::election_tick`).
    pub election_tick: usize,
    /// The period of one tick.
    pub tick: Duration,
}

impl RaftTicks {
    /// `raft::Config::min_election_tick` (= `election_tick`).
    pub fn min_election_tick(&self) -> usize {
        self.election_tick
    }

    /// `raft::Config::max_election_tick` (exclusive; = 2 × `election_tick`).
    pub fn max_election_tick(&self) -> usize {
        self.election_tick.saturating_mul(2)
    }

    /// The randomized election timeout range in wall-clock time, `[lo, hi)`.
    pub fn election_timeout_range(&self) -> (Duration, Duration) {
        (mul_duration(self.tick, self.min_election_tick()), mul_duration(self.tick, self.max_election_tick()))
    }

    /// The heartbeat period in wall-clock time after rounding.
    pub fn heartbeat_period(&self) -> Duration {
        mul_duration(self.tick, self.heartbeat_tick)
    }
}

fn mul_duration(d: Duration, n: usize) -> Duration {
    let n = u32::try_from(n).unwrap_or(u32::MAX);
    d.checked_mul(n).unwrap_or(Duration::MAX)
}

/// `round(a / b)` on nanoseconds; `b` must be non-zero.
fn round_ratio(a: Duration, b: Duration) -> usize {
    let (a, b) = (a.as_nanos(), b.as_nanos());
    let q = (a + b / 2) / b;
    usize::try_from(q).unwrap_or(usize::MAX)
}

/// Derives raft-rs tick counts: `heartbeat_tick = round(heartbeat / tick)`,
/// `election_tick = round(election / tick)`. raft-rs then randomizes the
/// election timeout in `[election_tick, 2 * election_tick)` ticks, so the
/// wall-clock timeout stays what was configured whatever the tick period.
pub fn derive_ticks(tick: Duration, heartbeat: Duration, election: Duration) -> Result<RaftTicks, ConfigError> {
    if tick.is_zero() {
        return Err(ConfigError::invalid("raft.tick-interval", "must be greater than zero"));
    }
    let heartbeat_tick = round_ratio(heartbeat, tick);
    if heartbeat_tick == 0 {
        return Err(ConfigError::invalid(
            "raft.heartbeat-interval",
            format!(
                "({}) rounds to zero ticks of raft.tick-interval ({}); it must be at least one tick",
                fmt_duration(heartbeat),
                fmt_duration(tick)
            ),
        ));
    }
    let election_tick = round_ratio(election, tick);
    if election_tick <= heartbeat_tick {
        return Err(ConfigError::invalid(
            "raft.election-timeout",
            format!(
                "({}) gives {election_tick} ticks, which must be more than the {heartbeat_tick} heartbeat ticks",
                fmt_duration(election)
            ),
        ));
    }
    Ok(RaftTicks { heartbeat_tick, election_tick, tick })
}

fn fmt_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

// ---------------------------------------------------------------------------
// Address helpers
// ---------------------------------------------------------------------------

fn parse_socket_addr(key: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.trim().parse::<SocketAddr>().map_err(|_| {
        ConfigError::invalid(
            key,
            format!("{value:?} is not a socket address; expected IP:PORT such as \"127.0.0.1:9092\" or \"[::1]:9092\""),
        )
    })
}

/// Checks `HOST:PORT` where HOST is an IP (IPv6 in brackets) or a name, and
/// PORT is 1..=65535.
pub fn check_host_port(addr: &str) -> Result<(), String> {
    if let Ok(sa) = addr.parse::<SocketAddr>() {
        if sa.port() == 0 {
            return Err(format!("address {addr:?} has port 0; give the real port"));
        }
        return Ok(());
    }
    let (host, port) = addr.rsplit_once(':').ok_or_else(|| format!("address {addr:?} must look like HOST:PORT"))?;
    match port.parse::<u16>() {
        Ok(p) if p != 0 => {}
        _ => return Err(format!("address {addr:?} has an invalid port {port:?}")),
    }
    check_host(host).map_err(|e| format!("address {addr:?}: {e}"))
}

/// Checks a bare host name or IP address (no port).
pub fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("the host is empty".to_string());
    }
    if host.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let valid = host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
    if valid {
        Ok(())
    } else {
        Err(format!("{host:?} is neither an IP address nor a host name (IPv6 addresses need [brackets] before a port)"))
    }
}

// ---------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------

impl Config {
    /// Loads the configuration: defaults, then `file` (TOML) if given, then
    /// `CHRONIK_*` environment variables; then [`Config::validate`]s it.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let config = Config::load_unvalidated(file)?;
        config.validate()?;
        Ok(config)
    }

    /// Like [`Config::load`] but without validation, for callers (the CLI)
    /// that layer more settings on top before validating.
    pub fn load_unvalidated(file: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load_layers(file, process_env()?)
    }

    /// Defaults, then `file`, then the `CHRONIK_*` entries of `env` (other
    /// entries are ignored). Not validated. This is [`Config::load`] with the
    /// environment passed in, so tests need not touch the process environment.
    ///
    /// `CHRONIK_RAFT__ELECTION_TIMEOUT=5s` sets `raft.election-timeout`: after
    /// the prefix, `__` separates section from key and `_` stands for `-`.
    pub fn load_layers<I, K, V>(file: Option<&Path>, env: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let env = normalize_env(env);
        let mut sources = Vec::new();
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::FileNotFound { path: path.to_path_buf() });
            }
            sources.push(format!("file `{}`", path.display()));
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml).required(true));
        }
        if !env.is_empty() {
            let mut names: Vec<&str> = env.iter().map(|(orig, _, _)| orig.as_str()).collect();
            names.sort_unstable();
            sources.push(format!("environment ({})", names.join(", ")));
        }
        if sources.is_empty() {
            sources.push("defaults".to_string());
        }
        let sources = sources.join(" and ");

        let map: config::Map<String, String> = env.into_iter().map(|(_, key, value)| (key, value)).collect();
        builder = builder.add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("_")
                .separator(ENV_SEPARATOR)
                .source(Some(map)),
        );

        let load_err = |e: config::ConfigError| {
            let (key, message) = split_config_error(e);
            ConfigError::Load { sources: sources.clone(), key, message }
        };
        let raw = builder.build().map_err(load_err)?;
        raw.try_deserialize::<Config>().map_err(load_err)
    }
}

/// Splits an error of the `config` crate into the key at fault (if any) and
/// a message without the key and without the crate's origin suffix.
fn split_config_error(e: config::ConfigError) -> (Option<String>, String) {
    match e {
        config::ConfigError::Type { unexpected, expected, key, .. } => {
            (key, format!("invalid type: {unexpected}, expected {expected}"))
        }
        config::ConfigError::At { error, key: Some(key), .. } => {
            let (inner_key, message) = split_config_error(*error);
            match inner_key {
                Some(inner) if inner.starts_with('[') => (Some(tidy_key(&format!("{key}{inner}"))), message),
                Some(inner) => (Some(tidy_key(&format!("{key}.{inner}"))), message),
                None => (Some(tidy_key(&key)), message),
            }
        }
        config::ConfigError::NotFound(key) => (Some(tidy_key(&key)), "is required".to_string()),
        config::ConfigError::FileParse { cause, .. } => (None, cause.to_string().trim().to_string()),
        other => (None, other.to_string()),
    }
}

/// The `config` crate writes `peers[0]addr`; make it `peers[0].addr`.
fn tidy_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 2);
    let mut after_bracket = false;
    for c in key.chars() {
        if after_bracket && c != '[' && c != '.' {
            out.push('.');
        }
        after_bracket = c == ']';
        out.push(c);
    }
    out
}

/// The process environment's `CHRONIK_*` variables.
fn process_env() -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    for (k, v) in std::env::vars_os() {
        let Some(k) = k.to_str() else { continue };
        if !has_env_prefix(k) {
            continue;
        }
        let v = v
            .into_string()
            .map_err(|_| ConfigError::invalid(k.to_string(), "(environment variable) is not valid UTF-8"))?;
        out.push((k.to_string(), v));
    }
    Ok(out)
}

fn has_env_prefix(key: &str) -> bool {
    let p = ENV_PREFIX.len();
    match (key.get(..p), key.get(p..)) {
        (Some(head), Some(rest)) => head.eq_ignore_ascii_case(ENV_PREFIX) && rest.len() > 1 && rest.starts_with('_'),
        _ => false,
    }
}

/// Keeps `CHRONIK_*` entries and rewrites their names so that config's
/// Environment source (lowercase, `__` → `.`) yields kebab-case keys:
/// `CHRONIK_RAFT__ELECTION_TIMEOUT` → `CHRONIK_raft__election-timeout`.
/// Returns (original name, rewritten name, value).
fn normalize_env<I, K, V>(env: I) -> Vec<(String, String, String)>
where
    I: IntoIterator<Item = (K, V)>,
    K: Into<String>,
    V: Into<String>,
{
    let mut out = Vec::new();
    for (k, v) in env {
        let k: String = k.into();
        if !has_env_prefix(&k) {
            continue;
        }
        let rest = &k[ENV_PREFIX.len() + 1..];
        let rewritten: Vec<String> =
            rest.split(ENV_SEPARATOR).map(|seg| seg.to_ascii_lowercase().replace('_', "-")).collect();
        let key = format!("{ENV_PREFIX}_{}", rewritten.join(ENV_SEPARATOR));
        out.push((k, key, v.into()));
    }
    out
}

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

impl Config {
    /// Number of nodes in the cluster: this one plus its peers.
    pub fn node_count(&self) -> usize {
        1 + self.raft.peers.len()
    }

    /// Tick counts for raft-rs (see [`derive_ticks`]).
    pub fn raft_ticks(&self) -> Result<RaftTicks, ConfigError> {
        self.raft.ticks()
    }

    /// Checks every value and the rules that relate values to each other.
    /// Returns the first problem found, naming its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let max_i32 = i32::MAX as u64;

        // Top level.
        if self.node_id == 0 || self.node_id > max_i32 {
            return Err(ConfigError::invalid(
                "node-id",
                format!(
                    "is {}; it must be between 1 and {max_i32} (it is also the Kafka broker id, an int32)",
                    self.node_id
                ),
            ));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::invalid("data-dir", "must not be empty"));
        }

        // [kafka]
        let kafka_listen = self.kafka.listen_addr()?;
        if let Some(host) = &self.kafka.advertised_host {
            check_host(host.trim()).map_err(|e| ConfigError::invalid("kafka.advertised-host", e))?;
            if host.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified()) {
                return Err(ConfigError::invalid(
                    "kafka.advertised-host",
                    format!("is {host:?}, which clients cannot connect to; give a reachable host"),
                ));
            }
        }
        if self.kafka.advertised_port == Some(0) {
            return Err(ConfigError::invalid("kafka.advertised-port", "must be between 1 and 65535"));
        }
        if self.kafka.max_request_size == 0 || self.kafka.max_request_size > max_i32 {
            return Err(ConfigError::invalid(
                "kafka.max-request-size",
                format!("is {}; it must be between 1 and {max_i32} bytes", self.kafka.max_request_size),
            ));
        }
        if self.kafka.max_message_bytes == 0 {
            return Err(ConfigError::invalid("kafka.max-message-bytes", "must be at least 1 byte"));
        }
        if self.kafka.max_message_bytes > self.kafka.max_request_size {
            return Err(ConfigError::invalid(
                "kafka.max-message-bytes",
                format!(
                    "({}) must not exceed kafka.max-request-size ({}): a batch travels inside one request",
                    self.kafka.max_message_bytes, self.kafka.max_request_size
                ),
            ));
        }
        if self.kafka.max_connections == 0 {
            return Err(ConfigError::invalid("kafka.max-connections", "must be at least 1"));
        }

        // [raft]
        let raft_listen = self.raft.listen_addr()?;
        if raft_listen.port() != 0 && raft_listen == kafka_listen {
            return Err(ConfigError::invalid("raft.listen", format!("({raft_listen}) must differ from kafka.listen")));
        }
        let r = &self.raft;
        if r.tick_interval.is_zero() {
            return Err(ConfigError::invalid("raft.tick-interval", "must be greater than zero"));
        }
        if r.tick_interval > r.heartbeat_interval {
            return Err(ConfigError::invalid(
                "raft.tick-interval",
                format!(
                    "({}) must not be longer than raft.heartbeat-interval ({})",
                    fmt_duration(r.tick_interval),
                    fmt_duration(r.heartbeat_interval)
                ),
            ));
        }
        let min_election = r.heartbeat_interval.checked_mul(MIN_ELECTION_HEARTBEAT_RATIO).unwrap_or(Duration::MAX);
        if r.election_timeout < min_election {
            return Err(ConfigError::invalid(
                "raft.election-timeout",
                format!(
                    "({}) must be at least {MIN_ELECTION_HEARTBEAT_RATIO} x raft.heartbeat-interval ({}), i.e. at least {}, so that heartbeats arrive well before followers time out",
                    fmt_duration(r.election_timeout),
                    fmt_duration(r.heartbeat_interval),
                    fmt_duration(min_election)
                ),
            ));
        }
        r.ticks()?;
        if r.max_inflight_msgs == 0 {
            return Err(ConfigError::invalid("raft.max-inflight-msgs", "must be at least 1"));
        }
        if r.max_size_per_msg == 0 {
            return Err(ConfigError::invalid("raft.max-size-per-msg", "must be at least 1 byte"));
        }
        let mut seen_ids = std::collections::HashSet::new();
        let mut seen_addrs = std::collections::HashSet::new();
        for (i, peer) in r.peers.iter().enumerate() {
            let key = format!("raft.peers[{i}]");
            if peer.id == 0 || peer.id > max_i32 {
                return Err(ConfigError::invalid(
                    format!("{key}.id"),
                    format!("is {}; node ids are between 1 and {max_i32}", peer.id),
                ));
            }
            if peer.id == self.node_id {
                return Err(ConfigError::invalid(
                    format!("{key}.id"),
                    format!("is {}, this node's own node-id; raft.peers lists only the other nodes", peer.id),
                ));
            }
            if !seen_ids.insert(peer.id) {
                return Err(ConfigError::invalid(
                    format!("{key}.id"),
                    format!("{} appears more than once in raft.peers", peer.id),
                ));
            }
            check_host_port(peer.addr.trim()).map_err(|e| ConfigError::invalid(format!("{key}.addr"), e))?;
            if !seen_addrs.insert(peer.addr.trim()) {
                return Err(ConfigError::invalid(
                    format!("{key}.addr"),
                    format!("{:?} appears more than once in raft.peers", peer.addr),
                ));
            }
            if peer.addr.trim().parse::<SocketAddr>().ok() == Some(raft_listen) {
                return Err(ConfigError::invalid(
                    format!("{key}.addr"),
                    format!("{:?} is this node's own raft.listen", peer.addr),
                ));
            }
        }

        // [topics]
        let t = &self.topics;
        if t.default_partitions == 0 || u64::from(t.default_partitions) > max_i32 {
            return Err(ConfigError::invalid(
                "topics.default-partitions",
                format!("is {}; it must be at least 1", t.default_partitions),
            ));
        }
        if t.default_replication_factor == 0 {
            return Err(ConfigError::invalid("topics.default-replication-factor", "must be at least 1"));
        }
        if usize::from(t.default_replication_factor) > self.node_count() {
            return Err(ConfigError::invalid(
                "topics.default-replication-factor",
                format!(
                    "({}) exceeds the number of nodes ({}: this node plus {} in raft.peers)",
                    t.default_replication_factor,
                    self.node_count(),
                    r.peers.len()
                ),
            ));
        }
        if t.retention.is_some_and(|d| d.is_zero()) {
            return Err(ConfigError::invalid(
                "topics.retention",
                "must be greater than zero; use \"unlimited\" to keep data forever",
            ));
        }
        if t.retention_bytes == Some(0) {
            return Err(ConfigError::invalid("topics.retention-bytes", "must be at least 1; use -1 for no size limit"));
        }
        if t.segment_bytes < MIN_SEGMENT_BYTES || t.segment_bytes > max_i32 {
            return Err(ConfigError::invalid(
                "topics.segment-bytes",
                format!("is {}; it must be between {MIN_SEGMENT_BYTES} and {max_i32} bytes", t.segment_bytes),
            ));
        }

        // [storage]
        let s = &self.storage;
        if s.flush_interval.is_zero() {
            return Err(ConfigError::invalid("storage.flush-interval", "must be greater than zero"));
        }
        if s.index_interval_bytes == 0 {
            return Err(ConfigError::invalid("storage.index-interval-bytes", "must be at least 1 byte"));
        }
        if s.retention_check_interval.is_zero() {
            return Err(ConfigError::invalid("storage.retention-check-interval", "must be greater than zero"));
        }

        // [metrics]
        if let Some(listen) = &self.metrics.listen {
            let addr = parse_socket_addr("metrics.listen", listen)?;
            if addr.port() != 0 && (addr == kafka_listen || addr == raft_listen) {
                return Err(ConfigError::invalid(
                    "metrics.listen",
                    format!("({addr}) must differ from kafka.listen and raft.listen"),
                ));
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Description for the start-up log
// ---------------------------------------------------------------------------

fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn toml_duration(d: Duration) -> String {
    toml_str(&fmt_duration(d))
}

impl Config {
    /// The effective configuration as TOML text (derived values filled in and
    /// derived tick counts as comments), for the start-up log. The output
    /// parses back as a configuration file.
    pub fn describe(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "node-id = {}", self.node_id)?;
        writeln!(f, "data-dir = {}", toml_str(&self.data_dir.to_string_lossy()))?;
        writeln!(f, "log-level = {}", toml_str(self.log_level.as_str()))?;

        let k = &self.kafka;
        writeln!(f, "\n[kafka]")?;
        writeln!(f, "listen = {}", toml_str(&k.listen))?;
        match k.effective_advertised_host() {
            Ok(h) => writeln!(f, "advertised-host = {}", toml_str(&h))?,
            Err(_) => writeln!(f, "# advertised-host = (cannot derive: invalid listen)")?,
        }
        match k.effective_advertised_port() {
            Ok(p) => writeln!(f, "advertised-port = {p}")?,
            Err(_) => writeln!(f, "# advertised-port = (cannot derive: invalid listen)")?,
        }
        writeln!(f, "max-request-size = {}", k.max_request_size)?;
        writeln!(f, "max-message-bytes = {}", k.max_message_bytes)?;
        writeln!(f, "max-connections = {}", k.max_connections)?;

        let r = &self.raft;
        writeln!(f, "\n[raft]")?;
        writeln!(f, "listen = {}", toml_str(&r.listen))?;
        writeln!(f, "tick-interval = {}", toml_duration(r.tick_interval))?;
        writeln!(f, "heartbeat-interval = {}", toml_duration(r.heartbeat_interval))?;
        writeln!(f, "election-timeout = {}", toml_duration(r.election_timeout))?;
        writeln!(f, "pre-vote = {}", r.pre_vote)?;
        writeln!(f, "check-quorum = {}", r.check_quorum)?;
        writeln!(f, "max-inflight-msgs = {}", r.max_inflight_msgs)?;
        writeln!(f, "max-size-per-msg = {}", r.max_size_per_msg)?;
        let peers: Vec<String> =
            r.peers.iter().map(|p| format!("{{ id = {}, addr = {} }}", p.id, toml_str(&p.addr))).collect();
        writeln!(f, "peers = [{}]", peers.join(", "))?;
        match r.ticks() {
            Ok(t) => {
                let (lo, hi) = t.election_timeout_range();
                writeln!(
                    f,
                    "# derived: heartbeat-tick = {}, election-tick = {} (election timeout randomized in [{}, {}))",
                    t.heartbeat_tick,
                    t.election_tick,
                    fmt_duration(lo),
                    fmt_duration(hi)
                )?;
            }
            Err(e) => writeln!(f, "# derived ticks: {e}")?,
        }

        let t = &self.topics;
        writeln!(f, "\n[topics]")?;
        writeln!(f, "auto-create = {}", t.auto_create)?;
        writeln!(f, "default-partitions = {}", t.default_partitions)?;
        writeln!(f, "default-replication-factor = {}", t.default_replication_factor)?;
        match t.retention {
            Some(d) => writeln!(f, "retention = {}", toml_duration(d))?,
            None => writeln!(f, "retention = \"unlimited\"")?,
        }
        match t.retention_bytes {
            Some(n) => writeln!(f, "retention-bytes = {n}")?,
            None => writeln!(f, "retention-bytes = -1")?,
        }
        writeln!(f, "segment-bytes = {}", t.segment_bytes)?;

        let s = &self.storage;
        writeln!(f, "\n[storage]")?;
        writeln!(f, "fsync = {}", toml_str(s.fsync.as_str()))?;
        writeln!(f, "flush-interval = {}", toml_duration(s.flush_interval))?;
        writeln!(f, "index-interval-bytes = {}", s.index_interval_bytes)?;
        writeln!(f, "retention-check-interval = {}", toml_duration(s.retention_check_interval))?;

        writeln!(f, "\n[metrics]")?;
        match &self.metrics.listen {
            Some(l) => writeln!(f, "listen = {}", toml_str(l))?,
            None => writeln!(f, "# listen = (disabled)")?,
        }

        writeln!(f, "\n[faults]")?;
        writeln!(f, "apply-delay = {}", toml_duration(self.faults.apply_delay))?;
        write!(f, "runtime = {}", self.faults.runtime)
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const NO_ENV: [(&str, &str); 0] = [];

    fn write_toml(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new().suffix(".toml").tempfile().expect("create temp file");
        f.write_all(text.as_bytes()).expect("write temp file");
        f.flush().expect("flush temp file");
        f
    }

    fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let f = write_toml(text);
        Config::load_layers(Some(f.path()), NO_ENV)
    }

    fn from_env(env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::load_layers(None, env.iter().copied())
    }

    fn invalid_key(cfg: &Config) -> String {
        match cfg.validate() {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("expected an Invalid error, got {other:?}"),
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    // --- defaults -------------------------------------------------------

    #[test]
    fn defaults_are_as_documented() {
        let c = Config::default();
        assert_eq!(c.node_id, 1);
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.log_level, LogLevel::Info);
        assert_eq!(c.kafka.listen, "127.0.0.1:9092");
        assert_eq!(c.kafka.advertised_host, None);
        assert_eq!(c.kafka.advertised_port, None);
        assert_eq!(c.kafka.max_request_size, 104_857_600);
        assert_eq!(c.kafka.max_message_bytes, 1_048_588);
        assert_eq!(c.kafka.max_connections, 10_000);
        assert_eq!(c.raft.listen, "127.0.0.1:9192");
        assert_eq!(c.raft.tick_interval, ms(50));
        assert_eq!(c.raft.heartbeat_interval, ms(150));
        assert_eq!(c.raft.election_timeout, ms(3000));
        assert!(c.raft.pre_vote);
        assert!(c.raft.check_quorum);
        assert_eq!(c.raft.max_inflight_msgs, 256);
        assert_eq!(c.raft.max_size_per_msg, 1_048_576);
        assert!(c.raft.peers.is_empty());
        assert!(c.topics.auto_create);
        assert_eq!(c.topics.default_partitions, 1);
        assert_eq!(c.topics.default_replication_factor, 1);
        assert_eq!(c.topics.retention, Some(Duration::from_secs(604_800)));
        assert_eq!(c.topics.retention_bytes, None);
        assert_eq!(c.topics.segment_bytes, 1_073_741_824);
        assert_eq!(c.storage.fsync, FsyncPolicy::Always);
        assert_eq!(c.storage.flush_interval, ms(1000));
        assert_eq!(c.storage.index_interval_bytes, 4096);
        assert_eq!(c.storage.retention_check_interval, ms(60_000));
        assert_eq!(c.metrics.listen, None);
        assert_eq!(c.faults.apply_delay, Duration::ZERO);
    }

    #[test]
    fn defaults_validate() {
        Config::default().validate().expect("defaults are valid");
    }

    #[test]
    fn empty_sources_give_defaults() {
        assert_eq!(from_env(&[]).unwrap(), Config::default());
        assert_eq!(from_toml("").unwrap(), Config::default());
    }

    // --- advertised address ---------------------------------------------

    #[test]
    fn advertised_address_is_derived_from_listen() {
        let mut k = KafkaConfig::default();
        assert_eq!(k.effective_advertised_host().unwrap(), "127.0.0.1");
        assert_eq!(k.effective_advertised_port().unwrap(), 9092);
        k.listen = "0.0.0.0:19092".into();
        assert_eq!(k.effective_advertised_host().unwrap(), "127.0.0.1");
        assert_eq!(k.effective_advertised_port().unwrap(), 19092);
        k.listen = "[::]:9092".into();
        assert_eq!(k.effective_advertised_host().unwrap(), "::1");
        k.listen = "10.1.2.3:9000".into();
        assert_eq!(k.effective_advertised_host().unwrap(), "10.1.2.3");
        k.advertised_host = Some("broker1.example".into());
        k.advertised_port = Some(443);
        assert_eq!(k.effective_advertised_host().unwrap(), "broker1.example");
        assert_eq!(k.effective_advertised_port().unwrap(), 443);
    }

    #[test]
    fn advertised_host_from_unparsable_listen_is_an_error() {
        let k = KafkaConfig { listen: "localhost".into(), ..KafkaConfig::default() };
        let err = k.effective_advertised_host().unwrap_err();
        assert!(err.to_string().contains("kafka.listen"), "{err}");
    }

    // --- file loading ---------------------------------------------------

    #[test]
    fn file_values_override_defaults() {
        let c = from_toml(
            r#"
            node-id = 3
            data-dir = "/var/lib/chronik"
            log-level = "debug"
            [kafka]
            listen = "0.0.0.0:9094"
            advertised-host = "broker3"
            max-connections = 10
            [raft]
            listen = "127.0.0.1:9194"
            tick-interval = "10ms"
            election-timeout = "5s"
            pre-vote = false
            peers = [{ id = 1, addr = "127.0.0.1:9192" }, { id = 2, addr = "node2:9193" }]
            [topics]
            default-replication-factor = 3
            retention = "3days"
            retention-bytes = 1000000
            segment-bytes = 4096
            [storage]
            fsync = "interval"
            flush-interval = "250ms"
            [metrics]
            listen = "127.0.0.1:9300"
            [faults]
            apply-delay = "20ms"
            "#,
        )
        .unwrap();
        assert_eq!(c.node_id, 3);
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/chronik"));
        assert_eq!(c.log_level, LogLevel::Debug);
        assert_eq!(c.kafka.listen, "0.0.0.0:9094");
        assert_eq!(c.kafka.advertised_host.as_deref(), Some("broker3"));
        assert_eq!(c.kafka.max_connections, 10);
        assert_eq!(c.kafka.max_request_size, 104_857_600, "untouched default");
        assert_eq!(c.raft.tick_interval, ms(10));
        assert_eq!(c.raft.heartbeat_interval, ms(150), "untouched default");
        assert_eq!(c.raft.election_timeout, ms(5000));
        assert!(!c.raft.pre_vote);
        assert_eq!(
            c.raft.peers,
            vec![PeerConfig { id: 1, addr: "127.0.0.1:9192".into() }, PeerConfig { id: 2, addr: "node2:9193".into() },]
        );
        assert_eq!(c.topics.default_replication_factor, 3);
        assert_eq!(c.topics.retention, Some(Duration::from_secs(3 * 86_400)));
        assert_eq!(c.topics.retention_bytes, Some(1_000_000));
        assert_eq!(c.topics.segment_bytes, 4096);
        assert_eq!(c.storage.fsync, FsyncPolicy::Interval);
        assert_eq!(c.storage.flush_interval, ms(250));
        assert_eq!(c.metrics.listen.as_deref(), Some("127.0.0.1:9300"));
        assert_eq!(c.faults.apply_delay, ms(20));
        c.validate().unwrap();
    }

    #[test]
    fn peers_accept_array_of_tables_syntax() {
        let c = from_toml(
            "[[raft.peers]]\nid = 2\naddr = \"127.0.0.1:9193\"\n[[raft.peers]]\nid = 3\naddr = \"127.0.0.1:9194\"\n",
        )
        .unwrap();
        assert_eq!(c.raft.peers.len(), 2);
        assert_eq!(c.raft.peers[1].id, 3);
    }

    #[test]
    fn unknown_key_in_section_is_an_error_naming_it() {
        let err = from_toml("[raft]\nheartbeat-intervall = \"150ms\"\n").unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ConfigError::Load { .. }), "{err:?}");
        assert!(msg.contains("heartbeat-intervall"), "{msg}");
        assert!(msg.contains("`raft`"), "{msg}");
        match err {
            ConfigError::Load { key, .. } => assert_eq!(key.as_deref(), Some("raft")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_top_level_key_and_section_are_errors() {
        let msg = from_toml("nodeid = 2\n").unwrap_err().to_string();
        assert!(msg.contains("nodeid"), "{msg}");
        let msg = from_toml("[kafak]\nlisten = \"127.0.0.1:1\"\n").unwrap_err().to_string();
        assert!(msg.contains("kafak"), "{msg}");
        let msg = from_toml("[raft]\npeers = [{ id = 2, address = \"a:1\" }]\n").unwrap_err().to_string();
        assert!(msg.contains("address"), "{msg}");
        let msg = from_toml("[raft]\npeers = [{ id = 2 }]\n").unwrap_err().to_string();
        assert!(msg.contains("`raft.peers[0].addr`: is required"), "{msg}");
    }

    #[test]
    fn snake_case_keys_are_rejected() {
        let msg = from_toml("[raft]\nelection_timeout = \"3s\"\n").unwrap_err().to_string();
        assert!(msg.contains("election_timeout"), "{msg}");
    }

    #[test]
    fn bad_duration_names_the_key() {
        let msg = from_toml("[raft]\ntick-interval = \"5x\"\n").unwrap_err().to_string();
        assert!(msg.contains("raft.tick-interval"), "{msg}");
        assert!(msg.contains("5x"), "{msg}");
    }

    #[test]
    fn bare_integer_duration_is_rejected() {
        let msg = from_toml("[raft]\nelection-timeout = 3000\n").unwrap_err().to_string();
        assert!(msg.contains("raft.election-timeout"), "{msg}");
        assert!(msg.contains("duration"), "{msg}");
    }

    #[test]
    fn wrong_types_name_the_key() {
        let msg = from_toml("[kafka]\nmax-connections = \"many\"\n").unwrap_err().to_string();
        assert!(msg.contains("kafka.max-connections"), "{msg}");
        let msg = from_toml("[storage]\nfsync = \"sometimes\"\n").unwrap_err().to_string();
        assert!(msg.contains("storage.fsync"), "{msg}");
        assert!(msg.contains("\"sometimes\""), "{msg}");
        assert!(msg.contains("interval"), "{msg}");
        let msg = from_toml("node-id = -2\n").unwrap_err().to_string();
        assert!(msg.contains("node-id"), "{msg}");
    }

    #[test]
    fn malformed_toml_is_an_error_naming_the_file() {
        let f = write_toml("[raft\nlisten = ");
        let err = Config::load_layers(Some(f.path()), NO_ENV).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&f.path().display().to_string()), "{msg}");
        assert!(msg.contains("line 1"), "{msg}");
    }

    #[test]
    fn missing_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.toml");
        let err = Config::load_layers(Some(&path), NO_ENV).unwrap_err();
        assert!(matches!(err, ConfigError::FileNotFound { .. }), "{err:?}");
        assert!(err.to_string().contains("nope.toml"));
    }

    #[test]
    fn retention_spellings() {
        for v in ["\"unlimited\"", "\"none\"", "\"-1\"", "-1", "\"UNLIMITED\""] {
            let c = from_toml(&format!("[topics]\nretention = {v}\n")).unwrap();
            assert_eq!(c.topics.retention, None, "{v}");
        }
        let c = from_toml("[topics]\nretention = \"12h\"\n").unwrap();
        assert_eq!(c.topics.retention, Some(Duration::from_secs(12 * 3600)));
        assert!(from_toml("[topics]\nretention = 5\n").is_err());

        for v in ["-1", "\"-1\"", "\"none\"", "\"unlimited\""] {
            let c = from_toml(&format!("[topics]\nretention-bytes = {v}\n")).unwrap();
            assert_eq!(c.topics.retention_bytes, None, "{v}");
        }
        let c = from_toml("[topics]\nretention-bytes = 5000\n").unwrap();
        assert_eq!(c.topics.retention_bytes, Some(5000));
        let msg = from_toml("[topics]\nretention-bytes = -7\n").unwrap_err().to_string();
        assert!(msg.contains("topics.retention-bytes"), "{msg}");
    }

    #[test]
    fn log_level_parsing() {
        assert_eq!("WARNING".parse::<LogLevel>().unwrap(), LogLevel::Warn);
        assert_eq!("trace".parse::<LogLevel>().unwrap(), LogLevel::Trace);
        assert!("loud".parse::<LogLevel>().is_err());
        let c = from_toml("log-level = \"warning\"\n").unwrap();
        assert_eq!(c.log_level, LogLevel::Warn);
        assert!(from_toml("log-level = \"loud\"\n").is_err());
    }

    #[test]
    fn fsync_policy_parsing() {
        assert_eq!("Interval".parse::<FsyncPolicy>().unwrap(), FsyncPolicy::Interval);
        assert_eq!("always".parse::<FsyncPolicy>().unwrap(), FsyncPolicy::Always);
        assert!("never".parse::<FsyncPolicy>().is_err());
    }

    // --- environment ----------------------------------------------------

    #[test]
    fn env_overrides_with_underscores_mapping_to_kebab_case() {
        let c = from_env(&[
            ("CHRONIK_KAFKA__LISTEN", "127.0.0.1:9999"),
            ("CHRONIK_RAFT__ELECTION_TIMEOUT", "5s"),
            ("CHRONIK_DATA_DIR", "/tmp/chronik-env"),
            ("CHRONIK_NODE_ID", "4"),
            ("CHRONIK_LOG_LEVEL", "trace"),
            ("CHRONIK_KAFKA__MAX_MESSAGE_BYTES", "2000"),
            ("CHRONIK_KAFKA__ADVERTISED_PORT", "19092"),
            ("CHRONIK_RAFT__PRE_VOTE", "false"),
            ("CHRONIK_RAFT__LISTEN", "127.0.0.1:9195"),
            ("CHRONIK_RAFT__PEERS", "1@127.0.0.1:9192, 2@127.0.0.1:9193"),
            ("CHRONIK_TOPICS__DEFAULT_REPLICATION_FACTOR", "2"),
            ("CHRONIK_TOPICS__RETENTION", "unlimited"),
            ("CHRONIK_TOPICS__RETENTION_BYTES", "123456"),
            ("CHRONIK_STORAGE__FSYNC", "interval"),
            ("CHRONIK_STORAGE__RETENTION_CHECK_INTERVAL", "30s"),
            ("CHRONIK_METRICS__LISTEN", "127.0.0.1:9400"),
            ("CHRONIK_FAULTS__APPLY_DELAY", "5ms"),
            ("PATH", "/usr/bin"),
            ("CHRONIKX_NODE_ID", "9"),
        ])
        .unwrap();
        assert_eq!(c.kafka.listen, "127.0.0.1:9999");
        assert_eq!(c.raft.election_timeout, ms(5000));
        assert_eq!(c.data_dir, PathBuf::from("/tmp/chronik-env"));
        assert_eq!(c.node_id, 4);
        assert_eq!(c.log_level, LogLevel::Trace);
        assert_eq!(c.kafka.max_message_bytes, 2000);
        assert_eq!(c.kafka.advertised_port, Some(19092));
        assert!(!c.raft.pre_vote);
        assert_eq!(c.raft.peers.len(), 2);
        assert_eq!(c.raft.peers[1].addr, "127.0.0.1:9193");
        assert_eq!(c.topics.default_replication_factor, 2);
        assert_eq!(c.topics.retention, None);
        assert_eq!(c.topics.retention_bytes, Some(123_456));
        assert_eq!(c.storage.fsync, FsyncPolicy::Interval);
        assert_eq!(c.storage.retention_check_interval, ms(30_000));
        assert_eq!(c.metrics.listen.as_deref(), Some("127.0.0.1:9400"));
        assert_eq!(c.faults.apply_delay, ms(5));
        c.validate().unwrap();
    }

    #[test]
    fn env_names_are_case_insensitive() {
        let c = from_env(&[("chronik_raft__tick_interval", "20ms")]).unwrap();
        assert_eq!(c.raft.tick_interval, ms(20));
    }

    #[test]
    fn env_overrides_file() {
        let f = write_toml("node-id = 2\n[kafka]\nlisten = \"127.0.0.1:1111\"\nmax-connections = 5\n");
        let c = Config::load_layers(Some(f.path()), [("CHRONIK_KAFKA__LISTEN", "127.0.0.1:2222")]).unwrap();
        assert_eq!(c.kafka.listen, "127.0.0.1:2222");
        assert_eq!(c.kafka.max_connections, 5, "file value kept");
        assert_eq!(c.node_id, 2);
    }

    #[test]
    fn unknown_env_key_is_an_error_naming_it() {
        let err = from_env(&[("CHRONIK_RAFT__HEARTBEAT_INTERVALL", "1s")]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("heartbeat-intervall"), "{msg}");
        assert!(msg.contains("CHRONIK_RAFT__HEARTBEAT_INTERVALL"), "{msg}");
    }

    #[test]
    fn bad_env_value_names_the_key() {
        let msg = from_env(&[("CHRONIK_RAFT__ELECTION_TIMEOUT", "soon")]).unwrap_err().to_string();
        assert!(msg.contains("raft.election-timeout"), "{msg}");
        let msg = from_env(&[("CHRONIK_RAFT__PEERS", "2-127.0.0.1:9193")]).unwrap_err().to_string();
        assert!(msg.contains("raft.peers"), "{msg}");
    }

    #[test]
    fn empty_env_values_clear_optional_strings() {
        let c = from_env(&[("CHRONIK_METRICS__LISTEN", ""), ("CHRONIK_KAFKA__ADVERTISED_HOST", "none")]).unwrap();
        assert_eq!(c.metrics.listen, None);
        assert_eq!(c.kafka.advertised_host, None);
    }

    /// Proves that `Config::load` reads the real process environment without
    /// mutating this process's environment (unsafe with other threads
    /// running): re-runs this test binary, filtered to the child test below,
    /// with a clean environment holding one `CHRONIK_*` variable.
    #[test]
    fn load_reads_the_process_environment() {
        let exe = std::env::current_exe().expect("test binary path");
        let out = std::process::Command::new(exe)
            .args([
                "--exact",
                "config::tests::load_reads_the_process_environment_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env_clear()
            .env("CHRONIKTEST_CHILD", "1")
            .env("CHRONIK_KAFKA__MAX_CONNECTIONS", "9876")
            .env("CHRONIK_RAFT__ELECTION_TIMEOUT", "4s")
            .output()
            .expect("run child test");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "child failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("1 passed"), "child did not run:\n{stdout}");
    }

    /// Child half of the test above; passes trivially when run normally.
    #[test]
    fn load_reads_the_process_environment_child() {
        if std::env::var_os("CHRONIKTEST_CHILD").is_none() {
            return;
        }
        let c = Config::load(None).expect("load from the process environment");
        assert_eq!(c.kafka.max_connections, 9876);
        assert_eq!(c.raft.election_timeout, ms(4000));
    }

    // --- validation -----------------------------------------------------

    #[test]
    fn tick_interval_rules() {
        let mut c = Config::default();
        c.raft.tick_interval = Duration::ZERO;
        assert_eq!(invalid_key(&c), "raft.tick-interval");
        c.raft.tick_interval = ms(200);
        assert_eq!(invalid_key(&c), "raft.tick-interval");
        c.raft.tick_interval = ms(150);
        c.validate().unwrap();
        c.raft.tick_interval = ms(1);
        c.validate().unwrap();
    }

    #[test]
    fn election_timeout_must_be_well_above_heartbeat() {
        let mut c = Config::default();
        c.raft.election_timeout = ms(500);
        let err = c.validate().unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("raft.election-timeout"), "{msg}");
        assert!(msg.contains("750ms"), "{msg}");
        c.raft.election_timeout = ms(750);
        c.validate().unwrap();
        c.raft.election_timeout = ms(3000);
        c.validate().unwrap();
    }

    #[test]
    fn replication_factor_bounded_by_node_count() {
        let mut c = Config::default();
        c.topics.default_replication_factor = 0;
        assert_eq!(invalid_key(&c), "topics.default-replication-factor");
        c.topics.default_replication_factor = 2;
        let msg = c.validate().unwrap_err().to_string();
        assert!(msg.contains("topics.default-replication-factor"), "{msg}");
        assert!(msg.contains("number of nodes (1"), "{msg}");
        c.raft.peers = vec![PeerConfig { id: 2, addr: "127.0.0.1:9193".into() }];
        c.validate().unwrap();
        c.topics.default_replication_factor = 3;
        assert_eq!(invalid_key(&c), "topics.default-replication-factor");
    }

    #[test]
    fn topic_and_storage_bounds() {
        let mut c = Config::default();
        c.topics.default_partitions = 0;
        assert_eq!(invalid_key(&c), "topics.default-partitions");

        let mut c = Config::default();
        c.topics.segment_bytes = 1023;
        assert_eq!(invalid_key(&c), "topics.segment-bytes");
        c.topics.segment_bytes = 1024;
        c.validate().unwrap();

        let mut c = Config::default();
        c.topics.retention = Some(Duration::ZERO);
        assert_eq!(invalid_key(&c), "topics.retention");
        let mut c = Config::default();
        c.topics.retention_bytes = Some(0);
        assert_eq!(invalid_key(&c), "topics.retention-bytes");

        let mut c = Config::default();
        c.storage.flush_interval = Duration::ZERO;
        assert_eq!(invalid_key(&c), "storage.flush-interval");
        let mut c = Config::default();
        c.storage.index_interval_bytes = 0;
        assert_eq!(invalid_key(&c), "storage.index-interval-bytes");
        let mut c = Config::default();
        c.storage.retention_check_interval = Duration::ZERO;
        assert_eq!(invalid_key(&c), "storage.retention-check-interval");
    }

    #[test]
    fn message_size_must_fit_in_request() {
        let mut c = Config::default();
        c.kafka.max_message_bytes = c.kafka.max_request_size + 1;
        assert_eq!(invalid_key(&c), "kafka.max-message-bytes");
        c.kafka.max_message_bytes = c.kafka.max_request_size;
        c.validate().unwrap();
        c.kafka.max_request_size = u64::from(u32::MAX);
        assert_eq!(invalid_key(&c), "kafka.max-request-size");
        let mut c = Config::default();
        c.kafka.max_connections = 0;
        assert_eq!(invalid_key(&c), "kafka.max-connections");
    }

    #[test]
    fn listen_addresses_must_parse() {
        let mut c = Config::default();
        c.kafka.listen = "localhost:9092".into();
        assert_eq!(invalid_key(&c), "kafka.listen");
        let mut c = Config::default();
        c.raft.listen = "127.0.0.1".into();
        assert_eq!(invalid_key(&c), "raft.listen");
        let mut c = Config::default();
        c.metrics.listen = Some("nowhere".into());
        assert_eq!(invalid_key(&c), "metrics.listen");
        c.metrics.listen = Some("127.0.0.1:9300".into());
        c.validate().unwrap();
        let mut c = Config::default();
        c.raft.listen = c.kafka.listen.clone();
        assert_eq!(invalid_key(&c), "raft.listen");
        // Port 0 (ephemeral, for tests) is allowed on both listeners.
        let mut c = Config::default();
        c.kafka.listen = "127.0.0.1:0".into();
        c.raft.listen = "127.0.0.1:0".into();
        c.validate().unwrap();
    }

    #[test]
    fn advertised_host_checks() {
        let mut c = Config::default();
        c.kafka.advertised_host = Some("0.0.0.0".into());
        assert_eq!(invalid_key(&c), "kafka.advertised-host");
        c.kafka.advertised_host = Some("bad host".into());
        assert_eq!(invalid_key(&c), "kafka.advertised-host");
        c.kafka.advertised_host = Some("::1".into());
        c.validate().unwrap();
        c.kafka.advertised_host = Some("broker-1.internal".into());
        c.validate().unwrap();
        c.kafka.advertised_port = Some(0);
        assert_eq!(invalid_key(&c), "kafka.advertised-port");
    }

    #[test]
    fn node_and_peer_id_rules() {
        let mut c = Config { node_id: 0, ..Config::default() };
        assert_eq!(invalid_key(&c), "node-id");
        c.node_id = u64::from(u32::MAX);
        assert_eq!(invalid_key(&c), "node-id");

        let peer = |id: u64, addr: &str| PeerConfig { id, addr: addr.into() };
        let mut c = Config::default();
        c.raft.peers = vec![peer(1, "127.0.0.1:9193")];
        assert_eq!(invalid_key(&c), "raft.peers[0].id");
        c.raft.peers = vec![peer(2, "127.0.0.1:9193"), peer(2, "127.0.0.1:9194")];
        assert_eq!(invalid_key(&c), "raft.peers[1].id");
        c.raft.peers = vec![peer(2, "127.0.0.1:9193"), peer(0, "127.0.0.1:9194")];
        assert_eq!(invalid_key(&c), "raft.peers[1].id");
        c.raft.peers = vec![peer(2, "127.0.0.1")];
        assert_eq!(invalid_key(&c), "raft.peers[0].addr");
        c.raft.peers = vec![peer(2, "127.0.0.1:9193"), peer(3, "127.0.0.1:9193")];
        assert_eq!(invalid_key(&c), "raft.peers[1].addr");
        c.raft.peers = vec![peer(2, "127.0.0.1:9192")];
        assert_eq!(invalid_key(&c), "raft.peers[0].addr");
        c.raft.peers = vec![peer(2, "node2.local:9193"), peer(3, "[::1]:9194")];
        c.validate().unwrap();
    }

    #[test]
    fn peer_list_parsing() {
        let peers = parse_peer_list(" 1@127.0.0.1:9192 ,2@host-b:9193,, ").unwrap();
        assert_eq!(peers.len(), 2);
        assert_eq!(peers[0].to_string(), "1@127.0.0.1:9192");
        assert_eq!(peers[1].addr, "host-b:9193");
        assert_eq!(parse_peer_list("").unwrap(), vec![]);
        for bad in ["127.0.0.1:9192", "x@127.0.0.1:9192", "1@127.0.0.1", "1@:9192", "1@h:0"] {
            assert!(parse_peer_list(bad).is_err(), "{bad}");
        }
    }

    // --- tick derivation ------------------------------------------------

    #[test]
    fn ticks_for_default_timing() {
        let t = derive_ticks(ms(50), ms(150), ms(3000)).unwrap();
        assert_eq!((t.heartbeat_tick, t.election_tick), (3, 60));
        assert_eq!(t.tick, ms(50));
        assert_eq!(Config::default().raft_ticks().unwrap(), t);
        assert_eq!((t.min_election_tick(), t.max_election_tick()), (60, 120));
        assert_eq!(t.election_timeout_range(), (ms(3000), ms(6000)));
        assert_eq!(t.heartbeat_period(), ms(150));
    }

    #[test]
    fn ticks_for_fast_loop_keep_wall_clock_timeout() {
        let t = derive_ticks(ms(10), ms(150), ms(3000)).unwrap();
        assert_eq!((t.heartbeat_tick, t.election_tick), (15, 300));
        // The historical bug: a 10 ms loop given election_tick = 20 elected
        // after 200 ms instead of 3 s.
        assert_ne!(t.election_tick, 20);
        assert_eq!(t.election_timeout_range().0, ms(3000));
    }

    #[test]
    fn ticks_round_to_nearest() {
        let t = derive_ticks(ms(40), ms(150), ms(1000)).unwrap();
        assert_eq!((t.heartbeat_tick, t.election_tick), (4, 25)); // 3.75 -> 4
        let t = derive_ticks(ms(40), ms(130), ms(1010)).unwrap();
        assert_eq!((t.heartbeat_tick, t.election_tick), (3, 25)); // 3.25 -> 3, 25.25 -> 25
    }

    #[test]
    fn ticks_track_configured_durations_within_half_a_tick() {
        for tick_ms in [1u64, 5, 10, 20, 50, 100] {
            for (hb, el) in [(150u64, 3000u64), (100, 1000), (300, 10_000)] {
                if tick_ms > hb {
                    continue;
                }
                let t = derive_ticks(ms(tick_ms), ms(hb), ms(el)).unwrap();
                let real_el = tick_ms * t.election_tick as u64;
                let real_hb = tick_ms * t.heartbeat_tick as u64;
                assert!(real_el.abs_diff(el) * 2 <= tick_ms, "{tick_ms} {el}");
                assert!(real_hb.abs_diff(hb) * 2 <= tick_ms, "{tick_ms} {hb}");
                assert!(t.heartbeat_tick >= 1 && t.election_tick > t.heartbeat_tick);
            }
        }
    }

    #[test]
    fn tick_derivation_errors() {
        assert!(matches!(
            derive_ticks(Duration::ZERO, ms(150), ms(3000)),
            Err(ConfigError::Invalid { ref key, .. }) if key == "raft.tick-interval"
        ));
        assert!(matches!(
            derive_ticks(ms(100), ms(40), ms(3000)),
            Err(ConfigError::Invalid { ref key, .. }) if key == "raft.heartbeat-interval"
        ));
        assert!(matches!(
            derive_ticks(ms(100), ms(150), ms(200)),
            Err(ConfigError::Invalid { ref key, .. }) if key == "raft.election-timeout"
        ));
    }

    // --- describe ---------------------------------------------------------

    #[test]
    fn describe_shows_effective_values() {
        let mut c = Config::default();
        c.kafka.listen = "0.0.0.0:9092".into();
        let text = c.describe();
        for needle in [
            "node-id = 1",
            "[kafka]",
            "listen = \"0.0.0.0:9092\"",
            "advertised-host = \"127.0.0.1\"",
            "advertised-port = 9092",
            "tick-interval = \"50ms\"",
            "election-timeout = \"3s\"",
            "heartbeat-tick = 3, election-tick = 60",
            "retention = \"7days\"",
            "retention-bytes = -1",
            "fsync = \"always\"",
            "retention-check-interval = \"1m\"",
            "# listen = (disabled)",
            "apply-delay = \"0s\"",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
    }

    #[test]
    fn describe_round_trips_through_load() {
        let mut c = Config { node_id: 2, data_dir: PathBuf::from("dir with \"quotes\""), ..Config::default() };
        c.raft.peers = vec![
            PeerConfig { id: 1, addr: "127.0.0.1:9192".into() },
            PeerConfig { id: 3, addr: "127.0.0.1:9194".into() },
        ];
        c.raft.listen = "127.0.0.1:9193".into();
        c.kafka.listen = "127.0.0.1:9093".into();
        c.topics.retention = None;
        c.topics.retention_bytes = Some(10_000);
        c.metrics.listen = Some("127.0.0.1:9300".into());
        c.storage.fsync = FsyncPolicy::Interval;
        let text = c.describe();
        let back = from_toml(&text).unwrap();
        back.validate().unwrap();
        assert_eq!(back.describe(), text);
        assert_eq!(back.raft, c.raft);
        assert_eq!(back.topics, c.topics);
        assert_eq!(back.data_dir, c.data_dir);
    }

    #[test]
    fn serialize_round_trips_through_the_config_crate() {
        let mut c = Config::default();
        c.topics.retention = None;
        c.topics.retention_bytes = Some(77);
        c.kafka.advertised_host = Some("h".into());
        c.raft.peers = vec![PeerConfig { id: 2, addr: "127.0.0.1:9193".into() }];
        for original in [Config::default(), c] {
            let raw = config::Config::try_from(&original).expect("serialize");
            let back: Config = raw.try_deserialize().expect("deserialize");
            assert_eq!(back, original);
        }
    }

    // --- shipped templates ----------------------------------------------

    fn template(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
    }

    #[test]
    fn standalone_template_matches_defaults() {
        let c = Config::load_layers(Some(&template("config/standalone.toml")), NO_ENV).unwrap();
        c.validate().unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn cluster_templates_load_and_validate() {
        let mut kafka_listens = Vec::new();
        for n in 1..=3u64 {
            let path = template(&format!("config/cluster-3node/node{n}.toml"));
            let c = Config::load_layers(Some(&path), NO_ENV).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            c.validate().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(c.node_id, n);
            assert_eq!(c.data_dir, PathBuf::from(format!("./data/node{n}")));
            assert_eq!(c.topics.default_replication_factor, 3);
            assert_eq!(c.kafka.listen, format!("127.0.0.1:{}", 9091 + n));
            assert_eq!(c.raft.listen, format!("127.0.0.1:{}", 9191 + n));
            let mut ids: Vec<u64> = c.raft.peers.iter().map(|p| p.id).collect();
            ids.sort_unstable();
            let expected: Vec<u64> = (1..=3).filter(|&i| i != n).collect();
            assert_eq!(ids, expected);
            for p in &c.raft.peers {
                assert_eq!(p.addr, format!("127.0.0.1:{}", 9191 + p.id));
            }
            kafka_listens.push(c.kafka.listen.clone());
        }
        kafka_listens.dedup();
        assert_eq!(kafka_listens.len(), 3);
    }
}
