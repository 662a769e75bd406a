//! The `chronik-server` command line: parsing arguments into a [`Command`]
//! (clap derive), and layering the flags of the server subcommands on top of
//! the file/environment configuration from `crate::config`, so that the order
//! of precedence is defaults < TOML file < `CHRONIK_*` environment < flags.
//!
//! ```text
//! chronik-server standalone [--config FILE] [--data-dir DIR] [--listen HOST:PORT]
//!                           [--advertised-addr HOST] [--admin-listen HOST:PORT] [--log-level LEVEL]
//! chronik-server raft-cluster [--config FILE] --node-id N --advertised-addr HOST
//!                           [--kafka-port P | --listen HOST:PORT] [--raft-addr HOST:PORT]
//!                           [--data-dir DIR] [--peers "1@host:port,2@host:port,3@host:port"]
//!                           [--admin-listen HOST:PORT] [--log-level LEVEL]
//! chronik-server cluster status --admin HOST:PORT [--json]
//! ```

use std::collections::HashSet;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::config::{check_host, check_host_port, parse_peer_list, Config, ConfigError, LogLevel, PeerConfig};

/// The parsed command line.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    name = "chronik-server",
    version,
    about = "chronik: a Kafka-compatible message broker where every partition is a Raft group.",
    long_about = None,
    subcommand_required = true,
    arg_required_else_help = true,
    after_help = "Settings are layered: built-in defaults, then the --config file, then CHRONIK_* \
                  environment variables (e.g. CHRONIK_RAFT__ELECTION_TIMEOUT=5s), then flags."
)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// A `chronik-server` subcommand.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Run a single-node broker (node id 1, no peers).
    Standalone(StandaloneArgs),
    /// Run one node of a cluster whose partitions are replicated with Raft.
    RaftCluster(RaftClusterArgs),
    /// Inspect a running cluster (client side).
    #[command(subcommand)]
    Cluster(ClusterCommand),
}

/// `chronik-server cluster ...`
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum ClusterCommand {
    /// Print the cluster's nodes, controller and partition leaders.
    Status(ClusterStatusArgs),
    /// Test-only: cut or delay one node's peer traffic (the node needs `faults.runtime = true`).
    Faults(ClusterFaultsArgs),
}

/// Flags of `chronik-server cluster faults`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ClusterFaultsArgs {
    /// Admin API address (`admin.listen`) of the node whose peer traffic changes, as HOST:PORT.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_admin)]
    pub admin: String,
    /// Removed: the Kafka port no longer serves faults; any use fails, pointing to --admin.
    #[arg(long, hide = true, value_parser = removed_bootstrap)]
    pub bootstrap: Option<String>,
    /// Comma-separated peer node ids to cut this node off from, in both directions.
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    pub cut: Vec<u64>,
    /// Comma-separated peer node ids whose traffic is restored.
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    pub heal: Vec<u64>,
    /// Delay every frame to the peers named by --delay-to by this many milliseconds (0 removes it).
    #[arg(long, value_name = "MS")]
    pub delay_ms: Option<u64>,
    /// Comma-separated peer node ids that --delay-ms applies to.
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    pub delay_to: Vec<u64>,
}

/// Flags of `chronik-server standalone`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
#[command(after_help = "Standalone always runs as node-id 1 with no raft peers, whatever the file or \
                  environment say; topics.default-replication-factor must therefore be 1.")]
pub struct StandaloneArgs {
    /// TOML configuration file; every key is optional (see config/standalone.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Directory for partition logs and raft state; overrides `data-dir`.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Address the Kafka listener binds, as IP:PORT; overrides `kafka.listen`.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_listen)]
    pub listen: Option<SocketAddr>,

    /// Host name or IP that clients are told to connect to; overrides `kafka.advertised-host`.
    #[arg(long, value_name = "HOST", value_parser = parse_advertised_host)]
    pub advertised_addr: Option<String>,

    /// Address the admin HTTP listener (/metrics) binds, as IP:PORT; overrides `admin.listen` and enables it.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_listen)]
    pub admin_listen: Option<SocketAddr>,

    /// Log verbosity: trace, debug, info, warn or error; overrides `log-level`.
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<LogLevel>,
}

