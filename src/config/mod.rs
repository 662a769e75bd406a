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
//!
//! This file does the loading; the rest is split by concern: `sections` and
//! `data_sections` (the section structs and their defaults), `durations`
//! (humantime helpers and raft tick derivation), `env` (`CHRONIK_SECTION__KEY`
//! overrides), `validate` (cross-field rules) and `render` (the effective
//! configuration as TOML text).

use std::path::{Path, PathBuf};

mod authorizer_section;
mod data_sections;
mod durations;
mod env;
mod groups_section;
mod leaders_section;
mod render;
mod sections;
mod security_sections;
#[cfg(test)]
mod test_support;
mod transactions_section;
mod validate;

pub use authorizer_section::AuthorizerConfig;
pub use data_sections::{
    AdminConfig, CleanerConfig, FaultsConfig, FsyncPolicy, MetaConfig, OffsetsConfig, StorageConfig, TopicsConfig,
};
pub use durations::{derive_ticks, duration_str, opt_bytes, opt_duration_str, RaftTicks};
pub use groups_section::GroupsConfig;
pub use leaders_section::LeadersConfig;
pub use sections::{
    check_host, check_host_port, parse_peer_list, Config, KafkaConfig, LogLevel, PeerConfig, RaftConfig,
};
pub use security_sections::{
    parse_listener, ClientAuth, ListenerSpec, SaslConfig, SecurityProtocol, TlsConfig, SUPPORTED_MECHANISMS,
};
pub use transactions_section::TransactionsConfig;

use env::{normalize_env, process_env};

/// Prefix of environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "CHRONIK";
/// Separator between section and key in environment variable names.
pub const ENV_SEPARATOR: &str = "__";
/// Smallest accepted `topics.segment-bytes`: Kafka's floor of `log.segment.bytes` (and of the
/// topic config `segment.bytes`), 1 MiB. Tests roll smaller segments with the topic config
/// `internal.segment.bytes`, as Kafka's do.
pub const MIN_SEGMENT_BYTES: u64 = 1_048_576;
/// Smallest accepted `meta.segment-bytes` (chronik's own key; small so that tests can roll
/// `__meta` segments).
pub const MIN_META_SEGMENT_BYTES: u64 = 1024;
/// `raft.election-timeout` must be at least this many `raft.heartbeat-interval`s.
pub const MIN_ELECTION_HEARTBEAT_RATIO: u32 = 5;

/// The key `[admin] listen` replaced; a source that still sets it gets an error naming
/// `admin.listen` rather than a generic unknown-key error.
const RETIRED_METRICS_LISTEN: &str = "metrics.listen";

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
        if raw.get::<config::Value>(RETIRED_METRICS_LISTEN).is_ok() {
            return Err(ConfigError::Load {
                sources,
                key: Some(RETIRED_METRICS_LISTEN.to_string()),
                message: "is no longer read: /metrics is served on the admin listener; set `admin.listen` \
                          ([admin] listen = \"IP:PORT\", or CHRONIK_ADMIN__LISTEN) instead"
                    .to_string(),
            });
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::*;
    use std::path::Path;
    use std::time::Duration;

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
        assert!(c.admin.enabled);
        assert_eq!(c.admin.listen, "127.0.0.1:9300");
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
            segment-bytes = 2097152
            [storage]
            fsync = "interval"
            flush-interval = "250ms"
            [admin]
            enabled = false
            listen = "127.0.0.1:9301"
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
        assert_eq!(c.topics.segment_bytes, 2_097_152);
        assert_eq!(c.storage.fsync, FsyncPolicy::Interval);
        assert_eq!(c.storage.flush_interval, ms(250));
        assert!(!c.admin.enabled);
        assert_eq!(c.admin.listen, "127.0.0.1:9301");
        assert_eq!(c.faults.apply_delay, ms(20));
        c.validate().unwrap();
    }

    #[test]
    fn retired_metrics_listen_names_admin_listen() {
        let err = from_toml("[metrics]\nlisten = \"127.0.0.1:9300\"\n").unwrap_err();
        let msg = err.to_string();
        assert!(matches!(&err, ConfigError::Load { key: Some(k), .. } if k == "metrics.listen"), "{err:?}");
        assert!(msg.contains("admin.listen"), "{msg}");
        let msg = from_env(&[("CHRONIK_METRICS__LISTEN", "127.0.0.1:9300")]).unwrap_err().to_string();
        assert!(msg.contains("admin.listen") && msg.contains("CHRONIK_METRICS__LISTEN"), "{msg}");
        // Any other key of the old section is an ordinary unknown key.
        assert!(from_toml("[metrics]\nport = 1\n").is_err());
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
