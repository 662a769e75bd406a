//! Validation: [`Config::validate`] checks every value and the cross-field
//! rules (listeners differ, election timeout well above the heartbeat,
//! replication factor within the node count, peers distinct from this node),
//! returning the first problem with the key that names it.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::durations::{fmt_duration, RaftTicks};
use super::sections::{check_host, check_host_port};
use super::{Config, ConfigError, MIN_ELECTION_HEARTBEAT_RATIO, MIN_META_SEGMENT_BYTES, MIN_SEGMENT_BYTES};

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
        self.cleaner.validate()?;

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
        let pool = self.kafka.queued_max_request_bytes;
        if pool > 0 && (pool as u64) < self.kafka.max_request_size {
            return Err(ConfigError::invalid(
                "kafka.queued-max-request-bytes",
                format!(
                    "({pool}) must be at least kafka.max-request-size ({}), or 0 or less for no bound",
                    self.kafka.max_request_size
                ),
            ));
        }
        if self.kafka.max_connections == 0 {
            return Err(ConfigError::invalid("kafka.max-connections", "must be at least 1"));
        }

        super::security_sections::validate_security(&self.kafka, &self.tls, &self.sasl, &self.raft)?;
        self.authorizer.validate()?;

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
        if !(0..=19).contains(&r.replay_nice) {
            return Err(ConfigError::invalid("raft.replay-nice", "must be between 0 and 19"));
        }
        if r.max_inflight_msgs == 0 {
            return Err(ConfigError::invalid("raft.max-inflight-msgs", "must be at least 1"));
        }
        if r.max_size_per_msg == 0 {
            return Err(ConfigError::invalid("raft.max-size-per-msg", "must be at least 1 byte"));
        }
        if r.threads > super::sections::MAX_RAFT_THREADS {
            return Err(ConfigError::invalid(
                "raft.threads",
                format!("must be between 0 (one per core) and {}", super::sections::MAX_RAFT_THREADS),
            ));
        }
        let max_chunk = crate::peer::actor::MAX_CHUNK_FRAME as u64;
        if !(128..=max_chunk).contains(&r.snapshot_chunk_bytes) {
            return Err(ConfigError::invalid(
                "raft.snapshot-chunk-bytes",
                format!("must be between 128 and {max_chunk} bytes (half the peer frame limit)"),
            ));
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
        // A node that joins a cluster cannot know its size: the cluster's own nodes check it.
        if self.raft.join.is_none() && usize::from(t.default_replication_factor) > self.node_count() {
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

        self.groups.validate()?;
        self.transactions.validate()?;
        self.leaders.validate()?;

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

        // [meta]
        let m = &self.meta;
        if m.snapshot_entries == 0 {
            return Err(ConfigError::invalid("meta.snapshot-entries", "must be at least 1"));
        }
        if m.snapshot_bytes < 1024 {
            return Err(ConfigError::invalid("meta.snapshot-bytes", "must be at least 1024 bytes"));
        }
        if m.max_voters == 0 {
            return Err(ConfigError::invalid("meta.max-voters", "must be at least 1"));
        }
        if let Some(join) = &self.raft.join {
            super::check_host_port(join.trim()).map_err(|e| ConfigError::invalid("raft.join", e))?;
        }
        if m.segment_bytes < MIN_META_SEGMENT_BYTES || m.segment_bytes > max_i32 {
            return Err(ConfigError::invalid(
                "meta.segment-bytes",
                format!("is {}; it must be between {MIN_META_SEGMENT_BYTES} and {max_i32} bytes", m.segment_bytes),
            ));
        }

        // [offsets]
        if self.offsets.retention.as_millis() < 60_000 {
            return Err(ConfigError::invalid(
                "offsets.retention",
                "must be at least 1 minute (Kafka's offsets.retention.minutes >= 1)",
            ));
        }
        if self.offsets.retention_check_interval.is_zero() {
            return Err(ConfigError::invalid("offsets.retention-check-interval", "must be greater than zero"));
        }

        // [admin]
        let admin_listen = self.admin.listen_addr()?;
        if self.admin.enabled
            && admin_listen.port() != 0
            && (admin_listen == kafka_listen || admin_listen == raft_listen)
        {
            return Err(ConfigError::invalid(
                "admin.listen",
                format!("({admin_listen}) must differ from kafka.listen and raft.listen"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::*;
    use crate::config::PeerConfig;

    // --- validation -----------------------------------------------------

    #[test]
    fn snapshot_chunks_fit_in_a_peer_frame() {
        let mut c = Config::default();
        assert_eq!(c.raft.snapshot_chunk_bytes, 1 << 20);
        c.raft.snapshot_chunk_bytes = 127;
        assert_eq!(invalid_key(&c), "raft.snapshot-chunk-bytes");
        c.raft.snapshot_chunk_bytes = crate::peer::frame::MAX_FRAME as u64;
        assert_eq!(invalid_key(&c), "raft.snapshot-chunk-bytes");
        c.raft.snapshot_chunk_bytes = crate::peer::actor::MAX_CHUNK_FRAME as u64;
        c.validate().unwrap();
    }

    #[test]
    fn raft_threads_are_bounded_and_zero_means_one_per_core() {
        let mut c = Config::default();
        assert_eq!(c.raft.threads, 0);
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        assert_eq!(c.raft.poller_threads(), cores.min(256));
        c.raft.threads = 257;
        assert_eq!(invalid_key(&c), "raft.threads");
        c.raft.threads = 256;
        c.validate().unwrap();
        assert_eq!(c.raft.poller_threads(), 256);
        c.raft.threads = 1;
        c.validate().unwrap();
        assert_eq!(c.raft.poller_threads(), 1);
        let c = from_toml("[raft]\nthreads = 3\n").unwrap();
        assert_eq!(c.raft.poller_threads(), 3);
    }

    #[test]
    fn replay_nice_is_a_niceness() {
        let mut c = Config::default();
        assert_eq!(c.raft.replay_nice, 10);
        for bad in [-1, 20] {
            c.raft.replay_nice = bad;
            assert_eq!(invalid_key(&c), "raft.replay-nice");
        }
        for good in [0, 19] {
            c.raft.replay_nice = good;
            c.validate().unwrap();
        }
        assert_eq!(from_toml("[raft]\nreplay-nice = 0\n").unwrap().raft.replay_nice, 0);
    }

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
        c.topics.segment_bytes = 1_048_575;
        assert_eq!(invalid_key(&c), "topics.segment-bytes");
        c.topics.segment_bytes = 1_048_576;
        c.validate().unwrap();
        c.meta.segment_bytes = 1023;
        assert_eq!(invalid_key(&c), "meta.segment-bytes");
        c.meta.segment_bytes = 1024;
        c.meta.max_voters = 0;
        assert_eq!(invalid_key(&c), "meta.max-voters");
        c.meta.max_voters = 3;
        c.raft.join = Some("no-port".into());
        assert_eq!(invalid_key(&c), "raft.join");
        c.raft.join = None;
        c.meta.segment_bytes = 1024;
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
        // The request pool holds at least one request of the largest size, or is unbounded.
        let mut c = Config::default();
        c.kafka.queued_max_request_bytes = c.kafka.max_request_size as i64 - 1;
        assert_eq!(invalid_key(&c), "kafka.queued-max-request-bytes");
        for ok in [c.kafka.max_request_size as i64, 0, -1] {
            c.kafka.queued_max_request_bytes = ok;
            c.validate().unwrap();
        }
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
        c.admin.listen = "nowhere".into();
        assert_eq!(invalid_key(&c), "admin.listen");
        c.admin.listen = "127.0.0.1:0".into();
        c.validate().unwrap();
        c.admin.listen = c.kafka.listen.clone();
        assert_eq!(invalid_key(&c), "admin.listen");
        c.admin.enabled = false;
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
}