/// Flags of `chronik-server raft-cluster`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
#[command(after_help = "Without --listen the Kafka listener keeps the host of kafka.listen (127.0.0.1 by \
                  default) and --kafka-port only replaces its port; to accept clients from other \
                  machines pass --listen 0.0.0.0:PORT.\n\
                  --peers names every node of the cluster, this one included: the entry with this \
                  node's id is its raft listen address (unless --raft-addr is given) and the other \
                  entries replace raft.peers.")]
pub struct RaftClusterArgs {
    /// TOML configuration file; every key is optional (see config/cluster-3node/).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// This node's id (1..2147483647), unique in the cluster; overrides `node-id` (required without --config).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=i32::MAX as u64), required_unless_present = "config")]
    pub node_id: Option<u64>,

    /// Host name or IP that clients are told to connect to; sets `kafka.advertised-host` (required without --config).
    #[arg(long, value_name = "HOST", value_parser = parse_advertised_host, required_unless_present = "config")]
    pub advertised_addr: Option<String>,

    /// Port of the Kafka listener (host kept from `kafka.listen`); also the advertised port unless `kafka.advertised-port` is set.
    #[arg(long, value_name = "P", value_parser = clap::value_parser!(u16).range(1..), conflicts_with = "listen")]
    pub kafka_port: Option<u16>,

    /// Full address the Kafka listener binds, as IP:PORT; overrides `kafka.listen`.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_listen)]
    pub listen: Option<SocketAddr>,

    /// Address the raft peer listener binds, as IP:PORT; overrides `raft.listen` and this node's --peers entry.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_listen)]
    pub raft_addr: Option<SocketAddr>,

    /// Directory for partition logs and raft state; overrides `data-dir`.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Every node of the cluster as ID@HOST:PORT (raft address), comma-separated, this node included; replaces `raft.peers`.
    #[arg(long, value_name = "ID@HOST:PORT,...", value_parser = parse_peers_arg)]
    pub peers: Option<PeerList>,

    /// Address the admin HTTP listener (/metrics) binds, as IP:PORT; overrides `admin.listen` and enables it.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_listen)]
    pub admin_listen: Option<SocketAddr>,

    /// Log verbosity: trace, debug, info, warn or error; overrides `log-level`.
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<LogLevel>,
}

/// Flags of `chronik-server cluster status`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ClusterStatusArgs {
    /// Admin API address (`admin.listen`) of any node of the cluster, as HOST:PORT.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_admin)]
    pub admin: String,
    /// Removed: the Kafka port no longer serves status; any use fails, pointing to --admin.
    #[arg(long, hide = true, value_parser = removed_bootstrap)]
    pub bootstrap: Option<String>,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// The nodes given to `--peers`, in command-line order, ids unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerList(pub Vec<PeerConfig>);

fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    s.trim()
        .parse::<SocketAddr>()
        .map_err(|_| format!("{s:?} is not IP:PORT (for example 127.0.0.1:9092, 0.0.0.0:9092 or [::1]:9092)"))
}

fn parse_advertised_host(s: &str) -> Result<String, String> {
    let s = s.trim();
    if let Err(e) = check_host(s) {
        return Err(if s.contains(':') {
            format!("{e}; give a host without a port (the port comes from the Kafka listener or --kafka-port)")
        } else {
            e
        });
    }
    Ok(s.to_string())
}

fn parse_admin(s: &str) -> Result<String, String> {
    let s = s.trim();
    check_host_port(s)?;
    Ok(s.to_string())
}

fn removed_bootstrap(_: &str) -> Result<String, String> {
    Err("--bootstrap was removed: status and faults moved from the Kafka port to the admin API; \
         give --admin HOST:PORT (the node's admin.listen, for example 127.0.0.1:9300)"
        .to_string())
}

fn parse_peers_arg(s: &str) -> Result<PeerList, String> {
    let peers = parse_peer_list(s)?;
    if peers.is_empty() {
        return Err("the list is empty; expected ID@HOST:PORT,ID@HOST:PORT,...".to_string());
    }
    let mut seen = HashSet::new();
    for p in &peers {
        if p.id == 0 {
            return Err(format!("peer {p}: node ids start at 1"));
        }
        if !seen.insert(p.id) {
            return Err(format!("node id {} is listed more than once", p.id));
        }
    }
    Ok(PeerList(peers))
}

