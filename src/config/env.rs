//! Environment overrides: collecting the process's `CHRONIK_*` variables and
//! rewriting `CHRONIK_SECTION__KEY` names into the kebab-case keys of the
//! configuration tree (`CHRONIK_RAFT__ELECTION_TIMEOUT` sets
//! `raft.election-timeout`), for [`Config::load_layers`](super::Config::load_layers).

use super::{ConfigError, ENV_PREFIX, ENV_SEPARATOR};

/// The process environment's `CHRONIK_*` variables.
pub(super) fn process_env() -> Result<Vec<(String, String)>, ConfigError> {
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
pub(super) fn normalize_env<I, K, V>(env: I) -> Vec<(String, String, String)>
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

#[cfg(test)]
mod tests {
    use crate::config::test_support::*;
    use crate::config::{Config, FsyncPolicy, LogLevel};
    use std::path::PathBuf;

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
                "config::env::tests::load_reads_the_process_environment_child",
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
}
