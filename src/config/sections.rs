//! The configuration tree's root and node-level sections: [`Config`] itself
//! (`node-id`, `data-dir`, `log-level`), `[kafka]` (the client listener and
//! what is advertised), `[raft]` (peer listener, timing, peers) with their
//! serde defaults, and the address syntax checks those sections share.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::authorizer_section::AuthorizerConfig;
use super::data_sections::{
    AdminConfig, CleanerConfig, FaultsConfig, MetaConfig, OffsetsConfig, StorageConfig, TopicsConfig,
};
use super::durations::{derive_ticks, duration_str, RaftTicks};
use super::ConfigError;

/// Serde helper for an optional string where an empty string or `"none"`
/// means `None` (useful from the environment, where a key cannot be removed).
pub(super) mod opt_string {
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
    /// Kafka's `broker.rack`: the rack (or zone) of this node, registered in `__meta`, returned
    /// by Metadata, and used to spread each partition's replicas over racks. Default: none.
    #[serde(deserialize_with = "opt_string::deserialize", skip_serializing_if = "Option::is_none")]
    pub rack: Option<String>,
    /// The Kafka protocol listener.
    pub kafka: KafkaConfig,
    /// Raft replication (peer traffic, timing, membership).
    pub raft: RaftConfig,
    /// Topic defaults and retention.
    pub topics: TopicsConfig,
    /// Local storage behaviour.
    pub storage: StorageConfig,
    /// Consumer group bounds (Kafka's `group.*`).
    pub groups: super::GroupsConfig,
    /// The log cleaner (compaction) and its topic defaults.
    pub cleaner: CleanerConfig,
    /// Snapshots of the `__meta` group.
    pub meta: MetaConfig,
    /// Committed-offset expiry.
    pub offsets: OffsetsConfig,
    /// The transaction coordinator (Kafka's `transaction.*`).
    pub transactions: super::TransactionsConfig,
    /// The automatic leader balancer (Kafka's `auto.leader.rebalance.enable`, `leader.imbalance.*`).
    pub leaders: super::LeadersConfig,
    /// The admin HTTP listener (`/metrics`).
    pub admin: AdminConfig,
    /// ACL checks (off by default).
    pub authorizer: AuthorizerConfig,
    /// Test-only fault injection.
    pub faults: FaultsConfig,
    /// TLS for the SSL and SASL_SSL listeners.
    pub tls: super::TlsConfig,
    /// SASL for the SASL_PLAINTEXT and SASL_SSL listeners.
    pub sasl: super::SaslConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            node_id: 1,
            data_dir: PathBuf::from("./data"),
            log_level: LogLevel::default(),
            rack: None,
            kafka: KafkaConfig::default(),
            raft: RaftConfig::default(),
            topics: TopicsConfig::default(),
            storage: StorageConfig::default(),
            groups: super::GroupsConfig::default(),
            cleaner: CleanerConfig::default(),
            meta: MetaConfig::default(),
            offsets: OffsetsConfig::default(),
            transactions: super::TransactionsConfig::default(),
            leaders: super::LeadersConfig::default(),
            admin: AdminConfig::default(),
            authorizer: AuthorizerConfig::default(),
            faults: FaultsConfig::default(),
            tls: super::TlsConfig::default(),
            sasl: super::SaslConfig::default(),
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
    /// Kafka's `listeners`: `NAME://host:port` each; empty serves one PLAINTEXT listener on
    /// `listen`. Default: `[]`.
    pub listeners: Vec<String>,
    /// Kafka's `advertised.listeners`: `NAME://host:port` for listeners whose address clients
    /// must be told differently. Default: `[]`.
    pub advertised_listeners: Vec<String>,
    /// Kafka's `listener.security.protocol.map`: listener name → protocol, for listeners not
    /// named after their protocol. Default: `{}`.
    pub listener_security_protocol_map: std::collections::BTreeMap<String, String>,
    /// Kafka's `connections.max.reauth.ms`: a SASL session must re-authenticate within this
    /// many milliseconds (KIP-368); `0` never expires. Default: `0`.
    pub connections_max_reauth_ms: u64,
    /// Kafka's `queued.max.request.bytes`: the bytes of client requests the node holds at once,
    /// over all connections; connections wait before reading more while it is spent. 0 or less:
    /// unbounded (Kafka's default, -1). Default: `268435456` (256 MiB).
    pub queued_max_request_bytes: i64,
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
            listeners: Vec::new(),
            advertised_listeners: Vec::new(),
            listener_security_protocol_map: std::collections::BTreeMap::new(),
            connections_max_reauth_ms: 0,
            queued_max_request_bytes: 268_435_456,
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

/// The most poller threads `raft.threads` may ask for.
pub const MAX_RAFT_THREADS: u32 = 256;

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
    /// Idle partition groups go quiet (stop ticking and heartbeating). Default: `true`.
    pub hibernate: bool,
    /// On SIGTERM or SIGINT, how long the node may spend handing the leadership of its groups
    /// to live voters before it stops (Kafka's controlled shutdown); `"0s"`: stop at once.
    /// Default: `"5s"`.
    #[serde(with = "duration_str")]
    pub controlled_shutdown_timeout: Duration,
    /// The OS niceness (Linux `setpriority`, 0..=19) of the thread that replays a partition's
    /// retained log when the node starts, so that the replay takes the CPU the groups already
    /// running (ticks, heartbeats) leave; `0`: the default priority. Default: `10`.
    pub replay_nice: i32,
    /// Maximum in-flight append messages per follower. Default: `256`.
    pub max_inflight_msgs: usize,
    /// Maximum bytes of entries per append message. Default: `1048576`.
    pub max_size_per_msg: u64,
    /// Most bytes of one chunk of a snapshot's segment files sent to a follower. Default:
    /// `1048576`.
    pub snapshot_chunk_bytes: u64,
    /// Poller threads that run the partition groups (each group always on the same one);
    /// `0`: one per available core. Default: `0`.
    pub threads: u32,
    /// The other nodes of the cluster (never this node). Default: none.
    #[serde(deserialize_with = "peers_de::deserialize")]
    pub peers: Vec<PeerConfig>,
    /// Join a running cluster through any member's Raft address, `HOST:PORT` (`--join`): the
    /// first start of a node with an empty data directory asks that member to add it; later
    /// starts find the cluster from the data directory. Default: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub join: Option<String>,
    /// Mutual TLS between nodes: this node's PEM certificate (CN and DNS SAN `node-<id>`).
    /// Peer TLS is on when the three `tls-*` files are set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert_file: Option<PathBuf>,
    /// This node's PEM private key for peer TLS. Never logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key_file: Option<PathBuf>,
    /// The PEM CA bundle every node's certificate must chain to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ca_file: Option<PathBuf>,
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
            hibernate: true,
            controlled_shutdown_timeout: Duration::from_secs(5),
            replay_nice: 10,
            max_inflight_msgs: 256,
            max_size_per_msg: 1_048_576,
            snapshot_chunk_bytes: 1_048_576,
            threads: 0,
            peers: Vec::new(),
            join: None,
            tls_cert_file: None,
            tls_key_file: None,
            tls_ca_file: None,
        }
    }
}

impl RaftConfig {
    /// `listen` as a socket address.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        parse_socket_addr("raft.listen", &self.listen)
    }

    /// The number of poller threads: `threads`, or one per available core when it is 0.
    pub fn poller_threads(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(MAX_RAFT_THREADS as usize),
            n => n as usize,
        }
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

pub(super) fn parse_socket_addr(key: &str, value: &str) -> Result<SocketAddr, ConfigError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::*;

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
}