/// Parses `args` (the first item is the program name). `--help` and
/// `--version` come back as errors of kind `DisplayHelp` / `DisplayVersion`;
/// call `clap::Error::exit` on any error to print it and exit properly.
pub fn parse_from<I, T>(args: I) -> Result<Command, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    Cli::try_parse_from(args).map(|cli| cli.command)
}

/// Parses the process arguments; on an error (or `--help`) prints clap's
/// message and exits.
pub fn parse() -> Command {
    parse_from(std::env::args_os()).unwrap_or_else(|e| e.exit())
}

impl StandaloneArgs {
    /// Layers these flags on `config`: forces node-id 1 and no peers, then
    /// applies each given flag. Does not validate.
    pub fn apply(&self, config: &mut Config) -> Result<(), ConfigError> {
        config.node_id = 1;
        config.raft.peers.clear();
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(listen) = self.listen {
            config.kafka.listen = listen.to_string();
        }
        if let Some(host) = &self.advertised_addr {
            config.kafka.advertised_host = Some(host.clone());
        }
        if let Some(level) = self.log_level {
            config.log_level = level;
        }
        if let Some(addr) = self.admin_listen {
            config.admin.enabled = true;
            config.admin.listen = addr.to_string();
        }
        Ok(())
    }
}

impl RaftClusterArgs {
    /// Layers these flags on `config`. Does not validate; errors name the
    /// flag at fault.
    pub fn apply(&self, config: &mut Config) -> Result<(), ConfigError> {
        if let Some(id) = self.node_id {
            config.node_id = id;
        }
        if let Some(host) = &self.advertised_addr {
            config.kafka.advertised_host = Some(host.clone());
        }
        let node_id = config.node_id;
        if let Some(listen) = self.listen {
            config.kafka.listen = listen.to_string();
        }
        if let Some(port) = self.kafka_port {
            let mut addr = config.kafka.listen_addr().map_err(|_| {
                ConfigError::invalid(
                    "--kafka-port",
                    format!(
                        "cannot replace the port of kafka.listen {:?}, which is not IP:PORT; pass --listen instead",
                        config.kafka.listen
                    ),
                )
            })?;
            addr.set_port(port);
            config.kafka.listen = addr.to_string();
        }
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(level) = self.log_level {
            config.log_level = level;
        }
        if let Some(addr) = self.admin_listen {
            config.admin.enabled = true;
            config.admin.listen = addr.to_string();
        }
        if let Some(PeerList(peers)) = &self.peers {
            let me = peers.iter().find(|p| p.id == node_id).ok_or_else(|| {
                ConfigError::invalid(
                    "--peers",
                    format!("must list every node including this one, but has no entry for node id {node_id}"),
                )
            })?;
            if self.raft_addr.is_none() {
                let addr: SocketAddr = me.addr.parse().map_err(|_| {
                    ConfigError::invalid(
                        "--peers",
                        format!(
                            "entry {me} for this node is not IP:PORT, so it cannot be bound as the raft listener; pass --raft-addr"
                        ),
                    )
                })?;
                config.raft.listen = addr.to_string();
            }
            config.raft.peers = peers.iter().filter(|p| p.id != node_id).cloned().collect();
        }
        if let Some(addr) = self.raft_addr {
            config.raft.listen = addr.to_string();
        }
        Ok(())
    }
}

impl Command {
    /// The `--config` file, if the subcommand has one and it was given.
    pub fn config_file(&self) -> Option<&Path> {
        match self {
            Command::Standalone(a) => a.config.as_deref(),
            Command::RaftCluster(a) => a.config.as_deref(),
            Command::Cluster(_) => None,
        }
    }

    /// Whether this subcommand runs a server (and so needs a [`Config`]).
    pub fn is_server(&self) -> bool {
        !matches!(self, Command::Cluster(_))
    }

    /// Layers this subcommand's flags on `config` (nothing for client
    /// subcommands). Does not validate.
    pub fn apply(&self, config: &mut Config) -> Result<(), ConfigError> {
        match self {
            Command::Standalone(a) => a.apply(config),
            Command::RaftCluster(a) => a.apply(config),
            Command::Cluster(_) => Ok(()),
        }
    }

    /// The server's effective, validated configuration: defaults, the
    /// `--config` file, `CHRONIK_*` environment variables, then the flags.
    /// `None` for client subcommands.
    pub fn load_config(&self) -> Result<Option<Config>, ConfigError> {
        if !self.is_server() {
            return Ok(None);
        }
        let mut config = Config::load_unvalidated(self.config_file())?;
        self.apply(&mut config)?;
        config.validate()?;
        Ok(Some(config))
    }

