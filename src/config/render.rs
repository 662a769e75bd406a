//! Rendering: the effective configuration as TOML text ([`Config::describe`]
//! and `Display`), with derived values filled in and derived tick counts as
//! comments, for the start-up log. The output parses back as a file.

use std::fmt;
use std::time::Duration;

use super::durations::fmt_duration;
use super::Config;

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
        if let Some(rack) = &self.rack {
            writeln!(f, "rack = {}", toml_str(rack))?;
        }

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
        let list = |v: &[String]| v.iter().map(|s| toml_str(s)).collect::<Vec<_>>().join(", ");
        writeln!(f, "listeners = [{}]", list(&k.listeners))?;
        writeln!(f, "advertised-listeners = [{}]", list(&k.advertised_listeners))?;
        let map: Vec<String> = k
            .listener_security_protocol_map
            .iter()
            .map(|(n, p)| format!("{} = {}", toml_str(n), toml_str(p)))
            .collect();
        writeln!(f, "listener-security-protocol-map = {{ {} }}", map.join(", "))?;
        writeln!(f, "connections-max-reauth-ms = {}", k.connections_max_reauth_ms)?;
        writeln!(f, "queued-max-request-bytes = {}", k.queued_max_request_bytes)?;

        let r = &self.raft;
        writeln!(f, "\n[raft]")?;
        writeln!(f, "listen = {}", toml_str(&r.listen))?;
        writeln!(f, "tick-interval = {}", toml_duration(r.tick_interval))?;
        writeln!(f, "heartbeat-interval = {}", toml_duration(r.heartbeat_interval))?;
        writeln!(f, "election-timeout = {}", toml_duration(r.election_timeout))?;
        writeln!(f, "pre-vote = {}", r.pre_vote)?;
        writeln!(f, "check-quorum = {}", r.check_quorum)?;
        writeln!(f, "hibernate = {}", r.hibernate)?;
        writeln!(f, "controlled-shutdown-timeout = {}", toml_duration(r.controlled_shutdown_timeout))?;
        writeln!(f, "replay-nice = {}", r.replay_nice)?;
        writeln!(f, "max-inflight-msgs = {}", r.max_inflight_msgs)?;
        writeln!(f, "max-size-per-msg = {}", r.max_size_per_msg)?;
        writeln!(f, "snapshot-chunk-bytes = {}", r.snapshot_chunk_bytes)?;
        writeln!(f, "threads = {}", r.threads)?;
        let peers: Vec<String> =
            r.peers.iter().map(|p| format!("{{ id = {}, addr = {} }}", p.id, toml_str(&p.addr))).collect();
        writeln!(f, "peers = [{}]", peers.join(", "))?;
        for (key, v) in
            [("tls-cert-file", &r.tls_cert_file), ("tls-key-file", &r.tls_key_file), ("tls-ca-file", &r.tls_ca_file)]
        {
            if let Some(p) = v {
                writeln!(f, "{key} = {}", toml_str(&p.to_string_lossy()))?;
            }
        }
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

        let g = &self.groups;
        writeln!(f, "\n[groups]")?;
        writeln!(f, "min-session-timeout = {}", toml_duration(g.min_session_timeout))?;
        writeln!(f, "max-session-timeout = {}", toml_duration(g.max_session_timeout))?;
        writeln!(f, "initial-rebalance-delay = {}", toml_duration(g.initial_rebalance_delay))?;
        writeln!(f, "max-size = {}", g.max_size)?;

        let s = &self.storage;
        writeln!(f, "\n[storage]")?;
        writeln!(f, "fsync = {}", toml_str(s.fsync.as_str()))?;
        writeln!(f, "flush-interval = {}", toml_duration(s.flush_interval))?;
        writeln!(f, "index-interval-bytes = {}", s.index_interval_bytes)?;
        writeln!(f, "retention-check-interval = {}", toml_duration(s.retention_check_interval))?;

        let c = &self.cleaner;
        writeln!(f, "\n[cleaner]")?;
        writeln!(f, "enabled = {}", c.enabled)?;
        writeln!(f, "threads = {}", c.threads)?;
        match c.io_max_bytes_per_second {
            Some(n) => writeln!(f, "io-max-bytes-per-second = {n}")?,
            None => writeln!(f, "io-max-bytes-per-second = -1")?,
        }
        writeln!(f, "dedupe-buffer-size = {}", c.dedupe_buffer_size)?;
        writeln!(f, "nice = {}", c.nice)?;
        writeln!(f, "backoff = {}", toml_duration(c.backoff))?;
        writeln!(f, "min-cleanable-ratio = {:?}", c.min_cleanable_ratio)?;
        writeln!(f, "delete-retention = {}", toml_duration(c.delete_retention))?;
        writeln!(f, "min-compaction-lag = {}", toml_duration(c.min_compaction_lag))?;
        match c.max_compaction_lag {
            Some(d) => writeln!(f, "max-compaction-lag = {}", toml_duration(d))?,
            None => writeln!(f, "max-compaction-lag = \"unlimited\"")?,
        }

        let m = &self.meta;
        writeln!(f, "\n[meta]")?;
        writeln!(f, "snapshot-entries = {}", m.snapshot_entries)?;
        writeln!(f, "snapshot-bytes = {}", m.snapshot_bytes)?;
        writeln!(f, "segment-bytes = {}", m.segment_bytes)?;

        writeln!(f, "\n[offsets]")?;
        writeln!(f, "retention = {}", toml_duration(self.offsets.retention))?;
        writeln!(f, "retention-check-interval = {}", toml_duration(self.offsets.retention_check_interval))?;

        let l = &self.leaders;
        writeln!(f, "\n[leaders]")?;
        writeln!(f, "auto-rebalance-enable = {}", l.auto_rebalance_enable)?;
        writeln!(f, "imbalance-check-interval = {}", toml_duration(l.imbalance_check_interval))?;
        writeln!(f, "imbalance-per-broker-percentage = {}", l.imbalance_per_broker_percentage)?;

        let x = &self.transactions;
        writeln!(f, "\n[transactions]")?;
        writeln!(f, "max-timeout = {}", toml_duration(x.max_timeout))?;
        writeln!(f, "id-expiration = {}", toml_duration(x.id_expiration))?;
        writeln!(f, "abort-timed-out-interval = {}", toml_duration(x.abort_timed_out_interval))?;
        writeln!(f, "remove-expired-interval = {}", toml_duration(x.remove_expired_interval))?;
        writeln!(f, "partition-verification = {}", x.partition_verification)?;

        writeln!(f, "\n[admin]")?;
        writeln!(f, "enabled = {}", self.admin.enabled)?;
        writeln!(f, "listen = {}", toml_str(&self.admin.listen))?;

        let t = &self.tls;
        writeln!(f, "\n[tls]")?;
        for (key, v) in [("cert-file", &t.cert_file), ("key-file", &t.key_file), ("ca-file", &t.ca_file)] {
            if let Some(p) = v {
                writeln!(f, "{key} = {}", toml_str(&p.to_string_lossy()))?;
            }
        }
        let auth = match t.client_auth {
            super::ClientAuth::None => "none",
            super::ClientAuth::Requested => "requested",
            super::ClientAuth::Required => "required",
        };
        writeln!(f, "client-auth = {}", toml_str(auth))?;
        writeln!(f, "\n[sasl]")?;
        writeln!(f, "enabled-mechanisms = [{}]", list(&self.sasl.enabled_mechanisms))?;
        // Passwords are never rendered: the users are listed, their passwords elided.
        let users: Vec<String> =
            self.sasl.plain_users.keys().map(|u| format!("{} = \"[hidden]\"", toml_str(u))).collect();
        writeln!(f, "plain-users = {{ {} }}", users.join(", "))?;
        let a = &self.authorizer;
        writeln!(f, "\n[authorizer]")?;
        writeln!(f, "enabled = {}", a.enabled)?;
        let users: Vec<String> = a.super_users.iter().map(|u| toml_str(u)).collect();
        writeln!(f, "super-users = [{}]", users.join(", "))?;
        writeln!(f, "allow-everyone-if-no-acl-found = {}", a.allow_everyone_if_no_acl_found)?;

        writeln!(f, "\n[faults]")?;
        writeln!(f, "apply-delay = {}", toml_duration(self.faults.apply_delay))?;
        writeln!(f, "write-delay = {}", toml_duration(self.faults.write_delay))?;
        writeln!(f, "replay-delay = {}", toml_duration(self.faults.replay_delay))?;
        write!(f, "runtime = {}", self.faults.runtime)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::*;
    use crate::config::{FsyncPolicy, PeerConfig};
    use std::path::PathBuf;

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
            "[admin]\nenabled = true\nlisten = \"127.0.0.1:9300\"",
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
        c.admin.listen = "127.0.0.1:9301".into();
        c.admin.enabled = false;
        c.storage.fsync = FsyncPolicy::Interval;
        c.cleaner.io_max_bytes_per_second = Some(1 << 20);
        c.cleaner.max_compaction_lag = Some(std::time::Duration::from_secs(3600));
        c.cleaner.min_cleanable_ratio = 0.01;
        let text = c.describe();
        let back = from_toml(&text).unwrap();
        back.validate().unwrap();
        assert_eq!(back.describe(), text);
        assert_eq!(back.raft, c.raft);
        assert_eq!(back.topics, c.topics);
        assert_eq!(back.cleaner, c.cleaner);
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
}