    /// [`Command::load_config`] with the environment passed in (see
    /// [`Config::load_layers`]), for tests.
    pub fn load_config_with_env<I, K, V>(&self, env: I) -> Result<Option<Config>, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        if !self.is_server() {
            return Ok(None);
        }
        let mut config = Config::load_layers(self.config_file(), env)?;
        self.apply(&mut config)?;
        config.validate()?;
        Ok(Some(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;
    use clap::CommandFactory;
    use std::io::Write;

    const NO_ENV: [(&str, &str); 0] = [];

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        parse_from(std::iter::once("chronik-server").chain(args.iter().copied()))
    }

    fn ok(args: &[&str]) -> Command {
        parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    fn err_kind(args: &[&str]) -> ErrorKind {
        match parse(args) {
            Ok(c) => panic!("{args:?} parsed as {c:?}"),
            Err(e) => e.kind(),
        }
    }

    fn write_toml(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        f.write_all(text.as_bytes()).expect("write");
        f.flush().expect("flush");
        f
    }

    fn template(rel: &str) -> String {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(rel).display().to_string()
    }

    const PEERS: &str = "1@127.0.0.1:9192,2@127.0.0.1:9193,3@127.0.0.1:9194";

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn standalone_without_flags() {
        let cmd = ok(&["standalone"]);
        let expected = Command::Standalone(StandaloneArgs {
            config: None,
            data_dir: None,
            listen: None,
            advertised_addr: None,
            admin_listen: None,
            log_level: None,
        });
        assert_eq!(cmd, expected);
        assert!(cmd.is_server());
        let c = cmd.load_config_with_env(NO_ENV).unwrap().unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn standalone_with_all_flags() {
        let cmd = ok(&[
            "standalone",
            "--config",
            "x.toml",
            "--data-dir",
            "/tmp/d",
            "--listen",
            "0.0.0.0:19092",
            "--advertised-addr",
            "broker.example",
            "--log-level",
            "debug",
            "--admin-listen",
            "127.0.0.1:0",
        ]);
        let Command::Standalone(a) = &cmd else { panic!("{cmd:?}") };
        assert_eq!(a.config.as_deref(), Some(Path::new("x.toml")));
        assert_eq!(cmd.config_file(), Some(Path::new("x.toml")));
        let mut c = Config::default();
        cmd.apply(&mut c).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/tmp/d"));
        assert_eq!(c.kafka.listen, "0.0.0.0:19092");
        assert_eq!(c.kafka.effective_advertised_host().unwrap(), "broker.example");
        assert_eq!(c.kafka.effective_advertised_port().unwrap(), 19092);
        assert_eq!(c.log_level, LogLevel::Debug);
        assert_eq!((c.admin.enabled, c.admin.listen.as_str()), (true, "127.0.0.1:0"));
        c.validate().unwrap();
    }

    #[test]
    fn flags_override_file_and_environment() {
        let f = write_toml(
            "data-dir = \"/from/file\"\nlog-level = \"warn\"\n[kafka]\nlisten = \"127.0.0.1:1111\"\nmax-connections = 7\n",
        );
        let path = f.path().display().to_string();
        let env = [("CHRONIK_KAFKA__LISTEN", "127.0.0.1:2222"), ("CHRONIK_DATA_DIR", "/from/env")];
        let cmd = ok(&["standalone", "--config", &path]);
        let c = cmd.load_config_with_env(env).unwrap().unwrap();
        assert_eq!(c.kafka.listen, "127.0.0.1:2222", "env beats file");
        assert_eq!(c.data_dir, PathBuf::from("/from/env"));
        assert_eq!(c.log_level, LogLevel::Warn, "file beats default");
        assert_eq!(c.kafka.max_connections, 7);

        let cmd = ok(&[
            "standalone",
            "--config",
            &path,
            "--listen",
            "127.0.0.1:3333",
            "--data-dir",
            "/from/flag",
            "--log-level",
            "error",
        ]);
        let c = cmd.load_config_with_env(env).unwrap().unwrap();
        assert_eq!(c.kafka.listen, "127.0.0.1:3333", "flag beats env");
        assert_eq!(c.data_dir, PathBuf::from("/from/flag"));
        assert_eq!(c.log_level, LogLevel::Error, "flag beats file");
    }

    #[test]
    fn standalone_forces_single_node() {
        let f = write_toml("node-id = 5\n[raft]\npeers = [{ id = 2, addr = \"127.0.0.1:9193\" }]\n");
        let path = f.path().display().to_string();
        let c = ok(&["standalone", "--config", &path]).load_config_with_env(NO_ENV).unwrap().unwrap();
        assert_eq!(c.node_id, 1);
        assert!(c.raft.peers.is_empty());
        assert_eq!(c.topics.default_replication_factor, 1);
    }

    #[test]
    fn standalone_rejects_replication_above_one() {
        let err = ok(&["standalone"])
            .load_config_with_env([("CHRONIK_TOPICS__DEFAULT_REPLICATION_FACTOR", "3")])
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("topics.default-replication-factor"), "{msg}");
    }

    #[test]
    fn raft_cluster_with_peers_from_flags_only() {
        let cmd = ok(&[
            "raft-cluster",
            "--node-id",
            "2",
            "--advertised-addr",
            "127.0.0.1",
            "--kafka-port",
            "9093",
            "--peers",
            PEERS,
            "--data-dir",
            "./data/node2",
            "--admin-listen",
            "127.0.0.1:9301",
        ]);
        let env = [("CHRONIK_ADMIN__LISTEN", "127.0.0.1:9999"), ("CHRONIK_ADMIN__ENABLED", "false")];
        let c = cmd.load_config_with_env(env).unwrap().unwrap();
        assert_eq!((c.admin.enabled, c.admin.listen.as_str()), (true, "127.0.0.1:9301"), "flag beats env");
        assert_eq!(c.node_id, 2);
        assert_eq!(c.kafka.listen, "127.0.0.1:9093");
        assert_eq!(c.kafka.effective_advertised_host().unwrap(), "127.0.0.1");
        assert_eq!(c.kafka.effective_advertised_port().unwrap(), 9093);
        assert_eq!(c.raft.listen, "127.0.0.1:9193", "from this node's --peers entry");
        let ids: Vec<u64> = c.raft.peers.iter().map(|p| p.id).collect();
        assert_eq!(ids, vec![1, 3]);
        assert_eq!(c.raft.peers[1].addr, "127.0.0.1:9194");
        assert_eq!(c.data_dir, PathBuf::from("./data/node2"));
        assert_eq!(c.node_count(), 3);
    }

    #[test]
    fn raft_addr_overrides_own_peer_entry() {
        let cmd = ok(&[
            "raft-cluster",
            "--node-id",
            "1",
            "--advertised-addr",
            "node1.internal",
            "--raft-addr",
            "0.0.0.0:9192",
            "--peers",
            "1@node1.internal:9192,2@node2.internal:9192",
            "--listen",
            "0.0.0.0:9092",
        ]);
        let c = cmd.load_config_with_env(NO_ENV).unwrap().unwrap();
        assert_eq!(c.raft.listen, "0.0.0.0:9192");
        assert_eq!(c.kafka.listen, "0.0.0.0:9092");
        assert_eq!(c.kafka.effective_advertised_host().unwrap(), "node1.internal");
        assert_eq!(c.raft.peers, vec![PeerConfig { id: 2, addr: "node2.internal:9192".into() }]);
    }

    #[test]
    fn own_peer_entry_must_be_bindable_without_raft_addr() {
        let cmd = ok(&[
            "raft-cluster",
            "--node-id",
            "1",
            "--advertised-addr",
            "h1",
            "--peers",
            "1@node1.internal:9192,2@node2.internal:9192",
        ]);
        let msg = cmd.load_config_with_env(NO_ENV).unwrap_err().to_string();
        assert!(msg.contains("--peers") && msg.contains("--raft-addr"), "{msg}");
    }

    #[test]
    fn raft_cluster_takes_identity_from_the_config_file_alone() {
        let path = format!("{}/config/cluster-3node/node2.toml", env!("CARGO_MANIFEST_DIR"));
        let cmd = ok(&["raft-cluster", "--config", &path]);
        let config = cmd.load_config_with_env(NO_ENV).unwrap().unwrap();
        assert_eq!(config.node_id, 2);
        assert_eq!(config.raft.peers.len(), 2);
        assert!(parse_from(["chronik-server", "raft-cluster"]).is_err(), "no --config: --node-id is required");
    }

    #[test]
    fn peers_must_include_this_node() {
        let cmd = ok(&["raft-cluster", "--node-id", "4", "--advertised-addr", "127.0.0.1", "--peers", PEERS]);
        let err = cmd.load_config_with_env(NO_ENV).unwrap_err();
        assert!(matches!(&err, ConfigError::Invalid { key, .. } if key == "--peers"), "{err:?}");
        assert!(err.to_string().contains("node id 4"), "{err}");
    }

    #[test]
    fn kafka_port_keeps_the_listen_host() {
        let f = write_toml("[kafka]\nlisten = \"10.0.0.5:9092\"\n");
        let path = f.path().display().to_string();
        let cmd = ok(&[
            "raft-cluster",
            "--config",
            &path,
            "--node-id",
            "1",
            "--advertised-addr",
            "10.0.0.5",
            "--kafka-port",
            "19092",
        ]);
        let mut c = Config::load_layers(Some(f.path()), NO_ENV).unwrap();
        cmd.apply(&mut c).unwrap();
        assert_eq!(c.kafka.listen, "10.0.0.5:19092");
    }

    #[test]
    fn kafka_port_needs_a_parsable_listen() {
        let cmd = ok(&["raft-cluster", "--node-id", "1", "--advertised-addr", "h", "--kafka-port", "19092"]);
        let mut c = Config::default();
        c.kafka.listen = "localhost:9092".into();
        let err = cmd.apply(&mut c).unwrap_err();
        assert!(matches!(&err, ConfigError::Invalid { key, .. } if key == "--kafka-port"), "{err:?}");
    }

    #[test]
    fn cluster_templates_work_with_the_cli() {
        for n in 1..=3 {
            let path = template(&format!("config/cluster-3node/node{n}.toml"));
            let id = n.to_string();
            let cmd = ok(&["raft-cluster", "--config", &path, "--node-id", &id, "--advertised-addr", "127.0.0.1"]);
            let c = cmd.load_config_with_env(NO_ENV).unwrap().unwrap();
            assert_eq!(c.node_id, n);
            assert_eq!(c.node_count(), 3);
            assert_eq!(c.topics.default_replication_factor, 3);
        }
    }

    #[test]
    fn cluster_status() {
        let cmd = ok(&["cluster", "status", "--admin", "127.0.0.1:9300"]);
        assert_eq!(
            cmd,
            Command::Cluster(ClusterCommand::Status(ClusterStatusArgs {
                admin: "127.0.0.1:9300".into(),
                bootstrap: None,
                json: false
            }))
        );
        assert!(!cmd.is_server());
        assert_eq!(cmd.config_file(), None);
        assert_eq!(cmd.load_config_with_env(NO_ENV).unwrap(), None);
        let mut c = Config::default();
        cmd.apply(&mut c).unwrap();
        assert_eq!(c, Config::default());
        ok(&["cluster", "status", "--admin", "broker-1:9300"]);
        for sub in ["status", "faults"] {
            let e = parse_from(["chronik-server", "cluster", sub, "--bootstrap", "127.0.0.1:9092"]).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::ValueValidation, "{sub}");
            let text = e.to_string();
            assert!(text.contains("--bootstrap was removed") && text.contains("--admin HOST:PORT"), "{sub}: {text}");
        }
    }

    #[test]
    fn structural_errors() {
        assert_eq!(err_kind(&[]), ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand);
        assert_eq!(err_kind(&["--node-id", "2", "raft-cluster"]), ErrorKind::UnknownArgument);
        assert_eq!(err_kind(&["standalone", "--bogus"]), ErrorKind::UnknownArgument);
        assert_eq!(err_kind(&["standalone", "--node-id", "2"]), ErrorKind::UnknownArgument);
        assert_eq!(err_kind(&["serve"]), ErrorKind::InvalidSubcommand);
        assert_eq!(err_kind(&["standalone", "extra"]), ErrorKind::UnknownArgument);
        assert_eq!(err_kind(&["cluster"]), ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand);
        assert_eq!(err_kind(&["cluster", "status"]), ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn raft_cluster_required_flags() {
        assert_eq!(err_kind(&["raft-cluster", "--advertised-addr", "h"]), ErrorKind::MissingRequiredArgument);
        assert_eq!(err_kind(&["raft-cluster", "--node-id", "1"]), ErrorKind::MissingRequiredArgument);
        let e = parse(&["raft-cluster", "--advertised-addr", "h"]).unwrap_err();
        assert!(e.to_string().contains("--node-id"), "{e}");
    }

    #[test]
    fn bad_flag_values() {
        let base = ["raft-cluster", "--node-id", "1", "--advertised-addr", "h"];
        let with = |extra: &[&str]| {
            let mut v: Vec<&str> = base.to_vec();
            v.extend_from_slice(extra);
            err_kind(&v)
        };
        assert_eq!(with(&["--kafka-port", "0"]), ErrorKind::ValueValidation);
        assert_eq!(with(&["--kafka-port", "70000"]), ErrorKind::ValueValidation);
        assert_eq!(with(&["--kafka-port", "9093", "--listen", "127.0.0.1:9093"]), ErrorKind::ArgumentConflict);
        assert_eq!(with(&["--raft-addr", "localhost"]), ErrorKind::ValueValidation);
        assert_eq!(with(&["--peers", "1-127.0.0.1:9192"]), ErrorKind::ValueValidation);
        assert_eq!(with(&["--peers", "1@127.0.0.1:9192,1@127.0.0.1:9193"]), ErrorKind::ValueValidation);
        assert_eq!(with(&["--peers", ""]), ErrorKind::ValueValidation);
        assert_eq!(with(&["--peers", "0@127.0.0.1:9192"]), ErrorKind::ValueValidation);
        assert_eq!(with(&["--log-level", "loud"]), ErrorKind::ValueValidation);
        assert_eq!(err_kind(&["raft-cluster", "--node-id", "0", "--advertised-addr", "h"]), ErrorKind::ValueValidation);
        assert_eq!(
            err_kind(&["raft-cluster", "--node-id", "2147483648", "--advertised-addr", "h"]),
            ErrorKind::ValueValidation
        );
        let e = parse(&["standalone", "--advertised-addr", "host:9092"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ValueValidation);
        assert!(e.to_string().contains("without a port"), "{e}");
        assert_eq!(err_kind(&["standalone", "--listen", "127.0.0.1"]), ErrorKind::ValueValidation);
        assert_eq!(err_kind(&["cluster", "status", "--bootstrap", "nohost"]), ErrorKind::ValueValidation);
    }

    #[test]
    fn help_and_version_are_reported_as_such() {
        assert_eq!(err_kind(&["--help"]), ErrorKind::DisplayHelp);
        assert_eq!(err_kind(&["standalone", "--help"]), ErrorKind::DisplayHelp);
        assert_eq!(err_kind(&["raft-cluster", "--help"]), ErrorKind::DisplayHelp);
        assert_eq!(err_kind(&["--version"]), ErrorKind::DisplayVersion);
    }

    #[test]
    fn every_flag_is_documented_with_a_sentence() {
        let mut root = Cli::command();
        root.build();
        let mut checked = 0;
        let mut stack: Vec<&clap::Command> = root.get_subcommands().collect();
        while let Some(cmd) = stack.pop() {
            stack.extend(cmd.get_subcommands());
            assert!(cmd.get_about().is_some(), "{} has no about", cmd.get_name());
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                let help =
                    arg.get_help().unwrap_or_else(|| panic!("{} --{id} has no help", cmd.get_name())).to_string();
                // clap drops the final period of a one-line doc comment.
                assert!(
                    help.len() > 20 && help.contains(' ') && help.starts_with(|c: char| c.is_ascii_uppercase()),
                    "{} --{id}: {help:?}",
                    cmd.get_name()
                );
                checked += 1;
            }
        }
        // cluster status and faults each keep a hidden --bootstrap that only explains its removal.
        assert_eq!(checked, 6 + 10 + 3 + 6);
    }

    #[test]
    fn subcommand_help_lists_every_flag() {
        let mut root = Cli::command();
        let sub = root.find_subcommand_mut("raft-cluster").expect("raft-cluster exists");
        let help = sub.render_long_help().to_string();
        for flag in [
            "--config",
            "--node-id",
            "--advertised-addr",
            "--kafka-port",
            "--listen",
            "--raft-addr",
            "--data-dir",
            "--peers",
            "--admin-listen",
            "--log-level",
        ] {
            assert!(help.contains(flag), "{flag} missing from\n{help}");
        }
    }
}
